"""Compiled LightGBM prediction: lleaves turns a fitted model into native code, 4-9x faster than LightGBM's
own ``predict`` on the same rows, with predictions equal to about 1e-14 (the trees' sums in another order).

Compiling one model takes seconds, so it pays only on large predictions: couponmix compiles a model when
one call predicts at least ``COMPILE_ROWS`` rows, and keeps the compiled library in the model cache
(``couponmix.infra.cache``), keyed by the SHA-256 of the model's text, the lleaves and llvmlite versions
and the host CPU, so that later runs load it in milliseconds. Which path predicts depends only on the
number of rows in the call, never on the cache's state, so the same inputs give the same outputs.

A compiled library is native code: it is loaded only from a file this user owns, that no one else can
write, in a cache folder no one else can write, and whose SHA-256 matches the one recorded beside it when
it was compiled. Anything else (a cache folder shared by mistake, a damaged file) is recompiled into a
fresh file, or, where that fails, LightGBM predicts. ``COUPONMIX_COMPILED=off`` turns compiled prediction
off; without lleaves installed LightGBM predicts, with the same results to about 1e-14.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import threading
import weakref
from pathlib import Path

import numpy as np

from couponmix.infra import cache, native

__all__ = ["COMPILE_ROWS", "available", "enabled", "compiled_for", "predict"]

#: one call predicting at least this many rows uses the compiled model: a simulated block of 65,536
#: customers with 4 actions (262,144 rows) qualifies, an evaluation sample of 30,000 does not. LightGBM needs
#: about 10 s per million rows of the default model; compiling it takes 3-17 s, once per model and machine
COMPILE_ROWS = 200_000
PREFIX = "compiled-"

_lock = threading.Lock()
#: compiled models of this process, by the SHA-256 of their text (None: compiling failed, use LightGBM)
_loaded: dict[str, object | None] = {}


def enabled() -> bool:
    """False when the environment variable COUPONMIX_COMPILED is off, 0, no or false; True otherwise (the default)."""
    return native.enabled()


def available() -> bool:
    """lleaves imports (and compiled prediction is not turned off)."""
    if not enabled():
        return False
    try:
        import lleaves  # noqa: F401
    except Exception:  # noqa: BLE001  (any failure to import means: LightGBM predicts)
        return False
    return True


def _key(text: str) -> str:
    import platform

    import lleaves
    import llvmlite
    import llvmlite.binding as llvm

    h = hashlib.sha256()
    meta = {
        "lleaves": getattr(lleaves, "__version__", "?"),
        "llvmlite": llvmlite.__version__,
        "cpu": llvm.get_host_cpu_name(),
        "features": llvm.get_host_cpu_features().flatten(),
        "machine": platform.machine(),
    }
    h.update(json.dumps(meta, sort_keys=True).encode())
    h.update(text.encode())
    return h.hexdigest()


def _compile(text: str, key: str):
    """The lleaves model of ``text``: loaded from the cache when a trusted, intact library is there, else
    compiled (and stored when the cache is on)."""
    import lleaves

    root = cache.cache_dir()
    lib, meta = root / f"{PREFIX}{key}.so", root / f"{PREFIX}{key}.json"
    with tempfile.TemporaryDirectory(prefix="couponmix-lleaves-") as tmp:
        model_file = Path(tmp) / "model.txt"
        model_file.write_text(text)
        model = lleaves.Model(model_file=str(model_file))
        if native.trusted(root, lib, meta):
            model.compile(cache=str(lib))
            return model
        built = Path(tmp) / "model.so"
        model.compile(cache=str(built))
        native.store(root, built, lib, meta)
    return model


def compiled_for(text: str):
    """The compiled model of a LightGBM model text, or None when it cannot be had (LightGBM predicts).

    Parameters
    ----------
    text : str
        The model in LightGBM's text format (``Booster.model_to_string``).

    Returns
    -------
    lleaves.Model or None
        Compiled once per process and model text (later calls return the same object).
    """
    digest = hashlib.sha256(text.encode()).hexdigest()
    with _lock:
        if digest not in _loaded:
            try:
                _loaded[digest] = _compile(text, _key(text))
            except Exception:  # noqa: BLE001  (compiling is an optimisation: LightGBM predicts instead)
                _loaded[digest] = None
        return _loaded[digest]


#: the compiled model of each LightGBM booster seen here (its text is not rebuilt on every call)
_by_booster: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def predict(booster, design: np.ndarray, threads: int) -> np.ndarray:
    """``booster.predict(design)``, through the compiled model when the call is large enough (see above).

    Parameters
    ----------
    booster : lightgbm.Booster
    design : ndarray, (rows, features)
        The model's input rows (the revenue model's: one per customer and action).
    threads : int
        Threads to predict with.

    Returns
    -------
    ndarray, (rows,)
        The booster's predictions.
    """
    if len(design) >= COMPILE_ROWS and available():
        try:
            model = _by_booster[booster]
        except (KeyError, TypeError):
            model = compiled_for(booster.model_to_string())
            try:
                _by_booster[booster] = model
            except TypeError:
                pass
        if model is not None:
            return np.asarray(model.predict(np.ascontiguousarray(design, dtype=np.float64), n_jobs=threads))
    return booster.predict(design, num_threads=threads)

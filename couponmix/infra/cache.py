"""On-disk cache of trained models, so that ``plan``, ``validate`` and ``evaluate`` do not retrain a
scenario's revenue model on every call.

Location: ``$COUPONMIX_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/couponmix`` (``~/.cache/couponmix``).
``COUPONMIX_CACHE=off`` turns it off. ``couponmix cache`` shows its size, ``couponmix cache --clear``
empties it.

An entry is keyed by a SHA-256 of everything the fit depends on: the model's class and parameters, its
seed, the training data's bytes and the versions of couponmix, LightGBM and numpy. A changed config,
seed or library gives another key, so a stale entry is never used. Entries hold data only (LightGBM's
text model format and ``.npy`` arrays read with ``allow_pickle=False``), never pickles: a cache folder
shared by mistake cannot run code. Each entry is written under a temporary name and renamed, so a
killed run leaves no half entry, and carries the ``.couponmix`` marker: clearing removes only entries
couponmix wrote. Each entry records the SHA-256 of its model texts: a damaged entry (a text that differs
from its checksum, which LightGBM could choke on) is dropped and the model fitted again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from couponmix import __version__
from couponmix.infra.atomic import MARKER, mark, owned
from couponmix.infra.records import Record

__all__ = ["CacheInfo", "cache_dir", "enabled", "key", "load", "store", "info", "clear", "ENTRY_PREFIX"]

ENTRY_PREFIX = "model-"


def enabled() -> bool:
    """False when the environment variable COUPONMIX_CACHE is off, 0, no or false; True otherwise (the default)."""
    return os.environ.get("COUPONMIX_CACHE", "on").lower() not in ("off", "0", "no", "false")


def cache_dir() -> Path:
    """The cache folder (not created here)."""
    if os.environ.get("COUPONMIX_CACHE_DIR"):
        return Path(os.environ["COUPONMIX_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "couponmix"


def key(kind: str, params: dict, arrays: Iterable[np.ndarray]) -> str:
    """SHA-256 of the model kind, its parameters (JSON), library versions and the arrays' bytes.

    Parameters
    ----------
    kind : str
        The model's kind.
    params : dict
        Its parameters (written as JSON; what JSON cannot write, as text).
    arrays : iterable of ndarray
        The data it is fitted on (dtype and shape count too).

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    import lightgbm

    h = hashlib.sha256()
    meta = {"kind": kind, "params": params, "couponmix": __version__, "lightgbm": lightgbm.__version__, "numpy": np.__version__}
    h.update(json.dumps(meta, sort_keys=True, default=str).encode())
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.data)
    return h.hexdigest()


def _entry(k: str) -> Path:
    return cache_dir() / f"{ENTRY_PREFIX}{k}"


def load(k: str) -> tuple[list[str], dict[str, np.ndarray]] | None:
    """(model texts, arrays) of entry ``k``, or None when the cache is off or has no such entry.

    Parameters
    ----------
    k : str
        The entry's key (``key``).

    Returns
    -------
    (list of str, dict of str to ndarray) or None
        None also for a partial, foreign or damaged entry (a damaged one couponmix wrote is removed).
    """
    if not enabled():
        return None
    path = _entry(k)
    try:
        meta = json.loads((path / "entry.json").read_text())
        models = [(path / f"model{i}.txt").read_text() for i in range(int(meta["models"]))]
        arrays = {name: np.load(path / f"{name}.npy", allow_pickle=False) for name in meta["arrays"]}
        sums = meta.get("sha256")
        if sums is not None and [hashlib.sha256(t.encode()).hexdigest() for t in models] != list(sums):
            raise ValueError("damaged")
    except (OSError, ValueError, KeyError, TypeError):
        # missing, partial, foreign or damaged (a model text that differs from its checksum would reach
        # LightGBM, which may abort the process): fit again, and drop a damaged entry couponmix wrote
        if path.is_dir() and not path.is_symlink() and (path / MARKER).is_file():
            shutil.rmtree(path, ignore_errors=True)
        return None
    return models, arrays


def store(k: str, models: list[str], arrays: dict[str, np.ndarray]) -> None:
    """Write entry ``k`` atomically; a cache that cannot be written is skipped silently (it is a cache).

    Parameters
    ----------
    k : str
        The entry's key (``key``).
    models : list of str
        The fitted models as text.
    arrays : dict of str to ndarray
        Arrays kept with them, by name.
    """
    if not enabled():
        return
    root = cache_dir()
    final = _entry(k)
    if final.exists():
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=root))
    except OSError:
        return
    try:
        mark(staging)
        for i, text in enumerate(models):
            (staging / f"model{i}.txt").write_text(text)
        for name, a in arrays.items():
            np.save(staging / f"{name}.npy", np.asarray(a), allow_pickle=False)
        sums = [hashlib.sha256(t.encode()).hexdigest() for t in models]
        (staging / "entry.json").write_text(json.dumps({"models": len(models), "arrays": sorted(arrays), "sha256": sums}))
        os.replace(staging, final)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # another process may have won the race: fine


def _entries() -> list[Path]:
    root = cache_dir()
    if not root.is_dir():
        return []
    return [
        p
        for p in sorted(root.iterdir())
        if p.name.startswith((ENTRY_PREFIX, f".{ENTRY_PREFIX}")) and p.is_dir() and not p.is_symlink() and owned(p)
    ]


#: compiled libraries with their checksums: prediction (``couponmix.policy.compiled``: ``compiled-<sha256>.so``
#: and ``.json``) and couponmix's own C code (``couponmix.infra.native``: ``native-<name>-<sha256>.so``, ``.json``)
COMPILED = re.compile(r"^\.?(compiled|native-[a-z0-9-]+)-[0-9a-f]{64}\.(so|json)(\.tmp-\w+)?$")


def _compiled() -> list[Path]:
    """The compiled libraries and their checksums in the cache folder (regular files named as couponmix
    names them, owned by this user)."""
    root = cache_dir()
    if not root.is_dir():
        return []
    return [
        p
        for p in sorted(root.iterdir())
        if COMPILED.match(p.name) and p.is_file() and not p.is_symlink() and p.stat().st_uid == os.getuid()
    ]


@dataclass
class CacheInfo(Record):
    """What the model cache holds (``info``)."""

    path: str  #: the cache folder
    enabled: bool  #: False when COUPONMIX_CACHE turns the cache off
    entries: int  #: fitted-model entries (folders ``model-*``)
    compiled: int  #: compiled libraries (``compiled-<sha256>.so``, ``native-<name>-<sha256>.so``)
    bytes: int  #: size of the entries and compiled libraries together, in bytes


def info() -> CacheInfo:
    """Where the cache is, how many entries it holds (fitted models, and compiled libraries) and their size
    in bytes.

    Returns
    -------
    CacheInfo
    """
    entries = _entries()
    libs = _compiled()
    size = sum(f.stat().st_size for p in entries for f in p.iterdir() if f.is_file()) + sum(f.stat().st_size for f in libs)
    return CacheInfo(
        path=str(cache_dir()), enabled=enabled(), entries=len(entries), compiled=sum(f.suffix == ".so" for f in libs), bytes=size
    )


def clear() -> int:
    """Remove every entry couponmix wrote (folders named ``model-*`` holding its marker, and compiled
    libraries named ``compiled-<sha256>.so`` or ``native-<name>-<sha256>.so`` with their ``.json``); returns how many entries. Anything else
    in the folder is left alone.

    Returns
    -------
    int
        Fitted-model entries found (compiled libraries not counted).
    """
    entries = _entries()
    for p in entries:
        if (p / MARKER).is_file():
            shutil.rmtree(p)
    for f in _compiled():
        f.unlink(missing_ok=True)
    return len(entries)

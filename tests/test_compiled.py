"""Compiled LightGBM prediction (lleaves) equals LightGBM's own, is cached safely and is used only on large calls."""

import os
import stat

import numpy as np
import pytest

from couponmix.infra import cache
from couponmix.policy import compiled
from couponmix.policy.revenue_model import CrossFittedRevenueModel

pytestmark = pytest.mark.skipif(not compiled.available(), reason="lleaves is not installed")


def _model(seed=0, n=4000):
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.normal(size=(n, 3)), rng.integers(0, 3, n)]).astype(float)
    a = rng.integers(0, 4, n)
    r = x[:, 0] * (a == 1) + np.sin(x[:, 1]) + (x[:, 3] == 2) * a + rng.normal(size=n)
    params = dict(n_estimators=30, num_leaves=7, min_child_samples=20)
    return CrossFittedRevenueModel(4, [0, 1, 2, 3], categorical=[3], params=params, seed=seed, threads=1).fit(x, a, r), rng


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COUPONMIX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(compiled, "_loaded", {})
    monkeypatch.setattr(compiled, "_by_booster", compiled.weakref.WeakKeyDictionary())
    return tmp_path / "cache"


def test_compiled_prediction_equals_lightgbm_on_categorical_and_numeric_features(own_cache, monkeypatch):
    model, rng = _model()
    x = np.column_stack([rng.normal(size=(3000, 3)), rng.integers(0, 3, 3000)]).astype(float)
    x[:5, 3] = 7  # a category never seen in training
    x[5:10, 0] = np.nan  # a missing value
    monkeypatch.setattr(compiled, "COMPILE_ROWS", 10**12)
    lgb = model.predict(x.copy())
    monkeypatch.setattr(compiled, "COMPILE_ROWS", 1)
    fast = model.predict(x.copy())
    assert np.allclose(fast, lgb, rtol=0, atol=1e-12)
    assert not np.array_equal(fast, np.zeros_like(fast))
    # the library was stored privately, with its checksum beside it
    libs = list(own_cache.glob(f"{compiled.PREFIX}*.so"))
    assert len(libs) == 2 and all(stat.S_IMODE(lib.stat().st_mode) & 0o077 == 0 for lib in libs)  # one per fold
    assert stat.S_IMODE(libs[0].stat().st_mode) & 0o077 == 0


def test_small_calls_use_lightgbm_whatever_the_cache_holds(own_cache, monkeypatch):
    model, rng = _model(1)
    x = rng.normal(size=(50, 4))
    calls = []
    monkeypatch.setattr(compiled, "compiled_for", lambda text: calls.append(text))
    model.predict(x)
    assert calls == []  # 50 customers x 4 actions is far below COMPILE_ROWS


def test_a_tampered_or_foreign_library_is_never_loaded(own_cache, monkeypatch):
    model, rng = _model(2)
    x = rng.normal(size=(200, 4))
    monkeypatch.setattr(compiled, "COMPILE_ROWS", 1)
    first = model.predict(x.copy())
    lib = next(own_cache.glob(f"{compiled.PREFIX}*.so"))
    lib.write_bytes(b"\x7fELF not a library")  # damaged: its checksum no longer matches
    monkeypatch.setattr(compiled, "_loaded", {})
    monkeypatch.setattr(compiled, "_by_booster", compiled.weakref.WeakKeyDictionary())
    model2, _ = _model(2)
    assert np.array_equal(model2.predict(x.copy()), first)  # recompiled, same predictions
    assert lib.read_bytes()[:4] == b"\x7fELF" and b"not a library" not in lib.read_bytes()
    # a library others may write is not trusted either: recompiled into a private file
    os.chmod(lib, 0o666)
    monkeypatch.setattr(compiled, "_loaded", {})
    monkeypatch.setattr(compiled, "_by_booster", compiled.weakref.WeakKeyDictionary())
    model3, _ = _model(2)
    assert np.array_equal(model3.predict(x.copy()), first)
    assert stat.S_IMODE(lib.stat().st_mode) & 0o077 == 0


def test_without_lleaves_lightgbm_predicts(own_cache, monkeypatch):
    model, rng = _model(3)
    x = rng.normal(size=(100, 4))
    monkeypatch.setattr(compiled, "COMPILE_ROWS", 1)
    monkeypatch.setenv("COUPONMIX_COMPILED", "off")
    off = model.predict(x.copy())
    assert not list(own_cache.glob(f"{compiled.PREFIX}*"))
    monkeypatch.delenv("COUPONMIX_COMPILED")
    assert np.allclose(model.predict(x.copy()), off, rtol=0, atol=1e-12)


def test_the_cache_listing_and_clearing_count_compiled_libraries(own_cache, monkeypatch):
    model, rng = _model(4)
    monkeypatch.setattr(compiled, "COMPILE_ROWS", 1)
    model.predict(rng.normal(size=(10, 4)))
    assert cache.info().compiled == 2  # one per fold model
    cache.clear()
    assert not list(own_cache.glob(f"{compiled.PREFIX}*"))

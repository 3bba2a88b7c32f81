"""The trained-model cache: the same fit read back bit for bit, keyed by everything it depends on, data only,
and cleared without touching anything couponmix did not write."""

import subprocess
import sys

import numpy as np
import pytest

from couponmix.infra import cache
from couponmix.policy.revenue_model import CrossFittedRevenueModel


def data(seed=0, n=600):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    a = rng.integers(0, 3, n)
    r = x[:, 0] * (a == 1) + x[:, 1] * (a == 2) + rng.normal(size=n)
    return x, a, r


def model(seed=0):
    return CrossFittedRevenueModel(3, [0, 1, 2], folds=2, params=dict(n_estimators=20, min_child_samples=10), seed=seed, threads=1)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("COUPONMIX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("COUPONMIX_CACHE", raising=False)
    return tmp_path / "cache"


def test_a_cached_fit_predicts_bit_for_bit(cache_dir, monkeypatch):
    x, a, r = data()
    first = model().fit(x, a, r)
    assert cache.info().entries == 1
    import lightgbm

    def no_fit(*args, **kw):
        raise AssertionError("a cached model was fitted again")

    monkeypatch.setattr(lightgbm.LGBMRegressor, "fit", no_fit)
    again = model().fit(x, a, r)
    new = np.random.default_rng(5).normal(size=(50, 3))
    assert np.array_equal(first.predict(new), again.predict(new))
    assert np.array_equal(first.out_of_fold(), again.out_of_fold())


def test_the_key_changes_with_data_seed_and_parameters(cache_dir):
    x, a, r = data()
    model().fit(x, a, r)
    model(seed=1).fit(x, a, r)
    r2 = r.copy()
    r2[0] += 1e-9
    model().fit(x, a, r2)
    assert cache.info().entries == 3


def test_entries_are_data_only(cache_dir):
    model().fit(*data())
    (entry,) = [p for p in cache_dir.iterdir() if p.name.startswith("model-")]
    assert sorted(f.suffix for f in entry.iterdir() if f.name != ".couponmix") == [".json", ".npy", ".txt", ".txt"]


def test_cache_off_writes_nothing(cache_dir, monkeypatch):
    monkeypatch.setenv("COUPONMIX_CACHE", "off")
    model().fit(*data())
    assert not cache_dir.exists()


def test_clear_removes_only_what_couponmix_wrote(cache_dir):
    model().fit(*data())
    foreign = cache_dir / "model-notes"  # named like an entry, but not couponmix's
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("keep me")
    (cache_dir / "other.txt").write_text("keep me too")
    out = subprocess.run([sys.executable, "-m", "couponmix.cli", "cache", "--clear"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("removed 1 cached model(s); model cache") and "0 model(s)" in out
    assert (foreign / "thesis.txt").read_text() == "keep me" and (cache_dir / "other.txt").is_file()
    assert cache.info().entries == 0


def test_a_corrupt_entry_is_refitted(cache_dir):
    x, a, r = data()
    first = model().fit(x, a, r)
    (entry,) = [p for p in cache_dir.iterdir() if p.name.startswith("model-")]
    (entry / "oof.npy").write_bytes(b"garbage")
    again = model().fit(x, a, r)
    assert np.array_equal(first.out_of_fold(), again.out_of_fold())


def test_a_damaged_cache_entry_is_refitted_not_fed_to_lightgbm(tmp_path, monkeypatch):
    """A cached model text that differs from its checksum is dropped and the model fitted again, with the
    same predictions."""
    import numpy as np

    from couponmix.infra import cache
    from couponmix.policy.revenue_model import CrossFittedRevenueModel

    monkeypatch.setenv("COUPONMIX_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 2))
    a = rng.integers(0, 2, 600)
    r = x[:, 0] + a + rng.normal(size=600)
    params = {"n_estimators": 5}
    first = CrossFittedRevenueModel(2, [0, 1], params=params).fit(x, a, r).predict(x)
    (entry,) = [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(cache.ENTRY_PREFIX)]
    model = entry / "model0.txt"
    text = model.read_text()
    assert "Tree=0" in text
    model.write_text(text.replace("Tree=0", "Tree=9"))
    again = CrossFittedRevenueModel(2, [0, 1], params=params).fit(x, a, r).predict(x)
    np.testing.assert_allclose(again, first)
    (entry2,) = [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(cache.ENTRY_PREFIX)]
    assert "Tree=9" not in (entry2 / "model0.txt").read_text()  # the damaged entry was replaced

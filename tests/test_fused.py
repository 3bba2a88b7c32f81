"""The compiled moment sums (``couponmix.ope.fused``) equal an independent numpy computation of the formulas and
the numpy engine's sums, on every built-in weight, with zero propensities, chunks and threads; a weight without
a kernel, ``COUPONMIX_COMPILED=off`` or a machine without a C compiler run the numpy engine; a damaged or foreign
library is never loaded."""

import dataclasses
import os
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from couponmix.infra import cache, native
from couponmix.ope import estimators, fused
from couponmix.ope.criterion import Criterion
from couponmix.ope.estimators import EstimatorSpec, exact_suite
from couponmix.ope.objectives import EvaluationSample, MixtureObjectives, joint_moments
from simulators import get_scenario

needs_kernel = pytest.mark.skipif(not fused.available(), reason="no compiled kernel (no C compiler, or COUPONMIX_COMPILED=off)")


def reference(P, pe, alphas, kind, lam, coef, which):
    """The sum over rows of coef x (p c, p c^2 or pi_e 1{p > 0}) per target and mixture, straight from the
    formulas in fused_sums.c (dense numpy, no shared terms): (T, B)."""
    p = P @ alphas.T  # (R, B)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(p > 0, 1.0 / p, 0.0)
        out = []
        for t in range(pe.shape[1]):
            e = pe[:, t, None]
            sup = np.where(p > 0, e, 0.0)
            w2p = (e * e) * inv
            if kind == "ips":
                c0, c1 = sup, w2p
            elif kind == "clip":
                c0, c1 = np.minimum(e, lam * p), np.minimum(w2p, (lam * lam) * p)
            elif kind == "switch":
                keep = e <= lam * p
                c0, c1 = np.where(keep, sup, 0.0), np.where(keep, w2p, 0.0)
            else:
                c0 = c1 = np.zeros_like(p)
            x = (c0, c1, sup)[which]
            col = coef if coef.ndim == 1 else coef[:, t]
            out.append(col @ x)
    return np.array(out)


@needs_kernel
@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(1, 7),
    st.integers(0, 2**32 - 1),
    st.lists(
        st.tuples(st.sampled_from(["ips", "clip", "switch", "zero"]), st.sampled_from([0.5, 3.0, 10.0, np.inf])), min_size=1, max_size=3
    ),
)
def test_the_kernel_equals_the_formulas(n_rows, k, n_t, b, seed, weights):
    rng = np.random.default_rng(seed)
    P = rng.random((n_rows, k)) * (rng.random((n_rows, k)) > 0.3)  # some components never play a row's action
    pe = rng.random((n_rows, n_t)) * (rng.random((n_rows, n_t)) > 0.2)
    alphas = rng.dirichlet(np.ones(k), b) * (rng.random((b, k)) > 0.3)  # some mixtures leave components out
    coefs = [rng.normal(size=n_rows), rng.normal(size=(n_rows, n_t)), rng.random(n_rows)]
    estimators = []
    for kind, lam in weights:
        lam = 3.0 if kind == "clip" and not np.isfinite(lam) else lam
        estimators.append((kind, lam, [(coefs[j % 3], which) for j, which in enumerate((0, 1, 2, 0, 1))]))
    slices = [slice(s, s + 7) for s in range(0, n_rows, 7)]
    got = fused.joint_sums(P, pe, alphas, estimators, slices, None)
    assert got is not None and len(got) == len(estimators)
    for (kind, lam, moments), sums in zip(estimators, got):
        assert sums.shape == (n_t, len(moments), b)
        for j, (coef, which) in enumerate(moments):
            want = reference(P, pe, alphas, kind, lam, coef, which)
            if kind == "zero" and which != 2:
                want = np.zeros_like(want)
            scale = np.abs(coef).sum() * max(1.0, np.nanmax(np.abs(want), initial=0.0))
            np.testing.assert_allclose(sums[:, j], want, rtol=1e-12, atol=1e-13 * scale, err_msg=f"{kind} {lam} {which}")


@pytest.fixture(scope="module")
def samples():
    paper = get_scenario("paper")
    floor = get_scenario("paper_floor")
    market = get_scenario("market", config=str(os.path.join(os.path.dirname(__file__), "data", "market_small.yaml")))
    return [
        (EvaluationSample.from_scenario(paper, 4_000, seed=5), np.array([[1, 0, 0], [0.2, 0.3, 0.5], [0, 0, 1.0], [0.5, 0.5, 0]])),
        (EvaluationSample.from_scenario(floor, 4_000, seed=6), np.array([[1, 0, 0], [0.1, 0.0, 0.9], [1 / 3, 1 / 3, 1 / 3]])),
        (EvaluationSample.from_scenario(market, 3_000, seed=7), np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])),
    ]


@needs_kernel
def test_every_estimator_gives_the_numpy_engines_moments(samples, monkeypatch):
    """The balanced estimators of the suite (clipped, switch, plain and self-normalised ones, the direct method),
    each on its own and all together as the criterion evaluates them, on paper, on paper with a floor of zero
    propensities and on market: every moment sum equals the numpy engine's to rounding."""
    for sample, alphas in samples:
        specs = [s for s in exact_suite(finite_variance=False) if s.weights != "naive"]
        objs = [MixtureObjectives(sample, s, 10_000, chunk_rows=500, threads=1) for s in specs]
        compiled = [o.moments(alphas) for o in objs]
        joint = joint_moments(objs, alphas)
        monkeypatch.setenv("COUPONMIX_COMPILED", "off")
        plain = [o.moments(alphas) for o in objs]
        monkeypatch.delenv("COUPONMIX_COMPILED")
        for spec, c, j, p in zip(specs, compiled, joint, plain):
            assert c.sums.keys() == p.sums.keys()
            for name in p.sums:
                scale = np.abs(p.sums[name]).max() + 1e-300
                np.testing.assert_allclose(c.sums[name], p.sums[name], rtol=1e-12, atol=1e-13 * scale, err_msg=f"{spec.name} {name}")
                np.testing.assert_array_equal(j.sums[name], c.sums[name], err_msg=f"{spec.name} {name}: joint vs own")
        crit = Criterion(sample, specs, 10_000)
        on = crit.evaluate(alphas)
        monkeypatch.setenv("COUPONMIX_COMPILED", "off")
        off = crit.evaluate(alphas)
        monkeypatch.delenv("COUPONMIX_COMPILED")
        for a, b in zip(on, off):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


@needs_kernel
def test_chunks_on_threads_give_the_same_bits(samples):
    sample, alphas = samples[0]
    spec = EstimatorSpec.parse("switch_dr", 10.0)
    one = MixtureObjectives(sample, spec, 5_000, chunk_rows=300, threads=1).moments(alphas)
    with ThreadPoolExecutor(2) as pool:
        obj = MixtureObjectives(sample, spec, 5_000, chunk_rows=300, threads=1)
        obj._executor = pool
        two = obj.moments(alphas)
    for name in one.sums:
        np.testing.assert_array_equal(one.sums[name], two.sums[name])


def test_a_weight_without_a_kernel_runs_the_numpy_engine(samples, monkeypatch):
    sample, alphas = samples[0]
    spec = EstimatorSpec.parse("clipped_ips", 10.0)
    calls = []
    real = fused.joint_sums
    monkeypatch.setattr(fused, "joint_sums", lambda *a, **k: calls.append(1) or real(*a, **k))
    want = MixtureObjectives(sample, spec, 5_000).moments(alphas)
    assert calls == [1]
    # the same weight registered without a kernel (as a plugin's would be): the numpy engine, the same sums
    monkeypatch.setitem(estimators.WEIGHTS, "clip", dataclasses.replace(estimators.WEIGHTS["clip"], kernel=None))
    got = MixtureObjectives(sample, spec, 5_000).moments(alphas)
    assert calls == [1]
    for name in want.sums:
        scale = np.abs(want.sums[name]).max() + 1e-300
        np.testing.assert_allclose(got.sums[name], want.sums[name], rtol=1e-12, atol=1e-13 * scale)


def test_off_or_without_a_compiler_the_numpy_engine_runs(samples, monkeypatch, tmp_path):
    sample, alphas = samples[0]
    spec = EstimatorSpec.parse("switch_dr", 10.0)
    monkeypatch.setenv("COUPONMIX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COUPONMIX_COMPILED", "off")
    assert not fused.available()
    assert native.load_c("probe", "int seven(void) { return 7; }") is None
    off = MixtureObjectives(sample, spec, 5_000).moments(alphas)
    monkeypatch.delenv("COUPONMIX_COMPILED")
    monkeypatch.setattr(native, "_compiler", lambda: None)
    assert native.load_c("probe", "int seven(void) { return 7; }") is None
    monkeypatch.setattr(fused, "_state", {})
    assert not fused.available()
    none = MixtureObjectives(sample, spec, 5_000).moments(alphas)
    for name in off.sums:
        np.testing.assert_array_equal(none.sums[name], off.sums[name])
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def _load_in_child(root, source, fn, env=None):
    """What ``native.load_c`` gives in a fresh process (a process keeps a library it loaded once: dlopen returns
    it again for the same path): the value of ``fn()``, or None."""
    code = (
        "import sys; from couponmix.infra import native; "
        f"lib = native.load_c('probe', {source!r}); print(None if lib is None else lib.{fn}())"
    )
    env = {**os.environ, "COUPONMIX_CACHE_DIR": str(root), "COUPONMIX_COMPILED": "on", **(env or {})}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600, check=True)
    return done.stdout.strip()


@pytest.mark.skipif(native._compiler() is None, reason="no C compiler here")
def test_a_damaged_or_foreign_library_is_never_loaded(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    source = "int seven(void) { return 7; }"
    assert _load_in_child(root, source, "seven") == "7"
    (lib,) = root.glob("native-probe-*.so")
    monkeypatch.setenv("COUPONMIX_CACHE_DIR", str(root))
    assert cache.info().compiled == 1
    lib.write_bytes(b"\x7fELF not a library")  # damaged: its checksum no longer matches
    assert _load_in_child(root, source, "seven") == "7"  # rebuilt
    assert b"not a library" not in lib.read_bytes()
    os.chmod(lib, 0o666)  # others may write it: not trusted, rebuilt into a private file
    assert _load_in_child(root, source, "seven") == "7"
    assert stat.S_IMODE(lib.stat().st_mode) & 0o077 == 0
    # the cache off: built in a temporary folder, nothing stored
    assert _load_in_child(root, "int eight(void) { return 8; }", "eight", {"COUPONMIX_CACHE": "off"}) == "8"
    assert len(list(root.glob("native-probe-*.so"))) == 1
    cache.clear()
    assert not list(root.glob("native-*"))

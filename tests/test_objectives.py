"""Exact objectives: policy values and error moments against hand-derived closed forms and quadrature."""

import numpy as np
import pytest

from couponmix.ope.estimators import EstimatorSpec
from couponmix.ope.objectives import MixtureObjectives, RowTerms, error_laws

from .conftest import assert_within_se, mean_and_se
from .paper_truth import VALUES, clipped_moments

ALPHAS = np.array([[1 / 3, 1 / 3, 1 / 3], [0.7, 0.1, 0.2], [0.05, 0.9, 0.05]])


def naive_contributions(sample, alpha, t, lam):
    """Per-customer contributions to mean and second moment, straight from the formulas (no merging)."""
    p = sample.balanced(alpha)
    pe, mu, m2 = sample.target_probs[t], sample.mu, sample.m2
    pos = p > 0
    safe = np.where(pos, p, 1.0)
    mean = np.where(pos, np.minimum(pe, lam * safe), 0.0) * mu
    second = np.where(pos, np.minimum(pe * pe / safe, lam * lam * safe), 0.0) * m2
    return mean.sum(axis=1), second.sum(axis=1)


def test_policy_values_match_closed_form(paper_sample):
    names = paper_sample.component_names + paper_sample.target_names
    probs = np.concatenate([paper_sample.comp_probs, paper_sample.target_probs])
    for name, pi in zip(names, probs):
        per_customer = (pi * paper_sample.mu).sum(axis=1)
        est, se = mean_and_se(per_customer)
        assert est == pytest.approx(paper_sample.policy_value(pi), rel=1e-12)
        assert_within_se(est, VALUES[name], se, what=name)


def test_revenue_is_linear_in_alpha(paper_sample):
    obj = MixtureObjectives(paper_sample, EstimatorSpec("ips"), 1000)
    np.testing.assert_allclose(obj.revenue(ALPHAS), ALPHAS @ paper_sample.component_values, rtol=1e-14)


@pytest.mark.parametrize("alpha", ALPHAS.tolist())
@pytest.mark.parametrize("target", [0, 1])
def test_clipped_ips_moments_match_quadrature(paper_sample, alpha, target):
    lam = 10.0
    alpha = np.array(alpha)
    mean_i, second_i = naive_contributions(paper_sample, alpha, target, lam)
    name = paper_sample.target_names[target]
    q_mean, q_second = clipped_moments(alpha, name, lam)
    for contrib, truth, what in ((mean_i, q_mean, "clipped mean"), (second_i, q_second, "clipped second")):
        est, se = mean_and_se(contrib)
        assert_within_se(est, truth, se, what=what)
    # the merged, chunked, threaded core gives exactly the naive sums
    law = MixtureObjectives(paper_sample, EstimatorSpec("clipped_ips", lam), 5000).laws(alpha)[target]
    v = paper_sample.target_values[target]
    assert law.bias0[0] == pytest.approx(mean_i.mean() - v, abs=1e-12)
    assert law.scaled_var[0] == pytest.approx(second_i.mean() - mean_i.mean() ** 2, rel=1e-10)


@pytest.mark.parametrize("alpha", ALPHAS.tolist())
def test_ips_variance_matches_quadrature_where_finite(floor_sample, alpha):
    alpha = np.array(alpha)
    obj = MixtureObjectives(floor_sample, EstimatorSpec("ips"), 5000)
    for t, name in enumerate(floor_sample.target_names):
        mean_i, second_i = naive_contributions(floor_sample, alpha, t, np.inf)
        q_mean, q_second = clipped_moments(alpha, name, np.inf, floor=0.05)
        assert q_mean == pytest.approx(VALUES[name], abs=1e-8)  # IPS is unbiased when supported
        est, se = mean_and_se(second_i)
        assert_within_se(est, q_second, se, what=f"IPS second moment {name}")
        law = obj.laws(alpha)[t]
        assert law.bias0[0] == pytest.approx(0.0, abs=1e-12)
        assert law.scaled_var[0] == pytest.approx(second_i.mean() - mean_i.mean() ** 2, rel=1e-10)
        assert law.support[0] == pytest.approx(1.0, abs=1e-12)


def test_unsupported_mass_becomes_bias(paper_sample):
    """alpha1 = 0: nobody gets a coupon where x2, x3 < .5. IPS misses pi_e(1|x) mu there.

    By hand: P(cell) = 1/4, E[x2 + x3 | cell] = 1/2, pi_e1 plays the coupon there with 0.2, pi_e2 with 0.8,
    so bias = -1/4 * 1/2 * 0.2 = -0.025 and -0.1. Where x2, x3 >= .5 nobody logs "no coupon" either
    (mu = 0 there, so no bias), which pi_e1 plays with 0.2 and pi_e2 with 0.8: the unsupported probability
    mass is 1/4 * (0.2 + 0.2) = 0.1 and 1/4 * (0.8 + 0.8) = 0.4.
    """
    alpha = np.array([0.0, 0.5, 0.5])
    laws = MixtureObjectives(paper_sample, EstimatorSpec("ips"), 5000).laws(alpha)
    p = paper_sample.balanced(alpha)
    for t, (bias, mass) in enumerate([(-0.025, 0.1), (-0.1, 0.4)]):
        mean_i, _ = naive_contributions(paper_sample, alpha, t, np.inf)
        resid = mean_i - (paper_sample.target_probs[t] * paper_sample.mu).sum(axis=1)
        est, se = mean_and_se(resid)
        assert laws[t].bias0[0] == pytest.approx(est, abs=1e-12)
        assert_within_se(est, bias, se, what="bias from unsupported mass")
        unsupported_i = np.where(p > 0, 0.0, paper_sample.target_probs[t]).sum(axis=1)
        assert unsupported_i.mean() == pytest.approx(1 - laws[t].support[0], abs=1e-12)
        est, se = mean_and_se(unsupported_i)
        assert_within_se(est, mass, se, what="unsupported mass")


def test_snips_delta_method_reduces_to_known_forms(floor_sample):
    """SNIPS at full support: Var = E[w^2 (r - V)^2] / n, bias1 = (V E[w^2] - E[w^2 r]) / n."""
    alpha = np.array([0.5, 0.25, 0.25])
    law = MixtureObjectives(floor_sample, EstimatorSpec("snips"), 5000).laws(alpha)[0]
    p = floor_sample.balanced(alpha)
    pe, mu, m2 = floor_sample.target_probs[0], floor_sample.mu, floor_sample.m2
    w2 = pe**2 / p
    v_ips = (pe * mu).sum(axis=1).mean()
    assert law.bias0[0] == pytest.approx(v_ips - floor_sample.target_values[0], abs=1e-12)
    ew2, ew2r, ew2r2 = (w2.sum(1).mean(), (w2 * mu).sum(1).mean(), (w2 * m2).sum(1).mean())
    assert law.scaled_var[0] == pytest.approx(ew2r2 - 2 * v_ips * ew2r + v_ips**2 * ew2, rel=1e-10)
    assert law.bias1[0] == pytest.approx(v_ips * ew2 - ew2r, rel=1e-10)


def test_rmse_law_in_n_matches_direct_computation(floor_sample):
    spec = EstimatorSpec("clipped_ips", 5.0)
    small = MixtureObjectives(floor_sample, spec, 1_000)
    for n in (10_000, 1_000_000):
        np.testing.assert_allclose(small.rmse(ALPHAS, n=n), MixtureObjectives(floor_sample, spec, n).rmse(ALPHAS), rtol=1e-12)
    # and RMSE^2 - bias^2 scales exactly as 1/n
    law = small.laws(ALPHAS)[0]
    np.testing.assert_allclose((law.mse(1e3) - law.bias0**2) * 1e3, (law.mse(1e6) - law.bias0**2) * 1e6, rtol=1e-8)


@pytest.mark.parametrize("kind,clip", [("ips", np.inf), ("clipped_ips", 3.0), ("snips", np.inf)])
def test_merging_chunking_and_threads_do_not_change_results(paper_sample, kind, clip):
    spec = EstimatorSpec(kind, clip)
    a = ALPHAS
    base = MixtureObjectives(paper_sample, spec, 5000, chunk_rows=10**9, threads=1).rmse(a)
    for chunk, threads in [(257, 1), (1024, 2), (4096, 3)]:
        np.testing.assert_allclose(MixtureObjectives(paper_sample, spec, 5000, chunk_rows=chunk, threads=threads).rmse(a), base, rtol=1e-11)
    # a batch gives the same numbers as one mixture at a time
    obj = MixtureObjectives(paper_sample, spec, 5000)
    single = np.vstack([obj.rmse(alpha) for alpha in a])
    np.testing.assert_allclose(single, base, rtol=1e-11)


def test_merging_collapses_deterministic_rows(paper_sample):
    """pi2, pi3 and the targets take few values: dropping pi1 leaves at most 4 cells x 2 actions rows."""
    rows = RowTerms.build(paper_sample.comp_probs[1:], paper_sample.target_probs, paper_sample.mu, paper_sample.m2)
    assert rows.n_rows <= 8
    assert rows.w.sum() == pytest.approx(2.0)  # two actions per customer, both played by the targets
    full = RowTerms.build(paper_sample.comp_probs, paper_sample.target_probs, paper_sample.mu, paper_sample.m2)
    a = np.array([[0.5, 0.5]])
    np.testing.assert_allclose(
        error_laws(rows, a, EstimatorSpec("ips"))[0].scaled_var,
        error_laws(full, np.array([[0.0, 0.5, 0.5]]), EstimatorSpec("ips"))[0].scaled_var,
        rtol=1e-10,
    )


def test_results_are_deterministic(paper):
    from couponmix.ope.objectives import EvaluationSample

    a = EvaluationSample.from_scenario(paper, 5000, seed=3)
    b = EvaluationSample.from_scenario(paper, 5000, seed=3)
    c = EvaluationSample.from_scenario(paper, 5000, seed=4)
    spec = EstimatorSpec("clipped_ips", 10.0)
    ra = MixtureObjectives(a, spec, 100).rmse(ALPHAS)
    assert np.array_equal(ra, MixtureObjectives(b, spec, 100).rmse(ALPHAS))
    assert not np.array_equal(ra, MixtureObjectives(c, spec, 100).rmse(ALPHAS))


def test_merge_rows_finds_numpys_distinct_rows():
    from couponmix.ope.objectives import merge_rows

    rng = np.random.default_rng(0)
    a = np.round(rng.random((5000, 4)), 1)  # many duplicate rows
    keys, inverse = merge_rows(a)
    expected = np.unique(a, axis=0)
    assert len(keys) == len(expected)
    assert np.array_equal(np.unique(keys, axis=0), expected)
    assert np.array_equal(keys[inverse], a)
    # the same call gives the same order (determinism), and nearly distinct rows are left alone
    assert np.array_equal(merge_rows(a)[1], inverse)
    b = rng.random((5000, 4))
    same, none = merge_rows(b, min_gain=0.2)
    assert none is None and same is b


def test_merge_rows_is_exact_under_hash_collisions(monkeypatch):
    """A collision may leave equal rows apart, but never merges different rows."""
    from couponmix.ope import objectives

    monkeypatch.setattr(objectives, "row_hash", lambda a: np.zeros(len(a), dtype=np.uint64))
    a = np.round(np.random.default_rng(1).random((3000, 3)), 1)
    keys, inverse = objectives.merge_rows(a)
    assert np.array_equal(keys[inverse], a)
    assert len(keys) >= len(np.unique(a, axis=0))

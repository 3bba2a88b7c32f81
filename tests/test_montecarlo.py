"""Analytic RMSE against Monte Carlo with obp's estimators (method.md: always validate)."""

import numpy as np
import pytest

from couponmix.ope.estimators import EstimatorSpec
from couponmix.ope.montecarlo import monte_carlo

from .conftest import mc_reps
from .paper_truth import VALUES

pytestmark = pytest.mark.montecarlo

CASES = [
    ("paper", EstimatorSpec("clipped_ips", 10.0), [0.3, 0.3, 0.4], 2000),
    ("paper", EstimatorSpec("clipped_ips", 3.0), [0.6, 0.2, 0.2], 1000),
    ("paper_floor", EstimatorSpec("ips"), [0.3, 0.3, 0.4], 2000),
    ("paper_floor", EstimatorSpec("snips"), [0.5, 0.1, 0.4], 2000),
]


@pytest.mark.parametrize("scenario,spec,alpha,n", CASES, ids=[f"{c[0]}-{c[1].kind}-{c[3]}" for c in CASES])
def test_analytic_rmse_matches_obp_monte_carlo(scenario, spec, alpha, n):
    from simulators import get_scenario

    reps = mc_reps(400, 4000)
    res = monte_carlo(get_scenario(scenario), alpha, [spec], n, reps, seed=21, eval_size=200_000)[spec.name]
    for name, r in res.items():
        assert r.true_value == pytest.approx(VALUES[name], abs=0.002)
        # MSE within 3 standard errors of the Monte Carlo estimate
        assert abs(r.mc_mse - r.analytic_rmse**2) <= 3 * r.mc_mse_se, (name, r)
        # the mean estimate sits where the analytic bias says (standard error of a mean of R estimates)
        se_mean = r.mc_rmse / np.sqrt(reps)
        assert abs(r.bias - r.analytic_bias) <= 4 * se_mean, (name, r)


def test_clipping_bias_is_real_and_measured(paper):
    """With a tight clip the bias is large against the noise, and Monte Carlo sees it too."""
    reps = mc_reps(200, 2000)
    spec = EstimatorSpec("clipped_ips", 1.5)
    res = monte_carlo(paper, [0.8, 0.1, 0.1], [spec], 5000, reps, seed=3, eval_size=200_000)[spec.name]
    r = res["pi_e2"]
    se_mean = r.mc_rmse / np.sqrt(reps)
    assert abs(r.analytic_bias) > 10 * se_mean
    assert abs(r.bias - r.analytic_bias) <= 4 * se_mean


def assert_matches_analytic(name, target, r, reps):
    """MSE within 3 standard errors (Monte Carlo and, for the pilot-model approximation of DR with a fitted
    model, the approximation's own), mean estimate within 4. Naive DR with a fitted model has no formula."""
    if name == "dr_fitted[naive]":
        assert r.analytic_rmse is None and r.z_score is None and np.isfinite(r.mc_rmse), (name, target, r)
        return
    exact = not name.startswith("dr_fitted")
    assert (r.analytic_mse_se == 0) == exact, (name, r.analytic_mse_se)
    assert abs(r.mc_mse - r.analytic_rmse**2) <= 3 * np.hypot(r.mc_mse_se, r.analytic_mse_se), (name, target, r)
    se_mean = np.hypot(r.mc_rmse / np.sqrt(reps), r.analytic_bias_se)
    assert abs(r.bias - r.analytic_bias) <= 4 * se_mean, (name, target, r)


SUITE_CASES = [
    ("paper_floor", [0.4, 0.3, 0.3], 2000, None),
    ("paper", [0.5, 0.25, 0.25], 2000, None),
]


@pytest.mark.parametrize("scenario,alpha,n,config", SUITE_CASES, ids=[c[0] for c in SUITE_CASES])
def test_every_estimator_in_the_suite_matches_monte_carlo(scenario, alpha, n, config):
    """Plain (exact) and self-normalised (delta method) estimators, balanced and naive, DR with a fixed q and
    DR with a LightGBM model cross-fitted on each log (pilot-model approximation)."""
    from couponmix.ope.estimators import suite
    from simulators import get_scenario

    sc = get_scenario(scenario, config=config)
    specs = [s for s in suite(10.0) if scenario != "paper" or not s.has_unbounded_weights]
    reps = mc_reps(300, 3000)
    res = monte_carlo(sc, alpha, specs, n, reps, seed=31, eval_size=200_000, workers=1)
    assert set(res) == {s.name for s in specs}
    for name, per_target in res.items():
        for t, r in per_target.items():
            assert_matches_analytic(name, t, r, reps)


def test_market_dr_with_the_revenue_model_matches_monte_carlo():
    from pathlib import Path

    from simulators import get_scenario

    sc = get_scenario("market", config=str(Path(__file__).with_name("data") / "market_small.yaml"))
    from couponmix.ope.estimators import suite

    specs = suite(5.0)  # every estimator, balanced and naive, on the same logs
    reps = mc_reps(120, 1000)
    res = monte_carlo(sc, [0.7, 0.3], specs, 3000, reps, seed=5, eval_size=100_000, truth_size=500_000, workers=1)
    for name, per_target in res.items():
        for t, r in per_target.items():
            assert_matches_analytic(name, t, r, reps)
    # the revenue model removes part of the variance (the reward noise, which no model removes, dominates)
    for t in res["ips"]:
        assert res["dr"][t].analytic_rmse < res["ips"][t].analytic_rmse


@pytest.mark.parametrize("kind", ["ips", "snips", "dr"])
def test_interval_coverage_is_95_percent(paper_floor, kind):
    from couponmix.ope.estimators import EstimatorSpec

    reps = mc_reps(1500, 6000)
    res = monte_carlo(
        paper_floor, [0.4, 0.3, 0.3], [EstimatorSpec(kind)], 2000, reps, seed=41, eval_size=50_000, truth_size=2_000_000, workers=1
    )[kind]
    for t, r in res.items():
        assert 0.93 <= r.coverage <= 0.97, (t, r.coverage)


def test_replications_do_not_depend_on_workers(paper_floor):
    from couponmix.ope.estimators import EstimatorSpec

    kw = dict(eval_size=5000, truth_size=100_000)
    one = monte_carlo(paper_floor, [0.4, 0.3, 0.3], [EstimatorSpec("dr")], 500, 6, seed=2, workers=1, **kw)
    two = monte_carlo(paper_floor, [0.4, 0.3, 0.3], [EstimatorSpec("dr")], 500, 6, seed=2, workers=3, **kw)
    assert one == two

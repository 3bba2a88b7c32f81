"""Analytic RMSE against Monte Carlo with obp's estimators (method.md: always validate)."""
import numpy as np
import pytest

from couponmix.estimators import EstimatorSpec
from couponmix.montecarlo import monte_carlo

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
    res = monte_carlo(get_scenario(scenario), alpha, spec, n, reps, seed=21, eval_size=200_000)
    for name, r in res.items():
        assert r.true_value == pytest.approx(VALUES[name], abs=0.002)
        # MSE within 3 standard errors of the Monte Carlo estimate
        assert abs(r.mc_mse - r.analytic_rmse ** 2) <= 3 * r.mc_mse_se, (name, r)
        # the mean estimate sits where the analytic bias says (standard error of a mean of R estimates)
        se_mean = r.mc_rmse / np.sqrt(reps)
        assert abs(r.bias - r.analytic_bias) <= 4 * se_mean, (name, r)


def test_clipping_bias_is_real_and_measured(paper):
    """With a tight clip the bias is large against the noise, and Monte Carlo sees it too."""
    reps = mc_reps(200, 2000)
    res = monte_carlo(paper, [0.8, 0.1, 0.1], EstimatorSpec("clipped_ips", 1.5), 5000, reps,
                      seed=3, eval_size=200_000)
    r = res["pi_e2"]
    se_mean = r.mc_rmse / np.sqrt(reps)
    assert abs(r.analytic_bias) > 10 * se_mean
    assert abs(r.bias - r.analytic_bias) <= 4 * se_mean

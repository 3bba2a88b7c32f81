"""The planner and the sample-size law, checked against the exact law and against Monte Carlo."""
import json
from pathlib import Path

import numpy as np
import pytest

from couponmix.cli import main
from couponmix.estimators import EstimatorSpec
from couponmix.montecarlo import monte_carlo
from couponmix.objectives import EvaluationSample, MixtureObjectives
from couponmix.planner import alphas, critical_rate, exploration_line, log_size_needed
from simulators import get_scenario

from .conftest import mc_reps

SMALL = str(Path(__file__).with_name("data") / "market_small.yaml")


@pytest.fixture(scope="module")
def market_objectives():
    sc = get_scenario("market", config=SMALL)
    return sc, MixtureObjectives(EvaluationSample.from_scenario(sc, 30_000, seed=0), EstimatorSpec("ips"), 50_000)


def worst_rmse(obj, eps, n):
    i, j = exploration_line(obj)
    return obj.rmse(alphas([eps], len(obj.component_names), i, j), n=n).max()


def test_critical_rate_is_the_least_rate_meeting_the_tolerance(market_objectives):
    _, obj = market_objectives
    plan = critical_rate(obj, 0.5, 50_000)
    eps = plan.critical_exploration_rate
    assert 0 < eps < 1
    assert worst_rmse(obj, eps, 50_000) <= 0.5 + 1e-9
    assert worst_rmse(obj, eps * 0.99, 50_000) > 0.5
    v = obj.component_values
    assert plan.revenue_cost == pytest.approx(eps * (v[0] - v[1]))
    assert plan.revenue_cost_pct == pytest.approx(100 * plan.revenue_cost / v[0])


def test_log_size_needed_inverts_the_law(market_objectives):
    _, obj = market_objectives
    plan = log_size_needed(obj, 0.1, 0.5)
    n = plan.log_size_needed
    assert worst_rmse(obj, 0.1, n) <= 0.5 < worst_rmse(obj, 0.1, n - 1)
    # consistency of the two directions: at the critical rate for n, n customers are what is needed
    crit = critical_rate(obj, 0.5, int(n)).critical_exploration_rate
    assert crit == pytest.approx(0.1, rel=1e-3)


def test_no_exploration_is_never_enough(market_objectives):
    _, obj = market_objectives
    plan = log_size_needed(obj, 0.0, 0.5)
    assert plan.log_size_needed == float("inf") and "never logged" in plan.note
    assert plan.to_dict()["log_size_needed"] is None


def test_unreachable_tolerance(market_objectives):
    _, obj = market_objectives
    plan = critical_rate(obj, 1e-4, 1000)
    assert plan.critical_exploration_rate is None and "no exploration rate reaches" in plan.note


@pytest.mark.montecarlo
def test_planned_rate_verified_by_monte_carlo(market_objectives):
    sc, obj = market_objectives
    n, tol = 3000, 1.5
    eps = critical_rate(obj, tol, n).critical_exploration_rate
    reps = mc_reps(150, 1000)
    res = monte_carlo(sc, [1 - eps, eps], EstimatorSpec("ips"), n, reps, seed=0, eval_size=30_000,
                      truth_size=500_000, workers=2)
    worst = max(res.values(), key=lambda r: r.analytic_rmse)
    assert worst.analytic_rmse == pytest.approx(tol, rel=1e-6)
    assert abs(worst.mc_mse - tol ** 2) <= 3 * worst.mc_mse_se


@pytest.mark.montecarlo
def test_sample_size_law_predicts_large_n_from_small(paper_floor):
    """RMSE(n) from one computation at n = 10k, against Monte Carlo at n = 1k ... 1M."""
    spec = EstimatorSpec("clipped_ips", 5.0)    # with a bias, so both terms of the law matter
    alpha = [0.4, 0.3, 0.3]
    sample = EvaluationSample.from_scenario(paper_floor, 200_000, seed=1)
    law_obj = MixtureObjectives(sample, spec, 10_000)
    for n, reps in ((1_000, mc_reps(400, 2000)), (100_000, mc_reps(80, 400)), (1_000_000, mc_reps(30, 200))):
        predicted = law_obj.rmse(np.array([alpha]), n=n)[0]
        res = monte_carlo(paper_floor, alpha, spec, n, reps, seed=n, eval_size=200_000, workers=2)
        for t, r in zip(sample.target_names, predicted):
            assert abs(res[t].mc_mse - r ** 2) <= 3 * res[t].mc_mse_se, (n, t, res[t].mc_mse, r ** 2)


def test_plan_cli_json(capsys):
    assert main(["plan", "market", "--config", SMALL, "--tol", "0.5", "--n", "50000", "--eval-size", "30000",
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert set(d) == {"critical_exploration_rate", "revenue_cost", "revenue_cost_pct", "log_size_needed"}
    assert 0 < d["critical_exploration_rate"] < 1
    assert main(["plan", "market", "--config", SMALL, "--tol", "0.5", "--eps", "0.1", "--eval-size", "30000",
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert set(d) == {"log_size_needed", "revenue_cost", "revenue_cost_pct"} and d["log_size_needed"] > 0


def test_plan_cli_errors(capsys):
    assert main(["plan", "paper", "--tol", "0.1", "--eval-size", "5000"]) == 2
    assert "needs a component named 'explore'" in capsys.readouterr().err
    assert main(["plan", "market", "--config", SMALL, "--tol", "0.1", "--n", "10", "--eps", "0.1"]) == 2
    assert "not both" in capsys.readouterr().err

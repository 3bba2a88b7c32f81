"""The planner over the simplex and the sample-size law, checked by brute force, against the exact law and
against Monte Carlo."""

import json
from pathlib import Path

import numpy as np
import pytest

from couponmix.cli import main
from couponmix.decide.planner import log_size_at, plan_mixture
from couponmix.ope.criterion import Criterion
from couponmix.ope.estimators import EstimatorSpec, exact_suite
from couponmix.ope.montecarlo import monte_carlo
from couponmix.ope.objectives import EvaluationSample, MixtureObjectives
from simulators import get_scenario

from .conftest import mc_reps

SMALL = str(Path(__file__).with_name("data") / "market_small.yaml")
LINE = np.unique(np.concatenate([np.linspace(0, 1, 1001), np.geomspace(1e-5, 1e-2, 200)]))


@pytest.fixture(scope="module")
def market():
    sc = get_scenario("market", config=SMALL)
    return sc, EvaluationSample.from_scenario(sc, 30_000, seed=0)


def line(eps):
    eps = np.atleast_1d(eps)
    return np.column_stack([1 - eps, eps])  # market components: exploit, explore


def worst(obj, alphas, n):
    return np.column_stack([law.rmse(n) for law in obj.laws(alphas)]).max(axis=1)


def assert_least_cost(obj, plan, alphas, n, tol):
    """The plan meets tol, and no mixture among ``alphas`` with more revenue does (brute force)."""
    a = np.array(list(plan.alpha.values()))
    assert plan.reachable and worst(obj, a[None], n)[0] <= tol + 1e-9
    w, r = worst(obj, alphas, n), obj.revenue(alphas)
    better = (w <= tol) & (r > plan.revenue + 1e-9)
    assert not better.any(), alphas[better][:3]


def test_plan_is_the_least_cost_mixture_meeting_the_tolerance(market):
    _, sample = market
    obj = Criterion(sample, [EstimatorSpec("ips")], 50_000)
    plan = plan_mixture(obj, 0.5)
    eps = plan.exploration_rate
    assert 0 < eps < 1 and plan.alpha["explore"] == pytest.approx(eps)
    assert_least_cost(obj, plan, line(LINE), 50_000, 0.5)
    assert worst(obj, line(eps * 0.99), 50_000)[0] > 0.5  # the boundary, not a point inside
    v = obj.component_values
    assert plan.revenue_cost == pytest.approx(eps * (v[0] - v[1]))
    assert plan.revenue_cost_pct == pytest.approx(100 * plan.revenue_cost / v[0])


def test_non_monotone_error_naive_dr(market):
    """Naive DR's error is not monotone in exploration (its model-based part rests on the model where the log
    is thin, its weighted part grows with the weights): with a tolerance that neither end of the line meets,
    the feasible mixtures are an interval inside it, which no bisection from an end can find; the plan is the
    least-cost point of that interval, at its lower boundary."""
    _, sample = market
    obj = Criterion(sample, [EstimatorSpec("dr", weights="naive")], 50_000, error="simulator")
    w = worst(obj, line(LINE), 50_000)
    tol = float(w.min() + 0.5 * (min(w[0], w[-1]) - w.min()))
    assert w[0] > tol and w[-1] > tol and w.min() < tol, "the test case must be non-monotone"
    plan = plan_mixture(obj, tol)
    assert plan.reachable and 0 < plan.exploration_rate < 1
    assert_least_cost(obj, plan, line(LINE), 50_000, tol)
    assert worst(obj, line(plan.exploration_rate * 0.999), 50_000)[0] > tol  # the boundary, not a point inside


def test_log_size_at_inverts_the_law(market):
    _, sample = market
    obj = Criterion(sample, exact_suite(), 50_000)
    res = log_size_at(obj, [0.9, 0.1], 0.5)
    n = res.log_size_needed
    assert worst(obj, line(0.1), n)[0] <= 0.5 < worst(obj, line(0.1), n - 1)[0]
    # consistency of the two directions: planning at that log size finds about this rate
    plan = plan_mixture(obj, 0.5, int(n))
    assert plan.exploration_rate == pytest.approx(0.1, rel=2e-3)


def test_no_exploration_with_the_model_bound_is_not_enough(market):
    """Without exploration every estimator leans on the revenue model for the unlogged actions: the robust
    error keeps a bias bound that no log size removes."""
    _, sample = market
    obj = Criterion(sample, exact_suite(), 50_000)
    res = log_size_at(obj, [1.0, 0.0], 0.5)
    assert res.log_size_needed is None and "however many customers" in res.note


def test_unreachable_tolerance(market):
    _, sample = market
    obj = Criterion(sample, exact_suite(), 1000)
    plan = plan_mixture(obj, 1e-4)
    assert not plan.reachable and "no mixture reaches" in plan.note
    assert plan.worst_error <= worst(obj, line(LINE[::8]), 1000).min() + 1e-9


def test_plan_on_paper_without_an_explore_component(paper_floor):
    sample = EvaluationSample.from_scenario(paper_floor, 10_000, seed=0)
    obj = Criterion(sample, exact_suite(), 10_000)
    plan = plan_mixture(obj, 0.03)
    grid = np.array([(i, j, 40 - i - j) for i in range(41) for j in range(41 - i)]) / 40
    assert_least_cost(obj, plan, grid, 10_000, 0.03)
    assert set(plan.targets) == {"pi_e1", "pi_e2"}


@pytest.mark.montecarlo
def test_planned_mixture_verified_by_monte_carlo(market):
    sc, sample = market
    n, tol = 3000, 1.5
    obj = Criterion(sample, [EstimatorSpec("ips")], n)
    plan = plan_mixture(obj, tol)
    reps = mc_reps(150, 1000)
    res = monte_carlo(
        sc, list(plan.alpha.values()), [EstimatorSpec("ips")], n, reps, seed=0, eval_size=30_000, truth_size=500_000, workers=1
    )["ips"]
    worst_t = max(res.values(), key=lambda r: r.analytic_rmse)
    assert worst_t.analytic_rmse == pytest.approx(tol, rel=1e-5)
    assert abs(worst_t.mc_mse - tol**2) <= 3 * worst_t.mc_mse_se


@pytest.mark.montecarlo
def test_sample_size_law_predicts_large_n_from_small(paper_floor):
    """RMSE(n) from one computation at n = 10k, against Monte Carlo at n = 1k ... 1M."""
    spec = EstimatorSpec("clipped_ips", 5.0)  # with a bias, so both terms of the law matter
    alpha = [0.4, 0.3, 0.3]
    sample = EvaluationSample.from_scenario(paper_floor, 200_000, seed=1)
    law_obj = MixtureObjectives(sample, spec, 10_000)
    for n, reps in ((1_000, mc_reps(400, 2000)), (100_000, mc_reps(80, 400)), (1_000_000, mc_reps(30, 200))):
        predicted = law_obj.rmse(np.array([alpha]), n=n)[0]
        res = monte_carlo(paper_floor, alpha, [spec], n, reps, seed=n, eval_size=200_000, workers=1)[spec.name]
        for t, r in zip(sample.target_names, predicted):
            assert abs(res[t].mc_mse - r**2) <= 3 * res[t].mc_mse_se, (n, t, res[t].mc_mse, r**2)


def test_plan_cli_json(capsys):
    assert main(["plan", "market", "--config", SMALL, "--tol", "0.5", "--n", "50000", "--eval-size", "10000", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["reachable"] and 0 < d["exploration_rate"] < 1 and set(d["alpha"]) == {"exploit", "explore"}
    assert all(t["rmse"] <= 0.5 + 1e-9 for t in d["targets"].values())
    assert main(["plan", "market", "--config", SMALL, "--tol", "0.5", "--eps", "0.1", "--eval-size", "10000", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["log_size_needed"] > 0 and d["alpha"]["explore"] == pytest.approx(0.1)
    assert main(["plan", "paper", "--tol", "0.05", "--eval-size", "5000"]) == 0
    assert "least-cost mixture" in capsys.readouterr().out


def test_plan_cli_errors(capsys):
    assert main(["plan", "paper", "--tol", "0.1", "--eps", "0.1", "--eval-size", "5000"]) == 2
    assert "needs a component named 'explore'" in capsys.readouterr().err
    assert main(["plan", "market", "--config", SMALL, "--tol", "0.1", "--n", "10", "--eps", "0.1"]) == 2
    assert "not both" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("study", sorted(p.name for p in (Path(__file__).parents[1] / "reports" / "examples" / "studies").glob("*.yaml")))
def test_plan_works_on_every_example_study(study, capsys):
    path = Path(__file__).parents[1] / "reports" / "examples" / "studies" / study
    assert main(["plan", "--config", str(path), "--tol", "0.5", "--eval-size", "5000", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["scenario"] == "market" and set(d["targets"])
    if d["reachable"]:
        assert d["worst_error"] <= 0.5 + 1e-9
        # against no exploration; negative where exploring earns more (a softmax explore beats a capped exploit)
        assert d["revenue_cost"] == pytest.approx(d["baseline_revenue"] - d["revenue"], abs=1e-12)
    else:
        assert "no mixture reaches" in d["note"] and d["worst_error"] > 0.5


class _Bowl:
    """A three-component stand-in for the criterion: revenue linear in alpha, one target whose error is a
    smooth bowl; counts the calls and mixtures it is asked for."""

    component_names = ("a", "b", "c")
    target_names = ("t",)

    def __init__(self):
        self.calls, self.mixtures = 0, 0

    def revenue(self, alphas):
        return np.asarray(alphas) @ np.array([3.0, 2.0, 1.0])

    def laws(self, alphas):
        alphas = np.asarray(alphas)
        self.calls += 1
        self.mixtures += len(alphas)
        err = 0.2 + np.sqrt(((alphas - np.array([0.2, 0.5, 0.3])) ** 2).sum(axis=1))

        class Law:
            def rmse(self, n):
                return err

        return [Law()]


def _one_at_a_time(obj, alpha, floors, n, tol, min_step=1e-7, max_iter=200):
    """The local search as it was written before its steps were batched: one step per call, halved on failure."""
    from couponmix.decide.planner import _moves, _worst

    step, it = 0.05, 0
    current = float(obj.revenue(alpha[None])[0])
    while step >= min_step and it < max_iter:
        it += 1
        moves = _moves(alpha, floors, step)
        w = _worst(obj, moves, n)
        gain = np.where(w <= tol, obj.revenue(moves), -np.inf)
        j = int(np.argmax(gain))
        if gain[j] > current + 1e-15:
            alpha, current = moves[j], float(gain[j])
        else:
            step /= 2
    return alpha


def test_batched_local_search_takes_the_one_at_a_time_path_in_fewer_calls():
    from couponmix.decide.planner import _refine

    floors, start = np.zeros(3), np.array([0.2, 0.5, 0.3])
    slow, fast = _Bowl(), _Bowl()
    expect = _one_at_a_time(slow, start, floors, 1, 0.45)
    got, evaluated = _refine(fast, start, floors, 1, tol=0.45)
    np.testing.assert_array_equal(got, expect)
    assert fast.mixtures == evaluated and fast.calls < slow.calls / 3


def test_batched_path_search_finds_the_boundary():
    from couponmix.decide.planner import _furthest_feasible

    calls = []

    def feasible(ts):
        calls.append(len(ts))
        return ts <= 0.3141592653589793

    t = _furthest_feasible(feasible)
    assert 0.3141592653589793 - 16.0**-10 <= t <= 0.3141592653589793 and len(calls) == 11
    assert _furthest_feasible(lambda ts: np.ones(len(ts), bool)) == 1.0
    assert _furthest_feasible(lambda ts: ts <= 0.0) == 0.0  # only the start is feasible

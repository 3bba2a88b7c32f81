"""NSGA-II front: feasible, non-dominated, deterministic; decision rules."""

import numpy as np
import pytest

from couponmix.decide.optimize import knee_index, nondominated_mask, pareto_front, recommend
from couponmix.ope.estimators import EstimatorSpec
from couponmix.ope.objectives import EvaluationSample, MixtureObjectives

FLOOR = 0.01


@pytest.fixture(scope="module")
def objectives(paper):
    sample = EvaluationSample.from_scenario(paper, 20_000, seed=5)
    return MixtureObjectives(sample, EstimatorSpec("clipped_ips", 10.0), 10_000)


@pytest.fixture(scope="module")
def front(objectives):
    return pareto_front(objectives, FLOOR, pop_size=40, generations=40, seed=1)


def test_every_front_point_is_feasible(front):
    assert len(front) >= 10
    assert np.all(front.alphas >= FLOOR - 1e-12)
    np.testing.assert_allclose(front.alphas.sum(axis=1), 1.0, atol=1e-12)


def test_front_is_nondominated_and_sorted(front):
    assert np.all(np.diff(front.revenue) > 0)
    assert np.all(np.diff(front.rmse) > 0)  # more revenue must cost precision on a front


def test_front_values_are_the_objectives(front, objectives):
    rev, agg, per = objectives.evaluate(front.alphas)
    np.testing.assert_allclose(front.revenue, rev)
    np.testing.assert_allclose(front.rmse, agg)
    np.testing.assert_allclose(front.rmse_per_target, per)
    np.testing.assert_allclose(agg, per.max(axis=1))


def test_random_mixtures_do_not_beat_the_front(front, objectives):
    rng = np.random.default_rng(0)
    alphas = FLOOR + (1 - 3 * FLOOR) * rng.dirichlet(np.ones(3), 2000)
    rev, agg, _ = objectives.evaluate(alphas)
    # no random mixture is better on both objectives by more than 1% of each range
    tol_r, tol_e = 0.01 * np.ptp(front.revenue), 0.01 * np.ptp(front.rmse)
    for r, e in zip(rev, agg):
        assert not np.any((r > front.revenue + tol_r) & (e < front.rmse - tol_e))


def test_same_seed_same_front(objectives, front):
    again = pareto_front(objectives, FLOOR, pop_size=40, generations=40, seed=1)
    assert np.array_equal(again.alphas, front.alphas)


def test_nondominated_mask():
    rev = np.array([1.0, 2.0, 2.0, 3.0, 0.5])
    err = np.array([1.0, 2.0, 3.0, 2.5, 1.5])
    assert nondominated_mask(rev, err).tolist() == [True, True, False, True, False]


def test_knee_of_an_l_shaped_front():
    rev = np.array([0.0, 0.9, 0.95, 1.0])
    err = np.array([0.0, 0.1, 0.5, 1.0])
    assert knee_index(rev, err) == 1


def test_max_rmse_rule(front):
    tol = float(np.median(front.rmse))
    rec = recommend(front, max_rmse=tol)
    assert rec.meets_max_rmse and front.rmse[rec.index] <= tol
    assert front.revenue[rec.index] == front.revenue[front.rmse <= tol].max()
    impossible = recommend(front, max_rmse=front.rmse.min() / 2)
    assert impossible.meets_max_rmse is False and impossible.index == int(np.argmin(front.rmse))
    assert "no mixture reaches" in impossible.note
    knee = recommend(front)
    assert knee.rule == "knee" and 0 < knee.index < len(front) - 1

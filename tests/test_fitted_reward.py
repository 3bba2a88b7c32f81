"""DR with a reward model fitted on the log (obp's RegressionModel, LightGBM, cross-fitted)."""

import numpy as np
import pytest

from couponmix.dataset.logs import simulate_log
from couponmix.errors import CouponmixError
from couponmix.ope.estimators import EstimatorSpec, parse_list, suite
from couponmix.ope.fitted_reward import N_FOLDS, PILOT_MAX, FittedModelObjectives, cross_fitted, pilot_samples, pilot_size
from couponmix.ope.montecarlo import interval
from couponmix.ope.objectives import EvaluationSample, MixtureObjectives
from couponmix.policy.mixture import Mixture

ALPHA = [0.4, 0.3, 0.3]


@pytest.fixture(scope="module")
def small_sample(paper_floor):
    return EvaluationSample.from_scenario(paper_floor, 5000, seed=4)


@pytest.fixture(scope="module")
def log(paper_floor):
    return simulate_log(paper_floor, Mixture(paper_floor.components(), ALPHA), 1500, seed=8, replication=0)


def test_predictions_are_out_of_fold_and_reproducible(log):
    q = cross_fitted(log, seed=3, threads=1)
    assert q.shape == (1500, 2) and np.isfinite(q).all()
    assert np.array_equal(q, cross_fitted(log, seed=3, threads=1))
    # a customer's prediction comes from models that never saw its reward: change that reward wildly and
    # its own prediction stays the same, while the other folds' models (trained on it) move
    changed = {**log, "reward": log["reward"].copy()}
    changed["reward"][0] += 1e4
    q2 = cross_fitted(changed, seed=3, threads=1)
    assert np.array_equal(q2[0], q[0])
    assert not np.array_equal(q2, q)


def test_fitted_model_tracks_the_truth(log, paper_floor):
    """Out-of-fold predictions are closer to mu than the per-action mean reward is (about half its squared
    error at 1,500 customers; an overfitting model did worse than the means)."""
    q = cross_fitted(log, seed=3, threads=1)
    mu = paper_floor.mu(log["context"])
    crude = np.array([log["reward"][log["action"] == a].mean() for a in range(mu.shape[1])])
    assert np.mean((q - mu) ** 2) < 0.75 * np.mean((crude[None, :] - mu) ** 2)


def test_obp_estimate_equals_the_formula_with_the_fitted_model(log, paper_floor):
    q = cross_fitted(log, seed=3, threads=1)
    pe = paper_floor.targets()["pi_e1"](log["context"])
    for weights in ("balanced", "naive"):
        spec = EstimatorSpec("dr_fitted", weights=weights)
        own, half = interval(spec, log, pe, q)
        assert spec.estimate(log, pe, q) == pytest.approx(own, rel=1e-10)
        assert half > 0


def test_pilot_size_is_one_folds_training_share_capped():
    assert pilot_size(3000) == 3000 * (N_FOLDS - 1) // N_FOLDS
    assert pilot_size(10**9) == PILOT_MAX
    assert pilot_size(1) == 10 * N_FOLDS


def test_fitted_dr_needs_a_fitted_sample_and_naive_has_no_formula(small_sample, paper_floor):
    with pytest.raises(CouponmixError, match="fitted on the log"):
        MixtureObjectives(small_sample, EstimatorSpec("dr_fitted"), 1000)
    with pytest.raises(CouponmixError, match="no error formula"):
        MixtureObjectives(small_sample, EstimatorSpec("dr_fitted", weights="naive"), 1000)
    pilots = pilot_samples(small_sample, paper_floor, Mixture(paper_floor.components(), ALPHA), 1000, seed=1, pilots=2, threads=1)
    with pytest.raises(CouponmixError, match="fixed before logging"):
        MixtureObjectives(pilots[0], EstimatorSpec("dr"), 1000)
    # IPS ignores q, so any sample serves
    assert MixtureObjectives(pilots[0], EstimatorSpec("ips"), 1000).rmse(ALPHA).shape == (1, 2)


def test_pilot_approximation_averages_the_pilots(small_sample, paper_floor):
    mixture = Mixture(paper_floor.components(), ALPHA)
    pilots = pilot_samples(small_sample, paper_floor, mixture, 1000, seed=1, pilots=3, threads=1)
    assert not np.array_equal(pilots[0].q, pilots[1].q)  # independent pilot logs
    spec = EstimatorSpec("dr_fitted")
    obj = FittedModelObjectives(pilots, spec, 1000)
    each = np.array([MixtureObjectives(p, spec, 1000).laws(ALPHA)[0].mse(1000)[0] for p in pilots])
    d = obj.describe(ALPHA)["pi_e1"]
    assert d.rmse**2 == pytest.approx(each.mean(), rel=1e-12)
    assert d.mse_approximation_se == pytest.approx(each.std(ddof=1) / np.sqrt(3), rel=1e-12)
    again = pilot_samples(small_sample, paper_floor, mixture, 1000, seed=1, pilots=3, threads=1)
    assert all(np.array_equal(a.q, b.q) for a, b in zip(pilots, again))


def test_the_suite_names_and_parses_fitted_dr():
    names = [s.name for s in suite()]
    assert "dr_fitted" in names and "dr_fitted[naive]" in names
    spec = parse_list("dr_fitted[naive]")[0]
    assert spec.fits_reward_model and not spec.has_error_formula
    assert "RegressionModel" in spec.obp_name() and "Naive" in spec.obp_name()


def test_a_study_refuses_to_optimise_for_fitted_dr():
    from couponmix.studies.study import run_study

    with pytest.raises(CouponmixError, match="cannot be optimised over mixtures"):
        run_study("paper_floor", estimator=EstimatorSpec("dr_fitted"), pop_size=8, generations=2, eval_size=2000)


def test_a_clip_reaches_every_estimator_that_takes_one():
    """--clip 5 with --estimator dr clips DR's weights (its help says so); kinds without a clip ignore it."""
    by_kind = {s.kind: s.clip for s in parse_list("ips,clipped_ips,dr,switch_dr,dr_fitted", 5.0)}
    assert by_kind == {"ips": np.inf, "clipped_ips": 5.0, "dr": 5.0, "switch_dr": 5.0, "dr_fitted": 5.0}
    assert {s.kind: s.clip for s in parse_list("dr,clipped_ips")} == {"dr": np.inf, "clipped_ips": 10.0}

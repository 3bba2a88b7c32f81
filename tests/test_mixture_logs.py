"""Mixture draws and simulated logs: frequencies, propensities, obp compatibility, determinism."""

import numpy as np
import pytest

from couponmix.dataset.logs import simulate_log
from couponmix.infra.seeding import BLOCK
from couponmix.policy.mixture import Mixture, sample_actions

ALPHA = [0.2, 0.3, 0.5]


def test_sample_actions_frequencies():
    probs = np.tile([0.1, 0.0, 0.6, 0.3], (200_000, 1))
    a = sample_actions(probs, np.random.default_rng(0).random(len(probs)))
    freq = np.bincount(a, minlength=4) / len(a)
    se = np.sqrt(probs[0] * (1 - probs[0]) / len(a))
    assert freq[1] == 0
    assert np.all(np.abs(freq - probs[0]) <= 4 * se + 1e-12)


def test_log_component_and_action_frequencies(paper):
    mix = Mixture(paper.components(), ALPHA)
    n = 150_000
    log = simulate_log(paper, mix, n, seed=1)
    freq = np.bincount(log["stratum_idx"], minlength=3) / n
    assert np.all(np.abs(freq - ALPHA) <= 4 * np.sqrt(np.array(ALPHA) * (1 - np.array(ALPHA)) / n))
    # given component pi1, coupon rate = E[x1] = 1/2; given pi2, the coupon is given iff x2 >= .5
    x, a, k = log["context"], log["action"], log["stratum_idx"]
    pi1 = k == 0
    assert abs(a[pi1].mean() - 0.5) < 4 * np.sqrt(0.25 / pi1.sum())
    assert np.array_equal(a[k == 1], (x[k == 1, 1] >= 0.5).astype(int))
    assert np.array_equal(a[k == 2], (x[k == 2, 2] >= 0.5).astype(int))


def test_log_propensities_are_consistent(paper):
    mix = Mixture(paper.components(), ALPHA)
    log = simulate_log(paper, mix, 5000, seed=2)
    x, a, k = log["context"], log["action"], log["stratum_idx"]
    rows = np.arange(len(a))
    np.testing.assert_allclose(log["pscore_avg"], mix.balanced_propensities(x)[rows, a], rtol=1e-14)
    np.testing.assert_allclose(log["pscore"], log["pscore_components"][rows, k], rtol=1e-14)
    assert np.all(log["pscore_avg"] > 0) and np.all(log["pscore"] > 0)
    np.testing.assert_allclose(log["expected_reward"], paper.mu(x))


def test_rewards_have_the_scenario_moments(paper):
    log = simulate_log(paper, Mixture(paper.components(), ALPHA), 200_000, seed=3)
    a, r, x = log["action"], log["reward"], log["context"]
    resid = r - paper.mu(x)[np.arange(len(a)), a]
    assert abs(resid.mean()) < 4 / np.sqrt(len(r))
    # Var(resid) = 1 with standard error sqrt(2 / n) for Gaussian noise
    assert abs(resid.var() - 1.0) < 4 * np.sqrt(2 / len(r))


def test_same_seed_same_log_and_blocks_are_independent_of_length(paper):
    mix = Mixture(paper.components(), ALPHA)
    a = simulate_log(paper, mix, BLOCK + 10, seed=4)
    b = simulate_log(paper, mix, BLOCK + 10, seed=4)
    c = simulate_log(paper, mix, BLOCK + 500, seed=4)
    d = simulate_log(paper, mix, BLOCK + 10, seed=5)
    for key in ("context", "action", "reward", "pscore_avg"):
        assert np.array_equal(a[key], b[key])
        assert np.array_equal(a[key][:BLOCK], c[key][:BLOCK])
    assert not np.array_equal(a["reward"], d["reward"])
    r0 = simulate_log(paper, mix, 100, seed=4, replication=0)
    r1 = simulate_log(paper, mix, 100, seed=4, replication=1)
    assert not np.array_equal(r0["reward"], r1["reward"])


def test_obp_estimators_run_on_the_log(paper):
    import obp.ope as ope

    log = simulate_log(paper, Mixture(paper.components(), ALPHA), 2000, seed=6)
    dist = paper.targets()["pi_e1"](log["context"])[:, :, None]
    bal = ope.MultiLoggersBalancedInverseProbabilityWeighting().estimate_policy_value(
        reward=log["reward"], action=log["action"], action_dist=dist, pscore_avg=log["pscore_avg"]
    )
    naive = ope.MultiLoggersNaiveInverseProbabilityWeighting().estimate_policy_value(
        reward=log["reward"], action=log["action"], action_dist=dist, pscore=log["pscore"]
    )
    manual = np.mean(log["reward"] * dist[np.arange(2000), log["action"], 0] / log["pscore_avg"])
    assert bal == pytest.approx(manual, rel=1e-12)
    assert np.isfinite(naive)

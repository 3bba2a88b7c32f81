"""Does the promise hold on a team's own log? An independent heavy-tailed world (``tests/own_log_world.py``,
not couponmix's market) writes a 50,000-row log; couponmix calibrates a scenario from it and runs the study;
then logs of the run's size are drawn from the world itself (fresh customers, the world's own heavy-tailed
rewards) at the recommended mixture, and each target is estimated by the estimator the decision chose.

What is checked, per target, against the Monte Carlo RMSE over those logs:

* the promise is never more than 10% optimistic (beyond two Monte Carlo standard errors);
* where the chosen estimator needs no model (no model-dependent part), it is at most 25% conservative,
  beyond two of the promise's own standard errors (the log it rests on is heavy tailed: its second
  moments are themselves uncertain, and the run says by how much);
* where it rests on the model, the bias the log estimates is within three of its standard errors of the
  bias the logs show;
* the stated revenue cost is within 2.5 of its stated standard errors of the world's own.

In the per-action-means world (the fallback) the same checks hold: its moments also come from the log's rows.
"""

from __future__ import annotations

import numpy as np
import pytest

from couponmix.dataset.scenario import get_scenario
from couponmix.ope.estimators import exact_suite
from couponmix.ope.montecarlo import interval
from couponmix.studies.commands import calibrate
from couponmix.studies.config import StudyConfig
from couponmix.studies.study import run_config
from tests import own_log_world as world
from tests.conftest import mc_reps

pytestmark = pytest.mark.montecarlo


def _check(tmp_path, fallback):
    frame = world.log(50_000, seed=1)
    frame.to_csv(tmp_path / "log.csv", index=False)
    cal = calibrate(tmp_path / "log.csv", tmp_path / "sc", world.CONFIG, fallback=fallback)
    assert cal.world == (fallback or "model")
    summary = run_config(StudyConfig(scenario=str(tmp_path / "sc"), eval_size=50_000)).summary.to_dict()
    assert "the log's own rewards" in summary["criterion"]["second_moments"]
    sc = get_scenario(str(tmp_path / "sc"))
    perm = [world.COUPONS.index(a) for a in sc.action_names]
    alpha = np.array([summary["recommended"]["alpha"][c] for c in sc.components()])
    ref = np.array([summary["revenue_only"]["alpha"][c] for c in sc.components()])
    pool = world.customers(200_000, np.random.default_rng(7))
    x = world.encode(pool, sc.meta["card"])
    mu = world.mu(pool)[:, perm]
    comp = np.stack([p(x) for p in sc.components().values()])  # (K, P, A)
    targets = {t: p(x) for t, p in sc.targets().items()}
    q = sc.reward_model(x)
    truth = {t: float((pe * mu).sum(axis=1).mean()) for t, pe in targets.items()}
    true_cost = float((ref - alpha) @ (np.einsum("kpa,pa->k", comp, mu) / len(x)))
    n, reps = summary["n"], mc_reps(100, 400)
    detail = summary["recommended"]["targets"]
    specs = {s.name: s for s in exact_suite()}
    p_bal = np.tensordot(alpha, comp, axes=1)
    est = {t: np.empty(reps) for t in targets}
    for rep in range(reps):
        g = np.random.default_rng([11, rep])
        idx = g.integers(0, len(x), n)
        k = (g.random(n)[:, None] > np.cumsum(alpha)[None, :]).sum(axis=1).clip(0, len(alpha) - 1)
        probs = comp[k, idx]
        a = (g.random(n)[:, None] > probs.cumsum(axis=1)).sum(axis=1).clip(0, len(perm) - 1)
        reward = world.rewards(pool.iloc[idx].reset_index(drop=True), np.array(perm)[a], g)
        log = {"action": a, "reward": reward, "pscore": probs[np.arange(n), a], "pscore_avg": p_bal[idx, a]}
        for t, pe in targets.items():
            est[t][rep] = interval(specs[detail[t]["estimator"]], log, pe[idx], q[idx])[0]
    report = []
    for t in targets:
        d = detail[t]
        err = est[t] - truth[t]
        mc = float(np.sqrt((err**2).mean()))
        mc_se = float((err**2).std(ddof=1) / np.sqrt(reps) / (2 * mc))
        bias, bias_se = float(err.mean()), float(err.std(ddof=1) / np.sqrt(reps))
        report.append((t, d["estimator"], d["rmse"], d["promise_se"], mc, mc_se, d["computed_bias"], d["model_bias_bound"], bias))
        assert d["rmse"] >= 0.9 * (mc - 2 * mc_se), report[-1]  # never more than 10% optimistic
        if d["model_bias_bound"] == 0:
            assert d["rmse"] <= 1.25 * (mc + 2 * mc_se) + 2 * d["promise_se"], report[-1]
        else:
            assert abs(d["computed_bias"] - bias) <= 3 * np.hypot(d["model_bias_bound"], bias_se), report[-1]
    stated = summary["revenue_cost"]["per_customer"]
    cost_se = summary["promise_uncertainty"]["revenue_cost_se"]
    assert abs(stated - true_cost) <= 2.5 * cost_se, (stated, true_cost, cost_se, report)
    return report, stated, true_cost, cost_se


def test_the_promise_holds_on_an_independent_heavy_tailed_log(tmp_path):
    _check(tmp_path, None)


def test_the_promise_holds_in_the_per_action_means_world_too(tmp_path):
    _check(tmp_path, "means")

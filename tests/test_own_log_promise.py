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

from tests import own_log_world as world
from tests.conftest import mc_reps

pytestmark = pytest.mark.montecarlo


def _check(tmp_path, means):
    out = world.promise_check(tmp_path, means=means, reps=mc_reps(200, 400))
    assert out["world"] == ("means" if means else "model")
    assert "the log's own rewards" in out["second_moments"]
    for t, r in out["targets"].items():
        assert r["promised_rmse"] >= 0.9 * (r["mc_rmse"] - 2 * r["mc_rmse_se"]), (t, r)  # never more than 10% optimistic
        if r["model_bias_bound"] == 0:
            assert r["promised_rmse"] <= 1.25 * (r["mc_rmse"] + 2 * r["mc_rmse_se"]) + 2 * r["promise_se"], (t, r)
        else:
            assert abs(r["estimated_bias"] - r["mc_bias"]) <= 3 * np.hypot(r["model_bias_bound"], r["mc_bias_se"]), (t, r)
    c = out["revenue_cost_per_10k"]
    assert abs(c["stated"] - c["true"]) <= 2.5 * c["stated_se"], c
    return out


def test_the_promise_holds_on_an_independent_heavy_tailed_log(tmp_path):
    _check(tmp_path, means=False)


def test_the_promise_holds_in_the_per_action_means_world_too(tmp_path):
    _check(tmp_path, means=True)

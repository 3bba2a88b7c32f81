"""Closed-loop campaigns (issue 22, item 3): a CI-sized loop runs end to end and is deterministic; the
market drifts as configured; revenue is the world's expected reward of what was served."""

from __future__ import annotations

import json

import numpy as np
import pytest

from couponmix.cli import main
from couponmix.errors import CouponmixError
from couponmix.infra.seeding import stream
from couponmix.policy.mixture import sample_actions
from couponmix.studies.campaign import run_campaign
from simulators import get_scenario

SMALL = {"history": {"size": 5_000}, "model": {"n_estimators": 30}}
DRIFT = {"uplift_per_period": {"loyal": {"pct15": 0.2}}, "step": {"period": 2, "uplift": {"new": {"pct15": 1.5}}}}


def test_the_market_drifts_as_configured():
    m = get_scenario("market", config={**SMALL, "drift": {**DRIFT, "segment_shares_per_period": {"new": 0.05}}})
    segs, acts = list(m.segment_names), list(m.action_names)
    base = m.uplift.copy()
    for t in (0, 1, 3):
        w = m.at_period(t)
        want = base.copy()
        want[segs.index("loyal"), acts.index("pct15")] += 0.2 * t
        if t >= 2:
            want[segs.index("new"), acts.index("pct15")] += 1.5
        np.testing.assert_allclose(w.uplift, want)
        shares = w.cfg["population"]["segments"]
        assert sum(shares.values()) == pytest.approx(1.0)
        raw = {s: v + (0.05 * t if s == "new" else 0) for s, v in m.cfg["population"]["segments"].items()}
        assert shares["new"] == pytest.approx(raw["new"] / sum(raw.values()))
    assert m.at_period(3).model is m.model  # the world moves; the history and its model do not
    with pytest.raises(CouponmixError, match="drift.step.uplift: unknown segment 'bargain'"):
        get_scenario("market", config={"drift": {"step": {"period": 1, "uplift": {"bargain": {"pct15": 1}}}}})


def test_a_small_campaign_runs_end_to_end_and_is_deterministic():
    m = get_scenario("market", config={**SMALL, "drift": DRIFT})
    res = run_campaign(m, [0.0, 0.2], periods=3, period_size=2_000, reps=2, seed=4)
    again = run_campaign(get_scenario("market", config={**SMALL, "drift": DRIFT}), [0.0, 0.2], periods=3, period_size=2_000, reps=2, seed=4)
    assert res.to_dict() == again.to_dict()
    assert res.revenue.shape == (2, 2, 3) and np.isfinite(res.revenue).all()
    # period 0 of replication 0 at rate 0: the incumbent serves everyone; revenue is mu at what it served
    rng = stream(4, "campaign", 0, 0)
    w = m.at_period(0)
    x = w.sample_covariates(2_000, rng)
    a = sample_actions(m.components()["exploit"](x), rng.random(2_000))
    assert res.revenue[0, 0, 0] == pytest.approx(w.mu(x)[np.arange(2_000), a].mean(), rel=1e-12)
    # exploring costs revenue in the first period (the same customers, common random numbers)
    assert res.revenue[1, :, 0].mean() < res.revenue[0, :, 0].mean()
    assert all(len(d) == 3 for per_rate in res.deployed for d in per_rate)
    table = res.table()
    assert table[0]["vs_first"] == 0 and table[1]["vs_first"] == pytest.approx(res.cumulative()[1].mean() - res.cumulative()[0].mean())
    se = res.to_dict()["cumulative_vs_first_by_period"]["se"]
    assert se[0] == [0.0, 0.0, 0.0] and all(v is not None and v > 0 for v in se[1])


def test_one_replication_measures_no_standard_error():
    """With one replication no standard error can be measured: campaign.json says null (not 0, which would read
    as exact), and the figure draws no band."""
    from couponmix.outputs.report import campaign_figure

    res = run_campaign(get_scenario("market", config={**SMALL, "drift": DRIFT}), [0.0, 0.2], periods=2, period_size=1_000, reps=1, seed=4)
    doc = res.to_dict()
    assert doc["cumulative_vs_first_by_period"]["se"][1] == [None, None]
    json.dumps(doc, allow_nan=False)
    assert campaign_figure(doc)[:4] == b"\x89PNG"


def test_the_campaign_command_writes_its_table(tmp_path, capsys):
    cfg = tmp_path / "drift.yaml"
    cfg.write_text(json.dumps({**SMALL, "drift": DRIFT}))
    out = tmp_path / "camp"
    args = ["campaign", "market", "--config", str(cfg), "--rates", "0,0.2", "--periods", "2", "--period-size", "2000", "--reps", "2"]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    doc = json.loads((out / "campaign.json").read_text())
    assert doc["rates"] == [0.0, 0.2] and doc["payback_rate"] in (0.0, 0.2) and "payback_vs_best" in doc
    assert (out / "campaign.png").read_bytes()[:4] == b"\x89PNG" and len(doc["cumulative_vs_first_by_period"]["mean"][1]) == 2
    printed = capsys.readouterr().out
    assert "payback rule:" in printed and "best fixed rate in hindsight" in printed
    assert main([*args[:-2], "--reps", "0", "--out", str(tmp_path / "bad"), "--quiet"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("couponmix: error: reps")
    assert not (tmp_path / "bad").exists()


def test_switches_count_the_first_redeployment_too():
    """A loop that replaces the configured exploit at the end of period 0 and keeps the replacement has
    switched once; one that never leaves it, zero times."""
    from couponmix.studies.campaign import CampaignResult

    deployed = [[["retrained@0", "retrained@0", "retrained@0"]], [["exploit", "exploit", "retrained@2"]]]
    res = CampaignResult((0.0, 0.1), 3, 100, 1, np.ones((2, 1, 3)), deployed)
    assert [row["switches"] for row in res.table()] == [1.0, 1.0]
    res = CampaignResult((0.0,), 3, 100, 1, np.ones((1, 1, 3)), [[["exploit"] * 3]])
    assert res.table()[0]["switches"] == 0.0

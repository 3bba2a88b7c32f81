"""Real logs in: the reader's schema errors, calibrate's honesty gates, the Open Bandit round trip, and
estimate against obp on the same arrays."""

import json

import numpy as np
import pandas as pd
import pytest

from couponmix.cli import main
from couponmix.dataset.calibration import ActionFit, CalibrationDiagnostics
from couponmix.dataset.reallog import ColumnMapping, read_log
from couponmix.errors import CouponmixError
from couponmix.infra.schema import parse
from couponmix.studies.summary import CalibratedBlock, from_json, to_json


def toy_log(n=2000, seed=0, propensity=True):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    seg = rng.choice(["a", "b"], n)
    p = {"none": 0.5, "c10": 0.25, "c20": 0.25}
    action = np.where(rng.random(n) < 0.5, "none", np.where(rng.random(n) < 0.5, "c10", "c20"))
    lift = np.select([action == "c10", action == "c20"], [1.0 + x, 2.0 - x], 0.0)
    reward = 5 + lift + (seg == "b") + rng.normal(size=n)
    frame = pd.DataFrame({"id": np.arange(n), "x": x, "seg": seg, "coupon": action, "revenue": reward})
    if propensity:
        frame["p"] = [p[a] for a in action]
    return frame


MAPPING = {"features": ["x"], "categorical": ["seg"], "action": "coupon", "reward": "revenue", "propensity": "p", "id": "id"}


def mapping(**changes):
    return parse(ColumnMapping, {**MAPPING, **changes})


def test_a_good_log_is_read_and_encoded(tmp_path):
    toy_log().to_csv(tmp_path / "log.csv", index=False)
    log = read_log(tmp_path / "log.csv", mapping())
    assert log.n == 2000 and log.action_names == ["c10", "c20", "none"] and log.categories == {"seg": ["a", "b"]}
    assert log.x.shape == (2000, 2) and set(np.unique(log.x[:, 1])) == {0.0, 1.0}
    assert not log.binary and log.propensity is not None
    toy_log().to_parquet(tmp_path / "log.parquet")
    again = read_log(tmp_path / "log.parquet", mapping())
    assert np.array_equal(again.x, log.x) and np.array_equal(again.reward, log.reward)


@pytest.mark.parametrize(
    "edit,changes,message",
    [
        (lambda f: f.drop(columns="revenue"), {}, "column 'revenue' is missing"),
        (lambda f: f.assign(x=f.x.where(f.index != 41)), {}, "column 'x', row 42: is empty (NaN)"),
        (lambda f: f.assign(x=f.x.astype(object).where(f.index != 7, "lots")), {}, "column 'x', row 8: is not a number"),
        (lambda f: f.assign(p=f.p.where(f.index != 9, 1.5)), {}, "column 'p', row 10: a propensity must lie in (0, 1]"),
        (lambda f: f.assign(p=f.p.where(f.index != 3, 0.0)), {}, "column 'p', row 4: a propensity must lie in (0, 1]"),
        (lambda f: f.assign(coupon=f.coupon.where(f.index != 5, "c99")), {}, "row 6: action 'c99' is seen once only"),
        (lambda f: f.assign(coupon="none"), {}, "holds one action only"),
        (lambda f: f.assign(revenue=3.0), {}, "column 'revenue' is constant"),
        (lambda f: f.assign(id=f.id.where(f.index != 11, 2)), {}, "column 'id', row 12: id '2' is duplicated"),
        (lambda f: f, {"reward_kind": "binary"}, "a binary reward must be 0 or 1"),
    ],
)
def test_schema_errors_name_the_column_and_the_first_bad_row(tmp_path, edit, changes, message):
    edit(toy_log()).to_csv(tmp_path / "log.csv", index=False)
    with pytest.raises(CouponmixError) as err:
        read_log(tmp_path / "log.csv", mapping(**changes))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_mapping_errors_are_one_line():
    with pytest.raises(CouponmixError, match="column 'x' is mapped twice"):
        mapping(categorical=["x"])
    with pytest.raises(CouponmixError, match="reward_kind: expected"):
        mapping(reward_kind="money")
    with pytest.raises(CouponmixError, match="name at least one feature"):
        mapping(features=[], categorical=[])


def config(**changes):
    return {
        "columns": MAPPING,
        "model": {"n_estimators": 50, "min_child_samples": 20},
        "components": {"exploit": {"kind": "greedy_model"}, "explore": {"kind": "uniform"}},
        "targets": {
            "big": {"kind": "rule", "feature": "x", "min": 0, "action": "c10", "otherwise": "c20"},
            "model": {"kind": "greedy_model", "features": ["x"]},
        },
        **changes,
    }


def test_calibrate_writes_a_scenario_every_command_takes(tmp_path, capsys):
    from couponmix.commands import calibrate
    from couponmix.dataset.scenario import get_scenario

    toy_log(4000).to_csv(tmp_path / "log.csv", index=False)
    res = calibrate(tmp_path / "log.csv", tmp_path / "sc", config())
    assert res.world == "model" and res.warnings == []
    assert res.diagnostics.gain > 3 * res.diagnostics.gain_se  # x and seg matter: the model wins
    sc = get_scenario(str(tmp_path / "sc"))
    assert sc.ground_truth is False and sc.action_names == ("c10", "c20", "none")
    x = sc.sample_covariates(1000, np.random.default_rng(0))
    mu = sc.mu(x)
    # the world's mean revenue of the rule 'big' tracks the truth 5 + seg + 1 + |x| (c10 where x >= 0, c20 below)
    truth = 5 + x[:, 1] + np.where(x[:, 0] >= 0, 1 + x[:, 0], 2 - x[:, 0])
    big = sc.targets()["big"](x)
    assert abs(float((big * mu).sum(axis=1).mean() - truth.mean())) < 0.15
    assert np.all(sc.m2(x) >= mu**2)
    code = main(["plan", str(tmp_path / "sc"), "--tol", "0.5", "--eps", "0.1"])
    assert code == 0 and "a log of" in capsys.readouterr().out
    with pytest.raises(CouponmixError, match="not empty"):
        calibrate(tmp_path / "log.csv", tmp_path / "sc", config())


def test_a_model_no_better_than_the_means_changes_the_answer(tmp_path):
    from couponmix.commands import calibrate

    frame = toy_log(3000)
    frame["revenue"] = 5 + np.random.default_rng(1).normal(size=len(frame)) * 3 + (frame.coupon == "c10")
    frame.to_csv(tmp_path / "log.csv", index=False)
    res = calibrate(tmp_path / "log.csv", tmp_path / "means", config())
    assert res.world == "means" and "no better than the per-action averages" in res.warnings[0]
    with pytest.raises(CouponmixError, match="calibrate refuses"):
        calibrate(tmp_path / "log.csv", tmp_path / "refused", config(fallback="refuse"))
    assert not (tmp_path / "refused").exists()
    kept = calibrate(tmp_path / "log.csv", tmp_path / "kept", config(), fallback="model")
    assert kept.world == "model" and "kept anyway" in kept.warnings[0]


def test_planning_chooses_its_own_fallback(tmp_path, capsys):
    """The fallback can be chosen again when planning: means, refuse (one line, nothing written) or model;
    a scenario whose model passed the gate is unaffected."""
    from couponmix.commands import calibrate
    from couponmix.dataset.scenario import get_scenario

    frame = toy_log(3000)
    frame["revenue"] = 5 + np.random.default_rng(1).normal(size=len(frame)) * 3 + (frame.coupon == "c10")
    frame.to_csv(tmp_path / "log.csv", index=False)
    calibrate(tmp_path / "log.csv", tmp_path / "kept", config(), fallback="model")
    folder = str(tmp_path / "kept")
    assert get_scenario(folder).world == "model"
    means = get_scenario(folder, config={"fallback": "means"})
    assert means.world == "means" and "treats every customer alike" in means.warnings()[0]
    x = means.sample_covariates(50, np.random.default_rng(0))
    assert np.ptp(means.mu(x), axis=0).max() == 0  # every customer alike
    with pytest.raises(CouponmixError, match="planning on this scenario refuses"):
        get_scenario(folder, config={"fallback": "refuse"})
    assert main(["plan", folder, "--tol", "0.5", "--eps", "0.1", "--fallback", "refuse"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refuses (fallback: refuse)" in err
    out = tmp_path / "run"
    args = ["run", folder, "--out", str(out), "--eval-size", "3000", "--pop-size", "8", "--generations", "3", "--quiet"]
    assert main([*args, "--fallback", "refuse"]) == 2 and not out.exists()
    assert main([*args, "--fallback", "means"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["calibrated"]["world"] == "means" and s["calibrated"]["fallback"] == "means"
    text = (out / "summary.json").read_text()
    back = from_json(text)  # the block as records, and back to the same bytes
    assert isinstance(back.calibrated, CalibratedBlock) and isinstance(back.calibrated.diagnostics, CalibrationDiagnostics)
    assert all(isinstance(a, ActionFit) for a in back.calibrated.diagnostics.per_action.values())
    assert isinstance(back.calibrated.card, dict) and to_json(back) == text
    assert "treats every customer alike" in (out / "report.html").read_text()
    with pytest.raises(CouponmixError, match="scenario_config: fallback"):
        get_scenario(folder, config={"fallback": "never"})
    assert main(["plan", "market", "--tol", "0.5", "--fallback", "means"]) == 2
    assert "applies to a calibrated scenario" in capsys.readouterr().err


def test_estimate_matches_obp_on_the_same_arrays(tmp_path):
    import obp.ope as ope

    from couponmix.commands import calibrate, estimate
    from couponmix.dataset.scenario import get_scenario

    toy_log(4000).to_csv(tmp_path / "log.csv", index=False)
    calibrate(tmp_path / "log.csv", tmp_path / "sc", config())
    res = estimate(tmp_path / "sc", ["big"], out=tmp_path / "est")
    sc = get_scenario(str(tmp_path / "sc"))
    log = sc.real_log()
    pe = sc.on_log("big")[:, :, None]
    ips = ope.InverseProbabilityWeighting().estimate_policy_value(
        reward=log["reward"], action=log["action"], pscore=log["pscore"], action_dist=pe
    )
    assert res.estimates["big"]["ips"].estimate == pytest.approx(ips, rel=1e-12)
    # our interval: 1.96 standard errors of the per-row terms
    w = pe[np.arange(len(pe)), log["action"], 0] / log["pscore"]
    half = 1.959963984540054 * np.std(w * log["reward"], ddof=1) / np.sqrt(len(w))
    e = res.estimates["big"]["ips"]
    assert (e.high - e.low) / 2 == pytest.approx(half, rel=1e-6)
    assert (
        json.loads((tmp_path / "est" / "estimate.json").read_text())["estimates"]["big"]["dr"]["estimate"]
        == res.estimates["big"]["dr"].estimate
    )
    assert "What the log itself says" in (tmp_path / "est" / "estimate.html").read_text()
    # it recommends the narrowest interval among the estimators whose interval counts all their error
    from couponmix.commands import CUT_WEIGHTS_NOTE, UNWEIGHTED_NOTE

    honest = {n: e.high - e.low for n, e in res.estimates["big"].items() if e.note not in (UNWEIGHTED_NOTE, CUT_WEIGHTS_NOTE)}
    assert res.recommended["big"] == min(honest, key=honest.get) and res.recommended["big"] != "dm"
    assert f"big              {res.recommended['big']:16s}" in res.text() and "<- read this one" in res.text()
    assert json.loads((tmp_path / "est" / "estimate.json").read_text())["recommended"] == res.recommended
    assert "read this one" in (tmp_path / "est" / "estimate.html").read_text()


def test_estimate_marks_intervals_that_say_nothing(tmp_path):
    """A policy whose matched rows never clicked gets the rule of three as its upper end, not [0, 0]; an
    estimate without logged rewards (DM) is marked as not counting the model's error."""
    from couponmix.commands import RULE_OF_THREE_NOTE, UNWEIGHTED_NOTE, calibrate, estimate

    frame = toy_log(4000)
    rng = np.random.default_rng(5)
    frame["revenue"] = np.where(frame.coupon == "c20", 0.0, (rng.random(len(frame)) < 0.3).astype(float))
    frame.to_csv(tmp_path / "log.csv", index=False)
    targets = {"c20": {"kind": "fixed", "probabilities": {"c20": 1.0}}}
    calibrate(tmp_path / "log.csv", tmp_path / "sc", config(targets=targets))
    res = estimate(tmp_path / "sc", out=tmp_path / "est")
    ips = res.estimates["c20"]["ips"]
    assert ips.estimate == 0 and ips.low == 0
    assert ips.high == pytest.approx(3 * 4 / 4000) and ips.note == RULE_OF_THREE_NOTE  # weight 1 / 0.25
    assert res.estimates["c20"]["dm"].note == UNWEIGHTED_NOTE and res.estimates["c20"]["dr"].note is None
    text = res.text()
    assert "** every logged row" in text and "* no logged reward" in text
    assert "** every logged row" in (tmp_path / "est" / "estimate.html").read_text()


def test_estimate_says_when_an_interval_does_not_cover_the_bias_of_cut_weights(tmp_path):
    """Rows whose weight exceeds the switch threshold (c20 logged with probability 0.05, weight 12 under a
    policy playing it with 0.6) are left to the model by Switch-DR and capped by clipped IPS: both are marked
    with the share of the weight they drop, the unweighted-free estimators are not."""
    from couponmix.commands import CUT_WEIGHTS_NOTE, calibrate, estimate

    rng = np.random.default_rng(2)
    n = 4000
    frame = toy_log(n)
    probs = {"none": 0.9, "c10": 0.05, "c20": 0.05}
    frame["coupon"] = rng.choice(list(probs), n, p=list(probs.values()))
    frame["p"] = frame.coupon.map(probs)
    frame["revenue"] = 5 + (frame.coupon == "c20") * (1 + frame.x) + rng.normal(size=n)
    frame.to_csv(tmp_path / "log.csv", index=False)
    targets = {"mostly_c20": {"kind": "fixed", "probabilities": {"c20": 0.6, "none": 0.4}}}
    calibrate(tmp_path / "log.csv", tmp_path / "sc", config(targets=targets))
    res = estimate(tmp_path / "sc", out=tmp_path / "est")
    per = res.estimates["mostly_c20"]
    cut = [name for name, e in per.items() if e.note == CUT_WEIGHTS_NOTE]
    assert cut and all(name.startswith(("switch", "clipped")) for name in cut), per.keys()
    c20 = frame.coupon == "c20"
    w = np.where(c20, 0.6 / 0.05, np.where(frame.coupon == "none", 0.4 / 0.9, 0.0))
    switch = next(name for name in cut if name.startswith("switch"))
    assert per[switch].weight_dropped == pytest.approx(w[c20].sum() / w.sum(), rel=1e-9)
    for name in ("ips", "dr"):
        assert per[name].note is None
    assert "does not cover" in res.text() and "does not cover" in (tmp_path / "est" / "estimate.html").read_text()


def two_logger_log(n=6000, seed=0, b_varies=False):
    """Two loggers in one log: 'a' (none 0.5, c10 0.25, c20 0.25) on 40% of the rows and 'b' (none 0.1,
    c10 0.8, c20 0.1) on the rest; with b_varies, b's propensities change with the customer."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    seg = rng.choice(["a", "b"], n)
    names = np.array(["none", "c10", "c20"])
    logger = np.where(rng.random(n) < 0.4, "a", "b")
    pa, pb = np.array([0.5, 0.25, 0.25]), np.array([0.1, 0.8, 0.1])
    probs = np.where((logger == "a")[:, None], pa, pb)
    if b_varies:
        tilt = np.column_stack([0.1 + 0.05 * (x > 0), 0.8 - 0.05 * (x > 0), np.full(n, 0.1)])
        probs = np.where((logger == "a")[:, None], pa, tilt)
    idx = (rng.random(n)[:, None] > probs.cumsum(axis=1)).sum(axis=1)
    action = names[idx]
    lift = np.select([action == "c10", action == "c20"], [1.0 + x, 2.0 - x], 0.0)
    reward = 5 + lift + (seg == "b") + rng.normal(size=n)
    return pd.DataFrame(
        {"id": np.arange(n), "x": x, "seg": seg, "coupon": action, "revenue": reward, "p": probs[np.arange(n), idx], "logger": logger}
    )


def test_several_loggers_get_the_multi_logger_estimators(tmp_path):
    """A log with a component column: the logging system's propensity is rebuilt from context-free loggers
    (balanced weights), the naive forms weight each row by its own logger, obp agrees on every point, and
    every estimate covers the known value of the rule. A logger whose propensities vary with the customer
    leaves only the naive forms and DM, and says why."""
    from couponmix.commands import calibrate, estimate
    from couponmix.dataset.scenario import get_scenario

    truth = 7 + np.sqrt(2 / np.pi)  # 5 + E[lift of 'big'] + P(seg b): c10 gives 1 + x for x >= 0, c20 2 - x below
    two_logger_log().to_csv(tmp_path / "log.csv", index=False)
    cfg = config(
        columns={**MAPPING, "component": "logger"},
        components={"a": {"kind": "logged", "component": "a"}, "b": {"kind": "logged", "component": "b"}},
    )
    calibrate(tmp_path / "log.csv", tmp_path / "sc", cfg)
    sc = get_scenario(str(tmp_path / "sc"))
    x = sc.customers[:3]
    np.testing.assert_allclose(sc.components()["b"](x), np.tile([0.8, 0.1, 0.1], (3, 1)), atol=1e-12)  # c10, c20, none
    log = sc.real_log()
    share_a = float(np.mean(log["stratum_idx"] == 0))
    pa, pb = np.array([0.25, 0.25, 0.5]), np.array([0.8, 0.1, 0.1])
    np.testing.assert_allclose(log["pscore_avg"], (share_a * pa + (1 - share_a) * pb)[log["action"]], rtol=1e-12)
    res = estimate(tmp_path / "sc", ["big"])
    assert res.loggers == ["a", "b"] and "balanced weights" in res.weighting
    got = res.estimates["big"]
    assert {"ips", "snips", "dr", "sndr", "switch_dr(10)", "dm", "ips[naive]", "dr[naive]"} == set(got)
    assert got["ips[naive]"].obp.startswith("MultiLoggersNaive") and got["ips"].obp.startswith("MultiLoggersBalanced")
    for name in ("ips", "dr", "ips[naive]", "dr[naive]"):
        e = got[name]
        assert abs(e.estimate - truth) < 1.5 * (e.high - e.low) / 2, (name, e)
    # balanced weights are the lower-variance ones (the point of rebuilding them)
    assert got["ips"].high - got["ips"].low < got["ips[naive]"].high - got["ips[naive]"].low

    # the same from the log itself, without a scenario folder (models fitted in a temporary folder)
    raw = estimate(tmp_path / "log.csv", ["big"], out=tmp_path / "est", config=cfg)
    assert raw.estimates == res.estimates and raw.scenario == str(tmp_path / "log.csv")
    assert "2 logging policies (a, b)" in (tmp_path / "est" / "estimate.html").read_text()
    with pytest.raises(CouponmixError, match="give its mapping with --config"):
        estimate(tmp_path / "log.csv", ["big"])

    two_logger_log(b_varies=True).to_csv(tmp_path / "vary.csv", index=False)
    calibrate(tmp_path / "vary.csv", tmp_path / "vary", config(columns={**MAPPING, "component": "logger"}))
    res = estimate(tmp_path / "vary", ["big"])
    assert set(res.estimates["big"]) == {"dm", "ips[naive]", "dr[naive]"}
    assert "balanced weights are not available" in res.weighting and "logger 'b'" in res.weighting
    with pytest.raises(CouponmixError, match="names one with component:"):
        calibrate(
            tmp_path / "log.csv",
            tmp_path / "bad",
            config(columns={**MAPPING, "component": "logger"}, components={"a": {"kind": "logged"}, "u": {"kind": "uniform"}}),
        )


@pytest.mark.slow
@pytest.mark.parametrize("campaign", ["all", "men", "women"])
def test_open_bandit_round_trip_shows_the_honesty_warning(tmp_path, capsys, campaign):
    """obp's bundled Open Bandit samples, each campaign: calibrate, run and estimate. The report leads with
    what the log supports, calls the reward clicks, keeps click-rate intervals in [0, 1], and never claims
    'all of it sampling error' in a world of alike customers."""
    from couponmix.dataset.obd import write_example

    log, cfg = write_example(tmp_path / "obd", campaign)
    assert main(["calibrate", str(log), "--config", str(cfg), "--out", str(tmp_path / "sc")]) == 0
    err = capsys.readouterr().err
    assert "fewer than 10 positive outcomes" in err
    assert main(["run", str(tmp_path / "sc"), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    world = summary["calibrated"]["world"]
    assert campaign != "all" or world == "means"
    assert all("log_estimate" in p for p in summary["policies"].values())
    for p in summary["policies"].values():
        assert 0 <= p["log_estimate"]["low"] <= p["log_estimate"]["high"] <= 1, p
    html = (tmp_path / "run" / "report.html").read_text()
    assert "model estimate" in html and html.index("What your log supports") < html.index('id="headline"')
    assert "true revenue" not in html.lower() and "clicks given up per 10,000 customers" in html
    if world == "means":
        assert "no better than the per-action averages" in html and "all of it sampling error" not in html
    if campaign != "all":
        return
    # the random and BTS samples in one log: two loggers, BTS not context-free, so the naive forms
    both, both_cfg = tmp_path / "obd" / f"random_bts_{campaign}.csv", tmp_path / "obd" / "obd_two_loggers.yaml"
    assert main(["estimate", str(both), "--config", str(both_cfg), "--policy", "bts", "--json"]) == 0
    captured = capsys.readouterr()
    est = json.loads(captured.out)
    assert est["rows"] == 20_000 and est["loggers"] == ["bts", "random"] and "logger 'bts'" in est["weighting"]
    assert set(est["estimates"]["bts"]) == {"dm", "ips[naive]", "dr[naive]"}
    for by_estimator in est["estimates"].values():  # a click rate, its estimate and interval stay in [0, 1]
        for e in by_estimator.values():
            assert 0 <= e["low"] <= e["estimate"] <= e["high"] <= 1, e
    assert "no better than the per-action averages" in captured.err


MARKET_MAP = {
    "columns": {
        "features": ["recency", "frequency", "monetary", "tenure"],
        "categorical": ["segment", "channel"],
        "action": "action",
        "reward": "reward",
        "propensity": "pscore",
        "balanced_propensity": "pscore_avg",
        "component": "component",
    },
    "components": {
        "exploit": {"kind": "greedy_model", "features": ["recency", "frequency", "monetary", "segment"]},
        "explore": {"kind": "uniform"},
    },
    "targets": {
        "model_v2": {"kind": "greedy_model", "features": ["recency", "frequency", "monetary", "tenure", "segment", "channel"]},
        "winback": {"kind": "rule", "feature": "recency", "min": 60, "action": "2", "otherwise": "0"},
        "soft_model": {"kind": "softmax_model", "temperature": 2.0},
    },
}


@pytest.mark.slow
def test_recovery_on_market(tmp_path):
    """A log simulated from market (exploit 80%, explore 20%, so propensities vary) calibrates a scenario whose
    policy values fall within their stated error of the truth (their distance to the real log's own estimate
    plus its 95% margin), whose log intervals cover the truth and shrink like 1/sqrt(n), and whose
    recommendation lands near market's own. Both runs use SNDR: market's own criterion may choose Switch-DR for
    a policy where the simulator measures the model's error as small (truth a calibrated world cannot know),
    which moves its knee by itself; the recovery of the world is judged at one estimator."""
    from couponmix.commands import calibrate, run, simulate
    from couponmix.dataset.scenario import get_scenario
    from couponmix.ope.estimators import EstimatorSpec
    from couponmix.studies.config import StudyConfig

    market = get_scenario("market")
    x = market.sample_covariates(200_000, np.random.default_rng(5))
    mu = market.mu(x)
    sndr = EstimatorSpec("sndr")
    own = run(StudyConfig(scenario="market", n=50_000, eval_size=30_000, estimator=sndr), tmp_path / "market").summary
    widths = {}
    for n in (20_000, 100_000):
        simulate(StudyConfig(scenario="market", n=n, seed=7), "exploit=0.8,explore=0.2", tmp_path / f"log{n}")
        calibrate(tmp_path / f"log{n}", tmp_path / f"sc{n}", MARKET_MAP)
        sc = get_scenario(str(tmp_path / f"sc{n}"))
        s = run(StudyConfig(scenario=str(tmp_path / f"sc{n}"), n=50_000, eval_size=30_000, estimator=sndr), tmp_path / f"run{n}").summary
        widths[n] = []
        for name, pol in {**sc.components(), **sc.targets()}.items():
            truth = float((pol(x) * mu).sum(axis=1).mean())  # the calibrated policy's value in the real market
            le = s.policies[name].log_estimate
            assert le is not None and le.model_error_bound is not None
            half = (le.high - le.low) / 2
            widths[n].append(half)
            bound = le.model_error_bound  # |model - log estimate| + the log's 95% margin
            assert bound == pytest.approx(abs(s.policies[name].value - le.estimate) + half)
            assert abs(s.policies[name].value - truth) <= bound, (n, name, s.policies[name].value, truth, bound)
            assert le.low - half / 2 <= truth <= le.high + half / 2, (n, name, le, truth)
        assert abs(s.headline.exploration_rate - own.headline.exploration_rate) <= 0.02, n
        # the stated cost of the recommended mix against what that mix costs in the real market, within 3 of the
        # cost's stated standard errors (the values it rests on are estimates from n rows)
        alpha = s.recommended.alpha
        pols = sc.components()
        true_rev = {k: float((pols[k](x) * mu).sum(axis=1).mean()) for k in alpha}
        true_cost = true_rev["exploit"] - sum(a * true_rev[k] for k, a in alpha.items())
        assert abs(s.revenue_cost.per_customer - true_cost) <= 3 * s.revenue_cost.std_error, (n, s.revenue_cost, true_cost)
    ratio = np.mean(widths[100_000]) / np.mean(widths[20_000])
    assert ratio < 0.6, ratio  # about sqrt(1/5) = 0.45: the error the data can verify falls like 1/sqrt(n)


def test_the_means_world_promises_only_what_the_log_verifies_and_never_writes_nan(tmp_path):
    """A per-action-means world sends one coupon to everyone; a target that never plays it cannot be
    estimated from no-exploration logs by a self-normalised estimator (0 / 0). The run still completes with
    no NaN, says in words what cannot be estimated, and, since the means world cannot see how customers
    differ, takes the model's error, where an estimator relies on it, from the log's own rows (signed, with its
    standard error), and bounds it by the reward's range only on actions the log does not cover."""
    import math

    from couponmix.commands import calibrate
    from couponmix.dataset.scenario import get_scenario
    from couponmix.ope.objectives import EvaluationSample

    frame = toy_log(3000)
    frame["revenue"] = 5 + np.random.default_rng(1).normal(size=len(frame)) * 3 + 2 * (frame.coupon == "c10")
    frame.to_csv(tmp_path / "log.csv", index=False)
    targets = {
        "all_c20": {"kind": "rule", "feature": "x", "min": -100, "action": "c20", "otherwise": "none"},
        "split": {"kind": "rule", "feature": "x", "min": 0, "action": "none", "otherwise": "c20"},
    }
    named = {**MAPPING, "reward_name": "net revenue", "reward_unit": "EUR"}
    assert calibrate(tmp_path / "log.csv", tmp_path / "sc", config(targets=targets, columns=named)).world == "means"
    sc = get_scenario(str(tmp_path / "sc"))
    sample = EvaluationSample.from_scenario(sc, 2000)
    lo, hi = sc.reward_range()
    assert lo == frame.revenue.min() and hi == frame.revenue.max()
    np.testing.assert_allclose(sample.model_error, np.maximum(sample.q - lo, hi - sample.q))
    out = tmp_path / "run"
    assert (
        main(["run", str(tmp_path / "sc"), "--out", str(out), "--eval-size", "3000", "--pop-size", "8", "--generations", "3", "--quiet"])
        == 0
    )
    text = (out / "summary.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    s = json.loads(text)

    def floats(o):
        if isinstance(o, dict):
            return [f for v in o.values() for f in floats(v)]
        if isinstance(o, list):
            return [f for v in o for f in floats(v)]
        return [o] if isinstance(o, float) else []

    assert all(math.isfinite(f) for f in floats(s))
    q = sc.reward_model(sc.customers[:1])[0]
    for t in targets:
        none = s["no_exploration"]["targets"][t]
        assert none["status"] == "unsupported" and "only the revenue model speaks for them" in none["explanation"]
        # logs without exploration never show the target's coupons: the direct method alone speaks, and its
        # bias is what the historical log measures, q - r importance weighted, one standard error wider
        logged = np.array([sc.action_names.index(c) for c in frame.coupon])
        rows = np.arange(len(frame))
        gap = sc.targets()[t](sc.customers)[rows, logged] * (sc.components()["exploit"](sc.customers)[rows, logged] == 0)
        c = gap * (q[logged] - frame.revenue.to_numpy()) / frame.p.to_numpy()
        bias = abs(c.mean()) + np.sqrt((c * c).mean() / len(c))
        assert none["rmse"] == pytest.approx(np.hypot(none["sampling_error"], bias), rel=1e-6), (t, none)
        rec = s["recommended"]["targets"][t]
        assert rec["logs_show_all"] and rec["rmse"] < none["rmse"], rec
    # the report leads with what the log supports, and a world of alike customers never vouches for its error
    html = (out / "report.html").read_text()
    assert html.index("What your log supports") < html.index('id="headline"') < html.index("Read this first")
    assert "every customer is treated alike" in html and "all of it sampling error" not in html
    assert "If customers do not differ: Send " in html and " EUR in net revenue per 10,000 customers" in html
    assert "per customer (EUR) within ±" in html  # the intervals in the mapping's unit
    assert "the log's own rewards" in s["criterion"]["second_moments"] and "The sampling error comes from" in html
    first = html[html.index("Read this first") :]
    first = first[: first.index("</div>")]
    gate = "The revenue model is no better than the per-action averages"
    assert gate in html[: html.index('id="headline"')] and gate not in first  # said once, before any number


def test_the_promise_takes_its_moments_from_the_logs_held_out_rows():
    """ObservedRows: per row, the importance-weighted logged residual and its square at the logged action
    (rows a model was trained on weigh 0), the signed model error q - r, and doubly robust policy values;
    actions the log does not cover keep the world's model."""
    from couponmix.ope.objectives import ObservedRows

    action = np.array([0, 0, 1, 1, 2, 0])
    reward = np.array([1.0, 3.0, 2.0, 10.0, 5.0, 0.0])
    ipw = np.array([2.0, 2.0, 4.0, 4.0, 1.0, 2.0])
    held = np.array([2.0, 0.0, 2.0, 2.0, 0.0, 2.0])
    obs = ObservedRows(action, reward, ipw, held, covered=np.array([True, True, False]))
    model = np.full((6, 3), 5.0)
    e2 = obs.residual_second_moment(None, model)
    expected = np.zeros((6, 3))
    expected[[0, 2, 3, 5], [0, 1, 1, 0]] = [4 * 1, 8 * 4, 8 * 100, 0.0]
    expected[:, 2] = 5.0  # not covered: the model
    np.testing.assert_allclose(e2, expected)
    q = np.ones((6, 3))
    e1 = obs.residual_first_moment(q, np.full((6, 3), 7.0))
    np.testing.assert_allclose(e1[:, 0], [4 * 0, 0, 0, 0, 0, 4 * -1])
    np.testing.assert_allclose(e1[:, 1], [0, 0, 8 * 1, 8 * 9, 0, 0])
    np.testing.assert_allclose(e1[:, 2], 7.0)
    np.testing.assert_allclose(obs.signed_error(q)[:, :2], -e1[:, :2])
    assert (obs.signed_error(q)[:, 2] == 0).all()
    # a policy's value: E[sum_a pi q] minus the mean signed error; the uncovered action takes mu
    pi = np.zeros((1, 6, 3))
    pi[0, :, 1] = 1.0
    assert obs.policy_values(pi, q, np.full((6, 3), 3.0))[0] == pytest.approx(1.0 + (8 * 1 + 8 * 9) / 6)
    pi = np.zeros((1, 6, 3))
    pi[0, :, 2] = 1.0
    assert obs.policy_values(pi, q, np.full((6, 3), 3.0))[0] == pytest.approx(3.0)
    np.testing.assert_allclose(obs.subset(np.array([2, 3])).reward, [2.0, 10.0])


def test_the_model_dependent_bias_is_estimated_from_the_log_with_its_standard_error():
    """With a real log's rows, the bias an estimator's gap leaves is estimated as the mean of
    h(a_i|x_i) e_hat_i, and the bound is that mean's standard error: checked against a direct computation for
    the direct method (gap = the whole target) and for naive DR, and zero for balanced DR with full support."""
    from couponmix.ope.criterion import Criterion
    from couponmix.ope.estimators import EstimatorSpec
    from couponmix.ope.objectives import EvaluationSample, ObservedRows

    rng = np.random.default_rng(3)
    m, a = 4000, 3
    exploit = np.zeros((m, a))
    exploit[:, 0] = 1.0
    comp = np.stack([exploit, np.full((m, a), 1 / a)])
    target = np.zeros((1, m, a))
    target[0, :, 2] = 1.0
    mu = np.tile([1.0, 2.0, 3.0], (m, 1))
    q = mu + 0.5
    p0 = np.full(m, 1 / a)
    action = rng.integers(0, a, m)
    reward = mu[np.arange(m), action] + rng.normal(size=m) * 2
    obs = ObservedRows(action, reward, 1 / p0, np.ones(m), covered=np.ones(a, bool))
    sample = EvaluationSample(("exploit", "explore"), ("t",), comp, target, mu, mu**2 + 4, None, q, "q", False, np.full(a, 9.0), "", obs)
    e_hat = obs.signed_error(q)
    c_dm = (target[0] * e_hat).sum(axis=1)  # h = pi_e for the direct method
    alpha = np.array([[0.6, 0.4]])
    for spec, h_share in ((EstimatorSpec.parse("dm"), 1.0), (EstimatorSpec.parse("dr", weights="naive"), 0.6)):
        law = Criterion(sample, [spec], 1000).laws(alpha)[0].laws[0]
        c = h_share * c_dm  # naive DR covers the explore share of action 2 only
        assert law.bias_computed[0] == pytest.approx(c.mean(), rel=1e-9)
        assert law.bias_computed[0] == pytest.approx(0.5 * h_share, abs=4 * c.std() / np.sqrt(m))  # q is 0.5 too high
        # the bound: the standard error of that mean, through g^2 <= g pi_e (exact for the direct method; for
        # the share s, sqrt(1 / s) above the exact standard error)
        assert law.bound[0] == pytest.approx(np.sqrt((c * c).mean() / m) * np.sqrt(1.0 / h_share), rel=1e-9)
    balanced = Criterion(sample, [EstimatorSpec.parse("dr")], 1000).laws(alpha)[0].laws[0]
    assert balanced.bias_computed[0] == pytest.approx(0.0, abs=1e-12) and balanced.bound[0] == pytest.approx(0.0, abs=1e-12)


def test_a_calibrated_promise_uses_the_logged_rewards_and_validate_the_world(tmp_path):
    """From a calibrated folder with propensities, the evaluation sample is the log's own rows (without
    replacement), and the per-action mean second moment of the IPS family equals the log's importance-weighted
    mean of r^2; Monte Carlo checks of the formulas (observed=False) use the world's own moments."""
    from couponmix.commands import calibrate
    from couponmix.dataset.scenario import get_scenario
    from couponmix.ope.objectives import EvaluationSample

    frame = toy_log(3000)
    frame.to_csv(tmp_path / "log.csv", index=False)
    calibrate(tmp_path / "log.csv", tmp_path / "sc", config())
    sc = get_scenario(str(tmp_path / "sc"))
    sample = EvaluationSample.from_scenario(sc, 100_000)
    assert sample.size == 3000 and sample.observed is not None
    assert len(np.unique(sample.x, axis=0)) == len(np.unique(sc.customers, axis=0))
    small = EvaluationSample.from_scenario(sc, 1000)
    assert small.size == 1000 and len(np.unique(small.x, axis=0)) == 1000  # drawn without replacement
    e2 = sample.observed.residual_second_moment(None, sample.m2)
    held = sample.observed.held_out
    assert 0.4 < (held > 0).mean() < 0.6  # two folds: the production model's held-out half
    names = list(sc.action_names)
    for a, name in enumerate(names):
        rows = sample.observed.action == a
        logged = sample.observed.reward[rows] ** 2 * sample.observed.inverse_propensity[rows] * held[rows]
        assert e2[:, a].mean() == pytest.approx(logged.sum() / len(frame), rel=1e-9)
        assert (sample.observed.reward[rows] ** 2 * sample.observed.inverse_propensity[rows]).sum() == pytest.approx(
            (frame.revenue[frame.coupon == name] ** 2 / frame.p[frame.coupon == name]).sum(), rel=1e-6
        )
    world = EvaluationSample.from_scenario(sc, 2000, observed=False)
    assert world.observed is None and world.size == 2000


@pytest.mark.parametrize(
    "edit,changes,message",
    [
        (lambda f: f.assign(revenue=f.revenue.astype(object).where(f.index != 4, "$0.00")), {}, "looks like currency text"),
        (lambda f: f.assign(revenue=f.revenue.astype(object).where(f.index != 4, "1,250.00")), {}, "looks like currency text"),
        (lambda f: f.assign(p=f.p * 100), {}, "look like percents (up to 50): divide them by 100"),
        (lambda f: f.assign(coupon=f.coupon.where(f.index != 8, "C10")), {}, "labels 'C10' and 'c10' differ only by case or spaces"),
        (lambda f: f.assign(seg=f.seg.where(f.index != 8, " A")), {}, "labels 'A' and 'a' differ only by case or spaces"),
        (lambda f: f.assign(coupon=f.coupon.where(f.index != 8, "c 10")), {}, "labels 'c 10' and 'c10' differ only by case"),
        (
            lambda f: f.assign(ts="03/04/2026"),
            {"timestamp": "ts"},
            "'03/04/2026' is not an ISO date (YYYY-MM-DD); give columns.date_format",
        ),
        (lambda f: f.assign(ts="2026-03-04"), {"timestamp": "ts", "date_format": "%m/%d/%Y"}, "is not written as '%m/%d/%Y'"),
    ],
)
def test_data_problems_say_how_to_fix_them(tmp_path, edit, changes, message):
    edit(toy_log()).to_csv(tmp_path / "log.csv", index=False)
    with pytest.raises(CouponmixError) as err:
        read_log(tmp_path / "log.csv", mapping(**changes))
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_a_rule_says_what_everyone_else_gets():
    """Without otherwise:, a rule used to send everyone it does not pick the alphabetically first action."""
    from couponmix.dataset.calibration_config import load_calibrate_config

    with pytest.raises(CouponmixError, match="a rule needs otherwise: the action for everyone it does not pick"):
        load_calibrate_config(config(targets={"r": {"kind": "rule", "feature": "x", "min": 0, "action": "c10"}}))


def test_data_checks_that_warn_and_the_fixes_they_offer(tmp_path):
    """A separator other than ',' is detected; US dates are read with date_format (range in ISO); one row
    with a tiny propensity dominating the weights is reported with its effective sample size and can be
    clipped; a rare action is flagged and can be dropped; the notes reach calibrate's warnings."""
    from couponmix.commands import calibrate

    frame = toy_log(2000)
    frame["ts"] = [f"{1 + i % 12:02d}/{1 + i % 28:02d}/2026" for i in range(len(frame))]
    frame.loc[7, "p"] = 1e-6
    frame.loc[[3, 5, 9], "coupon"] = "c30"
    frame.to_csv(tmp_path / "log.csv", index=False, sep=";")
    log = read_log(tmp_path / "log.csv", mapping(timestamp="ts", date_format="%m/%d/%Y"))
    assert log.n == 2000 and log.date_range == ("2026-01-01T00:00:00", "2026-12-28T00:00:00")
    ess = next(n for n in log.notes if "effective sample size" in n)
    assert "row 8 (propensity 1e-06)" in ess and "columns.min_propensity" in ess
    assert any("'c30' (3 rows)" in n and "rare_actions: drop" in n for n in log.notes)
    fixed = read_log(tmp_path / "log.csv", mapping(timestamp="ts", date_format="%m/%d/%Y", min_propensity=0.05, rare_actions="drop"))
    assert fixed.n == 1997 and "c30" not in fixed.action_names and fixed.propensity.min() == 0.05
    assert not any("effective sample size" in n for n in fixed.notes)
    assert any("raised to it" in n for n in fixed.notes) and any("are dropped" in n for n in fixed.notes)
    cfg = config(columns={**MAPPING, "timestamp": "ts", "date_format": "%m/%d/%Y"})
    res = calibrate(tmp_path / "log.csv", tmp_path / "sc", cfg)
    assert any(w.startswith("The log: column 'p': the inverse propensities") for w in res.warnings)


@pytest.mark.slow  # five cross-fits of 20,000 rows twice
def test_a_model_that_learned_next_to_nothing_does_not_pass_the_gate(tmp_path):
    """30 coupons that make no difference, 100 rows each: the per-action averages are noisy, so a model that
    early stopping cuts to a tree or two (next to the overall average) beats them out of fold. It must also beat
    the overall average to count as a model of how customers differ; it does not, and the means world is used."""
    from couponmix.commands import calibrate

    rng = np.random.default_rng(11)
    n = 3000
    frame = pd.DataFrame({"id": np.arange(n), "x": rng.normal(size=n), "seg": rng.choice(["a", "b"], n)})
    frame["coupon"] = [f"c{i:02d}" for i in rng.integers(0, 30, n)]
    frame["revenue"] = 5 + rng.normal(size=n)
    frame["p"] = 1 / 30
    frame.to_csv(tmp_path / "log.csv", index=False)
    cfg = config(targets={"model": {"kind": "greedy_model", "features": ["x"]}})
    res = calibrate(tmp_path / "log.csv", tmp_path / "sc", cfg)
    d = res.diagnostics
    assert d.overall_mean_mse is not None and d.baseline_mse > d.overall_mean_mse  # the per-action averages are the weaker baseline here
    assert d.model_mse < d.baseline_mse  # which the model beats: the per-action averages alone would pass it
    assert res.world == "means" and not any(t["passed"] for t in d.tried or [])
    assert "no better than the per-action averages (or the overall average)" in res.warnings[0]


def test_the_gate_tries_other_model_settings_before_it_gives_up(tmp_path):
    """A weak but real signal under heavy noise: an overfitting configured model (63 leaves, 5 rows a leaf, all
    300 trees grown: no early stopping, which would otherwise cut it to a few trees) loses to the per-action
    means out of fold, a simpler rung of the ladder beats them, and calibrate keeps
    that model and says which; on pure noise every rung fails and the warning lists what was tried."""
    from couponmix.commands import calibrate

    rng = np.random.default_rng(3)
    frame = toy_log(20_000, seed=3)
    lift = np.where(frame.coupon == "c10", 2.0 * (frame.x > 0), 0.0) + np.where(frame.coupon == "c20", 2.0 * (frame.x < 0), 0.0)
    frame["revenue"] = 5 + lift + rng.standard_t(3, len(frame)) * 4
    frame.to_csv(tmp_path / "log.csv", index=False)
    overfit = {"n_estimators": 300, "num_leaves": 63, "min_child_samples": 5, "learning_rate": 0.2, "patience": None}
    res = calibrate(tmp_path / "log.csv", tmp_path / "sc", config(model=overfit))
    tried = res.diagnostics.tried or []
    assert tried[0]["configured"] and not tried[0]["passed"], tried[0]
    assert res.world == "model" and any(t["passed"] for t in tried[1:])
    chosen = res.diagnostics.model_settings or {}
    assert chosen != {"num_leaves": 63, "min_child_samples": 5} and res.diagnostics.gain > res.diagnostics.gain_se
    note = next(w for w in res.warnings if "the configured revenue model (63 leaves" in w)
    assert f"a model with {chosen['num_leaves']} leaves" in note and "is used" in note
    frame["revenue"] = 5 + rng.standard_t(3, len(frame)) * 4
    frame.to_csv(tmp_path / "noise.csv", index=False)
    res = calibrate(tmp_path / "noise.csv", tmp_path / "noise", config(model=overfit))
    assert res.world == "means" and len(res.diagnostics.tried or []) == 5
    assert "None of the 5 model settings tried does better" in res.warnings[0] and "4 leaves, at least 200 rows a leaf" in res.warnings[0]


def test_a_calibrated_world_simulates_rewards_with_the_logs_own_shape(tmp_path):
    """Simulated continuous rewards keep the world's mean and second moment (what the exact formulas use)
    and the log's heavy tails: residuals are resampled per coupon, not drawn from a normal."""
    from couponmix.commands import calibrate
    from couponmix.dataset.scenario import get_scenario
    from tests import own_log_world as world

    frame = world.log(20_000, seed=3)
    frame.to_csv(tmp_path / "log.csv", index=False)
    calibrate(tmp_path / "log.csv", tmp_path / "sc", world.CONFIG)
    sc = get_scenario(str(tmp_path / "sc"))
    rng = np.random.default_rng(0)
    x = sc.sample_covariates(300_000, rng)
    action = rng.integers(0, sc.n_actions, len(x))
    r = sc.sample_rewards(x, action, rng)
    rows = np.arange(len(x))
    mu, m2 = sc.mu(x)[rows, action], sc.m2(x)[rows, action]
    assert abs(r.mean() - mu.mean()) <= 4 * r.std() / np.sqrt(len(r))
    assert abs((r * r).mean() - m2.mean()) <= 4 * (r * r).std() / np.sqrt(len(r))
    kurtosis = ((r - r.mean()) ** 4).mean() / r.var() ** 2
    logged = frame.revenue.to_numpy()
    assert kurtosis > 0.3 * ((logged - logged.mean()) ** 4).mean() / logged.var() ** 2 > 10  # a normal world: about 9
    assert (
        sc.sample_rewards(x[:100], action[:100], np.random.default_rng(1)).tolist()
        == sc.sample_rewards(x[:100], action[:100], np.random.default_rng(1)).tolist()
    )


def test_a_damaged_scenario_file_is_refused_with_one_line(tmp_path, capsys):
    """Every data file of a scenario folder carries its checksum in calibration.json: a damaged model text or
    array is refused with one line naming it, before LightGBM or numpy reads it (LightGBM can abort the
    process on a broken model)."""
    from couponmix.commands import calibrate

    toy_log(2000).to_csv(tmp_path / "log.csv", index=False)
    calibrate(tmp_path / "log.csv", tmp_path / "sc", config())
    model = tmp_path / "sc" / "model.reward.0.txt"
    text = model.read_text()
    model.write_text(text.replace("tree", "tRee", 3))
    out = tmp_path / "run"
    assert main(["run", str(tmp_path / "sc"), "--out", str(out), "--eval-size", "2000", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.reward.0.txt is damaged" in err[0] and err[0].startswith("couponmix: error:")
    assert not out.exists()
    model.write_text(text)
    arr = tmp_path / "sc" / "customers.npy"
    data = bytearray(arr.read_bytes())
    data[-1] ^= 0xFF
    arr.write_bytes(bytes(data))
    assert main(["run", str(tmp_path / "sc"), "--out", str(out), "--eval-size", "2000", "--quiet"]) == 2
    assert "customers.npy is damaged" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "x" * 65, "sp ace"])
def test_policy_names_that_would_reach_a_file_path_are_refused(tmp_path, capsys, name):
    toy_log(500).to_csv(tmp_path / "log.csv", index=False)
    cfg = config(targets={name: {"kind": "greedy_model"}})
    (tmp_path / "map.yaml").write_text(json.dumps(cfg))
    out = tmp_path / "sc"
    assert main(["calibrate", str(tmp_path / "log.csv"), "--config", str(tmp_path / "map.yaml"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a usable name" in err[0], err
    assert not out.exists()

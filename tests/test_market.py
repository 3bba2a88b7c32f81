"""The market scenario: truth formulas, revenue model, budgets, exploration, and the study outputs."""

import json
from pathlib import Path

import numpy as np
import pytest

from couponmix.cli import main
from couponmix.errors import CouponmixError
from couponmix.policy.allocation import Budget, GreedyAllocator
from simulators import get_scenario
from simulators.market import load_config

from .conftest import assert_within_se, mean_and_se

DATA = Path(__file__).with_name("data")
SMALL = str(DATA / "market_small.yaml")
RUN = ["--config", SMALL, "--pop-size", "12", "--generations", "8", "--eval-size", "20000", "--quiet"]


@pytest.fixture(scope="module")
def market():
    return get_scenario("market", config=SMALL, seed=0)


def test_truth_formulas_match_direct_simulation(market):
    """mu, m2 and expected spend for fixed customers against 200,000 simulated outcomes per action."""
    x0 = market.sample_covariates(6, np.random.default_rng(1))
    reps = 200_000
    rng = np.random.default_rng(2)
    mu, m2, spend = market.mu(x0), market.m2(x0), market.expected_spend(x0)
    for i in range(len(x0)):
        x = np.repeat(x0[i : i + 1], reps, axis=0)
        for a in range(market.n_actions):
            r, s = market.sample_outcomes(x, np.full(reps, a), rng)
            for draws, truth, what in ((r, mu[i, a], "mu"), (r * r, m2[i, a], "m2"), (s, spend[i, a], "spend")):
                est, se = mean_and_se(draws)
                if se == 0:  # a constant outcome (no coupon costs nothing) must equal its truth exactly
                    assert est == pytest.approx(truth, abs=1e-12)
                else:
                    assert_within_se(est, truth, se, z=4.5, what=f"{what} customer {i} action {a}")


def test_covariates_follow_the_config(market):
    cfg = market.cfg["population"]
    x = market.sample_covariates(200_000, np.random.default_rng(3))
    shares = np.bincount(x[:, 4].astype(int), minlength=4) / len(x)
    expected = np.array(list(cfg["segments"].values()))
    assert np.all(np.abs(shares - expected) < 4 * np.sqrt(expected * (1 - expected) / len(x)))
    est, se = mean_and_se(x[:, 0])
    assert_within_se(est, cfg["recency_mean_days"], se, what="recency")
    assert_within_se(x[:, 5].mean(), cfg["app_share"], np.sqrt(0.24 / len(x)), what="app share")


def test_heterogeneous_effects_include_sure_things_and_sleeping_dogs(market):
    x = market.sample_covariates(20_000, np.random.default_rng(4))
    p = market.buy_probability(x)
    seg = x[:, 4].astype(int)
    loyal, new = market.segment_names.index("loyal"), market.segment_names.index("new")
    pct5 = market.action_names.index("pct5")
    assert np.allclose(p[seg == loyal, pct5], p[seg == loyal, 0])  # a coupon does not move them
    assert np.all(p[seg == new, pct5] < p[seg == new, 0])  # a discount puts them off
    mu = market.mu(x)
    assert np.all(mu[seg == loyal, pct5] < mu[seg == loyal, 0])  # so the coupon only costs


def test_revenue_model_beats_per_action_means_clearly(market):
    x = market.sample_covariates(20_000, np.random.default_rng(5))
    rep = market.model_report(x)
    assert rep.rmse_vs_true_mu < 0.5 * rep.baseline_rmse_vs_true_mu
    assert rep.out_of_fold_rmse_vs_true_mu < 0.6 * rep.baseline_rmse_vs_true_mu
    assert rep.trees >= 1 and rep.trees <= rep.max_trees and rep.max_trees == market.cfg["model"]["n_estimators"]


def test_exploit_is_greedy_on_predictions_and_close_to_oracle(market):
    x = market.sample_covariates(20_000, np.random.default_rng(6))
    probs = market.components()["exploit"](x)
    pred = market.model.predict(x)
    np.testing.assert_array_equal(probs.argmax(axis=1), np.where(pred[:, 1:].max(1) > pred[:, 0], 1 + pred[:, 1:].argmax(1), 0))
    mu = market.mu(x)
    v_exploit, v_oracle = (probs * mu).sum(1).mean(), (market.oracle_probs(x) * mu).sum(1).mean()
    v_none = mu[:, 0].mean()
    assert v_none < v_exploit <= v_oracle
    assert (v_oracle - v_exploit) < 0.2 * (v_oracle - v_none)


@pytest.mark.parametrize("config,key", [("market_budget.yaml", "share"), ("market_spend.yaml", "spend")])
def test_budget_is_honoured_exactly(config, key):
    sc = get_scenario("market", config=str(DATA / config), seed=0)
    x = sc.calibration_x
    for probs, cost in ((sc.exploit_probs(x), sc._predicted_cost(x)), (sc.oracle_probs(x), sc.expected_spend(x))):
        coupon = 1 - probs[:, 0]
        if key == "share":
            assert coupon.mean() == pytest.approx(0.3, abs=1e-12)
        else:
            assert (probs[:, 1:] * cost[:, 1:]).sum(axis=1).mean() == pytest.approx(1.0, rel=1e-12)
    # on other customers the thresholds hold up to sampling error
    y = sc.sample_covariates(30_000, np.random.default_rng(8))
    if key == "share":
        share = (1 - sc.exploit_probs(y)[:, 0]).mean()
        assert abs(share - 0.3) < 4 * np.sqrt(0.21 / len(y))


def test_allocator_fills_capacity_exactly_with_ties():
    score = np.array([[0, 3.0], [0, 2.0], [0, 2.0], [0, 2.0], [0, 1.0], [0, -1.0]])
    alloc = GreedyAllocator.calibrate(score, None, Budget(max_coupon_share=0.5))
    p = alloc.probabilities(score)[:, 1]
    np.testing.assert_allclose(p, [1, 2 / 3, 2 / 3, 2 / 3, 0, 0])
    assert p.sum() == pytest.approx(3.0)
    # a budget that does not bind leaves the greedy policy alone, and nobody with negative gain is couponed
    loose = GreedyAllocator.calibrate(score, None, Budget(max_coupon_share=0.99)).probabilities(score)[:, 1]
    np.testing.assert_array_equal(loose, [1, 1, 1, 1, 1, 0])


def test_allocator_is_lp_optimal_against_brute_force():
    """The fractional greedy by gain per cost maximises total gain under the spend cap (LP relaxation)."""
    from scipy.optimize import linprog

    rng = np.random.default_rng(9)
    score = rng.normal(size=(40, 3))
    cost = rng.uniform(0.5, 2.0, size=(40, 3))
    alloc = GreedyAllocator.calibrate(score, cost, Budget(max_spend_per_customer=0.3))
    p = alloc.probabilities(score, cost)
    coupon = 1 + score[:, 1:].argmax(1)
    gain = score[np.arange(40), coupon] - score[:, 0]
    unit = cost[np.arange(40), coupon]
    res = linprog(-gain, A_ub=[unit], b_ub=[0.3 * 40], bounds=[(0, 1)] * 40)
    assert (gain * (1 - p[:, 0])).sum() == pytest.approx(-res.fun, rel=1e-9)


def test_config_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    for text, msg in [
        ("population: {segments: {a: 0.5, b: 0.4}}\n", "sum to 0.9"),
        ("colour: red\n", "unknown key(s) colour"),
        ("model: {features: [shoe_size]}\n", "model.features.0: expected .recency."),
        ("components: [exploit]\n", "two or more"),
        ("explore: {kind: greedy}\n", "explore.kind: expected .uniform. or .softmax., got .greedy."),
        ("exploit: {budget: {max_coupon_share: 1.5}}\n", "max_coupon_share"),
        (": [\n", "not valid YAML"),
    ]:
        bad.write_text(text)
        with pytest.raises(CouponmixError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            load_config(bad)
    with pytest.raises(CouponmixError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(CouponmixError, match="takes no config"):
        get_scenario("paper", config=SMALL)


@pytest.fixture(scope="module")
def market_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("m") / "run"
    assert main(["run", "--out", str(out), "--tol", "1.0", *RUN]) == 0  # market is the default scenario
    return out


def test_market_summary(market_run):
    s = json.loads((market_run / "summary.json").read_text())
    assert s["scenario"] == "market"
    for name in ("exploit", "explore", "model_v2", "winback", "soft_model", "oracle"):
        assert name in s["policies"]
    assert s["policies"]["oracle"]["value"] >= s["policies"]["exploit"]["value"]
    assert s["exploit_regret"]["per_customer"] == pytest.approx(s["policies"]["oracle"]["value"] - s["policies"]["exploit"]["value"])
    rm = s["revenue_model"]
    assert rm["rmse_vs_true_mu"] < rm["baseline_rmse_vs_true_mu"]
    prod = s["production"]
    assert prod["exploration_rate"] == s["recommended"]["alpha"]["explore"]
    logged = " ".join(prod["log_per_customer"])
    assert "pscore_avg" in logged and "pscore" in logged.replace("pscore_avg", "")
    comp = prod["estimator_comparison"]
    assert {"ips", "dr", "snips", "sndr", "dm", "ips[naive]", "dr[naive]"} <= set(comp)  # finite variance: all offered
    assert set(s["criterion"]["candidates"]) == set(comp) and all(s["variance_finite"].values())
    # the direct method's exact RMSE is small but rests on the model: the decision's error says so
    assert comp["dm"]["error"] > 5 * max(d["simulator"]["rmse"] for d in comp["dm"]["targets"].values())


def test_plan_block_in_run(market_run):
    out = market_run
    s = json.loads((out / "summary.json").read_text())
    plan = s["plan"]
    assert plan["tol"] == 1.0 and plan["reachable"] and 0 < plan["exploration_rate"] < 1
    assert plan["revenue_cost"] > 0 and plan["revenue_cost_pct"] > 0 and plan["worst_error"] <= 1.0 + 1e-9
    assert s["headline"]["log_size_needed"] == plan["at_recommended"]["log_size_needed"]
    assert "Planning" in (out / "report.html").read_text()


def test_no_exploration_is_reported_unsupported_not_as_a_number(market_run):
    s = json.loads((market_run / "summary.json").read_text())
    ne = s["no_exploration"]
    assert ne["alpha"] == {"exploit": 1.0, "explore": 0.0}
    for t in ("model_v2", "winback", "soft_model"):
        assert ne["targets"][t]["status"] == "unsupported" and ne["targets"][t]["unsupported_mass"] > 0
        # its error is all model-dependent: nothing from sampling would reveal it
        assert ne["targets"][t]["model_dependent"] > ne["targets"][t]["sampling_error"]
    assert any("never show some actions" in w for w in s["warnings"])


def test_revenue_and_rmse_fall_as_exploration_grows(market_run):
    import pandas as pd

    front = pd.read_csv(market_run / "pareto.csv").sort_values("alpha.explore")
    assert len(front) >= 5
    assert np.all(np.diff(front["revenue"]) < 0)
    assert np.all(np.diff(front["ope_rmse"]) < 0)


@pytest.mark.slow  # repeats whole computations; make test runs it
def test_same_seed_identical_outputs(market_run, tmp_path):
    again = tmp_path / "again"
    assert main(["run", "market", "--out", str(again), "--tol", "1.0", *RUN]) == 0
    for name in ("summary.json", "pareto.csv"):
        assert (again / name).read_bytes() == (market_run / name).read_bytes()


def test_general_mixture_of_three_components(tmp_path):
    cfg = tmp_path / "three.yaml"
    cfg.write_text((DATA / "market_small.yaml").read_text() + "components: [exploit, explore, winback]\n")
    out = tmp_path / "o"
    assert (
        main(
            [
                "run",
                "market",
                "--out",
                str(out),
                "--config",
                str(cfg),
                "--pop-size",
                "12",
                "--generations",
                "5",
                "--eval-size",
                "10000",
                "--quiet",
            ]
        )
        == 0
    )
    s = json.loads((out / "summary.json").read_text())
    assert set(s["recommended"]["alpha"]) == {"exploit", "explore", "winback"}
    assert abs(sum(s["recommended"]["alpha"].values()) - 1) < 1e-9


def test_a_config_may_name_its_currency_though_the_default_file_does_not(tmp_path):
    """Keys the schema knows but market.yaml leaves out (currency) are accepted; a misspelt one is not."""
    from couponmix.errors import CouponmixError
    from simulators.market import load_config

    (tmp_path / "eur.yaml").write_text("currency: EUR\n")
    assert load_config(tmp_path / "eur.yaml")["currency"] == "EUR"
    (tmp_path / "typo.yaml").write_text("curency: EUR\n")
    with pytest.raises(CouponmixError, match="unknown key\\(s\\) curency in top level"):
        load_config(tmp_path / "typo.yaml")

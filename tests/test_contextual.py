"""Contextual exploration: exact (a constant rate reproduces the global results, logs drawn under alpha(x)
are what the formulas assume, Monte Carlo with obp agrees), never worse than one rate for everyone, and in
the study's outputs."""

import json
from pathlib import Path

import numpy as np
import pytest

from couponmix.decide.contextual import (
    ContextualCriterion,
    ContextualMixture,
    FamilyParameters,
    contextual_block,
    least_cost_rule,
    logistic_grouping,
    margin,
    margin_grouping,
    search_front,
    segment_grouping,
)
from couponmix.decide.contextual_types import LogisticParameters, SearchFront
from couponmix.errors import CouponmixError
from couponmix.ope.criterion import Criterion
from couponmix.ope.estimators import EstimatorSpec, exact_suite
from couponmix.ope.objectives import EvaluationSample
from tests.conftest import mc_reps


@pytest.fixture(scope="module")
def market():
    from simulators import get_scenario

    return get_scenario("market")


@pytest.fixture(scope="module")
def market_setup(market):
    sample = EvaluationSample.from_scenario(market, 20_000, seed=3)
    crit = Criterion(sample, exact_suite(10.0), 50_000)
    return market, sample, crit


@pytest.fixture(scope="module")
def small_market_setup():
    from simulators import get_scenario

    sc = get_scenario("market", config=str(Path(__file__).with_name("data") / "market_small.yaml"))
    sample = EvaluationSample.from_scenario(sc, 20_000, seed=3)
    return sc, sample, Criterion(sample, exact_suite(10.0), 50_000)


@pytest.mark.parametrize("family", ["segment", "margin"])
def test_a_constant_rate_reproduces_the_global_results(small_market_setup, family):
    sc, sample, crit = small_market_setup
    grouping = segment_grouping(sc) if family == "segment" else margin_grouping(sc, sample.x, 4)
    obj = ContextualCriterion(crit, sc, grouping)
    eps = np.array([0.01, 0.05, 0.14, 0.5, 0.99])
    ie = list(crit.component_names).index("explore")
    alphas = np.zeros((len(eps), 2))
    alphas[:, ie], alphas[:, 1 - ie] = eps, 1 - eps
    rev, agg, per = crit.evaluate(alphas)
    crev, cagg, cper = obj.evaluate(np.repeat(eps[:, None], obj.size, axis=1))
    np.testing.assert_allclose(crev, rev, rtol=1e-12)
    np.testing.assert_allclose(cper, per, rtol=1e-10)
    np.testing.assert_allclose(cagg, agg, rtol=1e-10)


@pytest.mark.slow
def test_never_worse_than_one_rate_for_everyone(market_setup):
    sc, sample, crit = market_setup
    obj = ContextualCriterion(crit, sc, segment_grouping(sc))
    from couponmix.decide.curves import exploration_curve

    curve = exploration_curve(crit, crit.n)
    best = float(crit.revenue(np.eye(2)[obj.i_exploit])[0])
    block = contextual_block(obj, curve, best, {"a": 0.45, "b": 0.6}, 0.01, front_points=3, pop_size=16, generations=8)
    for at in block.at.values():
        assert at.reachable and at.revenue_cost_per_10k_customers <= at.global_revenue_cost_per_10k_customers + 1e-9
        assert max(at.errors.values()) <= at.error * (1 + 1e-6)
    # the contextual front weakly dominates every constant rate (same customers, exact objectives)
    front = block.front.contextual
    for g in block.front.global_:
        assert any(p.revenue >= g.revenue - 1e-12 and p.error <= g.error + 1e-12 for p in front)
    # segments buy precision more cheaply on market (measured: about 17% at the recommended precision)
    assert block.at["b"].saving_pct > 5
    # the rule at a precision is the cheapest of the searched front, the SLSQP rule and the constant rate
    for at in block.at.values():
        cost = at.revenue_cost_per_10k_customers / 10_000
        assert at.found_by in ("NSGA-II", "SLSQP", "one rate for everyone")
        within = [p for p in front if p.error <= at.error * (1 + 1e-9)]
        assert cost <= best - max(p.revenue for p in within) + 1e-12
    assert block.search.evaluations > 0 and block.search.seeds >= 12
    # summary.json's block reads back as the same records
    assert type(block).from_dict(block.to_dict()) == block


@pytest.mark.slow
def test_logs_drawn_under_alpha_x_are_what_the_formulas_assume(market_setup):
    """Each customer's component is drawn with its own group's weights, and the logged balanced propensity is
    sum_k alpha_k(x) pi_k(a|x)."""
    from couponmix.dataset.logs import simulate_log

    sc, _, _ = market_setup
    grouping = segment_grouping(sc)
    names = list(sc.components())
    ie = names.index("explore")
    eps = np.array([0.05, 0.6, 0.2, 0.3])
    alphas = np.zeros((4, 2))
    alphas[:, ie], alphas[:, 1 - ie] = eps, 1 - eps
    mix = ContextualMixture(sc.components(), sc, grouping, alphas)
    log = simulate_log(sc, mix, 200_000, seed=4)
    g = grouping.group_of(sc, log["context"])
    for k in range(4):
        explored = (log["stratum_idx"][g == k] == ie).mean()
        se = np.sqrt(eps[k] * (1 - eps[k]) / (g == k).sum())
        assert abs(explored - eps[k]) <= 4 * se, (k, explored, eps[k])
    ax = alphas[g]
    p = (log["pscore_components"] * ax).sum(axis=1)
    np.testing.assert_allclose(log["pscore_avg"], p, rtol=1e-12)
    assert log["alpha"].shape == (200_000, 2) and np.array_equal(log["alpha"], ax)


def test_least_cost_rule_is_feasible_and_cheaper(small_market_setup):
    sc, sample, crit = small_market_setup
    obj = ContextualCriterion(crit, sc, segment_grouping(sc))
    found = least_cost_rule(obj, 0.6, 0.1)
    assert found is not None
    eps, err, params = found
    assert params is None and err.max() <= 0.6 * (1 + 1e-6) and eps.shape == (4,) and (eps >= 0.01).all() and (eps <= 0.99).all()


@pytest.mark.parametrize("family", ["segment", "logistic"])
def test_the_search_over_the_family_never_loses_a_seed_and_finds_more(small_market_setup, family):
    """NSGA-II over the family's parameters, seeded with constant rates: every seed is weakly dominated by the
    front it returns, every returned rule is feasible for the family (bounds, cap <= 1 - floor), the front is
    the exact evaluation of its rules, the search finds rules by group that beat every constant rate at some
    precision, and the same seed gives the same front."""
    sc, sample, crit = small_market_setup
    grouping = segment_grouping(sc) if family == "segment" else logistic_grouping(sc, sample.x)
    obj = ContextualCriterion(crit, sc, grouping)
    fam = FamilyParameters(obj, 0.01)
    rates = np.linspace(0.02, 0.6, 8)
    seeds = np.array([fam.constant(r) for r in rates])
    found = search_front(obj, fam, seeds, pop_size=16, generations=6, seed=1)
    assert found.evaluations == 16 * 6
    seed_eps = fam.eps(seeds)
    seed_rev, seed_err, _ = obj.evaluate(seed_eps)
    for r, e in zip(seed_rev, seed_err):
        assert np.any((found.revenue >= r - 1e-12) & (found.error <= e + 1e-12)), (r, e)
    x = found.x
    assert np.all(x >= fam.xl - 1e-15) and np.all(x <= fam.xu + 1e-15)
    if family == "logistic":
        assert np.all(x[:, 0] + x[:, 1] <= 0.99 + 1e-12)
        assert np.all(np.diff(found.eps, axis=1) <= 1e-12)  # every rule falls with the margin
    rev, agg, per = obj.evaluate(found.eps)
    np.testing.assert_allclose(found.revenue, rev, rtol=1e-12)
    np.testing.assert_allclose(found.error, agg, rtol=1e-12)
    assert np.all(np.diff(found.error) >= 0) and np.all(np.diff(found.revenue) >= 0)  # a front
    varying = np.ptp(found.eps, axis=1) > 1e-9
    beats = [np.all((r > seed_rev + 1e-12) | (e < seed_err - 1e-12)) for r, e in zip(found.revenue[varying], found.error[varying])]
    assert any(beats)  # some rule by group is better than every constant seed at its own precision
    again = search_front(obj, fam, seeds, pop_size=16, generations=6, seed=1)
    np.testing.assert_array_equal(again.x, found.x)
    doc = json.loads(json.dumps(found.to_dict()))
    assert list(doc) == ["x", "eps", "revenue", "error", "errors", "intervals_95", "evaluations"]
    np.testing.assert_array_equal(SearchFront.from_dict(doc).intervals_95, found.intervals_95)


def test_the_mean_criterion_constrains_the_mean(small_market_setup):
    """With the mean over future policies as the criterion, the least-cost rule bounds the mean error (not
    each target's), so it costs no more than the rule that bounds every target."""
    sc, sample, crit = small_market_setup
    mean_crit = Criterion(sample, exact_suite(10.0), 50_000, aggregate="mean")
    worst = least_cost_rule(ContextualCriterion(crit, sc, segment_grouping(sc)), 0.55, 0.15)
    obj = ContextualCriterion(mean_crit, sc, segment_grouping(sc))
    start = 0.15
    assert obj.combine(obj.rmse(np.full((1, 4), start)))[0] <= 0.55
    found = least_cost_rule(obj, 0.55, start)
    assert found is not None and worst is not None
    eps, err, _ = found
    assert err.mean() <= 0.55 * (1 + 1e-6)
    assert obj.revenue(eps[None])[0] >= obj.revenue(worst[0][None])[0] - 1e-12


@pytest.mark.slow
def test_the_study_reports_the_rule_and_both_fronts(tmp_path):
    import json

    from couponmix.cli import main
    from couponmix.infra.progress import listen

    out = tmp_path / "run"
    with listen() as events:
        code = main(
            [
                "run",
                "market",
                "--out",
                str(out),
                "--eval-size",
                "10000",
                "--pop-size",
                "12",
                "--generations",
                "4",
                "--tol",
                "0.6",
                "--contextual",
                "segment",
                "--quiet",
            ]
        )
    assert code == 0
    # the contextual phase moves through its own steps, named, instead of sitting at one percentage
    inside = [e for e in events if e.kind == "phase" and 6 < e.done <= 7]
    names = " ".join(e.desc for e in inside)
    assert "least-cost rule" in names and "search generation" in names and "polishing the rule" in names
    assert [e.done for e in inside] == sorted(e.done for e in inside) and len({e.done for e in inside}) > 10
    s = json.loads((out / "summary.json").read_text())
    at = s["contextual"]["at"]["recommended"]
    assert at["reachable"] and at["rule"].startswith("explore ") and "% of all traffic" in at["rule"]
    assert at["revenue_cost_per_10k_customers"] <= at["global_revenue_cost_per_10k_customers"]
    assert s["contextual"]["at"]["tolerance"]["error"] == 0.6
    assert (out / "contextual.png").stat().st_size > 1000
    html = (out / "report.html").read_text()
    assert "Exploration that depends on the customer" in html and 'id="fig-contextual"' in html
    # cheaper at the same precision: the headline, the cards and the production steps follow the rule
    from html import unescape

    from couponmix.outputs.report import amount, headline
    from couponmix.studies.summary import from_json

    assert s["contextual"]["recommended"] is (at["revenue_cost_per_10k_customers"] < at["global_revenue_cost_per_10k_customers"])
    assert s["contextual"]["recommended"]  # on market, segments save about 17%
    if s["contextual"]["recommended"]:
        text = headline(from_json((out / "summary.json").read_text()))
        assert text.startswith(at["rule"][0].upper() + at["rule"][1:]) and amount(at["revenue_cost_per_10k_customers"]) in text
        # what the rule buys, in the reward's unit: each policy's 95% half-width at the rule, from its own law
        # (B + 1.96 se with RMSE = sqrt(se^2 + B^2): between the RMSE and sqrt(1 + 1.96^2) = 2.2 RMSEs)
        assert set(at["intervals_95"]) == set(at["errors"]) and "(95% interval)" in text and "RMSE" not in text
        assert at["worst_interval_95_pct"] == max(at["intervals_95_pct"].values())
        for t, half in at["intervals_95"].items():
            assert at["errors"][t] <= half <= np.hypot(1, 1.959964) * at["errors"][t] + 1e-9
            assert at["intervals_95_pct"][t] == pytest.approx(100 * half / abs(s["policies"][t]["value"]))
        page = unescape(html)
        assert 'data-key="contextual.at.recommended.revenue_cost_per_10k_customers"' in html.split("<h2")[0]  # a card
        assert "look up their group (segment)" in page and "Why it costs less" in page
        costs = [g["explore_cost_per_customer"] for g in s["contextual"]["groups"]]
        assert all(np.isfinite(costs)) and max(costs) > min(costs)
    assert main(["run", "market", "--out", str(tmp_path / "bad"), "--contextual", "colour", "--quiet"]) == 2
    # the run's own rule logs a population: rows carry their customer's weights
    log = tmp_path / "log"
    assert main(["simulate", "market", "--n", "70000", "--out", str(log), "--contextual-from", str(out), "--quiet"]) == 0
    import pandas as pd

    frame = pd.read_parquet(log, columns=["alpha.explore"])
    assert set(np.round(np.unique(frame["alpha.explore"]), 12)) <= set(np.round(at["exploration_rate"], 12))
    # the same folder without --contextual: the figure of the earlier run does not linger beside the new report
    args = ["run", "market", "--out", str(out), "--eval-size", "10000", "--pop-size", "12", "--generations", "4", "--quiet"]
    assert main(args) == 0
    assert not (out / "contextual.png").exists() and "contextual" not in json.loads((out / "summary.json").read_text())


def test_the_logistic_family_is_monotone_bounded_and_never_worse(small_market_setup):
    """The logistic curve in the margin: rise 0 is the constant rule (to the last digit of the global
    results), every rule falls with the margin between floor and cap, and the least-cost rule at a precision
    costs no more than the constant rate that reaches it."""
    sc, sample, crit = small_market_setup
    grouping = logistic_grouping(sc, sample.x)
    shape = grouping.shape
    obj = ContextualCriterion(crit, sc, grouping)
    assert obj.size == 8 and np.all(np.diff(shape.centers) > 0)
    np.testing.assert_array_equal(grouping.group_of(sc, sample.x), np.searchsorted(grouping.edges, margin(sc, sample.x), side="right"))
    flat = shape.eps(shape.constant(0.2))[0]
    np.testing.assert_allclose(flat, 0.2, rtol=0, atol=1e-15)
    ie = list(crit.component_names).index("explore")
    alpha = np.zeros((1, 2))
    alpha[0, ie], alpha[0, 1 - ie] = 0.2, 0.8
    np.testing.assert_allclose(obj.rmse(flat[None]), crit.evaluate(alpha)[2], rtol=1e-10)
    rng = np.random.default_rng(0)
    lo, hi = 0.01, 0.99
    for _ in range(20):
        theta = np.array([rng.uniform(b[0], b[1]) for b in shape.bounds(lo, hi)])
        theta[1] = min(theta[1], hi - theta[0])
        e = shape.eps(theta)[0]
        assert np.all(np.diff(e) <= 1e-15) and e.min() >= theta[0] - 1e-15 and e.max() <= theta[0] + theta[1] + 1e-15
    target, start = 0.6, 0.15
    const_err = obj.rmse(np.full((1, obj.size), start))[0]
    assert const_err.max() <= target  # the constant start is feasible
    found = least_cost_rule(obj, target, start, starts=1)
    assert found is not None
    eps, err, params = found
    assert err.max() <= target * (1 + 1e-6) and np.all(np.diff(eps) <= 1e-12)
    assert isinstance(params, LogisticParameters) and params.floor <= eps.min() + 1e-12 and params.cap >= eps.max() - 1e-12
    assert list(params.to_dict()) == ["floor", "cap", "midpoint", "scale"]
    back = obj.grouping.shape.parameters(FamilyParameters(obj, 0.01).of_rule(eps, params))  # theta is the inverse
    np.testing.assert_allclose(list(back.to_dict().values()), list(params.to_dict().values()), rtol=1e-12)
    assert obj.revenue(eps[None])[0] >= obj.revenue(np.full((1, obj.size), start))[0] - 1e-12


def test_simulate_logs_under_a_contextual_rule(tmp_path, capsys):
    """simulate --contextual-from: every row carries its customer's own weights, those of its group, and the
    balanced propensity is sum_k alpha_k(x) pi_k(a|x); bad sources get one line."""
    import json

    import pandas as pd

    from couponmix.cli import main
    from couponmix.dataset.simulate import LogRule, LogSummary
    from simulators import get_scenario

    small = str(Path(__file__).with_name("data") / "market_small.yaml")
    sc = get_scenario("market", config=small)
    grouping = segment_grouping(sc)
    eps = np.linspace(0.05, 0.5, grouping.size)
    doc = _rule_doc(grouping, eps)
    _rule_folder(tmp_path / "run", grouping, eps)
    out = tmp_path / "log"
    args = ["simulate", "market", "--config", small, "--n", "70000", "--out", str(out), "--quiet"]
    assert main([*args, "--contextual-from", str(tmp_path / "run")]) == 0
    frame = pd.read_parquet(out)
    summary = json.loads((out / "_summary.json").read_text())
    assert summary["contextual"]["rule"] == "explore by segment" and "alpha.explore" in summary["columns"]
    assert LogSummary.from_dict(summary).to_dict() == summary and isinstance(LogSummary.from_dict(summary).contextual, LogRule)
    x = frame[list(sc.covariate_names)].to_numpy()
    group = grouping.group_of(sc, x)
    np.testing.assert_array_equal(frame["alpha.explore"].to_numpy(), eps[group])
    np.testing.assert_allclose(frame["alpha.exploit"].to_numpy() + frame["alpha.explore"].to_numpy(), 1.0)
    comps = sc.components()
    rows, a = np.arange(len(frame)), frame["action"].to_numpy()
    p = frame["alpha.exploit"].to_numpy() * comps["exploit"](x)[rows, a] + frame["alpha.explore"].to_numpy() * comps["explore"](x)[rows, a]
    np.testing.assert_allclose(frame["pscore_avg"].to_numpy(), p, rtol=1e-12)
    # the share logged by explore follows the rule (binomial error)
    share = float((frame["component"] == list(comps).index("explore")).mean())
    expected = float(eps[group].mean())
    assert abs(share - expected) < 4 * np.sqrt(expected * (1 - expected) / len(frame))
    capsys.readouterr()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "summary.json").write_text(json.dumps({**doc, "study": {**doc["study"], "scenario": "newsletter"}}))
    for extra, message in [
        (["--contextual-from", str(tmp_path / "other")], "is a rule for scenario 'newsletter', not 'market'"),
        (["--contextual-from", str(tmp_path / "run"), "--alpha", "explore=0.1,exploit=0.9"], "not both"),
        (["--contextual-from", str(tmp_path / "nothing")], "cannot read"),
        (["--contextual-from", str(tmp_path / "run"), "--world-seed", "3"], "world seed 0"),
        (["--contextual-from", str(tmp_path / "run"), "--at", "tolerance"], "no reachable contextual rule at 'tolerance'"),
        ([], "needs --alpha"),
    ]:
        assert main([*args[:-3], "--out", str(tmp_path / "o"), "--quiet", *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, (extra, err)
        assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("kind", [pytest.param("ips", marks=pytest.mark.slow), "dr"])
def test_streamed_contextual_objectives_equal_the_in_memory_ones(kind):
    """StreamingObjectives with a grouping: one mixture per group, chunk by chunk, equals ContextualCriterion
    on the same customers; chunk size, workers and the row cache change nothing; one rate for every group
    equals the streamed global mixture."""
    from couponmix.infra.backend import LocalBackend
    from couponmix.infra.seeding import BLOCK
    from couponmix.ope.streaming import StreamingObjectives, population_chunk
    from simulators import get_scenario

    sc = get_scenario("market", config=str(Path(__file__).with_name("data") / "market_small.yaml"))
    spec = EstimatorSpec(kind)
    grouping = segment_grouping(sc)
    names = list(sc.components())
    ie = names.index("explore")
    eps = np.random.default_rng(2).uniform(0.03, 0.7, (3, grouping.size))
    alphas = np.zeros((3, grouping.size, len(names)))
    alphas[..., ie], alphas[..., 1 - ie] = eps, 1 - eps
    size = BLOCK + 777
    streamed = StreamingObjectives(sc, spec, 20_000, size, seed=4, chunk_size=BLOCK, grouping=grouping)
    x = population_chunk(sc, 4, size, 4 * BLOCK, 0)  # the same customers, in one piece
    memory = ContextualCriterion(Criterion(EvaluationSample.from_covariates(sc, x), [spec], 20_000, error="simulator"), sc, grouping)
    rev, agg, per = streamed.evaluate(alphas)
    rev_m, agg_m, per_m = memory.evaluate(eps)
    np.testing.assert_allclose(rev, rev_m, rtol=1e-12)
    np.testing.assert_allclose(per, per_m, rtol=1e-9)
    np.testing.assert_allclose(agg, agg_m, rtol=1e-9)
    other = StreamingObjectives(sc, spec, 20_000, size, seed=4, chunk_size=2 * BLOCK, backend=LocalBackend(2), grouping=grouping)
    np.testing.assert_allclose(other.evaluate(alphas)[2], per, rtol=1e-12)
    uncached = StreamingObjectives(sc, spec, 20_000, size, seed=4, chunk_size=BLOCK, cache_bytes=0, grouping=grouping)
    assert streamed.cached and not uncached.cached
    for a, b in zip(uncached.evaluate(alphas), (rev, agg, per)):
        assert np.array_equal(a, b)
    flat = StreamingObjectives(sc, spec, 20_000, size, seed=4, chunk_size=BLOCK)
    one = np.repeat(alphas[:1, :1], grouping.size, axis=1)  # group 0's mixture for every group
    np.testing.assert_allclose(streamed.evaluate(one)[2], flat.evaluate(alphas[:1, 0])[2], rtol=1e-10)
    np.testing.assert_allclose(streamed.evaluate(one)[0], flat.evaluate(alphas[:1, 0])[0], rtol=1e-12)
    with pytest.raises(CouponmixError, match="one mixture per group"):
        streamed.evaluate(alphas[:, :2])


@pytest.mark.slow
def test_evaluate_streams_a_contextual_rule_beside_its_one_rate(tmp_path, capsys):
    """evaluate --contextual-from: the run's rule (each group at its own mixture) and the one rate that reached
    the same precision, on one streamed population; the rule's row equals ContextualCriterion on the same
    customers, its average weights are the groups' population shares times their mixtures."""
    import json

    from couponmix.cli import main
    from couponmix.infra.seeding import BLOCK
    from couponmix.ope.streaming import population_chunk
    from simulators import get_scenario

    small = str(Path(__file__).with_name("data") / "market_small.yaml")
    sc = get_scenario("market", config=small)
    grouping = segment_grouping(sc)
    eps = np.array([0.4, 0.1, 0.2, 0.05])
    _rule_folder(tmp_path / "run", grouping, eps, rule="by segment", global_exploration_rate=0.15)
    size = BLOCK + 500
    args = ["evaluate", "market", "--config", small, "--population", str(size), "--seed", "5", "--estimator", "dr", "--quiet"]
    assert main([*args, "--contextual-from", str(tmp_path / "run"), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    one, rule = res["mixtures"]
    assert one["alpha"] == {"exploit": 0.85, "explore": 0.15} and "rule" not in one and rule["rule"] == "by segment"
    x = population_chunk(sc, 5, size, 2 * BLOCK, 0)
    shares = np.bincount(grouping.group_of(sc, x), minlength=4) / size
    np.testing.assert_allclose([g["share"] for g in rule["groups"]], shares, rtol=1e-12)
    assert rule["alpha"]["explore"] == pytest.approx(float(shares @ eps), rel=1e-12)
    crit = Criterion(EvaluationSample.from_covariates(sc, x), [EstimatorSpec("dr")], sc.default_n, error="simulator")
    memory = ContextualCriterion(crit, sc, grouping)
    rev, agg, per = memory.evaluate(np.vstack([np.full(4, 0.15), eps]))
    np.testing.assert_allclose([one["revenue"], rule["revenue"]], rev, rtol=1e-12)
    np.testing.assert_allclose([one["ope_rmse"], rule["ope_rmse"]], agg, rtol=1e-9)
    np.testing.assert_allclose([d["rmse"] for d in rule["targets"].values()], per[1], rtol=1e-9)
    # text output names the rule; neither --alpha nor a rule: one line
    assert main([*args, "--contextual-from", str(tmp_path / "run")]) == 0
    assert "the contextual rule" in capsys.readouterr().out
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs --alpha" in err


def _rule_doc(grouping, eps, **point) -> dict:
    """A run's summary.json (the example contextual run's, on market with world seed 0) whose only rule, at the
    recommended precision, is ``eps`` by ``grouping``: what simulate, evaluate and validate read."""
    import json

    doc = json.loads((Path(__file__).resolve().parents[1] / "reports/examples/contextual/summary.json").read_text())
    assert doc["scenario"] == "market" and doc["world_seed"] == 0 and doc["study"]["scenario"] == "market"
    doc["contextual"]["grouping"] = grouping.to_dict()
    doc["contextual"]["components"] = {"exploit": "exploit", "explore": "explore"}
    rule = {"error": 0.5, "reachable": True, "exploration_rate": list(map(float, eps)), "rule": "explore by segment", **point}
    doc["contextual"]["at"] = {"recommended": rule}
    return doc


def _rule_folder(folder: Path, grouping, eps, **point) -> Path:
    """A run folder holding only a contextual rule."""
    import json

    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps(_rule_doc(grouping, eps, **point)))
    return folder


@pytest.mark.montecarlo
def test_validate_draws_logs_under_a_contextual_rule(tmp_path):
    """validate --contextual-from: logs drawn under the rule, obp's balanced IPS and DR on each; the Monte Carlo
    MSE matches the contextual analytic error within 3 standard errors, and that analytic error is the one
    ContextualCriterion computes on the same customers."""
    import json

    from couponmix.cli import main
    from simulators import get_scenario

    small = str(Path(__file__).with_name("data") / "market_small.yaml")
    sc = get_scenario("market", config=small)
    grouping = segment_grouping(sc)
    eps = np.array([0.5, 0.1, 0.25, 0.15])
    run = _rule_folder(tmp_path / "run", grouping, eps)
    reps = mc_reps(100, 1000)
    args = ["validate", "market", "--config", small, "--n", "1500", "--reps", str(reps), "--eval-size", "20000", "--seed", "3"]
    assert main([*args, "--estimator", "ips,dr", "--contextual-from", str(run), "--out", str(tmp_path / "v"), "--quiet"]) == 0
    doc = json.loads((tmp_path / "v" / "validation.json").read_text())
    assert doc["contextual_rule"] == "explore by segment"
    sample = EvaluationSample.from_scenario(sc, 20_000, seed=3)
    for name, per_target in doc["estimators"].items():
        crit = Criterion(sample, [EstimatorSpec(name)], 1500, error="simulator")
        analytic = ContextualCriterion(crit, sc, grouping).rmse(eps[None])[0]
        for (t, r), a in zip(per_target.items(), analytic):
            assert r["analytic_rmse"] == pytest.approx(a, rel=1e-9), (name, t)
            assert abs(r["z_score"]) <= 3, (name, t, r)
    # a rule and a mixture at once: one line
    assert main([*args, "--alpha", "explore=0.1,exploit=0.9", "--contextual-from", str(run), "--quiet"]) == 2


def test_segments_come_from_the_scenario_even_when_rare():
    """A segment too rare to show up in 50,000 draws is still a group when the scenario declares it (a
    calibrated log's rare category): otherwise a large population would hold a customer of no group."""
    from types import SimpleNamespace

    def draws(n, rng):  # codes 0 and 1 only: the rare code 2 never shows
        return np.column_stack([rng.random(n), rng.integers(0, 2, n).astype(float)])

    declared = SimpleNamespace(
        name="fake", covariate_names=("x", "segment"), categories=lambda f: ["a", "b", "rare"], sample_covariates=draws
    )
    g = segment_grouping(declared)
    assert g.values == [0.0, 1.0, 2.0] and g.labels == ["a", "b", "rare"]
    x = np.array([[0.5, 2.0], [0.1, 0.0]])
    np.testing.assert_array_equal(g.group_of(declared, x), [2, 0])
    undeclared = SimpleNamespace(name="fake", covariate_names=("x", "segment"), categories=lambda f: None, sample_covariates=draws)
    assert segment_grouping(undeclared).values == [0.0, 1.0]  # the drawn values, labelled by value


def test_market_declares_its_segments(market_setup):
    sc, _, _ = market_setup
    g = segment_grouping(sc)
    assert g.labels == list(sc.segment_names) and g.values == [float(i) for i in range(len(sc.segment_names))]

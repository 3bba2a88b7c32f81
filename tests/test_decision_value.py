"""The decision a log supports (issue 22, item 1): the normal law of the candidates' estimates (exact
covariances from cross moments) gives the probability of deploying the truly best policy and the regret of
"deploy the estimated best" and of the safe rule. Checked against logs simulated from the world, every
candidate estimated with obp's estimator, on paper, market and an example study."""

from __future__ import annotations

import numpy as np
import pytest

from couponmix.decide.value import decision_law, log_decision, simulate_decisions
from couponmix.ope.estimators import EstimatorSpec, exact_suite
from couponmix.ope.objectives import EvaluationSample
from couponmix.studies.config import StudyConfig, load_study
from tests.conftest import mc_reps

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]

#: (world, logging mixture as the incumbent's share, log size)
CASES = {
    "paper": (lambda: StudyConfig(scenario="paper").build_scenario(), 0.6, 2_000),
    "market": (lambda: StudyConfig(scenario="market").build_scenario(), 0.9, 20_000),
    "spring_winback": (lambda: load_study(ROOT / "reports/examples/studies/spring_winback.yaml").build_scenario(), 0.8, 20_000),
}


def _setup(name):
    build, share, n = CASES[name]
    sc = build()
    sample = EvaluationSample.from_scenario(sc, 50_000, seed=3)
    comps = list(sample.component_names)
    inc = comps[int(np.argmax(sample.component_values))]
    alpha = np.full(len(comps), (1 - share) / (len(comps) - 1))
    alpha[comps.index(inc)] = share
    return sc, sample, alpha, inc, n


@pytest.mark.montecarlo
@pytest.mark.parametrize("name", list(CASES))
def test_the_decision_a_log_supports_matches_monte_carlo(name):
    sc, sample, alpha, inc, n = _setup(name)
    dv, cands, specs = log_decision(sample, alpha, n, exact_suite(), inc, error="simulator")
    reps = mc_reps(400, 2_000)
    mc = simulate_decisions(sc, sample, alpha, cands, specs, n, inc, reps, seed=1)
    for key, z in (("p_best", 2), ("p_best_safe", 2), ("p_switch_safe", 2), ("regret", 3), ("regret_safe", 3)):
        formula = getattr(dv, key)
        if key.startswith("p_"):  # the binomial standard error at the formula's probability (never 0)
            se = np.sqrt(max(formula * (1 - formula), 1 / reps) / reps)
        else:
            se = max(mc[key + "_se"], 1e-3 * abs(dv.values).max() / np.sqrt(reps))
        assert abs(formula - mc[key]) <= z * se, (name, key, formula, mc[key], se, dict(zip(dv.candidates, dv.estimators)))


def test_the_covariance_of_two_estimates_is_exact_for_plain_estimators():
    """For plain IPS and DR on one log, Var(V_hat_1 - V_hat_2) from the formula equals the variance of the
    difference of their per-customer terms computed directly on the sample's (x, k, a) rows."""
    sc, sample, alpha, inc, n = _setup("market")
    cands = {
        inc: sample.comp_probs[list(sample.component_names).index(inc)],
        "winback": sample.target_probs[list(sample.target_names).index("winback")],
    }
    specs = {inc: EstimatorSpec("ips"), "winback": EstimatorSpec("dr")}
    values, bias, cov = decision_law(sample, alpha, cands, specs, n)
    share = alpha[:, None, None] * sample.comp_probs  # P(k, a | x)
    p = share.sum(axis=0)
    w1 = np.divide(cands[inc], p, out=np.zeros_like(p), where=p > 0)
    w2 = np.divide(cands["winback"], p, out=np.zeros_like(p), where=p > 0)
    d2 = (cands["winback"] * sample.q).sum(axis=1)[:, None]
    # X1 = w1 r, X2 = d2 + w2 (r - q): E[(X1 - X2)^2] over rows and rewards, minus the squared mean
    a_ = -d2 + w2 * sample.q
    c_ = w1 - w2
    second = (p * (a_ * a_ + 2 * a_ * c_ * sample.mu + c_ * c_ * sample.m2)).sum() / sample.size
    mean = (p * (a_ + c_ * sample.mu)).sum() / sample.size
    var_diff = (second - mean**2) / n
    assert cov[0, 0] + cov[1, 1] - 2 * cov[0, 1] == pytest.approx(var_diff, rel=1e-9)
    assert bias[0] == pytest.approx(0.0, abs=1e-9)  # balanced IPS with full support is unbiased


def test_a_run_says_what_its_log_lets_the_team_decide(tmp_path):
    """summary.json's decision block is log_decision at the recommended mix and without exploration, with the
    run's criterion; the report says it in words."""
    import json

    from couponmix.cli import main
    from couponmix.studies.summary import from_json

    out = tmp_path / "run"
    assert main(["run", "market", "--out", str(out), "--eval-size", "20000", "--pop-size", "12", "--generations", "4", "--quiet"]) == 0
    s = from_json((out / "summary.json").read_text())
    d = s.decision
    assert d is not None and d["incumbent"] == "exploit" and d["n"] == s.n
    for key in ("recommended", "no_exploration"):
        r = d[key]
        assert set(r["candidates"]) == {"exploit", *s.recommended.targets}
        assert 0 <= r["p_best_safe"] <= 1 and 0 <= r["p_best"] <= 1 and r["regret"] >= 0 and r["regret_safe"] >= 0
        assert r["gain"] == pytest.approx(r["values"][r["best"]] - r["regret"] - r["values"]["exploit"], abs=1e-12)
    # the recommended mix's estimators are the run's own choices for the targets
    for t, e in s.recommended.targets.items():
        assert d["recommended"]["estimators"][t] == e["estimator"]
    html = (out / "report.html").read_text()
    assert "What the log lets you decide" in html and f"{100 * d['recommended']['p_best']:.0f}%" in html
    json.dumps(d, allow_nan=False)

"""The decision a log supports (issue 22, item 1): the normal law of the candidates' estimates (exact
covariances from cross moments) gives the probability of deploying the truly best policy and the regret of
"deploy the estimated best" and of the safe rule. Checked against logs simulated from the world, every
candidate estimated with obp's estimator, on paper, market and an example study."""

from __future__ import annotations

import numpy as np
import pytest

from couponmix.decide.value import decision_law, difference_shape, log_decision, rule_outcomes, simulate_decisions
from couponmix.ope.estimators import EstimatorSpec, exact_suite
from couponmix.ope.objectives import EvaluationSample
from couponmix.studies.config import StudyConfig, load_study
from tests.conftest import mc_reps

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]

#: (world, logging mixture as the incumbent's share, log size)
CASES = {
    "paper": (lambda: StudyConfig(scenario="paper").build_scenario(), 0.6, 2_000),
    "market": (lambda: StudyConfig(scenario="market").build_scenario(), 0.9, 3_000),
    "spring_winback": (lambda: load_study(ROOT / "reports/examples/studies/spring_winback.yaml").build_scenario(), 0.8, 3_000),
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
    dv, cands, specs = log_decision(
        sample,
        alpha,
        n,
        exact_suite(),
        inc,
    )
    reps = mc_reps(400, 2_000)
    mc = simulate_decisions(sc, sample, alpha, cands, specs, n, inc, reps, seed=1)
    shape = difference_shape(sample, alpha, cands, specs, inc)
    spread = rule_outcomes(dv.values, dv.bias, dv.cov, list(cands).index(inc), shape=shape.at(n))
    for key, z in (("p_best", 2), ("p_best_safe", 2), ("p_switch_safe", 2), ("regret", 3), ("regret_safe", 3)):
        formula = getattr(dv, key)
        if key.startswith("p_"):  # the binomial standard error at the formula's probability (never 0)
            se = np.sqrt(max(formula * (1 - formula), 1 / reps) / reps)
        else:
            # the Monte Carlo mean's standard error, from the logs or, when the law's costly wrong choices are
            # too rare for the logs to show them (market's safe rule), from the law's own spread of one log's
            # regret: the test is then a score test of the law
            se = max(getattr(mc, key + "_se"), getattr(spread, key + "_sd") / np.sqrt(reps))
        got = getattr(mc, key)
        assert abs(formula - got) <= z * se, (name, key, formula, got, se, dict(zip(dv.candidates, dv.estimators)))


def test_the_shape_of_a_rows_difference_is_its_moments_by_brute_force():
    """``difference_shape`` against its definition, row by row: for every customer, component and action, the
    difference of the two candidates' estimator terms with the drawn reward, its probability alpha_k pi_k(a|x)
    / M, and the skewness and kurtosis of that discrete distribution, computed here with plain loops."""
    sc, sample, alpha, inc, n = _setup("market")
    sample = sample.subset(np.arange(300))
    cands = {inc: sample.comp_probs[list(sample.component_names).index(inc)], "winback": sample.target_probs[1]}
    specs = {inc: EstimatorSpec("snips"), "winback": EstimatorSpec("dr")}
    shape = difference_shape(sample, alpha, cands, specs, inc)
    comp, r, q = sample.comp_probs, sample.reward_draws, sample.q
    p_bal = np.tensordot(alpha, comp, axes=1)
    w_inc, w_win = cands[inc] / p_bal, cands["winback"] / p_bal
    m, a_n = r.shape
    # SNIPS: (w r - R w) / W with W = E[w] = 1 and R = E[w mu] / W; DR: sum_a pi q + w (r - q)
    cells = [(k, x, a) for k in range(len(alpha)) for x in range(m) for a in range(a_n)]
    big_w = sum(alpha[k] * comp[k, x, a] * w_inc[x, a] for k, x, a in cells) / m
    big_r = sum(alpha[k] * comp[k, x, a] * w_inc[x, a] * sample.mu[x, a] for k, x, a in cells) / m / big_w
    values, probs = [], []
    for k in range(len(alpha)):
        for x in range(m):
            dm = float(cands["winback"][x] @ q[x])
            for a in range(a_n):
                psi_inc = (w_inc[x, a] * r[x, a] - big_r * w_inc[x, a]) / big_w
                psi_win = dm + w_win[x, a] * (r[x, a] - q[x, a])
                values.append(psi_win - psi_inc)
                probs.append(alpha[k] * comp[k, x, a] / m)
    v, p = np.array(values), np.array(probs)
    mean = (p * v).sum()
    var = (p * (v - mean) ** 2).sum()
    np.testing.assert_allclose(shape.skewness[1], (p * (v - mean) ** 3).sum() / var**1.5, rtol=1e-9)
    np.testing.assert_allclose(shape.kurtosis[1], (p * (v - mean) ** 4).sum() / var**2, rtol=1e-9)
    assert shape.skewness[0] == 0 and shape.kurtosis[0] == 0  # the incumbent against itself


def test_without_shape_the_team_standard_error_is_the_laws():
    """A zero skewness and excess variance leave the safe rule as the law with an exact standard error; a
    negative skewness (rows whose rare large values pull the difference down, so the logs where it looks
    best are those without them, with a small standard error) makes a switch more likely."""
    rng = np.random.default_rng(0)
    values, bias = np.array([1.0, 1.02, 0.9]), np.zeros(3)
    root = rng.normal(size=(3, 3)) * 0.01
    cov = root @ root.T + np.eye(3) * 1e-4
    plain = rule_outcomes(values, bias, cov, 0)
    zero = rule_outcomes(values, bias, cov, 0, shape=(np.zeros(3), np.zeros(3)))
    assert zero == plain
    skewed = rule_outcomes(values, bias, cov, 0, shape=(np.array([0.0, -0.3, 0.0]), np.array([0.0, 0.05, 0.0])))
    assert skewed.p_switch_safe > plain.p_switch_safe + 0.01


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
    assert d is not None and d.incumbent == "exploit" and d.n == s.n
    for r in (d.recommended, d.no_exploration):
        assert set(r.candidates) == {"exploit", *s.recommended.targets}
        assert 0 <= r.p_best_safe <= 1 and 0 <= r.p_best <= 1 and r.regret >= 0 and r.regret_safe >= 0
        assert r.gain == pytest.approx(r.values[r.best] - r.regret - r.values["exploit"], abs=1e-12)
    # the recommended mix's estimators are the run's own choices for the targets
    for t, e in s.recommended.targets.items():
        assert d.recommended.estimators[t] == e.estimator
    html = (out / "report.html").read_text()
    assert "What the log lets you decide" in html and f"{100 * d.recommended.p_best:.0f}%" in html
    json.dumps(d.to_dict(), allow_nan=False)


def test_payback_weighs_what_each_log_buys_against_its_cost():
    """payback: net = horizon x traffic x gain - n (V_incumbent - V_mixture) on every (mixture, size); the
    best is the grid's maximum; the break-even day is when the gain has paid the logging cost back."""
    from couponmix.decide.value import payback, rule_outcomes, value_covariance
    from couponmix.ope.criterion import Criterion

    sc, sample, alpha, inc, n = _setup("spring_winback")
    crit = Criterion(sample, exact_suite(), n)
    k = list(sample.component_names).index(inc)
    alphas = np.array([np.where(np.arange(2) == k, 1 - r, r) for r in (0.05, 0.2, 0.5)])
    pb = payback(sample, crit, alphas, inc, horizon_days=30, daily_traffic=5_000, sizes=[1_000, 4_000], draws=5_000)
    grid = np.array(pb.net_by_mixture_and_size)
    assert grid.shape == (3, 2) and pb.best.net == pytest.approx(grid.max())
    # one cell by hand: the law at that mixture and size (the rows' shape included), the safe rule's gain
    dv, cands, specs = log_decision(sample, alphas[1], 4_000, exact_suite(), inc, draws=5_000)
    shape = difference_shape(sample, alphas[1], cands, specs, inc).at(4_000)
    out = rule_outcomes(dv.values, dv.bias, dv.cov, list(cands).index(inc), 5_000, 0, value_covariance(sample, cands), shape)
    cost = 4_000 * (sample.component_values[k] - alphas[1] @ sample.component_values)
    assert grid[1, 1] == pytest.approx(30 * 5_000 * out.gain_safe - cost, rel=1e-9)
    best = pb.best
    assert best.value_of_log == pytest.approx(best.net + best.logging_cost)
    if best.break_even_day is not None:
        assert best.break_even_day == pytest.approx(best.log_days + best.logging_cost / (5_000 * best.gain_per_customer))
    assert pb.no_exploration.logging_cost == 0 and pb.no_exploration.exploration_rate == 0


def test_horizon_days_makes_the_payback_the_decision_rule(tmp_path, capsys):
    from couponmix.cli import main
    from couponmix.studies.summary import from_json

    out = tmp_path / "run"
    args = ["run", "market", "--eval-size", "20000", "--pop-size", "12", "--generations", "4", "--quiet", "--horizon-days", "60"]
    assert main([*args, "--out", str(out)]) == 0
    s = from_json((out / "summary.json").read_text())
    assert s.recommended.rule == "payback" and s.payback is not None
    assert s.recommended.alpha == pytest.approx(s.payback.best.alpha)
    assert s.payback.horizon_days == 60 and "Payback" in (out / "report.html").read_text()
    # the precision shown is at the log size the payback chose, not at the run's n
    assert s.n == s.payback.best.log_size != 50_000
    from couponmix.outputs.report import headline

    assert f"Over 60 days after the log, the most revenue comes from logging {s.payback.best.log_size:,} customers" in headline(s)
    assert main([*args, "--max-rmse", "0.5", "--out", str(tmp_path / "two")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "couponmix: error: --horizon-days and --max-rmse are two decision rules: give one"
    assert not (tmp_path / "two").exists()

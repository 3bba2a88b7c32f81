"""The decision a log supports (issue 22, item 1): the normal law's probability of deploying the truly best
policy and the regret of two deployment rules, against Monte Carlo over logs estimated with obp's
estimators, on paper, market and the spring_winback example study (the cases of
``tests/test_decision_value.py``), with the time one decision value takes.

Usage: python benchmarks/bench_decision.py [--reps 2000] [--cases market] [--out results_decision.json]
Writes benchmarks/results_decision.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_objectives import machine  # noqa: E402
from couponmix.decide.value import difference_shape, log_decision, rule_outcomes, simulate_decisions  # noqa: E402
from couponmix.ope.estimators import exact_suite  # noqa: E402
from couponmix.ope.montecarlo import Z95  # noqa: E402
from tests.test_decision_value import CASES, _setup  # noqa: E402

KEYS = ("p_best", "regret", "p_best_safe", "regret_safe", "p_switch_safe")


def safe_rule_tails(dv, mc: dict, incumbent: str, shape, draws: int = 200_000) -> dict:
    """Where the normal law and the logs may disagree on the safe rule: per candidate, how often it is picked
    and switched to under the law with the team's standard error taken as exact (``law_switch_exact_se``),
    under the law with the rows' shape (``law_switch``, what couponmix reports), in the logs with the team's
    standard error (the safe rule itself), and in the same logs with the law's standard deviation of the
    difference instead; the team's standard error over the law's, on average over the logs where the
    candidate looks best; and the shape of one row's difference with the incumbent."""
    names = list(dv.candidates)
    inc = names.index(incumbent)
    exact_se = rule_outcomes(dv.values, dv.bias, dv.cov, inc, draws)
    law = rule_outcomes(dv.values, dv.bias, dv.cov, inc, draws, shape=shape.at(dv.n))
    law_sd = np.sqrt(np.maximum(np.diag(dv.cov) + dv.cov[inc, inc] - 2 * dv.cov[:, inc], 0.0))
    logs = mc.logs
    out = {}
    for j, c in enumerate(names):
        if j == inc:
            continue
        mine = logs.pick == j
        out[c] = {
            "law_picked": law.p_pick[j],
            "mc_picked": float(mine.mean()),
            "law_switch_exact_se": exact_se.p_switch_to[j],
            "law_switch": law.p_switch_to[j],
            "mc_switch_team_se": float((mine & (logs.diff - Z95 * logs.se > 0)).mean()),
            "mc_switch_law_sd": float((mine & (logs.diff - Z95 * law_sd[j] > 0)).mean()),
            "team_se_over_law_sd": float((logs.se[mine] / law_sd[j]).mean()) if mine.any() and law_sd[j] > 0 else None,
            "row_skewness": float(shape.skewness[j]),
            "row_kurtosis": float(shape.kurtosis[j]),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated cases (default: all)")
    ap.add_argument("--out", default="results_decision.json", help="results file under benchmarks/")
    args = ap.parse_args()
    doc: dict = {"machine": machine(), "reps": args.reps, "cases": {}}
    print(f"{'case':16} {'quantity':14} {'formula':>10} {'Monte Carlo':>20} {'z':>6}")
    for name in args.cases.split(","):
        sc, sample, alpha, inc, n = _setup(name)
        t = time.perf_counter()
        dv, cands, specs = log_decision(sample, alpha, n, exact_suite(), inc)
        seconds = time.perf_counter() - t
        mc = simulate_decisions(sc, sample, alpha, cands, specs, n, inc, args.reps, seed=1, keep_logs=True)
        shape = difference_shape(sample, alpha, cands, specs, inc)
        tails = safe_rule_tails(dv, mc, inc, shape)
        spread = rule_outcomes(dv.values, dv.bias, dv.cov, list(cands).index(inc), shape=shape.at(n))
        rows = {}
        for key in KEYS:
            f, m, se = getattr(dv, key), getattr(mc, key), getattr(mc, key + "_se")
            # the test's standard error: binomial at the formula's probability; for a regret, the logs' own or
            # the law's spread of one log's regret, whichever is larger (a score test of the law)
            if key.startswith("p_"):
                test_se = (max(f * (1 - f), 1 / args.reps) / args.reps) ** 0.5
            else:
                test_se = max(se, getattr(spread, key + "_sd") / args.reps**0.5)
            z = (f - m) / test_se
            rows[key] = {"formula": f, "mc": m, "mc_se": se, "test_se": test_se, "z": z}
            print(f"{name:16} {key:14} {f:10.4f} {m:10.4f} +- {test_se:6.4f} {z:6.2f}")
        doc["cases"][name] = {
            "alpha": dict(zip(sample.component_names, alpha.tolist())),
            "n": n,
            "incumbent": inc,
            "estimators": {c: s.name for c, s in specs.items()},
            "values": dict(zip(dv.candidates, dv.values.tolist())),
            "decision_seconds": seconds,
            "quantities": rows,
            "safe_rule_tails": tails,
        }
    (ROOT / "benchmarks" / args.out).write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()

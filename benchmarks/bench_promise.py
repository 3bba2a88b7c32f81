"""Monte Carlo confirmation of the promise at the recommended mixtures of `make demo` (market, world seed 0), of
the published setting (paper, whose Switch-DR promise rests partly on the model) and of the example studies
(reports/examples/batch).

Logs are drawn from the population (fresh customers for every log), not from the evaluation sample the
promise is computed on; the truth comes from 2,000,000 customers. For each future policy: the estimator
the decision chose, and naive DR beside it (whose low exact RMSE rests on the model), their Monte Carlo
RMSE with its standard error, the simulator's exact RMSE (z = MSE difference in Monte Carlo standard
errors), and the decision's robust error, which must not be below the Monte Carlo RMSE.

Usage: python benchmarks/bench_promise.py [--reps 2000] [--study-reps 300] [--n 5000]
                                          [--out benchmarks/results_promise.json]
With 2,000 logs the Monte Carlo RMSE is known to about 1.6% (one standard error), enough to see a 3% error.
The estimators are the ones the decision chose at each study's own log size; the check runs at n = 5,000
(the error law's scaling with n is checked separately in tests/test_planner.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_objectives import machine  # noqa: E402
from couponmix.ope.criterion import Criterion  # noqa: E402
from couponmix.ope.estimators import EstimatorSpec, exact_suite  # noqa: E402
from couponmix.ope.montecarlo import monte_carlo  # noqa: E402
from couponmix.ope.objectives import EvaluationSample  # noqa: E402

EXAMPLES = ROOT / "reports" / "examples"
STUDIES = {
    "market (make demo)": (EXAMPLES / "market" / "summary.json", None),
    "paper": (EXAMPLES / "paper" / "summary.json", "paper"),
} | {
    name: (EXAMPLES / "batch" / name / "summary.json", EXAMPLES / "studies" / f"{name}.yaml")
    for name in ("app_bargain_push", "newsletter_spend_cap", "spring_winback")
}


def check(name: str, summary_path: Path, study: Path | str | None, n: int, reps: int, workers: int) -> dict:
    from couponmix.studies.config import StudyConfig, load_study

    summary = json.loads(summary_path.read_text())
    cfg = StudyConfig(scenario=study) if study == "paper" else load_study(study) if study is not None else StudyConfig()
    sc = cfg.build_scenario()
    alpha_map = summary["recommended"]["alpha"]
    alpha = [alpha_map[c] for c in sc.components()]
    sample = EvaluationSample.from_scenario(sc, summary["evaluation_sample_size"], seed=summary["seed"])
    clip_ok = all(summary["variance_finite"].values())
    crit = Criterion(sample, exact_suite(finite_variance=clip_ok), n)
    chosen = {t: e["estimator"] for t, e in summary["production"]["estimators"].items()}
    specs = {s.name: s for s in crit.specs if s.name in chosen.values()}
    if clip_ok:
        specs["dr[naive]"] = EstimatorSpec("dr", weights="naive")
    t = time.perf_counter()
    res = monte_carlo(
        sc,
        alpha,
        list(specs.values()),
        n,
        reps,
        seed=summary["seed"],
        eval_size=summary["evaluation_sample_size"],
        truth_size=2_000_000,
        workers=workers,
    )
    seconds = time.perf_counter() - t
    compare = crit.compare(alpha)
    rows = []
    print(f"{name}: alpha = {alpha_map}, n = {n:,}, {reps:,} logs from the population ({seconds:.0f} s)")
    print(f"{'estimator':14s} {'target':12s} {'MC RMSE':>9s} {'+/- se':>8s} {'exact':>9s} {'z':>6s} {'decision':>9s} {'chosen':>7s}")
    for est in specs:
        for t_name, r in res[est].items():
            decision = compare[est].targets[t_name].rmse
            row = {
                "estimator": est,
                "target": t_name,
                "chosen": chosen[t_name] == est,
                "mc_rmse": r.mc_rmse,
                "mc_rmse_se": r.mc_rmse_se,
                "exact_rmse": r.analytic_rmse,
                "z": r.z_score,
                "decision_error": decision,
                "decision_not_below_mc": decision >= r.mc_rmse - 3 * r.mc_rmse_se,
            }
            rows.append(row)
            print(
                f"{est:14s} {t_name:12s} {r.mc_rmse:9.5f} {r.mc_rmse_se:8.5f} {r.analytic_rmse:9.5f} "
                f"{r.z_score:6.2f} {decision:9.5f} {'yes' if row['chosen'] else '':>7s}",
                flush=True,
            )
    return {"alpha": alpha_map, "n": n, "reps": reps, "seconds": seconds, "world_seed": cfg.world_seed, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=2000, help="logs for the market")
    ap.add_argument("--study-reps", type=int, default=300, help="logs for each example study")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", default=None, help="run one study by name")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results_promise.json"))
    args = ap.parse_args()
    doc = {"machine": machine(), "truth_size": 2_000_000, "studies": {}}
    for name, (summary, study) in STUDIES.items():
        if args.only is not None and args.only != name:
            continue
        reps = args.reps if study in (None, "paper") else args.study_reps
        doc["studies"][name] = check(name, summary, study, args.n, reps, args.workers)
        Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()

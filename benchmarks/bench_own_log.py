"""Does the promise hold on a team's own log? (issue 21)

An independent heavy-tailed world (``tests/own_log_world.py``, not couponmix's market) writes a 50,000-row
log. couponmix calibrates a scenario from it and runs the study; then logs of the run's size are drawn from
the world itself (fresh customers, the world's own rewards) at the recommended mixture, and each target is
estimated by the estimator the decision chose, with the production reward model. The Monte Carlo RMSE
against the world's exact values is set against the promise (and the promise's own standard error), and the
stated revenue cost (with its standard error) against the world's own. ``tests/test_own_log_promise.py``
runs the same check with fewer logs.

With ``--seeds K`` the whole check is repeated on K independent team logs (seeds 1..K): the promise is
itself an estimate from one log, and the sweep measures how it spreads around the Monte Carlo RMSE and
whether its own standard error says how far it may be off.

Usage: python benchmarks/bench_own_log.py [--reps 400] [--means] [--default-model] [--seeds K]
Writes benchmarks/results_own_log[_means|_default_model].json, or results_own_log_seeds[...].json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_objectives import machine  # noqa: E402
from tests import own_log_world as world  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=400)
    ap.add_argument("--rows", type=int, default=50_000, help="rows of the team's log")
    ap.add_argument("--means", action="store_true", help="a mapping whose model fails the gate: the per-action-means world")
    ap.add_argument("--default-model", action="store_true", help="calibrate with couponmix's default model settings")
    ap.add_argument("--seeds", type=int, default=0, help="repeat the check on this many independent team logs")
    args = ap.parse_args()
    t0 = time.perf_counter()
    config = {k: v for k, v in world.CONFIG.items() if k != "model"} if args.default_model else None
    tag = "_means" if args.means else "_default_model" if args.default_model else ""
    if args.seeds:
        runs = []
        for seed in range(1, args.seeds + 1):
            with tempfile.TemporaryDirectory() as tmp:
                one = world.promise_check(tmp, means=args.means, reps=args.reps, rows=args.rows, config=config, seed=seed)
            runs.append({"seed": seed, **one})
            print(f"seed {seed}: " + ", ".join(f"{t} {d['promise_over_mc']:.2f}" for t, d in one["targets"].items()), flush=True)
        doc = {"machine": machine(), "rows": args.rows, "reps": args.reps, "summary": sweep_summary(runs), "runs": runs}
        name = f"results_own_log_seeds{tag}.json"
    else:
        with tempfile.TemporaryDirectory() as tmp:
            doc = {"machine": machine(), **world.promise_check(tmp, means=args.means, reps=args.reps, rows=args.rows, config=config)}
        name = f"results_own_log{tag}.json"
    doc["seconds"] = time.perf_counter() - t0
    print(json.dumps(doc.get("summary", doc), indent=1))
    (ROOT / "benchmarks" / name).write_text(json.dumps(doc, indent=1) + "\n")


def sweep_summary(runs: list[dict]) -> dict:
    """Over the team logs: how the promise over the Monte Carlo RMSE spreads, how often it is inside the
    issue's band (at most 10% optimistic, at most 25% conservative), and how often the gap is within two of
    the promise's own standard errors (with the Monte Carlo's)."""
    ratio = np.array([d["promise_over_mc"] for r in runs for d in r["targets"].values()])
    gap = np.array(
        [(d["promised_rmse"] - d["mc_rmse"]) / np.hypot(d["promise_se"], d["mc_rmse_se"]) for r in runs for d in r["targets"].values()]
    )
    cost = np.array([r["revenue_cost_per_10k"]["stated_over_true"] for r in runs])
    cost_z = np.array(
        [(r["revenue_cost_per_10k"]["stated"] - r["revenue_cost_per_10k"]["true"]) / r["revenue_cost_per_10k"]["stated_se"] for r in runs]
    )
    return {
        "promises": int(ratio.size),
        "promise_over_mc": {
            "median": float(np.median(ratio)),
            "p10": float(np.quantile(ratio, 0.1)),
            "p90": float(np.quantile(ratio, 0.9)),
        },
        "share_in_band": float(((ratio >= 0.9) & (ratio <= 1.25)).mean()),
        "share_more_than_10pct_optimistic": float((ratio < 0.9).mean()),
        "share_gap_within_2_se": float((np.abs(gap) <= 2).mean()),
        "share_optimistic_beyond_2_se": float((gap < -2).mean()),
        "cost_stated_over_true": {"median": float(np.median(cost)), "min": float(cost.min()), "max": float(cost.max())},
        "share_cost_within_10pct": float((np.abs(cost - 1) <= 0.1).mean()),
        "share_cost_within_2_se": float((np.abs(cost_z) <= 2).mean()),
    }


if __name__ == "__main__":
    main()

"""Does the promise hold on a team's own log? (issue 21)

An independent heavy-tailed world (``tests/own_log_world.py``, not couponmix's market) writes a 50,000-row
log. couponmix calibrates a scenario from it and runs the study; then logs of the run's size are drawn from
the world itself (fresh customers, the world's own rewards) at the recommended mixture, and each target is
estimated by the estimator the decision chose, with the production reward model. The Monte Carlo RMSE
against the world's exact values is set against the promise (and the promise's own standard error), and the
stated revenue cost (with its standard error) against the world's own. ``tests/test_own_log_promise.py``
runs the same check with fewer logs.

Usage: python benchmarks/bench_own_log.py [--reps 400] [--means] [--default-model]
Writes benchmarks/results_own_log[_means|_default_model].json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

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
    args = ap.parse_args()
    t0 = time.perf_counter()
    config = {k: v for k, v in world.CONFIG.items() if k != "model"} if args.default_model else None
    with tempfile.TemporaryDirectory() as tmp:
        doc = {"machine": machine(), **world.promise_check(tmp, means=args.means, reps=args.reps, rows=args.rows, config=config)}
    doc["seconds"] = time.perf_counter() - t0
    print(json.dumps(doc, indent=1))
    tag = "_means" if args.means else "_default_model" if args.default_model else ""
    (ROOT / "benchmarks" / f"results_own_log{tag}.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()

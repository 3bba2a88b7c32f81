"""Objective evaluation and whole-front timings against the notebook approach, measured in one run.

The notebook approach (the paper's code): every evaluation simulates a fresh log of n customers and
computes the statistic from sampled rewards. couponmix evaluates exact moments on a fixed covariate
sample of M customers, so its cost does not depend on n, while the notebook's grows with n.

Usage: python benchmarks/bench_objectives.py [--eval-size M] [--out benchmarks/results.json] [--quick]
Prints a table and writes JSON. Compare ratios within one run: this machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from couponmix.dataset.logs import simulate_log  # noqa: E402
from couponmix.decide.optimize import pareto_front  # noqa: E402
from couponmix.ope.estimators import EstimatorSpec  # noqa: E402
from couponmix.ope.objectives import EvaluationSample, MixtureObjectives  # noqa: E402
from couponmix.policy.mixture import Mixture  # noqa: E402
from simulators import get_scenario  # noqa: E402


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def notebook_evaluation(scenario, alpha, n, seed, truth, targets, lam):
    """One evaluation the notebook way: simulate a log of n, estimate each target, squared error."""
    log = simulate_log(scenario, Mixture(scenario.components(), alpha), n, seed)
    rows = np.arange(n)
    errs = []
    for name, pol in targets.items():
        w = np.minimum(pol(log["context"])[rows, log["action"]] / log["pscore_avg"], lam)
        errs.append((np.mean(w * log["reward"]) - truth[name]) ** 2)
    return max(errs)


def write_result(out: Path, doc: dict) -> None:
    """Write a benchmark's JSON staged under a temporary name and renamed into place (a benchmark's own file in the
    repository: couponmix's ``write_outputs`` would refuse the folder, which it did not write)."""
    staged = out.with_name(out.name + ".partial")
    staged.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(staged, out)


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--eval-size", type=int, default=100_000)
    ap.add_argument("--out", default=str(Path(__file__).with_name("results.json")))
    ap.add_argument("--quick", action="store_true", help="small front, for a smoke run")
    args = ap.parse_args()

    sc = get_scenario("paper")
    spec = EstimatorSpec("clipped_ips", 10.0)
    sample = EvaluationSample.from_scenario(sc, args.eval_size, seed=0)
    alpha = np.array([0.3, 0.3, 0.4])
    batch = 0.01 + 0.97 * np.random.default_rng(0).dirichlet(np.ones(3), 100)
    truth = dict(zip(sample.target_names, sample.target_values))
    pop, gens = (20, 10) if args.quick else (100, 100)

    rows = []
    for n in (10_000, 100_000, 1_000_000):
        obj = MixtureObjectives(sample, spec, n)
        obj1 = MixtureObjectives(sample, spec, n, threads=1)
        single = best_of(lambda: obj.evaluate(alpha[None, :]), 20)
        batched = best_of(lambda: obj.evaluate(batch), 5) / len(batch)
        batched_1 = best_of(lambda: obj1.evaluate(batch), 5) / len(batch)
        t = time.perf_counter()
        front = pareto_front(obj, 0.01, pop, gens, seed=0)
        front_s = time.perf_counter() - t
        nb = best_of(lambda: notebook_evaluation(sc, alpha, n, 1, truth, sc.targets(), spec.clip), 3 if n < 1_000_000 else 2)
        rows.append(
            {
                "n": n,
                "evaluation_sample": sample.size,
                "exact_single_ms": 1e3 * single,
                "exact_batched_ms_per_eval": 1e3 * batched,
                "exact_batched_1thread_ms_per_eval": 1e3 * batched_1,
                "front_evaluations": pop * gens,
                "front_s": front_s,
                "front_points": len(front),
                "notebook_ms_per_eval": 1e3 * nb,
                "speedup_per_eval": nb / batched,
            }
        )
        r = rows[-1]
        print(
            f"n={n:>9,}  exact: {r['exact_single_ms']:7.2f} ms single, {r['exact_batched_ms_per_eval']:6.3f} ms/eval "
            f"({1e3 / r['exact_batched_ms_per_eval']:,.0f} evaluations/s) "
            f"batched ({r['exact_batched_1thread_ms_per_eval']:.3f} on 1 thread) | front {pop}x{gens}: "
            f"{front_s:6.2f} s | notebook {r['notebook_ms_per_eval']:8.1f} ms/eval | "
            f"speed-up {r['speedup_per_eval']:8.0f}x",
            flush=True,
        )

    doc = {
        "benchmark": "objectives",
        "scenario": "paper",
        "estimator": spec.to_dict(),
        "machine": machine(),
        "targets": {"front_10k_evaluations_at_1M_s": 15.0, "min_speedup_per_eval": 50.0},
        "rows": rows,
    }
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.exists() else {}
    doc = {**{k: v for k, v in previous.items() if k == "scale"}, **doc}  # keep bench_scale.py's results
    write_result(out, doc)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

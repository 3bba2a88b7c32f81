"""LightGBM's own prediction against compiled prediction (lleaves), on the market's revenue model, in one run;
then `couponmix simulate market` at 1,000,000 customers with compiled prediction off and on, in child
processes (the model cache warm, so that the simulation is timed, not the fit or the compile).

Usage: python benchmarks/bench_predict.py [--customers 1000000] [--out benchmarks/results_predict.json]
Writes a table to stdout and the numbers to JSON. Compiling is timed on its own (a cold compile of each
fold model), then prediction with the compiled library loaded from the cache.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_objectives import machine  # noqa: E402


def interleaved_predictions(customers: int, rounds: int) -> tuple[Any, int, dict[str, list[dict]], dict[str, np.ndarray]]:
    """LightGBM's own prediction and the compiled library's on the market's revenue model and the same rows,
    interleaved ``rounds`` times (the compiled libraries already built or loaded): (the model, the rows
    predicted, per label the wall and CPU seconds of each round, per label the predictions)."""
    from couponmix.policy import compiled
    from simulators import get_scenario

    sc = get_scenario("market")
    model = sc.model
    x = sc.sample_covariates(customers, np.random.default_rng(1))
    for booster in model.models_:
        compiled.compiled_for(booster.model_to_string())
    times: dict[str, list[dict]] = {"lightgbm": [], "compiled": []}
    preds: dict[str, np.ndarray] = {}
    saved = compiled.COMPILE_ROWS
    try:
        for _ in range(rounds):
            for label, limit in (("lightgbm", 10**15), ("compiled", 1)):
                compiled.COMPILE_ROWS = limit
                model.__dict__.pop("_cache", None)
                t, c = time.perf_counter(), time.process_time()
                preds[label] = model.predict(x.copy())
                times[label].append({"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c})
    finally:
        compiled.COMPILE_ROWS = saved
    return model, customers * sc.n_actions, times, preds


def predict_rates(customers: int, threads: int) -> dict:
    """The compile (or load) time of the fold models, then ``interleaved_predictions`` over two rounds."""
    from couponmix.policy import compiled
    from simulators import get_scenario

    model = get_scenario("market").model
    compiled._loaded.clear()
    t = time.perf_counter()
    for booster in model.models_:
        compiled.compiled_for(booster.model_to_string())
    compile_seconds = time.perf_counter() - t
    model, rows, times, preds = interleaved_predictions(customers, 2)
    best = {label: min(r["wall_s"] for r in runs) for label, runs in times.items()}
    return {
        "customers": customers,
        "rows": rows,
        "threads": threads,
        "folds": len(model.models_),
        "compile_or_load_seconds": compile_seconds,
        "lightgbm_seconds": best["lightgbm"],
        "compiled_seconds": best["compiled"],
        "speedup": best["lightgbm"] / best["compiled"],
        "max_abs_difference": float(np.abs(preds["lightgbm"] - preds["compiled"]).max()),
        "lightgbm_rows_per_second": rows / best["lightgbm"],
        "compiled_rows_per_second": rows / best["compiled"],
    }


def simulate_seconds(customers: int, compiled_on: bool, cache: str) -> tuple[float, float]:
    env = {**os.environ, "COUPONMIX_CACHE_DIR": cache, "COUPONMIX_COMPILED": "on" if compiled_on else "off"}
    with tempfile.TemporaryDirectory() as tmp:
        args = ["simulate", "market", "--alpha", "exploit=0.8,explore=0.2", "--n", str(customers), "--out", f"{tmp}/log", "--quiet"]
        code = "import resource, sys, time; from couponmix.cli import main; t = time.perf_counter(); c = main(sys.argv[1:]); " + (
            "print('SECONDS', time.perf_counter() - t, 'CPU', sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) + "
            "sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2]), 'CODE', c)"
        )
        res = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=True)
    line = [w for w in res.stdout.splitlines() if w.startswith("SECONDS")][-1].split()
    if line[5] != "0":
        raise RuntimeError(res.stderr)
    return float(line[1]), float(line[3])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results_predict.json"))
    args = parser.parse_args()
    from couponmix.infra.threads import default_threads

    result = {"machine": machine(), "predict": predict_rates(args.customers, default_threads())}
    p = result["predict"]
    print(f"market revenue model, {p['customers']:,} customers x 4 actions, {p['folds']} fold models, {p['threads']} thread(s)")
    print(f"  compile (or load from the cache): {p['compile_or_load_seconds']:.1f} s")
    print(f"  LightGBM predict: {p['lightgbm_seconds']:.2f} s ({p['lightgbm_rows_per_second']:,.0f} rows/s)")
    print(f"  compiled predict: {p['compiled_seconds']:.2f} s ({p['compiled_rows_per_second']:,.0f} rows/s), {p['speedup']:.1f}x")
    print(f"  largest difference: {p['max_abs_difference']:.2e}")
    cache = os.environ.get("COUPONMIX_CACHE_DIR") or str(Path.home() / ".cache" / "couponmix")
    simulate_seconds(10_000, True, cache)  # warm the model cache and the compiled libraries
    runs = {}
    for on in (False, True, False, True):  # interleaved
        wall, cpu = simulate_seconds(args.customers, on, cache)
        runs.setdefault("compiled" if on else "lightgbm", []).append({"wall": wall, "cpu": cpu})
    result["simulate"] = {"customers": args.customers, **runs}
    for label, rs in runs.items():
        best = min(rs, key=lambda r: r["wall"])
        print(f"simulate market --n {args.customers:,} ({label}): {best['wall']:.1f} s wall, {best['cpu']:.1f} s CPU")
    ratio = min(r["wall"] for r in runs["lightgbm"]) / min(r["wall"] for r in runs["compiled"])
    result["simulate"]["speedup_wall"] = ratio
    print(f"simulate speedup: {ratio:.1f}x")
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Calibrating a scenario from a large log: time and peak memory of `couponmix calibrate` on a simulated
market log (exploit 80%, explore 20%), and of `couponmix run` on the folder it writes (its evaluation sample
is 100,000 of the log's own rows), measured in a child process each, beside the time of simulating it.

Usage: python benchmarks/bench_calibrate.py [--n 1000000] [--out benchmarks/results_calibrate.json]
The model cache is turned off, so every fit is timed.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_objectives import machine  # noqa: E402

MAPPING = """columns:
  features: [recency, frequency, monetary, tenure]
  categorical: [segment, channel]
  action: action
  reward: reward
  propensity: pscore_avg
  component: component
components:
  exploit: {kind: greedy_model, features: [recency, frequency, monetary, segment]}
  explore: {kind: uniform}
targets:
  model_v2: {kind: greedy_model, features: [recency, frequency, monetary, tenure, segment, channel]}
  winback: {kind: rule, feature: recency, min: 60, action: "2", otherwise: "0"}
  soft_model: {kind: softmax_model, temperature: 2.0}
"""

TIMED = """
import resource, sys, time
from couponmix.cli import main
t = time.perf_counter()
code = main(sys.argv[1:])
print("SECONDS", time.perf_counter() - t, "PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "CODE", code)
"""


def timed(args: list[str], env: dict) -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", TIMED, *args], env=env, capture_output=True, text=True, check=True)
    line = [w for w in out.stdout.split("\n") if w.startswith("SECONDS")][-1].split()
    if line[5] != "0":
        raise RuntimeError(out.stderr)
    return float(line[1]), float(line[3]) / 1024


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results_calibrate.json"))
    args = parser.parse_args()
    env = {**os.environ, "COUPONMIX_CACHE": "off", "CI": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "map.yaml").write_text(MAPPING)
        sim_s, sim_mb = timed(
            ["simulate", "market", "--alpha", "exploit=0.8,explore=0.2", "--n", str(args.n), "--out", str(tmp_path / "log"), "--quiet"], env
        )
        cal_s, cal_mb = timed(
            ["calibrate", str(tmp_path / "log"), "--config", str(tmp_path / "map.yaml"), "--out", str(tmp_path / "sc"), "--quiet"], env
        )
        size = sum(f.stat().st_size for f in (tmp_path / "sc").iterdir())
        run_s, run_mb = timed(["run", str(tmp_path / "sc"), "--out", str(tmp_path / "run"), "--quiet"], env)
    rows = [
        ("simulate (incl. the market's own model fit)", sim_s, sim_mb),
        ("calibrate", cal_s, cal_mb),
        ("run on the calibrated folder (default sizes)", run_s, run_mb),
    ]
    print(f"market log of {args.n:,} customers")
    print(f"{'step':45s} {'seconds':>8s} {'peak MB':>8s}")
    for name, s, mb in rows:
        print(f"{name:45s} {s:8.1f} {mb:8.0f}")
    print(f"scenario folder: {size / 2**20:.0f} MB")
    result = {
        "machine": machine(),
        "n": args.n,
        "simulate_seconds": sim_s,
        "simulate_peak_mb": sim_mb,
        "calibrate_seconds": cal_s,
        "calibrate_peak_mb": cal_mb,
        "scenario_folder_mb": size / 2**20,
        "run_seconds": run_s,
        "run_peak_mb": run_mb,
        "date": time.strftime("%Y-%m-%d"),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

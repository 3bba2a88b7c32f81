"""How fast does Ctrl-C stop a command? (the standard: within a second, workers included)

Each case starts a real ``couponmix`` process, waits until its work is under way (the worker processes
exist, or a fixed start-up delay for single-process commands), sends SIGINT and measures the time until the
process has exited. It also checks the exit status (130), that stderr is the one line
"couponmix: interrupted", that no worker process outlives its parent and that nothing half-written is left:
no staging folder or file, and nothing new beside ``--out`` but a batch's own folder (kept, with its marker,
so that a rerun resumes it). With ``--load`` two CPU-bound processes run beside it (the machine
has 2 cores), the condition under which the interpreter's own shutdown used to take 4-7 s.

Usage: python benchmarks/bench_interrupt.py [--times 5]
Writes benchmarks/results_interrupt.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_objectives import machine  # noqa: E402

EXE = str(Path(sys.executable).with_name("couponmix"))
STUDIES = ROOT / "reports" / "examples" / "studies"

CASES = {
    "validate --workers 2": (["validate", "market", "--alpha", "exploit=0.8,explore=0.2", "--reps", "400", "--workers", "2"], 2),
    "batch --workers 2": (["batch", str(STUDIES), "--workers", "2"], 2),
    "run (one process)": (["run", "market", "--eval-size", "20000"], 0),
}


def one(args: list[str], workers: int, folder: Path) -> dict:
    out = folder / "out"
    before = sorted(os.listdir(folder))
    p = subprocess.Popen([EXE, *args, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=folder)
    proc = psutil.Process(p.pid)
    deadline = time.monotonic() + 300
    while workers and p.poll() is None and len(proc.children(recursive=True)) < workers and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(4.0)  # the work is under way
    if p.poll() is not None:  # it ended before the interrupt: a broken case, not a measurement
        raise SystemExit(f"{' '.join(args)} ended before the interrupt: {p.stderr.read().decode() if p.stderr else ''}")
    kids = proc.children(recursive=True)
    t = time.monotonic()
    p.send_signal(signal.SIGINT)
    p.wait()
    seconds = time.monotonic() - t
    err = p.stderr.read().decode().strip().splitlines() if p.stderr else []
    time.sleep(0.5)
    alive = [k.pid for k in kids if k.is_running() and k.status() != psutil.STATUS_ZOMBIE]
    return {
        "seconds": seconds,
        "exit": p.returncode,
        "one_line": err == ["couponmix: interrupted"],
        "workers_left": len(alive),
        # nothing half-written: no staging (.NAME.tmp-*) anywhere, and nothing new but a batch's own folder, which
        # stays with its marker so that a rerun resumes it
        "clean": not any(".tmp-" in name for _, dirs, files in os.walk(folder) for name in dirs + files)
        and sorted(set(os.listdir(folder)) - ({"out"} if args[0] == "batch" else set())) == before,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--times", type=int, default=5)
    args = ap.parse_args()
    rows = []
    for load in (False, True):
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 if load else 0)]
        try:
            for name, (cmd, workers) in CASES.items():
                runs = []
                for _ in range(args.times):
                    with tempfile.TemporaryDirectory() as tmp:
                        runs.append(one(cmd, workers, Path(tmp)))
                s = np.array([r["seconds"] for r in runs])
                row = {
                    "command": name,
                    "load": "2 CPU-bound processes" if load else "no extra load",
                    "times": len(runs),
                    "median_s": float(np.median(s)),
                    "max_s": float(s.max()),
                    "all_exit_130": all(r["exit"] == 130 for r in runs),
                    "all_one_line": all(r["one_line"] for r in runs),
                    "workers_left": sum(r["workers_left"] for r in runs),
                    "all_clean": all(r["clean"] for r in runs),
                }
                rows.append(row)
                print(
                    f"{name:24} load {row['load']:22} median {row['median_s']:.2f} s, max {row['max_s']:.2f} s, "
                    f"130 {row['all_exit_130']}, one line {row['all_one_line']}, workers left {row['workers_left']}, "
                    f"clean {row['all_clean']}",
                    flush=True,
                )
        finally:
            for h in hogs:
                h.kill()
    doc = {"machine": machine(), "rows": rows}
    (ROOT / "benchmarks" / "results_interrupt.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()

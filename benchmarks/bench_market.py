"""Market scenario timings at n = 1M: model fit, prediction, mixing, the front, and the whole run.

Usage: python benchmarks/bench_market.py [--out benchmarks/results_market.json]
Target: the whole `couponmix run market --n 1000000` under a minute on this 2-core machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_objectives import machine, write_result  # noqa: E402
from couponmix.dataset.logs import simulate_log  # noqa: E402
from couponmix.decide.optimize import pareto_front  # noqa: E402
from couponmix.ope.estimators import EstimatorSpec  # noqa: E402
from couponmix.ope.objectives import EvaluationSample, MixtureObjectives  # noqa: E402
from couponmix.policy.mixture import Mixture  # noqa: E402
from simulators import get_scenario  # noqa: E402

N = 1_000_000


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(Path(__file__).with_name("results_market.json")))
    args = ap.parse_args()
    rows = {}
    sc = get_scenario("market", seed=0)
    _, rows["history_simulate_s"] = timed(lambda: sc.history)
    _, rows["model_fit_s"] = timed(lambda: sc.model)
    x = sc.sample_covariates(N, np.random.default_rng(0))
    _, rows["model_predict_1M_s"] = timed(lambda: sc.model.predict(x))
    mix = Mixture(sc.components(), [0.9, 0.1])
    _, rows["mix_draw_1M_s"] = timed(lambda: mix.draw(x, np.random.default_rng(1)))
    _, rows["simulate_log_1M_s"] = timed(lambda: simulate_log(sc, mix, N, seed=0))
    sample, rows["evaluation_sample_100k_s"] = timed(lambda: EvaluationSample.from_scenario(sc, 100_000, seed=0))
    obj = MixtureObjectives(sample, EstimatorSpec("ips"), N)
    rows["objective_rows_per_evaluation"] = obj.n_rows
    _, rows["front_100x100_s"] = timed(lambda: pareto_front(obj, 0.01, 100, 100, seed=0))
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(sys.executable).with_name("couponmix")
        _, rows["whole_run_1M_s"] = timed(
            lambda: subprocess.run(
                [str(exe), "run", "market", "--n", str(N), "--out", f"{tmp}/run", "--quiet"], check=True, capture_output=True
            )
        )
    for key, value in rows.items():
        print(f"{key:32s} {value:10.2f}" if isinstance(value, float) else f"{key:32s} {value:10d}")
    doc = {"benchmark": "market", "n": N, "machine": machine(), "targets": {"whole_run_1M_s": 60.0}, "rows": rows}
    out = Path(args.out)
    write_result(out, doc)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

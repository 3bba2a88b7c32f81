"""Scale benchmark: chunked simulation to Parquet (rows per second, peak resident memory at 10M and 100M
customers) against the raw numpy random-number throughput for the same draws, measured in one run; and
the exact objectives streamed over a 10M-customer population for a batch of 100 mixtures, and over a
1M-customer population with its rows kept between passes (first pass, repeated pass, a whole front).

Each simulation runs in its own process so that its peak RSS (ru_maxrss) is its own. The raw reference
draws exactly what the paper scenario draws per customer (4 covariates, a component and an action
uniform, a normal reward noise) in the same 65,536-customer blocks, and writes nothing.

Usage: python benchmarks/bench_scale.py [--quick] [--out benchmarks/results.json]
Prints a table and stores its results under "scale" in the JSON file (other keys are kept).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_objectives import machine, write_result  # noqa: E402
from couponmix.dataset.simulate import PARQUET_OPTIONS  # noqa: E402
from couponmix.infra.memory import tune_allocator  # noqa: E402
from couponmix.infra.seeding import BLOCK  # noqa: E402


def raw_rng_rate(n: int) -> float:
    """Customers per second of the bare draws, block by block, as numpy alone makes them."""
    t = time.perf_counter()
    for b, start in enumerate(range(0, n, BLOCK)):
        size = min(BLOCK, n - start)
        rng = np.random.default_rng([1, 2, b])
        rng.random((size, 4))
        rng.random(size)
        rng.random(size)
        rng.standard_normal(size)
    return n / (time.perf_counter() - t)


def parquet_write_rate(n: int, folder: Path) -> float:
    """Customers per second of writing alone: random columns of the log's schema, already in memory, written
    as `simulate` writes them (the floor under `simulate`, whatever the simulation costs)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    rows = 4 * BLOCK
    cols = {f"x{j + 1}": rng.random(rows) for j in range(4)}
    cols.update(
        component=rng.integers(0, 3, rows).astype(np.int16),
        action=rng.integers(0, 2, rows).astype(np.int16),
        reward=rng.standard_normal(rows),
        pscore_avg=rng.random(rows),
        pscore=rng.random(rows),
    )
    table = pa.table(cols)
    t = time.perf_counter()
    with pq.ParquetWriter(folder / "floor.parquet", table.schema, **PARQUET_OPTIONS) as writer:
        for _ in range(-(-n // rows)):
            writer.write_table(table, row_group_size=rows)
    rate = n / (time.perf_counter() - t)
    (folder / "floor.parquet").unlink()
    return rate


def in_memory_rate(n: int) -> float:
    """Customers per second of the simulation itself (covariates, policies, mixture draw, rewards), no writing."""
    from couponmix.dataset.logs import simulate_block
    from couponmix.infra.seeding import stream
    from couponmix.policy.mixture import Mixture
    from simulators import get_scenario

    sc = get_scenario("paper")
    mixture = Mixture(sc.components(), [0.3, 0.3, 0.4])
    t = time.perf_counter()
    for b, start in enumerate(range(0, n, BLOCK)):
        simulate_block(sc, mixture, min(BLOCK, n - start), stream(1, "log", b))
    return n / (time.perf_counter() - t)


def simulate_in_subprocess(n: int, workers: int, folder: Path, chunk: int) -> dict:
    code = textwrap.dedent(f"""
        import json, resource, time
        from simulators import get_scenario
        from couponmix.infra.backend import LocalBackend
        from couponmix.dataset.simulate import simulate_to_parquet
        import pyarrow.parquet        # imported before the clock starts, as a long-running worker has it
        before = resource.getrusage(resource.RUSAGE_SELF)
        t = time.perf_counter()
        simulate_to_parquet(get_scenario("paper"), [0.3, 0.3, 0.4], {n}, {str(folder)!r}, seed=1,
                            chunk_size={chunk}, backend=LocalBackend({workers}))
        elapsed = time.perf_counter() - t
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (me.ru_utime + me.ru_stime - before.ru_utime - before.ru_stime   # workers spawn inside the clock
               + kids.ru_utime + kids.ru_stime)
        print(json.dumps({{"seconds": elapsed, "cpu_seconds": cpu, "peak_rss_mb": me.ru_maxrss / 1024,
                          "peak_rss_worker_mb": kids.ru_maxrss / 1024}}))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["bytes_on_disk"] = sum(p.stat().st_size for p in folder.iterdir())
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="1M and 10M only")
    ap.add_argument("--out", default=str(Path(__file__).with_name("results.json")))
    ap.add_argument("--tmp", default=None, help="folder for the Parquet output (deleted afterwards)")
    args = ap.parse_args()
    sizes = [1_000_000, 10_000_000] + ([] if args.quick else [100_000_000])
    chunk = 16 * BLOCK
    rows = []
    tune_allocator()  # as simulate does, so that both sides of the ratio run alike
    raw = raw_rng_rate(10_000_000)
    memory_rate = in_memory_rate(10_000_000)
    print(f"in memory, no writing: {memory_rate / 1e6:.2f} M rows/s against raw rng {raw / 1e6:.1f} M/s ({raw / memory_rate:.1f}x)")
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        write_rate = parquet_write_rate(10_000_000, Path(tmp))
    print(
        f"writing alone (Parquet of ready columns): {write_rate / 1e6:.2f} M rows/s ({raw / write_rate:.1f}x the raw rng time)", flush=True
    )
    for n in sizes:
        for workers in (1, 2) if n >= 10_000_000 else (1,):
            with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
                r = simulate_in_subprocess(n, workers, Path(tmp) / "log", chunk)
            rate = n / r["seconds"]
            rows.append(
                {
                    "n": n,
                    "workers": workers,
                    "chunk_size": chunk,
                    "seconds": r["seconds"],
                    "rows_per_second": rate,
                    "raw_rng_rows_per_second": raw,
                    "slowdown_vs_raw_rng": raw / rate,
                    "cpu_seconds": r["cpu_seconds"],
                    "cpu_slowdown_vs_raw_rng": r["cpu_seconds"] * raw / n,
                    "peak_rss_mb": r["peak_rss_mb"],
                    "peak_rss_worker_mb": r["peak_rss_worker_mb"],
                    "gb_on_disk": r["bytes_on_disk"] / 1e9,
                }
            )
            row = rows[-1]
            print(
                f"n={n:>11,} workers={workers}  {row['seconds']:7.1f} s  {rate / 1e6:6.2f} M rows/s  "
                f"raw rng {raw / 1e6:6.1f} M/s  ({row['slowdown_vs_raw_rng']:4.1f}x wall, "
                f"{row['cpu_slowdown_vs_raw_rng']:4.1f}x CPU)  "
                f"peak RSS {row['peak_rss_mb']:6.0f} MB (workers {row['peak_rss_worker_mb']:5.0f} MB)  "
                f"{row['gb_on_disk']:5.2f} GB",
                flush=True,
            )
    # exact objectives streamed over a population, for a batch of mixtures per pass
    from couponmix.decide.optimize import pareto_front
    from couponmix.infra.backend import LocalBackend
    from couponmix.ope.estimators import EstimatorSpec
    from couponmix.ope.streaming import StreamingObjectives
    from simulators import get_scenario

    spec = EstimatorSpec("clipped_ips", 10.0)
    alphas = 0.01 + 0.97 * np.random.default_rng(0).dirichlet(np.ones(3), 100)  # one NSGA-II generation
    streaming = []

    def timed_pass(obj, what):
        t = time.perf_counter()
        obj.evaluate(alphas)
        seconds = time.perf_counter() - t
        streaming.append(
            {
                "population": obj.size,
                "mixtures": len(alphas),
                "workers": obj.backend.workers,
                "pass": what,
                "seconds": seconds,
                "mixture_evaluations_per_second": len(alphas) / seconds,
                "customer_mixture_pairs_per_second": len(alphas) * obj.size / seconds,
            }
        )
        print(
            f"streamed objectives, {what}: {obj.size:,} customers x {len(alphas)} mixtures, "
            f"{obj.backend.workers} worker(s): {seconds:.1f} s, {len(alphas) / seconds:.1f} mixture evaluations/s "
            f"({len(alphas) * obj.size / seconds / 1e9:.2f} G customer-mixture pairs/s)",
            flush=True,
        )

    big = 1_000_000 if args.quick else 10_000_000
    for workers in (1, 2):
        timed_pass(
            StreamingObjectives(
                get_scenario("paper"), spec, 1_000_000, big, chunk_size=16 * BLOCK, backend=LocalBackend(workers), cache_bytes=0
            ),
            "streamed, no cache",
        )
    population = 1_000_000
    obj = StreamingObjectives(get_scenario("paper"), spec, 1_000_000, population)
    timed_pass(obj, "first pass, keeping rows")
    timed_pass(obj, "repeated pass, rows kept")
    front_points, generations = 100, (20 if args.quick else 100)
    t = time.perf_counter()
    front = pareto_front(obj, floors=0.01, pop_size=front_points, generations=generations, seed=0)
    front_s = time.perf_counter() - t
    front_row = {
        "population": population,
        "log_size_n": 1_000_000,
        "pop_size": front_points,
        "generations": generations,
        "evaluations": front_points * (generations + 1),
        "seconds": front_s,
        "front_points": len(front),
    }
    print(
        f"front on a streamed population of {population:,} customers (rows kept): {front_points} x {generations} "
        f"generations, {front_s:.1f} s, {len(front)} points",
        flush=True,
    )
    path = Path(args.out)
    doc = json.loads(path.read_text()) if path.exists() else {}
    doc["scale"] = {
        "machine": machine(),
        "scenario": "paper",
        "simulate": rows,
        "in_memory": {"rows_per_second": memory_rate, "raw_rng_rows_per_second": raw, "slowdown_vs_raw_rng": raw / memory_rate},
        "parquet_write_alone": {"rows_per_second": write_rate, "slowdown_vs_raw_rng": raw / write_rate},
        "streaming_objectives": streaming,
        "front_on_streamed_population": front_row,
        "note": "simulate -> Parquet (no compression), one process per run; peak RSS from ru_maxrss",
    }
    write_result(path, doc)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

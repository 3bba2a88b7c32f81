"""Is the recommendation's stated spread the spread it has? (``decide.stability``)

Each study states how far its recommended exploration rate moves when the evaluation sample's customers are
resampled (a delete-a-group jackknife standard error). Here the same study is run on many independent samples
and the spread of the recommended rates across them is set against the standard errors the runs stated.

- ``--world market``: the simulated market (exploit and explore) with a small evaluation sample
  (``--eval-size``) and an error limit of 0.6, one independent sample (and front) per seed. The jackknife
  claims exactly this spread. (More than two logging policies, as on paper, get no stated spread.)
- ``--world own-log``: an independent heavy-tailed world (``tests/own_log_world.py``): per seed a team's log of
  50,000 rows, calibrated and run. Across seeds the rate moves with the log's rows (what the jackknife covers)
  and with the model refitted on each log (what it does not).

Usage: python benchmarks/bench_spread.py --world market|own-log [--seeds 30] [--eval-size 2000]
Writes benchmarks/results_spread_<world>.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_objectives import machine, write_result  # noqa: E402


def one_run(world: str, seed: int, eval_size: int) -> dict:
    """One study on the seed's sample: the recommended rate and its stated spread."""
    from couponmix.commands import calibrate
    from couponmix.studies.config import StudyConfig
    from couponmix.studies.study import run_config

    if world == "market":
        summary = run_config(StudyConfig(scenario="market", eval_size=eval_size, seed=seed, max_rmse=0.6)).summary
    else:
        from tests import own_log_world as ow

        with tempfile.TemporaryDirectory() as tmp:
            frame = ow.with_ticket(ow.log(50_000, seed=seed), seed + 1)
            frame.to_csv(Path(tmp) / "log.csv", index=False)
            calibrate(Path(tmp) / "log.csv", Path(tmp) / "sc", ow.CONFIG)
            summary = run_config(StudyConfig(scenario=str(Path(tmp) / "sc"), eval_size=eval_size)).summary
    sp = summary.recommendation_spread
    assert sp is not None
    return {"seed": seed, "rate": sp.exploration_rate, "se": sp.exploration_rate_se, "low": sp.low, "high": sp.high, "rule": sp.rule}


def summarise(runs: list[dict]) -> dict:
    """The rates' spread across runs against the standard errors they stated."""
    rates, ses = np.array([r["rate"] for r in runs]), np.array([r["se"] for r in runs])
    sd = float(rates.std(ddof=1))
    rms = float(np.sqrt((ses**2).mean()))
    k = len(rates)
    return {
        "runs": k,
        "rate_mean": float(rates.mean()),
        "rate_sd_across_runs": sd,
        # the SD of k normal draws is known to about 1/sqrt(2 (k - 1)) of itself
        "rate_sd_se": sd / np.sqrt(2 * (k - 1)),
        "stated_se_rms": rms,
        "stated_se_median": float(np.median(ses)),
        "sd_over_stated": sd / rms if rms > 0 else None,
        "share_within_own_95": float(np.mean([(r["low"] <= rates.mean() <= r["high"]) for r in runs])),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--world", choices=["market", "own-log"], required=True)
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--eval-size", type=int, default=None, help="evaluation sample (market: 2,000; own-log: 50,000)")
    args = ap.parse_args()
    eval_size = args.eval_size or (2_000 if args.world == "market" else 50_000)
    t0 = time.perf_counter()
    runs = []
    for seed in range(1, args.seeds + 1):
        runs.append(one_run(args.world, seed, eval_size))
        r = runs[-1]
        print(f"seed {seed}: rate {r['rate']:.3f}, stated se {r['se']:.3f} ({r['low']:.3f}-{r['high']:.3f})", flush=True)
    doc = {
        "benchmark": "spread",
        "world": args.world,
        "eval_size": eval_size,
        "machine": machine(),
        "summary": summarise(runs),
        "runs": runs,
        "seconds": time.perf_counter() - t0,
    }
    out = ROOT / "benchmarks" / f"results_spread_{args.world.replace('-', '_')}.json"
    write_result(out, doc)
    s = doc["summary"]
    print(
        f"across {s['runs']} runs: rate sd {s['rate_sd_across_runs']:.4f} +- {s['rate_sd_se']:.4f}; stated se rms "
        f"{s['stated_se_rms']:.4f} (median {s['stated_se_median']:.4f}); ratio {s['sd_over_stated']}; wrote {out}"
    )


if __name__ == "__main__":
    main()

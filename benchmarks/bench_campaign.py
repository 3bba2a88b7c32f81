"""Closed-loop campaigns on a drifting market (issue 22, item 3): cumulative revenue per fixed exploration
rate and for the payback rule's rate, with standard errors over replications (paired: every rate sees the
same customers), and the payback rate against the best fixed rate in hindsight.

The market drifts: loyal customers tire of 15% off (-0.05 log-odds a period) and, from period 3, bargain
hunters turn from 15% off (-1.5) to free shipping (+1.2) and new customers answer free shipping (+1.0).
The incumbent exploit was trained before the drift.

``--drift pays`` is a market where exploration must pay: from period 1 occasional customers answer 5% off
far better (+1.5 log-odds), a coupon the incumbent never sends them, so a loop that does not explore never
sees it (its own feedback is unchanged), and new customers keep arriving (+2 points a period). The payback
rule decides from the world of period 0, so it cannot price this drift.

``--world own-log`` runs the loop on a calibrated world instead: a team's heavy-tailed own log of 20,000 rows
(``tests/own_log_world.py``, seed 3) calibrated with ``couponmix calibrate``; every retraining starts from the
team's own log. The world does not drift (drift is a market setting).

Usage: python benchmarks/bench_campaign.py [--reps 20] [--periods 12] [--period-size 10000] [--drift pays]
       [--world own-log] [--rates 0,0.14,0.3] [--out results_campaign_fine.json]
Writes benchmarks/results_campaign.json (results_campaign_pays.json with --drift pays,
results_campaign_own_log.json with --world own-log).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_objectives import machine  # noqa: E402
from couponmix.commands import calibrate  # noqa: E402
from couponmix.studies.campaign import campaign  # noqa: E402
from couponmix.studies.config import StudyConfig  # noqa: E402

DRIFT = {
    "uplift_per_period": {"loyal": {"pct15": -0.05}},
    "step": {"period": 3, "uplift": {"bargain_hunter": {"pct15": -1.5, "free_shipping": 1.2}, "new": {"free_shipping": 1.0}}},
}
RATES = (0.0, 0.02, 0.05, 0.10, 0.14, 0.20, 0.30)
#: a drift only exploration can see (see the module docstring)
DRIFT_PAYS = {"step": {"period": 1, "uplift": {"occasional": {"pct5": 1.5}}}, "segment_shares_per_period": {"new": 0.02}}


def own_log_scenario(tmp: Path) -> str:
    """A calibrated world from a team's heavy-tailed own log (20,000 rows): its scenario folder."""
    from tests import own_log_world as world

    (tmp / "log.csv").write_text(world.log(20_000, seed=3).to_csv(index=False))
    (tmp / "config.yaml").write_text(yaml.safe_dump(world.CONFIG))
    calibrate(tmp / "log.csv", tmp / "scenario", tmp / "config.yaml")
    return str(tmp / "scenario")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--periods", type=int, default=12)
    ap.add_argument("--period-size", type=int, default=10_000)
    ap.add_argument("--history", type=int, default=20_000, help="customers in the market's historical log")
    ap.add_argument("--trees", type=int, default=60, help="LightGBM trees of every retrained model")
    ap.add_argument("--drift", choices=("default", "pays"), default="default", help="the drift (module docstring)")
    ap.add_argument("--rates", default=None, help="comma-separated exploration rates (default: 0, 2, 5, 10, 14, 20 and 30%%)")
    ap.add_argument("--world", choices=("market", "own-log"), default="market", help="the drifting market, or a calibrated own log")
    ap.add_argument("--out", default=None, help="results file name under benchmarks/ (default: by world and drift)")
    args = ap.parse_args()
    drift = DRIFT_PAYS if args.drift == "pays" else DRIFT
    rates = RATES if args.rates is None else tuple(float(r) for r in args.rates.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        if args.world == "own-log":
            drift = None
            cfg = StudyConfig(scenario=own_log_scenario(Path(tmp)))
        else:
            cfg = StudyConfig(
                scenario="market",
                scenario_config={"history": {"size": args.history}, "model": {"n_estimators": args.trees}, "drift": drift},
            )
        t = time.perf_counter()
        res = campaign(cfg, rates, args.periods, args.period_size, args.reps).to_dict()
        res["seconds"] = time.perf_counter() - t
    res["drift"] = drift
    res["world"] = args.world
    res["machine"] = machine()
    print(f"{'rate':>6} {'cumulative revenue':>20} {'vs no exploration':>24}")
    for row in res["table"]:
        print(f"{row['rate']:6.1%} {row['revenue']:20,.0f} {row['vs_first']:>12,.0f} +- {row['vs_first_se'] or 0:,.0f}")
    print(f"payback rate {res['payback_rate']:.1%}, best fixed in hindsight {res['best_fixed_rate']:.1%}: {res['payback_vs_best']}")
    name = "results_campaign_pays.json" if args.drift == "pays" else "results_campaign.json"
    if args.world == "own-log":
        name = "results_campaign_own_log.json"
    name = args.out or name
    (ROOT / "benchmarks" / name).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()

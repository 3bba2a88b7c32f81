"""Does the promise hold on a team's own log? (issue 21)

An independent heavy-tailed world (``tests/own_log_world.py``, not couponmix's market) writes a 50,000-row
log. couponmix calibrates a scenario from it and runs the study; then logs of n customers are drawn from the
world itself (fresh customers, the world's own rewards) at the recommended mixture, and each target is
estimated by the estimator the decision chose for that log size, with the production reward model. The
Monte Carlo RMSE against the world's exact values is set against the promised error, and the stated revenue
cost against the world's own.

Usage: python benchmarks/bench_own_log.py [--reps 200] [--n 10000] [--pool 200000] [--default-model]
                                         [--fallback model|means]
Writes benchmarks/results_own_log[_default_model][_<fallback>].json.
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
from couponmix.dataset.scenario import get_scenario  # noqa: E402
from couponmix.ope.estimators import exact_suite  # noqa: E402
from couponmix.ope.montecarlo import interval  # noqa: E402
from couponmix.studies.commands import calibrate  # noqa: E402
from couponmix.studies.config import StudyConfig  # noqa: E402
from couponmix.studies.study import run_config  # noqa: E402
from tests import own_log_world as world  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--n", type=int, default=10_000, help="customers per checking log (a size of the summary's law)")
    ap.add_argument("--pool", type=int, default=200_000, help="fresh customers the checking logs are drawn from")
    ap.add_argument("--rows", type=int, default=50_000, help="rows of the team's log")
    ap.add_argument("--fallback", default=None, choices=["model", "means"])
    ap.add_argument("--default-model", action="store_true", help="calibrate with couponmix's default model settings")
    ap.add_argument("--eval-size", type=int, default=50_000)
    args = ap.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        frame = world.log(args.rows, seed=1)
        r = frame["revenue"].to_numpy()
        top = np.sort(r)[::-1]
        tails = {
            "kurtosis": float(((r - r.mean()) ** 4).mean() / r.var() ** 2),
            "top_1pct_share": float(top[: len(r) // 100].sum() / r.sum()),
        }
        frame.to_csv(Path(tmp) / "log.csv", index=False)
        config = {k: v for k, v in world.CONFIG.items() if k != "model" or not args.default_model}
        cal = calibrate(Path(tmp) / "log.csv", Path(tmp) / "sc", config, fallback=args.fallback)
        t_cal = time.perf_counter() - t0
        cfg = StudyConfig(scenario=str(Path(tmp) / "sc"), eval_size=args.eval_size)
        summary = run_config(cfg).summary.to_dict()
        t_run = time.perf_counter() - t0 - t_cal
        sc = get_scenario(str(Path(tmp) / "sc"))
        card = sc.meta["card"]
        perm = [world.COUPONS.index(a) for a in sc.action_names]
        alpha = np.array([summary["recommended"]["alpha"][c] for c in sc.components()])
        ref = np.array([summary["revenue_only"]["alpha"][c] for c in sc.components()])
        rng = np.random.default_rng(7)
        pool = world.customers(args.pool, rng)
        x = world.encode(pool, card)
        mu = world.mu(pool)[:, perm]
        comp = np.stack([p(x) for p in sc.components().values()])  # (K, P, A)
        targets = {t: p(x) for t, p in sc.targets().items()}
        q = sc.reward_model(x)
        truth = {t: float((pe * mu).sum(axis=1).mean()) for t, pe in targets.items()}
        comp_values = np.einsum("kpa,pa->k", comp, mu) / len(x)
        true_cost = float((ref - alpha) @ comp_values)
        law = summary["sample_size_law"]
        key = str(args.n)
        chosen = law["estimator_by_log_size"][key]
        promised = law["rmse_by_log_size"][key]
        p_bal = np.tensordot(alpha, comp, axes=1)  # (P, A)
        est = {t: np.empty(args.reps) for t in targets}
        specs = {s.name: s for s in exact_suite()}  # the decision's candidates, by the names summary.json uses
        for rep in range(args.reps):
            g = np.random.default_rng([11, rep])
            idx = g.integers(0, len(x), args.n)
            k = (g.random(args.n)[:, None] > np.cumsum(alpha)[None, :]).sum(axis=1).clip(0, len(alpha) - 1)
            probs = comp[k, idx]
            a = (g.random(args.n)[:, None] > probs.cumsum(axis=1)).sum(axis=1).clip(0, len(perm) - 1)
            reward = world.rewards(pool.iloc[idx].reset_index(drop=True), np.array(perm)[a], g)
            log = {"action": a, "reward": reward, "pscore": probs[np.arange(args.n), a], "pscore_avg": p_bal[idx, a]}
            for t, pe in targets.items():
                est[t][rep] = interval(specs[chosen[t]], log, pe[idx], q[idx])[0]
    rows = {}
    for t in targets:
        sq = (est[t] - truth[t]) ** 2
        mc = float(np.sqrt(sq.mean()))
        se = float(sq.std(ddof=1) / np.sqrt(args.reps) / (2 * mc))
        rows[t] = {
            "estimator": chosen[t],
            "promised_rmse": promised[t],
            "mc_rmse": mc,
            "mc_rmse_se": se,
            "bias": float(est[t].mean() - truth[t]),
            "promise_over_mc": promised[t] / mc,
        }
    stated = summary["revenue_cost"]["per_customer"]
    doc = {
        "machine": machine(),
        "rows": args.rows,
        "tails": tails,
        "world": cal.world,
        "gate": cal.diagnostics.get("gain"),
        "recommended": summary["recommended"]["alpha"],
        "n": args.n,
        "reps": args.reps,
        "targets": rows,
        "revenue_cost_per_10k": {"stated": 1e4 * stated, "true": 1e4 * true_cost, "stated_over_true": stated / true_cost},
        "seconds": {"calibrate": t_cal, "run": t_run, "total": time.perf_counter() - t0},
    }
    print(json.dumps(doc, indent=1))
    tag = ("_default_model" if args.default_model else "") + (f"_{args.fallback}" if args.fallback else "")
    out = ROOT / "benchmarks" / f"results_own_log{tag}.json"
    out.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()

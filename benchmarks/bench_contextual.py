"""Contextual exploration: what it saves, and what it costs to compute.

For market and the example studies (reports/examples/studies), with each family (segment, margin quartiles,
the logistic curve in the margin), the
revenue cost per 10,000 customers at equal worst-target error (the one-rate recommendation's error, and the
tolerance where the study has one), one rate for everyone against one rate per group. Then evaluations per
second of the exact objectives, contextual against global mixtures, measured in the same run on the same
customers. Then what the NSGA-II search over the family's parameters adds to its seeds (constant rates and
SLSQP least-cost rules): the mean saving over 30 precisions, seeds alone against the searched front.

Each study's front against front figure (one rate for everyone beside the family's rules, the report's
contextual.png) is written to benchmarks/contextual/<study>_<family>.png.

Usage: python benchmarks/bench_contextual.py [--out benchmarks/results_contextual.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_objectives import machine  # noqa: E402
from couponmix.decide.contextual import ContextualCriterion, grouping_for  # noqa: E402
from couponmix.studies.config import StudyConfig, load_study  # noqa: E402
from couponmix.studies.study import run_config  # noqa: E402


def studies() -> list[StudyConfig]:
    out = [StudyConfig(name="market", scenario="market", tolerance=0.5)]
    for path in sorted((ROOT / "reports" / "examples" / "studies").glob("*.yaml")):
        out.append(load_study(path))
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results_contextual.json"))
    parser.add_argument("--families", default="segment,margin,logistic")
    args = parser.parse_args()
    from couponmix.outputs.report import contextual_figure

    figures = ROOT / "benchmarks" / "contextual"
    figures.mkdir(exist_ok=True)
    rows = []
    for cfg in studies():
        for family in args.families.split(","):
            t = time.perf_counter()
            s = run_config(cfg.with_overrides(contextual=family)).summary
            seconds = time.perf_counter() - t
            cx = s.contextual.to_dict() if s.contextual is not None else {}
            if cx.get("front"):
                (figures / f"{cfg.name}_{family}.png").write_bytes(contextual_figure(s))
            for at_name, at in cx.get("at", {}).items():
                rows.append(
                    {
                        "study": cfg.name,
                        "family": family,
                        "at": at_name,
                        "error": at["error"],
                        "reachable": at["reachable"],
                        "global_cost_per_10k": at.get("global_revenue_cost_per_10k_customers"),
                        "contextual_cost_per_10k": at.get("revenue_cost_per_10k_customers"),
                        "saving_pct": at.get("saving_pct"),
                        "rule": at.get("rule"),
                        "found_by": at.get("found_by"),
                        "parameters": at.get("parameters"),
                        "study_seconds": seconds,
                    }
                )
    print(f"{'study':24s} {'family':8s} {'at':12s} {'error':>7s} {'one rate':>9s} {'per group':>9s} {'saving':>7s} {'seconds':>7s}")
    for r in rows:
        if r["reachable"]:
            print(
                f"{r['study']:24s} {r['family']:8s} {r['at']:12s} {r['error']:7.3f} {r['global_cost_per_10k']:9,.0f} "
                f"{r['contextual_cost_per_10k']:9,.0f} {r['saving_pct']:6.1f}% {r['study_seconds']:7.0f}"
            )
        else:
            print(f"{r['study']:24s} {r['family']:8s} {r['at']:12s} {r['error']:7.3f} unreachable")

    # evaluations per second, contextual against global, same customers, same run
    from couponmix.dataset.scenario import get_scenario
    from couponmix.ope.selection import criterion_for, sample_and_verdicts
    from couponmix.policy.simplex import check_floors

    sc = get_scenario("market")
    sample, verdicts = sample_and_verdicts(sc, 100_000, 0, check_floors(0.01, 2))
    crit, _ = criterion_for(sc, sample, verdicts, 50_000)
    eps = np.linspace(0.01, 0.99, 100)
    ie = list(crit.component_names).index("explore")
    alphas = np.zeros((100, 2))
    alphas[:, ie], alphas[:, 1 - ie] = eps, 1 - eps
    speed = {}
    for label, fn in [("global", lambda: crit.evaluate(alphas))] + [
        (
            f"contextual ({fam})",
            (lambda o: lambda: o.evaluate(np.repeat(eps[:, None], o.size, axis=1)))(
                ContextualCriterion(crit, sc, grouping_for(fam, sc, sample.x))
            ),
        )
        for fam in ("segment", "margin", "logistic")
    ]:
        fn()
        t = time.perf_counter()
        for _ in range(3):
            fn()
        speed[label] = 300 / (time.perf_counter() - t)
    print("\nmixture evaluations per second (batches of 100, 100,000 customers, every estimator of the criterion):")
    for label, v in speed.items():
        print(f"  {label:24s} {v:8.1f}  ({v / speed['global']:.2f}x global)")
    # what the NSGA-II search adds: the front with the seeds alone (constant rates and SLSQP rules, one
    # generation) against the searched front, as the mean saving over 30 precisions spread between the ends
    from couponmix.decide.contextual import SEARCH_GENERATIONS, contextual_block, cost_at_error
    from couponmix.decide.curves import exploration_curve

    curve = exploration_curve(crit, crit.n)
    search = []
    for fam in ("segment", "logistic"):
        obj = ContextualCriterion(crit, sc, grouping_for(fam, sc, sample.x))
        best = float(crit.revenue(np.eye(2)[obj.i_exploit])[0])
        fronts = {}
        for label, gens in (("seeds only", 1), ("searched", SEARCH_GENERATIONS)):
            t = time.perf_counter()
            block = contextual_block(obj, curve, best, {}, 0.01, generations=gens)
            f = block.front.contextual
            fronts[label] = (np.array([p.revenue for p in f]), np.array([p.error for p in f]), time.perf_counter() - t)
        g = block.front.global_
        ge, gr = np.array([p.error for p in g]), np.array([p.revenue for p in g])
        targets = np.geomspace(ge.min() * 1.05, np.quantile(ge, 0.9), 30)
        base = [cost_at_error(gr, ge, best, t) for t in targets]
        for label, (r, e, secs) in fronts.items():
            costs = [cost_at_error(r, e, best, t) for t in targets]
            sav = [100 * (b - c) / b for b, c in zip(base, costs) if b and b > 0 and c is not None]
            search.append({"family": fam, "front": label, "mean_saving_pct": float(np.mean(sav)), "points": len(r), "seconds": secs})
    print("\nwhat the search adds (market, 100,000 customers; mean saving over 30 precisions, one rate = 0%):")
    for row in search:
        print(f"  {row['family']:9s} {row['front']:11s} {row['mean_saving_pct']:6.1f}%  {row['points']:4d} points  {row['seconds']:5.0f} s")
    Path(args.out).write_text(
        json.dumps(
            {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "savings": rows, "evaluations_per_second": speed, "search": search},
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

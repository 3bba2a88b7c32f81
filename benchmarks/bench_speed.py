"""Every speed number issue 25 asks for, measured in one run, with its goals checked.

1. `make demo`'s command (`couponmix run market --tol 0.5`, into a temporary folder): wall and CPU time,
   first with an empty model cache (a fresh COUPONMIX_CACHE_DIR), then cached (the same folder again).
2. `couponmix simulate market` at 1,000,000 and 10,000,000 customers with compiled prediction (the cache
   warm: a smaller simulation compiles first, uncounted), and at 1,000,000 with COUPONMIX_COMPILED=off,
   interleaved with the compiled runs.
3. The planner's mixtures evaluated per second (`couponmix plan market --tol 0.5 --json`): over the whole
   command, and over its search alone (`plan_mixture` timed inside the child).
4. LightGBM's own prediction against compiled prediction, on the market's revenue model and the same rows,
   interleaved (as `bench_predict.py` does).
5. The goals: `simulate market` at 1M at least 5x faster than the issue's "now" (about 90 s wall, 59 s CPU),
   a cached `make demo` command under 30 s of CPU, and the paper front at n = 1M at least 100x the notebook
   approach per evaluation (`bench_objectives.py`'s exact objective against its notebook evaluation,
   interleaved; and a whole `couponmix run paper --n 1000000` divided by the mixtures its front evaluates).

Commands run as child processes (`python -m couponmix`, PYTHONPATH the repository); their CPU time is the
children's user + sys (resource.getrusage(RUSAGE_CHILDREN) before and after, which includes the workers they
wait for). Every command uses one temporary model cache, never the user's, and temporary output folders,
all removed at the end. The machine is shared and noisy: compare ratios measured in the same run.

Usage: python benchmarks/bench_speed.py [--quick] [--out benchmarks/results_speed.json]
--quick uses 100,000 customers and n instead of 1,000,000, skips 10,000,000, runs the demo's cached command
once and a small front, to try the script out.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: issue 25's "now": `simulate market` at 1,000,000 customers, before compiled prediction
BASELINE_SIMULATE_1M = {"wall_s": 90.0, "cpu_s": 59.0}
GOALS = {"simulate_1m_speedup": 5.0, "cached_demo_cpu_s": 30.0, "front_speedup_per_eval": 100.0}
DEMO = ["run", "market", "--tol", "0.5"]  # the Makefile's demo target, without its --out reports/demo
ALPHA = "exploit=0.8,explore=0.2"  # as bench_predict.py
PROBE = "--probe"


def probe(target: str, record: str, argv: list[str]) -> int:
    """In a child: run the couponmix command line ``argv`` as the console command does, with the function
    ``module:attr`` timed per call; the seconds go to the JSON file ``record``."""
    import importlib

    module_name, attr = target.split(":")
    module = importlib.import_module(module_name)
    inner = getattr(module, attr)
    seconds: list[float] = []

    def timed(*args, **kwargs):
        t = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - t)

    setattr(module, attr, timed)
    sys.argv = ["couponmix", *argv]
    from couponmix.cli import main

    code = main()
    Path(record).write_text(json.dumps({"target": target, "seconds": seconds}))
    return code


class Bench:
    """Runs the commands: one temporary model cache and one scratch folder for the whole run."""

    def __init__(self, cache: Path, scratch: Path):
        self.cache, self.scratch = cache, scratch
        path = os.environ.get("PYTHONPATH")
        self.env = {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else ""), "COUPONMIX_CACHE_DIR": str(cache)}
        self.env.pop("COUPONMIX_CACHE", None)
        self.env.pop("COUPONMIX_COMPILED", None)

    def command(self, args: list[str], extra_env: dict | None = None, timed: str | None = None) -> dict:
        """Run ``couponmix ARGS`` in a child: wall and CPU seconds, stdout, load average before, and with
        ``timed`` ("module:attr") the seconds of each call of that function inside the child."""
        record = self.scratch / "probe.json"
        record.unlink(missing_ok=True)
        head = [sys.executable, "-m", "couponmix"] if timed is None else [sys.executable, __file__, PROBE, timed, str(record)]
        load = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        res = subprocess.run([*head, *args], env={**self.env, **(extra_env or {})}, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if res.returncode != 0:
            raise RuntimeError(f"couponmix {' '.join(args)} exited {res.returncode}:\n{res.stderr[-3000:]}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        out = {"args": args, "env": extra_env or {}, "wall_s": wall, "cpu_s": cpu, "load_before": load, "stdout": res.stdout}
        if timed is not None:
            out["timed_s"] = json.loads(record.read_text())["seconds"]
        env = "".join(f"{k}={v} " for k, v in (extra_env or {}).items())
        report(f"  {env}couponmix {' '.join(args)}: {wall:.1f} s wall, {cpu:.1f} s CPU")
        return out

    def folder(self) -> Path:
        return Path(tempfile.mkdtemp(dir=self.scratch))


def report(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def demo(b: Bench, cached_runs: int) -> dict:
    """`make demo`'s command, first with the empty cache, then cached."""
    runs = []
    for _ in range(1 + cached_runs):
        out = b.folder()
        r = b.command([*DEMO, "--out", str(out / "demo"), "--quiet"])
        shutil.rmtree(out)
        runs.append({k: v for k, v in r.items() if k != "stdout"})
    return {"command": ["couponmix", *DEMO, "--out", "DIR"], "first": runs[0], "cached": runs[1:]}


def simulate(b: Bench, customers: int, compiled: bool) -> dict:
    out = b.folder()
    args = ["simulate", "market", "--alpha", ALPHA, "--n", str(customers), "--out", str(out / "log"), "--quiet"]
    r = b.command(args, None if compiled else {"COUPONMIX_COMPILED": "off"})
    shutil.rmtree(out)
    r.pop("stdout")
    return {"customers": customers, "compiled": compiled, **r}


def simulations(b: Bench, small: int, large: int | None, rounds: int) -> dict:
    """A warm-up that compiles (uncounted), ``small`` customers compiled and not, interleaved, then ``large``
    compiled once."""
    warm = simulate(b, 262_144, True)  # 4 blocks of 65,536 customers x 4 actions: each call compiles
    runs: dict[str, list] = {"compiled": [], "lightgbm": []}
    for _ in range(rounds):
        for on in (False, True):
            runs["compiled" if on else "lightgbm"].append(simulate(b, small, on))
    out = {"warm_up": warm, "small": {"customers": small, **runs}}
    if large is not None:
        out["large"] = simulate(b, large, True)
    return out


def plan(b: Bench, rounds: int) -> list[dict]:
    """`plan market --tol 0.5` (the demo's setting): mixtures evaluated, per second of the command and of
    its search."""
    runs = []
    for _ in range(rounds):
        r = b.command(["plan", "market", "--tol", "0.5", "--json", "--quiet"], timed="couponmix.studies.study:plan_mixture")
        evaluated = json.loads(r.pop("stdout"))["evaluated"]
        search = sum(r.pop("timed_s"))
        runs.append(
            {**r, "evaluated": evaluated, "search_s": search, "per_s_command": evaluated / r["wall_s"], "per_s_search": evaluated / search}
        )
    return runs


def predict(customers: int, rounds: int) -> dict:
    """LightGBM's own prediction against the compiled library on the market's revenue model and the same
    rows, interleaved (in this process; the compiled libraries load from the warm cache):
    ``bench_predict.interleaved_predictions``."""
    import numpy as np

    from benchmarks.bench_predict import interleaved_predictions

    model, rows, times, preds = interleaved_predictions(customers, rounds)
    best = {k: min(r["wall_s"] for r in v) for k, v in times.items()}
    report(f"  predict {rows:,} rows: LightGBM {best['lightgbm']:.2f} s, compiled {best['compiled']:.2f} s")
    return {
        "customers": customers,
        "rows": rows,
        "threads": model.threads,  # free_threads() when the model was built: fewer on a loaded machine
        "folds": len(model.models_),
        **times,
        "lightgbm_rows_per_s": rows / best["lightgbm"],
        "compiled_rows_per_s": rows / best["compiled"],
        "speedup": best["lightgbm"] / best["compiled"],
        "max_abs_difference": float(np.abs(preds["lightgbm"] - preds["compiled"]).max()),
    }


def exact_vs_notebook(n: int, rounds: int) -> dict:
    """bench_objectives.py's comparison at log size n: the exact objective (clipped IPS, evaluation sample
    100,000, a batch of 100 mixtures) against one notebook evaluation, interleaved."""
    import numpy as np

    from benchmarks.bench_objectives import notebook_evaluation
    from couponmix.ope.estimators import EstimatorSpec
    from couponmix.ope.objectives import EvaluationSample, MixtureObjectives
    from simulators import get_scenario

    sc = get_scenario("paper")
    spec = EstimatorSpec("clipped_ips", 10.0)
    sample = EvaluationSample.from_scenario(sc, 100_000, seed=0)
    alpha = np.array([0.3, 0.3, 0.4])
    batch = 0.01 + 0.97 * np.random.default_rng(0).dirichlet(np.ones(3), 100)
    truth = dict(zip(sample.target_names, sample.target_values))
    obj = MixtureObjectives(sample, spec, n)
    obj.evaluate(batch)  # warm
    exact, notebook = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        obj.evaluate(batch)
        exact.append((time.perf_counter() - t) / len(batch))
        t = time.perf_counter()
        notebook_evaluation(sc, alpha, n, 1, truth, sc.targets(), spec.clip)
        notebook.append(time.perf_counter() - t)
    report(f"  n={n:,}: exact {1e3 * min(exact):.2f} ms/evaluation, notebook {1e3 * min(notebook):.0f} ms/evaluation")
    return {
        "n": n,
        "estimator": spec.to_dict(),
        "evaluation_sample": sample.size,
        "batch": len(batch),
        "exact_s_per_eval": exact,
        "notebook_s_per_eval": notebook,
        "speedup_per_eval": min(notebook) / min(exact),
    }


def paper_run(b: Bench, n: int, pop: int, gens: int) -> dict:
    """A whole `couponmix run paper --n N`; its front timed inside the child; evaluations = the summary's
    optimiser pop_size x generations (what NSGA-II evaluates)."""
    out = b.folder()
    args = ["run", "paper", "--n", str(n), "--pop-size", str(pop), "--generations", str(gens), "--out", str(out / "run"), "--quiet"]
    r = b.command(args, timed="couponmix.studies.study:pareto_front")
    optimiser = json.loads((out / "run" / "summary.json").read_text())["optimiser"]
    shutil.rmtree(out)
    r.pop("stdout")
    evaluations = optimiser["pop_size"] * optimiser["generations"]
    front = sum(r.pop("timed_s"))
    return {**r, "n": n, "optimiser": optimiser, "evaluations": evaluations, "front_s": front}


def best(runs: list[dict], key: str) -> float:
    return min(r[key] for r in runs)


def goals(res: dict) -> list[dict]:
    """Each of issue 25's goals: what was measured, against what, and whether it is met."""
    small = res["simulate"]["small"]
    on_wall, on_cpu = best(small["compiled"], "wall_s"), best(small["compiled"], "cpu_s")
    off_wall, off_cpu = best(small["lightgbm"], "wall_s"), best(small["lightgbm"], "cpu_s")
    g = GOALS["simulate_1m_speedup"]
    rows = []
    if small["customers"] == 1_000_000:
        for key, unit in (("wall_s", "wall"), ("cpu_s", "CPU")):
            now, base = (on_wall if key == "wall_s" else on_cpu), BASELINE_SIMULATE_1M[key]
            rows.append(
                {
                    "goal": f"simulate market, 1M customers, >= {g:g}x faster than the issue's now ({unit})",
                    "measured": f"{base:.0f} s -> {now:.1f} s: {base / now:.1f}x",
                    "met": base / now >= g,
                }
            )
    for key, unit in (("wall_s", "wall"), ("cpu_s", "CPU")):
        ratio = (off_wall / on_wall) if key == "wall_s" else (off_cpu / on_cpu)
        rows.append(
            {
                "goal": f"(a comparison, not a goal) simulate market, {small['customers']:,} customers, in this run: "
                f"COUPONMIX_COMPILED=off / compiled ({unit})",
                "measured": f"{ratio:.1f}x",
                "met": None,
            }
        )
    cached = [r["cpu_s"] for r in res["demo"]["cached"]]
    limit = GOALS["cached_demo_cpu_s"]
    rows.append(
        {
            "goal": f"cached `make demo` command under {limit:g} s of CPU",
            "measured": " and ".join(f"{c:.1f} s" for c in cached),
            "met": max(cached) < limit,
        }
    )
    ev, run = res["exact_vs_notebook"], res["paper_run"]
    notebook = min(ev["notebook_s_per_eval"])
    g = GOALS["front_speedup_per_eval"]
    n = f"n = {ev['n']:,}"
    for label, per_eval in (
        ("exact objective alone (clipped IPS, batches of 100)", min(ev["exact_s_per_eval"])),
        (f"whole `run paper` / {run['evaluations']:,} front evaluations", run["wall_s"] / run["evaluations"]),
        ("the front alone inside that run (the criterion, every estimator)", run["front_s"] / run["evaluations"]),
    ):
        rows.append(
            {
                "goal": f"paper, {n}, >= {g:g}x the notebook per evaluation: {label}",
                "measured": f"{1e3 * per_eval:.2f} ms vs {1e3 * notebook:.0f} ms: {notebook / per_eval:.0f}x",
                "met": notebook / per_eval >= g,
            }
        )
    return rows


def table(res: dict) -> str:
    """The markdown tables: the measurements, then the goals."""
    d, s, p, pr, ev, run = (res[k] for k in ("demo", "simulate", "plan", "predict", "exact_vs_notebook", "paper_run"))
    lines = ["| what | wall | CPU | rate |", "|---|---:|---:|---:|"]

    def row(what, wall, cpu, rate=""):
        lines.append(f"| {what} | {wall} | {cpu} | {rate} |")

    row(
        "`couponmix run market --tol 0.5` (`make demo`), empty model cache", f"{d['first']['wall_s']:.1f} s", f"{d['first']['cpu_s']:.1f} s"
    )
    for i, r in enumerate(d["cached"], 1):
        row(f"the same, cached (run {i})", f"{r['wall_s']:.1f} s", f"{r['cpu_s']:.1f} s")
    small = s["small"]
    for label, runs in (("compiled", small["compiled"]), ("`COUPONMIX_COMPILED=off`", small["lightgbm"])):
        w = best(runs, "wall_s")
        row(
            f"`simulate market --n {small['customers']:,}`, {label} (best of {len(runs)})",
            f"{w:.1f} s",
            f"{best(runs, 'cpu_s'):.1f} s",
            f"{small['customers'] / w:,.0f} customers/s",
        )
    if "large" in s:
        r = s["large"]
        row(
            f"`simulate market --n {r['customers']:,}`, compiled (once)",
            f"{r['wall_s']:.1f} s",
            f"{r['cpu_s']:.1f} s",
            f"{r['customers'] / r['wall_s']:,.0f} customers/s",
        )
    for i, r in enumerate(p, 1):
        row(
            f"`plan market --tol 0.5` (run {i}): {r['evaluated']:,} mixtures, search {r['search_s']:.1f} s",
            f"{r['wall_s']:.1f} s",
            f"{r['cpu_s']:.1f} s",
            f"{r['per_s_command']:.0f} mixtures/s (command), {r['per_s_search']:.0f}/s (search)",
        )
    for label in ("lightgbm", "compiled"):
        w = best(pr[label], "wall_s")
        name = "LightGBM's predict" if label == "lightgbm" else f"compiled predict ({pr['speedup']:.1f}x)"
        name += f", {pr['threads']} thread(s)"
        row(
            f"{name}, market model, {pr['customers']:,} customers x 4 actions",
            f"{w:.2f} s",
            f"{best(pr[label], 'cpu_s'):.2f} s",
            f"{pr['rows'] / w:,.0f} rows/s",
        )
    row(f"exact objective, paper, n = {ev['n']:,} (per evaluation, batch of 100)", f"{1e3 * min(ev['exact_s_per_eval']):.2f} ms", "")
    row(f"notebook evaluation, paper, n = {ev['n']:,}", f"{1e3 * min(ev['notebook_s_per_eval']):.0f} ms", "")
    o = run["optimiser"]
    row(
        f"`run paper --n {run['n']:,} --pop-size {o['pop_size']} --generations {o['generations']}`, front {run['front_s']:.1f} s",
        f"{run['wall_s']:.1f} s",
        f"{run['cpu_s']:.1f} s",
        f"{1e3 * run['wall_s'] / run['evaluations']:.2f} ms per evaluation (whole run)",
    )
    lines += ["", "| goal (issue 25) | measured | met |", "|---|---|---|"]
    lines += [f"| {g['goal']} | {g['measured']} | {'-' if g['met'] is None else 'yes' if g['met'] else 'no'} |" for g in res["goals"]]
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == PROBE:
        return probe(sys.argv[2], sys.argv[3], sys.argv[4:])
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="100,000 instead of 1,000,000, no 10,000,000, a small front")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results_speed.json"))
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from benchmarks.bench_objectives import machine

    small, large = (100_000, None) if args.quick else (1_000_000, 10_000_000)
    pop, gens = (20, 10) if args.quick else (100, 100)
    res: dict = {"benchmark": "speed", "quick": args.quick, "machine": machine(), "load_at_start": os.getloadavg()}
    res.update(baseline_simulate_1m=BASELINE_SIMULATE_1M, goal_values=GOALS)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_speed_") as tmp:
        b = Bench(Path(tmp) / "cache", Path(tmp) / "scratch")
        b.scratch.mkdir()
        os.environ["COUPONMIX_CACHE_DIR"] = str(b.cache)  # this process's predictions too: the same warm cache
        report("make demo's command, empty cache then cached")
        res["demo"] = demo(b, 1 if args.quick else 2)
        report("simulate market")
        res["simulate"] = simulations(b, small, large, 2)
        report("plan")
        res["plan"] = plan(b, 1 if args.quick else 2)
        report("LightGBM against compiled prediction")
        res["predict"] = predict(small, 2)
        report("exact objective against the notebook, then a whole run paper")
        res["exact_vs_notebook"] = exact_vs_notebook(small, 5)
        res["paper_run"] = paper_run(b, small, pop, gens)
    res["goals"] = goals(res)
    res["total_s"] = time.perf_counter() - t0
    res["load_at_end"] = os.getloadavg()
    print(table(res))
    load = f"load average {res['load_at_start'][0]:.1f} at the start, {res['load_at_end'][0]:.1f} at the end"
    print(f"\n{res['total_s'] / 60:.1f} min in all; {load}")
    out = Path(args.out)  # a benchmark's own file, as every benchmark writes it: staged, then renamed
    staged = out.with_name(out.name + ".partial")
    staged.write_text(json.dumps(res, indent=2) + "\n")
    os.replace(staged, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Command line: ``couponmix run | batch | simulate | evaluate | validate | plan | calibrate | estimate | scenarios |
cache``.

Each command calls one function of ``couponmix.commands`` and prints its result.

Errors in the input end the program with one line on stderr, exit code 2, and
nothing written.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import sys
import threading
from typing import Any

from couponmix.errors import CouponmixError
from couponmix.ope.estimators import optimisable

__all__ = [
    "EXIT_BAD_INPUT",
    "ESTIMATOR_CHOICES",
    "build_parser",
    "cmd_plan",
    "cmd_scenarios",
    "cmd_cache",
    "cmd_calibrate",
    "cmd_estimate",
    "cmd_run",
    "cmd_batch",
    "cmd_simulate",
    "cmd_evaluate",
    "cmd_validate",
    "COMMANDS",
    "main",
]

EXIT_BAD_INPUT = 2
#: estimators with an exact error formula for every mixture (dr_fitted is compared at a mix, not optimised)
ESTIMATOR_CHOICES = optimisable()


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump, with a suggestion for a likely typo
        """Raise the parse error as a one-line ``CouponmixError`` (no usage dump), with a did-you-mean for a likely typo."""
        raise CouponmixError(message + _did_you_mean(self, message))


def _did_you_mean(parser: argparse.ArgumentParser, message: str) -> str:
    """'; did you mean run?' for an invalid command choice, or '; did you mean --tol?' for an unknown
    option, when one known name is close (difflib); '' otherwise."""
    import difflib
    import re

    m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if m:
        choices = re.findall(r"'([^']*)'", m.group(2))
        close = difflib.get_close_matches(m.group(1), choices, n=1, cutoff=0.5)
        return f"; did you mean {close[0]}?" if close else ""
    m = re.search(r"unrecognized arguments: (\S+)", message)
    if m and m.group(1).startswith("--"):
        options = [o for a in parser._actions for o in a.option_strings if o.startswith("--")]
        words = getattr(parser, "argv", None) or []
        for sub in parser._subparsers._group_actions if parser._subparsers else []:
            commands = getattr(sub, "choices", {})
            chosen = next((w for w in words if w in commands), None)  # that command's options, not every command's
            for name, p in commands.items():
                if chosen is None or name == chosen:
                    options += [o for a in p._actions for o in a.option_strings if o.startswith("--")]
        word = m.group(1).split("=")[0]
        close = difflib.get_close_matches(word, sorted(set(options) - {word}), n=1, cutoff=0.6)
        return f"; did you mean {close[0]}?" if close else ""
    if message.startswith("the following arguments are required"):  # argparse checks these before unknown options
        known = [o for a in parser._actions for o in a.option_strings if o.startswith("--")]
        for word in (w.split("=")[0] for w in getattr(parser, "argv", None) or [] if w.startswith("--")):
            if not any(o.startswith(word) for o in known):  # an unknown option, not an abbreviation
                close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
                return f"; {word} is not an option" + (f" (did you mean {close[0]}?)" if close else "")
    return ""


def _estimator(args):
    from couponmix.ope.estimators import EstimatorSpec

    if not hasattr(args, "estimator"):  # validate takes a list in --estimator (and its own --clip); simulate none
        return None
    if args.estimator is None:
        if args.clip is not None:
            raise CouponmixError("--clip needs --estimator clipped_ips, switch_dr or dr")
        return None
    return EstimatorSpec.parse(args.estimator, args.clip)


def _add_common(p, clip: bool = True, n_help: str = "log size: customers in the future evaluation log"):
    p.add_argument(
        "scenario", nargs="?", default=None, help="scenario name (see `couponmix scenarios`; default: the study file's, else market)"
    )
    p.add_argument(
        "--config",
        default=None,
        help="study file (YAML: scenario, market parameters, n, estimator, tolerance, ...; see "
        "reports/examples/studies/) or a market parameter file",
    )
    p.add_argument("--n", type=int, default=None, help=n_help)
    p.add_argument(
        "--seed", type=int, default=None, help="seed of this command's draws: logs, replications, evaluation sample, optimiser (default 0)"
    )
    p.add_argument(
        "--world-seed",
        type=int,
        default=None,
        help="seed of the simulated world: market history, revenue model, budgets (default 0); the same "
        "world seed with different --seed values gives replicate logs of one market",
    )
    if clip:
        p.add_argument("--clip", type=float, default=None, help="lambda for clipped_ips, switch_dr (default 10) or dr")
    p.add_argument("--eval-size", type=int, default=None, help="covariate sample size for the exact objectives (default 100,000)")
    p.add_argument(
        "--fallback",
        choices=("means", "refuse", "model"),
        default=None,
        help="a calibrated scenario whose model is no better than per-action means: plan with the means, "
        "refuse, or keep the model (default: what calibrate chose)",
    )
    _add_verbosity(p)


def _add_backend(p):
    p.add_argument("--workers", type=int, default=None, help="local worker processes (default: cores)")
    p.add_argument("--scheduler", default=None, help="run on Dask instead: threads, processes, or a dask.distributed scheduler address")
    p.add_argument(
        "--scheduler-timeout",
        type=float,
        default=10.0,
        help="seconds to wait for a remote Dask scheduler to answer before giving up (default 10)",
    )


def _backend(args):
    from couponmix.infra.backend import get_backend
    from couponmix.infra.threads import default_threads

    if args.scheduler is None and args.workers is None:
        return get_backend(workers=default_threads())
    return get_backend(args.scheduler, args.workers, args.scheduler_timeout)


def _add_verbosity(p):
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quiet", action="store_true", help="print only warnings and errors; no progress bars")
    g.add_argument("--verbose", action="store_true", help="also report each step on stderr")


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        """The log message prefixed 'warning: ' (warnings and worse) or 'couponmix: ' (the rest)."""
        prefix = "warning: " if record.levelno >= logging.WARNING else "couponmix: "
        return prefix + record.getMessage()


def _setup_output(args) -> None:
    """Warnings of the library go to stderr as ``warning: ...``; with --verbose each step too."""
    logger = logging.getLogger("couponmix")
    logger.setLevel(logging.INFO if getattr(args, "verbose", False) else logging.WARNING)
    if not any(getattr(h, "couponmix_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Formatter())
        handler.couponmix_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False  # some libraries configure the root logger; print each message once


def _study(args):
    """The study: the --config file (study or market file) with the command line's values over it."""
    from couponmix.studies.config import StudyConfig, load_study

    cfg = load_study(args.config) if args.config is not None else StudyConfig()
    if args.scenario is not None and cfg.scenario_config is not None and args.scenario != cfg.scenario:
        raise CouponmixError(f"the config gives parameters of scenario {cfg.scenario!r} but the scenario is {args.scenario!r}")
    if args.fallback is not None:
        from couponmix.dataset.scenario import is_scenario_folder

        scenario = args.scenario if args.scenario is not None else cfg.scenario
        if not is_scenario_folder(scenario):
            raise CouponmixError(f"--fallback applies to a calibrated scenario (a folder written by couponmix calibrate), not {scenario!r}")
        if isinstance(cfg.scenario_config, str):
            raise CouponmixError(f"--fallback: the study gives its scenario_config as the file {cfg.scenario_config}; put fallback: there")
        cfg = cfg.with_overrides(scenario_config={**(cfg.scenario_config or {}), "fallback": args.fallback})
    return cfg.with_overrides(
        scenario=args.scenario,
        n=args.n,
        seed=args.seed,
        world_seed=args.world_seed,
        estimator=_estimator(args),
        eval_size=args.eval_size,
        **_run_overrides(args),
    )


def _run_overrides(args) -> dict:
    if args.command != "run":
        return {}
    return dict(
        max_rmse=args.max_rmse,
        horizon_days=args.horizon_days,
        floor=args.floor,
        aggregate=args.aggregate,
        tolerance=args.tol,
        daily_traffic=args.daily_traffic,
        contextual=args.contextual,
        pop_size=args.pop_size,
        generations=args.generations,
    )


def _add_contextual_from(p: argparse.ArgumentParser, text: str) -> None:
    """--contextual-from RUN_DIR and --at: a contextual rule a ``run --contextual`` wrote."""
    p.add_argument("--contextual-from", default=None, metavar="RUN_DIR", help=text)
    p.add_argument("--at", choices=("recommended", "tolerance"), default="recommended", help="which of the run's contextual rules")


def build_parser() -> argparse.ArgumentParser:
    """The ``couponmix`` argument parser with every sub-command.

    Returns
    -------
    argparse.ArgumentParser
        Its parse errors raise ``CouponmixError`` (one line, with a did-you-mean) instead of exiting; each
        command's ``--help`` ends with an example.
    """
    from couponmix import __version__

    parser = _Parser(prog="couponmix", description="How much coupon traffic to spend on exploration.")
    parser.add_argument("--version", action="version", version=f"couponmix {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_scenarios_parser(sub)
    _add_cache_parser(sub)
    _add_run_parser(sub)
    _add_batch_parser(sub)
    _add_simulate_parser(sub)
    _add_evaluate_parser(sub)
    _add_validate_parser(sub)
    _add_campaign_parser(sub)
    _add_calibrate_parser(sub)
    _add_estimate_parser(sub)
    _add_plan_parser(sub)
    for name, example in HELP_EXAMPLES.items():  # every command's --help ends with an example
        sub.choices[name].epilog = "example:\n" + "\n".join(f"  {line}" for line in example)
        sub.choices[name].formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


def _add_scenarios_parser(sub) -> None:
    """``couponmix scenarios``'s options."""
    sub.add_parser("scenarios", help="list the simulated scenarios")


def _add_cache_parser(sub) -> None:
    """``couponmix cache``'s options."""
    cache = sub.add_parser("cache", help="where the trained-model cache is and its size (--clear empties it)")
    cache.add_argument("--clear", action="store_true", help="remove every model couponmix cached")


def _add_run_parser(sub) -> None:
    """``couponmix run``'s options."""
    run = sub.add_parser("run", help="optimise the mixture and write summary.json, pareto.csv, report.html")
    _add_common(run)
    run.add_argument("--out", required=True, help="output directory")
    run.add_argument(
        "--estimator",
        choices=ESTIMATOR_CHOICES,
        default=None,
        help="force one OPE estimator (default: the most precise one for each future policy)",
    )
    run.add_argument("--pop-size", type=int, default=None, help="optimiser population (default 100)")
    run.add_argument("--generations", type=int, default=None, help="optimiser generations (default 100)")
    run.add_argument(
        "--max-rmse", type=float, default=None, help="recommend the highest-revenue mix with RMSE at most this (default: knee point)"
    )
    run.add_argument(
        "--horizon-days",
        type=float,
        default=None,
        help="recommend the mix and log size that earn the most over this many days of traffic after the log (payback)",
    )
    run.add_argument("--floor", type=float, default=None, help="minimum share of every component (default 0.01)")
    run.add_argument("--aggregate", choices=["max", "mean"], default=None, help="combine per-target RMSEs by their max (default) or mean")
    run.add_argument(
        "--tol", type=float, default=None, help="also plan: the least exploration rate with RMSE <= TOL at log size n, and its cost"
    )
    run.add_argument(
        "--contextual",
        default=None,
        help="also find exploration rates that vary by customer: segment, margin (quartiles of the model's predicted "
        "margin), logistic (a curve in the margin with floor and cap) or feature:NAME (quartiles of a covariate), "
        "and compare their revenue cost at the same precision",
    )
    run.add_argument(
        "--daily-traffic", type=float, default=None, help="customers per day, to read log sizes as days in the report (default 10,000)"
    )


def _add_batch_parser(sub) -> None:
    """``couponmix batch``'s options."""
    batch = sub.add_parser("batch", help="run every study file of a folder, in parallel, resumable")
    batch.add_argument("folder", help="folder of study files (*.yaml, *.yml)")
    batch.add_argument("--out", required=True, help="output folder: one sub-folder per study, index.html, comparison.csv")
    batch.add_argument("--workers", type=int, default=None, help="studies run at once (default: cores)")
    _add_verbosity(batch)


def _add_simulate_parser(sub) -> None:
    """``couponmix simulate``'s options."""
    sim = sub.add_parser("simulate", help="write a logged population as Parquet files, chunk by chunk")
    _add_common(sim, clip=False, n_help="customers to simulate and write (default: the scenario's log size)")
    sim.add_argument("--alpha", default=None, help="mixture, e.g. explore=0.1,exploit=0.9")
    _add_contextual_from(
        sim,
        "log under the contextual rule a `run --contextual` wrote to RUN_DIR instead of --alpha; each row records its customer's weights",
    )
    sim.add_argument("--out", required=True, help="new output folder for part-NNNNNN.parquet and _summary.json")
    sim.add_argument("--chunk-size", type=int, default=None, help="customers per file, a multiple of 65,536 (default 1,048,576)")
    _add_backend(sim)


def _add_evaluate_parser(sub) -> None:
    """``couponmix evaluate``'s options."""
    ev = sub.add_parser("evaluate", help="exact revenue and OPE error of given mixtures on a population of any size, streamed in chunks")
    _add_common(ev)
    ev.add_argument("--alpha", default=None, action="append", help="mixture, e.g. explore=0.1,exploit=0.9 (repeat the option for several)")
    _add_contextual_from(
        ev,
        "also evaluate the contextual rule a `run --contextual` wrote to RUN_DIR (each customer group at its own mixture), "
        "beside the one rate for everyone that reached the same precision in that run unless --alpha is given",
    )
    ev.add_argument(
        "--population",
        type=_population,
        default=1_000_000,
        help="customers in the evaluation population, streamed (default 1,000,000), or 'sample': the run's own "
        "evaluation sample (--eval-size customers), where evaluate gives exactly run's numbers",
    )
    ev.add_argument(
        "--estimator",
        choices=ESTIMATOR_CHOICES,
        default=None,
        help="force one OPE estimator (default: run's criterion, the most precise estimator per future policy)",
    )
    ev.add_argument("--naive", action="store_true", help="naive multi-logger weights (default: balanced)")
    ev.add_argument("--chunk-size", type=int, default=None, help="customers per chunk, a multiple of 65,536 (default 262,144)")
    ev.add_argument("--json", action="store_true", help="print JSON")
    _add_backend(ev)


def _add_validate_parser(sub) -> None:
    """``couponmix validate``'s options."""
    val = sub.add_parser("validate", help="Monte Carlo check of the analytic error with obp's estimators")
    _add_common(val)
    val.add_argument("--alpha", default=None, help="mixture, e.g. pi1=0.2,pi2=0.4,pi3=0.4")
    _add_contextual_from(
        val,
        "draw the logs under the contextual rule a `run --contextual` wrote to RUN_DIR instead of --alpha",
    )
    val.add_argument("--reps", type=int, default=200, help="number of simulated logs")
    val.add_argument(
        "--estimator",
        dest="estimators",
        default=None,
        help="one, or several comma-separated, e.g. ips,snips,dr,sndr,switch_dr,clipped_ips,dr_fitted,ips[naive],dr[naive] "
        "(default: all whose variance is finite here); the estimator run's criterion chooses is checked at the end",
    )
    _add_backend(val)
    val.add_argument("--out", default=None, help="also write DIR/validation.json")


def _add_campaign_parser(sub) -> None:
    """``couponmix campaign``'s options."""
    camp = sub.add_parser("campaign", help="simulate periods of logging, retraining and redeploying, per exploration rate")
    _add_common(camp)
    camp.add_argument("--rates", default="0,0.02,0.05,0.1,0.14,0.2,0.3", help="fixed exploration rates to compare")
    camp.add_argument("--periods", type=int, default=12, help="periods in the campaign (default 12)")
    camp.add_argument("--period-size", type=int, default=20_000, help="customers per period (default 20,000)")
    camp.add_argument("--reps", type=int, default=2, help="replications, for error bars (default 2)")
    camp.add_argument("--no-payback", action="store_true", help="leave out the payback rule's rate")
    camp.add_argument("--out", default=None, help="also write DIR/campaign.json")


def _add_calibrate_parser(sub) -> None:
    """``couponmix calibrate``'s options."""
    cal = sub.add_parser("calibrate", help="build a scenario folder from your own coupon log (CSV or Parquet)")
    cal.add_argument("log", help="the log: a .csv file, a .parquet file or a folder of Parquet parts")
    cal.add_argument("--out", required=True, help="new scenario folder (give it to run, plan, validate, ...)")
    cal.add_argument(
        "--config", required=True, help="YAML: columns (features, action, reward, propensity, ...), components, targets, model"
    )
    cal.add_argument(
        "--fallback",
        choices=["means", "refuse", "model"],
        default=None,
        help="when the model is no better than per-action means (default: the config's, else means)",
    )
    _add_verbosity(cal)


def _add_estimate_parser(sub) -> None:
    """``couponmix estimate``'s options."""
    est = sub.add_parser("estimate", help="each policy's value estimated from a real log (or a calibrated scenario's log)")
    est.add_argument(
        "scenario",
        metavar="LOG_OR_SCENARIO",
        help="a log (CSV, Parquet file or folder) with --config, or a scenario folder written by couponmix calibrate",
    )
    est.add_argument("--config", default=None, help="for a log: the mapping file calibrate takes (columns, components, targets)")
    est.add_argument("--policy", action="append", default=None, help="a target or component (repeat; default: targets)")
    est.add_argument("--out", default=None, help="also write DIR/estimate.json and DIR/estimate.html")
    est.add_argument("--json", action="store_true", help="print JSON")
    _add_verbosity(est)


def _add_plan_parser(sub) -> None:
    """``couponmix plan``'s options."""
    plan = sub.add_parser("plan", help="least-cost mixture for a tolerance, or the log size needed at a mixture")
    _add_common(plan)
    plan.add_argument("--tol", type=float, required=True, help="error every future policy must reach")
    plan.add_argument("--alpha", default=None, help="a mixture (e.g. exploit=0.9,explore=0.1): report the log size needed")
    plan.add_argument(
        "--eps",
        type=float,
        default=None,
        help="exploration rate (share of 'explore', the rest to the revenue-best component): the log size needed there",
    )
    plan.add_argument("--floor", type=float, default=None, help="every component's minimum share (default: as in run, 0.01)")
    plan.add_argument(
        "--estimator", choices=ESTIMATOR_CHOICES, default=None, help="force one estimator (default: the most precise per future policy)"
    )
    plan.add_argument("--json", action="store_true", help="print JSON")


#: one worked example per command, shown at the end of its --help
HELP_EXAMPLES = {
    "scenarios": ["couponmix scenarios"],
    "cache": [
        "couponmix cache            # where the cache is and how large",
        "couponmix cache --clear    # remove what couponmix cached",
    ],
    "run": [
        "couponmix run market --out report --tol 0.5           # the recommendation, and the plan for an RMSE <= 0.5",
        "couponmix run market --out report --horizon-days 90   # the mix and log size that pay back most over 90 days",
    ],
    "batch": ["couponmix batch reports/examples/studies --out studies_out --workers 2"],
    "simulate": ["couponmix simulate market --alpha exploit=0.85,explore=0.15 --n 1000000 --out log"],
    "evaluate": ["couponmix evaluate market --alpha exploit=0.85,explore=0.15 --population 1000000"],
    "validate": ["couponmix validate market --alpha exploit=0.85,explore=0.15 --reps 200 --n 5000"],
    "campaign": ["couponmix campaign market --rates 0,0.05,0.14 --periods 6 --reps 10 --out campaign"],
    "calibrate": ["couponmix calibrate log.csv --config map.yaml --out my_scenario"],
    "estimate": ["couponmix estimate my_scenario --policy model_v2", "couponmix estimate log.csv --config map.yaml --out estimates"],
    "plan": [
        "couponmix plan market --tol 0.5                      # the least-cost mix",
        "couponmix plan market --tol 0.5 --eps 0.1            # the log size at 10% exploration",
    ],
}


def cmd_plan(args) -> int:
    """``couponmix plan``: print the least-cost mixture, or the log size at a mixture (JSON with --json).

    Calls ``couponmix.commands.plan``; CouponmixError for --n given with --alpha or --eps.
    """
    import json

    from couponmix.commands import plan

    if args.n is not None and (args.eps is not None or args.alpha is not None):
        raise CouponmixError("give --n (for the least-cost mixture) or --alpha/--eps (for the log size), not both")
    from couponmix.infra.progress import Progress
    from couponmix.studies.study import PLAN_PHASES, PLAN_WEIGHTS

    with Progress(len(PLAN_PHASES), PLAN_PHASES[0], args.quiet, weights=PLAN_WEIGHTS) as bar:
        res = plan(_study(args), args.tol, alpha=args.alpha, eps=args.eps, floor=args.floor, on_phase=bar.phase)
    print(json.dumps(res.to_dict(), indent=1) if args.json else res.text())
    return 0


def cmd_scenarios(args) -> int:
    """``couponmix scenarios``: print every registered scenario with its description.

    Calls ``couponmix.commands.scenarios``.
    """
    from couponmix.commands import scenarios

    for s in scenarios():
        print(f"{s.name:14s} {s.description}")
    return 0


def cmd_cache(args) -> int:
    """``couponmix cache``: print the model cache's location and size, after clearing it with --clear.

    Calls ``couponmix.commands.cache``.
    """
    from couponmix.commands import cache

    print(cache(clear=args.clear).text())
    return 0


def cmd_calibrate(args) -> int:
    """``couponmix calibrate``: write a scenario folder from a log; its warnings go to stderr, even with --quiet.

    Calls ``couponmix.commands.calibrate``.
    """
    from couponmix.commands import calibrate
    from couponmix.dataset.calibration import PHASE_WEIGHTS, PHASES
    from couponmix.infra.progress import Progress

    with Progress(len(PHASES), PHASES[0], args.quiet, weights=PHASE_WEIGHTS) as bar:
        res = calibrate(args.log, args.out, args.config, fallback=args.fallback, on_phase=bar.phase)
    for line in res.text().splitlines():
        if not line.startswith("warning: ") and not args.quiet:
            print(line)
    sys.stdout.flush()
    for w in res.warnings:  # even with --quiet: they change what the scenario can be trusted with
        print(f"warning: {w}", file=sys.stderr)
    return 0


def cmd_estimate(args) -> int:
    """``couponmix estimate``: print each policy's estimates from the real log (JSON with --json); warnings to stderr.

    Calls ``couponmix.commands.estimate``.
    """
    import json

    from couponmix.commands import estimate

    res = estimate(args.scenario, args.policy, args.out, config=args.config)
    print(json.dumps(res.to_dict(), indent=1) if args.json else res.text())
    sys.stdout.flush()
    for w in res.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def cmd_run(args) -> int:
    """``couponmix run``: run a study into --out and print its headline; warnings go to stderr, even with --quiet.

    Calls ``couponmix.commands.run``.
    """
    from couponmix.commands import run
    from couponmix.outputs.report import contextual_phrase, headline

    res = run(_study(args), args.out, quiet=args.quiet)  # checks the output folder before any work
    if not args.quiet:
        print(headline(res.summary))
        if res.summary.contextual is not None:
            print(contextual_phrase(res.summary))
    for w in res.summary.warnings:  # even with --quiet: they change how the numbers may be used
        print(f"warning: {w}", file=sys.stderr)
    if not args.quiet:
        print(f"wrote {', '.join(res.files)} to {args.out}")
    return 0


def cmd_batch(args) -> int:
    """``couponmix batch``: run a folder of studies; exit 1 when any failed (each failure on stderr).

    Calls ``couponmix.commands.batch``.
    """
    from couponmix.commands import batch

    res = batch(args.folder, args.out, workers=args.workers, quiet=args.quiet)
    if not args.quiet:
        print(f"{res.done} studies done ({res.skipped} already finished, {res.ran} run now), {res.failed} failed; see {res.index}")
    for name, err in res.errors.items():  # errors, even with --quiet
        print(f"failed: {name}: {err}", file=sys.stderr)
    return 1 if res.failed else 0


def cmd_simulate(args) -> int:
    """``couponmix simulate``: write a simulated log as Parquet chunks and print what was written.

    Calls ``couponmix.commands.simulate``.
    """
    from couponmix.commands import simulate
    from couponmix.infra.progress import Progress

    with Progress(0, "writing chunks", args.quiet) as bar:
        res = simulate(
            _study(args),
            args.alpha,
            args.out,
            args.chunk_size,
            _backend(args),
            on_chunk=bar.update_to,
            on_start=bar.set_total,
            contextual_from=args.contextual_from,
            at=args.at,
        )
    if not args.quiet:
        print(res.text())
    return 0


def _population(text: str) -> int | str:
    """``--population``: a number of customers, or 'sample'."""
    if text.strip().lower() == "sample":
        return "sample"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r} (a number of customers, or 'sample')") from None


def cmd_evaluate(args) -> int:
    """``couponmix evaluate``: print given mixtures' revenue and error (JSON with --json); warnings to stderr.

    Calls ``couponmix.commands.evaluate`` (and ``n_chunks`` for the progress bar).
    """
    import json

    from couponmix.commands import evaluate, n_chunks
    from couponmix.infra.progress import Progress

    chunks = 1 if args.population == "sample" else n_chunks(args.population, args.chunk_size)
    with Progress(chunks, "evaluating chunks", args.quiet or args.json) as bar:
        res = evaluate(
            _study(args),
            args.alpha,
            args.population,
            args.chunk_size,
            args.naive,
            _backend(args),
            on_chunk=bar.update_to,
            contextual_from=args.contextual_from,
            at=args.at,
        )
    if args.json:
        print(json.dumps(res.to_dict(), indent=2))
        return 0
    print(res.text())
    sys.stdout.flush()
    for w in res.warnings():
        print(f"warning: {w}", file=sys.stderr)
    return 0


def cmd_validate(args) -> int:
    """``couponmix validate``: print the Monte Carlo check of the analytic error, and write validation.json with --out.

    Calls ``couponmix.commands.validate``.
    """
    from couponmix.commands import validate
    from couponmix.infra.atomic import check_output_dir, write_outputs
    from couponmix.infra.progress import Progress
    from couponmix.studies.summary import to_json

    if args.out is not None:
        check_output_dir(args.out, ["validation.json"])
    with Progress(args.reps, "simulating logs", args.quiet) as bar:
        res = validate(
            _study(args),
            args.alpha,
            args.estimators,
            args.reps,
            args.clip,
            _backend(args),
            on_replication=bar.update_to,
            contextual_from=args.contextual_from,
            at=args.at,
        )
    print(res.text())
    if args.out is not None:
        write_outputs(args.out, {"validation.json": to_json(res.to_dict())})
    return 0


def cmd_campaign(args) -> int:
    """``couponmix campaign``: print the closed-loop campaign per rate; with --out, write campaign.png and campaign.json.

    Calls ``couponmix.commands.campaign`` (``studies.campaign.campaign``); CouponmixError for --rates that are not numbers.
    """
    import json

    from couponmix.commands import campaign
    from couponmix.infra.atomic import check_output_dir, write_outputs
    from couponmix.infra.progress import Progress

    try:
        rates = [float(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        raise CouponmixError(f"--rates: expected comma-separated numbers, got {args.rates!r}") from None
    if args.out is not None:
        check_output_dir(args.out, ["campaign.png", "campaign.json"])
    cfg = _study(args)
    steps = len(set(rates)) * max(args.reps, 1) * max(args.periods, 1)
    with Progress(steps, "campaign: periods simulated (log, retrain, estimate, deploy)", args.quiet) as bar:
        res = campaign(
            cfg,
            rates,
            args.periods,
            args.period_size,
            args.reps,
            with_payback=not args.no_payback,
            on_step=lambda done, total: bar.update_to(done),
        )
    print(res.text())
    if args.out is not None:
        from couponmix.outputs.report import campaign_figure

        files: dict[str, bytes | str] = {
            "campaign.png": campaign_figure(res.to_dict()),
            "campaign.json": json.dumps(res.to_dict(), indent=2, allow_nan=False) + "\n",
        }
        write_outputs(args.out, files)
    return 0


COMMANDS = {
    "scenarios": cmd_scenarios,
    "cache": cmd_cache,
    "calibrate": cmd_calibrate,
    "estimate": cmd_estimate,
    "run": cmd_run,
    "batch": cmd_batch,
    "simulate": cmd_simulate,
    "evaluate": cmd_evaluate,
    "validate": cmd_validate,
    "plan": cmd_plan,
    "campaign": cmd_campaign,
}


#: the machine, not the input: a full disk or quota, a read-only file system (exit 1, one line)
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}
#: the input: a path too long, a loop of links, a folder where a file should be (exit 2, one line)
PATH_ERRORS = {errno.ENAMETOOLONG, errno.ELOOP, errno.EISDIR, errno.ENOTDIR}


def printable(text: str) -> str:
    """The message with control characters (a newline, ESC, NUL, from a file name or a file's header) written
    as escapes, so that an error stays one line and cannot drive the terminal.

    Parameters
    ----------
    text : str

    Returns
    -------
    str
    """
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


EXIT_ENVIRONMENT = 1


def main(argv=None) -> int:
    """Run the command line ``argv`` (default: sys.argv) and return the exit code: 0 on success, 2 for bad input, 1 for a
    full or read-only disk (and a failed batch), 130 on Ctrl-C.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program's name. None: ``sys.argv``, as a real command line, which also tunes
        the allocator and arms the Ctrl-C watchdog.

    Returns
    -------
    int
        The exit code. Bad input and a full or read-only disk are reported in one line on stderr; other errors
        propagate.
    """
    if argv is None:  # a real command line (not a caller passing arguments): tune this process's allocator
        from couponmix.infra.memory import tune_allocator

        tune_allocator()
        if threading.current_thread() is threading.main_thread():
            _arm_watchdog()
            signal.signal(signal.SIGINT, _on_sigint)  # Ctrl-C: KeyboardInterrupt as usual, and the watchdog
    try:
        parser = build_parser()
        words = list(sys.argv[1:] if argv is None else argv)
        subs: Any = parser._subparsers._group_actions if parser._subparsers else []
        for p in [parser, *(c for a in subs for c in a.choices.values())]:
            p.argv = words  # for suggestions
        args = parser.parse_args(argv)
        _setup_output(args)
        return COMMANDS[args.command](args)
    except CouponmixError as exc:
        print(f"couponmix: error: {printable(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        if exc.errno in PATH_ERRORS:  # a path given by the user that the file system cannot follow
            where = f"{exc.filename}: " if exc.filename else ""
            print(f"couponmix: error: {printable(where + (exc.strerror or str(exc)))}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if exc.errno not in DISK_ERRORS:
            raise
        where = f" writing {exc.filename}" if exc.filename else ""
        msg = f"{exc.strerror or exc}{where}; nothing was written (free some space and run again)"
        print(f"couponmix: error: {printable(msg)}", file=sys.stderr)
        return EXIT_ENVIRONMENT
    except KeyboardInterrupt:
        if argv is None:  # a real command line: the watchdog may be saying it too, so once only
            _interrupted()
            _interrupt_seen.set()  # a KeyboardInterrupt that did not come from the signal handler
        else:
            print("couponmix: interrupted", file=sys.stderr)
        return 130


_announced = threading.Lock()
#: set at Ctrl-C; the watchdog thread, started with the command, waits for it
_interrupt_seen = threading.Event()


def _interrupted() -> None:
    """Say 'interrupted' once, from whichever thread gets there first."""
    if _announced.acquire(blocking=False):
        print("couponmix: interrupted", file=sys.stderr, flush=True)


def _arm_watchdog() -> None:
    """Ctrl-C must stop the command within about a second. Normally the ``except`` blocks on the way up remove
    the outputs' staging and end the workers, and the interpreter exits. Either step can hang: the
    interpreter's exit joins the process pool's threads, which can hang after ``shutdown(wait=False)`` with
    terminated workers (CPython issue #83386), and stopping a pool can block. So a watchdog thread starts
    with the command and waits for the interrupt (the signal handler only sets an event: starting a thread
    inside a handler can deadlock on the lock a thread start in the main thread holds). 2 s after the
    interrupt, if the process is still there, it ends the workers, removes the staging folders this process
    created, says 'interrupted' if nothing has, and ends the process."""

    def watchdog() -> None:
        """Wait for Ctrl-C; 2 s later end the workers, remove this process's staging and exit with 130."""

        import time

        from couponmix.infra.atomic import remove_live_staging

        _interrupt_seen.wait()
        time.sleep(2.0)
        _quiet_threads()
        try:
            # first the workers: one still writing into a staging folder would refill it. multiprocessing's
            # finalizers can block on a lock the hung thread holds, so they get half a second, no more
            _kill_children()  # at once: signals only, nothing that can block
            ender = threading.Thread(target=_end_children, name="couponmix-end-children", daemon=True)
            ender.start()
            ender.join(0.5)
            # rmtree's own final os.close can raise EBADF when another thread has just closed that reused
            # descriptor (not covered by ignore_errors): whatever happens here, the process must end
            remove_live_staging()
        except BaseException:  # noqa: BLE001, S110  (the process ends next whatever happens here)
            pass
        finally:
            try:
                _interrupted()
            finally:
                os._exit(130)

    threading.Thread(target=watchdog, name="couponmix-exit-watchdog", daemon=True).start()


def _kill_children() -> None:
    """SIGKILL to this process's worker processes (no waiting, no lock), so that none writes on."""
    try:
        import multiprocessing

        for child in multiprocessing.active_children():
            child.kill()
    except Exception:  # noqa: BLE001, S110  (the process ends next whatever happens here)
        pass


def _quiet_threads() -> None:
    """The process is ending after Ctrl-C: a background thread that fails now (a queue's feeder thread whose
    pipe the exit finalizers just closed: EBADF) would print a traceback under 'couponmix: interrupted'. Its
    words help no one. multiprocessing's threads stay quiet once it knows the process is exiting (what its
    own exit handler sets first), and any other thread dies silently."""
    try:
        import multiprocessing.util

        multiprocessing.util._exiting = True  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001, S110  (the process ends next whatever happens here)
        pass
    threading.excepthook = lambda args: None


def _end_children() -> None:
    """Before leaving with ``os._exit``: kill this process's worker processes and run multiprocessing's exit
    finalizers, which unlink the pool's semaphores, so that nothing is left in /dev/shm and the resource
    tracker has no leak to report on stderr. Threads die silently from here on (``_quiet_threads``)."""
    _quiet_threads()
    try:
        import multiprocessing
        import multiprocessing.util

        children = multiprocessing.active_children()
        for child in children:
            child.kill()
        for child in children:
            child.join(0.2)
        multiprocessing.util._run_finalizers(0)  # type: ignore[attr-defined]  # what a normal exit runs first
    except Exception:  # noqa: BLE001, S110  (the process ends next whatever happens here)
        pass


def _on_sigint(signum, frame) -> None:
    _interrupt_seen.set()
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())

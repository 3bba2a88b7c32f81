"""A catalogue of hostile inputs (issue 24, item 7), every command, refused in one line before any heavy work.

Each case calls ``couponmix.cli.main`` in this process and checks what a user at a terminal would see:
exit code 2, exactly one line on stderr that starts with ``couponmix: error:`` and names the problem
(a distinctive part of the real message is asserted), no raw control characters in that line, no Python
warning (the command line would print it on stderr too), and nothing written: the folder the case runs
in is compared, byte by byte and link by link, before and after, so an --out folder that appears or a
user's file that changes or vanishes fails the case.

"Before any heavy work" is checked, not hoped for: while a case runs, model fitting (the market's history
model, calibrate, the campaign loop), the optimiser, the Monte Carlo truth, simulated chunks, streamed
populations, obp's estimators, the payback computation and batch worker pools raise instead of running
(``no_heavy_work``). A case that reaches one of them was accepted, or refused too late. The cheap
evaluation samples that some checks need are drawn (``--eval-size 1000`` keeps them small).

Cases that show a bug in couponmix (a traceback, an accepted bad value, a refusal that comes only after
the work, a message of several lines) are marked ``xfail(strict=True)`` with ``BUG:`` and what was
observed without the guard; the expected message is what a fix would plausibly say. The first run found
50 such cases; all are fixed, and the mechanism stays for the next ones.

Not repeated here: the cases of test_cli.py, test_reliability.py, test_batch.py and test_real_logs.py.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from couponmix.cli import main
from tests.test_reliability import _as_another_user  # root drops to 'nobody' (setpriv, else a shim)

# ---------------------------------------------------------------------------------------------------------
# the machinery: a guard against heavy work, one run of the CLI, and what "refused" means
# ---------------------------------------------------------------------------------------------------------


class HeavyWork(BaseException):
    """Raised where couponmix would start heavy work (a BaseException, so no ``except Exception`` hides it)."""


#: (module, attribute path, what it is): where heavy work starts
HEAVY = (
    ("couponmix.policy.revenue_model", "CrossFittedRevenueModel.fit", "model fitting"),
    ("pymoo.optimize", "minimize", "the NSGA-II optimiser"),
    ("couponmix.studies.study", "recommend", "the recommendation (after the Pareto front)"),
    ("couponmix.ope.montecarlo", "true_values", "the Monte Carlo truth (2,000,000 customers)"),
    ("couponmix.ope.montecarlo", "pilot_samples", "the pilot model fits of validate"),
    ("couponmix.ope.montecarlo", "obp_estimate", "obp's estimators"),
    ("couponmix.commands", "obp_estimate", "obp's estimators on a real log"),
    ("couponmix.ope.streaming", "StreamingObjectives.pass_moments", "streaming the evaluation population"),
    ("couponmix.dataset.simulate", "write_chunk", "simulating a chunk of customers"),
    ("couponmix.decide.value", "payback", "the payback computation"),
    ("couponmix.studies.study", "payback", "the payback computation"),
    ("couponmix.outputs.batch", "LocalBackend.completed", "the batch's worker processes"),
)


@pytest.fixture
def no_heavy_work(monkeypatch):
    for module, path, what in HEAVY:
        owner = importlib.import_module(module)
        *parents, name = path.split(".")
        for p in parents:
            owner = getattr(owner, p)

        def refuse(*args, _what=what, **kwargs):
            raise HeavyWork(_what)

        monkeypatch.setattr(owner, name, refuse)


#: warnings Python does not show on a command line by default
SILENT_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)
#: characters that must not reach the terminal from an error message (tabs are harmless; the line end is
#: checked apart): carriage return, escape sequences, NUL, and what splitlines() also breaks lines at
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029]")


def run_cli(argv, capsys, monkeypatch) -> tuple[object, str, list[str]]:
    """``main(argv)`` in this process: (exit code, or what escaped it; stderr; warnings it emitted)."""
    logger = logging.getLogger("couponmix")
    # main keeps the stderr handler it made first; a fresh one writes to this test's captured stderr
    monkeypatch.setattr(logger, "handlers", [h for h in logger.handlers if not getattr(h, "couponmix_cli", False)])
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code: object = main(list(argv))
        except HeavyWork as exc:
            code = f"accepted: reached {exc} before refusing"
        except SystemExit as exc:
            code = f"SystemExit({exc.code})"
        except Exception as exc:  # noqa: BLE001  (a traceback on the command line)
            code = f"traceback: {type(exc).__name__}: {exc}"
    _, err = capsys.readouterr()
    shown = [f"{w.category.__name__}: {w.message}" for w in caught if not issubclass(w.category, SILENT_WARNINGS)]
    return code, err, shown


def snapshot(folder: Path) -> dict:
    """Every entry under ``folder``: a file's bytes, a link's target, a folder's name (links not followed)."""
    found = {}
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            p = Path(root) / name
            rel = str(p.relative_to(folder))
            mode = os.lstat(p).st_mode
            if stat.S_ISLNK(mode):
                found[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(mode):
                found[rel] = ("dir",)
            else:
                found[rel] = ("file", p.read_bytes())
    return found


def assert_refused(code, err: str, shown: list[str], message: str, before: dict, folder: Path) -> None:
    assert code == 2, f"exit {code!r}; stderr {err!r}"
    assert shown == [], f"warnings reach stderr: {shown}"
    assert err.count("\n") == 1 and err.endswith("\n"), f"not one line: {err!r}"
    assert err.startswith("couponmix: error: "), err
    assert not CONTROL.search(err[:-1]), f"raw control characters in the message: {err!r}"
    assert message in err, f"{message!r} not in {err!r}"
    assert snapshot(folder) == before, "files were written, changed or removed"


# ---------------------------------------------------------------------------------------------------------
# inputs: a small coupon log, its mapping, a calibrated scenario folder, and the cases' table format
# ---------------------------------------------------------------------------------------------------------


def toy_log(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """A coupon log as a team would export it: id, a numeric and a categorical feature, the coupon, the
    revenue, its logged propensity, a date and the logger."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n).round(4)
    seg = rng.choice(["a", "b"], n)
    coupon = np.where(rng.random(n) < 0.5, "none", np.where(rng.random(n) < 0.5, "c10", "c20"))
    revenue = (5 + (coupon == "c10") * (1 + x) + (seg == "b") + rng.normal(size=n)).round(3)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "x": x,
            "seg": seg,
            "coupon": coupon,
            "revenue": revenue,
            "p": np.where(coupon == "none", 0.5, 0.25),
            "ts": "2026-03-04",
            "logger": np.where(rng.random(n) < 0.5, "a", "b"),
        }
    )


def mapping() -> dict:
    return {
        "columns": {"features": ["x"], "categorical": ["seg"], "action": "coupon", "reward": "revenue", "propensity": "p", "id": "id"},
        "model": {"n_estimators": 10, "min_child_samples": 20},
        "targets": {"big": {"kind": "rule", "feature": "x", "min": 0, "action": "c10", "otherwise": "none"}},
    }


@dataclass(frozen=True)
class Shared:
    scenario: Path  # a calibrated scenario folder: copy it (``scenario_copy``) before damaging it


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Shared:
    """Built once, before any case's guard: a real scenario folder written by ``couponmix calibrate``."""
    from couponmix.commands import calibrate

    base = tmp_path_factory.mktemp("catalogue")
    toy_log().to_csv(base / "log.csv", index=False)
    calibrate(base / "log.csv", base / "scenario", mapping())
    return Shared(base / "scenario")


Setup = Callable[[Path, Shared], None]


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    message: str  # a distinctive part of the one-line error
    files: Setup | None = None  # writes the case's files into the folder it runs in
    bug: str | None = None  # what couponmix does instead (xfail, strict)
    absent: str | None = None  # a part the message must not have (a wrong suggestion)


def params(cases: list[Case]) -> list:
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    return [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason="BUG: " + c.bug)] if c.bug else []) for c in cases]


def write(name: str, text: str) -> Setup:
    def setup(d: Path, shared: Shared) -> None:
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_text(text)

    return setup


def write_bytes(name: str, data: bytes) -> Setup:
    def setup(d: Path, shared: Shared) -> None:
        (d / name).write_bytes(data)

    return setup


def mkdir(name: str) -> Setup:
    def setup(d: Path, shared: Shared) -> None:
        (d / name).mkdir(parents=True)

    return setup


def symlink(name: str, target: str) -> Setup:
    def setup(d: Path, shared: Shared) -> None:
        (d / name).symlink_to(target)

    return setup


def both(*setups: Setup) -> Setup:
    def setup(d: Path, shared: Shared) -> None:
        for s in setups:
            s(d, shared)

    return setup


def scenario_copy(edit: Callable[[Path], object] | None = None) -> Setup:
    """The shared calibrated folder copied to ``sc``, then edited."""

    def setup(d: Path, shared: Shared) -> None:
        shutil.copytree(shared.scenario, d / "sc")
        if edit is not None:
            edit(d / "sc")

    return setup


def log_files(edit=None, mapping_edit=None, raw: bytes | None = None, map_text: str | None = None) -> Setup:
    """``log.csv`` (the toy log, edited, or raw bytes) and ``map.yaml`` (the mapping, edited, or raw text)."""

    def setup(d: Path, shared: Shared) -> None:
        if raw is not None:
            (d / "log.csv").write_bytes(raw)
        else:
            frame = toy_log()
            (edit(frame) if edit is not None else frame).to_csv(d / "log.csv", index=False)
        doc = mapping()
        if mapping_edit is not None:
            mapping_edit(doc)
        (d / "map.yaml").write_text(map_text if map_text is not None else json.dumps(doc))

    return setup


def cell(column: str, row: int, value) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """One cell of the log replaced (row 0 is the file's first data row)."""

    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
        return frame

    return edit


def columns(**values) -> Callable[[dict], None]:
    return lambda doc: doc["columns"].update(values)


def target(name: str, spec: dict) -> Callable[[dict], None]:
    return lambda doc: doc["targets"].update({name: spec})


def contextual_json(doc) -> Setup:
    return write("rule.json", json.dumps(doc))


#: a whole summary.json with a contextual rule (market, world seed 0): rule files are read by summary.from_doc
EXAMPLE_RULE = Path(__file__).resolve().parents[1] / "reports/examples/contextual/summary.json"


def example_rule(**changes) -> Setup:
    """The example contextual run's summary.json as rule.json, with top-level keys replaced (``study_scenario``:
    the study's scenario, ``tolerance``: the rule at the tolerance)."""
    doc = json.loads(EXAMPLE_RULE.read_text())
    if "study_scenario" in changes:
        doc["study"]["scenario"] = changes.pop("study_scenario")
    if "tolerance" in changes:
        doc["contextual"]["at"]["tolerance"] = changes.pop("tolerance")
    doc.update(changes)
    return contextual_json(doc)


#: a cheap market (its models are never fitted here: the guard stops them)
TINY_MARKET = "history: {size: 2000}\nmodel: {n_estimators: 5, calibration_size: 1000, min_child_samples: 20}\n"
LONG = "x" * 300  # longer than a file name may be (255 bytes)
CAL = ("calibrate", "log.csv", "--config", "map.yaml", "--out", "sc")
EST = ("estimate", "log.csv", "--config", "map.yaml")
SMALL = ("--eval-size", "1000")  # for cases refused after the (cheap) evaluation sample
PAPER_MIX = ("--alpha", "pi1=0.4,pi2=0.3,pi3=0.3")


def check(case: Case, workdir: Path, shared: Shared, capsys, monkeypatch) -> None:
    if case.files is not None:
        case.files(workdir, shared)
    before = snapshot(workdir)
    code, err, shown = run_cli(case.argv, capsys, monkeypatch)
    assert_refused(code, err, shown, case.message, before, workdir)
    assert case.absent is None or case.absent not in err, err


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One core, as the catalogue is meant to run (LightGBM's threads spin on a busy machine)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COUPONMIX_THREADS", "1")
        yield


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """The folder a case runs in (its current directory), holding a file of the user's."""
    (tmp_path / "keep.txt").write_text("a file the user had")
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ---------------------------------------------------------------------------------------------------------
# 1. command-line arguments, command by command
# ---------------------------------------------------------------------------------------------------------

CLI = [
    # the parser
    Case("no_command", (), "the following arguments are required: command"),
    Case("unknown_command_far_from_any", ("frobnicate",), "invalid choice: 'frobnicate'"),
    Case("scenarios_takes_no_argument", ("scenarios", "x"), "unrecognized arguments: x"),
    Case("cache_takes_no_argument", ("cache", "--clear", "x"), "unrecognized arguments: x"),
    Case(
        "an_option_of_no_command_suggests_itself",
        ("scenarios", "--json"),
        "unrecognized arguments: --json",
    ),
    # run
    Case("run_without_out", ("run", "paper"), "the following arguments are required: --out"),
    Case("run_n_text", ("run", "paper", "--out", "o", "--n", "abc"), "argument --n: invalid int value: 'abc'"),
    Case("run_n_exponent", ("run", "paper", "--out", "o", "--n", "1e5"), "argument --n: invalid int value: '1e5'"),
    Case("run_n_zero", ("run", "paper", "--out", "o", "--n", "0"), "n must be at least 1, got 0"),
    Case("run_seed_negative", ("run", "paper", "--out", "o", "--seed", "-1"), "seed must be at least 0, got -1"),
    Case("run_world_seed_negative", ("run", "paper", "--out", "o", "--world-seed", "-1"), "world_seed must be at least 0, got -1"),
    Case("run_eval_size_99", ("run", "paper", "--out", "o", "--eval-size", "99"), "eval_size (--eval-size) must be at least 100"),
    Case("run_pop_size_3", ("run", "paper", "--out", "o", "--pop-size", "3"), "pop_size (--pop-size) must be at least 4"),
    Case("run_pop_size_below_components", ("run", "paper", "--out", "o", "--pop-size", "4", *SMALL), "pop-size must be at least 5, got 4"),
    Case("run_pop_size_exponent", ("run", "paper", "--out", "o", "--pop-size", "1e3"), "argument --pop-size: invalid int value: '1e3'"),
    Case("run_generations_zero", ("run", "paper", "--out", "o", "--generations", "0"), "generations (--generations) must be at least 1"),
    Case("run_generations_too_many", ("run", "paper", "--out", "o", "--generations", "100001"), "must be at most 100,000, got 100,001"),
    Case("run_floor_negative", ("run", "paper", "--out", "o", "--floor", "-0.1"), "floor must be a number in [0, 1), got -0.1"),
    Case("run_floor_one", ("run", "paper", "--out", "o", "--floor", "1"), "floor must be a number in [0, 1), got 1.0"),
    Case("run_floor_nan", ("run", "paper", "--out", "o", "--floor", "nan"), "floor must be a number in [0, 1), got nan"),
    Case("run_aggregate_median", ("run", "paper", "--out", "o", "--aggregate", "median"), "argument --aggregate: invalid choice: 'median'"),
    Case("run_estimator_unknown", ("run", "paper", "--out", "o", "--estimator", "magic"), "argument --estimator: invalid choice: 'magic'"),
    Case(
        "run_clip_without_estimator", ("run", "paper", "--out", "o", "--clip", "5"), "--clip needs --estimator clipped_ips, switch_dr or dr"
    ),
    Case("run_clip_for_dm", ("run", "paper", "--out", "o", "--estimator", "dm", "--clip", "3"), "estimator dm takes no clip"),
    Case(
        "run_clip_infinite",
        ("run", "paper", "--out", "o", "--estimator", "clipped_ips", "--clip", "inf"),
        "clipped_ips needs a finite clip (lambda)",
    ),
    Case(
        "run_clip_nan",
        ("run", "paper", "--out", "o", "--estimator", "clipped_ips", "--clip", "nan"),
        "clip (lambda) must be a positive number, got nan",
    ),
    Case("run_max_rmse_negative", ("run", "paper", "--out", "o", "--max-rmse", "-1"), "max_rmse (--max-rmse) must be a positive finite"),
    Case("run_max_rmse_infinite", ("run", "paper", "--out", "o", "--max-rmse", "inf"), "must be a positive finite number, got inf"),
    Case("run_horizon_zero", ("run", "paper", "--out", "o", "--horizon-days", "0"), "horizon_days (--horizon-days) must be a positive"),
    Case(
        "run_horizon_and_max_rmse",
        ("run", "paper", "--out", "o", "--horizon-days", "30", "--max-rmse", "0.1"),
        "--horizon-days and --max-rmse are two decision rules: give one",
    ),
    Case(
        "run_tol_negative", ("run", "paper", "--out", "o", "--tol", "-0.5"), "tolerance (--tol) must be a positive finite number, got -0.5"
    ),
    Case("run_tol_nan", ("run", "paper", "--out", "o", "--tol", "nan"), "tolerance (--tol) must be a positive finite number, got nan"),
    Case(
        "run_daily_traffic_zero", ("run", "paper", "--out", "o", "--daily-traffic", "0"), "daily_traffic must be a positive finite number"
    ),
    Case("run_daily_traffic_infinite", ("run", "paper", "--out", "o", "--daily-traffic", "inf"), "daily_traffic must be a positive finite"),
    Case("run_contextual_unknown", ("run", "paper", "--out", "o", "--contextual", "bogus"), "contextual must be segment, margin, logistic"),
    Case("run_contextual_no_feature", ("run", "paper", "--out", "o", "--contextual", "feature:"), "got 'feature:'"),
    Case(
        "run_contextual_feature_not_a_covariate",
        ("run", "paper", "--out", "o", "--contextual", "feature:nope", *SMALL),
        "scenario 'paper' has no covariate 'nope'",
    ),
    Case("run_quiet_and_verbose", ("run", "paper", "--out", "o", "--quiet", "--verbose"), "argument --verbose: not allowed with"),
    Case("run_fallback_on_a_simulator", ("run", "paper", "--out", "o", "--fallback", "means"), "--fallback applies to a calibrated"),
    Case("run_fallback_unknown", ("run", "paper", "--out", "o", "--fallback", "bogus"), "argument --fallback: invalid choice: 'bogus'"),
    Case("run_scenario_empty", ("run", "", "--out", "o"), "the scenario must be a name or a folder"),
    Case("run_scenario_dotdot", ("run", "../nowhere", "--out", "o"), "unknown scenario '../nowhere'"),
    Case("run_scenario_current_folder", ("run", ".", "--out", "o"), "scenario folder . has no scenario.yaml"),
    Case("run_scenario_is_a_file", ("run", "keep.txt", "--out", "o"), "unknown scenario 'keep.txt'"),
    Case("run_config_missing", ("run", "paper", "--out", "o", "--config", "nope.yaml"), "config file nope.yaml does not exist"),
    Case("run_config_is_a_folder", ("run", "paper", "--out", "o", "--config", "."), "is a directory (use `couponmix batch` for a folder)"),
    # plan
    Case("plan_without_tol", ("plan", "paper"), "the following arguments are required: --tol"),
    Case("plan_tol_zero", ("plan", "paper", "--tol", "0", *SMALL), "tol must be a positive finite number, got 0.0"),
    Case("plan_tol_infinite", ("plan", "paper", "--tol", "inf", *SMALL), "tol must be a positive finite number, got inf"),
    Case("plan_n_and_eps", ("plan", "paper", "--tol", "0.5", "--n", "5", "--eps", "0.1"), "give --n (for the least-cost mixture) or"),
    Case("plan_alpha_and_eps", ("plan", "paper", "--tol", "0.5", "--alpha", "pi1=1", "--eps", "0.1"), "give --alpha or --eps, not both"),
    Case("plan_eps_without_explore", ("plan", "paper", "--tol", "0.5", "--eps", "0.1", *SMALL), "--eps needs a component named 'explore'"),
    Case("plan_alpha_text", ("plan", "paper", "--tol", "0.5", "--alpha", "pi1=abc", *SMALL), "alpha weight for 'pi1' is not a number"),
    Case("plan_alpha_empty", ("plan", "paper", "--tol", "0.5", "--alpha", "", *SMALL), "alpha spec is empty"),
    Case("plan_alpha_no_equals", ("plan", "paper", "--tol", "0.5", "--alpha", "pi1", *SMALL), "alpha spec item 'pi1' is not NAME=WEIGHT"),
    Case(
        "plan_alpha_nan",
        ("plan", "paper", "--tol", "0.5", "--alpha", "pi1=nan,pi2=0.5,pi3=0.5", *SMALL),
        "alpha contains NaN or infinite weights",
    ),
    Case("plan_alpha_overflow", ("plan", "paper", "--tol", "0.5", "--alpha", "pi1=1e309", *SMALL), "alpha contains NaN or infinite"),
    Case("plan_alpha_nameless", ("plan", "paper", "--tol", "0.5", "--alpha", "=1", *SMALL), "alpha names unknown component(s)"),
    Case(
        "plan_alpha_semicolons",
        ("plan", "paper", "--tol", "0.5", "--alpha", "pi1=0.5;pi2=0.5", *SMALL),
        "is not a number: '0.5;pi2=0.5'",
    ),
    Case(
        "plan_alpha_short_of_one",
        ("plan", "paper_floor", "--tol", "0.5", "--alpha", "pi1=0.2,pi2=0.2,pi3=0.2", *SMALL),
        "weights sum to 0.6, not 1",
    ),
    Case("plan_floor_too_large", ("plan", "paper", "--tol", "0.5", "--floor", "1.2", *SMALL), "mixture floors sum to 3.6 > 1"),
    Case("plan_floor_negative", ("plan", "paper", "--tol", "0.5", "--floor", "-1", *SMALL), "mixture floors must be non-negative"),
    Case(
        "plan_ips_infinite_variance",
        ("plan", "paper", "--tol", "0.5", "--estimator", "ips", *SMALL),
        "IPS has infinite variance in scenario 'paper'",
    ),
    Case(
        "plan_market_tol_zero",
        ("plan", "market", "--config", "tiny.yaml", "--tol", "0"),
        "tol must be a positive finite number, got 0.0",
        write("tiny.yaml", TINY_MARKET),
    ),
    Case(
        "plan_market_eps_negative",
        ("plan", "market", "--config", "tiny.yaml", "--tol", "0.5", "--eps", "-0.1"),
        "eps must lie in [0, 1], got -0.1",
        write("tiny.yaml", TINY_MARKET),
    ),
    # simulate
    Case("simulate_without_out", ("simulate", "paper", "--n", "10"), "the following arguments are required: --out"),
    Case("simulate_without_alpha", ("simulate", "paper", "--n", "10", "--out", "s"), "simulate needs --alpha (the mixture) or"),
    Case(
        "simulate_alpha_and_contextual",
        ("simulate", "paper", "--n", "10", "--out", "s", "--alpha", "pi1=1", "--contextual-from", "x"),
        "give --alpha or --contextual-from, not both",
    ),
    Case(
        "simulate_chunk_not_a_block_multiple",
        ("simulate", "paper", "--n", "10", "--out", "s", "--alpha", "pi1=1", "--chunk-size", "1000"),
        "chunk size must be a multiple of 65,536",
    ),
    Case(
        "simulate_chunk_zero",
        ("simulate", "paper", "--n", "10", "--out", "s", "--alpha", "pi1=1", "--chunk-size", "0"),
        "chunk size must be at least 1, got 0",
    ),
    Case(
        "simulate_chunk_negative",
        ("simulate", "paper", "--n", "10", "--out", "s", "--alpha", "pi1=1", "--chunk-size", "-65536"),
        "chunk size must be at least 1, got -65536",
    ),
    Case(
        "simulate_workers_zero",
        ("simulate", "paper", "--n", "10", "--out", "s", "--alpha", "pi1=1", "--workers", "0"),
        "workers must be at least 1, got 0",
    ),
    Case(
        "simulate_workers_negative",
        ("simulate", "paper", "--n", "10", "--out", "s", "--alpha", "pi1=1", "--workers", "-1"),
        "workers must be at least 1, got -1",
    ),
    Case(
        "simulate_scheduler_timeout_negative",
        ("simulate", "paper", "--n", "10", "--out", "s", "--alpha", "pi1=1", "--scheduler", "threads", "--scheduler-timeout", "-1"),
        "--scheduler-timeout must be a number of seconds in (0, 3600], got -1.0",
    ),
    Case(
        "simulate_scheduler_timeout_nan",
        (
            "simulate",
            "paper",
            "--n",
            "10",
            "--out",
            "s",
            "--alpha",
            "pi1=1",
            "--scheduler",
            "tcp://127.0.0.1:1",
            "--scheduler-timeout",
            "nan",
        ),
        "--scheduler-timeout must be a number of seconds in (0, 3600], got nan",
    ),
    Case("simulate_n_zero", ("simulate", "paper", "--n", "0", "--out", "s", "--alpha", "pi1=1"), "n must be at least 1, got 0"),
    Case(
        "simulate_at_unknown",
        ("simulate", "paper", "--n", "10", "--out", "s", "--alpha", "pi1=1", "--at", "bogus"),
        "argument --at: invalid choice: 'bogus'",
    ),
    Case(
        "simulate_contextual_from_missing",
        ("simulate", "paper", "--n", "10", "--out", "s", "--contextual-from", "nope"),
        "--contextual-from: cannot read nope",
    ),
    Case(
        "simulate_contextual_from_text_file",
        ("simulate", "paper", "--n", "10", "--out", "s", "--contextual-from", "keep.txt"),
        "--contextual-from: keep.txt is not JSON",
    ),
    Case(
        "simulate_contextual_from_folder_without_summary",
        ("simulate", "paper", "--n", "10", "--out", "s", "--contextual-from", "."),
        "cannot read summary.json",
    ),
    Case(
        "simulate_contextual_from_binary",
        ("simulate", "paper", "--n", "10", "--out", "s", "--contextual-from", "rule.json"),
        "rule.json is not JSON",
        write_bytes("rule.json", b"\xff\xfe\x00garbage"),
    ),
    Case(
        "simulate_contextual_from_json_list",
        ("simulate", "paper", "--n", "10", "--out", "s", "--contextual-from", "rule.json"),
        "rule.json holds no contextual rule",
        contextual_json([1, 2]),
    ),
    Case(
        "simulate_contextual_from_summary_without_rule",
        ("simulate", "paper", "--n", "10", "--out", "s", "--contextual-from", "rule.json"),
        "rule.json holds no contextual rule",
        contextual_json({"scenario": "paper"}),
    ),
    Case(
        "simulate_contextual_from_other_scenario",
        ("simulate", "paper", "--n", "10", "--out", "s", "--contextual-from", "rule.json"),
        "is a rule for scenario 'market' with world seed 0, not 'paper'",
        example_rule(),
    ),
    Case(
        "simulate_contextual_from_other_version",
        ("simulate", "paper", "--n", "10", "--out", "s", "--contextual-from", "rule.json"),
        "rule.json was written by another couponmix version: run again with --contextual",
        contextual_json({"scenario": "market", "world_seed": 0, "contextual": {"at": {}}}),
    ),
    Case(
        "simulate_contextual_from_other_world",
        ("simulate", "paper", "--n", "10", "--out", "s", "--contextual-from", "rule.json", "--world-seed", "3"),
        "with world seed 0, not 'paper' with world seed 3",
        example_rule(scenario="paper"),
    ),
    Case(
        "simulate_contextual_from_unreachable_tolerance",
        ("simulate", "paper", "--n", "10", "--out", "s", "--contextual-from", "rule.json", "--at", "tolerance"),
        "no reachable contextual rule at 'tolerance'",
        example_rule(scenario="paper", study_scenario="paper", tolerance={"error": 0.5, "reachable": False}),
    ),
    # evaluate
    Case("evaluate_without_alpha", ("evaluate", "paper"), "evaluate needs --alpha (mixtures) or --contextual-from"),
    Case("evaluate_population_zero", ("evaluate", "paper", "--alpha", "pi1=1", "--population", "0", *SMALL), "population size must be at"),
    Case("evaluate_population_negative", ("evaluate", "paper", "--alpha", "pi1=1", "--population", "-5", *SMALL), "got -5"),
    Case("evaluate_population_exponent", ("evaluate", "paper", "--alpha", "pi1=1", "--population", "1e6"), "invalid int value: '1e6'"),
    Case(
        "evaluate_population_astronomic",
        ("evaluate", "paper", "--alpha", "pi1=1", "--population", "100000000000000", "--quiet", *SMALL),
        "population",
    ),
    Case("evaluate_chunk_size_100", ("evaluate", "paper", "--alpha", "pi1=1", "--chunk-size", "100"), "chunk size must be a multiple"),
    Case("evaluate_naive_without_estimator", ("evaluate", "paper", "--alpha", "pi1=1", "--naive"), "--naive needs --estimator"),
    Case(
        "evaluate_naive_snips",
        ("evaluate", "paper", *PAPER_MIX, "--estimator", "snips", "--naive", *SMALL),
        "snips has no naive multi-logger form in obp",
    ),
    Case(
        "evaluate_ips_infinite_variance",
        ("evaluate", "paper", *PAPER_MIX, "--estimator", "ips", *SMALL),
        "IPS has infinite variance in scenario 'paper' for target pi_e1",
    ),
    Case(
        "evaluate_second_alpha_unknown",
        ("evaluate", "paper", "--alpha", "pi1=1", "--alpha", "pi9=1"),
        "alpha names unknown component(s) pi9",
    ),
    Case("evaluate_alpha_negative", ("evaluate", "paper", "--alpha", "pi1=-0.5,pi2=1.5"), "weight of pi1 is -0.5, negative"),
    Case("evaluate_scheduler_empty", ("evaluate", "paper", "--alpha", "pi1=1", "--scheduler", ""), "--scheduler needs threads, processes"),
    Case(
        "evaluate_scheduler_http",
        ("evaluate", "paper", "--alpha", "pi1=1", "--scheduler", "http://127.0.0.1:8786"),
        "is neither threads, processes nor a scheduler address",
    ),
    Case(
        "evaluate_scheduler_no_host",
        ("evaluate", "paper", "--alpha", "pi1=1", "--scheduler", "tcp://"),
        "--scheduler 'tcp://' is neither threads, processes nor",
    ),
    Case(
        "evaluate_scheduler_and_workers",
        ("evaluate", "paper", "--alpha", "pi1=1", "--scheduler", "threads", "--workers", "2"),
        "give --workers (local processes) or --scheduler (Dask), not both",
    ),
    Case(
        "evaluate_scheduler_timeout_over_an_hour",
        ("evaluate", "paper", "--alpha", "pi1=1", "--scheduler", "tcp://127.0.0.1:1", "--scheduler-timeout", "5000"),
        "--scheduler-timeout must be a number of seconds in (0, 3600], got 5000.0",
    ),
    Case(
        "evaluate_scheduler_port_out_of_range",
        ("evaluate", "paper", "--alpha", "pi1=1", "--scheduler", "tcp://127.0.0.1:99999", "--scheduler-timeout", "1", *SMALL),
        "a port is a number from 1 to 65535",
    ),
    # validate
    Case("validate_without_alpha", ("validate", "paper"), "validate needs --alpha (the mixture) or --contextual-from"),
    Case("validate_reps_zero", ("validate", "paper", "--alpha", "pi1=1", "--reps", "0", *SMALL), "reps must be at least 2, got 0"),
    Case("validate_reps_negative", ("validate", "paper", "--alpha", "pi1=1", "--reps", "-1", *SMALL), "reps must be at least 2, got -1"),
    Case(
        "validate_reps_astronomic",
        ("validate", "paper_floor", *PAPER_MIX, "--reps", "1000000000000", "--n", "100", "--estimator", "ips", "--quiet", *SMALL),
        "reps",
    ),
    Case("validate_n_zero", ("validate", "paper_floor", *PAPER_MIX, "--reps", "2", "--n", "0"), "n must be at least 1, got 0"),
    Case(
        "validate_estimators_unknown",
        ("validate", "paper_floor", *PAPER_MIX, "--reps", "2", "--estimator", "magic", *SMALL),
        "unknown estimator 'magic'",
    ),
    Case("validate_estimators_empty", ("validate", "paper_floor", *PAPER_MIX, "--reps", "2", "--estimator", "", *SMALL), "no estimator"),
    Case(
        "validate_estimators_only_commas",
        ("validate", "paper_floor", *PAPER_MIX, "--reps", "2", "--estimator", ",,,", *SMALL),
        "no estimator named",
    ),
    Case(
        "validate_estimators_bad_weights",
        ("validate", "paper_floor", *PAPER_MIX, "--reps", "2", "--estimator", "ips[bogus]", *SMALL),
        "unknown estimator 'ips[bogus]'",
    ),
    Case(
        "validate_estimators_bad_lambda",
        ("validate", "paper_floor", *PAPER_MIX, "--reps", "2", "--estimator", "clipped_ips(abc)", *SMALL),
        "unknown estimator 'clipped_ips(abc)'",
    ),
    Case(
        "validate_ips_infinite_variance",
        ("validate", "paper", *PAPER_MIX, "--reps", "2", "--estimator", "ips", *SMALL),
        "ips: infinite variance at this mixture for pi_e1",
    ),
    Case(
        "validate_clip_negative",
        ("validate", "paper_floor", *PAPER_MIX, "--reps", "2", "--clip", "-1", *SMALL),
        "clip (lambda) must be a positive number, got -1.0",
    ),
    Case(
        "validate_contextual_from_missing",
        ("validate", "paper_floor", "--contextual-from", "nope", "--at", "tolerance"),
        "--contextual-from: cannot read nope",
    ),
    Case("validate_out_is_a_file", ("validate", "paper_floor", *PAPER_MIX, "--out", "keep.txt"), "output path keep.txt exists and is not"),
    Case("validate_out_empty", ("validate", "paper_floor", *PAPER_MIX, "--out", ""), "the output folder is empty (an unset variable?)"),
    # campaign
    Case("campaign_without_exploit_no_payback", ("campaign", "paper", "--no-payback"), "a campaign needs components named exploit and"),
    Case(
        "campaign_without_exploit",
        ("campaign", "paper"),
        "exploit and explore",
    ),
    Case("campaign_rates_text", ("campaign", "market", "--rates", "abc"), "--rates: expected comma-separated numbers, got 'abc'"),
    Case(
        "campaign_rates_empty", ("campaign", "market", "--rates", "", "--no-payback"), "campaign rates must be exploration shares in [0, 1]"
    ),
    Case("campaign_rates_nan", ("campaign", "market", "--rates", "nan", "--no-payback"), "campaign rates must be exploration shares"),
    Case("campaign_rates_above_one", ("campaign", "market", "--rates", "0,1.5", "--no-payback"), "campaign rates must be exploration"),
    Case("campaign_periods_zero", ("campaign", "market", "--periods", "0", "--no-payback"), "periods must be at least 1, got 0"),
    Case("campaign_period_size_10", ("campaign", "market", "--period-size", "10", "--no-payback"), "period_size must be at least 100"),
    Case("campaign_reps_zero", ("campaign", "market", "--reps", "0", "--no-payback"), "reps must be at least 1, got 0"),
    Case("campaign_one_period_and_payback", ("campaign", "market", "--periods", "1"), "a payback rate needs at least 2 periods"),
    Case(
        "campaign_rates_empty_with_payback",
        ("campaign", "market", "--config", "tiny.yaml", "--rates", "", "--periods", "2", "--period-size", "200", "--reps", "1"),
        "campaign rates must be exploration shares",
        write("tiny.yaml", TINY_MARKET),
    ),
    Case(
        "campaign_rates_above_one_with_payback",
        ("campaign", "market", "--config", "tiny.yaml", "--rates", "0,1.5", "--periods", "2", "--period-size", "200"),
        "campaign rates must be exploration shares",
        write("tiny.yaml", TINY_MARKET),
    ),
    Case("campaign_out_is_a_file", ("campaign", "market", "--out", "keep.txt"), "output path keep.txt exists and is not a directory"),
    Case("campaign_out_empty", ("campaign", "market", "--out", ""), "the output folder is empty"),
    # batch
    Case("batch_without_arguments", ("batch",), "the following arguments are required: folder, --out"),
    Case("batch_folder_missing", ("batch", "nope", "--out", "b"), "study folder nope does not exist or is not a folder"),
    Case("batch_folder_is_a_file", ("batch", "keep.txt", "--out", "b"), "study folder keep.txt does not exist or is not a folder"),
    Case("batch_folder_empty", ("batch", "st", "--out", "b"), "study folder st holds no .yaml or .yml files", mkdir("st")),
    Case(
        "batch_only_hidden_studies",
        ("batch", "st", "--out", "b"),
        "holds no .yaml or .yml files",
        write("st/.a.yaml", "scenario: paper\n"),
    ),
    Case("batch_study_is_a_folder", ("batch", "st", "--out", "b"), "holds no .yaml or .yml files", mkdir("st/a.yaml")),
    Case(
        "batch_dangling_study_link",
        ("batch", "st", "--out", "b"),
        "holds no .yaml or .yml files",
        both(mkdir("st"), symlink("st/a.yaml", "missing.yaml")),
    ),
    Case(
        "batch_workers_negative",
        ("batch", "st", "--out", "b", "--workers", "-3"),
        "workers must be at least 1, got -3",
        write("st/a.yaml", "scenario: paper\n"),
    ),
    Case(
        "batch_yaml_and_yml",
        ("batch", "st", "--out", "b"),
        "two files for study 'a' (.yaml and .yml)",
        both(write("st/a.yaml", "scenario: paper\n"), write("st/a.yml", "scenario: paper\n")),
    ),
    Case(
        "batch_study_named_like_the_comparison",
        ("batch", "st", "--out", "b"),
        "would be written over the batch's own comparison.csv",
        write("st/comparison.csv.yaml", "scenario: paper\n"),
    ),
    # calibrate and estimate (arguments; the log and its mapping are in section 4)
    Case("calibrate_without_out_and_config", ("calibrate", "log.csv"), "the following arguments are required: --out, --config"),
    Case(
        "calibrate_fallback_unknown",
        (*CAL, "--fallback", "bogus"),
        "argument --fallback: invalid choice: 'bogus'",
        log_files(),
    ),
    Case("estimate_without_source", ("estimate",), "the following arguments are required: LOG_OR_SCENARIO"),
    Case("estimate_log_without_mapping", ("estimate", "log.csv"), "give its mapping with --config", log_files()),
    Case("estimate_missing_source", ("estimate", "nope.csv"), "nope.csv is not a scenario folder"),
    Case(
        "estimate_unknown_policy_of_a_log",
        (*EST, "--policy", "nope"),
        "unknown policy 'nope'",
        log_files(),
    ),
]


@pytest.mark.parametrize("case", params(CLI))
def test_command_line_arguments(case, workdir, shared, capsys, monkeypatch, no_heavy_work):
    check(case, workdir, shared, capsys, monkeypatch)


# ---------------------------------------------------------------------------------------------------------
# 2. study files (run --config)
# ---------------------------------------------------------------------------------------------------------

STUDY_RUN = ("run", "--config", "s.yaml", "--out", "o")


def study(id_: str, text: str, message: str, bug: str | None = None) -> Case:
    return Case(f"study_{id_}", STUDY_RUN, message, write("s.yaml", text), bug)


def study_bytes(id_: str, data: bytes, message: str) -> Case:
    return Case(f"study_{id_}", STUDY_RUN, message, write_bytes("s.yaml", data))


def alias_bomb(base: str) -> str:
    """A few hundred bytes whose aliases expand to a million values."""
    return f"a0: &a0 {base}\n" + "".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 7))


STUDIES = [
    study("n_text", "n: abc\n", "s.yaml: n: expected a whole number, got 'abc'"),
    study("n_boolean", "n: true\n", "s.yaml: n: expected a number, got a boolean"),
    study("n_list", "n: [1]\n", "s.yaml: n: expected a whole number, got [1]"),
    study("seed_negative", "seed: -1\n", "s.yaml: seed: expected a number >= 0, got -1"),
    study("seed_fraction", "seed: 1.5\n", "s.yaml: seed: expected a whole number, got 1.5"),
    study("world_seed_text", "world_seed: x\n", "s.yaml: world_seed: expected a whole number, got 'x'"),
    study("floor_one", "floor: 1\n", "s.yaml: floor: expected a number < 1.0, got 1"),
    study("floor_text", "floor: 0.5x\n", "s.yaml: floor: expected a number, got '0.5x'"),
    study("daily_traffic_zero", "daily_traffic: 0\n", "s.yaml: daily_traffic: expected a number > 0, got 0"),
    study("tolerance_negative", "tolerance: -1\n", "s.yaml: tolerance: expected a number > 0, got -1"),
    study("max_rmse_nan", "max_rmse: .nan\n", "expected a finite number, got nan"),
    study("horizon_infinite", "horizon_days: .inf\n", "expected a finite number, got inf"),
    study("eval_size_10", "eval_size: 10\n", "s.yaml: eval_size: expected a number >= 100, got 10"),
    study("estimator_number", "estimator: 5\n", "s.yaml: estimator: expected a mapping, got 5"),
    study("estimator_list", "estimator: [ips]\n", "s.yaml: estimator: expected a mapping, got ['ips']"),
    study("estimator_weights", "estimator: {name: ips, weights: odd}\n", "estimator.weights: expected 'balanced' or 'naive', got 'odd'"),
    study("estimator_unknown_key", "estimator: {name: ips, bogus: 1}\n", "s.yaml: estimator.bogus: unknown key"),
    study("estimator_name_long", "estimator: " + "x" * 100 + "\n", "estimator.name: string should have at most 64 characters"),
    study("estimator_lambda_infinite", "scenario: paper\nestimator: {name: ips, lambda: .inf}\n", "estimator.lambda: expected a finite"),
    study("optimiser_number", "optimiser: 5\n", "s.yaml: optimiser: expected a mapping, got 5"),
    study("optimiser_generations_zero", "optimiser: {generations: 0}\n", "optimiser.generations: expected a number >= 1, got 0"),
    study("optimiser_pop_size_huge", "optimiser: {pop_size: 1e9}\n", "optimiser.pop_size: expected a number <= 100000"),
    study("optimizer_american_spelling", "optimizer: {pop_size: 8}\n", "unknown key(s) optimizer"),
    study("scenario_number", "scenario: 5\n", "s.yaml: scenario: expected text, got 5"),
    study("scenario_empty", "scenario: ''\n", "s.yaml: scenario: string should have at least 1 character"),
    study("scenario_list", "scenario: [a]\n", "s.yaml: scenario: expected text, got ['a']"),
    study("scenario_long", "scenario: " + "x" * 5000 + "\n", "s.yaml: scenario: string should have at most 4096 characters"),
    study("scenario_dotdot", "scenario: ../../nowhere\n", "unknown scenario '../../nowhere'"),
    study("scenario_parent_folder", "scenario: ..\n", "scenario folder .. has no scenario.yaml"),
    study("scenario_config_number", "scenario_config: 5\n", "s.yaml: scenario_config: expected a mapping, got 5"),
    study("scenario_config_for_paper", "scenario: paper\nscenario_config: {a: 1}\n", "scenario 'paper' takes no config"),
    study(
        "market_and_scenario_config",
        "market: {history: {size: 1000}}\nscenario_config: {history: {size: 1000}}\n",
        "give scenario_config or market (its older name), not both",
    ),
    study("contextual_unknown", "contextual: x\n", "contextual must be segment, margin, logistic or feature:NAME, got 'x'"),
    study("contextual_long", "contextual: feature:" + "x" * 300 + "\n", "s.yaml: contextual: string should have at most 200"),
    study("description_long", "description: " + "x" * 2500 + "\n", "s.yaml: description: string should have at most 2000"),
    study("title_list", "title: [a, b]\n", "s.yaml: title: expected text, got ['a', 'b']"),
    study("title_mapping", "title: {a: 1}\n", "s.yaml: title: expected text, got {'a': 1}"),
    study(
        "title_with_nul",
        'title: "spring\\0sale"\nscenario: paper_floor\neval_size: 1000\n',
        "title",
    ),
    study(
        "title_with_terminal_escape",
        'title: "\\e[2J\\e[31mspring"\nscenario: paper_floor\neval_size: 1000\n',
        "title",
    ),
    study(
        "key_is_a_number",
        "title: x\n1: 2\n",
        "which is not a name: write keys as text",
    ),
    study(
        "only_a_number_key",
        "1: 2\n",
        "which is not a name: write keys as text",
    ),
    study(
        "scenario_config_number_key",
        "scenario_config: {1: 2}\n",
        "which is not a name: write keys as text",
    ),
    study("duplicate_key_quoted", "n: 1\n'n': 2\n", "has the key 'n' twice (lines 1 and 2)"),
    study("nested_mappings", "scenario_config: " + "{a: " * 60 + "1" + "}" * 60 + "\n", "is nested more than 50 levels deep (line 1)"),
    study(
        "nested_blocks",
        "scenario_config:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(60)) + "  " * 61 + "v: 1\n",
        "is nested more than 50 levels deep",
    ),
    study(
        "alias_bomb_of_mappings", alias_bomb("{" + ", ".join(f"k{i}: x" for i in range(10)) + "}"), "expands to more than 100,000 values"
    ),
    study(
        "python_tag",
        "title: !!python/object/apply:os.system ['echo owned']\n",
        "could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system'",
    ),
    study("custom_tag", "title: !foo bar\n", "could not determine a constructor for the tag '!foo'"),
    study("tab_indentation", "title:\tx\nn:\t5\n", "is not valid YAML: while scanning for the next token"),
    study("unclosed_bracket", "title: [\n", "is not valid YAML: while parsing a flow node"),
    study("a_bare_word", "hello\n", "the top level must be a mapping of keys to values"),
    study("two_documents", "title: a\n---\ntitle: b\n", "expected a single document in the stream"),
    study("next_line_character_in_a_key", "n\u0085: 5\n", "is not valid YAML"),
    study("larger_than_a_megabyte", "title: x\n" + "#" * (1 << 20) + "\n", "s.yaml is larger than 1,048,576 bytes"),
    study_bytes("utf16", b"\xff\xfe" + "title: x\n".encode("utf-16-le"), "config file s.yaml is not UTF-8 text"),
    study_bytes("latin1", "title: café\n".encode("latin-1"), "config file s.yaml is not UTF-8 text"),
    study_bytes("nul_byte", b"title: x\x00\n", "unacceptable character #x0000: special characters are not allowed"),
    study_bytes("byte_order_mark_then_bad_value", b"\xef\xbb\xbftitle: x\nn: 0\n", "s.yaml: n: expected a number >= 1, got 0"),
    Case(
        "study_scenario_disagrees_with_its_parameters",
        ("plan", "paper", "--config", "m.yaml", "--tol", "0.5"),
        "the config gives parameters of scenario 'market' but the scenario is 'paper'",
        write("m.yaml", "population: {app_share: 0.4}\n"),
    ),
]


@pytest.mark.parametrize("case", params(STUDIES))
def test_study_files(case, workdir, shared, capsys, monkeypatch, no_heavy_work):
    check(case, workdir, shared, capsys, monkeypatch)


# ---------------------------------------------------------------------------------------------------------
# 3. market config files (simulators/configs/market.yaml merged with the user's file)
# ---------------------------------------------------------------------------------------------------------

MARKET_RUN = ("run", "market", "--config", "m.yaml", "--out", "o")
TWO_ACTIONS = (
    "actions:\n"
    "  none: {discount: 0, cost_per_order: 0, cost_per_send: 0}\n"
    "  pct5: {discount: 0.05, cost_per_order: 0, cost_per_send: 0.02}\n"
)


def market(id_: str, text: str, message: str, bug: str | None = None) -> Case:
    return Case(f"market_{id_}", MARKET_RUN, message, write("m.yaml", text), bug)


MARKETS = [
    market("one_action", "actions: {none: {discount: 0, cost_per_order: 0, cost_per_send: 0}}\n", "list 'no coupon' and at least one"),
    market(
        "first_action_discounted",
        TWO_ACTIONS.replace("none: {discount: 0,", "none: {discount: 0.1,"),
        "actions.none: the first action is 'no coupon' and must have zero discount and costs",
    ),
    market(
        "discount_above_one",
        "actions:\n  none: {discount: 0, cost_per_order: 0, cost_per_send: 0}\n  pct5: {discount: 1.5, "
        "cost_per_order: 0, cost_per_send: 0.02}\n",
        "actions.pct5.discount: expected a number <= 1, got 1.5",
    ),
    market(
        "negative_cost",
        TWO_ACTIONS.replace("pct5: {discount: 0.05, cost_per_order: 0", "pct5: {discount: 0.05, cost_per_order: -5"),
        "actions.pct5.cost_per_order: expected a number >= 0, got -5",
    ),
    market("uplift_without_the_segment", "population: {segments: {a: 0.5, b: 0.5}}\n", "purchase.uplift: no entry for segment a"),
    market("basket_lift_missing_a_coupon", "basket: {lift: {pct5: 0.02, pct15: 0.06}}\n", "basket.lift: no value for coupon free_shipping"),
    market("uplift_text", "purchase: {uplift: {loyal: {pct5: lots}}}\n", "purchase.uplift.loyal.pct5: expected a number, got 'lots'"),
    market("rule_on_an_unknown_feature", "rules:\n  r: {when: {feature: age, min: 3}, action: pct5}\n", "rules.r.when.feature: expected"),
    market(
        "rule_min_on_a_category", "rules:\n  r: {when: {feature: segment, min: 3}, action: pct5}\n", "segment is categorical: use equals"
    ),
    market("rule_unknown_segment", "rules:\n  r: {when: {feature: segment, equals: vip}, action: pct5}\n", "got 'vip'"),
    market(
        "rule_description_long",
        "rules:\n  winback: {description: " + "x" * 3000 + ", when: {feature: recency, min: 60}, action: pct15}\n",
        "rules.winback.description: string should have at most 2000 characters",
    ),
    market("one_component", "components: [exploit]\n", "components: two or more distinct names among"),
    market("component_twice", "components: [exploit, exploit]\n", "components: two or more distinct names among"),
    market("unknown_component", "components: [exploit, nosuch]\n", "components: two or more distinct names among"),
    market(
        "replaced_rules_orphan_a_target",
        "rules:\n  ../evil: {when: {feature: recency, min: 60}, action: pct15}\ncomponents: [exploit, ../evil]\n",
        "targets.winback.rule: 'winback' names no rule",
    ),
    market("history_policy_unknown", "history: {policy: nosuch}\n", "history.policy: expected uniform or a rule name, got 'nosuch'"),
    market("history_huge", "history: {size: 1e12}\n", "history.size: expected a number <= 50000000"),
    market("no_targets", "targets: {}\n", "targets: at least one target is needed"),
    market("target_rule_unknown", "targets:\n  t: {kind: rule, rule: nosuch}\n", "targets.t.rule: 'nosuch' names no rule"),
    market("target_kind_unknown", "targets:\n  t: {kind: oracle}\n", "targets.t.kind: expected 'greedy_model', 'softmax_model'"),
    market("target_feature_unknown", "targets:\n  t: {kind: greedy_model, features: [age]}\n", "targets.t.features.0: expected"),
    market("drift_unknown_segment", "drift: {uplift_per_period: {vip: {pct5: 0.1}}}\n", "drift.uplift_per_period: unknown segment 'vip'"),
    market("drift_unknown_coupon", "drift: {uplift_per_period: {loyal: {pct99: 0.1}}}\n", "unknown coupon 'pct99'"),
    market(
        "drift_step_period_zero", "drift: {step: {period: 0, uplift: {loyal: {pct5: 0.1}}}}\n", "drift.step.period: expected a number >= 1"
    ),
    market(
        "drift_shares_unknown_segment", "drift: {segment_shares_per_period: {vip: 0.1}}\n", "segment_shares_per_period: unknown segment"
    ),
    market(
        "budget_share_and_spend",
        "exploit: {budget: {max_coupon_share: 0.3, max_spend_per_customer: 0.5}}\n",
        "give max_coupon_share or max_spend_per_customer, not both",
    ),
    market("budget_share_two", "exploit: {budget: {max_coupon_share: 2}}\n", "exploit.budget.max_coupon_share: expected a number <= 1"),
    market("model_one_fold", "model: {folds: 1}\n", "model.folds: expected a number >= 2, got 1"),
    market("model_no_features", "model: {features: []}\n", "model.features: list should have at least 1 item"),
    market("model_unknown_feature", "model: {features: [age]}\n", "model.features.0: expected 'recency'"),
    market("model_learning_rate_zero", "model: {learning_rate: 0}\n", "model.learning_rate: expected a number > 0, got 0"),
    market("model_calibration_tiny", "model: {calibration_size: 10}\n", "model.calibration_size: expected a number >= 1000, got 10"),
    market("explore_kind_unknown", "explore: {kind: thompson}\n", "explore.kind: expected 'uniform' or 'softmax', got 'thompson'"),
    market("explore_temperature_zero", "explore: {temperature: 0}\n", "explore.temperature: expected a number > 0, got 0"),
    market("population_a_number", "population: 5\n", "config: population must be a mapping"),
    market("a_list", "- a\n- b\n", "the top level must be a mapping of keys to values"),
    market("app_share_above_one", "population: {app_share: 1.5}\n", "population.app_share: expected a number <= 1, got 1.5"),
    market("no_segments", "population: {segments: {}}\n", "segments: name at least one segment"),
    market("tenure_negative", "population: {tenure_max_years: -1}\n", "population.tenure_max_years: expected a number >= 0"),
    market("basket_sd_nan", "population: {monetary_log_sd: .nan}\n", "population.monetary_log_sd: expected a finite number, got nan"),
    market("basket_sd_infinite", "basket: {log_sd: .inf}\n", "basket.log_sd: expected a finite number, got inf"),
    market("duplicate_key", "population: {app_share: 0.3, app_share: 0.4}\n", "m.yaml has the key 'app_share' twice"),
    market("nested_lists", "rules: " + "[" * 80 + "]" * 80 + "\n", "m.yaml is nested more than 50 levels deep"),
    market("alias_bomb", alias_bomb("[x, x, x, x, x, x, x, x, x, x]"), "expands to more than 100,000 values through YAML aliases"),
    market(
        "key_is_a_number",
        "population: {1: 2}\n",
        "which is not a name: write keys as text",
    ),
    market(
        "coupon_name_with_escape",
        TWO_ACTIONS.replace("pct5:", '"p\\e[2J5":'),
        "purchase.uplift.bargain_hunter: no value for coupon",
    ),
    Case("market_utf16", MARKET_RUN, "config file m.yaml is not UTF-8 text", write_bytes("m.yaml", "population: {}\n".encode("utf-16"))),
]


@pytest.mark.parametrize("case", params(MARKETS))
def test_market_config_files(case, workdir, shared, capsys, monkeypatch, no_heavy_work):
    check(case, workdir, shared, capsys, monkeypatch)


# ---------------------------------------------------------------------------------------------------------
# 4. real logs and their mapping files (calibrate, estimate)
# ---------------------------------------------------------------------------------------------------------


def calib(id_: str, files: Setup, message: str, bug: str | None = None, argv: tuple[str, ...] = CAL) -> Case:
    return Case(f"log_{id_}", argv, message, files, bug)


def random_bytes(n: int) -> bytes:
    return np.random.default_rng(7).integers(0, 256, n, dtype=np.uint8).tobytes()


PNG = b"\x89PNG\r\n\x1a\n" + random_bytes(200)
SEMICOLONS = toy_log().to_csv(sep=";", index=False).encode()

REAL_LOGS = [
    # the file itself
    calib("separator_given_wrong", log_files(mapping_edit=columns(sep=","), raw=SEMICOLONS), "column 'x' is missing (columns: id;x;seg"),
    calib("separator_not_allowed", log_files(mapping_edit=columns(sep=":")), "columns.sep: expected ',', ';', '\\t' or '|', got ':'"),
    calib(
        "separators_mixed",
        log_files(raw=toy_log().to_csv(sep="\t", index=False).replace("\t", ",", 3).encode()),
        "column 'coupon' is missing",
    ),
    calib("empty_file", log_files(raw=b""), "log log.csv: cannot be read as CSV: No columns to parse from file"),
    calib("header_only", log_files(raw=b"id,x,seg,coupon,revenue,p,ts,logger\n"), "log log.csv has no rows"),
    calib("png_named_csv", log_files(raw=PNG), "cannot be read as CSV: 'utf-8' codec can't decode byte 0x89"),
    calib("binary_garbage", log_files(raw=random_bytes(4096)), "cannot be read as CSV: 'utf-8' codec can't decode byte"),
    calib(
        "utf16_without_byte_order_mark",
        log_files(raw=toy_log().to_csv(index=False).encode("utf-16-le")),
        "looks like UTF-16 text",
    ),
    calib(
        "header_with_escape_sequence",
        log_files(raw=b"\x1b[2Jid,seg,coupon,revenue,p\n1,a,none,3,0.5\n"),
        "column 'x' is missing",
    ),
    calib(
        "header_with_a_newline",
        log_files(raw=b'"x\nmore",seg,coupon,revenue,p,id\n' + b"1,a,none,3,0.5,1\n" * 50),
        "column 'x' is missing",
    ),
    calib("utf16", log_files(raw=toy_log().to_csv(index=False).encode("utf-16")), "cannot be read as CSV: 'utf-8' codec can't decode"),
    calib(
        "latin1",
        log_files(raw=toy_log().assign(seg="café").to_csv(index=False).encode("latin-1")),
        "cannot be read as CSV: 'utf-8' codec can't decode byte 0xe9",
    ),
    calib("too_few_rows", log_files(lambda f: f.head(30)), "log: 30 rows are too few to calibrate a scenario (at least 40)"),
    calib("propensity_column_missing", log_files(lambda f: f.drop(columns="p")), "column 'p' is missing"),
    calib("action_column_missing", log_files(lambda f: f.drop(columns="coupon")), "column 'coupon' is missing"),
    # propensities
    calib("propensity_nan", log_files(cell("p", 5, np.nan)), "log: column 'p', row 6: is empty (NaN)"),
    calib("propensity_empty_cell", log_files(cell("p", 5, "")), "log: column 'p', row 6: is empty (NaN)"),
    calib("propensity_negative", log_files(cell("p", 5, -0.25)), "column 'p', row 6: a propensity must lie in (0, 1], got -0.25"),
    calib("propensity_infinite", log_files(cell("p", 5, "inf")), "column 'p', row 6: is not a number ('inf')"),
    calib("propensity_percent_text", log_files(cell("p", 5, "25%")), "column 'p', row 6: is not a number ('25%')"),
    calib(
        "propensity_just_above_one",
        log_files(cell("p", 5, 1.0000001)),
        "got 1.0000001",
    ),
    # rewards
    calib("revenue_euro_comma", log_files(cell("revenue", 5, "€12,50")), "is not a number ('€12,50'): it looks like currency text"),
    calib("revenue_trailing_code", log_files(cell("revenue", 5, "12 EUR")), "is not a number ('12 EUR'): it looks like currency text"),
    calib("revenue_leading_code", log_files(cell("revenue", 5, "EUR 12")), "is not a number ('EUR 12'): it looks like currency text"),
    calib("revenue_nan", log_files(cell("revenue", 5, np.nan)), "log: column 'revenue', row 6: is empty (NaN)"),
    calib("revenue_infinite", log_files(cell("revenue", 5, "inf")), "log: column 'revenue', row 6: is not a number ('inf')"),
    # dates
    calib("date_in_words", log_files(cell("ts", 5, "4 March 2026"), columns(timestamp="ts")), "'4 March 2026' is not an ISO date"),
    calib("date_impossible", log_files(cell("ts", 5, "2026-13-45"), columns(timestamp="ts")), "'2026-13-45' is not an ISO date"),
    calib("date_empty", log_files(cell("ts", 5, ""), columns(timestamp="ts")), "log: column 'ts', row 6: is empty (NaN)"),
    # labels
    calib("action_in_capitals", log_files(cell("coupon", 5, "NONE")), "labels 'NONE' and 'none' differ only by case or spaces"),
    calib("segment_in_capitals", log_files(cell("seg", 5, "B")), "labels 'B' and 'b' differ only by case or spaces"),
    calib(
        "logger_in_capitals",
        log_files(cell("logger", 5, "A"), columns(component="logger")),
        "differ only by case or spaces",
    ),
    # the policies the mapping names
    calib("rule_unknown_action", log_files(mapping_edit=lambda d: d["targets"]["big"].update(action="c99")), "'c99' is not an action"),
    calib("rule_unknown_otherwise", log_files(mapping_edit=lambda d: d["targets"]["big"].update(otherwise="c99")), "target.big.otherwise"),
    calib("rule_unknown_feature", log_files(mapping_edit=lambda d: d["targets"]["big"].update(feature="y")), "'y' is not a feature"),
    calib(
        "rule_equals_unknown_value",
        log_files(mapping_edit=lambda d: d["targets"]["big"].update(feature="seg", min=None, equals="c")),
        "target.big.equals: 'c' is not a value of seg",
    ),
    calib(
        "fixed_unknown_action",
        log_files(mapping_edit=target("fx", {"kind": "fixed", "probabilities": {"c10": 0.5, "c99": 0.5}})),
        "target.fx.probabilities: 'c99' is not an action of the log",
    ),
    calib(
        "fixed_probabilities_above_one",
        log_files(mapping_edit=target("fx", {"kind": "fixed", "probabilities": {"c10": 0.5, "c20": 0.6}})),
        "probabilities sum to 1.1",
    ),
    calib(
        "fixed_probability_negative",
        log_files(mapping_edit=target("fx", {"kind": "fixed", "probabilities": {"c10": -0.5, "c20": 1.5}})),
        "target.fx.probabilities: 'c10' has -0.5; a probability lies in [0, 1]",
    ),
    calib(
        "greedy_model_unknown_feature",
        log_files(mapping_edit=target("g", {"kind": "greedy_model", "features": ["zz"]})),
        "target.g.features: 'zz' is not a feature of the log (x, seg)",
    ),
    calib("softmax_without_temperature", log_files(mapping_edit=target("s", {"kind": "softmax_model"})), "needs temperature:"),
    calib(
        "logged_component_unknown_logger",
        log_files(mapping_edit=lambda d: d.update(components={"l": {"kind": "logged", "component": "zz"}, "u": {"kind": "uniform"}})),
        "component 'zz': the log has no component column naming it",
    ),
    calib(
        "logged_component_without_propensity",
        log_files(
            mapping_edit=lambda d: (
                d["columns"].pop("propensity"),
                d.update(components={"l": {"kind": "logged"}, "u": {"kind": "uniform"}}),
            )
        ),
        "a 'logged' policy needs the log's propensity column",
    ),
    calib("one_component", log_files(mapping_edit=lambda d: d.update(components={"u": {"kind": "uniform"}})), "name two or more logging"),
    calib("no_targets", log_files(mapping_edit=lambda d: d.update(targets={})), "targets: name at least one future policy"),
    # the mapping file itself
    calib("mapping_one_fold", log_files(mapping_edit=lambda d: d["model"].update(folds=1)), "model.folds: expected a number >= 2, got 1"),
    calib("mapping_no_trees", log_files(mapping_edit=lambda d: d["model"].update(n_estimators=0)), "model.n_estimators: expected a number"),
    calib("mapping_fallback_unknown", log_files(mapping_edit=lambda d: d.update(fallback="bogus")), "fallback: expected 'means', 'refuse'"),
    calib("mapping_seed_negative", log_files(mapping_edit=lambda d: d.update(seed=-1)), "map.yaml: seed: expected a number >= 0, got -1"),
    calib("mapping_typo_at_the_top", log_files(mapping_edit=lambda d: d.update(colums={})), "map.yaml: colums: unknown key"),
    calib("mapping_typo_in_columns", log_files(mapping_edit=columns(featurs=["x"])), "map.yaml: columns.featurs: unknown key"),
    calib("mapping_without_columns", log_files(mapping_edit=lambda d: d.pop("columns")), "map.yaml: columns: missing"),
    calib("mapping_features_not_a_list", log_files(mapping_edit=columns(features="x")), "columns.features: expected a list, got 'x'"),
    calib("mapping_action_a_list", log_files(mapping_edit=columns(action=["coupon"])), "columns.action: expected text, got ['coupon']"),
    calib("mapping_max_rows_10", log_files(mapping_edit=columns(max_rows=10)), "columns.max_rows: expected a number >= 100, got 10"),
    calib(
        "mapping_min_propensity_zero", log_files(mapping_edit=columns(min_propensity=0)), "columns.min_propensity: expected a number > 0"
    ),
    calib(
        "mapping_min_propensity_two", log_files(mapping_edit=columns(min_propensity=2)), "columns.min_propensity: expected a number <= 1"
    ),
    calib("mapping_unit_long", log_files(mapping_edit=columns(reward_unit="x" * 20)), "columns.reward_unit: string should have at most 12"),
    calib("mapping_empty", log_files(map_text=""), "map.yaml: columns: missing"),
    calib("mapping_a_list", log_files(map_text="- a\n- b\n"), "map.yaml: expected a mapping, got ['a', 'b']"),
    calib("mapping_not_yaml", log_files(map_text="columns: [\n"), "config file map.yaml is not valid YAML"),
    calib("mapping_duplicate_key", log_files(map_text="columns: {action: a, action: b}\n"), "map.yaml has the key 'action' twice"),
    calib("mapping_alias_bomb", log_files(map_text=alias_bomb("[x, x, x, x, x, x, x, x, x, x]")), "expands to more than 100,000 values"),
    # where the log is
    calib("log_missing", log_files(), "log nope.csv does not exist", argv=("calibrate", "nope.csv", "--config", "map.yaml", "--out", "sc")),
    calib(
        "log_spreadsheet",
        both(log_files(), write_bytes("log.xlsx", b"PK\x03\x04junk")),
        "log log.xlsx: expected a .csv file, a .parquet file or a folder of Parquet parts",
        argv=("calibrate", "log.xlsx", "--config", "map.yaml", "--out", "sc"),
    ),
    calib(
        "log_not_gzip",
        both(log_files(), write_bytes("log.csv.gz", b"not gzip at all")),
        "cannot be read as CSV: Not a gzipped file",
        argv=("calibrate", "log.csv.gz", "--config", "map.yaml", "--out", "sc"),
    ),
    calib(
        "log_not_parquet",
        both(log_files(), write_bytes("log.parquet", b"PAR1garbagePAR1")),
        "log log.parquet: cannot be read as Parquet",
        argv=("calibrate", "log.parquet", "--config", "map.yaml", "--out", "sc"),
    ),
    calib(
        "log_folder_of_csv",
        both(log_files(), write("ld/a.csv", "x\n1\n")),
        "log ld: cannot be read as Parquet",
        argv=("calibrate", "ld", "--config", "map.yaml", "--out", "sc"),
    ),
    calib(
        "log_empty_folder",
        both(log_files(), mkdir("ld")),
        "log ld: column 'x' is missing",
        argv=("calibrate", "ld", "--config", "map.yaml", "--out", "sc"),
    ),
    calib(
        "mapping_missing",
        log_files(),
        "config file nope.yaml does not exist",
        argv=("calibrate", "log.csv", "--config", "nope.yaml", "--out", "sc"),
    ),
    calib(
        "mapping_is_a_folder",
        both(log_files(), mkdir("md")),
        "config file md is a directory",
        argv=("calibrate", "log.csv", "--config", "md", "--out", "sc"),
    ),
    # estimate reads the same log and mapping first
    calib("estimate_header_only", log_files(raw=b"id,x,seg,coupon,revenue,p,ts,logger\n"), "log log.csv has no rows", argv=EST),
    calib("estimate_percent_propensities", log_files(lambda f: f.assign(p=f.p * 100)), "divide them by 100", argv=EST),
    calib("estimate_mapping_typo", log_files(mapping_edit=columns(featurs=["x"])), "columns.featurs: unknown key", argv=EST),
    calib(
        "estimate_fixed_probabilities_above_one",
        log_files(mapping_edit=target("fx", {"kind": "fixed", "probabilities": {"c10": 0.5, "c20": 0.6}})),
        "target.fx.probabilities sum to 1.1, not 1",
        argv=EST,
    ),
]


@pytest.mark.parametrize("case", params(REAL_LOGS))
def test_real_logs_and_mappings(case, workdir, shared, capsys, monkeypatch, no_heavy_work):
    check(case, workdir, shared, capsys, monkeypatch)


# ---------------------------------------------------------------------------------------------------------
# 5. scenario folders (written by calibrate, then damaged or misused)
# ---------------------------------------------------------------------------------------------------------

PLAN_SC = ("plan", "sc", "--tol", "0.5")


def card_edit(change: Callable[[dict], object]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        doc = json.loads((folder / "calibration.json").read_text())
        change(doc)
        (folder / "calibration.json").write_text(json.dumps(doc))

    return edit


def replace_with_folder(name: str) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        (folder / name).unlink()
        (folder / name).mkdir()

    return edit


def replace_with_link(name: str, target_: str) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        (folder / name).unlink()
        (folder / name).symlink_to(target_)

    return edit


SCENARIO_FOLDERS = [
    Case(
        "folder_card_not_json",
        PLAN_SC,
        "calibration.json is missing or unreadable",
        scenario_copy(lambda f: (f / "calibration.json").write_text("{")),
    ),
    Case(
        "folder_card_binary",
        PLAN_SC,
        "calibration.json is missing or unreadable",
        scenario_copy(lambda f: (f / "calibration.json").write_bytes(b"\xff\xfe")),
    ),
    Case(
        "folder_card_other_version",
        PLAN_SC,
        "written by another couponmix version",
        scenario_copy(card_edit(lambda d: d.update(format=999))),
    ),
    Case(
        "folder_card_diagnostics_damaged",
        PLAN_SC,
        "diagnostics are not what calibrate writes",
        scenario_copy(card_edit(lambda d: d["diagnostics"].pop("gain"))),
    ),
    Case(
        "folder_card_a_list",
        PLAN_SC,
        "calibration.json",
        scenario_copy(lambda f: (f / "calibration.json").write_text("[]")),
    ),
    Case(
        "folder_array_missing",
        PLAN_SC,
        "log_reward.npy",
        scenario_copy(lambda f: (f / "log_reward.npy").unlink()),
    ),
    Case(
        "folder_model_missing",
        PLAN_SC,
        "model.reward.0.txt",
        scenario_copy(lambda f: (f / "model.reward.0.txt").unlink()),
    ),
    Case(
        "folder_model_is_a_folder",
        PLAN_SC,
        "model.reward.0.txt",
        scenario_copy(replace_with_folder("model.reward.0.txt")),
    ),
    Case(
        "folder_array_links_elsewhere",
        PLAN_SC,
        "customers.npy is damaged",
        scenario_copy(replace_with_link("customers.npy", "../keep.txt")),
    ),
    Case(
        "folder_scenario_yaml_unknown_key",
        PLAN_SC,
        "sc/scenario.yaml: unknown key(s) extra",
        scenario_copy(lambda f: (f / "scenario.yaml").write_text("kind: calibrated\nextra: 1\n")),
    ),
    Case(
        "folder_kind_a_list",
        PLAN_SC,
        "must be a mapping with kind: (a scenario name)",
        scenario_copy(lambda f: (f / "scenario.yaml").write_text("kind: [1]\n")),
    ),
    Case(
        "folder_kind_unknown",
        PLAN_SC,
        "unknown scenario 'nowhere'",
        scenario_copy(lambda f: (f / "scenario.yaml").write_text("kind: nowhere\n")),
    ),
    Case(
        "folder_kind_paper_with_a_config",
        PLAN_SC,
        "scenario 'paper' takes no config",
        scenario_copy(lambda f: (f / "scenario.yaml").write_text("kind: paper\nconfig: {a: 1}\n")),
    ),
    Case(
        "folder_kind_market_with_a_bad_config",
        PLAN_SC,
        "config: unknown key(s) populaton in top level",
        scenario_copy(lambda f: (f / "scenario.yaml").write_text("kind: market\nconfig: {populaton: {}}\n")),
    ),
    Case(
        "folder_given_a_calibrate_mapping",
        ("plan", "sc", "--tol", "0.5", "--config", "map.yaml"),
        "the config gives parameters of scenario 'market' but the scenario is 'sc'",
        both(scenario_copy(), log_files()),
    ),
    Case(
        "folder_study_fallback_unknown",
        STUDY_RUN,
        "scenario_config: fallback: expected 'means', 'refuse' or 'model', got 'never'",
        both(scenario_copy(), write("s.yaml", "scenario: sc\nscenario_config: {fallback: never}\n")),
    ),
    Case(
        "folder_study_unknown_option",
        STUDY_RUN,
        "scenario_config: bogus: unknown key",
        both(scenario_copy(), write("s.yaml", "scenario: sc\nscenario_config: {bogus: 1}\n")),
    ),
    Case(
        "folder_study_market_parameters",
        STUDY_RUN,
        "market parameters given but scenario is 'sc'",
        both(scenario_copy(), write("s.yaml", "scenario: sc\nmarket: {history: {size: 1000}}\n")),
    ),
    Case(
        "estimate_folder_and_mapping",
        ("estimate", "sc", "--config", "map.yaml"),
        "carries its own config; give no --config",
        both(scenario_copy(), log_files()),
    ),
    Case(
        "estimate_folder_unknown_policy",
        ("estimate", "sc", "--policy", "big", "--policy", "nope"),
        "unknown policy 'nope'; the scenario has exploit, explore, big",
        scenario_copy(),
    ),
    Case(
        "estimate_folder_policy_dotdot",
        ("estimate", "sc", "--policy", "../big"),
        "unknown policy '../big'",
        scenario_copy(),
    ),
]


@pytest.mark.parametrize("case", params(SCENARIO_FOLDERS))
def test_scenario_folders(case, workdir, shared, capsys, monkeypatch, no_heavy_work):
    check(case, workdir, shared, capsys, monkeypatch)


# ---------------------------------------------------------------------------------------------------------
# 6. the file system: outputs that are files, folders couponmix did not write, links, unwritable places,
#    names too long or with line breaks
# ---------------------------------------------------------------------------------------------------------


def user_file_in(folder: str, name: str) -> Setup:
    return write(f"{folder}/{name}", "the user's own file")


RUN_SMALL = ("--n", "1000", "--eval-size", "1000", "--pop-size", "8", "--generations", "1")
SIM = ("simulate", "paper", "--alpha", "pi1=1", "--n", "100")
UNWRITABLE = "/proc/self/couponmix-out"  # not writable, whoever runs the tests (root included)

FILESYSTEM = [
    # an output path that is a file, or a folder of the user's
    Case("simulate_out_is_a_file", (*SIM, "--out", "keep.txt"), "output path keep.txt exists and is not a directory"),
    Case(
        "simulate_out_users_folder",
        (*SIM, "--out", "mine"),
        "output directory mine is not empty; simulate writes a new folder",
        user_file_in("mine", "notes.txt"),
    ),
    Case("simulate_out_current_folder", (*SIM, "--out", "."), "output directory . is not empty"),
    Case("simulate_out_empty", (*SIM, "--out", ""), "the output folder is empty (an unset variable?)"),
    Case(
        "run_out_users_summary",
        ("run", "paper_floor", "--out", "mine"),
        "mine/summary.json exists in a folder couponmix did not write",
        user_file_in("mine", "summary.json"),
    ),
    Case(
        "run_out_users_pareto",
        ("run", "paper_floor", "--out", "mine"),
        "mine/pareto.csv exists in a folder couponmix did not write",
        user_file_in("mine", "pareto.csv"),
    ),
    Case(
        "run_out_users_contextual_png",
        ("run", "paper_floor", "--out", "mine"),
        "mine/contextual.png exists in a folder",
        user_file_in("mine", "contextual.png"),
    ),
    Case(
        "batch_out_is_a_file",
        ("batch", "st", "--out", "keep.txt"),
        "output path keep.txt exists and is not a directory",
        write("st/a.yaml", "scenario: paper\n"),
    ),
    Case(
        "batch_out_below_a_file",
        ("batch", "st", "--out", "keep.txt/sub"),
        "output directory keep.txt/sub is not writable",
        write("st/a.yaml", "scenario: paper\n"),
    ),
    Case("batch_out_empty", ("batch", "st", "--out", ""), "the output folder is empty", write("st/a.yaml", "scenario: paper\n")),
    Case(
        "batch_out_holds_users_comparison",
        ("batch", "st", "--out", "b"),
        "b/comparison.csv exists in a folder couponmix did not write",
        both(write("st/a.yaml", "scenario: paper\n"), user_file_in("b", "comparison.csv")),
    ),
    Case(
        "batch_study_place_is_users_file",
        ("batch", "st", "--out", "b"),
        "b/a is a file (no .couponmix marker): couponmix will not delete or replace it",
        both(write("st/a.yaml", "scenario: paper\n"), user_file_in("b", "a")),
    ),
    Case(
        "batch_study_place_links_elsewhere",
        ("batch", "st", "--out", "b"),
        "couponmix will not delete or replace it",
        both(write("st/a.yaml", "scenario: paper\n"), user_file_in("elsewhere", "f.txt"), mkdir("b"), symlink("b/a", "../elsewhere")),
    ),
    Case(
        "calibrate_out_not_empty",
        ("calibrate", "log.csv", "--config", "map.yaml", "--out", "."),
        "output folder . is not empty",
        log_files(),
    ),
    Case("calibrate_out_is_a_file", (*CAL[:-1], "keep.txt"), "output path keep.txt exists and is not a directory", log_files()),
    Case("calibrate_out_is_the_log", (*CAL[:-1], "log.csv"), "output path log.csv exists and is not a directory", log_files()),
    Case("estimate_out_is_a_file", (*EST, "--out", "keep.txt"), "output path keep.txt exists and is not a directory", log_files()),
    Case("estimate_out_empty", (*EST, "--out", ""), "the output folder is empty", log_files()),
    Case(
        "validate_out_holds_users_validation",
        ("validate", "paper_floor", *PAPER_MIX, "--reps", "2", "--n", "100", "--estimator", "ips", "--out", "mine", *SMALL),
        "mine/validation.json exists in a folder couponmix did not write",
        user_file_in("mine", "validation.json"),
    ),
    Case(
        "campaign_out_holds_users_campaign",
        ("campaign", "market", "--no-payback", "--out", "mine"),
        "mine/campaign.json exists in a folder couponmix did not write",
        user_file_in("mine", "campaign.json"),
    ),
    Case(
        "estimate_out_holds_users_report",
        ("estimate", "sc", "--out", "e"),
        "e/estimate.html exists in a folder couponmix did not write",
        both(scenario_copy(), user_file_in("e", "estimate.html")),
    ),
    # links
    Case(
        "run_out_links_to_a_file",
        ("run", "paper_floor", "--out", "o"),
        "output path o exists and is not a directory",
        symlink("o", "keep.txt"),
    ),
    Case(
        "run_out_links_to_users_folder",
        ("run", "paper_floor", "--out", "o"),
        "o/summary.json exists in a folder couponmix did not write",
        both(user_file_in("mine", "summary.json"), symlink("o", "mine")),
    ),
    Case(
        "run_out_dangling_link",
        ("run", "paper_floor", "--out", "dangling", *RUN_SMALL),
        "dangling",
        symlink("dangling", "missing"),
    ),
    Case(
        "simulate_out_dangling_link",
        (*SIM, "--out", "dangling"),
        "dangling",
        symlink("dangling", "missing"),
    ),
    Case(
        "simulate_out_link_loop",
        (*SIM, "--out", "loop"),
        "loop",
        symlink("loop", "loop"),
    ),
    Case(
        "config_link_loop",
        ("run", "paper", "--out", "o", "--config", "loop.yaml"),
        "loop.yaml",
        symlink("loop.yaml", "loop.yaml"),
    ),
    Case(
        "config_dangling_link",
        ("run", "paper", "--out", "o", "--config", "c.yaml"),
        "config file c.yaml does not exist",
        symlink("c.yaml", "none.yaml"),
    ),
    Case(
        "config_links_to_a_folder",
        ("run", "paper", "--out", "o", "--config", "c.yaml"),
        "config file c.yaml is a directory",
        symlink("c.yaml", "."),
    ),
    Case(
        "config_is_proc_status",
        ("run", "paper", "--out", "o", "--config", "/proc/self/status"),
        "config file /proc/self/status is not valid YAML",
    ),
    Case(
        "calibrate_log_link_loop",
        ("calibrate", "loop.csv", "--config", "map.yaml", "--out", "sc"),
        "log loop.csv does not exist",
        both(log_files(), symlink("loop.csv", "loop.csv")),
    ),
    # places nobody may write
    Case("run_out_unwritable", ("run", "paper", "--out", UNWRITABLE), "is not writable"),
    Case("simulate_out_unwritable", (*SIM, "--out", UNWRITABLE), "is not writable"),
    Case("validate_out_unwritable", ("validate", "paper_floor", *PAPER_MIX, "--out", UNWRITABLE), "is not writable"),
    Case("campaign_out_unwritable", ("campaign", "market", "--out", UNWRITABLE), "is not writable"),
    Case("calibrate_out_unwritable", (*CAL[:-1], UNWRITABLE), "is not writable", log_files()),
    Case("estimate_out_unwritable", (*EST, "--out", UNWRITABLE), "is not writable", log_files()),
    Case("batch_out_unwritable", ("batch", "st", "--out", UNWRITABLE), "is not writable", write("st/a.yaml", "scenario: paper\n")),
    # names too long for the file system
    Case(
        "run_out_name_too_long",
        ("run", "paper", "--out", LONG),
        "too long",
    ),
    Case(
        "run_out_name_too_long_for_its_staging_folder",
        ("run", "paper_floor", "--out", "x" * 250, *RUN_SMALL),
        "too long",
    ),
    Case(
        "simulate_out_name_too_long_for_its_staging_folder",
        (*SIM, "--out", "x" * 250),
        "too long",
    ),
    Case(
        "run_scenario_name_too_long",
        ("run", LONG, "--out", "o"),
        "unknown scenario",
    ),
    Case(
        "run_config_name_too_long",
        ("run", "paper", "--out", "o", "--config", LONG + ".yaml"),
        "too long",
    ),
    Case(
        "calibrate_log_name_too_long",
        ("calibrate", LONG + ".csv", "--config", "map.yaml", "--out", "sc"),
        "too long",
        log_files(),
    ),
    Case(
        "estimate_source_name_too_long",
        ("estimate", LONG, "--config", "map.yaml"),
        "too long",
        log_files(),
    ),
    Case(
        "batch_folder_name_too_long",
        ("batch", LONG, "--out", "b"),
        "too long",
    ),
    Case(
        "batch_study_name_too_long_for_its_staging_folder",
        ("batch", "st", "--out", "b", "--workers", "1"),
        "too long",
        write("st/" + "s" * 245 + ".yaml", "scenario: paper_floor\n"),
    ),
    # names with line breaks
    Case(
        "config_name_with_a_newline",
        ("run", "paper", "--out", "o", "--config", "a\nb.yaml"),
        "does not exist",
    ),
    Case(
        "out_name_with_a_newline_below_a_file",
        ("run", "paper", "--out", "a\nb/c"),
        "is not writable",
        write("a\nb", "a file"),
    ),
]


@pytest.mark.parametrize("case", params(FILESYSTEM))
def test_file_system(case, workdir, shared, capsys, monkeypatch, no_heavy_work):
    check(case, workdir, shared, capsys, monkeypatch)


def test_a_read_only_folder_of_the_users_as_a_process():
    """The one process case: a real read-only folder (not /proc) holding a user's file, the command run by a user
    who may not write there; simulate refuses in one line and the folder is untouched."""
    base = Path(tempfile.mkdtemp(prefix="couponmix-catalogue-"))  # under /tmp: every user can enter it
    base.chmod(0o755)
    ro = base / "ro"
    ro.mkdir()
    (ro / "keep.txt").write_text("mine")
    ro.chmod(0o555)
    try:
        before = snapshot(base)
        proc = subprocess.run(
            [*_as_another_user(), sys.executable, "-m", "couponmix.cli", *SIM, "--out", str(ro / "log")],
            cwd=base,
            env={**os.environ, "COUPONMIX_THREADS": "1", "CI": "1"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("couponmix: error: "), proc.stderr
        assert f"output directory {ro / 'log'} is not writable" in proc.stderr
        assert snapshot(base) == before
    finally:
        ro.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------
# 7. determinism (two cases, small): the same seed gives the same bytes
# ---------------------------------------------------------------------------------------------------------


def test_a_rerun_with_the_same_seed_rewrites_identical_bytes(tmp_path, capsys):
    """run with the payback rule and a plan, twice into the same folder: summary.json and pareto.csv are
    byte-identical and the folder holds the same files (no staging or backup left)."""
    argv = [
        "run",
        "paper_floor",
        "--out",
        str(tmp_path / "o"),
        "--seed",
        "7",
        "--horizon-days",
        "30",
        "--tol",
        "0.05",
        "--quiet",
        *RUN_SMALL,
    ]
    assert main(argv) == 0
    first = snapshot(tmp_path)
    assert main(argv) == 0
    again = snapshot(tmp_path)
    assert sorted(again) == sorted(first)
    for name in ("o/summary.json", "o/pareto.csv"):
        assert again[name] == first[name], name
    capsys.readouterr()


def test_simulate_with_the_same_seed_writes_identical_files(tmp_path, capsys):
    """Two simulated logs of one seed: every file (_summary.json, the Parquet part, the marker) byte-identical."""
    for name in ("a", "b"):
        argv = [
            "simulate",
            "paper_floor",
            *PAPER_MIX,
            "--n",
            "3000",
            "--seed",
            "5",
            "--workers",
            "1",
            "--out",
            str(tmp_path / name),
            "--quiet",
        ]
        assert main(argv) == 0
    a, b = snapshot(tmp_path / "a"), snapshot(tmp_path / "b")
    assert sorted(a) == [".couponmix", "_summary.json", "part-000000.parquet"]
    assert a == b
    capsys.readouterr()

"""Batch runs: every study file of a folder, in parallel, resumable, failures isolated.

OUT/<study>/ holds what ``couponmix run`` writes for that study, plus ``study.yaml`` (a copy of the
study file it ran), or ``study.yaml`` and ``error.json`` when the study failed. Each study folder is
assembled under a hidden temporary name and renamed into place in one step, so a folder under a
final name is always complete. OUT/index.html and OUT/comparison.csv sum up every study.

Running the batch again skips studies whose folder holds a summary.json made from an identical study
file; failed studies and studies whose file changed run again; temporary folders left by a killed
run are removed first. Studies run in spawned worker processes that share the machine's cores.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import traceback
from contextlib import closing
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path

from couponmix.decide.contextual_types import ContextualBlock
from couponmix.errors import CouponmixError
from couponmix.infra.atomic import (
    check_output_dir,
    check_replaceable,
    manifest,
    mark,
    owned,
    release,
    remove_owned,
    try_lock,
    write_outputs,
    writer_alive,
)
from couponmix.infra.backend import LocalBackend
from couponmix.infra.progress import Progress
from couponmix.infra.records import Record
from couponmix.infra.threads import default_threads
from couponmix.infra.validation import check_positive_int
from couponmix.outputs.templating import render
from couponmix.outputs.writer import STUDY_FILES, study_files_for
from couponmix.studies.config import load_study, study_files
from couponmix.studies.study import run_config
from couponmix.studies.summary import from_json

#: the batch's own files in its --out folder
INDEX_FILES = ("comparison.csv", "index.html")

__all__ = [
    "RESERVED",
    "STAGED_FILE",
    "COLUMNS",
    "BatchResult",
    "StudyRow",
    "run_one",
    "run_batch",
    "study_row",
    "FORMULA_START",
    "neutralise",
    "comparison_csv",
    "index_html",
]

log = logging.getLogger("couponmix")

#: names the batch writes at the top of OUT; no study may be called so
RESERVED = ("index.html", "comparison.csv")
#: the temporary files write_outputs stages index.html and comparison.csv under (mkstemp's 8-character suffix)
STAGED_FILE = re.compile(r"^\.(index\.html|comparison\.csv)\.tmp-[A-Za-z0-9_]{8}$")


@dataclass
class StudyRow(Record):
    """One study of a batch: a line of comparison.csv and of index.html (its columns are the fields, in order).

    A failed study has only ``study``, ``title`` (its name), ``status`` and ``error``; every other field is None.
    Money is in the study's reward unit (``reward_unit``); errors are RMSEs in that unit per customer.
    """

    study: str  #: the study file's stem, its folder's name under OUT
    title: str  #: the study's title (its name when it has none)
    status: str  #: "done" or "failed"
    scenario: str | None = None  #: the scenario the study ran
    #: share of traffic explored (a fraction): the recommended rate, or the rule by group's explored share
    exploration_rate: float | None = None
    revenue_per_customer: float | None = None  #: revenue per customer while logging (reward's unit)
    revenue_cost_per_10k_customers: float | None = None  #: revenue given up per 10,000 customers against no exploration
    revenue_cost_pct: float | None = None  #: that cost, percent of the revenue without exploration
    worst_error: float | None = None  #: the largest error (RMSE) over the future policies (reward's unit per customer)
    worst_sampling_error: float | None = None  #: the largest sampling part of those errors (reward's unit per customer)
    log_size: int | None = None  #: customers in the log
    log_days: float | None = None  #: days of traffic the log takes
    log_size_needed: float | None = None  #: customers the tolerance needs (None without a tolerance, or never)
    estimators: str | None = None  #: each future policy's estimator, in words ("policy: estimator; ...")
    contextual_saving_pct: float | None = None  #: the rule by group's saving against one rate for everyone (percent)
    exploration_by: str | None = None  #: "one rate for everyone" or "a rate per <grouping> group"
    worst_interval_95_pct: float | None = None  #: the widest 95% half-width over future policies, percent of its value
    tolerance: float | None = None  #: the study's tolerance on the RMSE (reward's unit per customer)
    log_days_needed: float | None = None  #: days of logging the tolerance needs
    reward_unit: str | None = None  #: the reward's unit, e.g. a currency
    error: str | None = None  #: why the study failed


#: comparison.csv's columns: ``StudyRow``'s fields, in order
COLUMNS = tuple(f.name for f in fields(StudyRow))


@dataclass
class BatchResult:
    """``couponmix batch``: what became of every study file of the folder.

    Attributes
    ----------
    done : int
        Studies with a result in the output folder (finished earlier or now).
    skipped : int
        Studies already finished with this very file, not run again.
    ran : int
        Studies run this time (successful or not).
    failed : int
        Studies without a result (their error is in their folder's error.json).
    errors : dict of str to str
        The failed studies' errors, by study name.
    index : Path or None
        The batch's index.html.
    """

    done: int
    skipped: int
    ran: int
    failed: int
    errors: dict = field(default_factory=dict)
    index: Path | None = None


def run_one(path: str, out: str) -> tuple[str, str | None]:
    """Run one study file into OUT/<stem>/ (atomically); never raises for a failing study, whose error is written
    to error.json instead.

    Parameters
    ----------
    path : str
        The study file.
    out : str
        The batch's output folder.

    Returns
    -------
    name : str
        The study's name (the file's stem).
    error : str or None
        Why it failed, in one line; None when it ran.
    """
    file = Path(path)
    name = file.stem
    source = {"study.yaml": file.read_bytes()}
    try:
        result = run_config(load_study(path))
        files = {**source, **study_files_for(result)}
        error = None
    except Exception as exc:  # isolate the failure: record it, let the other studies go on
        error = str(exc) if isinstance(exc, CouponmixError) else f"{type(exc).__name__}: {exc}"
        detail = "" if isinstance(exc, CouponmixError) else traceback.format_exc()
        files = {**source, "error.json": json.dumps({"study": name, "error": error, "traceback": detail}, indent=2) + "\n"}
    write_outputs(Path(out) / name, files, retire=(*STUDY_FILES, "error.json"))
    return name, error


def _finished(path: Path, final: Path) -> bool:
    """A result of this very study file, in the current summary layout (an older one is rerun), with every
    file the run wrote still there (a study whose report or figure was deleted is rerun, so that the index
    never links to a missing file)."""
    copy, summary = final / "study.yaml", final / "summary.json"
    if not (summary.is_file() and copy.is_file() and copy.read_bytes() == path.read_bytes()):
        return False
    written = manifest(final)
    if written is None or not all((final / name).is_file() for name in written):
        return False
    try:
        from_json(summary.read_bytes())
    except (ValueError, KeyError, TypeError, AttributeError):
        return False
    return True


def run_batch(folder, out, workers: int | None = None, quiet: bool = False) -> BatchResult:
    """Run every study file of ``folder`` into ``out`` (one sub-folder each), then write comparison.csv and
    index.html.

    Resumable: a study whose result in ``out`` came from the same file is skipped. One batch at a time writes into
    ``out`` (a lock); a failing study is recorded and the others go on. ``workers`` local processes run the studies
    (default: one per thread, at most one per study).

    Parameters
    ----------
    folder, out : str or Path
        The study files' folder, and the batch's output folder.
    workers : int, optional
    quiet : bool
        No progress bar.

    Returns
    -------
    BatchResult

    Raises
    ------
    CouponmixError
        A bad folder or workers, a study named like the batch's own files, a place in ``out`` couponmix did not
        write, or another batch writing into ``out``.
    """
    if workers is not None:  # before anything is created
        workers = check_positive_int(workers, "workers")
    files = study_files(folder)
    out = check_output_dir(out)
    clash = [p.name for p in files if p.stem in RESERVED]
    if clash:
        raise CouponmixError(f"study file {clash[0]} would be written over the batch's own {Path(clash[0]).stem}: rename it")
    # before any work: the index must be writable (not someone else's file in a folder couponmix did not
    # write), or the studies would run and the index stay stale
    check_replaceable(out, INDEX_FILES)
    for path in files:  # before any work: every study's place must be ours or free
        final = out / path.stem
        if (final.exists() or final.is_symlink()) and not owned(final):
            remove_owned(final)  # raises the one-line error naming it
    fresh = not out.exists() or not any(out.iterdir())
    out.mkdir(parents=True, exist_ok=True)
    if fresh:
        mark(out)
    # one batch at a time into one folder: the lock is held until this batch ends, however it ends
    lock = try_lock(out)
    if lock is None:
        raise CouponmixError(f"another couponmix batch is writing into {out}: wait for it to finish or choose another --out")
    try:
        return _run_locked(files, out, workers, quiet)
    finally:
        release(lock)


def _run_locked(files: list[Path], out: Path, workers: int | None, quiet: bool) -> BatchResult:
    for stale in out.glob(".*.tmp-*"):  # left behind by a killed run: never under a final name
        if owned(stale):
            if not writer_alive(stale):  # a live writer's staging (a run into this folder) is not touched
                shutil.rmtree(stale, ignore_errors=True)
        elif stale.is_file() and STAGED_FILE.match(stale.name):
            stale.unlink(missing_ok=True)  # index files only this batch, which holds the lock, writes
    todo, skipped = [], 0
    for path in files:
        final = out / path.stem
        if _finished(path, final):
            skipped += 1
            continue
        if final.exists():  # a failure record or an outdated result of ours: run again
            remove_owned(final)
        todo.append(path)
    log.info("%d studies: %d already finished, %d to run", len(files), skipped, len(todo))

    errors: dict[str, str] = {}
    if todo:
        workers = min(len(todo), default_threads() if workers is None else workers)
        backend = LocalBackend(workers, quiet_logs=True)
        # Ctrl-C or an error closes the iterator: queued studies do not start, running ones stop, no worker lingers
        studies = backend.completed(partial(run_one, out=str(out)), [str(p) for p in todo])
        with Progress(len(todo), "studies", quiet) as bar, closing(studies) as done_studies:
            pending = list(todo)  # the backend starts studies in order, one per free worker

            def running(done: int) -> None:
                """Show ``done`` studies finished and the names of those running."""
                names = ", ".join(p.stem for p in pending[:workers])
                bar.phase(done, f"studies {done}/{len(todo)} finished; running {names}" if names else "studies finished")

            running(0)
            for done, (i, result, died) in enumerate(done_studies, 1):
                path = todo[i]
                pending.remove(path)
                running(done)
                if died is None:
                    name, error = result
                else:
                    name, error = path.stem, "the worker process running this study died"
                    write_outputs(
                        out / name, {"study.yaml": path.read_bytes(), "error.json": json.dumps({"study": name, "error": error}) + "\n"}
                    )
                if error is not None:
                    errors[name] = error
                    log.info("study %s failed: %s", name, error)
                else:
                    log.info("study %s done", name)
                bar.update_to(done)
    rows = [study_row(out / p.stem, p.stem) for p in files]
    write_outputs(out, dict(zip(INDEX_FILES, (comparison_csv(rows), index_html(rows)))))
    failed = sum(r.status == "failed" for r in rows)
    return BatchResult(
        done=len(rows) - failed,
        skipped=skipped,
        ran=len(todo),
        failed=failed,
        errors={r.study: r.error for r in rows if r.status == "failed"},
        index=out / "index.html",
    )


def _saving(cx: ContextualBlock | None) -> float | None:
    """The rule's saving at the recommended precision against one rate for everyone (percent), if any."""
    at = None if cx is None else cx.at.get("recommended")
    return None if at is None else at.saving_pct


def study_row(folder: Path, name: str) -> StudyRow:
    """One line of the index: the headline numbers of a finished study, or its error.

    Parameters
    ----------
    folder : Path
        The study's folder under OUT.
    name : str
        The study's name.

    Returns
    -------
    StudyRow
        With the rule's share and cost where the report recommends the rule by group.
    """
    if not (folder / "summary.json").is_file():
        err = folder / "error.json"
        return StudyRow(
            study=name, title=name, status="failed", error=json.loads(err.read_text())["error"] if err.is_file() else "no result"
        )
    s = from_json((folder / "summary.json").read_bytes())
    h = s.headline
    rule = s.contextual.at.get("recommended") if s.contextual is not None and s.contextual.recommended else None
    row = StudyRow(
        study=name,
        title=(s.study.title if s.study is not None else None) or name,
        status="done",
        scenario=s.scenario,
        exploration_rate=h.exploration_rate,
        revenue_per_customer=h.revenue_per_customer,
        revenue_cost_per_10k_customers=h.revenue_cost_per_10k_customers,
        revenue_cost_pct=h.revenue_cost_pct,
        worst_error=h.worst_error,
        worst_sampling_error=max(p.sampling_error for p in h.precision.values()),
        log_size=h.log_size,
        log_days=h.log_days,
        log_size_needed=h.log_size_needed,
        estimators="; ".join(f"{t}: {p.estimator_plain}" for t, p in h.precision.items()),
        contextual_saving_pct=_saving(s.contextual),
        exploration_by="one rate for everyone",
        worst_interval_95_pct=h.worst_interval_95_pct,
        tolerance=h.tolerance,
        log_days_needed=h.log_days_needed,
        reward_unit=s.unit(),
    )
    if rule is not None and s.contextual is not None and rule.revenue_cost_per_10k_customers is not None:
        # the report recommends the rule per group: the index shows the rule's share and cost
        base = s.revenue_cost.baseline_revenue
        cost = rule.revenue_cost_per_10k_customers
        row.exploration_by = f"a rate per {s.contextual.grouped_by} group"
        row.exploration_rate = rule.explored_share
        row.revenue_cost_per_10k_customers = cost
        row.revenue_cost_pct = 100.0 * cost / 10_000 / abs(base) if base else None
        row.revenue_per_customer = base - cost / 10_000
        row.worst_error = max((rule.errors or {}).values(), default=None)
        row.worst_interval_95_pct = rule.worst_interval_95_pct
    return row


#: a text cell starting with one of these is a formula to a spreadsheet (OWASP's CSV injection advice)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell):
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe; numbers are left alone.

    Parameters
    ----------
    cell : object
        A cell's value.

    Returns
    -------
    object
        The value, or the text with a leading apostrophe.
    """
    return "'" + cell if isinstance(cell, str) and cell.startswith(FORMULA_START) else cell


def comparison_csv(rows: list[StudyRow]) -> str:
    """comparison.csv: one row per study with the ``COLUMNS``, text cells that a spreadsheet would run as formulas
    neutralised.

    Parameters
    ----------
    rows : list of StudyRow

    Returns
    -------
    str
    """
    import pandas as pd

    safe = [{k: neutralise(v) for k, v in r.to_dict().items()} for r in rows]
    return pd.DataFrame(safe, columns=list(COLUMNS)).to_csv(index=False, float_format="%.10g")


def index_html(rows: list[StudyRow]) -> str:
    """index.html: the batch's table of studies, each linking to its report (the template's rows are the studies'
    fields plus an ``href``).

    Parameters
    ----------
    rows : list of StudyRow

    Returns
    -------
    str
        The HTML page.
    """
    from urllib.parse import quote

    # links built from the percent-encoded folder name, never from the raw file name
    linked = [{**r.to_dict(), "href": "./" + quote(r.study, safe="") + "/report.html"} for r in rows]
    return render("index.html", rows=linked)

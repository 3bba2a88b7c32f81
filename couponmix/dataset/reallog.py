"""A team's own coupon log: read, map and check it.

A ``ColumnMapping`` (a study's ``columns:`` section, checked by pydantic) names the columns: numeric and
categorical features, the action, the reward, and optionally the logged propensity of the action taken,
the logging component, a timestamp, a position and a row id. ``read_log`` reads a CSV file, a Parquet
file or a folder of Parquet parts (``couponmix simulate`` output included), only the mapped columns, in
batches, and checks every column: each problem is one line naming the column and the first bad row
(1 = the first data row). Categorical features and string action labels are encoded as integer codes
(sorted labels), kept with the log so that reports can name them.

Logs larger than ``max_rows`` are thinned to a uniform random sample of about that many rows (seeded),
read batch by batch, so memory is bounded by the sample, not by the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from couponmix.errors import CouponmixError
from couponmix.infra.schema import Int, Schema

__all__ = ["ColumnMapping", "RealLog", "read_log", "MAX_ROWS"]

MAX_ROWS = 5_000_000
BATCH_ROWS = 1_000_000
Column = str


class ColumnMapping(Schema):
    """Which column of the log is what."""

    features: list[Column] = Field(default_factory=list, description="numeric customer features")
    categorical: list[Column] = Field(default_factory=list, description="categorical customer features (any labels)")
    action: Column = Field(description="the action (coupon) taken: labels or ids")
    reward: Column = Field(description="the reward that followed (revenue, click, ...)")
    propensity: Column | None = Field(default=None, description="logged probability of the action taken, in (0, 1]")
    component: Column | None = Field(default=None, description="which logging component acted (several loggers)")
    balanced_propensity: Column | None = Field(
        default=None,
        description="several loggers: the logging system's probability of the action taken, sum over loggers of "
        "share x probability, in (0, 1] (couponmix simulate writes it as pscore_avg); without it, couponmix "
        "rebuilds it where every logger is context-free",
    )
    timestamp: Column | None = Field(default=None, description="when (for the data card's date range)")
    position: Column | None = Field(default=None, description="slot or position (a categorical feature if listed)")
    id: Column | None = Field(default=None, description="a row id, which must be unique")
    reward_kind: Literal["auto", "binary", "continuous"] = Field(
        default="auto", description="binary (0/1, e.g. clicks) or continuous (e.g. revenue); auto: binary if 0/1 only"
    )
    max_rows: Int = Field(default=MAX_ROWS, ge=100, le=100_000_000, description="read at most about this many rows")
    reward_name: str | None = Field(
        default=None,
        max_length=40,
        description="what the reward is, in the reports' words (e.g. 'net revenue', 'orders'; default: clicks or revenue)",
    )
    reward_unit: str | None = Field(default=None, max_length=12, description="the reward's unit (e.g. 'EUR'), shown beside amounts")
    sep: Literal[",", ";", "\t", "|"] | None = Field(default=None, description="the CSV separator; detected from the file when not given")
    date_format: str | None = Field(
        default=None, max_length=40, description="how timestamps are written (e.g. '%m/%d/%Y'); without it they must be ISO 8601"
    )
    min_propensity: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="raise logged propensities below this to it (a documented clip of the largest weights: biased, but "
        "a few rows no longer dominate every estimate)",
    )
    min_action_rows: Int = Field(default=30, ge=2, description="actions with fewer logged rows are flagged (see rare_actions)")
    rare_actions: Literal["keep", "drop"] = Field(
        default="keep", description="what to do with actions below min_action_rows: keep them (with a warning) or drop their rows"
    )

    @model_validator(mode="after")
    def _distinct(self):
        if not self.features and not self.categorical:
            raise ValueError("features: name at least one feature column (numeric or categorical)")
        named = [*self.features, *self.categorical, self.action, self.reward]
        named += [c for c in (self.propensity, self.component, self.balanced_propensity, self.id) if c is not None]
        dup = sorted({c for c in named if named.count(c) > 1})
        if dup:
            raise ValueError(f"column {dup[0]!r} is mapped twice")
        return self

    def columns(self) -> list[str]:
        """Every column the mapping names, once each, in order: features, categoricals, action, reward, then the optional ones."""
        cols = [*self.features, *self.categorical, self.action, self.reward]
        extra = (self.propensity, self.component, self.balanced_propensity, self.timestamp, self.position, self.id)
        cols += [c for c in extra if c is not None]
        return list(dict.fromkeys(cols))


@dataclass
class RealLog:
    """A checked log: ``x`` (n, d) floats (categoricals as codes), ``action`` (n,) codes, ``reward`` (n,)."""

    x: np.ndarray
    feature_names: list[str]
    categories: dict[str, list[str]]
    action: np.ndarray
    action_names: list[str]
    reward: np.ndarray
    binary: bool
    propensity: np.ndarray | None = None
    balanced_propensity: np.ndarray | None = None
    component: np.ndarray | None = None
    component_names: list[str] = field(default_factory=list)
    date_range: tuple[str, str] | None = None
    rows_in_file: int = 0
    source: str = ""
    #: what the checks found that does not stop the reading, in plain words with how to fix it
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        """n, the log's rows."""
        return len(self.reward)

    @property
    def n_actions(self) -> int:
        """A, the number of actions."""
        return len(self.action_names)


def _row(index: int) -> str:
    return f"row {index + 1}"


def _detect_separator(path: Path) -> str:
    """The CSV separator among , ; tab and |, from the first lines (',' when nothing else fits)."""
    import csv
    import gzip

    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            head = fh.read(65536)
    except OSError:
        return ","
    lines = head.splitlines()[:20]
    if len(lines) > 1 and not head.endswith("\n"):
        lines = lines[:-1]  # a cut last line
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _read_batches(path: Path, columns: list[str], max_rows: int, seed: int, sep: str | None = None):
    """Yield (pandas frame of the mapped columns, first row number) batches, thinned past ``max_rows``;
    returns the file's row count through StopIteration's value."""
    import pandas as pd
    import pyarrow.dataset as ds

    rng = np.random.default_rng(seed)
    if path.is_dir() or path.suffix.lower() in (".parquet", ".pq"):
        try:
            data = ds.dataset(str(path), format="parquet")
        except Exception as exc:  # noqa: BLE001  (pyarrow raises many kinds)
            raise CouponmixError(f"log {path}: cannot be read as Parquet: {str(exc).splitlines()[0]}") from None
        missing = [c for c in columns if c not in data.schema.names]
        if missing:
            raise CouponmixError(f"log {path}: column {missing[0]!r} is missing (columns: {', '.join(data.schema.names[:20])})")
        total = data.count_rows()
        keep = min(1.0, max_rows / max(total, 1))
        start = 0
        for batch in data.to_batches(columns=columns, batch_size=BATCH_ROWS):
            frame = batch.to_pandas()
            rows = np.arange(start, start + len(frame))
            if keep < 1:
                sel = rng.random(len(frame)) < keep
                frame, rows = frame[sel], rows[sel]
            yield frame.reset_index(drop=True), rows
            start += batch.num_rows
        return total
    if path.suffix.lower() not in (".csv", ".txt", ".gz"):
        raise CouponmixError(f"log {path}: expected a .csv file, a .parquet file or a folder of Parquet parts")
    sep = sep or _detect_separator(path)
    try:
        header = pd.read_csv(path, nrows=0, sep=sep).columns
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise CouponmixError(f"log {path}: cannot be read as CSV: {str(exc).splitlines()[0]}") from None
    missing = [c for c in columns if c not in header]
    if missing and any("\x00" in str(h) for h in header):
        raise CouponmixError(f"log {path}: the file looks like UTF-16 text (NUL bytes between letters): save it as UTF-8 CSV")
    if missing:
        raise CouponmixError(f"log {path}: column {missing[0]!r} is missing (columns: {', '.join(map(str, header[:20]))})")
    with open(path, "rb") as fh:
        total = max(sum(1 for _ in fh) - 1, 0)
    keep = min(1.0, max_rows / max(total, 1))
    start = 0
    try:
        for frame in pd.read_csv(path, sep=sep, usecols=columns, chunksize=BATCH_ROWS, dtype={c: object for c in columns}):
            rows = np.arange(start, start + len(frame))
            start += len(frame)
            if keep < 1:
                sel = rng.random(len(frame)) < keep
                frame, rows = frame[sel], rows[sel]
            yield frame.reset_index(drop=True), rows
    except (ValueError, UnicodeDecodeError) as exc:
        raise CouponmixError(f"log {path}: cannot be read as CSV: {str(exc).splitlines()[0]}") from None
    return total


_CURRENCY = re.compile(
    r"^\s*[-+]?\s*([$€£¥]|[A-Z]{3}\s)\s*[-+]?[\d.,\s]*\d\s*$"  # $1,250.00  EUR 12
    r"|^\s*[-+]?[\d.,]*\d\s*([$€£¥]|\s[A-Z]{3})\s*$"  # 12,50 €  12 EUR
    r"|^\s*-?\d{1,3}(,\d{3})+(\.\d+)?\s*$"  # 1,250.00
)


def _numeric(values, name: str, rows: np.ndarray) -> np.ndarray:
    import pandas as pd

    out = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(out))
    if bad.size:
        raw = values[bad[0]] if not hasattr(values, "iloc") else values.iloc[bad[0]]
        empty = raw is None or str(raw).strip().lower() in ("", "nan", "none")
        what = "is empty (NaN)" if empty else f"is not a number ({str(raw)[:40]!r})"
        if not empty and _CURRENCY.match(str(raw)):
            what += ": it looks like currency text; write plain numbers, without a currency sign or thousands separators"
        raise CouponmixError(f"log: column {name!r}, {_row(int(rows[bad[0]]))}: {what}")
    return out


def _labels(values, name: str, rows: np.ndarray) -> np.ndarray:
    import pandas as pd

    s = pd.Series(values)
    bad = np.flatnonzero(s.isna().to_numpy())
    if bad.size:
        raise CouponmixError(f"log: column {name!r}, {_row(int(rows[bad[0]]))}: is empty (NaN)")
    return s.astype(str).str.strip().to_numpy()


def _check_spelling(labels: list[str], name: str) -> None:
    """Labels that differ only by case or spaces ('SAVE10', 'save10', 'SAVE 10') would count as different."""
    seen: dict[str, str] = {}
    for label in labels:
        key = "".join(label.split()).casefold()
        if key in seen:
            raise CouponmixError(
                f"log: column {name!r}: labels {seen[key]!r} and {label!r} differ only by case or spaces and would count as "
                "two; write them the same way in the log"
            )
        seen[key] = label


def _label_key(label: str):
    """Numeric labels sort as numbers (item 2 before item 10), others as text."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def _date_range(stamps: np.ndarray, mapping: ColumnMapping, rows: np.ndarray) -> tuple[str, str]:
    """(first, last) as ISO dates; timestamps must be ISO 8601 unless ``date_format`` says how they are written
    (03/04/2026 could be March or April)."""
    import pandas as pd

    fmt = mapping.date_format or "ISO8601"
    parsed = pd.to_datetime(pd.Series(stamps), format=fmt, errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        how = f"is not written as {mapping.date_format!r}" if mapping.date_format else "is not an ISO date (YYYY-MM-DD)"
        fix = "" if mapping.date_format else "; give columns.date_format (for example '%m/%d/%Y') to read other formats"
        raise CouponmixError(f"log: column {mapping.timestamp!r}, {_row(int(rows[bad[0]]))}: {str(stamps[bad[0]])[:40]!r} {how}{fix}")
    return (parsed.min().isoformat(), parsed.max().isoformat())


def read_log(path, mapping: ColumnMapping, seed: int = 0) -> RealLog:
    """Read and check the log at ``path`` (CSV, Parquet file or folder of Parquet parts) as ``mapping`` says."""
    path = Path(path)
    if not path.exists():
        raise CouponmixError(f"log {path} does not exist")
    rows, col, total = _read_columns(path, mapping, seed)
    x, categories = _covariates(col, mapping, rows)
    notes: list[str] = []
    action, action_names, rows, x, col = _actions(col, mapping, rows, x, notes)
    reward, binary = _reward(col, mapping, rows)
    propensity = _propensity(col, mapping.propensity, mapping, rows, notes)
    balanced = _propensity(col, mapping.balanced_propensity, mapping, rows, notes)
    if balanced is not None and (propensity is None or mapping.component is None):
        raise CouponmixError("log: balanced_propensity belongs to a log with several loggers: map propensity and component too")
    component, component_names = None, []
    if mapping.component is not None:
        comp_labels = _labels(col[mapping.component], mapping.component, rows)
        component_names = sorted(set(comp_labels.tolist()), key=_label_key)
        _check_spelling(component_names, mapping.component)
        c_index = {v: i for i, v in enumerate(component_names)}
        component = np.fromiter((c_index[v] for v in comp_labels), dtype=np.int64, count=len(comp_labels))
    if mapping.id is not None:
        _check_ids(_labels(col[mapping.id], mapping.id, rows), mapping.id, rows)
    date_range = None
    if mapping.timestamp is not None:
        date_range = _date_range(_labels(col[mapping.timestamp], mapping.timestamp, rows), mapping, rows)
    return RealLog(
        x=x,
        feature_names=[*mapping.features, *mapping.categorical],
        categories=categories,
        action=action,
        action_names=action_names,
        reward=reward,
        binary=binary,
        propensity=propensity,
        balanced_propensity=balanced,
        component=component,
        component_names=component_names,
        date_range=date_range,
        rows_in_file=total,
        source=str(path),
        notes=notes,
    )


def _read_columns(path: Path, mapping: ColumnMapping, seed: int) -> tuple[np.ndarray, dict, int]:
    """(the file's row number of every row kept, the mapped columns as object arrays, rows in the file)."""
    cols = mapping.columns()
    parts: dict[str, list] = {c: [] for c in cols}
    row_parts = []
    gen = _read_batches(path, cols, mapping.max_rows, seed, mapping.sep)
    total = 0
    while True:
        try:
            frame, rows = next(gen)
        except StopIteration as stop:
            total = int(stop.value or 0)
            break
        row_parts.append(rows)
        for c in cols:
            parts[c].append(frame[c].to_numpy(dtype=object))
    if not row_parts or sum(len(r) for r in row_parts) == 0:
        raise CouponmixError(f"log {path} has no rows")
    return np.concatenate(row_parts), {c: np.concatenate(parts[c]) for c in cols}, total


def _covariates(col: dict, mapping: ColumnMapping, rows: np.ndarray) -> tuple[np.ndarray, dict[str, list[str]]]:
    """(x (n, d): the numeric features, then the categorical ones as their label's index; the labels)."""
    numeric = [_numeric(col[c], c, rows) for c in mapping.features]
    categories: dict[str, list[str]] = {}
    coded = []
    for c in mapping.categorical:
        labels = _labels(col[c], c, rows)
        categories[c] = sorted(set(labels.tolist()), key=_label_key)
        _check_spelling(categories[c], c)
        index = {v: i for i, v in enumerate(categories[c])}
        coded.append(np.fromiter((index[v] for v in labels), dtype=float, count=len(labels)))
    x = np.column_stack(numeric + coded) if numeric or coded else np.empty((len(rows), 0))
    return x, categories


def _actions(col: dict, mapping: ColumnMapping, rows: np.ndarray, x: np.ndarray, notes: list[str]) -> tuple:
    """(action index per row, action names, rows, x, columns), after the rare actions' rows are dropped when
    the mapping says so (else noted); refuses a log with one action, or an action seen once."""
    labels = _labels(col[mapping.action], mapping.action, rows)
    action_names = sorted(set(labels.tolist()), key=_label_key)
    _check_spelling(action_names, mapping.action)
    counts0 = {a: int(c) for a, c in zip(*np.unique(labels, return_counts=True))}
    rare = [a for a in action_names if counts0[a] < mapping.min_action_rows]
    if rare and mapping.rare_actions == "drop":
        keep_rows = ~np.isin(labels, rare)
        notes.append(
            f"actions {', '.join(repr(a) for a in rare)} have fewer than {mapping.min_action_rows} rows; their "
            f"{int((~keep_rows).sum())} rows are dropped (rare_actions: drop)"
        )
        labels, rows, x = labels[keep_rows], rows[keep_rows], x[keep_rows]
        col = {c: v[keep_rows] for c, v in col.items()}
        action_names = [a for a in action_names if a not in rare]
    elif rare:
        notes.append(
            f"actions {', '.join(f'{a!r} ({counts0[a]} rows)' for a in rare)} have fewer than {mapping.min_action_rows} "
            "logged rows: every value resting on them is a guess from a handful of customers; log them more, or set "
            "columns.rare_actions: drop"
        )
    if len(action_names) < 2:
        raise CouponmixError(
            f"log: column {mapping.action!r} holds one action only ({action_names[0]!r}): there is nothing to choose between"
        )
    a_index = {v: i for i, v in enumerate(action_names)}
    action = np.fromiter((a_index[v] for v in labels), dtype=np.int64, count=len(labels))
    counts = np.bincount(action, minlength=len(action_names))
    once = np.flatnonzero(counts < 2)
    if once.size:
        first = int(np.flatnonzero(action == once[0])[0])
        raise CouponmixError(
            f"log: column {mapping.action!r}, {_row(int(rows[first]))}: action "
            f"{action_names[once[0]]!r} is seen once only; drop it or log it more"
        )
    return action, action_names, rows, x, col


def _reward(col: dict, mapping: ColumnMapping, rows: np.ndarray) -> tuple[np.ndarray, bool]:
    """(the reward per row, whether it is binary); refuses a constant reward or a binary one outside {0, 1}."""
    reward = _numeric(col[mapping.reward], mapping.reward, rows)
    if np.ptp(reward) == 0:
        raise CouponmixError(f"log: column {mapping.reward!r} is constant ({reward[0]:g}): there is nothing to learn")
    is01 = bool(np.isin(reward, (0.0, 1.0)).all())
    if mapping.reward_kind == "binary" and not is01:
        first_bad = int(np.flatnonzero(~np.isin(reward, (0.0, 1.0)))[0])
        raise CouponmixError(
            f"log: column {mapping.reward!r}, {_row(int(rows[first_bad]))}: a binary reward must be 0 or 1, got {reward[first_bad]:g}"
        )
    return reward, (is01 if mapping.reward_kind == "auto" else mapping.reward_kind == "binary")


def _propensity(col: dict, name: str | None, mapping: ColumnMapping, rows: np.ndarray, notes: list[str]) -> np.ndarray | None:
    """The propensity column ``name`` checked in (0, 1] (raised to ``min_propensity`` where it is lower, noted),
    with a note when a few rows dominate the inverse weights; None when the column is not mapped."""
    if name is None:
        return None
    p = _numeric(col[name], name, rows)
    bad = np.flatnonzero(~((p > 0) & (p <= 1)))
    if bad.size:
        hint = ""
        if ((p > 0) & (p <= 100)).all() and p.max() > 1.5:
            hint = f"; the values look like percents (up to {p.max():g}): divide them by 100"
        raise CouponmixError(
            f"log: column {name!r}, {_row(int(rows[bad[0]]))}: a propensity must lie in (0, 1], got {p[bad[0]]:.10g}{hint}"
        )
    if mapping.min_propensity is not None:
        low = p < mapping.min_propensity
        if low.any():
            notes.append(
                f"column {name!r}: {int(low.sum()):,} propensities below {mapping.min_propensity:g} are raised to it "
                "(min_propensity): the largest weights are clipped, which biases the estimates toward the rest of the log"
            )
            p = np.maximum(p, mapping.min_propensity)
    inv = 1.0 / p
    ess = float(inv.sum() ** 2 / (inv * inv).sum())
    top = int(np.argmax(inv))
    share = float(inv[top] / inv.sum())
    if ess < 0.05 * len(p) or share > 0.05:
        notes.append(
            f"column {name!r}: the inverse propensities give an effective sample size of {ess:,.1f} of {len(p):,} rows; "
            f"{_row(int(rows[top]))} (propensity {p[top]:.3g}) alone carries {share:.0%} of their sum, so a few rows "
            "dominate every reweighted estimate. Check those propensities, or set columns.min_propensity to clip them"
        )
    return p


def _check_ids(ids: np.ndarray, column: str, rows: np.ndarray) -> None:
    """Refuses a duplicated customer id, naming its second row."""
    _, first_seen, cnt = np.unique(ids, return_index=True, return_counts=True)
    dup = np.flatnonzero(cnt > 1)
    if dup.size:
        second = int(np.flatnonzero(ids == ids[first_seen[dup[0]]])[1])
        raise CouponmixError(f"log: column {column!r}, {_row(int(rows[second]))}: id {ids[second]!r} is duplicated")

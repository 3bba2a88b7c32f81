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

    @property
    def n(self) -> int:
        return len(self.reward)

    @property
    def n_actions(self) -> int:
        return len(self.action_names)


def _row(index: int) -> str:
    return f"row {index + 1}"


def _read_batches(path: Path, columns: list[str], max_rows: int, seed: int):
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
    try:
        header = pd.read_csv(path, nrows=0).columns
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise CouponmixError(f"log {path}: cannot be read as CSV: {str(exc).splitlines()[0]}") from None
    missing = [c for c in columns if c not in header]
    if missing:
        raise CouponmixError(f"log {path}: column {missing[0]!r} is missing (columns: {', '.join(map(str, header[:20]))})")
    with open(path, "rb") as fh:
        total = max(sum(1 for _ in fh) - 1, 0)
    keep = min(1.0, max_rows / max(total, 1))
    start = 0
    try:
        for frame in pd.read_csv(path, usecols=columns, chunksize=BATCH_ROWS, dtype={c: object for c in columns}):
            rows = np.arange(start, start + len(frame))
            start += len(frame)
            if keep < 1:
                sel = rng.random(len(frame)) < keep
                frame, rows = frame[sel], rows[sel]
            yield frame.reset_index(drop=True), rows
    except (ValueError, UnicodeDecodeError) as exc:
        raise CouponmixError(f"log {path}: cannot be read as CSV: {str(exc).splitlines()[0]}") from None
    return total


def _numeric(values, name: str, rows: np.ndarray) -> np.ndarray:
    import pandas as pd

    out = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(out))
    if bad.size:
        raw = values[bad[0]] if not hasattr(values, "iloc") else values.iloc[bad[0]]
        empty = raw is None or str(raw).strip().lower() in ("", "nan", "none")
        what = "is empty (NaN)" if empty else f"is not a number ({str(raw)[:40]!r})"
        raise CouponmixError(f"log: column {name!r}, {_row(int(rows[bad[0]]))}: {what}")
    return out


def _labels(values, name: str, rows: np.ndarray) -> np.ndarray:
    import pandas as pd

    s = pd.Series(values)
    bad = np.flatnonzero(s.isna().to_numpy())
    if bad.size:
        raise CouponmixError(f"log: column {name!r}, {_row(int(rows[bad[0]]))}: is empty (NaN)")
    return s.astype(str).str.strip().to_numpy()


def _label_key(label: str):
    """Numeric labels sort as numbers (item 2 before item 10), others as text."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def read_log(path, mapping: ColumnMapping, seed: int = 0) -> RealLog:
    """Read and check the log at ``path`` (CSV, Parquet file or folder of Parquet parts) as ``mapping`` says."""
    path = Path(path)
    if not path.exists():
        raise CouponmixError(f"log {path} does not exist")
    cols = mapping.columns()
    parts: dict[str, list] = {c: [] for c in cols}
    row_parts = []
    gen = _read_batches(path, cols, mapping.max_rows, seed)
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
    rows = np.concatenate(row_parts)
    col = {c: np.concatenate(parts[c]) for c in cols}

    numeric = [_numeric(col[c], c, rows) for c in mapping.features]
    categories: dict[str, list[str]] = {}
    coded = []
    for c in mapping.categorical:
        labels = _labels(col[c], c, rows)
        categories[c] = sorted(set(labels.tolist()), key=_label_key)
        index = {v: i for i, v in enumerate(categories[c])}
        coded.append(np.fromiter((index[v] for v in labels), dtype=float, count=len(labels)))
    x = np.column_stack(numeric + coded) if numeric or coded else np.empty((len(rows), 0))

    labels = _labels(col[mapping.action], mapping.action, rows)
    action_names = sorted(set(labels.tolist()), key=_label_key)
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

    reward = _numeric(col[mapping.reward], mapping.reward, rows)
    if np.ptp(reward) == 0:
        raise CouponmixError(f"log: column {mapping.reward!r} is constant ({reward[0]:g}): there is nothing to learn")
    is01 = bool(np.isin(reward, (0.0, 1.0)).all())
    if mapping.reward_kind == "binary" and not is01:
        first_bad = int(np.flatnonzero(~np.isin(reward, (0.0, 1.0)))[0])
        raise CouponmixError(
            f"log: column {mapping.reward!r}, {_row(int(rows[first_bad]))}: a binary reward must be 0 or 1, got {reward[first_bad]:g}"
        )
    binary = is01 if mapping.reward_kind == "auto" else mapping.reward_kind == "binary"

    def probability(name: str | None) -> np.ndarray | None:
        if name is None:
            return None
        p = _numeric(col[name], name, rows)
        bad = np.flatnonzero(~((p > 0) & (p <= 1)))
        if bad.size:
            raise CouponmixError(f"log: column {name!r}, {_row(int(rows[bad[0]]))}: a propensity must lie in (0, 1], got {p[bad[0]]:g}")
        return p

    propensity = probability(mapping.propensity)
    balanced = probability(mapping.balanced_propensity)
    if balanced is not None and (propensity is None or mapping.component is None):
        raise CouponmixError("log: balanced_propensity belongs to a log with several loggers: map propensity and component too")
    component, component_names = None, []
    if mapping.component is not None:
        comp_labels = _labels(col[mapping.component], mapping.component, rows)
        component_names = sorted(set(comp_labels.tolist()), key=_label_key)
        c_index = {v: i for i, v in enumerate(component_names)}
        component = np.fromiter((c_index[v] for v in comp_labels), dtype=np.int64, count=len(comp_labels))
    if mapping.id is not None:
        ids = _labels(col[mapping.id], mapping.id, rows)
        _, first_seen, cnt = np.unique(ids, return_index=True, return_counts=True)
        dup = np.flatnonzero(cnt > 1)
        if dup.size:
            second = int(np.flatnonzero(ids == ids[first_seen[dup[0]]])[1])
            raise CouponmixError(f"log: column {mapping.id!r}, {_row(int(rows[second]))}: id {ids[second]!r} is duplicated")
    date_range = None
    if mapping.timestamp is not None:
        stamps = _labels(col[mapping.timestamp], mapping.timestamp, rows)
        date_range = (str(min(stamps)), str(max(stamps)))
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
    )

"""Chunked simulation of a logged population to Parquet, in bounded memory, on any backend.

Customers are drawn in blocks of ``seeding.BLOCK`` (65,536); block b always comes from the random
stream (seed, "log", b), exactly as ``logs.simulate_log`` draws them. A chunk is a run of whole
blocks, written to its own file ``part-NNNNNN.parquet``, so the rows (read back in file order) do not
depend on the chunk size, on the number of workers or on the backend. Memory is bounded by the chunk
size times the number of chunks in flight, whatever n is.

Each chunk also returns streaming sufficient statistics (counts and sums), which are added up
into ``_summary.json``: realised component and action shares, and the mean reward with its
standard error. Files are assembled in a hidden temporary folder and renamed into place at the end,
so DIR never holds a partial result. Files whose names start with ``_`` are ignored by Parquet
readers, so ``pandas.read_parquet(DIR)`` returns exactly the log.

Schema (one row per customer, in customer order):

    <covariates>  float64   the scenario's covariates, named as it names them
    component     int16     index of the logging component that acted (names in _summary.json)
    action        int16     index of the action taken (names in _summary.json)
    reward        float64   the observed reward
    pscore_avg    float64   balanced propensity p_alpha(a|x) = sum_k alpha_k pi_k(a|x) (obp's pscore_avg)
    pscore        float64   the acting component's own propensity pi_k(a|x) (obp's pscore, naive weights)
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from threadpoolctl import threadpool_limits

from couponmix.dataset.logs import simulate_block
from couponmix.dataset.scenario import Scenario
from couponmix.errors import CouponmixError
from couponmix.infra.atomic import check_output_dir, clean_stale_staging, current_umask, end_staging, mark, new_staging, rename_into_place
from couponmix.infra.backend import LocalBackend
from couponmix.infra.memory import tune_allocator
from couponmix.infra.records import OPTIONAL, Record
from couponmix.infra.seeding import BLOCK, stream
from couponmix.infra.validation import check_positive_int
from couponmix.policy.contextual import ContextualMixture, Grouping
from couponmix.policy.mixture import Mixture

__all__ = [
    "bytes_per_customer",
    "check_free_space",
    "DEFAULT_CHUNK",
    "ROW_GROUP_BLOCKS",
    "COLUMNS_AFTER_COVARIATES",
    "PARQUET_OPTIONS",
    "check_chunk_size",
    "ChunkJob",
    "ChunkStats",
    "LogStats",
    "LogRule",
    "LogSummary",
    "VARYING_ALPHA",
    "write_chunk",
    "part_name",
    "covariate_names",
    "reduce_stats",
    "simulate_to_parquet",
]

DEFAULT_CHUNK = 16 * BLOCK  # 1,048,576 customers per file
ROW_GROUP_BLOCKS = 4  # 262,144 customers (about 17 MB on paper) per Parquet row group
COLUMNS_AFTER_COVARIATES = ("component", "action", "reward", "pscore_avg", "pscore")
#: random doubles do not compress, and dictionary-encoding them costs more than the draws
PARQUET_OPTIONS = dict(compression="none", use_dictionary=["component", "action"])


def check_chunk_size(chunk_size: int) -> int:
    """``chunk_size`` as a positive int; a one-line error unless it is a multiple of ``BLOCK`` customers.

    Parameters
    ----------
    chunk_size : int
        Customers per file.

    Returns
    -------
    int

    Raises
    ------
    CouponmixError
        Not a positive integer, or not a multiple of ``BLOCK``.
    """
    chunk_size = check_positive_int(chunk_size, "chunk size")
    if chunk_size % BLOCK:
        raise CouponmixError(f"chunk size must be a multiple of {BLOCK:,} customers (one random-number block), got {chunk_size:,}")
    return chunk_size


@dataclass(frozen=True)
class ChunkJob:
    """Everything a worker needs to write one chunk (picklable: the mixture is rebuilt from alpha)."""

    scenario: Scenario
    alpha: tuple  #: (K,) the mixture weights (fractions summing to 1)
    n: int  #: customers in the whole log
    seed: int  #: seed of the customers' random streams
    chunk_size: int  #: customers per chunk (a multiple of ``BLOCK``)
    folder: str  #: the folder the part files are written to
    #: contextual exploration: the customer groups and each group's mixture (None: one mixture for all)
    grouping: Grouping | None = None
    group_alphas: tuple | None = None  #: (G, K) each group's mixture weights, as tuples

    def mixture(self) -> Mixture:
        """The logging mixture rebuilt from ``alpha`` (or, with a grouping, from each group's ``group_alphas``)."""
        components = self.scenario.components()
        if self.grouping is None:
            return Mixture(components, np.array(self.alpha))
        return ContextualMixture(components, self.scenario, self.grouping, np.array(self.group_alphas))


def _block_group_table(sc: Scenario, mixture: Mixture, seed: int, start: int, stop: int, names: list | None):
    """(Arrow table, component, action, reward) of customers [start, stop), whole blocks."""
    import pyarrow as pa

    parts = [simulate_block(sc, mixture, min(BLOCK, stop - s), stream(seed, "log", s // BLOCK)) for s in range(start, stop, BLOCK)]
    x = np.concatenate([p["context"] for p in parts])
    names = names or covariate_names(sc, x.shape[1])
    cols = {name: x[:, j] for j, name in enumerate(names)}
    comp = np.concatenate([p["stratum_idx"] for p in parts])
    action = np.concatenate([p["action"] for p in parts])
    reward = np.concatenate([p["reward"] for p in parts])
    cols.update(
        component=comp.astype(np.int16),
        action=action.astype(np.int16),
        reward=reward,
        pscore_avg=np.concatenate([p["pscore_avg"] for p in parts]),
        pscore=np.concatenate([p["pscore"] for p in parts]),
    )
    if "alpha" in parts[0]:  # contextual exploration: each customer's own mixture weights
        alpha = np.concatenate([p["alpha"] for p in parts])
        cols.update({f"alpha.{name}": alpha[:, k] for k, name in enumerate(mixture.names)})
    return pa.table(cols), comp, action, reward


@dataclass
class ChunkStats(Record):
    """A chunk's streaming sufficient statistics (``write_chunk``), added up by ``reduce_stats``."""

    rows: int  #: customers in the chunk
    reward_sum: float  #: sum of the rewards (reward's unit)
    reward_sq_sum: float  #: sum of the squared rewards (reward's unit squared)
    component_counts: list[int]  #: (K,) customers served by each logging component, in the mixture's order
    action_counts: list[int]  #: (A,) customers given each action, in the scenario's order


@dataclass
class LogStats(Record):
    """The whole log's statistics, the chunks' added up (``reduce_stats``; the shares and mean reward of
    ``_summary.json``)."""

    rows: int  #: customers in the log
    reward_mean: float  #: mean reward per customer (reward's unit)
    reward_mean_se: float  #: its standard error (reward's unit)
    component_counts: list[int]  #: (K,) customers served by each logging component, in the mixture's order
    action_counts: list[int]  #: (A,) customers given each action, in the scenario's order


def write_chunk(job: ChunkJob, index: int) -> ChunkStats:
    """Simulate chunk ``index`` and write it; returns its sufficient statistics.

    The chunk is written as row groups of ``ROW_GROUP_BLOCKS`` blocks by a writer thread while the next
    group is simulated (Arrow releases the GIL while it encodes and writes), so one worker keeps a
    second core busy with the output; at most two groups are in memory at once.

    Parameters
    ----------
    job : ChunkJob
    index : int
        The chunk: customers [index * chunk_size, min(n, (index + 1) * chunk_size)), written to
        ``part_name(index)`` in ``job.folder``.

    Returns
    -------
    ChunkStats
    """
    import pyarrow.parquet as pq

    if multiprocessing.parent_process() is not None:  # couponmix's own worker processes; the CLI tunes itself
        tune_allocator()
    sc = job.scenario
    k = len(job.alpha)
    mixture = job.mixture()
    start = index * job.chunk_size
    stop = min(job.n, start + job.chunk_size)
    rows, reward_sum, reward_sq_sum = 0, 0.0, 0.0
    component_counts, action_counts = np.zeros(k, dtype=np.int64), np.zeros(sc.n_actions, np.int64)
    writer, pending, names = None, None, None
    group = ROW_GROUP_BLOCKS * BLOCK
    # one BLAS thread: OpenBLAS's idle threads spin, and here they would take the writer's core (this halved
    # the CPU time of a 10M-customer run; results do not depend on BLAS's thread count)
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(1, thread_name_prefix="couponmix-parquet") as pool:
        try:
            for s in range(start, stop, group):
                table, comp, action, reward = _block_group_table(sc, mixture, job.seed, s, min(stop, s + group), names)
                names = table.column_names[: table.column_names.index("component")]
                rows += len(reward)
                reward_sum += float(reward.sum())
                reward_sq_sum += float(np.dot(reward, reward))
                component_counts += np.bincount(comp, minlength=k)
                action_counts += np.bincount(action, minlength=sc.n_actions)
                if pending is not None:
                    pending.result()  # the previous group is written (errors surface here)
                if writer is None:
                    writer = pq.ParquetWriter(os.path.join(job.folder, part_name(index)), table.schema, **PARQUET_OPTIONS)
                pending = pool.submit(writer.write_table, table, row_group_size=len(reward))
            if pending is not None:
                pending.result()
        finally:
            if pending is not None:
                pending.exception()  # never close the file under a write still in flight
            if writer is not None:
                writer.close()
    return ChunkStats(rows, reward_sum, reward_sq_sum, component_counts.tolist(), action_counts.tolist())


def part_name(index: int) -> str:
    """The file name of chunk ``index``: part-000000.parquet, part-000001.parquet, ...

    Parameters
    ----------
    index : int
        The chunk, from 0.

    Returns
    -------
    str
    """
    return f"part-{index:06d}.parquet"


def covariate_names(scenario: Scenario, d: int) -> list[str]:
    """The column names of the d covariates: the scenario's, or x1..xd when it names a different number.

    Parameters
    ----------
    scenario : Scenario
    d : int
        Covariates per customer.

    Returns
    -------
    list of str, (d,)
    """
    names = list(scenario.covariate_names)
    return names if len(names) == d else [f"x{j + 1}" for j in range(d)]


def reduce_stats(parts: list[ChunkStats]) -> LogStats:
    """Add up the chunks' sufficient statistics (order does not matter up to float rounding; they are
    added in chunk order).

    Parameters
    ----------
    parts : list of ChunkStats
        At least one, with customers.

    Returns
    -------
    LogStats
        The mean reward's standard error uses the sample variance (n - 1).
    """
    n = sum(p.rows for p in parts)
    s1 = sum(p.reward_sum for p in parts)
    s2 = sum(p.reward_sq_sum for p in parts)
    comp = np.sum([p.component_counts for p in parts], axis=0)
    act = np.sum([p.action_counts for p in parts], axis=0)
    mean = s1 / n
    var = max(s2 / n - mean * mean, 0.0) * n / max(n - 1, 1)
    return LogStats(
        rows=n, reward_mean=mean, reward_mean_se=float(np.sqrt(var / n)), component_counts=comp.tolist(), action_counts=act.tolist()
    )


def bytes_per_customer(n_covariates: int, n_alpha: int = 0) -> int:
    """Bytes one customer takes in the Parquet files (uncompressed doubles: the covariates, reward, both
    propensities and, for contextual exploration, the ``n_alpha`` mixture weights; one byte each for the
    dictionary-encoded component and action, plus page overhead).

    Parameters
    ----------
    n_covariates : int
        d.
    n_alpha : int
        Mixture-weight columns (K under contextual exploration, else 0).

    Returns
    -------
    int
        Bytes per customer.
    """
    return 8 * (n_covariates + 3 + n_alpha) + 4


def check_free_space(folder, n: int, n_covariates: int, n_alpha: int = 0) -> None:
    """Refuse, before writing anything, a log that cannot fit in the free space of ``folder``'s disk.

    Parameters
    ----------
    folder : str or path
        An existing folder on the disk to write to.
    n : int
        Customers.
    n_covariates, n_alpha : int
        As for ``bytes_per_customer``.

    Raises
    ------
    CouponmixError
        The log needs more than the free space (with 2% and 16 MiB to spare).
    """
    need = n * bytes_per_customer(n_covariates, n_alpha) * 1.02 + 16 * 2**20
    free = shutil.disk_usage(folder).free
    if need > free:
        raise CouponmixError(
            f"simulate: {n:,} customers need about {need / 2**30:,.1f} GiB but {folder} has "
            f"{free / 2**30:,.1f} GiB free; write fewer customers (--n) or elsewhere (--out)"
        )


@dataclass(kw_only=True)
class LogRule(Record):
    """The contextual rule a log was drawn under (``_summary.json``'s ``contextual`` block)."""

    rule: str  #: the rule in words (``decide.contextual.rule_in_words``)
    groups: list[str]  #: (G,) the customer groups' labels, in the grouping's order
    group_alphas: list[dict[str, float]]  #: (G,) each group's mixture weights by component name (fractions summing to 1)


#: ``_summary.json``'s ``alpha`` when each customer's weights are in the ``alpha.<component>`` columns
VARYING_ALPHA = "varies by customer (columns alpha.<component>); the share of each component is below"


@dataclass(kw_only=True)
class LogSummary(Record):
    """A written log (``simulate_to_parquet``): what was drawn, where, and the realised shares and mean reward;
    ``to_dict`` is exactly the document ``_summary.json`` holds."""

    scenario: str  #: the scenario's name
    n: int  #: customers written (a count)
    seed: int  #: seed of the customers' draws
    chunk_size: int  #: customers per Parquet file (a count)
    files: list[str]  #: the Parquet parts' file names, in customer order
    backend: str  #: where the chunks were written (``Backend.name``)
    #: mixture weights by component name (fractions summing to 1), or ``VARYING_ALPHA`` under a contextual rule
    alpha: dict[str, float] | str
    components: list[str]  #: (K,) the logging components' names (the ``component`` column indexes them)
    actions: list[str]  #: (A,) the actions' names (the ``action`` column indexes them)
    columns: list[str]  #: the Parquet files' columns, in order
    component_share: dict[str, float]  #: realised share of customers served by each component (fractions)
    action_share: dict[str, float]  #: realised share of customers given each action (fractions)
    reward_mean: float  #: mean reward per customer (reward's unit)
    reward_mean_se: float  #: its standard error (reward's unit)
    #: the contextual rule the log was drawn under (None, and left out of the JSON, for one mixture)
    contextual: LogRule | None = field(default=None, metadata=OPTIONAL)


def _log_summary(
    scenario: Scenario, mixture: Mixture, n: int, seed: int, chunk_size: int, chunks, backend: str, total: LogStats, x_names
) -> LogSummary:
    """``_summary.json`` of a written log under one mixture: what was drawn, where, and the realised shares and mean reward."""
    return LogSummary(
        scenario=scenario.name,
        n=n,
        seed=seed,
        chunk_size=chunk_size,
        files=[part_name(i) for i in chunks],
        backend=backend,
        alpha=mixture.weights,
        components=list(mixture.names),
        actions=list(scenario.action_names),
        columns=list(x_names) + list(COLUMNS_AFTER_COVARIATES),
        component_share=dict(zip(mixture.names, (np.array(total.component_counts) / n).tolist())),
        action_share=dict(zip(scenario.action_names, (np.array(total.action_counts) / n).tolist())),
        reward_mean=total.reward_mean,
        reward_mean_se=total.reward_mean_se,
    )


def simulate_to_parquet(
    scenario: Scenario,
    alpha,
    n: int,
    out,
    seed: int = 0,
    chunk_size: int = DEFAULT_CHUNK,
    backend=None,
    on_chunk=None,
    contextual: tuple | None = None,
) -> LogSummary:
    """Write the log of ``n`` customers under the mixture ``alpha`` to ``out`` (a new or empty folder) as Parquet, and its summary's
    ``to_dict()`` to ``out/_summary.json``. ``contextual`` = (grouping, group_alphas (G, K), rule in words) logs each group under its
    own mixture instead (``alpha`` is then ignored), and every row carries its customer's weights as ``alpha.<component>`` columns.
    A one-line ``CouponmixError`` for a bad n, chunk size, mixture or folder, or too little free space.

    Parameters
    ----------
    alpha : array_like, (K,)
        Mixture weights (fractions summing to 1).
    chunk_size : int
        Customers per file (a multiple of ``BLOCK``); ``backend`` writes them (default: this process), ``on_chunk`` hears how many.

    Returns
    -------
    LogSummary
    """
    n = check_positive_int(n, "n")
    chunk_size = check_chunk_size(chunk_size)
    if contextual is not None:
        grouping, group_alphas, rule = contextual
        mixture: Mixture = ContextualMixture(scenario.components(), scenario, grouping, np.asarray(group_alphas, float))
    else:
        grouping, group_alphas, rule = None, None, None
        mixture = Mixture(scenario.components(), alpha)
    out = check_output_dir(out)
    if out.exists() and any(out.iterdir()):
        raise CouponmixError(f"output directory {out} is not empty; simulate writes a new folder")
    backend = backend or LocalBackend(1)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_staging(out)
    d = scenario.sample_covariates(1, np.random.default_rng(0)).shape[1]  # a scenario may not name them
    check_free_space(out.parent, n, d, len(mixture.names) if grouping is not None else 0)
    staging = new_staging(out)
    try:
        mark(staging, staging=True)
        os.chmod(staging, 0o777 & ~current_umask())
        job = ChunkJob(
            scenario,
            tuple(mixture.alpha.tolist()),
            n,
            int(seed),
            chunk_size,
            str(staging),
            grouping,
            None if group_alphas is None else tuple(map(tuple, np.asarray(group_alphas, float).tolist())),
        )
        chunks = range(-(-n // chunk_size))
        stats = backend.map(partial(write_chunk, job), chunks, on_done=on_chunk)
        total = reduce_stats(stats)
        summary = _log_summary(scenario, mixture, n, int(seed), chunk_size, chunks, backend.name, total, covariate_names(scenario, d))
        if grouping is not None:
            summary.alpha = VARYING_ALPHA
            summary.columns += [f"alpha.{name}" for name in mixture.names]
            summary.contextual = LogRule(
                rule=rule,
                groups=grouping.labels,
                group_alphas=[dict(zip(mixture.names, map(float, row))) for row in np.asarray(group_alphas, float)],
            )
        (staging / "_summary.json").write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
        mark(staging)
        if out.exists():
            out.rmdir()  # empty, checked above
        rename_into_place(staging, out)
        end_staging(staging, remove=False)
    except BaseException:
        end_staging(staging, remove=True)
        raise
    return summary

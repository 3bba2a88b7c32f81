"""The exact objectives on an evaluation population of any size, from streaming sufficient statistics.

``MixtureObjectives`` keeps its evaluation sample in memory (M = 100,000 customers by default, ample
for a smooth front). ``StreamingObjectives`` evaluates a batch of mixtures on a population of
M = 10 million customers or more in bounded memory: the population is drawn in blocks of
``seeding.BLOCK`` customers (block b from the stream (seed, "evaluation_population", b)), a chunk of
whole blocks is turned into its moment sums for the whole batch (``objectives.Moments``), and the
chunks' sums are combined by their customer-weighted average. The population, and so the result up
to floating-point rounding, does not depend on the chunk size or on the backend: chunks can run on
local processes or on a Dask cluster (``backend``), and only the (targets x moments x mixtures) sums
travel back.

**Contextual mixtures.** With a ``grouping`` (``couponmix.policy.contextual.Grouping``), customers of group
g are logged with their group's own mixture: a batch is (B, G, K). Each chunk's customers are split by
group, each part's moments are taken at its group's mixtures, and the parts are combined by their share
of the chunk, so the population's moments are exact, as for one mixture for everyone (tested against
``ContextualCriterion`` on the same customers).

Evaluate many mixtures per pass: drawing a chunk and computing its policies is shared by every
mixture of the batch. Repeated passes (an optimiser's generations) are cheaper still when the
chunks' merged rows (``objectives.RowTerms``, what the moments are sums over) fit in ``cache_bytes``:
the first pass keeps them, and later passes only do the (rows x mixtures) arithmetic, in this process's
threads, with results identical to the uncached passes. A population too large for the budget is
streamed on every pass, in memory bounded by one chunk per worker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from couponmix.dataset.scenario import Scenario
from couponmix.dataset.simulate import check_chunk_size
from couponmix.errors import CouponmixError
from couponmix.infra.backend import LocalBackend
from couponmix.infra.seeding import BLOCK, stream
from couponmix.infra.threads import default_threads
from couponmix.infra.validation import check_positive_int
from couponmix.ope.estimators import EstimatorSpec
from couponmix.ope.objectives import (
    CellErrors,
    ErrorLaw,
    EvaluationSample,
    MixtureObjectives,
    Moments,
    check_aggregate,
    combine_targets,
    group_moments,
    laws_from_moments,
    model_error_measure,
    shared_executor,
)
from couponmix.policy.contextual import Grouping

__all__ = ["DEFAULT_CHUNK", "DEFAULT_CACHE_BYTES", "population_chunk", "StreamingObjectives"]

DEFAULT_CHUNK = 4 * BLOCK
#: memory for keeping the population's merged rows between passes (about 130 bytes per customer on paper)
DEFAULT_CACHE_BYTES = 1 << 30


def population_chunk(scenario: Scenario, seed: int, size: int, chunk_size: int, index: int) -> np.ndarray:
    """Covariates of chunk ``index`` of the evaluation population (whole blocks, each from its own stream).

    Parameters
    ----------
    scenario : Scenario
    seed : int
        Seed of the population (streams ``(seed, "evaluation_population", block)``).
    size : int
        Customers in the population.
    chunk_size : int
        Customers per chunk, a multiple of ``BLOCK``.
    index : int
        The chunk: customers [index * chunk_size, min(size, (index + 1) * chunk_size)).

    Returns
    -------
    ndarray, (m, d)
        The chunk's m customers' covariates.
    """
    start = index * chunk_size
    stop = min(size, start + chunk_size)
    return np.concatenate(
        [
            scenario.sample_covariates(min(BLOCK, stop - s), stream(seed, "evaluation_population", s // BLOCK))
            for s in range(start, stop, BLOCK)
        ]
    )


@dataclass(frozen=True)
class _Job:
    scenario: Scenario
    estimators: tuple[EstimatorSpec, ...]  # one per moment pass (see ``criterion.moment_passes``)
    seed: int
    size: int
    chunk_size: int
    alphas: np.ndarray  # (B, G, K): group g's mixtures (G = 1 without a grouping)
    q_mean: np.ndarray | None  # per-action mean reward over the population, when q is that crude model
    grouping: Grouping | None = None
    #: the reward model's error as a reference sample measured it (``objectives.model_error_measure``): the same
    #: bound in every chunk, so that the robust error does not depend on the chunk size; None: each chunk's own
    model_error: CellErrors | np.ndarray | None = None


#: one chunk's parts, all later passes need of it: (customers, [(group, its customers, row sets by whether the
#: estimator uses the reward model, component values)])
ChunkRows = tuple[int, list]


def _chunk_rows(job: _Job, index: int) -> ChunkRows:
    """The row sets and component values of one chunk, per customer group (one part without a grouping)."""
    x = population_chunk(job.scenario, job.seed, job.size, job.chunk_size, index)
    q = None
    if job.q_mean is not None:
        q = np.broadcast_to(job.q_mean, (len(x), len(job.q_mean))).copy()
    sample = EvaluationSample.from_covariates(job.scenario, x, q=q, q_source="per-action average reward", model_error=job.model_error)
    by_use = {e.uses_reward_model: e for e in job.estimators}  # row sets depend only on this

    def rows(sub: EvaluationSample) -> tuple[dict, np.ndarray]:
        """The row sets of ``sub`` by whether the estimator uses the reward model, and its component values (K,)."""
        objs = {use: MixtureObjectives(sub, e, 1) for use, e in by_use.items()}
        return {use: obj.groups for use, obj in objs.items()}, next(iter(objs.values())).component_values

    if job.grouping is None:
        sets, values = rows(sample)
        return sample.size, [(0, sample.size, sets, values)]
    group = job.grouping.group_of(job.scenario, x)
    parts = []
    for g in range(job.grouping.size):
        idx = np.flatnonzero(group == g)
        if idx.size:
            sets, values = rows(sample.subset(idx))
            parts.append((g, idx.size, sets, values))
    return sample.size, parts


def _rows_moments(part: ChunkRows, alphas: np.ndarray, n_targets: int, estimators: tuple[EstimatorSpec, ...], executor) -> tuple:
    """(customers, moments for the batch per estimator pass, component values per group weighted by the
    group's share of the chunk (G, K), the groups' shares of the chunk (G,)) of one chunk's parts: each part
    at its own group's mixtures, combined by share."""
    m, groups = part
    values = np.zeros(alphas.shape[1:])
    shares = np.zeros(alphas.shape[1])
    found, weights = [], []
    for g, count, sets, v in groups:
        found.append([group_moments(sets[e.uses_reward_model], n_targets, alphas[:, g], e, executor=executor) for e in estimators])
        weights.append(count / m)
        values[g] = (count / m) * v
        shares[g] = count / m
    if len(found) == 1:  # one group for everyone: the chunk's moments as they are
        return m, found[0], values, shares
    return m, [Moments.combine([f[p] for f in found], weights) for p in range(len(estimators))], values, shares


def _chunk_moments(job: _Job, index: int) -> tuple:
    """What ``_rows_moments`` gives for one chunk."""
    threads = min(default_threads(), 4)  # this process's share of the cores
    executor = shared_executor(threads) if threads > 1 else None
    return _rows_moments(_chunk_rows(job, index), job.alphas, len(job.scenario.targets()), job.estimators, executor)


def _rows_nbytes(part: ChunkRows) -> int:
    return sum(rows.nbytes for _, _, sets, _ in part[1] for row_sets in sets.values() for _, rows in row_sets)


def _mean_mu(scenario: Scenario, seed: int, size: int, chunk_size: int, index: int) -> tuple[int, np.ndarray]:
    x = population_chunk(scenario, seed, size, chunk_size, index)
    return len(x), scenario.mu(x).sum(axis=0)


class StreamingObjectives:
    """Revenue and error laws of a batch of mixtures on a population of ``size`` customers, chunk by chunk.

    Same results as ``MixtureObjectives`` on the same customers (tested), in memory bounded by one chunk
    per worker plus the batch's sums. With a ``grouping``, a batch is (B, G, K), one mixture per group of
    customers (a contextual mixture), with the same results as ``ContextualCriterion`` on the same customers.

    Parameters
    ----------
    scenario : Scenario
    estimator : EstimatorSpec or sequence of EstimatorSpec
        One estimator, or one per moment pass (``criterion.moment_passes``: the moment source of a
        ``Criterion`` over a streamed population). ``laws`` and ``evaluate`` use the first.
    n : int
        Customers in the log the errors are for.
    size : int
        Customers in the population.
    seed : int
        Seed of the population (streams ``(seed, "evaluation_population", block)``).
    chunk_size : int
        Customers per chunk (whole blocks).
    backend : Backend, optional
        Where chunks are computed (default: this process).
    aggregate : "max" or "mean"
    cache_bytes : int
        Memory for keeping the chunks' row sets between passes.
    grouping : Grouping, optional
        Customer groups, each logged with its own mixture.
    model_error_from : EvaluationSample, optional
        The sample on which the reward model's error is measured (``run``'s evaluation sample), then applied
        to every chunk's customers by propensity cell: the robust error's model bound is then run's, and the
        result does not depend on the chunk size. Default: each chunk measures it on its own customers.

    Raises
    ------
    CouponmixError
        No estimator, a bad aggregate, n, size (< 100), chunk size or cache budget.
    """

    def __init__(
        self,
        scenario: Scenario,
        estimator: EstimatorSpec | Sequence[EstimatorSpec],
        n: int,
        size: int,
        seed: int = 0,
        chunk_size: int = DEFAULT_CHUNK,
        backend=None,
        aggregate: str = "max",
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        grouping: Grouping | None = None,
        model_error_from: EvaluationSample | None = None,
    ):
        self.estimators = (estimator,) if isinstance(estimator, EstimatorSpec) else tuple(estimator)
        if not self.estimators:
            raise CouponmixError("the streamed objectives need at least one estimator")
        self.estimator = self.estimators[0]
        self.scenario, self.aggregate = scenario, check_aggregate(aggregate)
        self.n = check_positive_int(n, "n")
        self.size = check_positive_int(size, "population size", minimum=100)
        self.seed = int(seed)
        self.chunk_size = check_chunk_size(chunk_size)
        self.backend = backend or LocalBackend(1)
        self.cache_bytes = check_positive_int(cache_bytes, "cache bytes", minimum=0)
        self.grouping = grouping
        #: each customer group's share of the population (G,), known after the first pass
        self.group_shares: np.ndarray | None = None
        #: the population's target values (T,), known after the first pass
        self.target_values: np.ndarray | None = None
        self._rows: list | None = None  # per chunk its parts (``ChunkRows``), once cached
        self._cache_decided = False
        self.chunks = range(-(-self.size // self.chunk_size))
        self.target_names = tuple(scenario.targets())
        self.component_names = tuple(scenario.components())
        self._q_mean = None
        self._model_error = None if model_error_from is None else model_error_measure(scenario, model_error_from)
        if scenario.reward_model(population_chunk(scenario, seed, 100, BLOCK, 0)[:1]) is None:
            # the crude reward model is the per-action average over the whole population: one extra pass
            parts = self.backend.map(partial(_mean_mu, scenario, self.seed, self.size, self.chunk_size), self.chunks)
            self._q_mean = np.sum([p[1] for p in parts], axis=0) / self.size

    @property
    def cached(self) -> bool:
        """True once the population's row sets are held in memory (after the first pass, within budget)."""
        return self._rows is not None

    def _job(self, alphas: np.ndarray) -> _Job:
        return _Job(
            self.scenario, self.estimators, self.seed, self.size, self.chunk_size, alphas, self._q_mean, self.grouping, self._model_error
        )

    def _batch(self, alphas) -> np.ndarray:
        """(B, G, K) from a batch of mixtures: (B, K) or (K,) without a grouping, (B, G, K) or (G, K) with one."""
        k = len(self.component_names)
        a = np.asarray(alphas, dtype=float)
        if self.grouping is None:
            a = np.atleast_2d(a)
            if a.ndim != 2 or a.shape[1] != k:
                raise CouponmixError(f"need mixtures of {k} weights")
            return a[:, None, :]
        a = a[None] if a.ndim == 2 else a
        if a.ndim != 3 or a.shape[1:] != (self.grouping.size, k):
            raise CouponmixError(f"need one mixture per group: shape (B, {self.grouping.size}, {k})")
        return a

    def _try_cache(self, on_chunk: Callable[[int], None] | None) -> tuple | None:
        """Keep every chunk's row sets if chunk 0's size, times the number of chunks, fits the budget.
        Returns chunk 0's row sets when they were built but not kept (the pass still uses them)."""
        self._cache_decided = True
        if self.cache_bytes == 0:
            return None
        job = self._job(np.zeros((0, 1 if self.grouping is None else self.grouping.size, len(self.component_names))))
        first = _chunk_rows(job, 0)
        if _rows_nbytes(first) * len(self.chunks) > self.cache_bytes:
            return first
        self._rows = [first] + self.backend.map(
            partial(_chunk_rows, job), self.chunks[1:], on_done=None if on_chunk is None else lambda i: on_chunk(i + 1)
        )
        return None

    def _moments_from_rows(self, parts: list, alphas: np.ndarray) -> list:
        """(customers, moments per pass, component values, group shares) of chunks whose row sets are in this
        process."""
        threads = default_threads()
        executor = shared_executor(threads) if threads > 1 else None
        return [_rows_moments(part, alphas, len(self.target_names), self.estimators, executor) for part in parts]

    def pass_moments(self, alphas, on_chunk: Callable[[int], None] | None = None) -> tuple[list[Moments], np.ndarray]:
        """Population moments for the batch, one per estimator pass, and the components' values: (K,) without a
        grouping; with one, (G, K), each group's values times its share of the population (revenue = sum over
        g of alpha_g . values_g). ``on_chunk(i)`` is called as chunks are done (for progress bars).

        Parameters
        ----------
        alphas : array_like, (B, K) or (K,); with a grouping (B, G, K) or (G, K)
            Mixtures, one per row (per group with a grouping).
        on_chunk : callable, optional
            Called with the number of chunks done (for progress bars).

        Returns
        -------
        moments : list of Moments
            One per estimator pass, each over the batch (B,).
        values : ndarray, (K,) or (G, K)
            Reward per customer of each component (reward's unit), by group and weighted by its share with a grouping.

        Raises
        ------
        CouponmixError
            Mixtures of another shape.
        """
        alphas = self._batch(alphas)
        first = None if self._cache_decided else self._try_cache(on_chunk)
        if self._rows is not None:
            parts = self._moments_from_rows(self._rows, alphas)
        elif first is not None:  # too large to keep: chunk 0 is already built, stream the others
            parts = self._moments_from_rows([first], alphas) + self.backend.map(
                partial(_chunk_moments, self._job(alphas)), self.chunks[1:], on_done=None if on_chunk is None else lambda i: on_chunk(i + 1)
            )
        else:
            parts = self.backend.map(partial(_chunk_moments, self._job(alphas)), self.chunks, on_done=on_chunk)
        weights = [p[0] / self.size for p in parts]
        values = sum(w * p[2] for w, p in zip(weights, parts))
        self.group_shares = sum(w * p[3] for w, p in zip(weights, parts))
        found = [Moments.combine([p[1][e] for p in parts], weights) for e in range(len(self.estimators))]
        self.target_values = found[0].values
        return found, (values[0] if self.grouping is None else values)

    def moments(self, alphas, on_chunk: Callable[[int], None] | None = None) -> tuple[Moments, np.ndarray]:
        """The first estimator's population moments for the batch, and the components' values (see
        ``pass_moments``).

        Parameters
        ----------
        alphas, on_chunk
            As for ``pass_moments``.

        Returns
        -------
        moments : Moments
            Over the batch (B,).
        values : ndarray, (K,) or (G, K)
            As ``pass_moments``.
        """
        found, values = self.pass_moments(alphas, on_chunk)
        return found[0], values

    def revenue_of(self, alphas, values: np.ndarray) -> np.ndarray:
        """Revenue of a batch from the ``values`` ``moments`` returned.

        Parameters
        ----------
        alphas : array_like, (B, K) or (K,); with a grouping (B, G, K) or (G, K)
            Mixtures, one per row (per group with a grouping).
        values : ndarray, (K,) or (G, K)
            From ``moments`` or ``pass_moments``.

        Returns
        -------
        ndarray, (B,)
            Expected reward per customer under each mixture (reward's unit).

        Raises
        ------
        CouponmixError
            Mixtures of another shape.
        """
        a = self._batch(alphas)
        return np.einsum("bgk,gk->b", a, values if self.grouping is not None else values[None, :])

    def laws(self, alphas) -> list[ErrorLaw]:
        """One ``ErrorLaw`` per target for the first estimator, over the batch (one pass over the population).

        Parameters
        ----------
        alphas : array_like, (B, K) or (K,); with a grouping (B, G, K) or (G, K)
            Mixtures, one per row (per group with a grouping).

        Returns
        -------
        list of ErrorLaw, (T,)
            Each over the batch (B,).

        Raises
        ------
        CouponmixError
            Mixtures of another shape.
        """
        return laws_from_moments(self.moments(alphas)[0], self.estimator)

    def evaluate(self, alphas) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Both objectives of a batch of mixtures, in one pass over the population.

        Parameters
        ----------
        alphas : array_like, (B, K) or (K,); with a grouping (B, G, K) or (G, K)
            Mixtures, one per row (per group with a grouping).

        Returns
        -------
        revenue : ndarray, (B,)
            Expected reward per customer (reward's unit).
        error : ndarray, (B,)
            The per-target RMSEs aggregated (``combine``), reward's unit per customer.
        per_target : ndarray, (B, T)
            RMSE of each target at log size n, reward's unit per customer.

        Raises
        ------
        CouponmixError
            Mixtures of another shape.
        """
        m, values = self.moments(alphas)
        per = np.column_stack([law.rmse(self.n) for law in laws_from_moments(m, self.estimator)])
        return self.revenue_of(alphas, values), self.combine(per), per

    def combine(self, per_target: np.ndarray) -> np.ndarray:
        """The single error objective from per-target errors, by ``aggregate`` (max or mean).

        Parameters
        ----------
        per_target : ndarray, (B, T)
            Errors in the reward's unit per customer.

        Returns
        -------
        ndarray, (B,)
        """
        return combine_targets(per_target, self.aggregate)

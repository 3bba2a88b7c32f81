"""The two objectives of method.md section 3, exact and vectorized over a batch of mixtures.

Revenue f_r(alpha) = sum_k alpha_k V(pi_k), with V(pi) = E_x[sum_a pi(a|x) mu(x,a)].

Evaluation error: the MSE at log size n of a balanced-weight OPE estimator of
V(pi_e), for each target pi_e. With p = p_alpha(a|x) and c = min(pi_e/p, lambda):

    clipped IPS (IPS is lambda = inf):
        mean   = E_x[sum_a p c mu]          = E_x[sum_{a: p>0} min(pi_e, lambda p) mu]
        second = E_x[sum_a p c^2 m2]        = E_x[sum_{a: p>0} min(pi_e^2 / p, lambda^2 p) m2]
        MSE_n  = (mean - V)^2 + (second - mean^2) / n
    SNIPS (delta method, with its O(1/n) bias):
        W = E[w] = E_x[sum_{a: p>0} pi_e]  (1 when pi_e is supported), R = mean_IPS / W,
        Var_n  = E_x[sum_{a: p>0} pi_e^2/p (m2 - 2 R mu + R^2)] / (n W^2),
        bias_n = (R - V) + (R E[w^2] - E[w^2 r]) / (n W^2).

Actions with p = 0 contribute nothing (the estimator never sees them); their
mass shows up as bias. The expectations over x are taken on a fixed covariate
sample (the *evaluation sample*, size M, independent of n), so both objectives
are deterministic, smooth functions of alpha: the front is not noise. n only
enters through the 1/n above, so one computation gives the RMSE at every n.

Speed: rows (x, a) with identical component propensities and target
probability are merged exactly (their mu and m2 summed) when enough of them repeat, and a batch of B
mixtures is one (rows x K) @ (K x B) product followed by fused elementwise work
over row chunks, so memory stays bounded by chunk_rows x B.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import brentq

from couponmix.dataset.scenario import Scenario
from couponmix.dataset.types import ObservedRows
from couponmix.errors import CouponmixError
from couponmix.infra import memory
from couponmix.infra.records import OPTIONAL, Record
from couponmix.infra.seeding import stream
from couponmix.infra.threads import default_threads
from couponmix.infra.validation import check_positive_int
from couponmix.ope import fused
from couponmix.ope.estimators import ChunkTerms, EstimatorSpec
from couponmix.policy.policies import Policy

__all__ = [
    "AGGREGATES",
    "LawSummary",
    "CHUNK_ELEMENTS",
    "SUPPORT_TOL",
    "SMALL_GROUP_SHARE",
    "DEFAULT_EVAL_SIZE",
    "MERGE_MIN_GAIN",
    "shared_executor",
    "reward_model_on",
    "model_error_of",
    "CELL_EDGES",
    "propensity_cells",
    "local_model_error",
    "ObservedRows",
    "EvaluationSample",
    "row_hash",
    "merge_rows",
    "RowTerms",
    "ErrorLaw",
    "Moments",
    "moments",
    "group_moments",
    "laws_from_moments",
    "error_laws",
    "check_aggregate",
    "combine_targets",
    "BatchObjectives",
    "SampleObjectives",
    "MixtureObjectives",
]

AGGREGATES = ("max", "mean")
#: elements (rows x mixtures) per chunk when chunk_rows is not given: temporaries stay cache-sized
CHUNK_ELEMENTS = 1 << 17
#: a target counts as supported when the mixture plays all but this much of its probability
SUPPORT_TOL = 1e-9
#: a target gets its own row set when its merged rows are fewer than this share of the sample
SMALL_GROUP_SHARE = 0.05
DEFAULT_EVAL_SIZE = 100_000
#: rows are merged only when that removes at least this share of them (else the sort costs more than it saves)
MERGE_MIN_GAIN = 0.2


_EXECUTORS: dict[int, ThreadPoolExecutor] = {}


def shared_executor(threads: int) -> ThreadPoolExecutor:
    """One thread pool per size for the whole process (objectives are created often; pools are not).

    Parameters
    ----------
    threads : int
        The pool's threads.

    Returns
    -------
    ThreadPoolExecutor
        Shared: never shut it down.
    """
    if threads not in _EXECUTORS:
        _EXECUTORS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="couponmix")
    return _EXECUTORS[threads]


def reward_model_on(scenario: Scenario, x: np.ndarray, mu: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """The reward model q(x, .) that DR-type estimators use, fixed before any evaluation log is drawn.

    The scenario's own learned model where it has one; otherwise the per-action average reward (a crude
    model, computed on the evaluation sample's truth; in practice it would come from past data).

    Parameters
    ----------
    scenario : Scenario
    x : ndarray, (M, d)
        The customers' covariates.
    mu : ndarray, (M, A), optional
        E[r | x, a] on them, when already computed (reward's unit).

    Returns
    -------
    q : ndarray, (M, A)
        The model's predicted reward per customer and action (reward's unit).
    source : str
        Where the model comes from, in words.
    """
    q = scenario.reward_model(x)
    if q is not None:
        return np.asarray(q, float), "the scenario's revenue model"
    mu = scenario.mu(x) if mu is None else mu
    return np.broadcast_to(mu.mean(axis=0), mu.shape).copy(), "per-action average reward"


#: edges of the propensity cells within which the reward model's error is averaged (``local_model_error``):
#: fine near 0 and 1, where weights are large and switched or clipped estimators lean on the model
CELL_EDGES = np.array(
    [1e-9, 1e-3, 3e-3, 0.01, 0.02, 0.04, 0.07, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5]
    + [0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.96, 0.98, 0.99, 0.997, 0.999, 1 - 1e-9]
)


def cell_codes(comp_probs: np.ndarray, target_probs: np.ndarray) -> np.ndarray:
    """(M * A, K + T + 1) each (customer, action)'s cell code: the bins of every component's and target's
    probability of the action, and the action (see ``propensity_cells``).

    Parameters
    ----------
    comp_probs : ndarray, (K, M, A)
        The components' probabilities.
    target_probs : ndarray, (T, M, A)
        The targets' probabilities.

    Returns
    -------
    ndarray, (M * A, K + T + 1)
        Bin indices and the action, as floats; rows in customer-major order.
    """
    k, m, a = comp_probs.shape
    probs = np.concatenate([comp_probs, target_probs]).transpose(1, 2, 0)  # (M, A, K + T)
    codes = np.searchsorted(CELL_EDGES, probs, side="right").astype(float)
    codes = np.concatenate([codes, np.broadcast_to(np.arange(a, dtype=float)[None, :, None], (m, a, 1))], axis=2)
    return codes.reshape(m * a, -1)


@dataclass(frozen=True)
class CellErrors:
    """The reward model's mean squared error per propensity cell, measured on one sample and applied to other
    customers (a population streamed in chunks): so that the robust error's model bound is the one ``run``
    measured, whatever the chunks.
    """

    codes: np.ndarray  #: (U, K + T + 1) the distinct cells seen in the sample (``cell_codes``)
    mean_sq: np.ndarray  #: (U,) the model's mean squared error in each (reward's unit squared)
    per_action: np.ndarray  #: (A,) its mean squared error per action, for cells the sample never saw

    @classmethod
    def measure(cls, comp_probs: np.ndarray, target_probs: np.ndarray, sq_error: np.ndarray) -> CellErrors:
        """From a sample's probabilities (K, M, A), (T, M, A) and the model's squared error (M, A).

        Parameters
        ----------
        comp_probs : ndarray, (K, M, A)
            The components' probabilities on the sample.
        target_probs : ndarray, (T, M, A)
            The targets' probabilities on it.
        sq_error : ndarray, (M, A)
            The model's squared error per customer and action (reward's unit squared).

        Returns
        -------
        CellErrors
        """
        distinct, inverse = merge_rows(cell_codes(comp_probs, target_probs))
        assert inverse is not None
        e2 = np.asarray(sq_error, float).reshape(-1)
        mean = np.bincount(inverse, weights=e2, minlength=len(distinct)) / np.bincount(inverse, minlength=len(distinct))
        return cls(distinct, mean, np.asarray(sq_error, float).mean(axis=0))

    def apply(self, comp_probs: np.ndarray, target_probs: np.ndarray) -> np.ndarray:
        """(M, A) the root-mean-square error of each (customer, action)'s cell, for other customers.

        Parameters
        ----------
        comp_probs : ndarray, (K, M, A)
            The components' probabilities on the other customers (the same components as measured).
        target_probs : ndarray, (T, M, A)
            The targets' probabilities on them.

        Returns
        -------
        ndarray, (M, A)
            Reward's unit; a cell the sample never saw gets its action's error.
        """
        _, m, a = comp_probs.shape
        codes = cell_codes(comp_probs, target_probs)
        u = len(self.codes)
        distinct, inverse = merge_rows(np.concatenate([self.codes, codes]))
        assert inverse is not None
        known = np.full(len(distinct), np.nan)
        known[inverse[:u]] = self.mean_sq
        out = known[inverse[u:]].reshape(m, a)
        out = np.where(np.isnan(out), self.per_action[None, :], out)
        return np.sqrt(np.maximum(out, 0.0))


def propensity_cells(comp_probs: np.ndarray, target_probs: np.ndarray) -> np.ndarray:
    """(M, A) the cell of every (customer, action): the action and each component's and target's
    probability of it, in the bins ``CELL_EDGES``. Customers of one cell are treated alike by every logging
    mixture's weights and by every target, so an estimator's gap g (the share of the target's probability
    the weighted log does not cover) is nearly constant within a cell, whatever the mixture.

    Parameters
    ----------
    comp_probs : ndarray, (K, M, A)
        The components' probabilities.
    target_probs : ndarray, (T, M, A)
        The targets' probabilities.

    Returns
    -------
    ndarray of int, (M, A)
        Cell indices, 0 to the number of distinct cells - 1.
    """
    _, m, a = comp_probs.shape
    _, inverse = merge_rows(cell_codes(comp_probs, target_probs))
    assert inverse is not None
    return inverse.reshape(m, a)


def local_model_error(comp_probs: np.ndarray, target_probs: np.ndarray, sq_error: np.ndarray) -> np.ndarray:
    """(M, A) the reward model's root-mean-square error in each (customer, action)'s propensity cell.

    ``sq_error`` (M, A) is the squared error of the model on held-out customers. Averaging it within
    cells of equal propensities (``propensity_cells``) keeps what matters for the bias bound: where the
    log does not check the model (the gap g > 0), the model's error there, not on average. Since g is
    nearly constant within a cell, Cauchy-Schwarz within each cell gives
    |E[sum_a g (q - mu)]| <= E[sum_a g delta] with this delta (method.md section 4).

    Parameters
    ----------
    comp_probs : ndarray, (K, M, A)
        The components' probabilities.
    target_probs : ndarray, (T, M, A)
        The targets' probabilities.
    sq_error : ndarray, (M, A)
        The model's squared error (reward's unit squared).

    Returns
    -------
    ndarray, (M, A)
        delta, reward's unit.
    """
    cells = propensity_cells(comp_probs, target_probs).reshape(-1)
    e2 = np.asarray(sq_error, float).reshape(-1)
    counts = np.bincount(cells)
    mean = np.bincount(cells, weights=e2) / counts
    return np.sqrt(np.maximum(mean[cells], 0.0)).reshape(sq_error.shape)


def model_error_measure(scenario: Scenario, sample: EvaluationSample) -> CellErrors | np.ndarray:
    """What a sample measures of the reward model's error, to apply to other customers: the per-cell table
    (``CellErrors``) where the scenario gives squared errors per customer, else the sample's (A,) error per
    action (``model_error_of``).

    Parameters
    ----------
    scenario : Scenario
    sample : EvaluationSample
        Built with its covariates and reward model (``x`` and ``q`` set).

    Returns
    -------
    CellErrors or ndarray, (A,)
        The per-cell table, or the error per action (reward's unit).
    """
    assert sample.x is not None and sample.q is not None
    rows = scenario.reward_model_sq_error(sample.x, sample.q, sample.mu)
    if rows is not None:
        return CellErrors.measure(sample.comp_probs, sample.target_probs, rows)
    return model_error_of(scenario, sample.q, sample.mu, sample.x, sample.comp_probs, sample.target_probs)[0]


def model_error_of(
    scenario: Scenario, q: np.ndarray, mu: np.ndarray, x: np.ndarray, comp_probs: np.ndarray, target_probs: np.ndarray
) -> tuple[np.ndarray, str]:
    """The reward model's error where the log would check it, and where that measurement comes from.

    Where the scenario measures the model's squared error per customer on held-out customers
    (``Scenario.reward_model_sq_error``): (M, A), its root-mean-square within each propensity cell
    (``local_model_error``). Otherwise (A,): the scenario's own out-of-fold error per action
    (``Scenario.reward_model_error``), or the spread of the mean reward within each action.

    Parameters
    ----------
    scenario : Scenario
    q : ndarray, (M, A)
        The reward model's predictions (reward's unit).
    mu : ndarray, (M, A)
        E[r | x, a] (reward's unit).
    x : ndarray, (M, d)
        The customers' covariates.
    comp_probs : ndarray, (K, M, A)
        The components' probabilities.
    target_probs : ndarray, (T, M, A)
        The targets' probabilities.

    Returns
    -------
    delta : ndarray, (M, A) or (A,)
        The model's root-mean-square error (reward's unit).
    source : str
        Where the measurement comes from, in words.

    Raises
    ------
    CouponmixError
        The scenario's squared errors are not finite, not >= 0 or not (M, A).
    """
    rows = scenario.reward_model_sq_error(x, q, mu)
    if rows is not None:
        rows = np.asarray(rows, float)
        if rows.shape != mu.shape or not np.isfinite(rows).all() or (rows < 0).any():
            raise CouponmixError(f"scenario {scenario.name!r}: the model's squared error must be finite, >= 0 and of shape {mu.shape}")
        return local_model_error(comp_probs, target_probs, rows), scenario.reward_model_sq_error_source()
    own = scenario.reward_model_error()
    if own is not None:
        return np.asarray(own, float), "the revenue model's out-of-fold error per action on the historical log"
    return np.sqrt(np.mean((q - mu) ** 2, axis=0)), "the per-action average's error (spread of mean revenue)"


def _check_memory(scenario: Scenario, size: int, k: int, t: int) -> None:
    """Refuse, before any work, an evaluation sample that cannot fit in the memory available: it holds
    every component's and target's probabilities and a few reward arrays per customer and action (moments,
    model, model error, one reward draw), and the row merge makes temporaries of about the same size; the
    covariates once, and once per action while the reward draws are made (``reward_draws``)."""
    free = memory.available_bytes()
    if free is None:
        return
    a_n, d = max(scenario.n_actions, 1), max(len(scenario.covariate_names), 1)
    need = 2 * 8 * size * a_n * (k + t + 7) + 8 * size * d * (1 + a_n)
    if need > free:
        raise CouponmixError(
            f"an evaluation sample of {size:,} customers needs about {need / 2**30:,.1f} GiB; "
            f"{free / 2**30:,.1f} GiB are available: use a smaller --eval-size"
        )


def reward_draws(scenario: Scenario, x: np.ndarray) -> np.ndarray:
    """(M, A) one reward for every customer of ``x`` (M, d) and every action, from the scenario's own reward
    draws (stream ``reward_draws``, seed 0: the same customers give the same draws).

    Parameters
    ----------
    scenario : Scenario
    x : ndarray, (M, d)
        The customers' covariates.

    Returns
    -------
    ndarray, (M, A)
        Rewards (reward's unit).
    """

    m, a_n = len(x), scenario.n_actions
    rewards = scenario.sample_rewards(np.repeat(x, a_n, axis=0), np.tile(np.arange(a_n), m), stream(0, "reward_draws"))
    return np.asarray(rewards, float).reshape(m, a_n)


@dataclass
class EvaluationSample:
    """A fixed covariate sample with every policy and reward moment the objectives need: M customers, A actions,
    K logging components, T targets."""

    component_names: tuple[str, ...]  #: (K,) the logging components' names
    target_names: tuple[str, ...]  #: (T,) the targets' (future policies') names
    comp_probs: np.ndarray  #: (K, M, A) each component's action probabilities
    target_probs: np.ndarray  #: (T, M, A) each target's action probabilities
    mu: np.ndarray  #: (M, A) E[r | x, a] (reward's unit)
    m2: np.ndarray  #: (M, A) E[r^2 | x, a] (reward's unit squared)
    x: np.ndarray | None = None  #: (M, d) the covariates, kept for policies evaluated later
    q: np.ndarray | None = None  #: (M, A) the reward model fixed before logging, for DR-type estimators (reward's unit)
    q_source: str = ""  #: where ``q`` comes from, in words
    q_fitted_on_log: bool = False  #: q stands in for a model fitted on each log (see fitted_reward)
    #: the reward model's root-mean-square error where the log would check it: (M, A) per customer and action
    #: (its propensity cell's, see ``local_model_error``) or (A,) per action; it sizes the model error assumed
    #: where a mixture's weighted log does not check the model (see ``ErrorLaw.bias_bound``); None: no bound
    model_error: np.ndarray | None = None
    model_error_source: str = ""  #: where ``model_error`` comes from, in words
    #: the real log's own rows behind the customers, where the scenario has them (``Scenario.observed_rows``):
    #: ``ObservedRows``; the world's model of the second moments is then scaled per action to the logged
    #: rewards' importance-weighted average (``ObservedRows.scale``)
    observed: ObservedRows | None = None
    #: one reward per customer and action (M, A), drawn from the world (stream ``reward_draws``): the shape of
    #: the rewards beyond mu and m2 (their third and fourth moments), which the decision law's safe rule needs
    #: (``decide.value.difference_shape``); None where the scenario's draws were not taken
    reward_draws: np.ndarray | None = None
    _groups: dict = field(default_factory=dict, repr=False, compare=False)
    _merge_index: dict = field(default_factory=dict, repr=False, compare=False)  # shared by copies with another q

    @classmethod
    def from_scenario(
        cls,
        scenario: Scenario,
        size: int = DEFAULT_EVAL_SIZE,
        seed: int = 0,
        components: Mapping[str, Policy] | None = None,
        targets: Mapping[str, Policy] | None = None,
        observed: bool = True,
    ) -> EvaluationSample:
        """Draw ``size`` customers from the scenario and keep what the exact objectives need.

        Parameters
        ----------
        scenario : Scenario
        size : int
            Customers M in the sample.
        seed : int
            Seed of the draw (stream ``evaluation_sample``).
        components, targets : mapping of name to Policy, optional
            Default: the scenario's.
        observed : bool
            Where the scenario holds a real log (``Scenario.observed_rows``), take its customers and their
            logged rewards, so that the second moments come from the log (default). False: the scenario's
            world alone, as its own simulation draws it (Monte Carlo checks of the formulas).

        Returns
        -------
        EvaluationSample
            ``comp_probs`` (K, M, A), ``target_probs`` (T, M, A), ``mu`` and ``m2`` (M, A), ``x`` (M, d),
            the reward model ``q`` (M, A) where the scenario has one, and its error per action (A,).

        Raises
        ------
        CouponmixError
            Fewer than 100 customers, a sample too large for the memory available, or the scenario's moments
            or model errors rejected (as ``from_covariates``).
        """
        size = check_positive_int(size, "evaluation sample size", minimum=100)
        components = dict(scenario.components() if components is None else components)
        targets = dict(scenario.targets() if targets is None else targets)
        _check_memory(scenario, size, len(components), len(targets))
        rows = scenario.observed_rows(size, stream(seed, "evaluation_sample")) if observed else None
        if rows is not None:
            x, obs = rows
            return dataclasses.replace(cls.from_covariates(scenario, x, components, targets), observed=obs)
        x = scenario.sample_covariates(size, stream(seed, "evaluation_sample"))
        return cls.from_covariates(scenario, x, components, targets)

    @classmethod
    def from_covariates(
        cls,
        scenario: Scenario,
        x: np.ndarray,
        components: Mapping[str, Policy] | None = None,
        targets: Mapping[str, Policy] | None = None,
        q: np.ndarray | None = None,
        q_source: str = "",
        model_error: CellErrors | np.ndarray | None = None,
    ) -> EvaluationSample:
        """The sample on given covariates; q defaults to ``reward_model_on`` these covariates.

        Parameters
        ----------
        scenario : Scenario
        x : ndarray, (M, d)
            The customers' covariates.
        components, targets : mapping of name to Policy, optional
            Default: the scenario's.
        q : ndarray, (M, A), optional
            The reward model's predictions (reward's unit), with ``q_source`` saying where they come from.
        q_source : str
        model_error : CellErrors or ndarray (A,), optional
            The reward model's error as another sample measured it (``model_error_measure``), applied here
            instead of measuring it on these customers (``model_error_of``).

        Returns
        -------
        EvaluationSample
            With one reward draw per customer and action (``reward_draws``).

        Raises
        ------
        CouponmixError
            The scenario's mu or m2 is not finite, m2 < mu^2 somewhere, or its squared model errors are rejected.
        """
        components = dict(scenario.components() if components is None else components)
        targets = dict(scenario.targets() if targets is None else targets)
        mu, m2 = scenario.mu(x), scenario.m2(x)
        if not (np.isfinite(mu).all() and np.isfinite(m2).all()):
            raise CouponmixError(f"scenario {scenario.name!r} returned non-finite reward moments")
        if (m2 < mu * mu - 1e-9 * (1 + np.abs(m2))).any():
            raise CouponmixError(f"scenario {scenario.name!r} has m2 < mu^2 somewhere: not a second moment")
        if q is None:
            q, q_source = reward_model_on(scenario, x, mu)
        comp_probs = np.stack([p(x) for p in components.values()])
        target_probs = np.stack([p(x) for p in targets.values()])
        if isinstance(model_error, CellErrors):
            delta, delta_source = model_error.apply(comp_probs, target_probs), "the revenue model's error measured on the evaluation sample"
        elif model_error is not None:
            delta, delta_source = np.asarray(model_error, float), "the revenue model's error measured on the evaluation sample"
        else:
            delta, delta_source = model_error_of(scenario, q, mu, x, comp_probs, target_probs)
        return cls(
            component_names=tuple(components),
            target_names=tuple(targets),
            comp_probs=comp_probs,
            target_probs=target_probs,
            mu=mu,
            m2=m2,
            x=x,
            q=q,
            q_source=q_source,
            model_error=delta,
            model_error_source=delta_source,
            reward_draws=reward_draws(scenario, x),
        )

    @property
    def size(self) -> int:
        """M, the customers in the sample."""
        return self.mu.shape[0]

    def subset(self, idx: np.ndarray) -> EvaluationSample:
        """The sample restricted to customers ``idx`` (same policies, reward model and model error).

        Parameters
        ----------
        idx : ndarray of int, (M',)
            The customers' indices.

        Returns
        -------
        EvaluationSample
            Of M' customers, without the cached row sets.
        """
        return EvaluationSample(
            component_names=self.component_names,
            target_names=self.target_names,
            comp_probs=self.comp_probs[:, idx],
            target_probs=self.target_probs[:, idx],
            mu=self.mu[idx],
            m2=self.m2[idx],
            x=None if self.x is None else self.x[idx],
            q=None if self.q is None else self.q[idx],
            q_source=self.q_source,
            q_fitted_on_log=self.q_fitted_on_log,
            model_error=self.model_error if self.model_error is None or self.model_error.ndim == 1 else self.model_error[idx],
            model_error_source=self.model_error_source,
            observed=None if self.observed is None else self.observed.subset(idx),
            reward_draws=None if self.reward_draws is None else self.reward_draws[idx],
        )

    @property
    def model_error_per_action(self) -> np.ndarray | None:
        """(A,) the reward model's root-mean-square error per action over the sample (None: no bound)."""
        if self.model_error is None or self.model_error.ndim == 1:
            return self.model_error
        return np.sqrt(np.mean(self.model_error**2, axis=0))

    def _values(self, probs: np.ndarray) -> np.ndarray:
        """(P,) V(pi) = E_x[sum_a pi(a|x) mu(x,a)] of policies (P, M, A) on this sample; with a real log's
        rows, their doubly robust estimate from the logged rewards (``ObservedRows.policy_values``)."""
        if self.observed is not None and self.q is not None:
            return self.observed.policy_values(probs, self.q, self.mu)
        return np.einsum("pma,ma->p", probs, self.mu) / self.size

    def policy_value(self, probs: np.ndarray) -> float:
        """V(pi) on this sample (see ``_values``).

        Parameters
        ----------
        probs : ndarray, (M, A)
            The policy's action probabilities on the sample's customers.

        Returns
        -------
        float
            Per customer, reward's unit.
        """
        return float(self._values(probs[None])[0])

    def policy_value_of(self, policy: Policy) -> float:
        """V(pi) for a policy not stored with the sample (needs the covariates, so they are kept).

        Parameters
        ----------
        policy : Policy

        Returns
        -------
        float
            Per customer, reward's unit.

        Raises
        ------
        CouponmixError
            The sample was built without its covariates.
        """
        if self.x is None:
            raise CouponmixError("this evaluation sample was built without its covariates")
        return self.policy_value(policy(self.x))

    @cached_property
    def component_values(self) -> np.ndarray:
        """(K,) each component's value per customer on this sample (reward's unit; see ``_values``)."""
        return self._values(self.comp_probs)

    @cached_property
    def target_values(self) -> np.ndarray:
        """(T,) each target's value per customer on this sample (reward's unit; see ``_values``)."""
        return self._values(self.target_probs)

    def balanced(self, alpha: np.ndarray) -> np.ndarray:
        """p_alpha(a|x) on the sample, (M, A).

        Parameters
        ----------
        alpha : ndarray, (K,)
            The mixture.

        Returns
        -------
        ndarray, (M, A)
            Probabilities.
        """
        return np.tensordot(alpha, self.comp_probs, axes=1)


_HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


def row_hash(a: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row's bytes (equal rows of equal bits hash equally), one pass per column.

    Parameters
    ----------
    a : ndarray, (R, C)
        Rows, read as float64.

    Returns
    -------
    ndarray of uint64, (R,)
    """
    bits = np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)
    h = np.zeros(len(a), dtype=np.uint64)
    for j in range(bits.shape[1]):
        h ^= bits[:, j]
        h *= _HASH_MULTIPLIER
    return h


def merge_rows(a: np.ndarray, min_gain: float = 0.0) -> tuple[np.ndarray, np.ndarray | None]:
    """(distinct rows, index of each row's distinct row), or (a, None) when merging would remove fewer
    than ``min_gain`` of the rows (continuous policies: nearly every row is distinct, and merging would
    only cost time).

    Rows are grouped by a sort on their hash, then neighbours are compared in full, so a hash
    collision can only leave two equal rows unmerged, never merge different ones: sums over merged
    rows are exact either way. About 10x faster than a lexsort on the columns.

    Parameters
    ----------
    a : ndarray, (R, C)
        Rows to merge.
    min_gain : float
        The least share of rows merging must remove (0: always merge).

    Returns
    -------
    distinct : ndarray, (U, C)
        The distinct rows (``a`` itself when not merged).
    inverse : ndarray of int, (R,), or None
        Each row's index in ``distinct``; None when not merged.
    """

    if len(a) == 0:
        return a.copy(), np.zeros(0, dtype=np.intp)
    h = row_hash(a)
    if min_gain > 0:  # a plain sort of the hashes is cheap: decide before the argsort
        hs = np.sort(h)
        if np.count_nonzero(hs[1:] != hs[:-1]) + 1 > (1 - min_gain) * len(a):
            return a, None
    order = np.argsort(h, kind="stable")
    hs = h[order]
    new = np.empty(len(a), dtype=bool)
    new[0] = True
    np.not_equal(hs[1:], hs[:-1], out=new[1:])
    ordered = a[order]
    for j in range(a.shape[1]):  # column by column: a reduction over a short axis is slow
        new[1:] |= ordered[1:, j] != ordered[:-1, j]
    inverse = np.empty(len(a), dtype=np.intp)
    inverse[order] = np.cumsum(new) - 1
    return ordered[new], inverse


@dataclass(frozen=True)
class RowTerms:
    """Rows (x, a) that some target plays, merged exactly where all propensities coincide.

    With e = r - q(x, a) and D_t(x) = sum_a pi_t(a|x) q(x, a), each row carries (summed over merged
    rows, divided by M): its count, E[e] = mu - q, E[e^2] = m2 - 2 q mu + q^2, and per target D_t and
    D_t (mu - q). Sums over rows are then expectations over the evaluation sample. q = 0 (IPS family)
    leaves mu and m2.
    """

    P: np.ndarray  #: (R, K) component propensities pi_k(a|x)
    pe: np.ndarray  #: (R, T) target probabilities pi_e(a|x)
    w: np.ndarray  #: (R,) merged row count / M
    we: np.ndarray  #: (R,) sum of E[e | x, a] / M
    we2: np.ndarray  #: (R,) sum of E[e^2 | x, a] / M
    wd: np.ndarray | None  #: (R, T) sum of D_t(x) / M            (None when q = 0)
    wde: np.ndarray | None  #: (R, T) sum of D_t(x) E[e | x, a] / M (None when q = 0)
    ed: np.ndarray  #: (T,) E[D_t]
    ed2: np.ndarray  #: (T,) E[D_t^2]
    values: np.ndarray  #: (T,) V(pi_t)
    wq: np.ndarray | None = None  #: (R,) sum of the reward model q_model(x, a) / M (for the bias split)
    wdel: np.ndarray | None = None  #: (R,) sum of the model error delta_a / M
    eq: np.ndarray | None = None  #: (T,) E[sum_a pi_t q_model]
    edel: np.ndarray | None = None  #: (T,) E[sum_a pi_t delta_a]
    #: (R,) with a real log's rows (``ObservedRows``): the signed model error e_hat, summed per row / M
    wsig: np.ndarray | None = None
    wsig2: np.ndarray | None = None  #: (R, T) with a real log's rows: per target pi_t e_hat^2, summed per row / M
    esig: np.ndarray | None = None  #: (T,) with a real log's rows: E[sum_a pi_t e_hat]
    esig2: np.ndarray | None = None  #: (T,) with a real log's rows: E[sum_a pi_t^2 e_hat^2]
    size: int = 0  #: customers M of the evaluation sample

    @staticmethod
    def merge_index(comp_probs: np.ndarray, target_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(keep, keys, inverse): the rows some target plays, their distinct propensity keys, and each kept
        row's key (inverse None: rows are left unmerged, too few repeat). Depends on the policies only,
        so it can be shared by reward models.

        Parameters
        ----------
        comp_probs : ndarray, (K, M, A)
            The components' probabilities.
        target_probs : ndarray, (T, M, A)
            The targets' probabilities.

        Returns
        -------
        keep : ndarray of bool, (M * A,)
            The (customer, action) rows, customer-major, that some target plays; n of them.
        keys : ndarray, (R, K + T)
            The distinct rows' component then target probabilities (all n kept rows when not merged).
        inverse : ndarray of int, (n,), or None
            Each kept row's index in ``keys``.
        """
        k, m, a = comp_probs.shape
        P = comp_probs.transpose(1, 2, 0).reshape(m * a, k)
        pe = target_probs.transpose(1, 2, 0).reshape(m * a, target_probs.shape[0])
        keep = np.asarray((pe > 0).any(axis=1))
        return (keep, *merge_rows(np.column_stack([P[keep], pe[keep]]), MERGE_MIN_GAIN))

    @classmethod
    def build(
        cls,
        comp_probs: np.ndarray,
        target_probs: np.ndarray,
        mu: np.ndarray,
        m2: np.ndarray,
        q: np.ndarray | None = None,
        index: tuple | None = None,
        q_model: np.ndarray | None = None,
        delta: np.ndarray | None = None,
        observed: ObservedRows | None = None,
    ) -> RowTerms:
        """Row terms, on R merged rows, of the estimator's reward model q (None: the IPS family, q = 0).

        Parameters
        ----------
        comp_probs, target_probs, mu, m2, q : ndarray, (K, M, A), (T, M, A), then (M, A): E[r | x, a], E[r^2 | x, a], q
        index : tuple, optional: ``merge_index``'s result, which reward models can share (None: computed here)
        q_model, delta : ndarray, (M, A) and (A,) or (M, A), optional: the best reward model available and its error;
            with both, the rows also carry what the bias split of ``laws_from_moments`` needs
        observed : ObservedRows, optional: the residuals' moments and the model's error then come from the logged rewards"""
        k, m, a = comp_probs.shape
        qq = np.zeros_like(mu) if q is None else q
        e2_model = m2 - 2 * qq * mu + qq * qq
        e_model = mu - qq
        if observed is None:
            e_rows, e2_rows = e_model, e2_model
        else:  # the log's own residuals, importance weighted (``ObservedRows``)
            e_rows, e2_rows = observed.residual_first_moment(q, e_model), observed.residual_second_moment(q, e2_model)
        e, e2 = e_rows.reshape(-1), e2_rows.reshape(-1)
        d = np.einsum("tma,ma->mt", target_probs, qq)  # (M, T)
        d_rows = np.repeat(d, a, axis=0)  # (M A, T)
        keep, keys, inverse = cls.merge_index(comp_probs, target_probs) if index is None else index

        def merged(v):
            """Kept rows' values (n,) or (n, T) summed per merged row and divided by M: (R,) or (R, T)."""

            if inverse is None:
                return v / m
            if v.ndim == 2:
                return np.column_stack([merged(col) for col in v.T])
            return np.bincount(inverse, weights=v, minlength=len(keys)) / m

        has_q = q is not None and np.any(q != 0)
        split = {}
        if q_model is not None and delta is not None:
            dl = np.broadcast_to(np.asarray(delta, float), (m, a))
            if observed is not None:  # the log measures the model's error on covered actions: no bound there
                dl = dl * (~observed.covered)[None, :]
            split = dict(
                wq=merged(q_model.reshape(-1)[keep]),
                wdel=merged(dl.reshape(-1)[keep]),
                eq=np.einsum("tma,ma->t", target_probs, q_model) / m,
                edel=np.einsum("tma,ma->t", target_probs, dl) / m,
            )
            if observed is not None:
                sig = observed.signed_error(q_model)
                sig_kept = sig.reshape(-1)[keep]
                sig2_kept = sig_kept * sig_kept
                split.update(
                    wsig=merged(sig_kept),
                    wsig2=np.column_stack([merged(pt.reshape(-1)[keep] * sig2_kept) for pt in target_probs]),
                    esig=np.einsum("tma,ma->t", target_probs, sig) / m,
                    esig2=np.einsum("tma,ma->t", target_probs**2, sig * sig) / m,
                )
        return cls(
            **split,
            P=np.ascontiguousarray(keys[:, :k]),
            pe=np.ascontiguousarray(keys[:, k:]),
            w=merged(np.ones(int(keep.sum()))),
            we=merged(e[keep]),
            we2=merged(e2[keep]),
            wd=merged(d_rows[keep]) if has_q else None,
            wde=merged(d_rows[keep] * e[keep, None]) if has_q else None,
            ed=d.mean(axis=0),
            ed2=(d * d).mean(axis=0),
            values=np.einsum("tma,ma->t", target_probs, mu) / m,
            size=m,
        )

    @property
    def n_rows(self) -> int:
        """R, the (merged) rows held."""
        return self.P.shape[0]

    @property
    def has_reward_model(self) -> bool:
        """True when the rows carry a reward model's terms (``wd`` is set, i.e. q is not 0)."""
        return self.wd is not None

    @property
    def nbytes(self) -> int:
        """Bytes held by the row terms' arrays."""
        return sum(v.nbytes for v in vars(self).values() if isinstance(v, np.ndarray))


@dataclass(kw_only=True)
class LawSummary(Record):
    """One estimator's exact error on one target at one mixture and log size (``ErrorLaw.summary``), with the
    target's value where a ``describe`` gives it. Every number is in the reward's unit per customer.
    """

    true_value: float | None = field(default=None, metadata=OPTIONAL)  #: the target's value on the evaluation sample
    rmse: float  #: the estimator's exact RMSE
    bias: float  #: its exact bias
    std_error: float  #: its standard deviation
    support: float  #: share of the target's probability on actions the mixture plays (a probability, not a reward)
    supported: bool  #: whether that share is all of it
    #: with a reward model fitted on each log (pilot models): the standard error of the pilot-averaged MSE (unit squared)
    mse_approximation_se: float | None = field(default=None, metadata=OPTIONAL)
    #: with a reward model fitted on each log: the standard error of the pilot-averaged bias
    bias_approximation_se: float | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True)
class ErrorLaw:
    """MSE(n) = (bias0 + bias1 / n)^2 + scaled_var / n, for a batch of mixtures (arrays of shape (B,)).

    ``support`` is E_x[sum_{a: p_alpha>0} pi_e(a|x)]: 1 when the target is supported, less when the
    logging mixture never plays some action the target plays.
    """

    bias0: np.ndarray  #: (B,) the bias that does not shrink with n (reward's unit per customer)
    bias1: np.ndarray  #: (B,) the bias's 1/n coefficient (reward's unit times customers; 0 for plain estimators)
    scaled_var: np.ndarray  #: (B,) n times the estimate's variance (reward's unit squared times customers)
    support: np.ndarray  #: (B,) E_x[sum_{a: p_alpha>0} pi_e(a|x)], a probability
    #: (B,) the part of bias0 the reward model predicts (what a team can compute); None: no split known
    bias_computed: np.ndarray | None = None
    #: (B,) a bound on the rest (the model's own error on the actions the estimator does not reweight); None: no split known
    bias_bound: np.ndarray | None = None

    @property
    def supported(self) -> np.ndarray:
        """True where the mixture plays every action the target plays."""
        return self.support >= 1 - SUPPORT_TOL

    def mse(self, n) -> np.ndarray:
        """(B,) the MSE at log size n: (bias0 + bias1 / n)^2 + scaled_var / n (reward's unit squared).

        Parameters
        ----------
        n : int
            Customers in the log.
        """
        return (self.bias0 + self.bias1 / n) ** 2 + self.scaled_var / n

    def rmse(self, n) -> np.ndarray:
        """(B,) the RMSE at log size n (reward's unit per customer).

        Parameters
        ----------
        n : int
            Customers in the log.
        """
        return np.sqrt(self.mse(n))

    def bias(self, n) -> np.ndarray:
        """(B,) the true bias at log size n: bias0 + bias1 / n (reward's unit per customer).

        Parameters
        ----------
        n : int
            Customers in the log.
        """
        return self.bias0 + self.bias1 / n

    @property
    def has_split(self) -> bool:
        """True when the bias is split into a computed part and a model-error bound."""
        return self.bias_bound is not None

    def sampling_error(self, n) -> np.ndarray:
        """(B,) the standard deviation at log size n: what the log itself shows, falling like 1/sqrt(n).

        Parameters
        ----------
        n : int
            Customers in the log.
        """
        return np.sqrt(self.scaled_var / n)

    def computed_bias(self, n) -> np.ndarray:
        """The bias the reward model predicts (the estimator's structural bias: clipping, switching, actions a
        component never plays), plus the self-normalised O(1/n) term: (B,), reward's unit per customer.

        Parameters
        ----------
        n : int
            Customers in the log.
        """
        b = self.bias0 if self.bias_computed is None else self.bias_computed
        return b + self.bias1 / n

    @property
    def model_bias(self) -> np.ndarray:
        """(B,) the rest of the true bias: the reward model's own error where it is relied on (simulator truth)."""
        return self.bias0 - (self.bias0 if self.bias_computed is None else self.bias_computed)

    @property
    def bound(self) -> np.ndarray:
        """(B,) the bound on the bias resting on the reward model (0 when no split is known)."""
        return np.zeros_like(self.bias0) if self.bias_bound is None else self.bias_bound

    def robust_mse(self, n) -> np.ndarray:
        """(B,) sampling variance plus the squared worst-case bias: |computed bias| + the model-error bound
        (reward's unit squared).

        Parameters
        ----------
        n : int
            Customers in the log.
        """
        return self.scaled_var / n + (np.abs(self.computed_bias(n)) + self.bound) ** 2

    def robust_rmse(self, n) -> np.ndarray:
        """(B,) the robust error at log size n: the square root of ``robust_mse(n)`` (reward's unit per customer).

        Parameters
        ----------
        n : int
            Customers in the log.
        """
        return np.sqrt(self.robust_mse(n))

    def summary(self, n: int, i: int) -> LawSummary:
        """RMSE, bias, standard error and support of mixture ``i`` of the batch at log size n.

        Parameters
        ----------
        n : int
            Customers in the log.
        i : int
            The mixture's index in the batch (0 to B - 1).

        Returns
        -------
        LawSummary
            Without ``true_value``.
        """
        return LawSummary(
            rmse=float(self.rmse(n)[i]),
            bias=float(self.bias(n)[i]),
            std_error=float(np.sqrt(self.scaled_var[i] / n)),
            support=float(self.support[i]),
            supported=bool(self.supported[i]),
        )

    def log_size_for(self, tol: float, robust: bool = False) -> np.ndarray:
        """Least n with RMSE(n) (or, with ``robust``, the robust error) <= tol for every mixture in the batch
        (inf where the bias alone, or with the model-error bound, exceeds tol).

        Parameters
        ----------
        tol : float
            The error to reach (reward's unit per customer).
        robust : bool
            Solve for the robust error instead of the RMSE.

        Returns
        -------
        ndarray, (B,)
            Customers in the log, at least 1 (not rounded; inf where no n suffices).
        """
        computed = self.bias0 if not robust or self.bias_computed is None else self.bias_computed
        bound = self.bound if robust else np.zeros_like(self.bias0)
        out = np.full(self.bias0.shape, np.inf)
        for i in range(len(out)):
            b0, b1, v, b = computed[i], self.bias1[i], self.scaled_var[i], bound[i]

            def mse(n, b0=b0, b1=b1, v=v, b=b):
                """Mixture i's MSE (or robust MSE) at log size n."""
                return (abs(b0 + b1 / n) + b) ** 2 + v / n if robust else (b0 + b1 / n) ** 2 + v / n

            fixed = abs(b0) + b
            if fixed >= tol:
                continue
            if b1 == 0:
                out[i] = max(v / (tol * tol - fixed * fixed), 1.0)
                continue
            lo, hi = 1.0, 2.0  # the error decreases for large n: bracket, then find the root in log n
            while mse(hi) > tol * tol:
                lo, hi = hi, hi * 2
                if hi > 1e15:
                    break
            else:
                if mse(lo) <= tol * tol:
                    out[i] = lo
                    continue
                root = brentq(
                    lambda u, mse=mse: mse(np.exp(u)) - tol * tol, np.log(lo), np.log(hi), xtol=1e-12, rtol=4 * np.finfo(float).eps
                )
                out[i] = min(np.exp(root) * (1 + 1e-12), hi)  # on the safe side of the root
        return out


# moment name -> (row coefficient, which row weight): sums over rows of coefficient x (p c) or (p c^2)
_SUMS = {
    "M1": ("we", 0),
    "S2": ("we2", 1),
    "MW": ("w", 0),
    "MD": ("wde", 0),
    "MC": ("wd", 0),
    "L2": ("we", 1),
    "W2": ("w", 1),
    "SUP": ("w", 2),
    "SQ": ("wq", 0),
    "SDL": ("wdel", 0),
    "SDS": ("wsig", 0),
    "SE2": ("wsig2", 0),
}


def _needed(spec: EstimatorSpec, rows: RowTerms) -> tuple[str, ...]:
    """The moment names (``_SUMS``) ``spec``'s error law needs on ``rows``."""
    names = ["M1", "S2", "MW" if spec.has_unbounded_weights else "SUP"]
    if rows.has_reward_model:
        names.append("MD")
    if spec.self_normalised:
        names += ["L2", "W2"] + (["MC"] if rows.has_reward_model else [])
    if rows.wq is not None:
        names += ["SQ", "SDL"]
    if rows.wsig is not None:
        names += ["SDS", "SE2"]
    return tuple(names)


def _chunk_sums(rows: RowTerms, sl: slice, at: np.ndarray, spec: EstimatorSpec, names) -> np.ndarray:
    """Sums over one chunk of rows, for every target: array (T, len(names), B)."""
    return _sums_at(rows, sl, *_balanced(rows, sl, at), spec, names)


def _balanced(rows: RowTerms, sl: slice, at: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """One chunk's balanced propensities p (r, B), their inverse (0 where p = 0) and whether all are positive."""
    p = rows.P[sl] @ at  # (r, B) balanced propensities
    all_pos = bool((p > 0).all())
    inv = 1.0 / p if all_pos else np.divide(1.0, p, out=np.zeros_like(p), where=p > 0)
    return p, inv, all_pos


def _sums_at(
    rows: RowTerms, sl: slice, p: np.ndarray, inv: np.ndarray, all_pos: bool, spec: EstimatorSpec, names, terms: list | None = None
) -> np.ndarray:
    """``_chunk_sums`` given the chunk's balanced propensities (``_balanced``), which estimators over the same
    rows can share, as they can share ``terms`` (one ``ChunkTerms`` per target, made here when None)."""
    wf = spec.weight_function
    n_t = rows.pe.shape[1]
    if terms is None:
        terms = [ChunkTerms(rows.pe[sl, t, None], p, inv, all_pos) for t in range(n_t)]
    out = np.empty((n_t, len(names), p.shape[1]))
    for t in range(n_t):
        pe = terms[t].pe
        pair = None if wf.vanishes else wf.row_sums(terms[t], spec.clip)  # (p c, p c^2, pi_e 1{p > 0})
        for j, name in enumerate(names):
            coef_name, which = _SUMS[name]
            coef = getattr(rows, coef_name)[sl]
            coef = coef if coef.ndim == 1 else coef[:, t]
            if pair is None and which != 2:  # c = 0: p c and p c^2 vanish
                out[t, j] = 0.0
            elif all_pos and (which == 2 or pair is not None and pair[which] is pair[2]):  # pe broadcast: one sum for all
                out[t, j] = coef @ pe[:, 0]
            elif pair is None:
                out[t, j] = coef @ terms[t].supported()
            else:
                out[t, j] = coef @ pair[which]
    return out


def _balanced_sums(rows, alphas, spec, names, chunk_rows, executor) -> np.ndarray:
    """(T, len(names), B). Chunks may run on threads (numpy releases the GIL); partial sums are added
    in chunk order, so the result does not depend on scheduling."""
    return _joint_balanced_sums([rows], alphas, [spec], [names], chunk_rows, executor)[0]


def _joint_balanced_sums(rows_list, alphas, specs, names_list, chunk_rows, executor) -> list[np.ndarray]:
    """``_balanced_sums`` of several estimators whose row sets hold the same propensities (``P`` and ``pe``), one
    list entry each: every chunk's balanced propensities, and the products of ``ChunkTerms``, are computed once
    for all of them. Each entry equals that estimator's own ``_balanced_sums`` exactly (the same operations on
    the same chunks)."""
    at = np.ascontiguousarray(alphas.T)
    if chunk_rows is None:
        chunk_rows = max(256, CHUNK_ELEMENTS // at.shape[1])
    slices = [slice(s, s + chunk_rows) for s in range(0, rows_list[0].n_rows, chunk_rows)]
    if all(spec.weight_function.kernel is not None for spec in specs):
        estimators = [
            (spec.weight_function.kernel, spec.clip, [_coef_of(rows, name) for name in names])
            for rows, spec, names in zip(rows_list, specs, names_list)
        ]
        found = fused.joint_sums(rows_list[0].P, rows_list[0].pe, alphas, estimators, slices, executor)
        if found is not None:
            return found

    def chunk(sl: slice) -> list[np.ndarray]:
        """Each estimator's sums (T, len(names), B) over the chunk ``sl`` of rows."""
        p, inv, all_pos = _balanced(rows_list[0], sl, at)
        terms = [ChunkTerms(rows_list[0].pe[sl, t, None], p, inv, all_pos) for t in range(rows_list[0].pe.shape[1])]
        return [_sums_at(rows, sl, p, inv, all_pos, spec, names, terms) for rows, spec, names in zip(rows_list, specs, names_list)]

    parts = [chunk(sl) for sl in slices] if executor is None or len(slices) < 4 else list(executor.map(chunk, slices))
    return [np.sum([part[i] for part in parts], axis=0) for i in range(len(rows_list))]


def _coef_of(rows: RowTerms, name: str) -> tuple[np.ndarray | None, int]:
    """The row coefficient ((R,) or (R, T)) and the row term (``_SUMS``) of the moment ``name`` on ``rows``."""
    coef_name, which = _SUMS[name]
    return getattr(rows, coef_name), which


def _naive_sums(rows, alphas, spec, names) -> np.ndarray:
    """Naive weights use the acting component's own propensity: every moment is linear in alpha,
    sum_k alpha_k (moment with p = pi_k), so K per-component sums answer any batch."""
    k = rows.P.shape[1]
    per_k = np.stack([_chunk_sums(rows, slice(None), np.eye(k)[:, [j]], spec, names)[..., 0] for j in range(k)], axis=-1)  # (T, names, K)
    return per_k @ alphas.T


@dataclass
class Moments:
    """Everything the error law needs, as means over the evaluation customers (so moments of disjoint
    groups of customers combine by their customer-weighted average: streaming sufficient statistics),
    for T targets and a batch of B mixtures."""

    sums: dict  #: moment name (``_SUMS``) -> (T, B) array
    ed: np.ndarray  #: (T,) E[D_t]
    ed2: np.ndarray  #: (T,) E[D_t^2]
    values: np.ndarray  #: (T,) V(pi_t), per customer in the reward's unit
    eq: np.ndarray | None = None  #: (T,) E[sum_a pi_t q_model] (for the bias split)
    edel: np.ndarray | None = None  #: (T,) E[sum_a pi_t delta_a] (for the bias split)
    esig: np.ndarray | None = None  #: (T,) with a real log's rows: E[sum_a pi_t e_hat] (``RowTerms``)
    esig2: np.ndarray | None = None  #: (T,) E[sum_a pi_t^2 e_hat^2]
    size: int = 0  #: customers behind the means (parts: their total)

    @staticmethod
    def combine(parts: Sequence[Moments], weights: Sequence[float]) -> Moments:
        """Customer-weighted average of the moments of disjoint groups (weights sum to 1), added in order.

        Parameters
        ----------
        parts : sequence of Moments
            Each over the same T targets and B mixtures.
        weights : sequence of float
            Each part's share of the customers.

        Returns
        -------
        Moments
            A sum a part lacks counts as 0 there; ``size`` is the parts' total.
        """

        def avg(get):
            """The weighted sum of one field over the parts."""

            total = None
            for part, w in zip(parts, weights):
                term = w * get(part)
                total = term if total is None else total + term
            return total

        keys = list(dict.fromkeys(k for p in parts for k in p.sums))  # a moment a part lacks is 0 there
        split = all(p.eq is not None for p in parts)
        signed = all(p.esig is not None for p in parts)
        return Moments(
            sums={k: avg(lambda m, k=k: m.sums.get(k, 0.0)) for k in keys},
            ed=avg(lambda m: m.ed),
            ed2=avg(lambda m: m.ed2),
            values=avg(lambda m: m.values),
            eq=avg(lambda m: m.eq) if split else None,
            edel=avg(lambda m: m.edel) if split else None,
            esig=avg(lambda m: m.esig) if signed else None,
            esig2=avg(lambda m: m.esig2) if signed else None,
            size=sum(p.size for p in parts),
        )


def moments(
    rows: RowTerms, alphas: np.ndarray, spec: EstimatorSpec, chunk_rows: int | None = None, executor: ThreadPoolExecutor | None = None
) -> Moments:
    """The moment sums ``spec``'s error law needs, for a batch of mixtures.

    Parameters
    ----------
    rows : RowTerms
    alphas : array_like, (B, K) or (K,)
        Mixtures, one per row.
    spec : EstimatorSpec
    chunk_rows : int, optional
        Rows per chunk of the balanced sums (default from ``CHUNK_ELEMENTS``).
    executor : ThreadPoolExecutor, optional
        Threads for the chunks; the result does not depend on it.

    Returns
    -------
    Moments
        ``sums``: moment name to (T, B) array; the per-target means (T,) copied from ``rows``.
    """
    alphas = np.atleast_2d(np.asarray(alphas, dtype=float))
    names = _needed(spec, rows)
    if spec.weights == "naive":
        sums = _naive_sums(rows, alphas, spec, names)
    else:
        sums = _balanced_sums(rows, alphas, spec, names, chunk_rows, executor)
    return _moments_of(rows, names, sums)


def _moments_of(rows: RowTerms, names: tuple[str, ...], sums: np.ndarray) -> Moments:
    """``Moments`` from the sums (T, len(names), B) over ``rows`` and the rows' per-target means."""
    return Moments(
        sums={name: sums[:, j, :] for j, name in enumerate(names)},
        ed=rows.ed,
        ed2=rows.ed2,
        values=rows.values,
        eq=rows.eq,
        edel=rows.edel,
        esig=rows.esig,
        esig2=rows.esig2,
        size=rows.size,
    )


def group_moments(
    groups: Sequence[tuple[list[int], RowTerms]],
    n_targets: int,
    alphas,
    spec: EstimatorSpec,
    chunk_rows: int | None = None,
    executor: ThreadPoolExecutor | None = None,
) -> Moments:
    """Moments of every target from row sets that each serve some of the targets (see
    ``MixtureObjectives._group_targets``).

    Parameters
    ----------
    groups : sequence of (list of int, RowTerms)
        The targets' indices each row set serves, and the rows.
    n_targets : int
        T, all targets.
    alphas : array_like, (B, K) or (K,)
        Mixtures, one per row.
    spec, chunk_rows, executor
        As for ``moments``.

    Returns
    -------
    Moments
        ``sums``: moment name to (T, B) array (0 for targets whose row set lacks that moment).
    """
    alphas = np.atleast_2d(np.asarray(alphas, dtype=float))
    return _assemble(groups, n_targets, alphas.shape[0], [moments(rows, alphas, spec, chunk_rows, executor) for _, rows in groups])


def _assemble(groups: Sequence[tuple[list[int], RowTerms]], n_targets: int, b: int, found: Sequence[Moments]) -> Moments:
    """One ``Moments`` over every target, for ``b`` mixtures, from each group's own (``found``, in the order of ``groups``)."""
    split = all(rows.eq is not None for _, rows in groups)
    signed = all(rows.esig is not None for _, rows in groups)
    out = Moments(
        sums={},
        ed=np.empty(n_targets),
        ed2=np.empty(n_targets),
        values=np.empty(n_targets),
        eq=np.empty(n_targets) if split else None,
        edel=np.empty(n_targets) if split else None,
        esig=np.empty(n_targets) if signed else None,
        esig2=np.empty(n_targets) if signed else None,
        size=max((rows.size for _, rows in groups), default=0),
    )
    for (ts, _), m in zip(groups, found):
        for name, value in m.sums.items():
            out.sums.setdefault(name, np.zeros((n_targets, b)))[ts] = value  # a moment a group lacks is 0
        out.ed[ts], out.ed2[ts], out.values[ts] = m.ed, m.ed2, m.values
        if out.eq is not None and out.edel is not None:
            out.eq[ts], out.edel[ts] = m.eq, m.edel
        if out.esig is not None and out.esig2 is not None:
            out.esig[ts], out.esig2[ts] = m.esig, m.esig2
    return out


def can_share(objs: Sequence[MixtureObjectives]) -> bool:
    """Whether ``joint_moments`` can serve ``objs`` in one pass: balanced weights, the same chunking and row sets
    holding the same component and target propensities (reward models may differ: they change the rows' other
    terms).

    Parameters
    ----------
    objs : sequence of MixtureObjectives

    Returns
    -------
    bool
        False for fewer than 2.
    """
    if len(objs) < 2 or any(o.estimator.weights == "naive" or o.chunk_rows != objs[0].chunk_rows for o in objs):
        return False
    first = objs[0].groups
    return all(
        len(o.groups) == len(first)
        and all(ts == ts0 and _same(rows.P, rows0.P) and _same(rows.pe, rows0.pe) for (ts, rows), (ts0, rows0) in zip(o.groups, first))
        for o in objs[1:]
    )


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a is b or (a.shape == b.shape and bool(np.array_equal(a, b)))


def joint_moments(objs: Sequence[MixtureObjectives], alphas) -> list[Moments]:
    """Every ``objs[i].moments(alphas)`` (``can_share(objs)`` must hold), each chunk's balanced propensities computed
    once for all of them; each result equals that estimator's own exactly.

    Parameters
    ----------
    objs : sequence of MixtureObjectives
    alphas : array_like, (B, K) or (K,)
        Mixtures, one per row.

    Returns
    -------
    list of Moments
        One per objective, its ``sums`` (T, B).
    """
    alphas = np.atleast_2d(np.asarray(alphas, dtype=float))
    per_obj: list[list[Moments]] = [[] for _ in objs]
    for g in range(len(objs[0].groups)):
        rows_list = [o.groups[g][1] for o in objs]
        names_list = [_needed(o.estimator, rows) for o, rows in zip(objs, rows_list)]
        specs = [o.estimator for o in objs]
        sums = _joint_balanced_sums(rows_list, alphas, specs, names_list, objs[0].chunk_rows, objs[0]._executor)
        for i, (rows, names) in enumerate(zip(rows_list, names_list)):
            per_obj[i].append(_moments_of(rows, names, sums[i]))
    return [_assemble(o.groups, len(o.target_names), alphas.shape[0], found) for o, found in zip(objs, per_obj)]


def laws_from_moments(m: Moments, spec: EstimatorSpec) -> list[ErrorLaw]:
    """Exact (plain estimators) or delta-method (self-normalised) error law of ``spec``, one per target.

    Parameters
    ----------
    m : Moments
        The sums (T, B) ``spec`` needs (``moments``).
    spec : EstimatorSpec

    Returns
    -------
    list of ErrorLaw, (T,)
        Each over the batch (B,); a self-normalised estimator whose target no logged row would play gets an
        infinite variance there. The bias is split only when the moments carry the model-error terms.
    """
    g = m.sums
    zero = np.zeros_like(g["M1"])
    md, mc = g.get("MD", zero), g.get("MC", zero)
    ed, ed2, v = m.ed[:, None], m.ed2[:, None], m.values[:, None]
    # support E[sum_{p>0} pi_e]: for unclipped weights it is MW itself
    support = g["MW"] if spec.has_unbounded_weights else g["SUP"]
    if not spec.self_normalised:
        mean = ed + g["M1"]
        bias0, bias1 = mean - v, zero
        scaled_var = np.maximum(ed2 + 2 * md + g["S2"] - mean**2, 0.0)
    else:
        wbar = g["MW"]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = g["M1"] / wbar
            scaled_var = (ed2 - ed**2) + 2 * (md - ratio * mc) / wbar + (g["S2"] - 2 * ratio * g["L2"] + ratio**2 * g["W2"]) / wbar**2
            bias1 = (ratio * g["W2"] - g["L2"]) / wbar**2
        bias0 = ed + ratio - v
        scaled_var = np.maximum(scaled_var, 0.0)
        # no logged row the target would play (W = 0): the self-normalised estimate is 0 / 0, undefined; its
        # error is infinite, so the criterion never chooses it there
        undefined = ~(wbar > 0)
        if undefined.any():
            bias0, bias1 = np.where(undefined, ed - v, bias0), np.where(undefined, 0.0, bias1)
            scaled_var = np.where(undefined, np.inf, scaled_var)
    computed = bound = None
    if "SQ" in g and m.eq is not None:
        computed, bound = _bias_split(g, m, spec)
    return [
        ErrorLaw(
            bias0=bias0[t],
            bias1=bias1[t],
            scaled_var=scaled_var[t],
            support=support[t],
            bias_computed=None if computed is None else computed[t],
            bias_bound=None if bound is None else bound[t],
        )
        for t in range(len(m.values))
    ]


#: an estimated model bias counts this many of its own standard errors larger than measured (``_bias_split``)
BIAS_Z = 1.0


def _bias_split(g: dict, m: Moments, spec: EstimatorSpec) -> tuple[np.ndarray, np.ndarray]:
    """(computed bias, bound on the model-dependent bias), each (T, B).

    Every estimator's bias is E_x[sum_a g (q_est - mu)] with the gap g = pi_e - p c >= 0: the target's
    probability that the weighted log does not cover (actions a component never plays with naive weights,
    clipping, switching; all of it for the direct method). With q the best reward model available,
    q_est - mu = (q_est - q) + (q - mu): the first part is computed (zero for the DR family, -q for the
    IPS family), the second is the model's error where nothing else checks it. Assuming that, where
    the estimator relies on it, the model's mean squared error on action a is at most its out-of-fold
    delta_a^2, Cauchy-Schwarz gives |E[sum_a g (q - mu)]| <= sum_a E[g_a] delta_a = EDL - SDL.
    Self-normalised forms divide the covered part by W = E[sum_{p>0} pi_e]: the bound becomes
    (1/W - 1) SDL + (EDL - SDL), and the IPS form's computed bias SQ / W - EQ.

    With a real log's rows (``ObservedRows``), the second part is estimated, not bounded, on the actions
    the historical log covers: b_hat = E[sum_a pi_e e_hat] - SDS / W (W = 1 for plain forms), the mean of
    h(a_i | x_i) e_hat_i with h = pi_e - p c / W. It joins the computed bias, and the bound becomes
    ``BIAS_Z`` standard errors of it: by Minkowski, with 0 <= p c <= pi_e,
    sqrt(E[h^2 e_hat^2]) <= sqrt(E2 - SE2) + |1/W - 1| sqrt(SE2), where E2 = E[sum_a pi_e^2 e_hat^2] and
    SE2 = E[sum_a pi_e p c e_hat^2]; divided by sqrt(M). Actions the log does not cover keep the bound.
    """
    if m.eq is None or m.edel is None:
        raise ValueError("the bias split needs moments computed with the model-error terms")
    eq, edel = m.eq[:, None], m.edel[:, None]
    sq, sdl = g["SQ"], g["SDL"]
    wbar = g["MW"] if spec.self_normalised else np.ones_like(sq)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_w = np.where(wbar > 0, 1.0 / wbar, 0.0)
    if spec.uses_reward_model:
        computed = np.zeros_like(sq)
    else:
        computed = sq * inv_w - eq
    bound = np.maximum(edel - sdl, 0.0) + np.maximum(inv_w - 1.0, 0.0) * sdl
    if "SDS" in g and m.esig is not None and m.esig2 is not None and m.size > 0:
        estimated = m.esig[:, None] - g["SDS"] * inv_w
        e2, se2 = m.esig2[:, None], np.maximum(g["SE2"], 0.0)
        spread = np.sqrt(np.maximum(e2 - se2, 0.0)) + np.abs(inv_w - 1.0) * np.sqrt(se2)
        computed = computed + estimated
        bound = bound + BIAS_Z * spread / np.sqrt(m.size)
    return computed, bound


def error_laws(
    rows: RowTerms, alphas: np.ndarray, spec: EstimatorSpec, chunk_rows: int | None = None, executor: ThreadPoolExecutor | None = None
) -> list[ErrorLaw]:
    """Exact (plain estimators) or delta-method (self-normalised) error law of ``spec``, one per target.

    Parameters
    ----------
    rows, alphas, spec, chunk_rows, executor
        As for ``moments``.

    Returns
    -------
    list of ErrorLaw, (T,)
        Each over the batch (B,).
    """
    return laws_from_moments(moments(rows, alphas, spec, chunk_rows, executor), spec)


def check_aggregate(aggregate: str) -> str:
    """``aggregate`` if it is one of ``AGGREGATES`` (max, mean); raises ``CouponmixError`` otherwise.

    Parameters
    ----------
    aggregate : str

    Returns
    -------
    str
        ``aggregate`` itself.

    Raises
    ------
    CouponmixError
        Not one of ``AGGREGATES``.
    """
    if aggregate not in AGGREGATES:
        raise CouponmixError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
    return aggregate


def combine_targets(per_target: np.ndarray, aggregate: str) -> np.ndarray:
    """The single error objective (B,) from per-target RMSEs (B, T): their max or their mean.

    Parameters
    ----------
    per_target : ndarray, (B, T)
        Per-target errors (reward's unit per customer).
    aggregate : "max" or "mean"

    Returns
    -------
    ndarray, (B,)
    """
    return per_target.max(axis=1) if aggregate == "max" else per_target.mean(axis=1)


class BatchObjectives:
    """What every objectives class derives from its ``laws``, ``revenue``, ``n`` and ``aggregate``: per-target
    errors at a log size, their aggregate, and the pair of objectives the front optimises."""

    n: int
    aggregate: str

    def laws(self, alphas) -> list:
        """One error law per target over a batch of mixtures (B, K); subclasses implement it.

        Parameters
        ----------
        alphas : array_like, (B, K)
            Mixtures, one per row.

        Returns
        -------
        list, (T,)
            Laws with ``rmse(n)`` (B,), e.g. ``ErrorLaw`` or ``SelectedLaw``.
        """
        raise NotImplementedError

    def revenue(self, alphas) -> np.ndarray:
        """(B,) expected reward per customer of a batch of mixtures (B, K); subclasses implement it.

        Parameters
        ----------
        alphas : array_like, (B, K)
            Mixtures, one per row.

        Returns
        -------
        ndarray, (B,)
            Reward's unit per customer.
        """
        raise NotImplementedError

    def rmse(self, alphas, n: int | None = None) -> np.ndarray:
        """Per-target error at a log size.

        Parameters
        ----------
        alphas : array_like, shape (B, K) or (K,)
            Mixtures, one per row.
        n : int, optional
            Customers in the log (default: ``self.n``).

        Returns
        -------
        ndarray, shape (B, T)
            Root mean squared error of each target's estimate.
        """
        n = self.n if n is None else n
        return np.column_stack([law.rmse(n) for law in self.laws(alphas)])

    def combine(self, per_target: np.ndarray) -> np.ndarray:
        """(B,) the single error objective from per-target errors (B, T), by ``aggregate`` (max or mean).

        Parameters
        ----------
        per_target : ndarray, (B, T)
            Per-target errors (reward's unit per customer).

        Returns
        -------
        ndarray, (B,)
        """
        return combine_targets(per_target, self.aggregate)

    def evaluate(self, alphas) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Both objectives of a batch of mixtures.

        Parameters
        ----------
        alphas : array_like, shape (B, K)
            Mixtures on the simplex, one per row.

        Returns
        -------
        revenue : ndarray, shape (B,)
            Expected reward per customer.
        error : ndarray, shape (B,)
            Per-target errors combined by ``aggregate`` (max or mean).
        per_target : ndarray, shape (B, T)
            Error of each target at log size ``n``.
        """
        per = self.rmse(alphas)
        return self.revenue(alphas), self.combine(per), per


class SampleObjectives(BatchObjectives):
    """Objectives computed on an ``EvaluationSample``: its names, and revenue as a linear map of the mixture."""

    sample: EvaluationSample
    component_values: np.ndarray

    @property
    def component_names(self) -> tuple[str, ...]:
        """(K,) the sample's component names."""
        return self.sample.component_names

    @property
    def target_names(self) -> tuple[str, ...]:
        """(T,) the sample's target names."""
        return self.sample.target_names

    def revenue(self, alphas) -> np.ndarray:
        """Expected reward per customer of each mixture, (B,).

        Parameters
        ----------
        alphas : array_like, (B, K) or (K,)
            Mixtures, one per row.

        Returns
        -------
        ndarray, (B,)
            Reward's unit per customer.
        """
        return np.atleast_2d(alphas) @ self.component_values


class MixtureObjectives(SampleObjectives):
    """Revenue and OPE error of a mixture, for a batch of mixtures at once.

    Parameters
    ----------
    sample : EvaluationSample
    estimator : EstimatorSpec
    n : int
        Log size at which the OPE error is measured.
    aggregate : "max" or "mean"
        How per-target RMSEs combine into the single error objective.
    chunk_rows : int, optional
        Rows per chunk of the moment sums (default from ``CHUNK_ELEMENTS``).
    threads : int, optional
        Threads for the chunks (default: up to 4).

    Raises
    ------
    CouponmixError
        An unknown ``aggregate``, n, chunk_rows or threads not positive, an estimator without an error formula,
        or one whose reward model (fixed, or fitted on the log) does not match the sample's.
    """

    def __init__(
        self,
        sample: EvaluationSample,
        estimator: EstimatorSpec,
        n: int,
        aggregate: str = "max",
        chunk_rows: int | None = None,
        threads: int | None = None,
    ):
        check_aggregate(aggregate)
        self.sample = sample
        self.estimator = estimator
        self.n = check_positive_int(n, "n")
        self.aggregate = aggregate
        self.chunk_rows = None if chunk_rows is None else check_positive_int(chunk_rows, "chunk_rows")
        self.component_values = sample.component_values
        if not estimator.has_error_formula:
            raise CouponmixError(f"{estimator.label} has no error formula: measure it by Monte Carlo (validate)")
        if estimator.uses_reward_model and estimator.fits_reward_model != sample.q_fitted_on_log:
            raise CouponmixError(
                f"{estimator.label} needs an evaluation sample whose reward model is "
                + (
                    "fitted on the log (see fitted_reward.pilot_samples)"
                    if estimator.fits_reward_model
                    else "fixed before logging, not one fitted on the log"
                )
            )
        use_q = estimator.uses_reward_model
        if use_q not in sample._groups:  # row sets depend only on whether q is used: share them
            sample._groups[use_q] = self._group_targets(sample, sample.q if use_q else None)
        self.groups = sample._groups[use_q]
        threads = min(default_threads(), 4) if threads is None else check_positive_int(threads, "threads")
        self._executor = shared_executor(threads) if threads > 1 else None

    @staticmethod
    def _group_targets(sample: EvaluationSample, q: np.ndarray | None) -> list[tuple[list[int], RowTerms]]:
        """Row sets to evaluate: one shared by all targets, except targets whose own merged rows are few.

        A deterministic target merges into a handful of rows on its own but would cost a full pass
        over the shared rows; a target with continuous probabilities gains nothing from its own set.
        """

        def build(ts: list[int]) -> RowTerms:
            """The row terms of targets ``ts`` (their merge index cached on the sample)."""
            key = tuple(ts)
            if key not in sample._merge_index:
                sample._merge_index[key] = RowTerms.merge_index(sample.comp_probs, sample.target_probs[ts])
            split = sample.model_error is not None and not sample.q_fitted_on_log and sample.q is not None
            return RowTerms.build(
                sample.comp_probs,
                sample.target_probs[ts],
                sample.mu,
                sample.m2,
                q,
                sample._merge_index[key],
                q_model=sample.q if split else None,
                delta=sample.model_error if split else None,
                observed=sample.observed,
            )

        t_all = list(range(len(sample.target_names)))
        alone = {t: build([t]) for t in t_all}
        shared_t = [t for t in t_all if alone[t].n_rows > SMALL_GROUP_SHARE * sample.size]
        groups = [([t], alone[t]) for t in t_all if t not in shared_t]
        if len(shared_t) == 1:
            groups.append((shared_t, alone[shared_t[0]]))
        elif shared_t:
            groups.append((shared_t, build(shared_t)))
        return groups

    @property
    def n_rows(self) -> int:
        """Rows processed per mixture evaluation, over all row sets."""
        return sum(rows.n_rows * len(ts) for ts, rows in self.groups)

    def moments(self, alphas) -> Moments:
        """The sufficient statistics of every target's error law for each mixture (see ``Moments``).

        Parameters
        ----------
        alphas : array_like, (B, K) or (K,)
            Mixtures, one per row.

        Returns
        -------
        Moments
            ``sums``: moment name to (T, B) array.
        """
        return group_moments(self.groups, len(self.target_names), alphas, self.estimator, self.chunk_rows, self._executor)

    def laws(self, alphas) -> list[ErrorLaw]:
        """The error law of every target for each mixture.

        Parameters
        ----------
        alphas : array_like, (B, K) or (K,)
            Mixtures, one per row.

        Returns
        -------
        list of ErrorLaw, (T,)
            Each over the batch (B,).
        """
        return laws_from_moments(self.moments(alphas), self.estimator)

    def describe(self, alpha: ArrayLike) -> dict[str, LawSummary]:
        """Per-target breakdown at one mixture, for summaries and reports.

        Parameters
        ----------
        alpha : array_like, (K,)
            The mixture.

        Returns
        -------
        dict of str to LawSummary
            By target name, at log size ``n``, with ``true_value`` set.
        """

        a = np.asarray(alpha, dtype=float)[None, :]
        out = {}
        for name, value, law in zip(self.target_names, self.sample.target_values, self.laws(a)):
            out[name] = dataclasses.replace(law.summary(self.n, 0), true_value=float(value))
        return out

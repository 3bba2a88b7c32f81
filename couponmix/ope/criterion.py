"""The decision's error criterion: one rule, used by the front, the recommendation, the planner, the
curves and every number a report shows.

For each mixture and each future policy (target), the error is the lowest, over a set of candidate
estimators with an exact error formula, of

    robust RMSE(n) = sqrt( s^2 / n + (|computed bias| + model-error bound)^2 )

(``ErrorLaw.robust_rmse``): the sampling error s / sqrt(n), which the log itself shows and which falls
like 1 / sqrt(n); the bias the reward model predicts (clipping, switching, actions a component never
plays); and a bound on the rest of the bias, which rests on the reward model where the log does not
check it. Taking the minimum per target is legitimate because the estimator is chosen from the
mixture and the target before any log exists; the estimator that attains it is reported with it.

``error="simulator"`` uses the exact RMSE with the simulator's true bias instead: it is what a
simulation can check, not what a team with real logs can promise, and serves validation and tests.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from couponmix.errors import CouponmixError
from couponmix.infra.records import OPTIONAL, Record
from couponmix.infra.validation import check_positive_int
from couponmix.ope.estimators import EstimatorSpec
from couponmix.ope.montecarlo import Z95
from couponmix.ope.objectives import (
    ErrorLaw,
    EvaluationSample,
    MixtureObjectives,
    Moments,
    SampleObjectives,
    can_share,
    check_aggregate,
    joint_moments,
    laws_from_moments,
)
from couponmix.ope.streaming import DEFAULT_CHUNK, StreamingObjectives

__all__ = [
    "ERRORS",
    "Criterion",
    "EstimatorErrors",
    "Population",
    "PromiseUncertainty",
    "SelectedLaw",
    "SimulatorError",
    "TargetError",
    "moment_passes",
]

ERRORS = ("robust", "simulator")
#: a target counts as shown by the logs when the balanced mixture plays all but this much of its probability
SUPPORT_TOL = 1e-9


@dataclass(kw_only=True)
class SimulatorError(Record):
    """The chosen estimator's error against the simulator's truth: what a simulation can check, not what a
    team with real logs can know (on a calibrated world, the calibrated model stands in for the truth).
    """

    rmse: float  #: exact RMSE (reward's unit per customer)
    bias: float  #: exact bias (reward's unit per customer)
    model_bias: float  #: the part of the bias due to the reward model (reward's unit per customer)


@dataclass(kw_only=True)
class TargetError(Record):
    """One future policy's error under the criterion, at one mixture and log size: the estimator it chooses
    and the parts of its error (``SelectedLaw.summary``, ``Criterion.describe``). Errors and biases are in the
    reward's unit per customer.
    """

    #: the policy's value per customer on the evaluation sample (``Criterion.describe`` only)
    true_value: float | None = field(default=None, metadata=OPTIONAL)
    estimator: str  #: the chosen estimator's name (``couponmix.ope.estimators``)
    estimator_plain: str  #: the chosen estimator in plain words
    estimator_label: str  #: its short label
    rmse: float  #: the criterion's error: a root mean squared error
    sampling_error: float  #: the part the log shows itself, a standard deviation falling like 1 / sqrt(n)
    computed_bias: float  #: the bias the formulas compute
    model_bias_bound: float  #: the bound on the bias resting on the reward model
    model_dependent: float  #: sqrt(rmse^2 - sampling_error^2): the part of the error that rests on the model
    support: float  #: share of the policy's probability on actions the mixture plays, in [0, 1]
    logs_show_all: bool  #: whether the mixture logs every action the policy takes
    simulator: SimulatorError  #: the same estimator against the simulator's truth
    #: standard error of ``rmse`` from the finite evaluation sample (the recommended mix only)
    promise_se: float | None = field(default=None, metadata=OPTIONAL)

    def interval_95(self) -> float:
        """The 95% half-width of the estimate, in the reward's unit (``interval_95``)."""
        return float(interval_95(self.computed_bias, self.model_bias_bound, self.sampling_error))


@dataclass(kw_only=True)
class EstimatorErrors(Record):
    """One candidate estimator at one mixture, for every target (``Criterion.compare``)."""

    label: str  #: the estimator's short label
    plain: str  #: its name in plain words
    obp: str  #: obp's class (``EstimatorSpec.obp_name``)
    error: float  #: its error aggregated over the targets (the criterion's aggregate, reward's unit)
    targets: dict[str, TargetError]  #: per target name


@dataclass(kw_only=True)
class PromiseUncertainty(Record):
    """How much the promised errors depend on the finite evaluation sample (``Criterion.promise_uncertainty``;
    summary.json's ``promise_uncertainty``).
    """

    error_se: dict[str, float]  #: per future policy, the jackknife standard error of its promised error (reward's unit)
    relative: dict[str, float]  #: per future policy, that standard error as a share of its promised error
    #: the standard error of the revenue at the mixture (reward's unit per customer); without a reference mixture
    revenue_se: float | None = field(default=None, metadata=OPTIONAL)
    #: with a reference mixture: the standard error of the revenue given up against it (reward's unit per customer)
    revenue_cost_se: float | None = field(default=None, metadata=OPTIONAL)
    groups: int  #: jackknife groups
    sample_size: int  #: customers in the evaluation sample
    #: set by the study: the largest relative standard error
    max_relative: float | None = field(default=None, metadata=OPTIONAL)
    #: set by the study: the goal for ``max_relative``
    goal: float | None = field(default=None, metadata=OPTIONAL)
    #: set by the study: whether the goal is met
    enough: bool | None = field(default=None, metadata=OPTIONAL)
    #: set by the study: the evaluation sample (customers) that would meet the goal
    eval_size_for_goal: int | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True)
class SelectedLaw:
    """The error of one target under the criterion, for a batch of B mixtures: per candidate estimator
    (E of them) an ``ErrorLaw``, and the rule that picks the lowest. Errors are in the reward's unit per
    customer.
    """

    specs: tuple[EstimatorSpec, ...]  #: (E,) the candidate estimators
    laws: tuple[ErrorLaw, ...]  #: (E,) their laws, each over the batch (B,)
    robust: bool = True  #: True: rank by ``robust_rmse``; False: by the simulator's exact RMSE

    def per_estimator(self, n) -> np.ndarray:
        """(E, B) the criterion's RMSE of every candidate at log size n (infinite where it is undefined).

        Parameters
        ----------
        n : int
            Customers in the log.

        Returns
        -------
        ndarray, (E, B)
        """
        out = np.stack([law.robust_rmse(n) if self.robust else law.rmse(n) for law in self.laws])
        return np.where(np.isnan(out), np.inf, out)

    def choice(self, n) -> np.ndarray:
        """(B,) index of the estimator with the lowest error at log size n (the first among ties).

        Parameters
        ----------
        n : int
            Customers in the log.

        Returns
        -------
        ndarray of int, (B,)
            Indices into ``specs``.
        """
        return np.argmin(self.per_estimator(n), axis=0)

    def rmse(self, n) -> np.ndarray:
        """(B,) the criterion's error at log size n.

        Parameters
        ----------
        n : int
            Customers in the log.

        Returns
        -------
        ndarray, (B,)
            The lowest over the candidates (reward's unit per customer).
        """
        return self.per_estimator(n).min(axis=0)

    def mse(self, n) -> np.ndarray:
        """(B,) the criterion's mean squared error at log size n: ``rmse(n)`` squared (reward's unit squared).

        Parameters
        ----------
        n : int
            Customers in the log.

        Returns
        -------
        ndarray, (B,)
        """
        return self.rmse(n) ** 2

    @property
    def support(self) -> np.ndarray:
        """(B,) share of the target's probability on actions the mixture plays (from the balanced weights)."""
        balanced = [law.support for s, law in zip(self.specs, self.laws) if s.weights == "balanced" and s.weight_fn != "zero"]
        return np.max(balanced or [law.support for law in self.laws], axis=0)

    @property
    def supported(self) -> np.ndarray:
        """(B,) True everywhere: the robust error prices actions the logs never show as model-dependent
        bias instead of ruling them out. ``logs_show_all`` tells whether the logs show every action."""
        return np.ones(self.support.shape, dtype=bool)

    @property
    def logs_show_all(self) -> np.ndarray:
        """(B,) True where the mixture plays all but ``SUPPORT_TOL`` of the target's probability."""
        return self.support >= 1 - SUPPORT_TOL

    def log_size_for(self, tol: float) -> np.ndarray:
        """(B,) least n with the criterion's error <= tol (inf where no n suffices): the lowest over the
        candidates, each solved on its own law.

        Parameters
        ----------
        tol : float
            The error to reach (reward's unit per customer).

        Returns
        -------
        ndarray, (B,)
            Customers in the log (not rounded; inf where no n suffices).
        """
        out = np.full(self.support.shape, np.inf)
        for law in self.laws:
            out = np.minimum(out, law.log_size_for(tol, robust=self.robust))
        return out

    def summary(self, n: int, i: int) -> TargetError:
        """The chosen estimator of mixture ``i`` at log size n, its error and the parts of that error.

        Parameters
        ----------
        n : int
            Customers in the log.
        i : int
            The mixture's index in the batch (0 to B - 1).

        Returns
        -------
        TargetError
            Without ``true_value`` and ``promise_se``.
        """
        e = int(self.choice(n)[i])
        spec, law = self.specs[e], self.laws[e]
        sampling = float(law.sampling_error(n)[i])
        rmse = float(self.rmse(n)[i])
        return TargetError(
            estimator=spec.name,
            estimator_plain=spec.plain,
            estimator_label=spec.label,
            rmse=rmse,
            sampling_error=sampling,
            computed_bias=float(law.computed_bias(n)[i]),
            model_bias_bound=float(law.bound[i]),
            model_dependent=float(np.sqrt(max(rmse**2 - sampling**2, 0.0))),
            support=float(self.support[i]),
            logs_show_all=bool(self.logs_show_all[i]),
            simulator=SimulatorError(rmse=float(law.rmse(n)[i]), bias=float(law.bias(n)[i]), model_bias=float(law.model_bias[i])),
        )


def _moment_key(spec: EstimatorSpec) -> tuple:
    """Estimators that share every moment sum (IPS and SNIPS, DR and SNDR) are computed in one pass."""
    return (spec.weight_fn, spec.clip, spec.weights, spec.uses_reward_model)


def moment_passes(specs: Sequence[EstimatorSpec]) -> list[tuple[EstimatorSpec, list[EstimatorSpec]]]:
    """The passes over the moment sums the estimators need: (the estimator computed, the estimators its
    sums serve). The self-normalised member of a group needs a superset of the sums, so it is computed.

    Parameters
    ----------
    specs : sequence of EstimatorSpec

    Returns
    -------
    list of (EstimatorSpec, list of EstimatorSpec)
        One per group of estimators that share every moment sum, in the order the groups first appear.
    """
    groups: dict[tuple, list[EstimatorSpec]] = {}
    for s in specs:
        groups.setdefault(_moment_key(s), []).append(s)
    return [(next((s for s in members if s.self_normalised), members[0]), members) for members in groups.values()]


@dataclass(frozen=True)
class Population:
    """A moment source for ``Criterion``: a population of ``size`` customers drawn from ``scenario`` and
    streamed in chunks (``couponmix.ope.streaming``), instead of an evaluation sample held in memory.
    """

    scenario: object  #: the ``Scenario`` the customers are drawn from
    size: int  #: customers in the population
    seed: int = 0  #: seed of the population's random streams
    chunk_size: int | None = None  #: customers per chunk (None: ``streaming.DEFAULT_CHUNK``)
    backend: object = None  #: the ``Backend`` where chunks are computed (None: this process)
    grouping: object = None  #: a ``Grouping``: customer groups each logged with its own mixture; batches are then (B, G, K)
    #: where the reward model's error is measured (``run``'s evaluation sample), then applied to the population by
    #: propensity cell; None: each chunk's own customers
    model_error_from: EvaluationSample | None = None


class Criterion(SampleObjectives):
    """Revenue and the decision's error for a batch of mixtures, with the same interface as
    ``MixtureObjectives`` (``evaluate``, ``laws``, ``revenue``, ``rmse``, ``describe``), so that the
    front, the recommendation, the planner, the curves, ``evaluate`` and ``validate`` all use one rule.

    Parameters
    ----------
    sample : EvaluationSample or Population
        Where the moments come from: customers held in memory (what ``run`` uses), or a population streamed
        in chunks (``evaluate`` on millions of customers; ``assess`` is then the way in, one pass per call).
    specs : sequence of EstimatorSpec
        The candidates (one forces that estimator). Each needs an exact formula.
    n : int
        Log size at which errors are compared.
    aggregate : "max" or "mean"
        How per-target errors combine into the front's single error objective.
    error : "robust" or "simulator"
    threads : int, optional
        Threads for the in-memory moment sums.

    Raises
    ------
    CouponmixError
        No estimator, n not positive, an unknown ``aggregate`` or ``error``, or the robust error on a sample
        without the reward model's error (``sample.model_error``).
    """

    def __init__(
        self,
        sample: EvaluationSample | Population,
        specs: Sequence[EstimatorSpec],
        n: int,
        aggregate: str = "max",
        error: str = "robust",
        threads: int | None = None,
    ):
        specs = list(dict((s.name, s) for s in specs).values())
        if not specs:
            raise CouponmixError("the criterion needs at least one estimator")
        if error not in ERRORS:
            raise CouponmixError(f"error must be one of {', '.join(ERRORS)}, got {error!r}")
        self.specs = tuple(specs)
        self.n = check_positive_int(n, "n")
        self.aggregate = check_aggregate(aggregate)
        self.error = error
        passes = moment_passes(specs)
        self._members = [members for _, members in passes]
        self.stream = None
        if isinstance(sample, Population):
            pop = sample
            self.stream = StreamingObjectives(
                pop.scenario,  # type: ignore[arg-type]
                [rep for rep, _ in passes],
                n,
                pop.size,
                pop.seed,
                DEFAULT_CHUNK if pop.chunk_size is None else pop.chunk_size,
                pop.backend,
                aggregate,
                grouping=pop.grouping,  # type: ignore[arg-type]
                model_error_from=pop.model_error_from,
            )
            self._passes: list = []
            return
        if error == "robust" and sample.model_error is None:
            raise CouponmixError("the robust error needs the reward model's error per action (sample.model_error)")
        self.sample = sample
        self.component_values = sample.component_values
        self._passes = [(MixtureObjectives(sample, rep, n, aggregate, threads=threads), members) for rep, members in passes]
        self._share = can_share([obj for obj, _ in self._passes])  # one pass over each chunk serves every estimator
        self._jackknife_groups: dict[int, tuple[np.ndarray, list[Criterion]]] = {}  # built once per number of groups

    # ----- the MixtureObjectives interface (names, revenue, rmse, evaluate: from SampleObjectives) -----------
    @property
    def component_names(self) -> tuple[str, ...]:
        """(K,) the logging components' names (the streamed population's, or the sample's)."""
        return self.stream.component_names if self.stream is not None else self.sample.component_names

    @property
    def target_names(self) -> tuple[str, ...]:
        """(T,) the future policies' names (the streamed population's, or the sample's)."""
        return self.stream.target_names if self.stream is not None else self.sample.target_names

    @property
    def target_values(self) -> np.ndarray:
        """(T,) the targets' values on the customers the moments are over (a streamed population's: after
        its first pass)."""
        if self.stream is None:
            return self.sample.target_values
        if self.stream.target_values is None:
            raise CouponmixError("a streamed population's values are known after its first pass (assess)")
        return self.stream.target_values

    @property
    def estimator(self) -> EstimatorSpec | None:
        """The forced estimator when there is one candidate, else None."""
        return self.specs[0] if len(self.specs) == 1 else None

    def _moments(self, alphas) -> list:
        """The moment sums of every pass (one ``Moments`` per group of estimators sharing them, its sums (T, B))."""
        if self.stream is not None:
            return self.stream.pass_moments(alphas)[0]
        objs = [obj for obj, _ in self._passes]
        return joint_moments(objs, alphas) if self._share else [obj.moments(alphas) for obj in objs]

    def assess(self, alphas, on_chunk=None) -> tuple[np.ndarray, list[SelectedLaw]]:
        """Revenue (B,) and each target's ``SelectedLaw`` over a batch of mixtures, in one pass over the moments'
        source. ``alphas`` is (B, K), or (B, G, K) for a streamed population with a grouping. ``on_chunk(i)``
        reports a streamed population's chunks as they are done.

        Parameters
        ----------
        alphas : array_like, (B, K) or (K,); with a grouping (B, G, K) or (G, K)
            Mixtures, one per row (per group with a grouping).
        on_chunk : callable, optional
            Called with each chunk's index (a streamed population only).

        Returns
        -------
        revenue : ndarray, (B,)
            Expected reward per customer (reward's unit).
        laws : list of SelectedLaw, (T,)
            One per target, each over the batch.
        """
        if self.stream is None:
            a = np.atleast_2d(np.asarray(alphas, dtype=float))
            return self.revenue(a), self.laws(a)
        found, values = self.stream.pass_moments(alphas, on_chunk)
        return self.stream.revenue_of(alphas, values), self._laws_from(found)

    def revenue(self, alphas) -> np.ndarray:
        """Expected reward per customer of each mixture, (B,) (a streamed population: see ``assess``).

        Parameters
        ----------
        alphas : array_like, (B, K) or (K,)
            Mixtures, one per row.

        Returns
        -------
        ndarray, (B,)
            Reward's unit per customer.
        """
        if self.stream is not None:
            return self.assess(alphas)[0]
        return np.atleast_2d(alphas) @ self.component_values

    def laws(self, alphas) -> list[SelectedLaw]:
        """One ``SelectedLaw`` per target over the batch of mixtures.

        Parameters
        ----------
        alphas : array_like, (B, K) or (K,)
            Mixtures, one per row.

        Returns
        -------
        list of SelectedLaw, (T,)
        """
        if self.stream is not None:
            return self._laws_from(self.stream.pass_moments(alphas)[0])
        alphas = np.atleast_2d(np.asarray(alphas, dtype=float))
        return self._laws_from(self._moments(alphas))

    def _laws_from(self, pass_moments: list) -> list[SelectedLaw]:
        """(T,) one ``SelectedLaw`` per target from the passes' moment sums (one ``Moments`` per pass)."""
        by_name: dict[str, list[ErrorLaw]] = {}
        for m, members in zip(pass_moments, self._members):
            for s in members:
                by_name[s.name] = laws_from_moments(m, s)
        robust = self.error == "robust"
        return [SelectedLaw(self.specs, tuple(by_name[s.name][t] for s in self.specs), robust) for t in range(len(self.target_names))]

    def describe(self, alpha: ArrayLike, n: int | None = None) -> dict[str, TargetError]:
        """Per target at one mixture: its value, the chosen estimator, the error and its parts.

        Parameters
        ----------
        alpha : array_like, (K,)
            The mixture.
        n : int, optional
            Customers in the log (default: the criterion's ``n``).

        Returns
        -------
        dict of str to TargetError
            By target name, with ``true_value`` set.
        """
        n = self.n if n is None else n
        a = np.asarray(alpha, dtype=float)[None, :]
        out = {}
        for t, v, law in zip(self.target_names, self.target_values, self.laws(a)):
            out[t] = law.summary(n, 0)
            out[t].true_value = float(v)
        return out

    def compare(self, alpha: ArrayLike, n: int | None = None) -> dict[str, EstimatorErrors]:
        """Every candidate at one mixture: per target its criterion error, sampling error, bias parts and the
        simulator's exact RMSE (for the methods section).

        Parameters
        ----------
        alpha : array_like, (K,)
            The mixture.
        n : int, optional
            Customers in the log (default: the criterion's ``n``).

        Returns
        -------
        dict of str to EstimatorErrors
            By estimator name (``EstimatorSpec.name``), in the criterion's order.
        """
        n = self.n if n is None else n
        laws = self.laws(np.asarray(alpha, dtype=float)[None, :])
        out = {}
        for e, spec in enumerate(self.specs):
            per = {}
            for t, law in zip(self.target_names, laws):
                one = SelectedLaw((spec,), (law.laws[e],), law.robust)
                per[t] = one.summary(n, 0)
            worst = self.combine(np.array([[d.rmse for d in per.values()]]))[0]
            out[spec.name] = EstimatorErrors(label=spec.label, plain=spec.plain, obp=spec.obp_name(), error=float(worst), targets=per)
        return out

    def promise_uncertainty(
        self, alpha: ArrayLike, groups: int = 10, n: int | None = None, reference: ArrayLike | None = None
    ) -> PromiseUncertainty:
        """How much the promised errors themselves depend on the evaluation sample: delete-a-group jackknife
        standard errors (the delta method on the sample means, computed by regrouping them) of each target's
        error and of the revenue at ``alpha``. An evaluation sample held in memory only (not a ``Population``).

        Parameters

        ----------
        alpha : array_like, (K,)
            The mixture.
        groups : int
            Jackknife groups the evaluation sample is split into (at least 2).
        n : int, optional
            Customers in the log (default: the criterion's ``n``).
        reference : array_like, (K,), optional
            A mixture to compare the revenue against.

        Returns
        -------
        PromiseUncertainty
            ``revenue_se``, or with ``reference`` ``revenue_cost_se``, the standard error of
            revenue(reference) - revenue(alpha); the study's fields unset.

        Raises
        ------
        CouponmixError
            Fewer than 2 groups.
        """
        ref = None if reference is None else np.asarray(reference, dtype=float)
        n = self.n if n is None else n
        groups = check_positive_int(groups, "groups", minimum=2)
        a = np.asarray(alpha, dtype=float)[None, :]
        m = self.sample.size
        loo_list: list[list[float]] = []
        loo_rev_list: list[float] = []
        for combined, rev in self._leave_one_out(a if ref is None else np.vstack([a, ref[None]]), groups):
            loo_list.append([float(law.rmse(n)[0]) for law in self._laws_from(combined)])
            loo_rev_list.append(float(rev[0]) - (0.0 if ref is None else float(rev[1])))
        loo, loo_rev = np.array(loo_list), np.array(loo_rev_list)
        scale = (groups - 1) / groups
        se = np.sqrt(scale * ((loo - loo.mean(axis=0)) ** 2).sum(axis=0))
        full = np.array([float(law.rmse(n)[0]) for law in self.laws(a)])
        rev_se = float(np.sqrt(scale * ((loo_rev - loo_rev.mean()) ** 2).sum()))
        return PromiseUncertainty(
            error_se=dict(zip(self.target_names, se.tolist())),
            relative=dict(zip(self.target_names, (se / np.maximum(full, 1e-300)).tolist())),
            revenue_se=rev_se if ref is None else None,
            revenue_cost_se=None if ref is None else rev_se,
            groups=groups,
            sample_size=m,
        )

    def _leave_one_out(self, alphas: np.ndarray, groups: int) -> Iterator[tuple[list, np.ndarray]]:
        """Delete-a-group jackknife replicates of the evaluation sample (split in ``groups`` consecutive groups):
        for each group left out, the other groups' moments (one ``Moments`` per pass, combined by their customer
        weights) and revenue (B,) at ``alphas`` (B, K). Each group's moments are computed once."""
        if self.stream is not None:
            raise CouponmixError("the jackknife needs an evaluation sample held in memory, not a streamed population")
        if groups not in self._jackknife_groups:
            idx = np.array_split(np.arange(self.sample.size), groups)
            subs = [Criterion(self.sample.subset(g), self.specs, self.n, self.aggregate, self.error) for g in idx]
            self._jackknife_groups[groups] = (np.array([len(g) for g in idx], float), subs)
        sizes, subs = self._jackknife_groups[groups]
        parts = [sub._moments(alphas) for sub in subs]
        revs = [sub.revenue(alphas) for sub in subs]
        for j in range(groups):
            keep = [i for i in range(groups) if i != j]
            w = sizes[keep] / sizes[keep].sum()
            combined = [Moments.combine([parts[i][p] for i in keep], w) for p in range(len(self._passes))]
            yield combined, w @ np.array(revs)[keep]

    def jackknife(self, alphas: ArrayLike, groups: int = 10) -> list[tuple[np.ndarray, np.ndarray]]:
        """The criterion's objectives under each delete-a-group jackknife replicate of the evaluation sample (as in
        ``promise_uncertainty``): how much anything decided from them depends on which customers the sample
        holds. An evaluation sample held in memory only.

        Parameters
        ----------
        alphas : array_like, (B, K)
            Mixtures, one per row.
        groups : int
            Jackknife groups (at least 2).

        Returns
        -------
        list of (ndarray, ndarray), (groups,)
            Per replicate: the revenue (B,) and the error aggregated over the targets (B,) at the criterion's
            log size, both in the reward's unit per customer.
        """
        groups = check_positive_int(groups, "groups", minimum=2)
        a = np.atleast_2d(np.asarray(alphas, dtype=float))
        out = []
        for combined, rev in self._leave_one_out(a, groups):
            per = np.column_stack([law.rmse(self.n) for law in self._laws_from(combined)])
            out.append((rev, self.combine(per)))
        return out

    @property
    def label(self) -> str:
        """The criterion in plain words."""
        if self.estimator is not None:
            what = f"estimating with {self.estimator.plain}"
        else:
            what = f"estimating each future policy with the most precise of {len(self.specs)} estimators"
        how = (
            (
                "error that holds even if the revenue model, where the log does not check it, is as wrong as on "
                "similar held-out customers and always in the same direction"
            )
            if self.error == "robust"
            else "error measured against the simulator's truth"
        )
        return f"{what}; {how}"


def interval_95(computed_bias: ArrayLike, model_bias_bound: ArrayLike, sampling_error: ArrayLike) -> np.ndarray:
    """The 95% half-width of a target's estimate, in the reward's unit (any matching shapes): the bias the
    formulas compute, plus the bound on the bias resting on the model, plus 1.96 sampling standard errors.
    Whenever the bias is within the bound, the estimate lies this close to the value at least 95% of the time
    (the sampling error is normal to first order).

    Parameters
    ----------
    computed_bias, model_bias_bound, sampling_error : array_like
        Reward's unit per customer, shapes that broadcast together.

    Returns
    -------
    ndarray
        Their broadcast shape, reward's unit per customer.
    """
    return np.abs(computed_bias) + np.asarray(model_bias_bound) + Z95 * np.asarray(sampling_error)


def widest_share(shares) -> float | None:
    """The widest 95% half-width as a percent of its policy's value, over future policies; None when any
    value is 0 (no share) or there is none.

    Parameters
    ----------
    shares : iterable of float or None
        Per future policy, its widest half-width as a percent of its value (None where the value is 0).

    Returns
    -------
    float or None
        A percent.
    """

    shares = list(shares)
    return None if not shares or any(v is None for v in shares) else max(shares)

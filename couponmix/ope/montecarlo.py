"""Monte Carlo check of the analytic error: simulate R independent logs, run obp, compare.

For each replication r a fresh log of n customers is drawn from the scenario
(covariates from its law, component, action, reward) under the mixture alpha;
every estimator in the list estimates V(pi_e) for each target with obp. The
empirical MSE against the true value, its standard error (std of the squared
errors / sqrt(R)), the analytic RMSE, and the coverage of 95% intervals are
reported. Intervals are mean +/- 1.96 sd / sqrt(n) of the per-customer
influence values (plain estimators: the per-customer terms; self-normalised:
their delta-method linearisation); obp's own bootstrap intervals for the
multi-logger estimators are broken in 0.5.7 (they pass pscore= where
pscore_avg= is needed). DR with a model fitted on the log refits obp's
RegressionModel (cross-fitted) on every replication; its analytic RMSE is the
pilot-model approximation of ``fitted_reward``.

Replication r always uses the random stream (seed, "replication", r), so the
result does not depend on how many worker processes share the work. Workers are
spawned, not forked (LightGBM's OpenMP threads do not survive a fork).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np

from couponmix.dataset.logs import simulate_log
from couponmix.dataset.scenario import Scenario
from couponmix.errors import CouponmixError
from couponmix.infra.backend import Backend, LocalBackend
from couponmix.infra.seeding import fit_seed, stream
from couponmix.infra.threads import default_threads
from couponmix.infra.validation import check_positive_int
from couponmix.ope.estimators import EstimatorSpec
from couponmix.ope.fitted_reward import FittedModelObjectives, cross_fitted, pilot_samples
from couponmix.ope.objectives import (
    DEFAULT_EVAL_SIZE,
    EvaluationSample,
    LawSummary,
    MixtureObjectives,
    Moments,
    laws_from_moments,
    reward_model_on,
)
from couponmix.policy.contextual import ContextualMixture, Grouping
from couponmix.policy.mixture import Mixture

__all__ = [
    "obp_estimate",
    "TRUTH_SIZE",
    "TRUTH_CHUNK",
    "Z95",
    "TargetCheck",
    "true_values",
    "row_weights",
    "interval",
    "influence",
    "monte_carlo",
]

TRUTH_SIZE = 2_000_000
TRUTH_CHUNK = 250_000
Z95 = 1.959963984540054


@dataclass(frozen=True)
class TargetCheck:
    """One estimator on one target: Monte Carlo over simulated logs against the analytic error (``monte_carlo``).

    Values are in the reward's unit per customer (MSEs in its square).

    Attributes
    ----------
    true_value, mean_estimate, bias : float
        V(pi_e) on a large sample, the mean estimate over the replications, and their difference.
    mc_mse, mc_mse_se, mc_rmse, mc_rmse_se : float
        The Monte Carlo MSE and RMSE with their standard errors.
    analytic_rmse, analytic_bias : float or None
        The formula's RMSE and bias (None where there is no formula).
    analytic_mse_se, analytic_bias_se : float or None
        Standard errors of the analytic MSE and bias (0 where the formula is exact).
    z_score : float or None
        (mc_mse - analytic_rmse^2) / sqrt(mc_mse_se^2 + analytic_mse_se^2).
    coverage, coverage_se : float
        Share of the replications' 95% intervals that contain the true value (a fraction), and its standard error.
    """

    true_value: float
    mean_estimate: float
    bias: float
    mc_mse: float
    mc_mse_se: float
    mc_rmse: float
    mc_rmse_se: float
    # None where no formula exists (naive DR with a model fitted on the log): Monte Carlo is the measure
    analytic_rmse: float | None
    analytic_bias: float | None
    analytic_mse_se: float | None  # 0 where the analytic error is exact; else the approximation's standard error
    analytic_bias_se: float | None
    z_score: float | None  # (mc_mse - analytic_mse) / sqrt(mc_mse_se^2 + analytic_mse_se^2)
    coverage: float  # share of 95% intervals that contain the true value
    coverage_se: float

    def to_dict(self) -> dict:
        """The fields as a plain dict."""
        return asdict(self)


def true_values(scenario: Scenario, seed: int, size: int = TRUTH_SIZE) -> dict[str, float]:
    """V(pi_e) for every target on a large sample, in chunks (bounded memory).

    Parameters
    ----------
    scenario : Scenario
    seed : int
        Seed of the sample's random streams ("truth").
    size : int
        Customers in the sample, drawn in chunks of ``TRUTH_CHUNK``.

    Returns
    -------
    dict of str to float
        Each target's value: its mean reward per customer under the scenario's mu (reward's unit).
    """
    targets = scenario.targets()
    totals = dict.fromkeys(targets, 0.0)
    for c, start in enumerate(range(0, size, TRUTH_CHUNK)):
        x = scenario.sample_covariates(min(TRUTH_CHUNK, size - start), stream(seed, "truth", c))
        mu = scenario.mu(x)
        for name, pol in targets.items():
            totals[name] += float(np.einsum("ma,ma->", pol(x), mu))
    return {name: total / size for name, total in totals.items()}


def row_weights(spec: EstimatorSpec, log: Mapping[str, Any], pe: np.ndarray) -> np.ndarray:
    """The estimator's weight c of each logged row: its weight function of pi_e(a_i|x_i) over the
    balanced propensity (the acting component's own for naive weights).

    Parameters
    ----------
    spec : EstimatorSpec
    log : dict
        An obp-format log of n customers: ``action`` (n,), ``reward`` (n,), ``pscore`` and ``pscore_avg`` (n,)
        (``pscore_avg`` None when the balanced propensity cannot be rebuilt).
    pe : ndarray, (n, A)
        The target policy's probabilities at the logged customers.

    Returns
    -------
    ndarray, (n,)

    Raises
    ------
    CouponmixError
        A weighted estimator on a log without the balanced propensity.
    """
    a = log["action"]
    p = log["pscore"] if spec.weights == "naive" else log["pscore_avg"]
    if p is None:  # a log whose balanced propensity cannot be rebuilt: only estimators without weights run
        if spec.weight_fn != "zero":
            raise CouponmixError(f"{spec.name} needs the balanced propensity, which this log does not give")
        p = np.ones(len(a))
    return spec.weight(pe[np.arange(len(a)), a] / p)


def interval(spec: EstimatorSpec, log: Mapping[str, Any], pe: np.ndarray, q: np.ndarray | None) -> tuple[float, float]:
    """Point estimate and the half-width of its 95% interval, from the per-customer terms (``influence``).

    Parameters
    ----------
    spec : EstimatorSpec
    log : dict
        An obp-format log of n customers: ``action`` (n,), ``reward`` (n,), ``pscore`` and ``pscore_avg`` (n,)
        (``pscore_avg`` None when the balanced propensity cannot be rebuilt).
    pe : ndarray, (n, A)
        The target policy's probabilities at the logged customers.
    q : ndarray, (n, A), optional
        The reward model's predictions (reward's unit), for estimators that use one.

    Returns
    -------
    (float, float)
        The estimate and the half-width, reward's unit per customer.

    Raises
    ------
    CouponmixError
        As ``influence``.
    """
    est, phi = influence(spec, log, pe, q)
    return est, float(Z95 * phi.std(ddof=1) / np.sqrt(len(phi)))


def influence(spec: EstimatorSpec, log: Mapping[str, Any], pe: np.ndarray, q: np.ndarray | None) -> tuple[float, np.ndarray]:
    """(point estimate, per-customer terms phi (n,)): the estimate is mean(phi) for plain estimators; for
    self-normalised ones phi is the delta method's linearisation, whose spread gives the standard error.
    The terms of two estimates on one log give the standard error of their difference.

    Parameters
    ----------
    spec : EstimatorSpec
    log : dict
        An obp-format log of n customers: ``action`` (n,), ``reward`` (n,), ``pscore`` and ``pscore_avg`` (n,)
        (``pscore_avg`` None when the balanced propensity cannot be rebuilt).
    pe : ndarray, (n, A)
        The target policy's probabilities at the logged customers.
    q : ndarray, (n, A), optional
        The reward model's predictions (reward's unit), for estimators that use one.

    Returns
    -------
    (float, ndarray (n,))
        The estimate and the terms phi, reward's unit per customer.

    Raises
    ------
    CouponmixError
        An estimator that needs a reward model without ``q``, or weights without the balanced propensity.
    """
    rows = np.arange(len(log["action"]))
    a = log["action"]
    c = row_weights(spec, log, pe)
    if spec.uses_reward_model:
        if q is None:
            raise CouponmixError(f"{spec.name} needs a reward model")
        d = (pe * q).sum(axis=1)
        e = log["reward"] - q[rows, a]
    else:
        d, e = np.zeros(len(a)), log["reward"]
    if spec.self_normalised:
        ratio = np.mean(c * e) / np.mean(c)
        est = d.mean() + ratio
        phi = d + (c * e - ratio * c) / np.mean(c)
    else:
        phi = d + c * e
        est = phi.mean()
    return float(est), phi


def obp_estimate(spec: EstimatorSpec, log: Mapping[str, Any], pe: np.ndarray, q: np.ndarray | None) -> tuple[float, float]:
    """obp's point estimate and our 95% half-width (obp's own interval is broken for multi-logger estimators);
    our point estimate, from the same per-customer terms as the interval, must equal obp's.

    Parameters
    ----------
    spec, log, pe, q
        As for ``interval``.

    Returns
    -------
    (float, float)
        obp's estimate and the 95% half-width, reward's unit per customer.

    Raises
    ------
    CouponmixError
        As ``influence``.
    RuntimeError
        The two point estimates differ (beyond 1e-9).
    """
    mine, half = interval(spec, log, pe, q)
    theirs = spec.estimate(log, pe, q)
    if not np.isclose(mine, theirs, rtol=1e-9, atol=1e-9):
        raise RuntimeError(f"{spec.name}: own point estimate {mine} differs from obp's {theirs}")
    return float(theirs), float(half)


def _logging_policy(scenario, alpha, contextual):
    """The mixture logs are drawn from: one for everyone, or ``contextual`` = (grouping, group mixtures (G, K))."""
    if contextual is None:
        return Mixture(scenario.components(), alpha)
    return ContextualMixture(scenario.components(), scenario, contextual[0], contextual[1])


def contextual_describe(
    sample: EvaluationSample, scenario, spec: EstimatorSpec, n: int, grouping: Grouping, alphas: np.ndarray
) -> dict[str, LawSummary]:
    """``MixtureObjectives.describe`` for a contextual mixture: group g's customers of ``sample`` at
    ``alphas[g]``, their moments combined by share (exact, as in ``decide.contextual.ContextualCriterion``).

    Parameters
    ----------
    sample : EvaluationSample
        With covariates.
    scenario : Scenario
        Puts the sample's customers in their groups.
    spec : EstimatorSpec
    n : int
        Log size (customers).
    grouping : Grouping
        G groups.
    alphas : ndarray, (G, K)
        Each group's mixture weights.

    Returns
    -------
    dict of str to LawSummary
        Per target, its true value and error description at log size n (reward's unit per customer).

    Raises
    ------
    CouponmixError
        A sample without covariates.
    """
    if sample.x is None:
        raise CouponmixError("a contextual mixture needs the evaluation sample's covariates")
    group = grouping.group_of(scenario, sample.x)
    parts, shares = [], []
    for g in range(grouping.size):
        idx = np.flatnonzero(group == g)
        if idx.size:
            parts.append(MixtureObjectives(sample.subset(idx), spec, n, threads=1).moments(alphas[g][None]))
            shares.append(idx.size / sample.size)
    laws = laws_from_moments(Moments.combine(parts, shares), spec)
    return {
        name: dataclasses.replace(law.summary(n, 0), true_value=float(v))
        for name, v, law in zip(sample.target_names, sample.target_values, laws)
    }


def _replications(scenario, alpha, specs, n, seed, reps: range, contextual=None):
    """obp's estimates and our interval half-widths for replications ``reps``: arrays (len(reps), S, T).

    Our own point estimate (from the same per-customer terms as the interval) must equal obp's."""
    targets = scenario.targets()
    mixture = _logging_policy(scenario, alpha, contextual)
    est = np.empty((len(reps), len(specs), len(targets)))
    half = np.empty_like(est)
    for i, r in enumerate(reps):
        log = simulate_log(scenario, mixture, n, seed, replication=r)
        x = log["context"]
        fixed = any(s.uses_reward_model and not s.fits_reward_model for s in specs)
        q, _ = reward_model_on(scenario, x) if fixed else (None, "")
        # one cross-fitted model per log, shared by every target and weighting that uses it
        q_fit = cross_fitted(log, fit_seed(seed, 0, r)) if any(s.fits_reward_model for s in specs) else None
        for t, pol in enumerate(targets.values()):
            pe = pol(x)
            for j, spec in enumerate(specs):
                q_spec = q_fit if spec.fits_reward_model else q
                est[i, j, t], half[i, j, t] = obp_estimate(spec, log, pe, q_spec)
    return est, half


def _analytic(scenario: Scenario, mixture: Mixture, specs: list[EstimatorSpec], n: int, seed: int, eval_size: int, contextual) -> dict:
    """Per estimator and target, the exact, delta-method or pilot-model description of the error (None: Monte
    Carlo only). Refuses a mixture that never plays an action a target plays."""
    # the formulas are checked against the scenario's own simulation: its world's moments, not a real log's
    sample = EvaluationSample.from_scenario(scenario, eval_size, seed, observed=False)
    fits = any(s.fits_reward_model and s.has_error_formula for s in specs) and contextual is None
    fitted = pilot_samples(sample, scenario, mixture, n, seed) if fits else None
    targets = scenario.targets()

    def describe(spec: EstimatorSpec) -> dict[str, LawSummary]:
        """Per target, the error description of ``spec`` at the mixture (contextual, pilot-fitted or exact)."""
        if contextual is not None:
            return contextual_describe(sample, scenario, spec, n, contextual[0], np.asarray(contextual[1], float))
        obj = (
            FittedModelObjectives(fitted, spec, n, threads=1)
            if fitted is not None and spec.fits_reward_model
            else MixtureObjectives(sample, spec, n, threads=1)
        )
        return obj.describe(mixture.alpha)

    analytic: dict[str, Mapping[str, LawSummary | None]] = {}
    for spec in specs:
        if not spec.has_error_formula or (contextual is not None and spec.fits_reward_model):
            analytic[spec.name] = dict.fromkeys(targets)
            continue
        analytic[spec.name] = describe(spec)
    # the mixture must play every action a target plays (naive weights may still miss some: that is their bias)
    for name, d in describe(EstimatorSpec("ips")).items():
        if not d.supported:
            raise CouponmixError(
                f"zero propensity where {name} acts: the mixture never plays actions that carry "
                f"{1 - d.support:.1%} of {name}'s probability, so no propensity-weighted estimator can "
                "evaluate it; give every component some weight"
            )
    return analytic


def monte_carlo(
    scenario: Scenario,
    alpha,
    estimators: Sequence[EstimatorSpec],
    n: int,
    reps: int,
    seed: int = 0,
    floors=0.0,
    eval_size: int = DEFAULT_EVAL_SIZE,
    truth_size: int = TRUTH_SIZE,
    workers: int = 1,
    on_replication: Callable[[int], None] | None = None,
    backend=None,
    contextual: tuple | None = None,
):
    """Analytic versus Monte Carlo error of each estimator for each target.

    Parameters
    ----------
    scenario : Scenario
    alpha : array_like, shape (K,)
        The logging mixture.
    estimators : sequence of EstimatorSpec
    n : int
        Customers per simulated log.
    reps : int
        Simulated logs; obp's estimators run on each.
    seed, floors, eval_size, truth_size : see ``EvaluationSample`` and ``true_values``
    workers : int
        Local processes (when no ``backend``); results do not depend on it.
    on_replication : callable, optional
        Called with the number of replications done.
    backend : LocalBackend or DaskBackend, optional
    contextual : (Grouping, array (G, K)), optional
        Log under a contextual mixture instead: group g's customers with mixture g (``alpha`` is then its
        traffic average, unused). Estimators that fit their reward model on the log are measured by Monte
        Carlo only.

    Returns
    -------
    dict
        ``{estimator name: {target name: TargetCheck}}`` whatever the number of estimators: the Monte Carlo
        RMSE with its standard error, the analytic RMSE, their z-score and the 95% interval coverage.

    Raises
    ------
    CouponmixError
        A bad n, reps (< 2), workers or mixture, or a mixture that never plays an action a target plays.
    """
    if isinstance(estimators, EstimatorSpec):
        raise TypeError("monte_carlo takes a sequence of EstimatorSpec: pass [spec]")
    specs = list(estimators)
    n = check_positive_int(n, "n")
    reps = check_positive_int(reps, "reps", minimum=2)
    workers = check_positive_int(workers, "workers")
    targets = scenario.targets()
    mixture = Mixture(scenario.components(), alpha, floors)
    analytic = _analytic(scenario, mixture, specs, n, seed, eval_size, contextual)
    truth = true_values(scenario, seed, truth_size)
    backend = backend or LocalBackend(workers)
    chunks = _replication_ranges(backend, reps)
    done_after = np.cumsum([len(c) for c in chunks])  # replications finished after i pieces

    def progress(i: int) -> None:
        """Report the replications done once i pieces are done."""
        if on_replication is not None:
            on_replication(int(done_after[i - 1]))

    parts = backend.map(partial(_replications, scenario, mixture.alpha, specs, n, seed, contextual=contextual), chunks, on_done=progress)
    est = np.concatenate([p[0] for p in parts])
    half = np.concatenate([p[1] for p in parts])

    return {
        spec.name: {name: _check(est[:, j, t], half[:, j, t], truth[name], analytic[spec.name][name]) for t, name in enumerate(targets)}
        for j, spec in enumerate(specs)
    }


def _replication_ranges(backend: Backend, reps: int) -> list[range]:
    """Replications in contiguous ranges, one per worker (or per Dask task); range r..r' always gives the same
    numbers, so the split does not change the result. One process: one at a time, to show progress."""
    pieces = backend.parallelism or min(reps, 4 * default_threads())
    bounds = np.linspace(0, reps, min(pieces, reps) + 1).astype(int)
    if backend.parallelism == 1:
        return [range(r, r + 1) for r in range(reps)]
    return [range(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _check(e: np.ndarray, h: np.ndarray, v: float, a: LawSummary | None) -> TargetCheck:
    """One estimator's check on one target from its R estimates ``e`` and 95% half-widths ``h``, the true value
    ``v`` and the analytic description ``a`` (None: Monte Carlo only)."""
    reps = len(e)
    sq = (e - v) ** 2
    mse, mse_se = float(sq.mean()), float(sq.std(ddof=1) / np.sqrt(reps))
    rmse = float(np.sqrt(mse))
    a_rmse = None if a is None else a.rmse
    a_se = 0.0 if a is None or a.mse_approximation_se is None else a.mse_approximation_se
    z_se = float(np.hypot(mse_se, a_se))
    cov = float((np.abs(e - v) <= h).mean())
    return TargetCheck(
        true_value=v,
        mean_estimate=float(e.mean()),
        bias=float(e.mean() - v),
        mc_mse=mse,
        mc_mse_se=mse_se,
        mc_rmse=rmse,
        mc_rmse_se=mse_se / (2 * rmse) if rmse > 0 else float("nan"),
        analytic_rmse=a_rmse,
        analytic_bias=None if a is None else a.bias,
        analytic_mse_se=None if a is None else a_se,
        analytic_bias_se=None if a is None else (a.bias_approximation_se or 0.0),
        z_score=(None if a_rmse is None else (mse - a_rmse**2) / z_se if z_se > 0 else float("nan")),
        coverage=cov,
        coverage_se=float(np.sqrt(max(cov * (1 - cov), 1e-12) / reps)),
    )

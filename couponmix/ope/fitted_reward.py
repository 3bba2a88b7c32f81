"""DR with a reward model fitted on the evaluation log itself (obp's RegressionModel, LightGBM, cross-fitted).

On a log, obp's ``RegressionModel`` with a LightGBM regressor is fitted by K-fold
cross-fitting: each customer's q(x, .) comes from the model trained on the other
K - 1 folds, so no residual r - q is scored by a model that saw r. That q feeds
obp's (balanced or naive) DR estimator like any other reward model.

Such a q depends on the log, so the estimator's error has no exact formula. The
approximation used for its analytic RMSE: the exact DR formula of
``objectives`` with q fixed at a model fitted, the same way, on an independent
*pilot* log from the same mixture, of the size one cross-fitting fold's model is
trained on ((K - 1)/K of n, capped at ``PILOT_MAX``), with the MSE averaged over
``PILOTS`` such logs (the fitted model, and with it the error, varies from log to
log). Conditional on its q, each fold's DR term is exactly the fixed-q DR term,
and the dependence between folds is of lower order (cross-fitting theory), so
this tracks the Monte Carlo RMSE; the Monte Carlo tests check it. With the cap, a
model fitted on more data is usually better, so at large n the approximation errs
on the side of a larger RMSE.

This holds for balanced weights only; naive ``dr_fitted`` gets no formula (see
``FittedModelObjectives``) and is measured by Monte Carlo alone. The fitted q
depends on the mixture that logged the data, so this estimator is compared at a
chosen mixture, not optimised over the simplex.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from couponmix.dataset.logs import simulate_log
from couponmix.dataset.scenario import Scenario
from couponmix.errors import CouponmixError
from couponmix.infra.seeding import fit_seed
from couponmix.infra.threads import default_threads
from couponmix.infra.validation import check_positive_int
from couponmix.ope.estimators import FITTED_FOLDS as N_FOLDS
from couponmix.ope.estimators import FITTED_SOURCE as SOURCE
from couponmix.ope.estimators import EstimatorSpec
from couponmix.ope.objectives import EvaluationSample, LawSummary, MixtureObjectives
from couponmix.policy.mixture import Mixture

__all__ = ["PILOT_MAX", "PILOTS", "LGBM_PARAMS", "cross_fitted", "pilot_size", "pilot_q", "pilot_samples", "FittedModelObjectives"]

PILOT_MAX = 100_000
PILOTS = 3
#: a small, regularised LightGBM: refitted K times per Monte Carlo replication, and logs can be small (with
#: 15 leaves and 20 rows per leaf it fitted noise: worse than per-action means at 1,500 customers)
LGBM_PARAMS: dict = dict(n_estimators=100, learning_rate=0.05, num_leaves=7, min_child_samples=50)


def _regression_model(n_actions: int, seed: int, threads: int | None):
    import lightgbm as lgb
    from obp.ope import RegressionModel  # lazy: obp imports torch

    base = lgb.LGBMRegressor(
        **LGBM_PARAMS,
        random_state=seed,
        deterministic=True,
        force_row_wise=True,
        n_jobs=default_threads() if threads is None else threads,
        verbose=-1,
    )
    return RegressionModel(n_actions=n_actions, base_model=base, fitting_method="normal")


def cross_fitted(log: Mapping[str, Any], seed: int = 0, threads: int | None = None) -> np.ndarray:
    """q(x_i, .) for every customer of the log, cross-fitted with ``N_FOLDS`` folds.

    Parameters
    ----------
    log : dict
        An obp-format log: ``n_actions``, ``context`` (n, d), ``action`` (n,), ``reward`` (n,).
    seed : int
        Seeds LightGBM and obp's split into folds.
    threads : int, optional
        LightGBM's threads (default: ``default_threads()``).

    Returns
    -------
    ndarray, (n, A)
        Predicted reward of each action, in the reward's unit.
    """
    model = _regression_model(log["n_actions"], seed, threads)
    q = model.fit_predict(context=log["context"], action=log["action"], reward=log["reward"], n_folds=N_FOLDS, random_state=seed)
    return q[:, :, 0]


def pilot_size(n: int) -> int:
    """Customers one cross-fitting fold's model is trained on at log size n.

    Parameters
    ----------
    n : int
        The log's size (customers).

    Returns
    -------
    int
        round(n (K - 1) / K) for K = ``N_FOLDS``, at least 10 K and at most ``PILOT_MAX`` (customers).
    """
    return int(min(PILOT_MAX, max(10 * N_FOLDS, round(n * (N_FOLDS - 1) / N_FOLDS))))


def pilot_q(
    scenario: Scenario, mixture: Mixture, n: int, x: np.ndarray, seed: int = 0, pilot: int = 0, threads: int | None = None
) -> np.ndarray:
    """q(x, .) on covariates x from a model fitted on the ``pilot``-th independent pilot log of
    ``pilot_size(n)`` customers logged under ``mixture``.

    Parameters
    ----------
    scenario : Scenario
    mixture : Mixture
    n : int
        The evaluation log's size (customers); the pilot log has ``pilot_size(n)``.
    x : ndarray, (M, d)
        Covariates to predict on.
    seed, pilot : int
        The seed, and which pilot log (its own random stream and model seed).
    threads : int, optional
        LightGBM's threads.

    Returns
    -------
    ndarray, (M, A)
        Predicted reward of each action, in the reward's unit.
    """
    log = simulate_log(scenario, mixture, pilot_size(n), seed, pilot=pilot)
    model = _regression_model(scenario.n_actions, fit_seed(seed, 1, pilot), threads)
    model.fit(context=log["context"], action=log["action"], reward=log["reward"])
    return model.predict(np.asarray(x, float))[:, :, 0]


def pilot_samples(
    sample: EvaluationSample, scenario: Scenario, mixture: Mixture, n: int, seed: int = 0, pilots: int = PILOTS, threads: int | None = None
) -> list[EvaluationSample]:
    """Copies of the evaluation sample, each with q from its own pilot-fitted model (``pilot_q``).

    Parameters
    ----------
    sample : EvaluationSample
        With covariates.
    scenario, mixture, n, seed, threads
        As for ``pilot_q``.
    pilots : int
        Pilot models, >= 2.

    Returns
    -------
    list of EvaluationSample, (pilots,)
        Marked ``q_fitted_on_log``.

    Raises
    ------
    CouponmixError
        A sample without covariates, or fewer than two pilots.
    """
    if sample.x is None:
        raise CouponmixError("the evaluation sample has no covariates to predict on")
    pilots = check_positive_int(pilots, "pilots", minimum=2)
    return [
        dataclasses.replace(
            sample,
            q=pilot_q(scenario, mixture, n, sample.x, seed, j, threads),
            q_source=SOURCE,
            q_fitted_on_log=True,
            _groups={},
            _merge_index=sample._merge_index,
        )  # merging does not depend on q
        for j in range(pilots)
    ]


class FittedModelObjectives:
    """The approximate error of balanced ``dr_fitted`` at given mixtures: the exact fixed-q DR error averaged
    over models fitted on independent pilot logs (``pilot_samples``) from the mixture being evaluated.

    Balanced weights make the approximation sound: wherever the target acts the mixture plays too, so
    E[D(x) - c q(x, a) | x] = 0 for any q, and the fitted model's dependence on the log's own rewards
    cancels to first order. Naive weights do not cancel it (their bias is linear in q where the acting
    component does not cover the target, and the model shares the log's noise), so naive ``dr_fitted``
    has no formula here: Monte Carlo (``validate``) is its only measure. ``describe`` also gives the
    standard error of the average over pilots, so a Monte Carlo comparison can allow for it.
    Same interface as ``MixtureObjectives`` where they overlap.

    Parameters
    ----------
    samples : list of EvaluationSample, (P,)
        P >= 2 pilot-fitted copies of one evaluation sample (``pilot_samples``).
    estimator : EstimatorSpec
        An estimator that fits its reward model on the log and has an error formula (balanced ``dr_fitted``).
    n : int
        Log size (customers) at which the error is measured.
    aggregate : "max" or "mean"
        How per-target RMSEs combine into the single error objective.
    threads : int, optional
        Threads of each ``MixtureObjectives``.

    Raises
    ------
    CouponmixError
        Another estimator, fewer than two samples, a sample whose q is not fitted on a log, or a bad n or
        aggregate.
    """

    def __init__(
        self, samples: list[EvaluationSample], estimator: EstimatorSpec, n: int, aggregate: str = "max", threads: int | None = None
    ):
        if not (estimator.fits_reward_model and estimator.has_error_formula):
            raise CouponmixError(f"{estimator.label}: no fitted-model error formula")
        if len(samples) < 2 or not all(s.q_fitted_on_log for s in samples):
            raise CouponmixError("give at least two pilot-fitted evaluation samples (fitted_reward.pilot_samples)")
        self.sample, self.estimator, self.n, self.aggregate = samples[0], estimator, n, aggregate
        self.pilots = len(samples)
        self.parts = [MixtureObjectives(s, estimator, n, aggregate, threads=threads) for s in samples]
        self.q_source = (
            f"{SOURCE}; its RMSE is approximated by the exact DR error averaged over "
            f"{self.pilots} models fitted on independent pilot logs of {pilot_size(n):,} customers"
        )

    @classmethod
    def fit(
        cls,
        sample: EvaluationSample,
        estimator: EstimatorSpec,
        scenario: Scenario,
        mixture: Mixture,
        n: int,
        seed: int = 0,
        aggregate: str = "max",
        pilots: int = PILOTS,
        threads: int | None = None,
    ):
        """The objectives from ``pilots`` pilot-fitted copies of ``sample`` (``pilot_samples``) logged under ``mixture``.

        Parameters
        ----------
        sample, scenario, mixture, n, seed, pilots, threads
            As for ``pilot_samples``.
        estimator, aggregate
            As for the class.

        Returns
        -------
        FittedModelObjectives

        Raises
        ------
        CouponmixError
            As ``pilot_samples`` and the class do.
        """
        return cls(pilot_samples(sample, scenario, mixture, n, seed, pilots, threads), estimator, n, aggregate, threads)

    @property
    def target_names(self) -> tuple[str, ...]:
        """(T,) the future policies' names."""
        return self.sample.target_names

    def _mse_bias(self, alphas) -> tuple[np.ndarray, np.ndarray]:
        """(P, B, T) MSE and bias, one slice per pilot model."""
        mse, bias = [], []
        for part in self.parts:
            laws = part.laws(alphas)
            mse.append(np.column_stack([law.mse(self.n) for law in laws]))
            bias.append(np.column_stack([law.bias(self.n) for law in laws]))
        return np.array(mse), np.array(bias)

    def rmse(self, alphas) -> np.ndarray:
        """Per-target RMSE at log size n, from the MSE averaged over the pilot models.

        Parameters
        ----------
        alphas : array_like, (B, K)
            Mixtures, one per row.

        Returns
        -------
        ndarray, (B, T)
            RMSE in the reward's unit per customer.
        """
        return np.sqrt(self._mse_bias(alphas)[0].mean(axis=0))

    def combine(self, per_target: np.ndarray) -> np.ndarray:
        """The single error objective from per-target errors, by the aggregate (max or mean).

        Parameters
        ----------
        per_target : ndarray, (B, T)
            Errors in the reward's unit per customer.

        Returns
        -------
        ndarray, (B,)
        """
        return self.parts[0].combine(per_target)

    def describe(self, alpha) -> dict[str, LawSummary]:
        """Per-target breakdown at one mixture, averaged over the pilot models.

        Parameters
        ----------
        alpha : array_like, (K,)
            Mixture weights.

        Returns
        -------
        dict of target name to LawSummary
            ``MixtureObjectives.describe``'s entries for the first pilot, with ``rmse``, ``bias`` and ``std_error``
            (reward's unit per customer) from the pilot-averaged MSE and bias, and ``mse_approximation_se`` and
            ``bias_approximation_se``, the standard errors of those averages over the pilots.
        """
        mse, bias = self._mse_bias(np.asarray(alpha, float)[None, :])
        first = self.parts[0].describe(alpha)
        root_p = np.sqrt(self.pilots)
        out = {}
        for t, name in enumerate(self.target_names):
            m, b = float(mse[:, 0, t].mean()), float(bias[:, 0, t].mean())
            out[name] = dataclasses.replace(
                first[name],
                rmse=float(np.sqrt(m)),
                bias=b,
                std_error=float(np.sqrt(max(m - b * b, 0.0))),
                mse_approximation_se=float(mse[:, 0, t].std(ddof=1) / root_p),
                bias_approximation_se=float(bias[:, 0, t].std(ddof=1) / root_p),
            )
        return out

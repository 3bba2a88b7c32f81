"""Records that the dataset and OPE layers share: a real log's own rows (``ObservedRows``), which a scenario
hands to the evaluation sample, the verdict on the importance weights' second moment (``SupportVerdict``),
which a scenario may give analytically, and a simulated revenue model's quality (``ModelReport``). They live
here, below both layers, so that neither imports the other upward.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np

from couponmix.infra.records import OPTIONAL, Record

__all__ = ["BanditFeedback", "ModelReport", "ObservedRows", "SupportVerdict", "VerdictInfo"]


class BanditFeedback(TypedDict, total=False):
    """A log in obp's multi-logger bandit-feedback format (``obp.dataset.SyntheticMultiLoggersBanditDataset``'s
    keys), as obp's estimators take it: a dict, typed. n customers, A actions, K logging components."""

    context: np.ndarray  #: (n, d) covariates
    action: np.ndarray  #: (n,) the action played
    reward: np.ndarray  #: (n,) its reward, in the reward's unit
    pscore: np.ndarray  #: (n,) the acting component's own propensity of the action (naive weights)
    pscore_avg: np.ndarray | None  #: (n,) the balanced propensity sum_k alpha_k pi_k(a | x); None if not rebuildable
    stratum_idx: np.ndarray  #: (n,) the acting component
    pscore_components: np.ndarray  #: (n, K) every component's propensity of the action played
    alpha: np.ndarray  #: (n, K) each customer's own mixture, when the mixture varies by customer
    expected_reward: np.ndarray  #: (n, A) the simulator's mean reward mu(x, a) (simulated logs only)
    n_rounds: int  #: n
    n_actions: int  #: A
    n_strata: int  #: K
    position: None  #: obp's slate position: always None here
    component_names: tuple[str, ...]  #: (K,) the components' names


@dataclass
class ModelReport(Record):
    """A simulated world's revenue model judged against the world's true expected revenue (summary.json's
    ``revenue_model``). Revenues are per customer, in the reward's unit."""

    kind: str  #: e.g. "LightGBM, cross-fitted"
    folds: int  #: cross-fitting folds
    trees: int  #: trees in each fold model, chosen by early stopping on the folds
    max_trees: int  #: the most trees a fold model could grow (``n_estimators``)
    features: list[str]  #: the covariates the model sees
    history_size: int  #: customers in the historical log it was trained on
    history_policy: str  #: how that log was logged
    rmse_vs_true_mu: float  #: root mean squared error of its predictions on held-out customers, all actions
    baseline_rmse_vs_true_mu: float  #: the same for the baseline
    baseline: str  #: what the baseline is, in words
    out_of_fold_rmse_vs_true_mu: float  #: the error of the out-of-fold predictions on the training customers
    rmse_per_action: dict[str, float]  #: the held-out error per action
    held_out_customers: int  #: customers the held-out errors are measured on


@dataclass(frozen=True)
class SupportVerdict:
    """Whether E_x[sum_a pi_e(a|x)^2 / p_alpha(a|x)] is finite."""

    #: "finite"; "infinite" (weights unbounded and their second moment diverges); or "unsupported" (p_alpha = 0
    #: where pi_e > 0 on a set of positive probability, so IPS is biased there whatever n is)
    status: str
    method: str  #: "analytic" or "empirical"
    reason: str  #: the verdict in plain words
    #: what it rests on (a tail index and the second moment's growth, the unsupported mass, or a scenario's own)
    evidence: dict = field(default_factory=dict)

    @property
    def finite(self) -> bool:
        """True when the status is "finite"."""
        return self.status == "finite"

    def info(self) -> VerdictInfo:
        """The verdict for summary.json: status, finite, method, reason, and evidence when there is any."""
        return VerdictInfo(self.status, self.finite, self.method, self.reason, self.evidence or None)


@dataclass
class VerdictInfo(Record):
    """A ``SupportVerdict`` as summary.json's ``ips_variance`` writes it."""

    status: str  #: "finite", "infinite" or "unsupported"
    finite: bool  #: the status is "finite"
    method: str  #: "analytic" or "empirical"
    reason: str  #: the verdict in plain words
    #: what the verdict rests on, which differs by method (a tail index and the second moment's growth, the
    #: unsupported mass, or a scenario's own); left out when there is none
    evidence: dict | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True)
class ObservedRows:
    """The logged outcome behind each customer of an evaluation sample drawn from a real log.

    With them, what the log can say is taken from the log itself, by importance weighting its held-out
    rows (the rows the production model, and every policy built on the log's models, was not trained on):

    * the second moments E[(r - q)^2 | x, a] that make the sampling error: row i contributes
      1{a = a_i} (r_i - q_i)^2 / p_i on held-out rows, weighted by the inverse share of such rows
      (``residual_second_moment``); its mean under any mixture and target is the sampling variance a log
      of that mixture would show, with the log's own heavy tails, not a fitted model's shrunken ones;
    * the reward model's signed error where an estimator relies on it, e_hat(x_i, a) =
      1{a = a_i} (q_i - r_i) / p_i on the same rows (``signed_error``): its mean times the estimator's
      gap estimates the model-dependent bias, with a standard error (``laws_from_moments``);
    * the value of a policy: the doubly robust estimate E[sum_a pi q] - mean_i sum_a pi e_hat
      (``policy_values``), so that revenue and its cost come from the logged rewards.

    Actions with too few logged rows (``covered`` False) keep the world's model of the second moment and
    the model-error bound of ``model_error_of``.
    """

    action: np.ndarray  #: (M,) the logged action
    reward: np.ndarray  #: (M,) the logged reward, in the reward's unit
    inverse_propensity: np.ndarray  #: (M,) 1 / the logging system's probability of the logged action
    held_out: np.ndarray  #: (M,) 1 / P(held out) where the reward model was not trained on the row, else 0
    covered: np.ndarray  #: (A,) bool: actions whose moments come from the log (the others: the world's model)
    source: str = ""  #: where the moments come from, in plain words

    def subset(self, idx: np.ndarray) -> ObservedRows:
        """The rows ``idx`` (same ``covered`` actions and source).

        Parameters
        ----------
        idx : ndarray of int, (m,)

        Returns
        -------
        ObservedRows
            m rows.
        """
        return dataclasses.replace(
            self,
            action=self.action[idx],
            reward=self.reward[idx],
            inverse_propensity=self.inverse_propensity[idx],
            held_out=self.held_out[idx],
        )

    def _onehot(self, values: np.ndarray, n_actions: int) -> np.ndarray:
        """(M, A) ``values`` at each row's logged action where it is covered, 0 elsewhere."""
        m = len(self.action)
        out = np.zeros((m, n_actions))
        out[np.arange(m), self.action] = values
        out[:, ~self.covered] = 0.0
        return out

    @property
    def weight(self) -> np.ndarray:
        """(M,) each row's importance weight: held out / propensity (0 on rows a model was trained on)."""
        return self.inverse_propensity * self.held_out

    def _residual(self, q: np.ndarray | None, m: int) -> np.ndarray:
        """(M,) the logged reward less q at the logged action (q None: the reward itself)."""
        return self.reward if q is None else self.reward - q[np.arange(m), self.action]

    def _logged_or_model(self, values: np.ndarray, model: np.ndarray) -> np.ndarray:
        """(M, A) ``values`` importance weighted at each row's logged, covered action; ``model`` at the
        actions the log does not cover."""
        out = self._onehot(self.weight * values, model.shape[1])
        out[:, ~self.covered] = model[:, ~self.covered]
        return out

    def residual_second_moment(self, q: np.ndarray | None, model: np.ndarray) -> np.ndarray:
        """(M, A) the per-row estimate of E[(r - q)^2 | x_i, a]: the logged residual, importance weighted, at
        covered actions; the world's ``model`` at the others. q None: the IPS family (q = 0).

        Parameters
        ----------
        q : ndarray, (M, A), or None
            The reward model's predictions.
        model : ndarray, (M, A)
            The world's E[(r - q)^2 | x, a] (reward's unit squared).

        Returns
        -------
        ndarray, (M, A)
            In the reward's unit squared.
        """
        resid = self._residual(q, model.shape[0])
        return self._logged_or_model(resid * resid, model)

    def residual_first_moment(self, q: np.ndarray | None, model: np.ndarray) -> np.ndarray:
        """(M, A) the per-row estimate of E[r - q | x_i, a], as ``residual_second_moment``.

        Parameters
        ----------
        q : ndarray, (M, A), or None
            The reward model's predictions (None: 0).
        model : ndarray, (M, A)
            The world's E[r - q | x, a] (reward's unit).

        Returns
        -------
        ndarray, (M, A)
            In the reward's unit.
        """
        return self._logged_or_model(self._residual(q, model.shape[0]), model)

    def signed_error(self, q: np.ndarray) -> np.ndarray:
        """(M, A) e_hat: the importance-weighted q - r at each row's logged, covered action, 0 elsewhere; its
        mean over the sample, times any weights fixed before the log, estimates E[weights (q - mu)].

        Parameters
        ----------
        q : ndarray, (M, A)
            The reward model's predictions (reward's unit).

        Returns
        -------
        ndarray, (M, A)
            In the reward's unit.
        """
        return self._onehot(-self.weight * self._residual(q, q.shape[0]), q.shape[1])

    def policy_values(self, probs: np.ndarray, q: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """(P,) doubly robust values of policies ``probs`` (P, M, A): E[sum_a pi q] minus the mean of
        sum_a pi e_hat at covered actions; actions not covered take the world's ``mu``.

        Parameters
        ----------
        probs : ndarray, (P, M, A)
            The policies' probabilities on the sample's customers.
        q, mu : ndarray, (M, A)
            The reward model's predictions and the world's mean reward (reward's unit).

        Returns
        -------
        ndarray, (P,)
            Per customer, in the reward's unit.
        """
        return self.policy_value_terms(probs, q, mu).mean(axis=1)

    def policy_value_terms(self, probs: np.ndarray, q: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """(P, M) each customer's doubly robust term of ``policy_values`` (their covariance over customers,
        divided by M, is the values' own).

        Parameters
        ----------
        probs : ndarray, (P, M, A)
        q, mu : ndarray, (M, A)
            As in ``policy_values``.

        Returns
        -------
        ndarray, (P, M)
            In the reward's unit.
        """
        base = np.where(self.covered[None, :], q, mu)
        return np.einsum("pma,ma->pm", probs, base - self.signed_error(q))

"""The decision a log supports: after logging n customers with mixture alpha, a team estimates every
candidate policy (the future policies and the incumbent) off-policy and deploys one. What does that log
buy?

The chosen estimators' estimates of the C candidates are jointly (to first order) normal:

    V_hat ~ N(V + b, Sigma / n),

with V the candidates' values, b each estimator's bias and Sigma the covariance of their per-customer
terms over the same logged customers. Every estimator is, per logged row (x, k, a, r) with k the
component that acted,

    plain:            X_c = D_c(x) + c_c (r - q_c)
    self-normalised:  psi_c = D_c(x) + (c_c (r - q_c) - R_c c_c) / W_c   (delta method)

with c_c the estimator's weight of pi_c(a|x) over the balanced (or, for naive weights, the acting
component's) propensity, q_c its reward model (0 for the IPS family), D_c = sum_a pi_c q_c,
W_c = E[c_c] and R_c = E[c_c (r - q_c)] / W_c. Each is A + C r with A, C known at (x, k, a), so

    Sigma_cd = E[A_c A_d + (A_c C_d + A_d C_c) mu + C_c C_d m2] - E[psi_c] E[psi_d]

over rows drawn with probability alpha_k pi_k(a|x): exact for plain estimators, first order for the
self-normalised ones. On a real log's evaluation sample (``ObservedRows``) mu and m2 are its held-out rows'
importance-weighted rewards, so the covariances come from the logged rewards as the promise does.

The safe rule lives in the tails, where the normal law is not enough: heavy-tailed rows make each
difference with the incumbent skewed, and the standard error a team computes from its own log moves with the
estimate (small in the logs without the rare heavy rows, which are also the logs where a candidate looks
best) and varies from log to log. ``difference_shape`` gives the skewness and kurtosis of one row's
difference, from the sample's one reward draw per customer and action; ``rule_outcomes`` skews each
difference by Cornish-Fisher and draws the team's standard error to match (docs/method.md section 12).

From that law (``decision_value``, by ``draws`` correlated draws with a fixed seed):

* the probability that "deploy the estimated best" picks the truly best candidate, and its expected
  regret per customer, V_best - V_deployed;
* the same for the safe rule: leave the incumbent only when the lower end of the 95% interval of the
  estimated difference (estimated best minus incumbent, with the standard error the team computes) is
  above 0.

``tests/test_decision_value.py`` checks both against logs simulated from the scenario and estimated with
obp's estimators.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from couponmix.errors import CouponmixError
from couponmix.infra.records import OPTIONAL, Record
from couponmix.infra.validation import check_positive_float, check_positive_int
from couponmix.ope.criterion import Criterion
from couponmix.ope.estimators import EstimatorSpec
from couponmix.ope.montecarlo import Z95, influence
from couponmix.ope.objectives import EvaluationSample

__all__ = [
    "covariance_root",
    "DecisionAt",
    "DecisionBlock",
    "DecisionValue",
    "LogPlan",
    "Payback",
    "decision_law",
    "decision_value",
    "rule_outcomes",
    "value_covariance",
    "candidate_sample",
    "log_decision",
    "simulate_decisions",
    "safe_choice",
]

#: customers per chunk when the cross moments are summed
CHUNK = 20_000


@dataclass
class DecisionAt(Record):
    """``DecisionValue`` as summary.json stores it: per candidate by name, with each estimate's standard error.

    Attributes
    ----------
    candidates : list of str
    estimators, values, bias, sd : dict by candidate
        The estimator each is judged by, its value per customer (reward's unit), the estimator's bias and the
        estimate's standard deviation at log size ``n``.
    cov : list of list of float, (C, C)
        The estimates' covariance at log size ``n``.
    n : int
    incumbent, best : str
    p_best, regret, p_best_safe, regret_safe, p_switch_safe, gain, gain_safe : float
        As in ``DecisionValue`` (regrets and gains per customer, reward's unit).
    draws : int
    """

    candidates: list[str]
    estimators: dict[str, str]
    values: dict[str, float]
    bias: dict[str, float]
    cov: list[list[float]]
    n: int
    incumbent: str
    best: str
    p_best: float
    regret: float
    p_best_safe: float
    regret_safe: float
    p_switch_safe: float
    gain: float
    gain_safe: float
    draws: int
    sd: dict[str, float]


@dataclass
class DecisionBlock(Record):
    """summary.json's ``decision`` block (``decision_summary``): what a log of ``n`` customers supports at the
    recommended mix and without exploration, for the two deployment rules."""

    incumbent: str  #: the component in place before the log
    n: int  #: customers in the log
    rules: dict[str, str]  #: each rule ("estimated_best", "safe") in words
    basis: str  #: where the values come from: the simulated world, or estimates from the user's log
    method: str  #: how the law of the estimates was computed, in words
    recommended: DecisionAt  #: at the recommended mixture
    no_exploration: DecisionAt  #: at the mixture without exploration


@dataclass
class LogPlan(Record):
    """One log and what it earns over the horizon: log ``log_size`` customers at ``alpha``, then deploy by the
    rule (``payback``). Money is in the reward's unit; days are days of traffic.

    Attributes
    ----------
    alpha : dict of str to float
        The logging mixture.
    exploration_rate : float
        Share of the log away from the incumbent, a fraction.
    log_size : int
        Customers logged; ``log_days`` the days that takes.
    logging_cost : float
        Revenue given up while logging, against the incumbent alone.
    gain_per_customer : float
        E[V_deployed - V_incumbent] per customer after the log.
    value_of_log : float
        What the log earns over the horizon (gain_per_customer x customers in the horizon).
    net : float
        value_of_log - logging_cost.
    return_on_cost : float or None
        value_of_log / logging_cost (None when the log costs nothing).
    break_even_day : float or None
        The day, from the start of logging, when the log has paid for itself (None if it never does).
    p_best : float
        Chance that the rule deploys the truly best candidate.
    """

    alpha: dict[str, float]
    exploration_rate: float
    log_size: int
    log_days: float
    logging_cost: float
    gain_per_customer: float
    value_of_log: float
    net: float
    return_on_cost: float | None
    break_even_day: float | None
    p_best: float


@dataclass
class Payback(Record):
    """What a log is worth over a horizon (``payback``; summary.json's ``payback`` block).

    Attributes
    ----------
    horizon_days, daily_traffic : float
        Days of traffic after the log, and customers a day.
    rule : str
        "safe" or "estimated_best".
    baseline : str
        What every net is against, in words.
    best : LogPlan
        The mixture and log size with the most net revenue; ``best_index`` its row in the grid.
    no_exploration : LogPlan
        The best log of the incumbent alone.
    sizes : list of int, (S,)
    exploration_rates : list of float, (B,)
    net_by_mixture_and_size : list of list of float, (B, S)
        Net revenue of each mixture and log size (reward's unit).
    method : str
    """

    horizon_days: float
    daily_traffic: float
    rule: str
    baseline: str
    best: LogPlan
    best_index: int
    no_exploration: LogPlan
    sizes: list[int]
    exploration_rates: list[float]
    net_by_mixture_and_size: list[list[float]]
    method: str


@dataclass(frozen=True)
class RuleOutcomes(Record):
    """What the two deployment rules give under a law of the estimates (``rule_outcomes``): probabilities, and
    regrets and gains per customer deployed, in the reward's unit. "safe": switch from the incumbent only when the
    95% lower bound of the difference is above 0."""

    p_best: float  #: the candidate with the highest estimate is the truly best
    regret: float  #: the best candidate's value minus the one deployed by "deploy the estimated best"
    p_best_safe: float
    regret_safe: float
    p_switch_safe: float  #: the safe rule leaves the incumbent
    gain: float  #: the value deployed minus the incumbent's
    gain_safe: float
    regret_sd: float  #: the standard deviation of one log's regret under this law
    regret_safe_sd: float
    p_pick: list[float]  #: (C,) per candidate, the chance it has the highest estimate
    p_switch_to: list[float]  #: (C,) per candidate, the chance the safe rule switches to it


@dataclass(frozen=True)
class LoggedChoices(Record):
    """Per simulated log (R,): the candidate picked, its estimate minus the incumbent's and that difference's
    standard error as the team computes it."""

    pick: np.ndarray  #: (R,) int, the index of the candidate with the highest estimate
    diff: np.ndarray  #: (R,) its estimate minus the incumbent's (per customer, reward's unit)
    se: np.ndarray  #: (R,) that difference's standard error from the log's per-customer terms


@dataclass(frozen=True)
class DecisionCheck(Record):
    """``simulate_decisions``: the rules' outcomes over ``reps`` simulated logs, each with its Monte Carlo standard
    error (probabilities; regrets per customer in the reward's unit)."""

    p_best: float
    p_best_se: float
    regret: float
    regret_se: float
    p_best_safe: float
    p_best_safe_se: float
    regret_safe: float
    regret_safe_se: float
    p_switch_safe: float
    p_switch_safe_se: float
    reps: int
    logs: LoggedChoices | None = field(default=None, metadata=OPTIONAL)  #: with ``keep_logs``


@dataclass(frozen=True)
class DecisionValue:
    """What a log of ``n`` customers at mixture ``alpha`` supports, per customer deployed afterwards.

    Attributes
    ----------
    candidates, estimators : tuple of str, (C,)
        The candidate policies and the estimator each is judged by.
    values, bias : ndarray, (C,)
        Each candidate's value (per customer) and its estimator's bias.
    cov : ndarray, (C, C)
        Covariance of the estimates at log size n.
    n : int
        Customers in the log.
    incumbent, best : str
        The policy in place before the log, and the truly best candidate.
    p_best, regret : float
        "Deploy the estimated best": the probability that it is the truly best, and E[V_best - V_deployed]
        (on a real log, averaged over what the values may be: ``value_covariance``).
    p_best_safe, regret_safe, p_switch_safe : float
        The safe rule (switch only when the 95% lower bound of the difference is above 0): the same, and
        the probability that it leaves the incumbent.
    gain, gain_safe : float
        E[V_deployed] - V_incumbent under each rule: what the log buys per customer deployed.
    draws : int
        Normal draws behind the probabilities (their own standard error is at most 0.5 / sqrt(draws)).
    """

    candidates: tuple[str, ...]
    estimators: tuple[str, ...]
    values: np.ndarray
    bias: np.ndarray
    cov: np.ndarray
    n: int
    incumbent: str
    best: str
    p_best: float
    regret: float
    p_best_safe: float
    regret_safe: float
    p_switch_safe: float
    gain: float
    gain_safe: float
    draws: int

    def to_dict(self) -> dict:
        """The fields as ``DecisionAt`` stores them: values, bias, estimators and standard deviations by candidate, cov as lists.

        Returns
        -------
        dict
            ``DecisionAt``'s fields, plain Python values (``DecisionAt.from_dict`` reads it).
        """
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for key in ("values", "bias"):
            out[key] = dict(zip(self.candidates, np.asarray(out[key], float).tolist()))
        out["estimators"] = dict(zip(self.candidates, self.estimators))
        out["candidates"] = list(self.candidates)
        out["sd"] = dict(zip(self.candidates, np.sqrt(np.maximum(np.diag(self.cov), 0.0)).tolist()))
        out["cov"] = np.asarray(self.cov, float).tolist()
        return out


def candidate_sample(sample: EvaluationSample, candidates: Mapping[str, np.ndarray]) -> EvaluationSample:
    """``sample`` with the candidates ((M, A) probabilities each) as its targets, so that the decision's
    criterion can choose each candidate's estimator as it does for targets.

    Parameters
    ----------
    sample : EvaluationSample
        M customers, A actions.
    candidates : mapping of name to ndarray, (M, A)
        Each candidate policy's action probabilities on the sample's customers.

    Returns
    -------
    EvaluationSample
        The same customers, with the C candidates as its targets (in the mapping's order).

    Raises
    ------
    CouponmixError
        A candidate's probabilities are not (M, A).
    """
    names = tuple(candidates)
    probs = np.stack([np.asarray(candidates[c], float) for c in names])
    if probs.shape[1:] != sample.mu.shape:
        raise CouponmixError(f"candidate probabilities must have shape {sample.mu.shape}")
    return dataclasses.replace(sample, target_names=names, target_probs=probs, _groups={}, _merge_index={})


def _moments(sample: EvaluationSample) -> tuple[np.ndarray, np.ndarray]:
    """(M, A) E[r | x, a] and E[r^2 | x, a]: the world's, or on a real log's rows their importance-weighted
    logged rewards (``ObservedRows``)."""
    if sample.observed is None:
        return sample.mu, sample.m2
    obs = sample.observed
    return obs.residual_first_moment(None, sample.mu), obs.residual_second_moment(None, sample.m2)


def _weights(spec: EstimatorSpec, probs: np.ndarray, comp: np.ndarray, p_bal: np.ndarray) -> np.ndarray:
    """(K, m, A) the estimator's weight c of pi(a|x) for rows logged by component k."""
    p = comp if spec.weights == "naive" else np.broadcast_to(p_bal[None], comp.shape)
    w = np.divide(np.broadcast_to(probs[None], comp.shape), p, out=np.zeros(comp.shape), where=p > 0)
    return spec.weight(w)


def _cross_covariance(inp: _LawInputs) -> np.ndarray:
    """(C, C) the per-customer covariance of the candidates' influence terms psi_c = A_c + C_c r, from their
    cross moments over (component, customer, action) rows, chunk by chunk."""
    k = len(inp.names)
    m = inp.comp.shape[1]
    mu, m2 = inp.mu, inp.m2
    cross = np.zeros((k, k))
    first = np.zeros(k)
    for sl in inp.chunks:
        share, p_bal = inp.rows(sl)
        a_terms, c_terms = inp.terms(sl, p_bal)
        mu_s, m2_s = mu[sl][None], m2[sl][None]
        for i in range(k):
            first[i] += (share * (a_terms[i] + c_terms[i] * mu_s)).sum()
            for j in range(i, k):
                v = (
                    share
                    * (
                        a_terms[i] * a_terms[j]
                        + (a_terms[i] * c_terms[j] + a_terms[j] * c_terms[i]) * mu_s
                        + c_terms[i] * c_terms[j] * m2_s
                    )
                ).sum()
                cross[i, j] = cross[j, i] = cross[i, j] + v
    first /= m
    cov1 = cross / m - np.outer(first, first)
    cov1[np.diag_indices(k)] = np.maximum(np.diag(cov1), 0.0)  # rounding can leave -1e-18 where a variance is 0
    return cov1


def decision_law(
    sample: EvaluationSample, alpha, candidates: Mapping[str, np.ndarray], specs: Mapping[str, EstimatorSpec], n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values (C,), biases (C,), covariance at log size n (C, C)) of the candidates' estimates.

    Parameters
    ----------
    sample : EvaluationSample
    alpha : array_like, (K,)
        The logging mixture.
    candidates : mapping of name to ndarray (M, A)
        Each candidate's probabilities on the sample's customers.
    specs : mapping of name to EstimatorSpec
        The estimator each candidate is judged by (one with a fixed reward model or none).
    n : int
        Customers in the log.

    Returns
    -------
    values : ndarray, (C,)
        Each candidate's value (per customer, reward's unit).
    bias : ndarray, (C,)
        Its estimator's bias (reward's unit).
    cov : ndarray, (C, C)
        The estimates' covariance at log size n.

    Raises
    ------
    CouponmixError
        n not positive, an estimator that fits its reward model on the log, or a self-normalised estimator
        whose policy plays no logged row.
    """
    n = check_positive_int(n, "n")
    return _law(_law_inputs(sample, alpha, candidates, specs), sample, n)


def _rows(alpha: np.ndarray, comp: np.ndarray, sl: slice) -> tuple[np.ndarray, np.ndarray]:
    """(K, m, A) P(k, a | x) at mixture ``alpha`` for the chunk's customers, and (m, A) the balanced propensity."""
    share = alpha[:, None, None] * comp[:, sl]
    return share, share.sum(axis=0)


@dataclass(frozen=True)
class _LawInputs:
    """What the decision law and the rows' shape share at one mixture: the candidates' probabilities, their
    estimators' reward models, the sample's moments, its chunks, and pass 1 (``_normalisers``)."""

    names: list
    specs: Mapping[str, EstimatorSpec]
    alpha: np.ndarray
    comp: np.ndarray
    mu: np.ndarray
    m2: np.ndarray
    probs: dict
    qs: dict
    chunks: list
    mean: dict
    norm: dict
    ratio: dict

    def rows(self, sl: slice) -> tuple[np.ndarray, np.ndarray]:
        """``_rows`` at this mixture."""
        return _rows(self.alpha, self.comp, sl)

    def terms(self, sl: slice, p_bal: np.ndarray) -> tuple[list, list]:
        """Every candidate's influence term psi_c = A_c + C_c r on the chunk's (k, x, a) rows: ([A_c], [C_c])."""
        a_terms, c_terms = [], []
        for c in self.names:
            w = _weights(self.specs[c], self.probs[c][sl], self.comp[:, sl], p_bal)
            q = self.qs[c][sl][None]
            d = (self.probs[c][sl] * self.qs[c][sl]).sum(axis=1)[None, :, None]
            a_terms.append(d + (-w * q - self.ratio[c] * w) / self.norm[c])
            c_terms.append(w / self.norm[c])
        return a_terms, c_terms


def _law_inputs(sample: EvaluationSample, alpha, candidates: Mapping[str, np.ndarray], specs: Mapping[str, EstimatorSpec]) -> _LawInputs:
    """The decision law's inputs at mixture ``alpha``, pass 1 included."""
    names = list(candidates)
    alpha = np.asarray(alpha, float)
    comp = sample.comp_probs  # (K, M, A)
    mu, m2 = _moments(sample)
    q_model = sample.q if sample.q is not None else np.zeros_like(mu)
    for c in names:
        if specs[c].fits_reward_model:
            raise CouponmixError(f"{specs[c].name} fits its model on the log: its decision value needs Monte Carlo")
    probs = {c: np.asarray(candidates[c], float) for c in names}
    qs = {c: (q_model if specs[c].uses_reward_model else np.zeros_like(mu)) for c in names}
    chunks = [slice(s, s + CHUNK) for s in range(0, comp.shape[1], CHUNK)]

    mean, norm, ratio = _normalisers(names, specs, probs, qs, comp, mu, chunks, lambda sl: _rows(alpha, comp, sl))
    return _LawInputs(names, specs, alpha, comp, mu, m2, probs, qs, chunks, mean, norm, ratio)


def _law(inp: _LawInputs, sample: EvaluationSample, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``decision_law`` from its inputs: pass 2, the cross moments of psi_c = A_c + C_c r."""
    cov1 = _cross_covariance(inp)
    values = sample._values(np.stack([inp.probs[c] for c in inp.names]))
    bias = np.array([inp.mean[c] for c in inp.names]) - values
    return values, bias, cov1 / n


def _normalisers(names, specs, probs, qs, comp, mu, chunks, rows) -> tuple[dict, dict, dict]:
    """Pass 1 of the decision law: each estimator's mean, and the normaliser W and ratio R of the
    self-normalised ones (1 and 0 for plain estimators), from the sample's exact moments."""
    m = comp.shape[1]
    sums = {c: np.zeros(3) for c in names}  # E[D], E[c], E[c (mu - q)]
    for sl in chunks:
        share, p_bal = rows(sl)
        for c in names:
            w = _weights(specs[c], probs[c][sl], comp[:, sl], p_bal)
            q = qs[c][sl]
            sums[c] += [(probs[c][sl] * q).sum(), (share * w).sum(), (share * w * (mu[sl] - q)[None]).sum()]
    mean, norm, ratio = {}, {}, {}
    for c in names:
        ed, ew, ewe = sums[c] / m
        if specs[c].self_normalised:
            if not ew > 0:
                raise CouponmixError(f"{c}: no logged row the policy would play ({specs[c].name} is 0 / 0)")
            norm[c], ratio[c] = ew, ewe / ew
            mean[c] = ed + ratio[c]
        else:
            norm[c], ratio[c] = 1.0, 0.0
            mean[c] = ed + ewe
    return mean, norm, ratio


@dataclass(frozen=True)
class RowShape:
    """The shape of one logged row's difference d_c = psi_c - psi_incumbent between a candidate's estimator
    terms and the incumbent's: its skewness (C,) and kurtosis (C,) (E[(d - Ed)^4] / Var(d)^2; 0 and 0 for the
    incumbent itself). A team's safe rule divides the estimated difference by a standard error it computes
    from its own rows; these two numbers give how that standard error moves with the estimate and how much it
    varies from log to log (``rule_outcomes``)."""

    skewness: np.ndarray  #: (C,) one row's difference's skewness
    kurtosis: np.ndarray  #: (C,) its kurtosis (not the excess)

    def at(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """At log size n: (skewness of the mean difference, skew / sqrt(n); the variance, beyond what the
        estimate explains, of the team's squared standard error over the true one, (kurtosis - 1 - skew^2) / n).

        Parameters
        ----------
        n : int
            Customers in the log.

        Returns
        -------
        skew : ndarray, (C,)
            Skewness of each candidate's mean difference with the incumbent.
        excess : ndarray, (C,)
            Unexplained variance of the team's squared standard error over the true one (a ratio, 0 or more).
        """
        g = self.skewness / np.sqrt(n)
        e = np.maximum(self.kurtosis - 1.0 - self.skewness**2, 0.0) / n
        return g, e


def difference_shape(
    sample: EvaluationSample, alpha, candidates: Mapping[str, np.ndarray], specs: Mapping[str, EstimatorSpec], incumbent: str
) -> RowShape | None:
    """The skewness and kurtosis of one logged row's difference of estimator terms, candidate minus incumbent,
    over rows (x, k, a, r) drawn at mixture ``alpha``: exact over the component and the action, the reward
    taken from the sample's one draw per customer and action (``EvaluationSample.reward_draws``); None where
    the sample has no draws. Terms of self-normalised estimators are their linearisation, as in
    ``decision_law``.

    Parameters
    ----------
    sample : EvaluationSample
    alpha : array_like, (K,)
        The logging mixture.
    candidates : mapping of name to ndarray, (M, A)
        Each candidate's probabilities on the sample's customers.
    specs : mapping of name to EstimatorSpec
        The estimator each candidate is judged by.
    incumbent : str
        The candidate every difference is taken against.

    Returns
    -------
    RowShape or None
        Skewness and kurtosis per candidate (C,), None without reward draws.

    Raises
    ------
    CouponmixError
        An estimator that fits its reward model on the log, or a self-normalised one whose policy plays no logged row.
    """
    if sample.reward_draws is None:
        return None
    return _shape(_law_inputs(sample, alpha, candidates, specs), sample, incumbent)


def _shape(inp: _LawInputs, sample: EvaluationSample, incumbent: str) -> RowShape:
    """``difference_shape`` from the law's inputs (the sample must hold reward draws)."""
    names, m = inp.names, inp.comp.shape[1]
    inc = names.index(incumbent)
    shift = np.array([inp.mean[c] - inp.mean[incumbent] for c in names])  # the exact mean: moments about it are stable
    raw = np.zeros((4, len(names)))  # E[(d - shift)^j], j = 1..4, in one pass
    for sl in inp.chunks:
        share, p_bal = inp.rows(sl)
        r = sample.reward_draws[sl][None]  # type: ignore[index]  # difference_shape checked it
        a_terms, c_terms = inp.terms(sl, p_bal)
        psi = [a + c * r for a, c in zip(a_terms, c_terms)]
        for j in range(len(names)):
            e = psi[j] - psi[inc] - shift[j]
            e2 = e * e
            raw[:, j] += [(share * e).sum(), (share * e2).sum(), (share * e2 * e).sum(), (share * e2 * e2).sum()]
    raw /= m
    d1 = raw[0]  # the draws' mean minus the exact one
    central = np.array(
        [
            raw[1] - d1**2,
            raw[2] - 3 * d1 * raw[1] + 2 * d1**3,
            raw[3] - 4 * d1 * raw[2] + 6 * d1**2 * raw[1] - 3 * d1**4,
        ]
    )
    var = central[0]
    ok = var > 0
    skew = np.divide(central[1], var**1.5, out=np.zeros_like(var), where=ok)
    kurt = np.divide(central[2], var**2, out=np.zeros_like(var), where=ok)
    return RowShape(skewness=skew, kurtosis=kurt)


def covariance_root(cov: np.ndarray) -> np.ndarray:
    """A square root L of a covariance (L L^T = cov), robust to rounding (eigenvalues floored at 0).

    Parameters
    ----------
    cov : ndarray, (C, C)
        A symmetric covariance (it is symmetrised first).

    Returns
    -------
    ndarray, (C, C)
        L, not triangular: eigenvectors scaled by the square roots of the eigenvalues.
    """
    lam, vec = np.linalg.eigh((cov + cov.T) / 2)
    return vec * np.sqrt(np.maximum(lam, 0.0))


def rule_outcomes(
    values: np.ndarray,
    bias: np.ndarray,
    cov: np.ndarray,
    incumbent: int,
    draws: int = 200_000,
    seed: int = 0,
    value_cov: np.ndarray | None = None,
    shape: tuple[np.ndarray, np.ndarray] | None = None,
) -> RuleOutcomes:
    """The two deployment rules over ``draws`` draws of the estimates (V + b + N(0, cov), skewed with ``shape``).

    With ``value_cov`` (the candidates' values are themselves estimates, as on a real log), each draw first draws the values from
    N(values, value_cov): the probabilities and regrets then average over what the values may be, and "best" is each draw's best.
    With ``shape`` (``RowShape.at(n)``: per candidate, the skewness g of its mean difference with the incumbent and the unexplained
    variance e of the team's squared standard error over the true one), every candidate's standardised difference with the incumbent
    u becomes u + g (u^2 - 1) / 6 (Cornish-Fisher: the draws keep their correlations, each difference its own skewness) before the
    highest estimate is picked, and the safe rule is judged as a team runs it: the team's standard error is the true one times
    sqrt((1 + g u) exp(sqrt(v) eta - v / 2)), v = log(1 + e), eta ~ N(0, 1): a squared standard error that moves with the estimate as
    the rows' third moment says and varies from log to log, skewed, as their fourth moment says. Without it, the team's is exact.

    Parameters
    ----------
    values, bias : ndarray, (C,)
        The candidates' values (per customer, reward's unit) and their estimators' biases.
    cov, value_cov : ndarray, (C, C)
        The estimates' covariance at the log's size; the values' own (optional, above).
    incumbent, draws, seed : int
        The incumbent's index among the candidates; draws; their seed.
    shape : tuple of two ndarray, (C,) each, optional

    Returns
    -------
    RuleOutcomes
        regret_sd and regret_safe_sd: what a Monte Carlo check's standard error should be built from when costly wrong choices are rare.
    """
    c = len(values)
    g = np.random.default_rng([seed, 20_261_203])
    z = g.standard_normal((draws, c))
    truth = np.broadcast_to(values, (draws, c))
    if value_cov is not None:
        truth = values + g.standard_normal((draws, c)) @ covariance_root(value_cov).T
    est = truth + bias + z @ covariance_root(cov).T
    rows = np.arange(draws)
    best = np.argmax(truth, axis=1)
    var_diffs = np.diag(cov) + cov[incumbent, incumbent] - 2 * cov[:, incumbent]  # (C,) each one against the incumbent
    sds = np.sqrt(np.maximum(var_diffs, 0.0))
    if shape is not None:
        # each candidate's difference with the incumbent, standardised, skewed as its rows say (Cornish-Fisher)
        centre = (truth + bias) - (truth + bias)[:, [incumbent]]
        u = np.divide(est - est[:, [incumbent]] - centre, sds, out=np.zeros_like(est), where=sds > 0)
        u = u + shape[0] * (u * u - 1.0) / 6.0
        est = est[:, [incumbent]] + centre + sds * u
    pick = np.argmax(est, axis=1)
    sd = sds[pick]
    diff = est[rows, pick] - est[:, incumbent]
    se = sd
    if shape is not None:
        skew, excess = shape[0][pick], shape[1][pick]
        v = np.log1p(excess)
        eta = np.random.default_rng([seed, 20_261_206]).standard_normal(draws)
        se = sd * np.sqrt(np.maximum(1.0 + skew * u[rows, pick], 0.01) * np.exp(np.sqrt(v) * eta - v / 2.0))
    lower = diff - Z95 * se
    safe = np.where((pick != incumbent) & (lower > 0), pick, incumbent)
    top = truth[rows, best]
    regret, regret_safe = top - truth[rows, pick], top - truth[rows, safe]
    return RuleOutcomes(
        p_best=float((pick == best).mean()),
        regret=float(regret.mean()),
        p_best_safe=float((safe == best).mean()),
        regret_safe=float(regret_safe.mean()),
        p_switch_safe=float((safe != incumbent).mean()),
        gain=float((truth[rows, pick] - truth[:, incumbent]).mean()),
        gain_safe=float((truth[rows, safe] - truth[:, incumbent]).mean()),
        regret_sd=float(regret.std()),
        regret_safe_sd=float(regret_safe.std()),
        p_pick=(np.bincount(pick, minlength=c) / draws).tolist(),
        p_switch_to=(np.bincount(safe[safe != incumbent], minlength=c) / draws).tolist(),
    )


def decision_value(
    sample: EvaluationSample,
    alpha,
    candidates: Mapping[str, np.ndarray],
    specs: Mapping[str, EstimatorSpec],
    n: int,
    incumbent: str,
    draws: int = 200_000,
    seed: int = 0,
) -> DecisionValue:
    """The decision a log of ``n`` customers at ``alpha`` supports (see the module docstring).

    ``incumbent`` names the candidate in place before the log (the revenue-best component). The rules'
    probabilities and regrets are averages over ``draws`` draws of the estimates' normal law (seed
    ``seed``): deterministic, with a standard error of at most 0.5 / sqrt(draws) on each probability. On a
    real log's sample the candidates' values are estimates: the draws also average over them
    (``value_covariance``).

    Parameters
    ----------
    sample : EvaluationSample
    alpha : array_like, (K,)
        The logging mixture.
    candidates : mapping of name to ndarray, (M, A)
        Each candidate's probabilities on the sample's customers.
    specs : mapping of name to EstimatorSpec
        The estimator each candidate is judged by.
    n : int
        Customers in the log.
    incumbent : str
        One of the candidates.
    draws : int
        At least 100.
    seed : int

    Returns
    -------
    DecisionValue

    Raises
    ------
    CouponmixError
        An incumbent that is not a candidate, draws under 100, n not positive, or as ``decision_law``.
    """
    names = list(candidates)
    if incumbent not in names:
        raise CouponmixError(f"the incumbent {incumbent!r} must be one of the candidates ({', '.join(names)})")
    draws = check_positive_int(draws, "draws", minimum=100)
    inputs = _law_inputs(sample, alpha, candidates, specs)
    values, bias, cov = _law(inputs, sample, check_positive_int(n, "n"))
    inc = names.index(incumbent)
    vcov = value_covariance(sample, candidates)
    shape = None if sample.reward_draws is None else _shape(inputs, sample, incumbent)
    out = rule_outcomes(values, bias, cov, inc, draws, seed, vcov, None if shape is None else shape.at(n))
    kept = {f.name for f in dataclasses.fields(DecisionValue)}  # the law's extra detail stays with rule_outcomes
    found = {k: v for k, v in dataclasses.asdict(out).items() if k in kept}
    return DecisionValue(
        candidates=tuple(names),
        estimators=tuple(specs[c].name for c in names),
        values=values,
        bias=bias,
        cov=cov,
        n=int(n),
        incumbent=incumbent,
        best=names[int(np.argmax(values))],
        draws=draws,
        **found,
    )


def value_covariance(sample: EvaluationSample, candidates: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """(C, C) the covariance of the candidates' values where they are a real log's estimates (the doubly
    robust terms of its rows, ``ObservedRows.policy_value_terms``); None where they are a world's truth.

    Parameters
    ----------
    sample : EvaluationSample
    candidates : mapping of name to ndarray, (M, A)
        Each candidate's probabilities on the sample's customers.

    Returns
    -------
    ndarray, (C, C), or None
        In the reward's unit squared (per customer); None also when the sample has no reward model.
    """
    if sample.observed is None or sample.q is None:
        return None
    terms = sample.observed.policy_value_terms(np.stack([np.asarray(p, float) for p in candidates.values()]), sample.q, sample.mu)
    return np.atleast_2d(np.cov(terms)) / terms.shape[1]


def safe_choice(estimates, terms, incumbent: int) -> int:
    """The safe rule on one log: the index of the highest estimate when the lower end of the 95% interval
    of its difference with the incumbent's is above 0, else the incumbent. ``terms`` are the estimates'
    per-customer terms on that log (``montecarlo.influence``), which give the difference's standard error
    as a team computes it.

    Parameters
    ----------
    estimates : array_like, (C,)
        The candidates' estimates on the log (per customer, reward's unit).
    terms : sequence of array_like, (n,) each
        Each candidate's per-customer terms on the log's n rows.
    incumbent : int
        The incumbent's index.

    Returns
    -------
    int
        The index of the candidate the rule deploys.
    """
    pick = int(np.argmax(estimates))
    if pick == incumbent:
        return incumbent
    diff = np.asarray(terms[pick]) - np.asarray(terms[incumbent])
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    return pick if estimates[pick] - estimates[incumbent] - Z95 * se > 0 else incumbent


def simulate_decisions(
    scenario,
    sample: EvaluationSample,
    alpha,
    candidates: Mapping[str, np.ndarray],
    specs: Mapping[str, EstimatorSpec],
    n: int,
    incumbent: str,
    reps: int,
    seed: int = 0,
    keep_logs: bool = False,
) -> DecisionCheck:
    """Monte Carlo check of ``decision_value``: ``reps`` logs of ``n`` customers drawn with replacement from the sample's customers (so
    the candidates' values are the sample's), each row's component from ``alpha``, its action from that component and its reward from
    ``scenario.sample_rewards``. Every candidate is estimated with obp's estimator (our own per-customer terms must give the same
    estimate; they also give the safe rule's standard error of the difference, as a team would compute it).

    Parameters
    ----------
    scenario, sample, alpha, candidates, specs, n, incumbent, reps, seed
        As in ``decision_value`` (the sample with its covariates), with the scenario that draws the rewards, and ``reps`` logs.
    keep_logs : bool
        Keep each log's choice in the result's ``logs`` (``LoggedChoices``).

    Returns
    -------
    DecisionCheck
    """
    names = list(candidates)
    alpha = np.asarray(alpha, float)
    if sample.x is None:
        raise CouponmixError("simulating decisions needs the evaluation sample's covariates")
    x = sample.x
    comp = sample.comp_probs
    kk, m, a_n = comp.shape
    probs = {c: np.asarray(candidates[c], float) for c in names}
    values = sample._values(np.stack([probs[c] for c in names]))
    best, inc = int(np.argmax(values)), names.index(incumbent)
    p_bal = np.tensordot(alpha, comp, axes=1)
    pick, safe = np.empty(reps, int), np.empty(reps, int)
    diff, se = np.zeros(reps), np.zeros(reps)
    for rep in range(reps):
        g = np.random.default_rng([seed, 7_919, rep])
        idx = g.integers(0, m, n)
        k = np.minimum((g.random(n)[:, None] > np.cumsum(alpha)[None, :]).sum(axis=1), kk - 1)
        pk = comp[k, idx]
        a = np.minimum((g.random(n)[:, None] > pk.cumsum(axis=1)).sum(axis=1), a_n - 1)
        reward = scenario.sample_rewards(x[idx], a, g)
        log = {"action": a, "reward": reward, "pscore": pk[np.arange(n), a], "pscore_avg": p_bal[idx, a]}
        q = None if sample.q is None else sample.q[idx]
        est, phi = np.empty(len(names)), []
        for j, c in enumerate(names):
            pe = probs[c][idx]
            est[j], terms = influence(specs[c], log, pe, q)
            theirs = specs[c].estimate(log, pe, q)
            if not np.isclose(est[j], theirs, rtol=1e-9, atol=1e-9):
                raise RuntimeError(f"{specs[c].name}: own estimate {est[j]} differs from obp's {theirs}")
            phi.append(terms)
        pick[rep] = int(np.argmax(est))
        safe[rep] = safe_choice(est, phi, inc)
        d = np.asarray(phi[pick[rep]]) - np.asarray(phi[inc])
        diff[rep], se[rep] = est[pick[rep]] - est[inc], d.std(ddof=1) / np.sqrt(n)

    def mean_se(v):
        """(mean, its standard error) of ``v`` over the simulated logs."""
        v = np.asarray(v, float)
        return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v)))

    out: dict = {}
    for key, v in (
        ("p_best", pick == best),
        ("regret", values[best] - values[pick]),
        ("p_best_safe", safe == best),
        ("regret_safe", values[best] - values[safe]),
        ("p_switch_safe", safe != inc),
    ):
        out[key], out[key + "_se"] = mean_se(v)
    return DecisionCheck(**out, reps=reps, logs=LoggedChoices(pick, diff, se) if keep_logs else None)


def log_decision(
    sample: EvaluationSample,
    alpha,
    n: int,
    suite,
    incumbent: str,
    error: str = "robust",
    draws: int = 200_000,
    seed: int = 0,
) -> tuple[DecisionValue, dict[str, np.ndarray], dict[str, EstimatorSpec]]:
    """The decision a log of ``n`` customers at ``alpha`` supports, with every target and the incumbent
    component as candidates, each judged by the estimator the decision's criterion (``suite``, ``error``)
    chooses for it at that mixture and log size.

    Parameters
    ----------
    sample : EvaluationSample
    alpha : array_like, (K,)
        The logging mixture.
    n : int
        Customers in the log.
    suite : iterable of EstimatorSpec
        The estimators the criterion chooses from.
    incumbent : str
        A component, the candidate in place before the log.
    error : "robust" or "simulator"
        The criterion's error measure (``criterion.ERRORS``).
    draws, seed : int
        As in ``decision_value``.

    Returns
    -------
    value : DecisionValue
    candidates : dict of name to ndarray, (M, A)
        The incumbent, then every target.
    estimators : dict of name to EstimatorSpec
        The estimator chosen for each candidate.

    Raises
    ------
    CouponmixError
        An incumbent that is not a component, or that has a target's name, or an unknown error.
    """
    return _log_decisions(sample, [alpha], n, suite, incumbent, error, draws, seed)[0]


def _candidates(sample: EvaluationSample, incumbent: str) -> dict[str, np.ndarray]:
    """The incumbent component and every target, by name, as (M, A) probabilities."""
    comps = list(sample.component_names)
    if incumbent not in comps:
        raise CouponmixError(f"the incumbent {incumbent!r} is not a component ({', '.join(comps)})")
    if incumbent in sample.target_names:
        raise CouponmixError(f"the incumbent {incumbent!r} has the name of a future policy: rename one")
    return {incumbent: sample.comp_probs[comps.index(incumbent)], **dict(zip(sample.target_names, sample.target_probs))}


def _log_decisions(sample, alphas, n, suite, incumbent, error, draws, seed) -> list:
    """``log_decision`` at several mixtures, with the criterion on the candidates built once for all."""
    cands = _candidates(sample, incumbent)
    batch = np.array([np.asarray(a, float) for a in alphas])
    laws = Criterion(candidate_sample(sample, cands), list(suite), n, error=error).laws(batch)
    out = []
    for b, alpha in enumerate(batch):
        specs = {c: law.specs[int(law.choice(n)[b])] for c, law in zip(cands, laws)}
        out.append((decision_value(sample, alpha, cands, specs, n, incumbent, draws, seed), cands, specs))
    return out


def decision_summary(
    sample: EvaluationSample, criterion, alphas: Mapping[str, np.ndarray], n: int, incumbent: str, truth_known: bool
) -> DecisionBlock:
    """summary.json's ``decision`` block: at the two named mixtures (``alphas["recommended"]`` and
    ``alphas["no_exploration"]``), what a log of ``n`` customers supports (``log_decision`` with the run's
    criterion), in numbers and words.

    Parameters
    ----------
    sample : EvaluationSample
    criterion : Criterion
        The run's criterion: its estimators and error choose each candidate's estimator.
    alphas : mapping of name to ndarray, (K,)
        Holding "recommended" and "no_exploration".
    n : int
        Customers in the log.
    incumbent : str
        The component in place before the log.
    truth_known : bool
        The values are the simulated world's (else estimates from the user's log).

    Returns
    -------
    DecisionBlock
    """
    where = "in the simulated world" if truth_known else "estimated from your log (its values are estimates, not measurements)"
    names = ("recommended", "no_exploration")
    found = _log_decisions(sample, [alphas[k] for k in names], n, criterion.specs, incumbent, criterion.error, 200_000, 0)
    at = {key: DecisionAt.from_dict(dv.to_dict()) for key, (dv, _, _) in zip(names, found)}
    return DecisionBlock(
        incumbent=incumbent,
        n=int(n),
        rules={
            "estimated_best": "deploy the candidate with the highest estimate",
            "safe": "leave the incumbent only when the lower end of the 95% interval of the estimated difference is above 0",
        },
        basis=where,
        method=(
            "joint law of the chosen estimators' estimates: exact covariances from cross moments, each difference with the "
            "incumbent skewed as its rows are, and the standard error a team computes from its own log drawn to match "
            "the rows' third and fourth moments; 200,000 draws"
        ),
        recommended=at["recommended"],
        no_exploration=at["no_exploration"],
    )


def _payback_grid(sample, criterion, alphas, cands, incumbent, sizes, horizon, revenue, v_inc, rule, draws, seed) -> tuple:
    """(net revenue, chance of deploying the best) per mixture and log size (B, S): each candidate judged by the
    criterion's estimator at that mixture and size, its decision law computed once per choice of estimators."""
    names = list(cands)
    laws = Criterion(candidate_sample(sample, cands), list(criterion.specs), int(sizes[0]), error=criterion.error).laws(alphas)
    vcov = value_covariance(sample, cands)
    key = "gain_safe" if rule == "safe" else "gain"
    p_key = "p_best_safe" if rule == "safe" else "p_best"
    laws_cache: dict = {}
    grid = np.empty((len(alphas), len(sizes)))
    p_best = np.empty_like(grid)
    for j, size in enumerate(sizes):
        choice = np.stack([law.choice(int(size)) for law in laws])  # (C, B)
        for b in range(len(alphas)):
            chosen = tuple(laws[c].specs[int(choice[c, b])] for c in range(len(names)))
            if (b, chosen) not in laws_cache:
                inputs = _law_inputs(sample, alphas[b], cands, dict(zip(names, chosen)))
                shape = None if sample.reward_draws is None else _shape(inputs, sample, incumbent)
                laws_cache[(b, chosen)] = (*_law(inputs, sample, 1), shape)
            values, bias, cov1, shape = laws_cache[(b, chosen)]
            at = None if shape is None else shape.at(int(size))
            out = rule_outcomes(values, bias, cov1 / size, names.index(incumbent), draws, seed, vcov, at)
            grid[b, j] = horizon * getattr(out, key) - size * (v_inc - revenue[b])
            p_best[b, j] = getattr(out, p_key)
    return grid, p_best


#: summary.json's ``payback.method``
PAYBACK_METHOD = (
    "net = horizon x daily traffic x E[V_deployed - V_incumbent] - log size x (V_incumbent - V_mixture); {draws:,} "
    "draws of the estimates per mixture and size (the decision law, skewed differences and the team's own standard "
    "error included)"
)


def payback(
    sample: EvaluationSample,
    criterion,
    alphas,
    incumbent: str,
    horizon_days: float,
    daily_traffic: float,
    sizes=None,
    rule: str = "safe",
    draws: int = 20_000,
    seed: int = 0,
) -> Payback:
    """What a log is worth over a horizon: for each mixture in ``alphas`` (B, K) and log size in ``sizes``,
    the expected net revenue of "log n customers with alpha, then deploy by ``rule`` for ``horizon_days`` of
    ``daily_traffic`` customers" against "keep the incumbent and do not explore":

        net(alpha, n) = horizon_days x daily_traffic x gain(alpha, n) - n (V_incumbent - V_alpha)

    with gain = E[V_deployed] - V_incumbent from ``rule_outcomes`` (each candidate judged by the criterion's
    estimator at that mixture and size) and V_alpha the mixture's revenue per customer. Returns the best
    (alpha, n) with its value, cost, break-even day (from the start of logging) and chance of deploying
    the best policy, the same for a log without exploration (the incumbent alone), and the whole grid.
    """
    if rule not in ("safe", "estimated_best"):
        raise CouponmixError(f"rule must be safe or estimated_best, got {rule!r}")
    horizon_days = check_positive_float(horizon_days, "horizon_days (--horizon-days)")
    daily_traffic = check_positive_float(daily_traffic, "daily_traffic")
    horizon = horizon_days * daily_traffic
    comps = list(sample.component_names)
    cands = _candidates(sample, incumbent)
    inc = comps.index(incumbent)
    alone = np.eye(len(comps))[inc]
    alphas = np.vstack([np.atleast_2d(np.asarray(alphas, float)), alone[None]])
    if sizes is None:
        sizes = np.unique(np.round(np.geomspace(1_000, max(2_000, horizon), 16)).astype(int))
    sizes = np.asarray(sizes, int)
    revenue = alphas @ sample.component_values
    v_inc = float(sample.component_values[inc])
    grid, p_best = _payback_grid(sample, criterion, alphas, cands, incumbent, sizes, horizon, revenue, v_inc, rule, draws, seed)

    def describe(b: int, j: int) -> LogPlan:
        """The log plan of mixture row ``b`` and log size column ``j`` of the grid."""
        size = int(sizes[j])
        cost = float(size * (v_inc - revenue[b]))
        net = float(grid[b, j])
        value = net + cost
        gain = value / horizon
        log_days = size / daily_traffic
        return LogPlan(
            alpha=dict(zip(comps, alphas[b].tolist())),
            exploration_rate=float(1 - alphas[b][inc]),
            log_size=size,
            log_days=log_days,
            logging_cost=cost,
            gain_per_customer=gain,
            value_of_log=value,
            net=net,
            return_on_cost=value / cost if cost > 0 else None,
            break_even_day=(log_days + cost / (daily_traffic * gain)) if gain > 0 and net > 0 else None,
            p_best=float(p_best[b, j]),
        )

    feasible = grid[:-1]
    flat = int(np.argmax(feasible))
    best_b, best_j = flat // feasible.shape[1], flat % feasible.shape[1]
    jb = int(np.argmax(grid[-1]))
    return Payback(
        horizon_days=horizon_days,
        daily_traffic=daily_traffic,
        rule=rule,
        baseline=f"keep {incumbent} and do not explore (net 0)",
        best=describe(best_b, best_j),
        best_index=best_b,
        no_exploration=describe(len(alphas) - 1, jb),
        sizes=sizes.tolist(),
        exploration_rates=(1 - alphas[:-1, inc]).tolist(),
        net_by_mixture_and_size=grid[:-1].tolist(),
        method=PAYBACK_METHOD.format(draws=draws),
    )

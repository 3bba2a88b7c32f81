"""What a team's own log says by itself: the estimators it supports and each policy's estimate from it.

A calibrated scenario (``couponmix.dataset.calibrated``) holds the team's log (``Scenario.real_log``); these
functions run the OPE estimators on it. They live in the OPE layer so that the dataset layer never imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from couponmix.dataset.scenario import Scenario
from couponmix.infra.records import OPTIONAL, Record
from couponmix.ope.estimators import EstimatorSpec, parse_list, real_log_suite
from couponmix.ope.montecarlo import interval

__all__ = ["LogEstimate", "real_log_estimators", "log_estimates"]


@dataclass
class LogEstimate(Record):
    """One policy's value estimated from a calibrated scenario's real log alone (summary.json's
    ``policies.<name>.log_estimate``)."""

    estimate: float  #: the doubly robust estimate (reward's unit per customer)
    low: float  #: lower end of its 95% interval (reward's unit per customer; at least 0 for a binary reward)
    high: float  #: upper end of its 95% interval (reward's unit per customer; at most 1 for a binary reward)
    estimator: str  #: the estimator, in words
    rows: int  #: logged rows it is computed on
    #: set by the study: |model value - estimate| + the interval's half-width (reward's unit per customer), a 95% bound
    #: on the model-based value's error; None until then
    model_error_bound: float | None = field(default=None, metadata=OPTIONAL)


def real_log_estimators(scenario: Scenario) -> list[EstimatorSpec]:
    """The estimators the scenario's real log supports: the balanced suite for one logger or when the logging
    system's propensity can be rebuilt, and the naive multi-logger forms when there are several loggers
    ([] without a real log).

    Parameters
    ----------
    scenario : Scenario
        A scenario with or without a real log (``Scenario.real_log``).

    Returns
    -------
    list of EstimatorSpec
    """
    log = scenario.real_log()
    if log is None:
        return []
    loggers = int(getattr(scenario, "loggers", 1))
    names = list(real_log_suite(balanced=log["pscore_avg"] is not None, naive=loggers > 1))
    return parse_list(",".join(names))


def log_estimates(scenario: Scenario, policies=None) -> dict[str, LogEstimate] | None:
    """For each target (or ``policies``): the estimate from the real log itself, doubly robust with the
    cross-fitted model, and its 95% interval (own, from the per-row terms; the point equals obp's).

    Parameters
    ----------
    scenario : Scenario
        A calibrated scenario (its cross-fitted reward model and the policies' probabilities on the log).
    policies : iterable of str, optional
        Policy names (default: the scenario's targets).

    Returns
    -------
    dict of str to LogEstimate, or None
        Policy name -> its estimate from the log (``model_error_bound`` left None); None without a real log.
    """
    log = scenario.real_log()
    if log is None:
        return None
    q = scenario.oof_reward_model()  # type: ignore[attr-defined]
    spec = EstimatorSpec("dr") if log["pscore_avg"] is not None else EstimatorSpec("dr", weights="naive")
    out: dict[str, LogEstimate] = {}
    for name in policies or scenario.targets():
        pe = scenario.on_log(name)  # type: ignore[attr-defined]
        est, half = interval(spec, log, pe, q)
        low, high = est - half, est + half
        if getattr(scenario, "binary", False):  # a rate: its interval stays in [0, 1]
            low, high = max(low, 0.0), min(high, 1.0)
        out[name] = LogEstimate(estimate=est, low=low, high=high, estimator=f"doubly robust ({spec.label})", rows=int(len(log["action"])))
    return out

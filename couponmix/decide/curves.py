"""The curves a report plots, computed from the exact objectives.

- Exploration curve: revenue and RMSE per target as the exploration rate eps goes from 0 to 1. Where the
  scenario has a component named ``explore``, eps is its share, the rest going to the revenue-best other
  component (the planner's exploration line). Otherwise eps is the share of traffic taken from the
  revenue-best component and spread evenly over the others.
- Log-size curve: RMSE per target at the recommended mixture against the log size, from the error law
  (one computation gives every n), with the log size also in days at a given daily traffic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from couponmix.infra.records import OPTIONAL, Record
from couponmix.ope.criterion import SelectedLaw
from couponmix.ope.montecarlo import Z95
from couponmix.ope.protocols import Objectives
from couponmix.policy.simplex import rate_mixture

__all__ = [
    "EPS_GRID",
    "LOG_SIZES",
    "ExplorationCurve",
    "LogSizeCurve",
    "exploration_line",
    "best_component",
    "exploration_rate",
    "exploration_curve",
    "log_size_curve",
]

EPS_GRID = np.unique(np.concatenate([np.linspace(0, 1, 41), np.geomspace(1e-3, 0.05, 12)]))
LOG_SIZES = np.unique(np.round(np.geomspace(1_000, 10_000_000, 29)).astype(int))


def exploration_line(objectives: Objectives) -> tuple[np.ndarray, str]:
    """(K,) direction d and a plain description, so that alpha(eps) = (1 - eps) e_best + eps d."""
    names = objectives.component_names
    k = len(names)
    best = best_component(objectives)
    if "explore" in names:
        return np.eye(k)[names.index("explore")], (
            f"exploration rate: the share of customers served by the exploration policy (explore); the rest follow {names[best]}"
        )
    d = np.ones(k) / (k - 1)
    d[best] = 0.0
    return d, (
        f"exploration rate: the share of customers taken from {names[best]} (the revenue-best policy) "
        f"and spread evenly over {', '.join(n for j, n in enumerate(names) if j != best)}"
    )


def best_component(objectives: Objectives) -> int:
    """The revenue-best component other than ``explore`` (the planner's exploit end of the line)."""
    names, values = objectives.component_names, objectives.component_values
    if "explore" in names:
        i_explore = names.index("explore")
        return max((j for j in range(len(names)) if j != i_explore), key=lambda j: values[j])
    return int(np.argmax(values))


#: what every revenue cost is measured against, in every command and file
BASELINE = "no exploration"


def no_exploration_alpha(objectives: Objectives) -> np.ndarray:
    """The mixture with no exploration at all: the revenue-best component alone (``best_component``). Every
    revenue cost couponmix states is against it; the floor (``--floor``) is a separate choice, priced apart."""
    return np.eye(len(objectives.component_names))[best_component(objectives)]


def no_exploration_revenue(objectives: Objectives) -> float:
    """Revenue per customer with no exploration (``no_exploration_alpha``): the baseline of every cost."""
    return float(objectives.revenue(no_exploration_alpha(objectives)[None])[0])


def exploration_rate(objectives: Objectives, alpha: np.ndarray) -> float:
    """The exploration rate of a mixture in the sense of the curve: the explore share where there is such a
    component, else the share not given to the revenue-best component."""
    names = objectives.component_names
    if "explore" in names:
        return float(alpha[names.index("explore")])
    return float(1.0 - alpha[best_component(objectives)])


@dataclass
class ExplorationCurve(Record):
    """Revenue and each future policy's error along the exploration line (summary.json's
    ``exploration_curve``), at ``len(eps)`` rates. Revenue and errors per customer in the reward's unit.

    Attributes
    ----------
    definition : str
        What the exploration rate means here, in words.
    n : int
        The log size the errors are for.
    eps : list of float, (R,)
        The rates, fractions; 0 is no exploration.
    revenue : list of float, (R,)
    rmse : dict of str to list of float or None
        Per future policy, the criterion's error at each rate (None where the mix cannot evaluate it).
    estimator, sampling_error, interval_95 : dict or None
        Per future policy and rate (under the criterion only): the estimator chosen, the part of the error
        the log shows, and the 95% half-width.
    revenue_cost_per_10k_customers : list of float, (R,)
        Against no exploration.
    tolerance : float or None
        With ``--tol``; ``log_size_needed`` then gives, per rate, the customers an error at most ``tolerance``
        needs (None where no log size suffices).
    """

    definition: str
    n: int
    eps: list[float]
    revenue: list[float]
    rmse: dict[str, list[float | None]]
    estimator: dict[str, list[str]] | None = field(default=None, metadata=OPTIONAL)
    sampling_error: dict[str, list[float]] | None = field(default=None, metadata=OPTIONAL)
    interval_95: dict[str, list[float | None]] | None = field(default=None, metadata=OPTIONAL)
    revenue_cost_per_10k_customers: list[float] = field(default_factory=list)
    tolerance: float | None = field(default=None, metadata=OPTIONAL)
    log_size_needed: list[float | None] | None = field(default=None, metadata=OPTIONAL)


@dataclass
class LogSizeCurve(Record):
    """Each future policy's error at the recommended mix against the log size (summary.json's
    ``log_size_curve``): ``log_size`` customers, ``days`` of ``daily_traffic``, ``rmse`` per policy."""

    log_size: list[float]
    daily_traffic: float
    days: list[float]
    rmse: dict[str, list[float]]


def exploration_curve(objectives: Objectives, n: int, tol: float | None = None) -> ExplorationCurve:
    """Revenue and each future policy's error at every rate of ``EPS_GRID`` along the exploration line."""
    d, definition = exploration_line(objectives)
    alphas = rate_mixture(len(objectives.component_names), best_component(objectives), d, EPS_GRID)
    laws = objectives.laws(alphas)
    rmse = {t: np.where(law.supported, law.rmse(n), np.nan) for t, law in zip(objectives.target_names, laws)}
    revenue = objectives.revenue(alphas).tolist()
    out = ExplorationCurve(
        definition=definition,
        n=int(n),
        eps=EPS_GRID.tolist(),
        revenue=revenue,
        rmse={t: [None if np.isnan(v) else float(v) for v in r] for t, r in rmse.items()},
        # eps = 0 is no exploration: the baseline of every cost
        revenue_cost_per_10k_customers=(10_000 * (revenue[0] - np.asarray(revenue))).tolist(),
    )
    selected = [law for law in laws if isinstance(law, SelectedLaw)]
    if len(selected) == len(laws):  # a Criterion: which estimator each point uses, and its sampling error
        out.estimator = {t: [law.specs[i].name for i in law.choice(n)] for t, law in zip(objectives.target_names, selected)}
        out.sampling_error = {
            t: [float(law.laws[i].sampling_error(n)[j]) for j, i in enumerate(law.choice(n))]
            for t, law in zip(objectives.target_names, selected)
        }
        # the 95% half-width (the headline's): the robust error's bias part, |computed bias| + bound, plus
        # 1.96 sampling errors; the bias part is sqrt(rmse^2 - sampling^2) by the robust error's definition
        errors = out.sampling_error
        out.interval_95 = {
            t: [None if r is None else float(np.sqrt(max(r * r - se * se, 0.0)) + Z95 * se) for r, se in zip(out.rmse[t], errors[t])]
            for t in objectives.target_names
        }
    if tol is not None:  # the log size each rate needs for an error <= tol on every target
        need = np.max([law.log_size_for(tol) for law in laws], axis=0)
        out.tolerance = float(tol)
        out.log_size_needed = [None if not np.isfinite(v) else float(v) for v in need]
    return out


def log_size_curve(objectives: Objectives, alpha: np.ndarray, daily_traffic: float) -> LogSizeCurve:
    """Each future policy's error at ``alpha`` for every log size of ``LOG_SIZES``."""
    laws = objectives.laws(np.asarray(alpha, float)[None, :])
    return LogSizeCurve(
        log_size=LOG_SIZES.tolist(),
        daily_traffic=float(daily_traffic),
        days=(LOG_SIZES / daily_traffic).tolist(),
        rmse={t: [float(law.rmse(int(n))[0]) for n in LOG_SIZES] for t, law in zip(objectives.target_names, laws)},
    )

"""The contextual answer as typed records (``decide.contextual.contextual_block``; summary.json's
``contextual`` block), with the logistic family's parameters in words (``LogisticParameters``) and the front a
search over a family's parameters returns (``SearchFront``). Every revenue and error is in the reward's unit per
customer, every cost per 10,000 customers against no exploration, every rate and share a fraction in [0, 1]
unless its name ends in ``_pct``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from couponmix.infra.records import OPTIONAL, Record, json_key, optional_unless

__all__ = [
    "ContextualBlock",
    "ContextualFront",
    "ContextualGroup",
    "ContextualSearch",
    "FrontPoint",
    "GlobalPoint",
    "LogisticParameters",
    "RuleAt",
    "SearchFront",
]


@dataclass(kw_only=True)
class LogisticParameters(Record):
    """The logistic family's curve in words (``LogisticShape.parameters``; ``LogisticShape.theta`` is the
    inverse): the rate falls from ``cap`` where the best coupon is least certain (small predicted margins) to
    ``floor`` where it is clearest, crossing halfway at ``midpoint`` over a width ``scale``,

        eps(m) = floor + (cap - floor) / (1 + exp((m - midpoint) / scale)).

    Attributes
    ----------
    floor, cap : float
        The lowest and highest exploration rates, fractions in [0, 1] (cap >= floor).
    midpoint : float
        The predicted margin where the rate is halfway between cap and floor (reward's unit per customer).
    scale : float
        How gradually the rate falls around the midpoint (reward's unit per customer; > 0).
    """

    floor: float  #: exploration rate where the best coupon is clearest (large margins), a fraction in [0, 1]
    cap: float  #: exploration rate where it is least certain (small margins), floor + rise, a fraction in [0, 1]
    midpoint: float  #: predicted margin where the rate is halfway between cap and floor (reward's unit per customer)
    scale: float  #: width of the fall around the midpoint, in predicted margin (reward's unit per customer; > 0)


@dataclass(kw_only=True, eq=False)
class SearchFront(Record):
    """The non-dominated set of every rule a search over a family's parameters evaluated
    (``contextual.search_front``), F rules by increasing error. Its fields are numpy arrays (written as lists
    by ``to_dict``), so records compare by identity.

    Attributes
    ----------
    x : ndarray, (F, P)
        Each rule's parameters (the G group rates, or the family's 4).
    eps : ndarray, (F, G)
        Each rule's exploration rate per group, fractions in [0, 1].
    revenue : ndarray, (F,)
        Reward per customer under each rule (reward's unit).
    error : ndarray, (F,)
        The criterion's error (its aggregate of ``errors``; reward's unit per customer), increasing.
    errors, intervals_95 : ndarray, (F, T)
        Each future policy's error (RMSE) and 95% half-width (reward's unit per customer), from the same laws.
    evaluations : int
        Rules evaluated by the search, seeds included.
    """

    x: np.ndarray  #: (F, P) each rule's parameters: group rates (fractions) or the family's (LogisticShape's theta)
    eps: np.ndarray  #: (F, G) each rule's exploration rate per group, fractions in [0, 1]
    revenue: np.ndarray  #: (F,) reward per customer under each rule (reward's unit)
    error: np.ndarray  #: (F,) the criterion's error, increasing (reward's unit per customer)
    errors: np.ndarray  #: (F, T) each future policy's RMSE (reward's unit per customer)
    intervals_95: np.ndarray  #: (F, T) each future policy's 95% half-width (reward's unit per customer)
    evaluations: int  #: rules the search evaluated, seeds included (a count)


@dataclass(kw_only=True)
class ContextualGroup(Record):
    """One group of customers: its label, its share of traffic, and what exploring one of its customers gives
    up (the exploit policy's value there minus the explorer's)."""

    label: str
    share: float
    explore_cost_per_customer: float


@dataclass(kw_only=True)
class FrontPoint(Record):
    """One rule of the contextual front, with what the report's slider over the rules shows there.

    Attributes
    ----------
    error : float
        The criterion's error (its aggregate of ``errors``).
    revenue : float
        Reward per customer under the rule.
    exploration_rate : list of float, (G,)
        Each group's exploration rate.
    explored_share : float
        Share of all traffic explored.
    revenue_cost_per_10k_customers : float
        Against no exploration (negative: a gain).
    errors, intervals_95 : dict of str to float
        Each future policy's error (RMSE) and 95% half-width.
    intervals_95_pct : dict of str to float or None
        The half-widths as a percent of each policy's value (None for a value of 0).
    worst_interval_95_pct : float or None
        The widest of them.
    """

    error: float
    revenue: float
    exploration_rate: list[float]
    explored_share: float
    revenue_cost_per_10k_customers: float
    # what the slider shows: None in a summary written before the front carried it
    errors: dict[str, float] | None = None
    intervals_95: dict[str, float] | None = None
    intervals_95_pct: dict[str, float | None] | None = None
    worst_interval_95_pct: float | None = None


@dataclass(kw_only=True)
class RuleAt(Record):
    """The rule at one named precision (the recommendation's error, the tolerance). An unreachable precision
    has only ``error`` and ``reachable``.

    Attributes
    ----------
    error : float
        The precision asked for (the criterion's error).
    reachable : bool
    exploration_rate, explored_share, errors, intervals_95, intervals_95_pct, worst_interval_95_pct
        As in ``FrontPoint``.
    global_exploration_rate : float
        One rate for everyone reaching the same precision.
    revenue_cost_per_10k_customers, global_revenue_cost_per_10k_customers : float
        The rule's cost and one rate's, against no exploration.
    revenue_gain_per_10k_customers : float
        Revenue kept against one rate for everyone at the same precision.
    beats_no_exploration : bool
        The rule earns more than no exploration (then the saving is the whole cost and more).
    saving_pct : float
        The saving as a percent of one rate's cost, at most 100.
    found_by : str
        "one rate for everyone", "SLSQP", "NSGA-II" or "NSGA-II, then SLSQP".
    rule : str
        The rule in words.
    parameters : LogisticParameters or None
        The family's parameters (logistic rules).
    front_index : int
        The rule's place on the contextual front.
    """

    error: float
    reachable: bool
    exploration_rate: list[float] | None = field(default=None, metadata=OPTIONAL)
    explored_share: float | None = field(default=None, metadata=OPTIONAL)
    global_exploration_rate: float | None = field(default=None, metadata=OPTIONAL)
    errors: dict[str, float] | None = field(default=None, metadata=OPTIONAL)
    intervals_95: dict[str, float] | None = field(default=None, metadata=OPTIONAL)
    intervals_95_pct: dict[str, float | None] | None = field(default=None, metadata=OPTIONAL)
    worst_interval_95_pct: float | None = field(default=None, metadata=optional_unless("reachable"))
    revenue_cost_per_10k_customers: float | None = field(default=None, metadata=OPTIONAL)
    global_revenue_cost_per_10k_customers: float | None = field(default=None, metadata=OPTIONAL)
    revenue_gain_per_10k_customers: float | None = field(default=None, metadata=OPTIONAL)
    beats_no_exploration: bool | None = field(default=None, metadata=OPTIONAL)
    saving_pct: float | None = field(default=None, metadata=OPTIONAL)
    found_by: str | None = field(default=None, metadata=OPTIONAL)
    rule: str | None = field(default=None, metadata=OPTIONAL)
    parameters: LogisticParameters | None = field(default=None, metadata=OPTIONAL)
    front_index: int | None = field(default=None, metadata=OPTIONAL)


@dataclass(kw_only=True)
class ContextualSearch(Record):
    """How the family's parameters were searched."""

    method: str
    parameters: int
    pop_size: int
    generations: int
    seeds: int
    evaluations: int


@dataclass(kw_only=True)
class GlobalPoint(Record):
    """One rate for everyone: the criterion's error, the revenue per customer and the rate."""

    error: float
    revenue: float
    exploration_rate: float


@dataclass(kw_only=True)
class ContextualFront(Record):
    """Both fronts for the figure: the rules (sorted by error) and one rate for everyone."""

    contextual: list[FrontPoint]
    global_: list[GlobalPoint] = field(metadata=json_key("global"))


@dataclass(kw_only=True)
class ContextualBlock(Record):
    """The contextual answer (``run --contextual``).

    Attributes
    ----------
    spec : str or None
        The ``--contextual`` value the run was given.
    family, grouped_by : str
        The rule's family and what its groups are cut by.
    groups : list of ContextualGroup
    grouping : dict
        What ``simulate --contextual-from`` needs to log under the rule (``Grouping.to_dict``).
    components : dict of str to str
        The exploit and explore components by role.
    at : dict of str to RuleAt
        The rule at each named precision.
    search : ContextualSearch
    front : ContextualFront
    recommended : bool or None
        Whether the rule is the recommendation (the same precision for less than one rate for everyone).
    """

    spec: str | None = field(default=None, metadata=OPTIONAL)
    family: str
    grouped_by: str
    groups: list[ContextualGroup]
    grouping: dict
    components: dict[str, str]
    at: dict[str, RuleAt]
    search: ContextualSearch
    front: ContextualFront
    recommended: bool | None = field(default=None, metadata=OPTIONAL)

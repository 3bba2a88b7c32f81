"""Contextual exploration: an exploration rate that depends on the customer, through a small family a
marketing team can deploy and audit.

A ``Grouping`` cuts customers into a few groups: the scenario's segments (a categorical covariate), quantile
bins of a chosen feature, or quantile bins of the exploit model's *predicted margin* (its best action's
predicted revenue minus the runner-up's). Group g explores at its own rate eps_g: customers in g are logged
by the mixture alpha_g = (1 - eps_g) e_exploit + eps_g e_explore, so the balanced propensity is
p(a|x) = sum_k alpha_k(x) pi_k(a|x) with alpha(x) = alpha_{g(x)}.

**Exactness.** Every moment the error formulas need is a mean over customers of a per-customer term, so
the population's moments are the group shares times each group's moments at its own mixture
(``Moments.combine``); the exact revenue and error formulas carry over unchanged. The global ratio is the
constant eps; ``ContextualCriterion`` at a constant eps reproduces ``Criterion`` at that mixture.

**Optimisation.** pymoo's NSGA-II searches the family's parameters (each group's rate, or the logistic
curve's four parameters) for the two objectives, revenue and the criterion's worst-target error. Its first
population is seeded with constant rates (the global ratio) and with least-cost rules found by SLSQP (scipy)
at a few precisions, and the front is the non-dominated set of everything evaluated, the constant rates
included: it can never come out worse than one rate for everyone. At a named precision (the recommendation's
error, the tolerance) the rule is the cheapest of the front's best point within that error, an SLSQP
least-cost rule started from the best constant rate, and that constant rate. Logs record each customer's
own alpha(x) and p(a|x); obp's balanced estimators apply unchanged (``ContextualMixture``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import expit

from couponmix.decide.contextual_types import (
    ContextualBlock,
    ContextualFront,
    ContextualGroup,
    ContextualSearch,
    FrontPoint,
    GlobalPoint,
    LogisticParameters,
    RuleAt,
    SearchFront,
)
from couponmix.decide.curves import ExplorationCurve, best_component
from couponmix.decide.optimize import finite_differences, furthest_feasible, nondominated_mask, nsga2
from couponmix.errors import CouponmixError
from couponmix.infra.seeding import stream
from couponmix.infra.validation import did_you_mean
from couponmix.ope.criterion import Criterion, interval_95, widest_share
from couponmix.ope.objectives import Moments
from couponmix.policy.contextual import ContextualMixture, Grouping, margin
from couponmix.policy.simplex import rate_mixture

__all__ = [
    "FAMILIES",
    "grouping_for",
    "rule_in_words",
    "check_contextual",
    "contextual_block",
    "front_point",
    "least_cost_rule",
    "Grouping",
    "segment_grouping",
    "feature_grouping",
    "margin_grouping",
    "logistic_grouping",
    "LogisticShape",
    "ContextualCriterion",
    "ContextualMixture",
    "cost_at_error",
    "FamilyParameters",
    "search_front",
]


def _covariate(scenario, feature: str) -> int:
    """The column of covariate ``feature``, or a one-line error naming the scenario's covariates."""
    names = list(scenario.covariate_names)
    if feature not in names:
        raise CouponmixError(f"scenario {scenario.name!r} has no covariate {feature!r} ({', '.join(names)}){did_you_mean(feature, names)}")
    return names.index(feature)


def segment_grouping(scenario, feature: str = "segment") -> Grouping:
    """Groups by the values of a categorical covariate (at most 20): every value the scenario declares
    (``Scenario.categories``, codes 0, 1, ..., however rare), else the values of 50,000 customers drawn with a
    fixed seed.

    Labels are the declared names, or the scenario's ``segment_names`` when there is one per value, else
    "feature = value".

    Parameters
    ----------
    scenario : Scenario
    feature : str
        The categorical covariate's name.

    Returns
    -------
    Grouping
        One group per value.

    Raises
    ------
    CouponmixError
        No such covariate, or more than 20 values.
    """
    j = _covariate(scenario, feature)
    declared = scenario.categories(feature)
    if declared:
        values = [float(v) for v in range(len(declared))]
        labels = list(declared)
    else:
        labels = list(getattr(scenario, "segment_names", ()) or [])
        x = scenario.sample_covariates(50_000, stream(0, "evaluation_sample", 99))
        values = sorted(np.unique(x[:, j]).tolist())
    if len(values) > 20:
        raise CouponmixError(f"{feature} takes {len(values)} values: use --contextual feature bins instead")
    if len(labels) != len(values):
        labels = [f"{feature} = {v:g}" for v in values]
    return Grouping("segment", j, None, values, labels, feature)


def _quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    if len(edges) == 0:
        raise CouponmixError("the value cuts customers into one group only")
    return edges


def _bin_labels(name: str, edges: np.ndarray) -> list[str]:
    out = [f"{name} < {edges[0]:.3g}"]
    out += [f"{name} in [{a:.3g}, {b:.3g})" for a, b in zip(edges[:-1], edges[1:])]
    return out + [f"{name} >= {edges[-1]:.3g}"]


def feature_grouping(scenario, sample_x: np.ndarray, feature: str, bins: int = 4) -> Grouping:
    """Groups by ``bins`` quantile bins of covariate ``feature`` over ``sample_x`` (fewer where quantiles tie).

    Parameters
    ----------
    scenario : Scenario
    sample_x : ndarray, (M, d)
        Customers whose quantiles set the edges.
    feature : str
        The covariate's name.
    bins : int

    Returns
    -------
    Grouping

    Raises
    ------
    CouponmixError
        No such covariate, or all quantiles equal (one group only).
    """
    j = _covariate(scenario, feature)
    edges = _quantile_edges(sample_x[:, j], bins)
    return Grouping("feature", j, edges, None, _bin_labels(feature, edges), feature)


def margin_grouping(scenario, sample_x: np.ndarray, bins: int = 4) -> Grouping:
    """Groups by ``bins`` quantile bins of the reward model's predicted margin on ``sample_x`` (``margin``).

    Parameters
    ----------
    scenario : Scenario
        With a reward model.
    sample_x : ndarray, (M, d)
        Customers whose margins' quantiles set the edges.
    bins : int

    Returns
    -------
    Grouping

    Raises
    ------
    CouponmixError
        No reward model, or all quantiles equal (one group only).
    """
    edges = _quantile_edges(margin(scenario, sample_x), bins)
    return Grouping("margin", None, edges, None, _bin_labels("predicted margin", edges), "predicted margin")


class LogisticShape:
    """Exploration as a logistic function of the predicted margin, with floor and cap: four parameters,
    theta = (floor, rise, midpoint, log scale), and

        eps(m) = floor + rise / (1 + exp((m - midpoint) / scale)),   cap = floor + rise,

    falling monotonically from the cap (customers whose best coupon is uncertain) to the floor (those whose
    best coupon is clear). It is applied in steps: each margin bin explores at the curve's value at the
    bin's median margin, so what is deployed is exactly what the formulas evaluate.

    Parameters
    ----------
    centers : ndarray, (G,)
        Each margin bin's median predicted margin (reward's unit); they also bound the midpoint and, by their
        spread, the scale (from spread / 200 to 2 spread).
    """

    def __init__(self, centers: np.ndarray):
        self.centers = np.asarray(centers, dtype=float)
        spread = float(np.ptp(self.centers)) or 1.0
        self.log_scale_bounds = (np.log(spread / 200), np.log(spread * 2))

    def eps(self, theta: np.ndarray) -> np.ndarray:
        """Each bin's rate for parameters theta.

        Parameters
        ----------
        theta : ndarray, (B, 4) or (4,)
            (floor, rise, midpoint, log scale) per row.

        Returns
        -------
        ndarray, (B, G)
            Exploration rates (fractions; not clipped).
        """
        theta = np.atleast_2d(theta)
        floor, rise, mid, log_s = (theta[:, i : i + 1] for i in range(4))
        return floor + rise * expit((mid - self.centers[None, :]) / np.exp(log_s))

    def constant(self, rate: float, midpoint: float | None = None) -> np.ndarray:
        """The parameters of the constant rule ``rate`` (rise 0).

        Parameters
        ----------
        rate : float
            The exploration rate, a fraction.
        midpoint : float, optional
            Where the (flat) curve's midpoint sits (default: the bins' median centre; reward's unit).

        Returns
        -------
        ndarray, (4,)
            theta, its log scale the middle of its bounds.
        """
        mid = float(np.median(self.centers)) if midpoint is None else midpoint
        return np.array([rate, 0.0, mid, float(np.mean(self.log_scale_bounds))])

    def bounds(self, lo: float, hi: float) -> list[tuple[float, float]]:
        """Bounds of theta for rates in [lo, hi]: floor in [lo, hi], rise in [0, hi - lo], midpoint within the bins' centres,
        and the log scale's bounds.

        Parameters
        ----------
        lo, hi : float
            The least and most rate, fractions.

        Returns
        -------
        list of (float, float), (4,)
            (low, high) of each parameter.
        """
        return [(lo, hi), (0.0, hi - lo), (float(self.centers.min()), float(self.centers.max())), self.log_scale_bounds]

    def theta(self, parameters: LogisticParameters) -> np.ndarray:
        """The parameters theta behind ``parameters`` (the inverse of ``parameters``).

        Parameters
        ----------
        parameters : LogisticParameters

        Returns
        -------
        ndarray, (4,)
            (floor, rise, midpoint, log scale).
        """
        p = parameters
        return np.array([p.floor, p.cap - p.floor, p.midpoint, np.log(p.scale)], dtype=float)

    def parameters(self, theta: np.ndarray) -> LogisticParameters:
        """theta (4,) in words: ``floor``, ``cap`` (= floor + rise), ``midpoint`` and ``scale`` (the inverse of ``theta``).

        Parameters
        ----------
        theta : ndarray, (4,)
            (floor, rise, midpoint, log scale).

        Returns
        -------
        LogisticParameters
        """
        return LogisticParameters(
            floor=float(theta[0]),
            cap=float(theta[0] + theta[1]),
            midpoint=float(theta[2]),
            scale=float(np.exp(theta[3])),
        )


def logistic_grouping(scenario, sample_x: np.ndarray, bins: int = 8) -> Grouping:
    """Margin bins (quantiles) carrying the logistic family over them.

    Parameters
    ----------
    scenario : Scenario
        With a reward model.
    sample_x : ndarray, (M, d)
        Customers whose margins set the edges and each bin's centre (median margin).
    bins : int

    Returns
    -------
    Grouping
        Kind "logistic", its ``shape`` a ``LogisticShape``.

    Raises
    ------
    CouponmixError
        No reward model, or all quantiles equal (one group only).
    """
    m = margin(scenario, sample_x)
    edges = _quantile_edges(m, bins)
    group = np.searchsorted(edges, m, side="right")
    centers = np.array([np.median(m[group == g]) for g in range(len(edges) + 1)])
    return Grouping("logistic", None, edges, None, _bin_labels("predicted margin", edges), "predicted margin", LogisticShape(centers))


class ContextualCriterion:
    """The decision's criterion over contextual mixtures: parameters eps (B, G), one exploration rate per group.

    Follows the ``Objectives`` protocol (``evaluate``, ``revenue``, ``rmse``, ``laws``, names), with eps in
    place of alpha. Components other than the exploit (the revenue-best non-explore component) and
    ``explore`` keep weight 0.

    Parameters
    ----------
    criterion : Criterion
        On an evaluation sample with covariates, with a component named "explore".
    scenario : Scenario
        Puts the sample's customers in their groups.
    grouping : Grouping
        G groups, each holding some of the sample's customers.

    Raises
    ------
    CouponmixError
        No "explore" component, a sample without covariates, or an empty group.
    """

    def __init__(self, criterion: Criterion, scenario, grouping: Grouping):
        names = list(criterion.component_names)
        if "explore" not in names:
            raise CouponmixError("contextual exploration needs a component named 'explore'")
        self.base = criterion
        self.grouping = grouping
        self.component_names = criterion.component_names
        self.target_names = criterion.target_names
        self.n = criterion.n
        self.aggregate = criterion.aggregate
        sample = criterion.sample
        if sample.x is None:
            raise CouponmixError("contextual exploration needs the evaluation sample's covariates")
        group = grouping.group_of(scenario, sample.x)
        self.groups = [np.flatnonzero(group == g) for g in range(grouping.size)]
        if any(len(g) == 0 for g in self.groups):
            raise CouponmixError("a group holds no customer of the evaluation sample")
        self.shares = np.array([len(g) for g in self.groups], float) / sample.size
        self.subs = [Criterion(sample.subset(g), criterion.specs, criterion.n, criterion.aggregate, criterion.error) for g in self.groups]
        self.i_explore = names.index("explore")
        self.i_exploit = best_component(criterion)

    @property
    def size(self) -> int:
        """G, the number of customer groups."""
        return len(self.groups)

    def mixtures(self, eps: np.ndarray) -> np.ndarray:
        """Each group's mixture: (1 - eps) on the exploit component, eps on explore.

        Parameters
        ----------
        eps : array_like, (B, G) or (G,)
            Each group's exploration rate, fractions in [0, 1].

        Returns
        -------
        ndarray, (B, G, K)
        """
        return rate_mixture(len(self.component_names), self.i_exploit, self.i_explore, np.atleast_2d(np.asarray(eps, dtype=float)))

    def revenue(self, eps) -> np.ndarray:
        """Expected reward per customer at the group rates ``eps``.

        Parameters
        ----------
        eps : array_like, (B, G) or (G,)
            Each group's exploration rate, fractions in [0, 1].

        Returns
        -------
        ndarray, (B,)
            Reward's unit per customer.
        """
        return self.revenue_of_mixtures(self.mixtures(eps))

    def revenue_of_mixtures(self, a: np.ndarray) -> np.ndarray:
        """Reward per customer when group g is logged with ``a[:, g]``.

        Parameters
        ----------
        a : ndarray, (B, G, K)
            Group g's mixture in ``a[:, g]`` (any components' weights).

        Returns
        -------
        ndarray, (B,)
            Reward's unit per customer.
        """
        return sum(w * sub.revenue(a[:, g]) for g, (w, sub) in enumerate(zip(self.shares, self.subs)))

    def explored_share(self, eps) -> np.ndarray:
        """Expected share of all traffic sent to exploration: the group rates weighted by the groups' shares.

        Parameters
        ----------
        eps : array_like, (B, G) or (G,)
            Each group's exploration rate, fractions in [0, 1].

        Returns
        -------
        ndarray, (B,)
            Fractions.
        """
        return np.atleast_2d(np.asarray(eps, dtype=float)) @ self.shares

    def laws(self, eps):
        """Each target's ``SelectedLaw`` over the batch of group rates ``eps``.

        Parameters
        ----------
        eps : array_like, (B, G) or (G,)
            Each group's exploration rate, fractions in [0, 1].

        Returns
        -------
        list of SelectedLaw, (T,)
            Each over the batch (B,).
        """
        return self.laws_of_mixtures(self.mixtures(eps))

    def laws_of_mixtures(self, a: np.ndarray) -> list:
        """Each target's ``SelectedLaw`` when group g is logged with ``a[:, g]``.

        Parameters
        ----------
        a : ndarray, (B, G, K)
            Group g's mixture in ``a[:, g]`` (any components' weights).

        Returns
        -------
        list of SelectedLaw, (T,)
            Each over the batch (B,).
        """
        parts = [sub._moments(a[:, g]) for g, sub in enumerate(self.subs)]
        combined = [Moments.combine([parts[g][p] for g in range(self.size)], self.shares.tolist()) for p in range(len(self.base._passes))]
        return self.base._laws_from(combined)

    def rmse(self, eps, n: int | None = None) -> np.ndarray:
        """The criterion's error per target at the group rates ``eps`` and log size n.

        Parameters
        ----------
        eps : array_like, (B, G) or (G,)
            Each group's exploration rate, fractions in [0, 1].
        n : int, optional
            Customers in the log (default: the criterion's).

        Returns
        -------
        ndarray, (B, T)
            RMSE, reward's unit per customer.
        """
        n = self.n if n is None else n
        return np.column_stack([law.rmse(n) for law in self.laws(eps)])

    def precision(self, eps, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Each future policy's error and 95% interval at the rates ``eps`` (B, G), from one computation of
        the laws (what ``rmse`` computes, with the interval beside it).

        Parameters
        ----------
        eps : array_like, (B, G)
            Each group's exploration rate, fractions in [0, 1].
        n : int, optional
            Customers in the log (default: the criterion's).

        Returns
        -------
        rmse : ndarray, (B, T)
            The criterion's error per future policy (RMSE, reward's unit per customer).
        interval_95 : ndarray, (B, T)
            The 95% half-width per future policy (reward's unit per customer): ``ope.criterion.interval_95``
            of the estimator the criterion chooses there.
        """
        n = self.n if n is None else n
        laws = self.laws(eps)
        return np.column_stack([law.rmse(n) for law in laws]), np.column_stack([_interval_95(law, n) for law in laws])

    def combine(self, rmse: np.ndarray) -> np.ndarray:
        """The single error objective from per-target errors, by the criterion's aggregate.

        Parameters
        ----------
        rmse : ndarray, (B, T)
            Reward's unit per customer.

        Returns
        -------
        ndarray, (B,)
        """
        return self.base.combine(rmse)

    def evaluate(self, eps):
        """Both objectives at the group rates ``eps``.

        Parameters
        ----------
        eps : array_like, (B, G) or (G,)
            Each group's exploration rate, fractions in [0, 1].

        Returns
        -------
        revenue : ndarray, (B,)
            Expected reward per customer (reward's unit).
        error : ndarray, (B,)
            The combined error (``combine``), reward's unit per customer.
        per_target : ndarray, (B, T)
            Each target's error, reward's unit per customer.
        """
        r = self.rmse(eps)
        return self.revenue(eps), self.combine(r), r


def _interval_95(law, n: int) -> np.ndarray:
    """(B,) one target's 95% half-width (reward's unit) over a batch: ``ope.criterion.interval_95`` of the parts
    of the estimator the criterion chooses for each mixture, as ``SelectedLaw.summary`` gives them one by one."""
    e, i = law.choice(n), np.arange(len(law.laws[0].bias0))
    return np.asarray(
        interval_95(
            np.stack([x.computed_bias(n) for x in law.laws])[e, i],
            np.stack([np.broadcast_to(x.bound, i.shape) for x in law.laws])[e, i],
            np.stack([x.sampling_error(n) for x in law.laws])[e, i],
        ),
        dtype=float,
    )


def least_cost_rule(obj: ContextualCriterion, max_error: float, start: float, floor: float = 0.01, starts: int = 2, x0=None):
    """The exploration rate per group with the least revenue cost whose error (the criterion's: the worst
    future policy's, or their mean) is at most ``max_error``: SLSQP from the constant ``start``, the cost
    linear in eps, the error's gradient taken by finite differences in one batch. Returns (eps (G,),
    error (T,), parameters); parameters is None for free group rates and a ``LogisticParameters`` for a parametric
    family (``obj.grouping.shape``), whose parameters the search then runs over. None when the solver finds no
    feasible rule. ``x0`` (the group rates, or the family's parameters) starts the solver from a feasible
    rule found elsewhere (the search's) instead of the constant.

    Parameters
    ----------
    obj : ContextualCriterion
    max_error : float
        The criterion's error to stay within (reward's unit per customer).
    start : float
        The constant rate SLSQP starts from, a fraction (clipped to [floor, 1 - floor]).
    floor : float
        Every rate stays in [floor, 1 - floor].
    starts : int
        SLSQP starts for a family: the constant placed at this many midpoints.
    x0 : array_like, (G,) or (4,), optional

    Returns
    -------
    (ndarray (G,), ndarray (T,), LogisticParameters or None) or None
        The group rates (fractions), each target's error there (reward's unit per customer), and the parameters.
    """
    from scipy.optimize import minimize

    if obj.grouping.shape is not None:
        return _least_cost_shape(obj, obj.grouping.shape, max_error, start, floor, starts, x0)

    g = obj.size
    lo, hi = floor, 1 - floor
    slope = _slope(obj)
    eps0 = np.full(g, float(np.clip(start, lo, hi))) if x0 is None else np.clip(np.asarray(x0, dtype=float), lo, hi)
    errors = finite_differences(obj.rmse, 1e-6, (lo, hi))  # (G + 1, T): the point and its neighbours at once

    res = minimize(
        lambda e: -float(slope @ e),
        eps0,
        jac=lambda e: -slope,
        method="SLSQP",
        bounds=[(lo, hi)] * g,
        constraints=[_room(obj, errors, max_error)],
        options={"maxiter": 60, "ftol": 1e-10},
    )
    eps = _pull_back(obj, lambda t: (1 - t) * eps0 + t * np.clip(res.x, lo, hi), max_error)
    if eps is None:
        return None
    return eps, obj.rmse(eps[None])[0], None


def _room(obj: ContextualCriterion, errors, max_error: float) -> dict:
    """SLSQP's constraint that the criterion's error is at most ``max_error``: one inequality per target when
    the error is the worst target's (smooth pieces of the max), one on their mean otherwise. ``errors`` maps
    the parameters to (per-target errors (T,), their Jacobian (P, T))."""
    if obj.aggregate == "max":
        return {"type": "ineq", "fun": lambda x: max_error - errors(x)[0], "jac": lambda x: -errors(x)[1].T}
    return {
        "type": "ineq",
        "fun": lambda x: np.array([max_error - errors(x)[0].mean()]),
        "jac": lambda x: -errors(x)[1].mean(axis=1)[None, :],
    }


def _meets(obj: ContextualCriterion, eps: np.ndarray, max_error: float) -> np.ndarray:
    """(B,) whether the rates ``eps`` (B, G) have the criterion's error at most ``max_error``."""
    return obj.combine(obj.rmse(np.atleast_2d(eps))) <= max_error * (1 + 1e-9)


def _pull_back_t(obj: ContextualCriterion, path, max_error: float) -> float | None:
    """How far along ``path`` (t in [0, 1] -> eps (G,), from the start to the solver's answer) the rates meet
    ``max_error`` (``furthest_feasible``)."""
    return furthest_feasible(lambda t: bool(_meets(obj, path(t), max_error)[0]))


def _pull_back(obj: ContextualCriterion, path, max_error: float):
    """The rates at the furthest feasible point of ``path``, or None when even its start is not feasible."""
    t = _pull_back_t(obj, path, max_error)
    return None if t is None else path(t)


def _slope(obj: ContextualCriterion) -> np.ndarray:
    """d revenue / d eps_g = share_g (V_explore_g - V_exploit_g): revenue is linear in the group rates."""
    return np.array(
        [w * (sub.component_values[obj.i_explore] - sub.component_values[obj.i_exploit]) for w, sub in zip(obj.shares, obj.subs)]
    )


def _least_cost_shape(
    obj: ContextualCriterion, shape: LogisticShape, max_error: float, start: float, floor: float, starts: int = 2, x0=None
):
    """``least_cost_rule`` over a family's parameters: SLSQP from the constant ``start`` placed at ``starts``
    midpoints (quantiles of the bins' margins), finite-difference gradients of the error in one batch; the
    best feasible result."""
    from scipy.optimize import minimize

    lo, hi = floor, 1 - floor
    slope = _slope(obj)
    bounds = shape.bounds(lo, hi)
    h = 1e-6
    errors = finite_differences(lambda pts: obj.rmse(np.clip(shape.eps(pts), 0.0, 1.0)), h)
    gains = finite_differences(lambda pts: (shape.eps(pts) @ slope)[:, None], h)  # revenue gained, (P + 1, 1)

    def cost_grad(t):
        """The gradient (4,) of minus the revenue gained at the family's parameters t."""
        return -gains(t)[1][:, 0]

    best = None
    mids = np.quantile(shape.centers, [0.5] if starts == 1 else np.linspace(0.25, 0.75, starts))
    firsts = [shape.constant(float(np.clip(start, lo, hi)), float(mid)) for mid in mids] if x0 is None else [np.asarray(x0, dtype=float)]
    for theta0 in firsts:
        res = minimize(
            lambda t: -float(shape.eps(t)[0] @ slope),
            theta0,
            jac=cost_grad,
            method="SLSQP",
            bounds=bounds,
            constraints=[
                _room(obj, errors, max_error),
                {"type": "ineq", "fun": lambda t: np.array([hi - t[0] - t[1]]), "jac": lambda t: np.array([[-1.0, -1.0, 0.0, 0.0]])},
            ],
            options={"maxiter": 50, "ftol": 1e-10},
        )
        theta1 = np.clip(res.x, [b[0] for b in bounds], [b[1] for b in bounds])
        t_end = _pull_back_t(obj, lambda t: np.clip(shape.eps((1 - t) * theta0 + t * theta1)[0], lo, hi), max_error)
        if t_end is None:
            continue
        theta = (1 - t_end) * theta0 + t_end * theta1
        eps = np.clip(shape.eps(theta)[0], lo, hi)
        err = obj.rmse(eps[None])[0]
        value = float(slope @ eps)
        if best is None or value > best[0]:
            best = (value, eps, err, theta)
    if best is None:
        return None
    return best[1], best[2], shape.parameters(best[3])


def cost_at_error(revenue: np.ndarray, rmse: np.ndarray, best_revenue: float, target: float) -> float | None:
    """Revenue cost (best revenue minus the front's highest revenue with error <= target), per customer;
    None when no point of the front reaches ``target``.

    Parameters
    ----------
    revenue, rmse : ndarray, (F,)
        The front's revenue and error, reward's unit per customer.
    best_revenue : float
        The revenue costs are against (reward's unit per customer).
    target : float
        The error to reach (reward's unit per customer).

    Returns
    -------
    float or None
        Reward's unit per customer.
    """
    ok = rmse <= target
    if not ok.any():
        return None
    return float(best_revenue - revenue[ok].max())


class FamilyParameters:
    """What the search over a family runs over: each group's rate (free groups) or the family's parameters
    (``grouping.shape``), their bounds, the repair into the feasible set, and the group rates they give.

    Parameters
    ----------
    obj : ContextualCriterion
        Its grouping's family (``shape``; None: free group rates) and number of groups.
    floor : float
        Every rate stays in [floor, 1 - floor], a fraction.
    """

    def __init__(self, obj: ContextualCriterion, floor: float):
        self.shape = obj.grouping.shape
        self.lo, self.hi = float(floor), 1.0 - float(floor)
        if self.shape is None:
            self.xl, self.xu = np.full(obj.size, self.lo), np.full(obj.size, self.hi)
        else:
            b = np.array(self.shape.bounds(self.lo, self.hi), dtype=float)
            self.xl, self.xu = b[:, 0], b[:, 1]

    @property
    def size(self) -> int:
        """P, the number of parameters searched (G group rates, or the family's 4)."""
        return len(self.xl)

    def repair(self, x: np.ndarray) -> np.ndarray:
        """Parameters moved inside the bounds, and for the logistic family cap = floor + rise <= 1 - floor.

        Parameters
        ----------
        x : array_like, (B, P) or (P,)

        Returns
        -------
        ndarray, (B, P)
        """
        x = np.clip(np.atleast_2d(np.asarray(x, dtype=float)), self.xl, self.xu)
        if self.shape is not None:
            x[:, 1] = np.minimum(x[:, 1], self.hi - x[:, 0])
        return x

    def eps(self, x: np.ndarray) -> np.ndarray:
        """The group rates of parameters ``x`` (repaired first).

        Parameters
        ----------
        x : array_like, (B, P) or (P,)

        Returns
        -------
        ndarray, (B, G)
            Rates in [floor, 1 - floor], fractions.
        """
        x = self.repair(x)
        return x if self.shape is None else np.clip(self.shape.eps(x), self.lo, self.hi)

    def constant(self, rate: float, midpoint: float | None = None) -> np.ndarray:
        """The parameters of one rate for everyone.

        Parameters
        ----------
        rate : float
            A fraction, clipped to [floor, 1 - floor].
        midpoint : float, optional
            The logistic family's midpoint (``LogisticShape.constant``).

        Returns
        -------
        ndarray, (P,)
        """
        rate = float(np.clip(rate, self.lo, self.hi))
        return np.full(self.size, rate) if self.shape is None else self.shape.constant(rate, midpoint)

    def of_rule(self, eps: np.ndarray, parameters: LogisticParameters | None) -> np.ndarray:
        """The parameters of a rule ``least_cost_rule`` returned (its group rates ``eps``, or the family's ``parameters``).

        Parameters
        ----------
        eps : ndarray, (G,)
            The rule's group rates.
        parameters : LogisticParameters or None
            The family's parameters (None for free group rates).

        Returns
        -------
        ndarray, (P,)

        Raises
        ------
        ValueError
            A parametric family's rule without its parameters.
        """
        if self.shape is None:
            return np.asarray(eps, dtype=float)
        if parameters is None:
            raise ValueError("a rule of a parametric family carries its parameters")
        return self.shape.theta(parameters)

    def parameters(self, x: np.ndarray) -> LogisticParameters | None:
        """The family's parameters in words (``LogisticShape.parameters``); None when each group's rate is free.

        Parameters
        ----------
        x : array_like, (P,)

        Returns
        -------
        LogisticParameters or None
        """
        return None if self.shape is None else self.shape.parameters(np.asarray(x, dtype=float))


#: NSGA-II settings of the search over a family's parameters: its first population holds the seeds (constant
#: rates and SLSQP rules) and is padded with uniform draws up to SEARCH_POP
SEARCH_POP = 32
SEARCH_GENERATIONS = 25


def search_front(
    obj: ContextualCriterion,
    family: FamilyParameters,
    seeds: np.ndarray,
    pop_size: int = SEARCH_POP,
    generations: int = SEARCH_GENERATIONS,
    seed: int = 0,
    on_generation=None,
) -> SearchFront:
    """NSGA-II (pymoo) over the family's parameters for the two objectives, revenue (maximised) and the
    criterion's combined error (minimised), from a first population holding every row of ``seeds`` (P
    parameters each), padded with uniform draws. The seeds are evaluated too, so the front found is never
    dominated by a seed.

    Parameters
    ----------
    obj : ContextualCriterion
        The criterion the rules are evaluated with.
    family : FamilyParameters
        What the search runs over: its bounds, repair and group rates.
    seeds : ndarray, (S, P)
        Parameters the first population holds.
    pop_size, generations : int
        NSGA-II's population and generations.
    seed : int
        Seed of the padding draws and of NSGA-II.
    on_generation : callable, optional
        Called with each generation's number.

    Returns
    -------
    SearchFront
        The non-dominated set of everything evaluated, by increasing error: each rule's parameters, group
        rates, revenue, error, each future policy's error and 95% half-width (from the same laws), and the
        number of rules evaluated.
    """
    seeds = family.repair(seeds)
    pad = max(pop_size - len(seeds), 0)
    draws = family.xl + (family.xu - family.xl) * stream(seed, "contextual_search").random((pad, family.size))
    first = np.vstack([seeds, family.repair(draws)])
    archive: list[tuple] = []

    def revenue_and_error(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Revenue (N,) and combined error (N,) of the parameters x (N, P), each evaluation kept in ``archive``."""
        x = family.repair(x)
        eps = family.eps(x)
        rev, (err, half) = obj.revenue(eps), obj.precision(eps)
        agg = obj.combine(err)
        archive.append((x, eps, rev, agg, err, half))
        return rev, agg

    nsga2(family.size, (family.xl, family.xu), revenue_and_error, family.repair, first, pop_size, generations, seed, on_generation)
    x, eps, rev, agg, err, half = (np.concatenate([a[i] for a in archive]) for i in range(6))
    keep = nondominated_mask(rev, agg)
    order = np.argsort(agg[keep], kind="stable")
    pick = np.flatnonzero(keep)[order]
    return SearchFront(
        x=x[pick], eps=eps[pick], revenue=rev[pick], error=agg[pick], errors=err[pick], intervals_95=half[pick], evaluations=len(rev)
    )


#: the families ``--contextual`` takes: segment, margin (quartile steps of the predicted margin), logistic (a
#: logistic curve in the margin with floor and cap, in 8 steps), or feature:NAME (quantile bins of a covariate)
FAMILIES = ("segment", "margin", "logistic", "feature:NAME")
FRONT_POINTS = 6


def check_contextual(spec: str, scenario) -> None:
    """Before any work: the ``--contextual`` value names a family, and the covariate it groups by exists.

    Parameters
    ----------
    spec : str
        One of ``FAMILIES`` (feature:NAME with a covariate's name).
    scenario : Scenario

    Raises
    ------
    CouponmixError
        Another value, or no such covariate.
    """
    if spec in ("segment", "margin", "logistic"):
        feature = "segment" if spec == "segment" else None
    elif spec.startswith("feature:") and len(spec) > len("feature:"):
        feature = spec.split(":", 1)[1]
    else:
        raise CouponmixError(f"contextual must be one of {', '.join(FAMILIES)}, got {spec!r}")
    if feature is not None:
        _covariate(scenario, feature)


def grouping_for(spec: str, scenario, sample_x: np.ndarray, bins: int = 4) -> Grouping:
    """The grouping a ``--contextual`` value names.

    Parameters
    ----------
    spec : str
        One of ``FAMILIES``.
    scenario : Scenario
    sample_x : ndarray, (M, d)
        Customers whose quantiles set the bins' edges.
    bins : int
        Bins of margin and feature groupings (logistic has 8).

    Returns
    -------
    Grouping

    Raises
    ------
    CouponmixError
        As ``check_contextual`` and the grouping's builder.
    """
    check_contextual(spec, scenario)
    if spec == "segment":
        return segment_grouping(scenario)
    if spec == "margin":
        return margin_grouping(scenario, sample_x, bins)
    if spec == "logistic":
        return logistic_grouping(scenario, sample_x)
    return feature_grouping(scenario, sample_x, spec.split(":", 1)[1], bins)  # feature:NAME (checked above)


def rule_in_words(grouping: Grouping, eps: np.ndarray, shares: np.ndarray, parameters: LogisticParameters | None = None) -> str:
    """'explore 54% of customers with loyal, 15% of occasional, ... (23% of all traffic)'; for the logistic
    family, the curve in words.

    Parameters
    ----------
    grouping : Grouping
    eps : ndarray, (G,)
        Each group's rate, a fraction.
    shares : ndarray, (G,)
        Each group's share of traffic, a fraction.
    parameters : LogisticParameters, optional
        The logistic family's parameters.

    Returns
    -------
    str
    """
    if parameters is not None:
        p, top, bottom = parameters, float(eps.max()), float(eps.min())
        if top - bottom < 0.005:
            return f"explore {bottom:.0%} of every customer ({float(eps @ shares):.1%} of all traffic)"
        edges = np.asarray(grouping.edges)
        return (
            f"explore {top:.0%} of customers whose best coupon is least certain (predicted margin below {edges[0]:.3g}), "
            f"falling step by step to {bottom:.0%} where it is clearest (above {edges[-1]:.3g}): a logistic curve "
            f"in the margin with floor {p.floor:.0%}, cap {p.cap:.0%}, midpoint {p.midpoint:.3g} and scale "
            f"{p.scale:.2g} ({float(eps @ shares):.1%} of all traffic)"
        )
    order = np.argsort(-eps, kind="stable")
    parts = [
        f"{eps[g]:.0%} of customers with {grouping.labels[g]}"
        if grouping.kind != "segment"
        else f"{eps[g]:.0%} of {grouping.labels[g]} customers"
        for g in order
    ]
    return f"explore {', '.join(parts)} ({float(eps @ shares):.1%} of all traffic)"


def _global_rate(obj: ContextualCriterion, eps_grid, err_g, rev_g, target: float) -> float:
    """The most revenue-keeping constant rate with error <= target: the grid's best, refined by bisection
    toward its neighbour with more revenue (where the error crosses the target), in either direction (the
    explore component may earn more than the exploit)."""
    ok = err_g <= target * (1 + 1e-9)
    i = int(np.flatnonzero(ok)[np.argmax(rev_g[ok])])
    good = float(eps_grid[i])
    richer = [j for j in (i - 1, i + 1) if 0 <= j < len(eps_grid) and rev_g[j] > rev_g[i]]
    if not richer:
        return good
    bad = float(eps_grid[max(richer, key=lambda j: rev_g[j])])
    for _ in range(40):
        mid = 0.5 * (good + bad)
        if obj.evaluate(np.full((1, obj.size), mid))[1][0] <= target:
            good = mid
        else:
            bad = mid
    return good


def contextual_block(
    obj: ContextualCriterion,
    curve: ExplorationCurve,
    best_revenue: float,
    targets: dict[str, float],
    floor: float,
    front_points: int = FRONT_POINTS,
    pop_size: int = SEARCH_POP,
    generations: int = SEARCH_GENERATIONS,
    seed: int = 0,
    on_progress: Callable[[float, str], None] | None = None,
) -> ContextualBlock:
    """The contextual answer at each named precision, the global ratio's cost at the same error beside it, and both fronts for the
    figure. SLSQP least-cost rules (at each named precision and ``front_points`` precisions over the global front) and constant rates
    seed NSGA-II over the family's parameters; the front is the non-dominated set of everything evaluated and of the global grid. The
    rule at a named precision, the cheapest of the front's points, the SLSQP rule and the best constant rate within that error, is on
    the front (``at[name].front_index``); each point carries what the report's slider shows (``front_point``, from laws already computed).

    Parameters
    ----------
    targets : dict of str to float
        Name -> the criterion's error (reward's unit per customer). ``best_revenue``: reward per customer with no exploration;
        ``floor``: each group's least rate, a fraction; ``on_progress(fraction, what)`` hears every SLSQP rule, generation and polish.
    """
    steps = 2 * len(targets) + front_points + generations
    done = 0

    def step(what: str) -> None:
        """Count one step done and tell ``on_progress`` the fraction done and what it was."""
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(min(done / steps, 1.0), what)

    grid = _global_grid(obj, np.asarray(curve.eps, float), floor)
    family = FamilyParameters(obj, floor)
    at: dict[str, RuleAt] = {}
    # 1. SLSQP: least-cost rules at the named precisions and at precisions spread over the global front
    seeds, named = _slsqp_seeds(obj, family, grid, targets, floor, front_points, step, at)
    # 2. NSGA-II over the family's parameters, from those seeds
    searched = search_front(
        obj, family, np.array(seeds), pop_size, generations, seed, lambda g: step(f"search generation {g}/{generations}")
    )
    # 3. the rule at each named precision: the cheapest of the front, the SLSQP rule and the constant rate
    rules: dict[str, FrontPoint] = {}
    for name, (target, start, found) in named.items():
        rules[name], at[name] = _rule_at(obj, family, searched, name, target, start, found, floor, best_revenue, step)
    # 4. the front: the non-dominated set of the search and the grid (the family holds the constant rules), named rules on it
    merged = _merged_front(obj, rules, searched, grid, best_revenue)
    for name, rule in rules.items():
        at[name].front_index = next(i for i, p in enumerate(merged) if p.exploration_rate == rule.exploration_rate)
    eps_grid, rev_g, err_g = grid[:3]
    return ContextualBlock(
        family=obj.grouping.kind,
        grouped_by=obj.grouping.what,
        groups=[
            ContextualGroup(
                label=lab,
                share=float(w),
                explore_cost_per_customer=float(sub.component_values[obj.i_exploit] - sub.component_values[obj.i_explore]),
            )
            for lab, w, sub in zip(obj.grouping.labels, obj.shares, obj.subs)
        ],
        grouping=obj.grouping.to_dict(),  # what simulate --contextual-from needs to log under the rule
        components={"exploit": obj.component_names[obj.i_exploit], "explore": obj.component_names[obj.i_explore]},
        at=at,
        search=ContextualSearch(
            method="NSGA-II (pymoo) over the family's parameters, seeded with constant rates and SLSQP least-cost rules",
            parameters=family.size,
            pop_size=pop_size,
            generations=generations,
            seeds=len(seeds),
            evaluations=searched.evaluations,
        ),
        front=ContextualFront(
            contextual=merged,
            global_=[GlobalPoint(error=float(e), revenue=float(r), exploration_rate=float(x)) for x, r, e in zip(eps_grid, rev_g, err_g)],
        ),
    )


def _global_grid(obj: ContextualCriterion, eps_grid: np.ndarray, floor: float) -> tuple:
    """One rate for everyone on the curve's grid within the floor: (rates, revenue, error, per-target errors,
    per-target 95% half-widths)."""
    grid = np.repeat(eps_grid[:, None], obj.size, axis=1)
    per_g, half_g = obj.precision(grid)
    rev_g, err_g = obj.revenue(grid), obj.combine(per_g)
    keep = (eps_grid >= floor) & (eps_grid <= 1 - floor)
    return eps_grid[keep], rev_g[keep], err_g[keep], per_g[keep], half_g[keep]


def _slsqp_seeds(
    obj, family, grid: tuple, targets: dict, floor: float, front_points: int, step, at: dict[str, RuleAt]
) -> tuple[list, dict]:
    """The search's first population (constant rates and SLSQP least-cost rules, at the named precisions and
    along the global front), and per named precision (its error, the global rate reaching it, the SLSQP rule);
    an unreachable precision is marked in ``at``."""
    eps_grid, rev_g, err_g = grid[:3]
    seeds = [family.constant(float(x)) for x in eps_grid[np.unique(np.linspace(0, len(eps_grid) - 1, 12).round().astype(int))]]
    named = {}
    for name, target in targets.items():
        if not (err_g <= target * (1 + 1e-9)).any():
            at[name] = RuleAt(error=float(target), reachable=False)
            continue
        start = _global_rate(obj, eps_grid, err_g, rev_g, target)
        found = least_cost_rule(obj, target, start, floor)
        step(f"least-cost rule at the {name} precision")
        named[name] = (float(target), start, found)
        seeds.append(family.constant(start))
        if found is not None:
            seeds.append(family.of_rule(found[0], found[2]))
    lo, hi = float(err_g.min()), float(np.quantile(err_g, 0.9))
    for i, target in enumerate(np.geomspace(lo * 1.02, max(hi, lo * 1.05), front_points) if front_points else []):
        ok = err_g <= target
        found = least_cost_rule(obj, float(target), float(eps_grid[ok][np.argmax(rev_g[ok])]), floor, starts=1)
        step(f"least-cost rules along the front {i + 1}/{front_points}")
        if found is not None:
            seeds.append(family.of_rule(found[0], found[2]))
    return seeds, named


def _rule_at(obj, family, searched: SearchFront, name: str, target: float, start: float, found, floor: float, best_revenue: float, step):
    """(the front point of the rule at one named precision, its ``at`` entry): the cheapest of the constant rate,
    the SLSQP rule, the search's best within the error and that best polished by SLSQP."""
    constant_x = family.constant(start)
    options = [(family.eps(constant_x)[0], family.parameters(constant_x), "one rate for everyone")]
    if found is not None:
        options.append((found[0], found[2], "SLSQP"))
    ok = np.flatnonzero(searched.error <= target * (1 + 1e-9))
    if ok.size:
        j = int(ok[np.argmax(searched.revenue[ok])])
        options.append((searched.eps[j], family.parameters(searched.x[j]), "NSGA-II"))
        polished = least_cost_rule(obj, target, start, floor, x0=searched.x[j])  # SLSQP from the search's best
        step(f"polishing the rule at the {name} precision")
        if polished is not None:
            options.append((polished[0], polished[2], "NSGA-II, then SLSQP"))
    revenues = obj.revenue(np.array([o[0] for o in options]))
    best = int(np.argmax(revenues))  # ties keep the earlier, simpler rule
    eps, params, by = options[best]
    laws = obj.laws(eps[None])
    err = np.array([law.rmse(obj.n)[0] for law in laws])
    # each future policy's 95% half-width at the rule, in the reward's unit and as a share of its value
    halves = np.array([law.summary(obj.n, 0).interval_95() for law in laws])
    rule = front_point(obj, np.asarray(eps, float), revenues[best], err, halves, best_revenue)
    cost_global = float(best_revenue - revenues[0])
    cost = float(best_revenue - revenues[best])
    gain = cost_global - cost
    return rule, RuleAt(
        error=target,
        reachable=True,
        exploration_rate=rule.exploration_rate,
        explored_share=rule.explored_share,
        global_exploration_rate=start,
        errors=rule.errors,
        intervals_95=rule.intervals_95,
        intervals_95_pct=rule.intervals_95_pct,
        worst_interval_95_pct=rule.worst_interval_95_pct,
        revenue_cost_per_10k_customers=rule.revenue_cost_per_10k_customers,
        global_revenue_cost_per_10k_customers=10_000 * cost_global,
        # revenue kept per 10,000 customers at the same precision; when the rule beats even the
        # revenue-only mix (exploring earns more than the exploit policy in some group) the saving is the
        # whole cost and more, so it is reported as a gain, not as a percentage above 100
        revenue_gain_per_10k_customers=10_000 * gain,
        beats_no_exploration=bool(cost < 0),
        saving_pct=(100 * min(gain / cost_global, 1.0) if cost_global > 0 else 0.0),
        found_by=by,
        rule=rule_in_words(obj.grouping, eps, obj.shares, params),
        parameters=params,
    )


def _merged_front(obj, rules: dict[str, FrontPoint], searched: SearchFront, grid: tuple, best_revenue: float) -> list[FrontPoint]:
    """The contextual front: the non-dominated set of the search and the global grid, with the named rules on it,
    sorted by error (each point as ``front_point``)."""
    eps_grid, rev_g, _, per_g, half_g = grid
    named_pts = list({tuple(p.exploration_rate): p for p in rules.values()}.values())
    pts = named_pts + [
        front_point(obj, x, r, e, h, best_revenue)
        for x, r, e, h in zip(searched.eps, searched.revenue, searched.errors, searched.intervals_95)
    ]
    pts += [front_point(obj, np.full(obj.size, x), r, e, h, best_revenue) for x, r, e, h in zip(eps_grid, rev_g, per_g, half_g)]
    keep = nondominated_mask(np.array([p.revenue for p in pts]), np.array([p.error for p in pts]))
    keep[: len(named_pts)] = True  # a named rule stays even where another point equals it to the last digit
    keep[len(named_pts) :] &= [all(p.exploration_rate != q.exploration_rate for q in named_pts) for p in pts[len(named_pts) :]]
    return sorted((p for p, k in zip(pts, keep) if k), key=lambda p: p.error)


def front_point(
    obj: ContextualCriterion, eps: np.ndarray, revenue: float, errors: np.ndarray, halves: np.ndarray, best_revenue: float
) -> FrontPoint:
    """One rule of the contextual front as summary.json stores it, with what the report's slider over the rules
    shows there (the same keys and units as the rule at a named precision, ``at``).

    Parameters
    ----------
    obj : ContextualCriterion
        The criterion the rule was evaluated with (its groups' shares and future policies' values).
    eps : ndarray, (G,)
        Each group's exploration rate, fractions in [0, 1].
    revenue : float
        Reward per customer under the rule (reward's unit).
    errors, halves : ndarray, (T,)
        Each future policy's error (RMSE) and 95% half-width (``ope.criterion.interval_95``) at the rule, in
        the reward's unit per customer, from the laws the search computed (no new evaluation).
    best_revenue : float
        Reward per customer with no exploration (reward's unit): the baseline every cost is against.

    Returns
    -------
    FrontPoint
    """
    values = obj.base.sample.target_values
    errors, halves = np.asarray(errors, float), np.asarray(halves, float)
    shares = [float(100.0 * float(h) / abs(v)) if abs(v) > 1e-12 else None for h, v in zip(halves, values)]
    return FrontPoint(
        error=float(obj.combine(errors[None])[0]),
        revenue=float(revenue),
        exploration_rate=np.asarray(eps, float).tolist(),
        explored_share=float(eps @ obj.shares),
        revenue_cost_per_10k_customers=10_000 * float(best_revenue - revenue),
        errors=dict(zip(obj.target_names, errors.tolist())),
        intervals_95=dict(zip(obj.target_names, halves.tolist())),
        intervals_95_pct=dict(zip(obj.target_names, shares)),
        worst_interval_95_pct=widest_share(shares),
    )

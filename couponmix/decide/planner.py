"""Planning over the whole simplex (method.md section 6), on the decision's own criterion.

- ``plan_mixture``: the mixture with the least revenue cost (against the revenue-best mixture of the
  floored simplex) whose error is <= tol for every target at log size n. Revenue is linear in the
  mixture but the error need not be monotone or convex in it (naive-weight estimators lose precision
  as exploration grows; the criterion switches estimators), so this is a constrained search, not a
  bisection: every point of a lattice on the simplex and of geometric ladders along its edges
  (exploration rates from 1e-5 up) is evaluated exactly, the best feasible one is taken, then refined
  by pairwise mass transfers with a shrinking step that keep the constraint. When no mixture reaches tol
  the answer says so and gives the lowest worst-target error found and where.
- ``log_size_at``: the same engine solved for n at a given mixture.

Both take any objectives with the ``Criterion`` interface (``laws`` returning per-target laws with
``rmse(n)`` and ``log_size_for(tol)``), for any scenario and any component names.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations_with_replacement

import numpy as np

from couponmix.decide.curves import exploration_rate, no_exploration_revenue
from couponmix.decide.optimize import finite_differences
from couponmix.infra.records import Record
from couponmix.infra.validation import check_positive_float, check_positive_int
from couponmix.ope.criterion import TargetError
from couponmix.policy.simplex import check_alpha, check_floors

__all__ = ["Plan", "LogSizePlan", "StudyPlan", "plan_mixture", "log_size_at", "candidates"]

#: most lattice points evaluated in the global stage
MAX_LATTICE = 400
LADDER = np.geomspace(1e-5, 0.5, 45)
BATCH = 512
#: successive halvings of the local search's step evaluated in one call to the criterion
SCALES = 8
#: points per round of the batched search for how far along a path the errors stay <= tol
PATH_POINTS = 16


@dataclass(frozen=True)
class Plan(Record):
    """The least-cost mixture with error <= tol for every target (``reachable``), or the best one can do."""

    tol: float  #: the error every target must reach (reward's unit per customer)
    n: int  #: the log size (customers) the errors are for
    reachable: bool  #: whether some mixture reaches ``tol`` for every target
    alpha: dict  #: the mixture: weight by component name (fractions summing to 1)
    exploration_rate: float  #: its exploration rate, a fraction (``decide.curves.exploration_rate``)
    revenue: float  #: expected reward per customer while logging with it (reward's unit)
    #: per customer with no exploration (the revenue-best component alone; reward's unit)
    baseline_revenue: float
    #: per customer, against no exploration (reward's unit; negative: the mix earns more)
    revenue_cost: float
    revenue_cost_pct: float | None  #: percent of the revenue with no exploration (None when that revenue is 0)
    #: the revenue cost per 10,000 customers (reward's unit), the unit of every headline
    revenue_cost_per_10k_customers: float
    worst_error: float  #: the largest target's error at ``alpha`` (reward's unit per customer)
    #: per target: chosen estimator, error and its parts (``Criterion.describe``)
    targets: dict[str, TargetError]
    evaluated: int  #: mixtures evaluated exactly
    note: str  #: the answer in plain words


@dataclass(frozen=True)
class StudyPlan(Plan):
    """A study's plan (``--tol``; summary.json's ``plan``): the least-cost mixture (``Plan``), the criterion it
    was planned with, and the log size the recommended mixture itself needs for the same tolerance."""

    criterion: str  #: the criterion's label
    at_recommended: LogSizePlan  #: the log size the recommended mixture needs for ``tol``


@dataclass(frozen=True)
class LogSizePlan(Record):
    """The least log size at which every target's error is within ``tol``, at one mixture (``log_size_at``).

    Attributes
    ----------
    tol : float
        The error asked for (reward's unit per customer).
    alpha : dict of str to float
        The mixture.
    log_size_needed : float or None
        Customers to log (the largest target's need); None when a bias alone exceeds ``tol``.
    per_target : dict of str to float or None
        Customers each target needs (None: never enough).
    note : str
    """

    tol: float
    alpha: dict
    log_size_needed: float | None  # None: no log size is enough (a bias alone exceeds tol)
    per_target: dict[str, float | None]
    note: str


def _lattice(k: int, floors: np.ndarray, max_points: int = MAX_LATTICE) -> np.ndarray:
    """Points of the floored simplex on a regular lattice with at most ``max_points`` points."""
    h = 1
    while h < max_points and _n_lattice(k, h + 1) <= max_points:  # h bounded: one component has one point
        h += 1
    pts = []
    for combo in combinations_with_replacement(range(k), h):
        pts.append(np.bincount(combo, minlength=k) / h)
    free = 1.0 - floors.sum()
    return floors + free * np.array(pts)


def _n_lattice(k: int, h: int) -> int:
    from math import comb

    return comb(h + k - 1, k - 1)


def candidates(k: int, floors: np.ndarray) -> np.ndarray:
    """Lattice points and, for every ordered pair of vertices, a geometric ladder from one towards the other.

    Parameters
    ----------
    k : int
        Components.
    floors : ndarray, (K,)
        Lowest weight of each component, as ``check_floors`` returns them.

    Returns
    -------
    ndarray, (C, K)
        Distinct mixtures on the floored simplex (at most ``MAX_LATTICE`` lattice points, the K vertices and
        K (K - 1) ladders of ``len(LADDER)`` rates from 1e-5 to 0.5).
    """
    free = 1.0 - floors.sum()
    vertices = floors + free * np.eye(k)
    ladders = [(1 - LADDER)[:, None] * vertices[i] + LADDER[:, None] * vertices[j] for i in range(k) for j in range(k) if i != j]
    return np.unique(np.vstack([_lattice(k, floors), vertices, *ladders]).round(15), axis=0)


def _worst(objectives, alphas: np.ndarray, n: int) -> np.ndarray:
    out = []
    for s in range(0, len(alphas), BATCH):
        laws = objectives.laws(alphas[s : s + BATCH])
        out.append(np.column_stack([law.rmse(n) for law in laws]).max(axis=1))
    return np.concatenate(out) if out else np.zeros(0)


def _moves(alpha: np.ndarray, floors: np.ndarray, step: float) -> np.ndarray:
    """Every transfer of ``step`` (or what is left above the floor) from component i to component j."""
    k = len(alpha)
    out = []
    for i in range(k):
        room = alpha[i] - floors[i]
        if room <= 0:
            continue
        t = min(step, room)
        for j in range(k):
            if j != i:
                a = alpha.copy()
                a[i] -= t
                a[j] += t
                out.append(a)
    return np.array(out) if out else np.zeros((0, k))


def plan_mixture(objectives, tol: float, n: int | None = None, floors=0.0) -> Plan:
    """The least revenue cost subject to the criterion's error <= tol for every target at log size n.

    Parameters
    ----------
    objectives : Criterion (or any objectives with its interface)
    tol : float
        Error every target must reach (reward's unit per customer).
    n : int, optional
        Log size in customers (default: the objectives' n).
    floors : float or (K,) array
        Every component's minimum share.

    Returns
    -------
    Plan
        ``reachable``: the least-cost mixture meeting ``tol``; otherwise the mixture of least worst error found.

    Raises
    ------
    CouponmixError
        tol or n not positive, or bad floors.
    """
    tol = check_positive_float(tol, "tol")
    n = objectives.n if n is None else check_positive_int(n, "n")
    k = len(objectives.component_names)
    floors = check_floors(floors, k)
    cand = candidates(k, floors)
    worst = _worst(objectives, cand, n)
    revenue = objectives.revenue(cand)
    evaluated = len(cand)
    ref = no_exploration_revenue(objectives)
    ok = worst <= tol
    if not ok.any():
        # the lowest error only needs reporting, not a boundary to 1e-7: a coarser final step
        best, extra = _refine(objectives, cand[int(np.argmin(worst))], floors, n, min_step=1e-4)
        evaluated += extra
        return _plan(
            objectives,
            tol,
            n,
            False,
            best,
            ref,
            evaluated,
            f"no mixture reaches an error <= {tol:g} for every future policy with {n:,} customers; "
            f"the lowest worst-policy error found is {float(_worst(objectives, best[None], n)[0]):.4g}",
        )
    i = int(np.flatnonzero(ok)[np.argmax(revenue[ok])])
    best, extra = _refine(objectives, cand[i], floors, n, tol=tol)
    evaluated += extra
    if k > 2:
        # pairwise transfers can stall on a curved boundary of the feasible set, where moving along it needs
        # three weights to change at once: polish by SLSQP and keep the result only if it is better
        best, extra = _polish(objectives, best, floors, n, tol)
        evaluated += extra
    return _plan(
        objectives,
        tol,
        n,
        True,
        best,
        ref,
        evaluated,
        f"the least revenue cost that evaluates every future policy with an error <= {tol:g} from {n:,} customers",
    )


def _refine(objectives, alpha, floors, n, tol=None, min_step=1e-7, max_iter=200, scales=SCALES):
    """Local search by pairwise transfers with a step that halves when no move improves: with ``tol``,
    raise the revenue keeping every error <= tol; without, lower the worst error.

    The moves at ``scales`` successive halvings of the step are evaluated in one batch and the largest step
    with an improving move is taken: the path of trying one step at a time and halving on failure, in fewer
    calls to the criterion. ``max_iter`` counts the steps tried, as that one-at-a-time search would.
    """
    alpha = np.asarray(alpha, float)
    step, evaluated, it = 0.05, 0, 0
    if tol is not None:
        current = float(objectives.revenue(alpha[None])[0])
    else:
        current = -float(_worst(objectives, alpha[None], n)[0])
    while step >= min_step and it < max_iter:
        steps = [step / 2**j for j in range(min(scales, max_iter - it)) if step / 2**j >= min_step]
        groups = [_moves(alpha, floors, s) for s in steps]
        if len(groups[0]) == 0:
            break
        moves = np.vstack(groups)
        w = _worst(objectives, moves, n)
        evaluated += len(moves)
        gain = np.where(w <= tol, objectives.revenue(moves), -np.inf) if tol is not None else -w
        start, taken = 0, False
        for s, group in zip(steps, groups):
            it += 1
            g = gain[start : start + len(group)]
            start += len(group)
            j = int(np.argmax(g))
            if g[j] > current + 1e-15:
                alpha, current, step, taken = group[j], float(g[j]), s, True
                break
        if not taken:
            step = steps[-1] / 2
    return alpha, evaluated


def _polish(objectives, alpha, floors, n, tol, h: float = 1e-7):
    """Most revenue subject to every target's error <= tol on the simplex above ``floors``, by SLSQP from the
    feasible ``alpha`` (revenue is linear in alpha; the errors' gradients by finite differences in one
    batch); then the pairwise search again from there. Returns the better of ``alpha`` and the result."""
    from scipy.optimize import minimize

    k = len(alpha)
    values = objectives.revenue(np.eye(k))  # revenue(alpha) = alpha @ values
    evaluated = 0

    def batch(pts: np.ndarray) -> np.ndarray:
        """Every target's error (P, T) at log size n of the mixtures pts (P, K), counted as evaluated."""
        nonlocal evaluated
        evaluated += len(pts)
        return np.column_stack([law.rmse(n) for law in objectives.laws(pts)])  # (k + 1, T)

    errors = finite_differences(batch, h)

    res = minimize(
        lambda a: -float(a @ values),
        alpha,
        jac=lambda a: -values,
        method="SLSQP",
        bounds=[(float(f), 1.0) for f in floors],
        constraints=[
            {"type": "eq", "fun": lambda a: np.array([a.sum() - 1.0]), "jac": lambda a: np.ones((1, k))},
            {"type": "ineq", "fun": lambda a: tol - errors(a)[0], "jac": lambda a: -errors(a)[1].T},
        ],
        options={"maxiter": 100, "ftol": 1e-12},
    )
    end = np.maximum(np.asarray(res.x, float), floors)
    end = floors + (end - floors) * (1.0 - floors.sum()) / (end - floors).sum()

    def feasible(ts: np.ndarray) -> np.ndarray:
        """Whether the worst error is <= tol at each t of ts (P,) along the segment from alpha to the SLSQP end."""
        nonlocal evaluated
        evaluated += len(ts)
        return _worst(objectives, (1 - ts)[:, None] * alpha + ts[:, None] * end, n) <= tol

    t = _furthest_feasible(feasible)  # the start, alpha, is feasible
    cand = (1 - t) * alpha + t * end
    cand, extra = _refine(objectives, cand, floors, n, tol=tol, min_step=1e-7)
    evaluated += extra
    if float(objectives.revenue(cand[None])[0]) > float(objectives.revenue(alpha[None])[0]):
        return cand, evaluated
    return alpha, evaluated


def _furthest_feasible(feasible, rounds: int = 10, points: int = PATH_POINTS) -> float:
    """How far along a path t in [0, 1] from a feasible start (t = 0) the points stay feasible: 1 when the end
    is; else ``rounds`` rounds, each evaluating the ``points - 1`` evenly spaced t inside the bracket in one batch
    (``feasible(ts)`` -> bools) and narrowing to the last feasible point before the first infeasible one: a
    bracket ``points ** rounds`` times narrower, in ``rounds`` calls where bisection needs one per halving."""
    if feasible(np.ones(1))[0]:
        return 1.0
    good, bad = 0.0, 1.0
    for _ in range(rounds):
        ts = good + (bad - good) * np.arange(1, points) / points  # inside (good, bad): the ends are known
        ok = feasible(ts)
        if ok.all():
            good = float(ts[-1])
        else:
            first_bad = int(np.argmin(ok))
            good, bad = (float(ts[first_bad - 1]) if first_bad > 0 else good), float(ts[first_bad])
    return good


def _plan(objectives, tol, n, reachable, alpha, ref, evaluated, note) -> Plan:
    rev = float(objectives.revenue(alpha[None])[0])
    targets = objectives.describe(alpha, n)
    worst = max(d.rmse for d in targets.values())
    return Plan(
        tol=tol,
        n=int(n),
        reachable=reachable,
        alpha=dict(zip(objectives.component_names, alpha.tolist())),
        exploration_rate=exploration_rate(objectives, alpha),
        revenue=rev,
        baseline_revenue=ref,
        revenue_cost=ref - rev,
        revenue_cost_pct=100.0 * (ref - rev) / abs(ref) if ref else None,
        revenue_cost_per_10k_customers=10_000 * (ref - rev),
        worst_error=float(worst),
        targets=targets,
        evaluated=evaluated,
        note=note,
    )


def log_size_at(objectives, alpha, tol: float) -> LogSizePlan:
    """The least log size with the criterion's error <= tol for every target at mixture ``alpha``.

    Parameters
    ----------
    objectives : Criterion (or any objectives with its interface)
    alpha : array_like, shape (K,)
        The mixture.
    tol : float
        Error every target must reach (reward's unit per customer).

    Returns
    -------
    LogSizePlan
        ``log_size_needed`` (None when no log size reaches ``tol``: a bias remains) and the size each
        target needs (customers, rounded up).

    Raises
    ------
    CouponmixError
        tol not positive, or alpha off the simplex.
    """
    tol = check_positive_float(tol, "tol")
    names = objectives.component_names
    alpha = check_alpha(alpha, len(names), names=names)
    laws = objectives.laws(alpha[None, :])
    per = {t: float(law.log_size_for(tol)[0]) for t, law in zip(objectives.target_names, laws)}
    need = max(per.values())
    mix = dict(zip(names, alpha.tolist()))
    if not np.isfinite(need):
        stuck = [t for t, v in per.items() if not np.isfinite(v)]
        return LogSizePlan(
            tol,
            mix,
            None,
            {t: (v if np.isfinite(v) else None) for t, v in per.items()},
            f"at this mixture the error of {', '.join(stuck)} stays above {tol:g} however many "
            "customers are logged: its bias (or the bound on it) alone exceeds the tolerance",
        )
    return LogSizePlan(
        tol,
        mix,
        float(np.ceil(need)),
        {t: float(np.ceil(v)) for t, v in per.items()},
        f"customers to log at this mixture for an error <= {tol:g} on every future policy",
    )

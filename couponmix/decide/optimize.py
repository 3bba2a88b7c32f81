"""Revenue now versus OPE error later: the Pareto front and the recommended mixture.

pymoo's NSGA-II searches the floored simplex; a repair operator projects every
candidate onto it, so every evaluated mixture is feasible. The front is the
non-dominated set of the final population. The decision rule picks one point:
the knee by default, or the highest revenue with RMSE <= max_rmse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from couponmix.errors import CouponmixError
from couponmix.infra.seeding import stream
from couponmix.infra.validation import check_positive_float, check_positive_int
from couponmix.ope.protocols import Objectives
from couponmix.policy.simplex import check_floors, project

__all__ = [
    "SEGMENT_POINTS",
    "Front",
    "Recommendation",
    "nondominated_mask",
    "initial_population",
    "knee_index",
    "recommend",
    "pareto_front",
    "check_max_rmse",
    "furthest_feasible",
    "finite_differences",
    "nsga2",
]


def nsga2(
    n_var: int,
    bounds: tuple,
    objectives: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    repair: Callable[[np.ndarray], np.ndarray],
    sampling: np.ndarray,
    pop_size: int,
    generations: int,
    seed: int,
    on_generation: Callable[[int], None] | None = None,
) -> np.ndarray:
    """couponmix's one use of pymoo: NSGA-II on two objectives, most revenue and least error.

    Parameters
    ----------
    n_var : int
        Number of decision variables.
    bounds : (lower, upper)
        Scalars or (n_var,) arrays.
    objectives : callable
        (N, n_var) repaired points -> (revenue (N,), error (N,)), both per customer in the reward's unit.
    repair : callable
        (N, n_var) -> (N, n_var): every point the algorithm makes, moved to a feasible one.
    sampling : ndarray, (pop_size, n_var)
        The first population.
    pop_size, generations, seed : int
    on_generation : callable, optional
        Called with the number of generations done.

    Returns
    -------
    ndarray, (M, n_var)
        The final population, repaired.
    """
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.callback import Callback
    from pymoo.core.problem import Problem
    from pymoo.core.repair import Repair
    from pymoo.optimize import minimize

    class Feasible(Repair):
        """pymoo's repair operator: ``repair``."""

        def _do(self, problem, X, **kwargs):
            """The points X (N, n_var) moved to feasible ones."""
            return repair(X)

    class TwoObjectives(Problem):
        """The problem pymoo minimises: (-revenue, error)."""

        def __init__(self):
            """n_var variables within ``bounds``, two objectives."""
            super().__init__(n_var=n_var, n_obj=2, xl=bounds[0], xu=bounds[1])

        def _evaluate(self, X, out, *args, **kwargs):
            """out["F"] (N, 2): minus the revenue and the error of the points X (N, n_var)."""
            revenue, error = objectives(X)
            out["F"] = np.column_stack([-revenue, error])

    class Progress(Callback):
        """Reports each finished generation to ``on_generation``."""

        def notify(self, algorithm):
            """Call ``on_generation`` with the generations done."""
            if on_generation is not None:
                on_generation(algorithm.n_gen)

    algorithm = NSGA2(pop_size=pop_size, sampling=sampling, repair=Feasible(), eliminate_duplicates=True)
    res = minimize(TwoObjectives(), algorithm, ("n_gen", generations), seed=seed, verbose=False, callback=Progress())
    return repair(np.atleast_2d(res.pop.get("X")))


def finite_differences(
    batch: Callable[[np.ndarray], np.ndarray], h: float, bounds: tuple[float, float] | None = None
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """x (P,) -> (f(x) (T,), its Jacobian (P, T)) by forward differences, the point and its P neighbours
    evaluated in one call of ``batch`` ((P + 1, P) points -> (P + 1, T) values), remembered for the last x:
    SLSQP asks for a constraint and its Jacobian at the same point, and the criterion is cheap per point
    only in batches. With ``bounds`` the points are clipped to them and each difference is divided by the
    step actually taken; without, by ``h``.

    Parameters
    ----------
    batch : callable
        (N, P) points -> (N, T) values.
    h : float
        The forward step, in the points' unit.
    bounds : (float, float), optional
        Lower and upper bound of every coordinate.

    Returns
    -------
    callable
        x (P,) -> (f(x) (T,), Jacobian (P, T)), row p the derivative along coordinate p.
    """
    memo: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    def at(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """f(x) (T,) and its forward-difference Jacobian (P, T), from one batch (remembered for the last x)."""
        x = np.asarray(x, float)
        key = x.tobytes()
        if key not in memo:
            pts = np.vstack([x, x + h * np.eye(len(x))])
            if bounds is not None:
                pts = np.clip(pts, *bounds)
            r = batch(pts)
            step = h if bounds is None else np.maximum(pts[1:] - pts[0], 1e-300).max(axis=1)[:, None]
            memo.clear()
            memo[key] = (r[0], (r[1:] - r[0]) / step)
        return memo[key]

    return at


def furthest_feasible(feasible: Callable[[float], bool], steps: int = 30) -> float | None:
    """How far along a path t in [0, 1] the points stay feasible, the path running from a start (t = 0) to a
    solver's answer (t = 1): 1 when the answer is feasible, None when the start is not, else the furthest
    feasible t found by ``steps`` bisections. Gradient solvers end on the boundary, possibly a hair outside;
    this pulls their answer back onto the feasible side.

    Parameters
    ----------
    feasible : callable
        t in [0, 1] -> whether the path's point at t is feasible.
    steps : int
        Bisections.

    Returns
    -------
    float or None
        The furthest feasible t found, in [0, 1].
    """
    if feasible(1.0):
        return 1.0
    if not feasible(0.0):
        return None
    good, bad = 0.0, 1.0
    for _ in range(steps):
        mid = 0.5 * (good + bad)
        good, bad = (mid, bad) if feasible(mid) else (good, mid)
    return good


#: evenly spaced points of the grid that replaces the genetic search when there are two components
SEGMENT_POINTS = 401


@dataclass
class Front:
    """Non-dominated mixtures, sorted by increasing revenue (and so increasing RMSE)."""

    component_names: tuple[str, ...]  #: (K,) the logging components' names
    target_names: tuple[str, ...]  #: (T,) the future policies' names
    alphas: np.ndarray  #: (F, K) the mixtures' weights (fractions summing to 1)
    revenue: np.ndarray  #: (F,) expected reward per customer while logging (reward's unit)
    rmse: np.ndarray  #: (F,) the OPE error aggregated over targets (reward's unit per customer)
    rmse_per_target: np.ndarray  #: (F, T) each target's OPE error (reward's unit per customer)

    def __len__(self) -> int:
        return len(self.revenue)

    def to_frame(self) -> pd.DataFrame:
        """The front as a table, one row per mixture: ``alpha.<component>``, ``revenue``, ``ope_rmse`` and ``ope_rmse.<target>``."""
        cols = {f"alpha.{c}": self.alphas[:, k] for k, c in enumerate(self.component_names)}
        cols["revenue"] = self.revenue
        cols["ope_rmse"] = self.rmse
        cols.update({f"ope_rmse.{t}": self.rmse_per_target[:, j] for j, t in enumerate(self.target_names)})
        return pd.DataFrame(cols)


@dataclass(frozen=True)
class Recommendation:
    """The mixture recommended on a front (``recommend``, or the study's payback rule).

    Attributes
    ----------
    index : int
        Its row in the front.
    rule : str
        "knee", "max_rmse" or "payback".
    meets_max_rmse : bool or None
        Whether its error is within ``max_rmse`` (None when no ``max_rmse`` was asked).
    note : str
        The rule's choice in plain words.
    """

    index: int
    rule: str  # "knee", "max_rmse" or "payback" (set by the study)
    meets_max_rmse: bool | None
    note: str


def nondominated_mask(revenue: np.ndarray, rmse: np.ndarray) -> np.ndarray:
    """Points not dominated in (maximise revenue, minimise rmse), by pymoo's non-dominated sorting; among
    exact duplicates the first is kept.

    Parameters
    ----------
    revenue, rmse : ndarray, (N,)
        Each point's revenue and error (reward's unit per customer).

    Returns
    -------
    ndarray of bool, (N,)
        True for the points kept.
    """
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    keep = np.zeros(len(revenue), dtype=bool)
    if len(revenue) == 0:
        return keep
    F = np.column_stack([-np.asarray(revenue, float), np.asarray(rmse, float)])
    keep[NonDominatedSorting().do(F, only_non_dominated_front=True)] = True
    _, first = np.unique(F, axis=0, return_index=True)  # duplicates: keep the first occurrence only
    dup = np.ones(len(F), dtype=bool)
    dup[first] = False
    keep &= ~dup
    return keep


def initial_population(n_components: int, floors: np.ndarray, pop_size: int, seed: int) -> np.ndarray:
    """Every vertex of the floored simplex, its barycentre, then uniform (Dirichlet(1)) draws.

    Parameters
    ----------
    n_components : int
        K.
    floors : ndarray, (K,)
        Lowest weight of each component, as ``check_floors`` returns them.
    pop_size : int
        Mixtures wanted.
    seed : int
        Seeds the draws (stream (seed, "optimiser")).

    Returns
    -------
    ndarray, (pop_size, K)
        Mixtures on the floored simplex, in that order (cut to the first pop_size).
    """
    free = 1.0 - floors.sum()
    vertices = floors + free * np.eye(n_components)
    centre = floors + free / n_components
    rng = stream(seed, "optimiser")
    rest = floors + free * rng.dirichlet(np.ones(n_components), size=max(pop_size - n_components - 1, 0))
    return np.vstack([vertices, centre, rest])[:pop_size]


def knee_index(revenue: np.ndarray, rmse: np.ndarray) -> int:
    """The front point farthest (after scaling both objectives to [0, 1]) from the chord joining its ends.

    This is the usual geometric knee of a two-objective front (Das 1999; "Kneedle"). pymoo's
    ``HighTradeoffPoints`` answers another question (points whose neighbours trade off badly) and can
    return several points or none, so it is not used for the one recommendation.

    Parameters
    ----------
    revenue, rmse : ndarray, (F,)
        The front's revenue and error (reward's unit per customer).

    Returns
    -------
    int
        The knee's index; with two points or fewer, the one of least error (0 for an empty front).
    """
    if len(revenue) <= 2:
        return int(np.argmin(rmse)) if len(revenue) else 0
    r = (revenue - revenue.min()) / max(np.ptp(revenue), 1e-300)
    e = (rmse - rmse.min()) / max(np.ptp(rmse), 1e-300)
    # chord from (r=0, e=0) to (r=1, e=1); points below it (more revenue for their error) are better
    return int(np.argmax(r - e))


def recommend(front: Front, max_rmse: float | None = None) -> Recommendation:
    """The decision rule: the knee of the front, or the highest revenue with error at most ``max_rmse``.

    Parameters
    ----------
    front : Front
    max_rmse : float, optional
        The largest acceptable aggregated error (reward's unit per customer); None: the knee.

    Returns
    -------
    Recommendation
        ``index`` into the front, the ``rule`` used, whether ``max_rmse`` is met, and a plain-words ``note``.

    Raises
    ------
    CouponmixError
        An empty front.
    """
    if len(front) == 0:
        raise CouponmixError("the optimiser returned an empty front")
    if max_rmse is None:
        i = knee_index(front.revenue, front.rmse)
        return Recommendation(i, "knee", None, "knee of the front: beyond it, each unit of RMSE saved costs more revenue than before")
    ok = np.flatnonzero(front.rmse <= max_rmse)
    if ok.size:
        i = int(ok[np.argmax(front.revenue[ok])])
        return Recommendation(i, "max_rmse", True, f"highest revenue with RMSE <= {max_rmse:g}")
    i = int(np.argmin(front.rmse))
    return Recommendation(
        i,
        "max_rmse",
        False,
        f"no mixture reaches RMSE <= {max_rmse:g} at this log size; the lowest reachable is {front.rmse[i]:.4g}, recommended instead",
    )


def pareto_front(
    objectives: Objectives,
    floors=0.0,
    pop_size: int = 100,
    generations: int = 100,
    seed: int = 0,
    on_generation: Callable[[int], None] | None = None,
) -> Front:
    """Run NSGA-II (pymoo) over the floored simplex and return the non-dominated front.

    Parameters
    ----------
    objectives : Objectives
        A ``Criterion``, ``MixtureObjectives`` or ``StreamingObjectives`` (anything with ``evaluate`` and
        the component and target names).
    floors : float or array_like, shape (K,)
        Every component's minimum share.
    pop_size, generations : int
        NSGA-II settings. With two components the simplex is a segment, evaluated on a fine grid instead.
    seed : int
    on_generation : callable, optional
        Called with the number of generations done.

    Returns
    -------
    Front
        ``alphas`` (F, K), ``revenue`` (F,), ``rmse`` (F,) and ``rmse_per_target`` (F, T), sorted by revenue.

    Raises
    ------
    CouponmixError
        Bad floors, pop_size below K + 2, or generations not a positive integer.
    """
    k = len(objectives.component_names)
    floors = check_floors(floors, k)
    pop_size = check_positive_int(pop_size, "pop-size", minimum=k + 2)
    generations = check_positive_int(generations, "generations")

    if k == 2:  # a segment: exact evaluation on a fine grid (denser near both ends) beats a genetic search
        t = np.unique(np.concatenate([np.linspace(0, 1, SEGMENT_POINTS), np.geomspace(1e-4, 0.05, 60), 1 - np.geomspace(1e-4, 0.05, 60)]))
        free = 1.0 - floors.sum()
        alphas = floors + free * np.column_stack([1 - t, t])
        if on_generation is not None:
            on_generation(generations)
        return _front(objectives, alphas)

    def revenue_and_error(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Revenue (N,) and aggregated error (N,) of the points x (N, K), projected onto the floored simplex."""
        revenue, agg, _ = objectives.evaluate(project(x, floors))
        return revenue, agg

    final = nsga2(
        k,
        (0.0, 1.0),
        revenue_and_error,
        lambda x: project(x, floors),
        initial_population(k, floors, pop_size, seed),
        pop_size,
        generations,
        seed,
        on_generation,
    )
    return _front(objectives, final)


def _front(objectives: Objectives, alphas: np.ndarray) -> Front:
    """The non-dominated mixtures among ``alphas``, sorted by revenue."""
    revenue, agg, per = objectives.evaluate(alphas)
    keep = nondominated_mask(revenue, agg)
    alphas, revenue, agg, per = alphas[keep], revenue[keep], agg[keep], per[keep]
    order = np.argsort(revenue, kind="stable")
    return Front(objectives.component_names, objectives.target_names, alphas[order], revenue[order], agg[order], per[order])


def check_max_rmse(value) -> float | None:
    """``max_rmse`` as a positive float, or None when not given.

    Parameters
    ----------
    value : float or None
        The largest acceptable error (reward's unit per customer).

    Returns
    -------
    float or None

    Raises
    ------
    CouponmixError
        A value that is not a positive number.
    """
    return None if value is None else check_positive_float(value, "max-rmse")

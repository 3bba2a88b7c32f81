"""Planning along the exploration line (method.md section 6).

The exploration rate eps mixes the revenue-best other component ("exploit") with the
component named ``explore``: alpha(eps) = (1 - eps) e_exploit + eps e_explore.

- critical exploration rate eps*(n, tol): the least eps with RMSE <= tol for every target at
  log size n, and its revenue cost against eps = 0 (per customer and in percent);
- log size needed: for a given eps, the least n with RMSE <= tol for every target.

Both come from the error law MSE(n) = (b0 + b1/n)^2 + s^2/n computed once per mixture.
A target the mixture does not support (eps = 0 with a deterministic exploit policy) is never
within tolerance, whatever its computed number.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .curves import best_component
from .errors import CouponmixError
from .objectives import MixtureObjectives
from .validation import check_positive_float

GRID = np.unique(np.concatenate([[0.0], np.geomspace(1e-5, 1.0, 600)]))


@dataclass(frozen=True)
class Plan:
    tol: float
    n: int | None
    eps: float | None
    critical_exploration_rate: float | None
    revenue_cost: float | None
    revenue_cost_pct: float | None
    log_size_needed: float | None
    exploit: str
    note: str

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["log_size_needed"] is not None and not np.isfinite(d["log_size_needed"]):
            d["log_size_needed"] = None
        return d


def exploration_line(objectives: MixtureObjectives) -> tuple[int, int]:
    names = objectives.component_names
    if "explore" not in names:
        raise CouponmixError(f"planning needs a component named 'explore'; this scenario's components are "
                             f"{', '.join(names)}")
    return best_component(objectives), names.index("explore")


def alphas(eps: np.ndarray, k: int, i_exploit: int, i_explore: int) -> np.ndarray:
    eps = np.atleast_1d(np.asarray(eps, float))
    a = np.zeros((len(eps), k))
    a[:, i_exploit] = 1 - eps
    a[:, i_explore] = eps
    return a


def _worst(objectives: MixtureObjectives, a: np.ndarray, n: int) -> np.ndarray:
    """Worst-target RMSE at n, +inf where some target is unsupported."""
    laws = objectives.laws(a)
    rmse = np.column_stack([law.rmse(n) for law in laws]).max(axis=1)
    supported = np.column_stack([law.supported for law in laws]).all(axis=1)
    return np.where(supported, rmse, np.inf)


def revenue_cost(objectives: MixtureObjectives, eps: float, i_exploit: int, i_explore: int) -> tuple[float, float]:
    v = objectives.component_values
    cost = float(eps * (v[i_exploit] - v[i_explore]))
    return cost, 100.0 * cost / abs(v[i_exploit]) if v[i_exploit] else float("nan")


def critical_rate(objectives: MixtureObjectives, tol: float, n: int) -> Plan:
    tol = check_positive_float(tol, "tol")
    i_exploit, i_explore = exploration_line(objectives)
    k = len(objectives.component_names)
    worst = _worst(objectives, alphas(GRID, k, i_exploit, i_explore), n)
    ok = np.flatnonzero(worst <= tol)
    exploit = objectives.component_names[i_exploit]
    if ok.size == 0:
        best = float(np.min(worst))
        return Plan(tol, n, None, None, None, None, None, exploit,
                    f"no exploration rate reaches RMSE <= {tol:g} with {n:,} customers; the best is "
                    f"{best:.4g} (at eps = {GRID[int(np.argmin(worst))]:.3g})")
    i = int(ok[0])
    if i == 0:
        eps = 0.0
    else:   # bisection between the last grid point above tol and the first below
        lo, hi = GRID[i - 1], GRID[i]
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if _worst(objectives, alphas([mid], k, i_exploit, i_explore), n)[0] > tol else (lo, mid)
        eps = float(hi)
    cost, pct = revenue_cost(objectives, eps, i_exploit, i_explore)
    return Plan(tol, n, eps, eps, cost, pct, float(n), exploit,
                f"the least exploration that evaluates every target with RMSE <= {tol:g} from {n:,} customers")


def log_size_needed(objectives: MixtureObjectives, eps: float, tol: float) -> Plan:
    tol = check_positive_float(tol, "tol")
    if not 0 <= eps <= 1:
        raise CouponmixError(f"eps must lie in [0, 1], got {eps}")
    i_exploit, i_explore = exploration_line(objectives)
    k = len(objectives.component_names)
    laws = objectives.laws(alphas([eps], k, i_exploit, i_explore))
    exploit = objectives.component_names[i_exploit]
    cost, pct = revenue_cost(objectives, eps, i_exploit, i_explore)
    if not all(law.supported[0] for law in laws):
        return Plan(tol, None, eps, None, cost, pct, float("inf"), exploit,
                    f"at eps = {eps:g} some target plays actions that are never logged: no log size is enough")
    need = max(float(law.log_size_for(tol)[0]) for law in laws)
    note = (f"customers to log at eps = {eps:g} for RMSE <= {tol:g} on every target" if np.isfinite(need) else
            f"at eps = {eps:g} the estimator's bias alone exceeds {tol:g}: no log size is enough")
    return Plan(tol, None, eps, None, cost, pct, float(np.ceil(need)) if np.isfinite(need) else float("inf"),
                exploit, note)

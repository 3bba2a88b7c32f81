"""Mixture weights on the (floored) probability simplex.

Feasible set: {alpha in R^K : alpha_k >= floor_k, sum_k alpha_k = 1}.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from couponmix.errors import CouponmixError
from couponmix.infra.validation import SIMPLEX_TOL

__all__ = ["SUM_TOL", "check_floors", "check_alpha", "parse_alpha_spec", "project", "barycentre", "rate_mixture"]

log = logging.getLogger("couponmix")

#: mixture weights summing to within this of 1 are divided by their sum (0.333333 three times), with a warning
SUM_TOL = 1e-4


def check_floors(floors, n_components: int) -> np.ndarray:
    """The floors as a float array (a scalar applies to every component).

    Parameters
    ----------
    floors : float or array_like, (K,)
        Lowest weight of each component, a fraction.
    n_components : int
        K.

    Returns
    -------
    ndarray, (K,)

    Raises
    ------
    CouponmixError
        A floor negative or not finite, or floors summing to more than 1.
    """
    f = np.broadcast_to(np.asarray(floors, dtype=float), (n_components,)).copy()
    if not np.isfinite(f).all() or (f < 0).any():
        raise CouponmixError(f"mixture floors must be non-negative numbers, got {f.tolist()}")
    if f.sum() > 1 + SIMPLEX_TOL:
        raise CouponmixError(f"mixture floors sum to {f.sum():.4g} > 1: no mixture satisfies them")
    return f


def check_alpha(alpha, n_components: int, floors=0.0, names: Sequence[str] | None = None) -> np.ndarray:
    """Return alpha as a float array, or raise a one-line error if it is off the floored simplex.

    Parameters
    ----------
    alpha : array_like, (K,)
        Mixture weights, fractions.
    n_components : int
        K.
    floors : float or array_like, (K,)
        Lowest weight of each component.
    names : sequence of str, optional
        Component names, for the error message.

    Returns
    -------
    ndarray, (K,)
        The weights divided by their sum (a sum within ``SUM_TOL`` of 1 is accepted, with a warning).

    Raises
    ------
    CouponmixError
        A wrong shape, a weight not finite or below its floor, weights not summing to 1, or bad floors.
    """
    a = np.asarray(alpha, dtype=float)
    if a.shape != (n_components,):
        raise CouponmixError(f"alpha must have {n_components} weights, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise CouponmixError("alpha contains NaN or infinite weights")
    f = check_floors(floors, n_components)
    below = np.flatnonzero(a < f - SIMPLEX_TOL)
    if below.size:
        k = below[0]
        label = names[k] if names is not None else str(k)
        what = "negative" if f[k] == 0 else f"below its floor {f[k]:g}"
        raise CouponmixError(f"alpha is off the simplex: weight of {label} is {a[k]:g}, {what}")
    total = a.sum()
    if abs(total - 1) > SUM_TOL:
        raise CouponmixError(f"alpha is off the simplex: weights sum to {total:.6g}, not 1")
    if abs(total - 1) > 1e-9:
        log.warning("alpha weights sum to %.9g, not 1 (rounding?): each is divided by the sum", total)
    a = np.clip(a, 0.0, None)
    return a / a.sum()


def parse_alpha_spec(spec: str | Mapping[str, float], names: Sequence[str], floors=0.0) -> np.ndarray:
    """Parse ``"pi1=0.2,pi2=0.4,pi3=0.4"`` (or a mapping) into weights ordered as ``names``.

    Components not mentioned get weight 0.

    Parameters
    ----------
    spec : str or mapping of str to float
        NAME=WEIGHT items separated by commas, or the same as a mapping.
    names : sequence of str, (K,)
        The component names, in order.
    floors : float or array_like, (K,)
        Lowest weight of each component.

    Returns
    -------
    ndarray, (K,)
        The weights, checked by ``check_alpha``.

    Raises
    ------
    CouponmixError
        An item not NAME=WEIGHT, a name twice or unknown, a weight not a number, an empty spec, or weights
        off the floored simplex.
    """
    if isinstance(spec, str):
        items = {}
        for part in filter(None, (s.strip() for s in spec.split(","))):
            if "=" not in part:
                raise CouponmixError(f"alpha spec item {part!r} is not NAME=WEIGHT")
            key, val = (s.strip() for s in part.split("=", 1))
            if key in items:
                raise CouponmixError(f"alpha names component {key!r} twice")
            try:
                items[key] = float(val)
            except ValueError:
                raise CouponmixError(f"alpha weight for {key!r} is not a number: {val!r}") from None
    else:
        items = dict(spec)
    unknown = sorted(set(items) - set(names))
    if unknown:
        raise CouponmixError(f"alpha names unknown component(s) {', '.join(unknown)}; components are {', '.join(names)}")
    if not items:
        raise CouponmixError("alpha spec is empty")
    return check_alpha([items.get(n, 0.0) for n in names], len(names), floors, names)


def project(y: np.ndarray, floors) -> np.ndarray:
    """Euclidean projection of each row of ``y`` onto the floored simplex.

    alpha = floors + proj_{z >= 0, sum z = s}(y - floors), s = 1 - sum(floors),
    with the sort-based algorithm of Duchi et al. (2008), vectorized over rows.

    Parameters
    ----------
    y : array_like, (B, K) or (K,)
        Points to project.
    floors : float or array_like, (K,)
        Lowest weight of each component.

    Returns
    -------
    ndarray, (B, K)
        The nearest weights on the floored simplex (a (K,) input gives one row).

    Raises
    ------
    CouponmixError
        Bad floors (``check_floors``).
    """
    y = np.atleast_2d(np.asarray(y, dtype=float))
    k = y.shape[1]
    f = check_floors(floors, k)
    s = 1.0 - f.sum()
    z = y - f
    if s <= 0:
        return np.broadcast_to(f, y.shape).copy()
    u = -np.sort(-z, axis=1)
    css = np.cumsum(u, axis=1) - s
    idx = np.arange(1, k + 1)
    cond = u - css / idx > 0
    rho = k - 1 - np.argmax(cond[:, ::-1], axis=1)
    theta = css[np.arange(len(y)), rho] / (rho + 1)
    out = np.maximum(z - theta[:, None], 0.0) + f
    # remove rounding drift so every row sums to 1 exactly up to float precision
    out /= out.sum(axis=1, keepdims=True)
    return out


def barycentre(floors, n_components: int) -> np.ndarray:
    """The centre of the floored simplex: every weight strictly inside its bounds.

    Parameters
    ----------
    floors : float or array_like, (K,)
        Lowest weight of each component.
    n_components : int
        K.

    Returns
    -------
    ndarray, (K,)
        floors + (1 - sum(floors)) / K.

    Raises
    ------
    CouponmixError
        Bad floors (``check_floors``).
    """
    f = check_floors(floors, n_components)
    return f + (1.0 - f.sum()) / n_components


def rate_mixture(k: int, exploit: int, explore, eps) -> np.ndarray:
    """The mixtures that send the share ``eps`` of traffic to exploration and the rest to one component: the one
    place an exploration rate becomes a mixture (plan --eps, a contextual rule, the exploration curve).

    Parameters
    ----------
    k : int
        Components.
    exploit : int
        The component that keeps the share 1 - eps (the revenue-best one, ``decide.curves.best_component``).
    explore : int or array_like, (K,)
        The exploring component's index, or a direction on the simplex (weights summing to 1) the share is
        spread over.
    eps : float or array_like, any shape
        Exploration rates, fractions in [0, 1].

    Returns
    -------
    ndarray, (*eps.shape, K)
        (1 - eps) e_exploit + eps d: the exploit component exactly 1 - eps, the explore one exactly eps.
    """
    eps = np.asarray(eps, dtype=float)
    e = np.zeros(k)
    e[exploit] = 1.0
    d = np.eye(k)[explore] if np.ndim(explore) == 0 else np.asarray(explore, dtype=float)
    return (1 - eps)[..., None] * e + eps[..., None] * d

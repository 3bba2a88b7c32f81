"""Input checks in the style of scikit-learn's ``check_array``: fail early, say what is wrong."""

from __future__ import annotations

import numbers

import numpy as np

from couponmix.errors import CouponmixError

__all__ = ["SIMPLEX_TOL", "check_positive_int", "check_positive_float", "check_probability_matrix", "did_you_mean"]

SIMPLEX_TOL = 1e-8


def check_positive_int(value, name: str, minimum: int = 1, maximum: int | None = None) -> int:
    """Return ``value`` as an int, or raise if it is not an integer >= ``minimum`` (and <= ``maximum``).

    Parameters
    ----------
    value : object
        An integer, or a real number with no fractional part (a bool is refused).
    name : str
        What it is, for the message.
    minimum : int
    maximum : int, optional

    Returns
    -------
    int

    Raises
    ------
    CouponmixError
        Not an integer, or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and float(value).is_integer():
            value = int(float(value))
        else:
            raise CouponmixError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise CouponmixError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise CouponmixError(f"{name} must be at most {maximum:,}, got {value:,}")
    return value


def check_positive_float(value, name: str, allow_inf: bool = False) -> float:
    """Return ``value`` as a float, or raise if it is not a number > 0 (or is infinite, unless ``allow_inf``).

    Parameters
    ----------
    value : object
        Anything ``float`` takes.
    name : str
        What it is, for the message.
    allow_inf : bool

    Returns
    -------
    float

    Raises
    ------
    CouponmixError
        Not a number, NaN, not positive, or infinite without ``allow_inf``.
    """
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise CouponmixError(f"{name} must be a number, got {value!r}") from None
    if np.isnan(value) or value <= 0 or (np.isinf(value) and not allow_inf):
        raise CouponmixError(f"{name} must be a positive {'number' if allow_inf else 'finite number'}, got {value}")
    return value


def check_probability_matrix(p, n_rows: int | None = None, n_actions: int | None = None, name: str = "policy") -> np.ndarray:
    """Check that ``p`` is an (n, A) matrix whose rows lie on the probability simplex.

    Parameters
    ----------
    p : array_like, (n, A)
        Action probabilities.
    n_rows, n_actions : int, optional
        The shape it must have.
    name : str
        What returned it, for the message.

    Returns
    -------
    ndarray, (n, A)
        ``p`` as floats.

    Raises
    ------
    CouponmixError
        Not 2-D, the wrong shape, NaN or infinite or negative entries, or a row not summing to 1 (within ``SIMPLEX_TOL``).
    """
    p = np.asarray(p, dtype=float)
    if p.ndim != 2:
        raise CouponmixError(f"{name} must return an (n, A) probability matrix, got shape {p.shape}")
    if n_rows is not None and p.shape[0] != n_rows:
        raise CouponmixError(f"{name} returned {p.shape[0]} rows for {n_rows} customers")
    if n_actions is not None and p.shape[1] != n_actions:
        raise CouponmixError(f"{name} returned {p.shape[1]} actions, the scenario has {n_actions}")
    # two passes in the common case: NaN fails "min >= 0", infinity fails the row-sum tolerance;
    # the slower diagnosis runs only when one of them fails
    low = p.min(initial=0.0)
    sums = p @ np.ones(p.shape[1])  # row sums; a reduction over a short last axis is slow
    worst = np.abs(sums - 1).max(initial=0.0)
    if low >= 0 and worst <= SIMPLEX_TOL:
        return p
    if not np.isfinite(p).all():
        raise CouponmixError(f"{name} returned NaN or infinite probabilities")
    if low < 0:
        raise CouponmixError(f"{name} returned negative probabilities (min {low:.3g})")
    raise CouponmixError(f"{name} rows do not sum to 1 (worst row sums to {sums[np.argmax(np.abs(sums - 1))]:.6g})")


def did_you_mean(word: str, choices) -> str:
    """' (did you mean SAVE10?)' for the closest of ``choices`` to a mistyped ``word`` (difflib), else ''.

    Parameters
    ----------
    word : str
    choices : iterable
        The valid names.

    Returns
    -------
    str
    """
    import difflib

    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""

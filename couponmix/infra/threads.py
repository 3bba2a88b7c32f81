"""How many threads couponmix's own parallel work uses (objective chunks, LightGBM).

Default: every core. Set COUPONMIX_THREADS to share the machine, e.g. 1 when
several couponmix processes run side by side (the test suite does this under
pytest-xdist: OpenMP threads that wait for each other across processes are slow).
"""

from __future__ import annotations

import os

from couponmix.errors import CouponmixError

__all__ = ["default_threads", "free_threads"]


def default_threads() -> int:
    """Threads for couponmix's own parallel work: COUPONMIX_THREADS when set (a one-line error unless a positive
    integer), else the machine's CPU count.

    Returns
    -------
    int
        At least 1.

    Raises
    ------
    CouponmixError
        COUPONMIX_THREADS set to anything but a positive integer.
    """
    value = os.environ.get("COUPONMIX_THREADS")
    if value is None:
        return os.cpu_count() or 1
    try:
        n = int(value)
    except ValueError:
        raise CouponmixError(f"COUPONMIX_THREADS must be a positive integer, got {value!r}") from None
    if n < 1:
        raise CouponmixError(f"COUPONMIX_THREADS must be a positive integer, got {value!r}")
    return n


def free_threads() -> int:
    """Threads for LightGBM's training and prediction: ``COUPONMIX_THREADS`` when it is set, else the cores this
    process may run on less the load other processes put on them (the one-minute load average, this process's
    own running thread taken out), at least 1. On a shared machine OpenMP threads that wait for a busy core
    are slower than fewer threads (two LightGBM threads trained 3.3x slower than one there). The thread count
    does not change LightGBM's results (row-wise and deterministic: tested), only its speed.

    Returns
    -------
    int
        At least 1.

    Raises
    ------
    CouponmixError
        COUPONMIX_THREADS set to anything but a positive integer.
    """
    if os.environ.get("COUPONMIX_THREADS") is not None:
        return default_threads()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform: every core
        return cores
    busy = max(0.0, load - 1.0)
    return max(1, min(cores, int(cores - busy + 0.5)))

"""How many threads couponmix's own parallel work uses (objective chunks, LightGBM).

Default: every core. Set COUPONMIX_THREADS to share the machine, e.g. 1 when
several couponmix processes run side by side (the test suite does this under
pytest-xdist: OpenMP threads that wait for each other across processes are slow).
"""

from __future__ import annotations

import os

from couponmix.errors import CouponmixError

__all__ = ["default_threads"]


def default_threads() -> int:
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

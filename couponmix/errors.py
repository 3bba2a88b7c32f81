__all__ = ["CouponmixError"]
"""The one exception type couponmix raises for bad input.

The CLI turns it into a one-line message and a non-zero exit code; library
users can catch it (it is a ValueError, like scikit-learn's input errors).
"""


class CouponmixError(ValueError):
    """Bad input or an impossible request, with a message fit for one line."""

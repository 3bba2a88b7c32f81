"""couponmix: how much coupon traffic to spend on exploration.

Revenue now versus off-policy evaluation error later, with exact objectives,
a Pareto front from pymoo and a recommended mixture.
"""

__version__ = "0.1.0"

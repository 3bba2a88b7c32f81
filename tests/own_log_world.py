"""An independent coupon world with heavy-tailed net revenue, written apart from couponmix's market, for
checking couponmix on a team's own log (issue 21): calibrate from one log of this world, then compare the
promise with what logs drawn from the world itself give.

Customers: spend (lognormal), recency in days (uniform 0-365), region (north, south, east, west).
Coupons, as a team would name them: NONE, SAVE10, SAVE20, FREESHIP. A customer buys with a logistic
probability that each coupon shifts differently by recency, spend and region; an order's value is lognormal
with sigma 0.8 (kurtosis over 100: the top 1% of orders carry about a quarter of the revenue); net revenue is the order
less the discount (10% or 20%) or a 6.0 shipping cost, 0 without a purchase. mu(x, a) is exact (the lognormal
mean), so true policy values need no Monte Carlo. The log's policy is a known softmax of a score, every
coupon at least 5% of the time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COUPONS = ("NONE", "SAVE10", "SAVE20", "FREESHIP")
REGIONS = ("north", "south", "east", "west")
DISCOUNT = np.array([0.0, 0.10, 0.20, 0.0])
SHIPPING = np.array([0.0, 0.0, 0.0, 6.0])
SIGMA = 0.8


def customers(n: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "spend": np.round(rng.lognormal(3.5, 0.5, n), 2),
            "recency": rng.integers(0, 366, n).astype(float),
            "region": rng.choice(REGIONS, n, p=[0.3, 0.3, 0.2, 0.2]),
        }
    )


def _parts(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(purchase probability (n, A), mean order value (n,))."""
    spend, rec = frame["spend"].to_numpy(float), frame["recency"].to_numpy(float) / 365
    north = (frame["region"] == "north").to_numpy(float)
    east = (frame["region"] == "east").to_numpy(float)
    base = -1.6 + 0.4 * np.log(spend / 30) - 1.2 * rec
    lift = np.column_stack([np.zeros(len(frame)), 0.35 + 0.3 * rec, 0.2 + 1.2 * rec, 0.15 + 0.6 * north + 0.3 * east - 0.4 * rec])
    buy = 1 / (1 + np.exp(-(base[:, None] + lift)))
    order = np.exp(np.log(spend) + 0.3 + SIGMA**2 / 2)
    return buy, order


def mu(frame: pd.DataFrame) -> np.ndarray:
    """E[net revenue | x, a], (n, A), exact."""
    buy, order = _parts(frame)
    return buy * (order[:, None] * (1 - DISCOUNT) - SHIPPING)


def rewards(frame: pd.DataFrame, action: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    buy, _ = _parts(frame)
    rows = np.arange(len(frame))
    bought = rng.random(len(frame)) < buy[rows, action]
    order = np.exp(np.log(frame["spend"].to_numpy(float)) + 0.3 + SIGMA * rng.standard_normal(len(frame)))
    return np.where(bought, order * (1 - DISCOUNT[action]) - SHIPPING[action], 0.0)


def logging_probabilities(frame: pd.DataFrame) -> np.ndarray:
    """The log's own policy: a softmax of a hand-made score, floored at 5% per coupon."""
    rec = frame["recency"].to_numpy(float) / 365
    score = np.column_stack([np.full(len(frame), 1.0), 0.5 + rec, 1.5 * rec, (frame["region"] == "north").to_numpy(float)])
    p = np.exp(score)
    p /= p.sum(axis=1, keepdims=True)
    return 0.05 + 0.8 * p


def log(n: int, seed: int) -> pd.DataFrame:
    """A team's log: customers, the coupon sent (as text), its propensity and the net revenue."""
    rng = np.random.default_rng(seed)
    frame = customers(n, rng)
    p = logging_probabilities(frame)
    action = (rng.random(n)[:, None] > p.cumsum(axis=1)).sum(axis=1)
    frame["coupon"] = np.array(COUPONS)[action]
    frame["p"] = p[np.arange(n), action]
    frame["revenue"] = np.round(rewards(frame, action, rng), 2)
    frame.insert(0, "customer_id", np.arange(n))
    return frame


MAPPING = {
    "features": ["spend", "recency"],
    "categorical": ["region"],
    "action": "coupon",
    "reward": "revenue",
    "propensity": "p",
    "id": "customer_id",
}

CONFIG = {
    "columns": MAPPING,
    "model": {"num_leaves": 7, "min_child_samples": 300, "n_estimators": 150},
    "components": {"exploit": {"kind": "greedy_model"}, "explore": {"kind": "uniform"}},
    "targets": {
        "lapsed_save20": {"kind": "rule", "feature": "recency", "min": 180, "action": "SAVE20", "otherwise": "NONE"},
        "north_ship": {"kind": "rule", "feature": "region", "equals": "north", "action": "FREESHIP", "otherwise": "SAVE10"},
        "model_v2": {"kind": "greedy_model", "features": ["recency", "region"]},
    },
}


def encode(frame: pd.DataFrame, card: dict) -> np.ndarray:
    """Fresh customers in a calibrated scenario's covariate layout (categories as their index in the card)."""
    cols = []
    for name in card["features"]:
        if name in card["categories"]:
            cats = card["categories"][name]
            cols.append(frame[name].map({c: i for i, c in enumerate(cats)}).to_numpy(float))
        else:
            cols.append(frame[name].to_numpy(float))
    return np.column_stack(cols)

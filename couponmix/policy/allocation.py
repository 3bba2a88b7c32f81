"""Greedy coupon allocation, optionally under a budget honoured exactly.

Each customer's candidate is the coupon with the highest score (predicted net
revenue); it is worth giving if it beats no coupon (gain > 0). Without a
budget every such customer gets it. A budget (maximum share of customers
couponed, or maximum coupon spend per customer) is filled greedily by gain per
unit of cost. Customers tied at the boundary get the coupon with the same
probability q, chosen so that the budget is met exactly in expectation on the
calibration population: the optimal solution of the fractional (LP) relaxation.
Thresholds set on the calibration population then apply customer by customer,
so the policy is an ordinary map x -> probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from couponmix.errors import CouponmixError

__all__ = ["Budget", "best_coupon", "GreedyAllocator", "softmax"]


@dataclass(frozen=True)
class Budget:
    """A coupon budget: at most one of the two limits may be set (neither: no budget).

    Attributes
    ----------
    max_coupon_share : float, optional
        Largest share of customers given a coupon, a fraction in [0, 1].
    max_spend_per_customer : float, optional
        Largest expected coupon spend per customer (the predicted coupon costs' unit), >= 0.
    """

    max_coupon_share: float | None = None
    max_spend_per_customer: float | None = None

    def __post_init__(self):
        if self.max_coupon_share is not None and not 0 <= self.max_coupon_share <= 1:
            raise CouponmixError(f"max_coupon_share must lie in [0, 1], got {self.max_coupon_share}")
        if self.max_spend_per_customer is not None and not self.max_spend_per_customer >= 0:
            raise CouponmixError(f"max_spend_per_customer must be >= 0, got {self.max_spend_per_customer}")
        if self.max_coupon_share is not None and self.max_spend_per_customer is not None:
            raise CouponmixError("set one budget: max_coupon_share or max_spend_per_customer, not both")

    @property
    def active(self) -> bool:
        """True when a limit is set."""
        return self.max_coupon_share is not None or self.max_spend_per_customer is not None


def best_coupon(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's best coupon and its gain over no coupon.

    Parameters
    ----------
    score : ndarray, (n, A)
        Score of each action per customer (predicted net revenue, reward's unit); action 0 is no coupon.

    Returns
    -------
    coupon : ndarray of int, (n,)
        The highest-scoring coupon, an action >= 1.
    gain : ndarray, (n,)
        Its score minus no coupon's (score's unit).
    """
    coupon = 1 + np.argmax(score[:, 1:], axis=1)
    gain = score[np.arange(len(score)), coupon] - score[:, 0]
    return coupon, gain


@dataclass(frozen=True)
class GreedyAllocator:
    """Thresholds of a budgeted greedy allocation: coupon iff priority > tau, with probability q at tau.

    Attributes
    ----------
    budget : Budget
    tau : float
        The boundary priority: gain (no budget or a share budget) or gain per unit of coupon cost (spend budget).
        -inf when the budget does not bind.
    q : float
        Probability of a coupon for a customer whose priority equals tau, in [0, 1].
    """

    budget: Budget
    tau: float = -np.inf
    q: float = 1.0

    @classmethod
    def calibrate(cls, score: np.ndarray, cost: np.ndarray | None, budget: Budget) -> GreedyAllocator:
        """Set tau and q on a calibration population so that the budget is met exactly there.

        Parameters
        ----------
        score : ndarray, (n, A)
            Predicted net revenue per customer and action (reward's unit); action 0 is no coupon.
        cost : ndarray, (n, A), optional
            Predicted coupon cost per customer and action; needed, and positive, under a spend budget.
        budget : Budget

        Returns
        -------
        GreedyAllocator

        Raises
        ------
        CouponmixError
            A spend budget without costs, or with a non-positive cost on a chosen coupon.
        """
        if not budget.active:
            return cls(budget)
        coupon, gain = best_coupon(score)
        rows = np.arange(len(score))
        if budget.max_coupon_share is not None:
            unit = np.ones(len(score))
            capacity = budget.max_coupon_share * len(score)
        else:
            if cost is None:
                raise CouponmixError("a spend budget needs predicted coupon costs")
            unit = cost[rows, coupon]
            if (unit <= 0).any():
                raise CouponmixError("a spend budget needs positive predicted coupon costs")
            capacity = float(budget.max_spend_per_customer or 0.0) * len(score)
        priority = np.where(gain > 0, gain / unit, -np.inf)
        eligible = priority > -np.inf
        if unit[eligible].sum() <= capacity:
            return cls(budget)  # the budget does not bind
        values, inverse = np.unique(-priority[eligible], return_inverse=True)  # groups, best first
        group_cost = np.bincount(inverse, weights=unit[eligible])
        before = np.concatenate([[0.0], np.cumsum(group_cost)[:-1]])
        g = int(np.searchsorted(np.cumsum(group_cost), capacity, side="left"))  # boundary group
        q = float((capacity - before[g]) / group_cost[g])
        return cls(budget, tau=float(-values[g]), q=min(max(q, 0.0), 1.0))

    def probabilities(self, score: np.ndarray, cost: np.ndarray | None = None) -> np.ndarray:
        """Allocation probabilities for any customers, using the calibrated thresholds.

        Parameters
        ----------
        score : ndarray, (n, A)
            Predicted net revenue per customer and action (reward's unit); action 0 is no coupon.
        cost : ndarray, (n, A), optional
            Predicted coupon cost per customer and action; needed under a spend budget.

        Returns
        -------
        ndarray, (n, A)
            Probabilities: each row is no coupon, or the best coupon with the tie probability at the boundary.

        Raises
        ------
        CouponmixError
            A spend budget without costs.
        """
        n, a = score.shape
        coupon, gain = best_coupon(score)
        rows = np.arange(n)
        if self.budget.max_spend_per_customer is not None:
            if cost is None:
                raise CouponmixError("a spend budget needs predicted coupon costs")
            priority = np.where(gain > 0, gain / cost[rows, coupon], -np.inf)
        else:
            priority = np.where(gain > 0, gain, -np.inf)
        p_coupon = np.where(priority > self.tau, 1.0, np.where(priority == self.tau, self.q, 0.0))
        p_coupon[~(gain > 0)] = 0.0
        out = np.zeros((n, a))
        out[:, 0] = 1.0 - p_coupon
        out[rows, coupon] += p_coupon
        return out


def softmax(score: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise softmax of score / temperature.

    Parameters
    ----------
    score : ndarray, (n, A)
    temperature : float
        Positive, in the score's unit.

    Returns
    -------
    ndarray, (n, A)
        Probabilities; rows sum to 1.

    Raises
    ------
    CouponmixError
        A temperature that is not positive.
    """
    if not temperature > 0:
        raise CouponmixError(f"softmax temperature must be positive, got {temperature}")
    from scipy.special import softmax as scipy_softmax

    return scipy_softmax(score / temperature, axis=1)

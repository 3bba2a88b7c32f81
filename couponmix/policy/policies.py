"""Policies: named maps from covariates x (n, d) to action probabilities (n, A).

A policy is any callable returning an (n, A) matrix whose rows lie on the
simplex; :class:`Policy` attaches a name and a description and checks the
output. Deterministic policies are one-hot rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from couponmix.infra.validation import check_probability_matrix

__all__ = ["PolicyFn", "Policy", "binary", "one_hot", "uniform"]

PolicyFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Policy:
    """A named policy ``x -> (n, A)`` probability matrix."""

    name: str  #: short name, used in reports and messages
    #: the map from covariates (n, d) to action probabilities (n, A)
    fn: PolicyFn = field(repr=False)
    n_actions: int  #: A, the number of actions
    description: str = ""  #: the policy in plain words

    def __call__(self, x: np.ndarray, check: bool = True) -> np.ndarray:
        """The policy's action probabilities for customers x.

        Parameters
        ----------
        x : ndarray, (n, d)
            Covariates, one row per customer.
        check : bool
            Check that the output is an (n, A) matrix of rows on the simplex.

        Returns
        -------
        ndarray, (n, A)
            Probabilities of each action per customer.

        Raises
        ------
        CouponmixError
            With ``check``, an output of the wrong shape or rows off the simplex.
        """
        probs = self.fn(x)
        if check:
            probs = check_probability_matrix(probs, n_rows=len(x), n_actions=self.n_actions, name=f"policy {self.name!r}")
        return probs


def binary(prob_action_1: np.ndarray) -> np.ndarray:
    """Two-action probability matrix from the probability of action 1 (a boolean array gives one-hot rows).

    Parameters
    ----------
    prob_action_1 : array-like, (n,)
        Probability of action 1 per customer.

    Returns
    -------
    ndarray, (n, 2)
        Columns: probability of action 0, of action 1.
    """
    p1 = np.asarray(prob_action_1)
    out = np.empty((p1.shape[0], 2))
    out[:, 1] = p1  # filled in place: column_stack of booleans is 10x slower
    np.subtract(1.0, out[:, 1], out=out[:, 0])
    return out


def one_hot(actions: np.ndarray, n_actions: int) -> np.ndarray:
    """Deterministic policy matrix: probability 1 on ``actions[i]`` for customer i.

    Parameters
    ----------
    actions : array-like of int, (n,)
        Each customer's action, in [0, n_actions).
    n_actions : int

    Returns
    -------
    ndarray, (n, n_actions)
        One-hot rows.
    """
    actions = np.asarray(actions, dtype=np.intp)
    out = np.zeros((actions.shape[0], n_actions))
    out[np.arange(actions.shape[0]), actions] = 1.0
    return out


def uniform(n: int, n_actions: int) -> np.ndarray:
    """Probability 1 / n_actions on every action for each of n customers.

    Parameters
    ----------
    n : int
        Customers.
    n_actions : int

    Returns
    -------
    ndarray, (n, n_actions)
    """
    return np.full((n, n_actions), 1.0 / n_actions)

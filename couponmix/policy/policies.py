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

    name: str
    fn: PolicyFn = field(repr=False)
    n_actions: int
    description: str = ""

    def __call__(self, x: np.ndarray, check: bool = True) -> np.ndarray:
        probs = self.fn(x)
        if check:
            probs = check_probability_matrix(probs, n_rows=len(x), n_actions=self.n_actions, name=f"policy {self.name!r}")
        return probs


def binary(prob_action_1: np.ndarray) -> np.ndarray:
    """Two-action probability matrix from the probability of action 1 (a boolean array gives one-hot rows)."""
    p1 = np.asarray(prob_action_1)
    out = np.empty((p1.shape[0], 2))
    out[:, 1] = p1  # filled in place: column_stack of booleans is 10x slower
    np.subtract(1.0, out[:, 1], out=out[:, 0])
    return out


def one_hot(actions: np.ndarray, n_actions: int) -> np.ndarray:
    """Deterministic policy matrix: probability 1 on ``actions[i]`` for customer i."""
    actions = np.asarray(actions, dtype=np.intp)
    out = np.zeros((actions.shape[0], n_actions))
    out[np.arange(actions.shape[0]), actions] = 1.0
    return out


def uniform(n: int, n_actions: int) -> np.ndarray:
    """(n, n_actions) probabilities 1 / n_actions on every action for each of n customers."""
    return np.full((n, n_actions), 1.0 / n_actions)

"""The interfaces couponmix's pieces agree on, so that the front, the recommendation, the planner and the
curves take any objectives (exact on a sample, streamed over a population, or the decision's criterion)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

__all__ = ["Objectives"]


class Objectives(Protocol):
    """Revenue and OPE error of a batch of mixtures (B of them, K components, T targets).

    Implemented by ``objectives.MixtureObjectives``, ``streaming.StreamingObjectives``,
    ``fitted_reward.FittedModelObjectives`` and ``criterion.Criterion``.
    """

    @property
    def component_names(self) -> tuple[str, ...]:
        """(K,) the logging components' names."""
        ...

    @property
    def target_names(self) -> tuple[str, ...]:
        """(T,) the future policies' (targets') names."""
        ...

    component_values: np.ndarray  # (K,) V(pi_k)

    def revenue(self, alphas: Any) -> np.ndarray:
        """(B,) expected reward per customer of each mixture."""
        ...

    def laws(self, alphas: Any) -> Sequence[Any]:
        """One error law per target, each over the batch (``rmse(n)``, ``supported``, ``log_size_for``)."""
        ...

    def evaluate(self, alphas: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(revenue (B,), aggregated error (B,), per-target error (B, T))."""
        ...

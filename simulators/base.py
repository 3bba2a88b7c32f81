"""The scenario protocol: environments with known ground truth.

A scenario knows the law of the covariates, the conditional reward moments
mu(x, a) = E[r | x, a] and m2(x, a) = E[r^2 | x, a], how to sample rewards,
and which logging components and target policies it offers. couponmix only
talks to scenarios through this protocol.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

import numpy as np

from couponmix.divergence import SupportVerdict
from couponmix.policies import Policy


class Scenario(ABC):
    """Base class for simulated coupon environments."""

    name: str = ""
    description: str = ""
    action_names: tuple[str, ...] = ()
    covariate_names: tuple[str, ...] = ()
    default_n: int = 10_000

    @property
    def n_actions(self) -> int:
        return len(self.action_names)

    @abstractmethod
    def sample_covariates(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw n customers' covariates, shape (n, d), i.i.d. from the scenario's law."""

    @abstractmethod
    def mu(self, x: np.ndarray) -> np.ndarray:
        """E[r | x, a] for every action, shape (n, A)."""

    @abstractmethod
    def m2(self, x: np.ndarray) -> np.ndarray:
        """E[r^2 | x, a] for every action, shape (n, A)."""

    @abstractmethod
    def sample_rewards(self, x: np.ndarray, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw one reward per customer for the action taken, shape (n,)."""

    @abstractmethod
    def components(self) -> Mapping[str, Policy]:
        """The logging component policies, in order."""

    @abstractmethod
    def targets(self) -> Mapping[str, Policy]:
        """The candidate future policies to evaluate off-policy."""

    def reference_policies(self) -> Mapping[str, Policy]:
        """Policies whose value is reported but which neither log nor get evaluated (e.g. an oracle)."""
        return {}

    def reward_model(self, x: np.ndarray) -> np.ndarray | None:
        """A learned reward model q(x, .) fixed before logging, for DR-type estimators (None if none)."""
        return None

    def reward_model_error(self) -> np.ndarray | None:
        """(A,) the root-mean-square error of ``reward_model`` per action, measured out of fold (None: no
        learned model). It sizes the bias that the data cannot check (see ``couponmix.objectives``)."""
        return None

    def model_report(self, x: np.ndarray) -> dict | None:
        """Quality of any learned model behind the policies, measured on held-out customers x."""
        return None

    def weight_moment_verdict(self, target: str, alpha: np.ndarray) -> SupportVerdict | None:
        """Analytic verdict on E[sum_a pi_e^2 / p_alpha] for ``target`` at ``alpha``, or None if unknown."""
        return None

"""Mixture logging: a component k ~ Categorical(alpha), then an action a ~ pi_k(.|x).

The balanced propensity of the logged action is p_alpha(a|x) = sum_k alpha_k pi_k(a|x).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from couponmix.policy.policies import Policy
from couponmix.policy.simplex import check_alpha

__all__ = ["sample_actions", "MixtureDraw", "Mixture"]


def sample_actions(probs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw of one action per row of ``probs``: the number of the first A - 1 cumulative
    probabilities below u. Loops over actions (few), never over customers.

    Parameters
    ----------
    probs : ndarray, (n, A) or (1, A)
        Probabilities per customer, or one row shared by all.
    u : ndarray, (n,)
        Uniforms in [0, 1), one per customer.

    Returns
    -------
    ndarray of int, (n,)
        The drawn actions, in [0, A).
    """
    actions = np.zeros(len(u), dtype=np.intp)
    cdf = probs[:, 0].copy()
    for a in range(1, probs.shape[1]):
        actions += cdf < u
        cdf += probs[:, a]
    return actions


@dataclass(frozen=True)
class MixtureDraw:
    """Components and actions drawn for n customers (``Mixture.draw``), with the propensities a log records.

    Attributes
    ----------
    component, action : ndarray of int, (n,)
        The component that acted, and the action it took.
    pscore : ndarray, (n,)
        pi_component(action | x): the acting component's own propensity.
    pscore_avg : ndarray, (n,)
        The balanced propensity p_alpha(action | x).
    pscore_components : ndarray, (n, K)
        pi_k(action | x) for every component.
    alpha : ndarray, (1, K) or (n, K)
        The mixture weights: shared by all customers, or each customer's own.
    """

    component: np.ndarray  # (n,) index of the component that acted
    action: np.ndarray  # (n,) action taken
    pscore: np.ndarray  # (n,) pi_{component}(action | x): the acting component's own propensity
    pscore_avg: np.ndarray  # (n,) balanced propensity p_alpha(action | x)
    pscore_components: np.ndarray  # (n, K) pi_k(action | x) for every component
    alpha: np.ndarray  # (1, K) the shared weights, or (n, K) each customer's own


class Mixture:
    """K component policies mixed with weights ``alpha`` on the (floored) simplex.

    Subclasses whose weights depend on the customer override ``alpha_of`` and set ``varies_by_customer``
    (``couponmix.decide.contextual.ContextualMixture``); drawing and propensities follow from it.

    Parameters
    ----------
    components : mapping of str to Policy
        The K component policies by name, in order.
    alpha : array_like, (K,)
        The mixture weights, on the floored simplex.
    floors : float or array_like, (K,)
        Lowest weight of each component (a scalar applies to all).

    Raises
    ------
    CouponmixError
        Weights or floors off the floored simplex (``check_alpha``).
    """

    #: True when ``alpha_of`` gives each customer weights of their own (logs then record them)
    varies_by_customer = False

    def __init__(self, components: Mapping[str, Policy], alpha, floors=0.0):
        self.components = dict(components)
        self.names = tuple(self.components)
        self.alpha = check_alpha(alpha, len(self.names), floors, self.names)

    @property
    def weights(self) -> dict[str, float]:
        """The mixture weights by component name (fractions summing to 1)."""
        return dict(zip(self.names, self.alpha.tolist()))

    def component_probabilities(self, x: np.ndarray) -> np.ndarray:
        """pi_k(a|x) for all components.

        Parameters
        ----------
        x : ndarray, (n, d)
            Covariates.

        Returns
        -------
        ndarray, (K, n, A)
            Probabilities of each component, customer and action.
        """
        return np.stack([pol(x) for pol in self.components.values()])

    def alpha_of(self, x: np.ndarray) -> np.ndarray:
        """The mixture weights of each customer.

        Parameters
        ----------
        x : ndarray, (n, d)
            Covariates.

        Returns
        -------
        ndarray, (1, K)
            The same weights for everyone, here (subclasses: (n, K)).
        """
        return self.alpha[None, :]

    def balanced_propensities(self, x: np.ndarray, comp_probs: np.ndarray | None = None) -> np.ndarray:
        """p_alpha(a|x) = sum_k alpha_k(x) pi_k(a|x).

        Parameters
        ----------
        x : ndarray, (n, d)
            Covariates.
        comp_probs : ndarray, (K, n, A), optional
            ``component_probabilities(x)``, when already computed.

        Returns
        -------
        ndarray, (n, A)
            The balanced propensities (probabilities).
        """
        if comp_probs is None:
            comp_probs = self.component_probabilities(x)
        ax = self.alpha_of(x)
        return np.tensordot(ax[0], comp_probs, axes=1) if len(ax) == 1 else np.einsum("nk,kna->na", ax, comp_probs)

    def draw(self, x: np.ndarray, rng: np.random.Generator, comp_probs: np.ndarray | None = None) -> MixtureDraw:
        """Draw component and action for every customer (vectorized; no loop over customers).

        Parameters
        ----------
        x : ndarray, (n, d)
            Covariates.
        rng : numpy.random.Generator
            Two uniforms per customer are drawn from it: the component's, then the action's.
        comp_probs : ndarray, (K, n, A), optional
            ``component_probabilities(x)``, when already computed.

        Returns
        -------
        MixtureDraw
        """
        n = len(x)
        if comp_probs is None:
            comp_probs = self.component_probabilities(x)
        k, _, a = comp_probs.shape
        rows = np.arange(n)
        ax = self.alpha_of(x)  # (1, K) shared or (n, K) per customer
        component = sample_actions(ax, rng.random(n))  # the alpha-quantile of a uniform
        # gathers by flat index (whole rows, then single entries) are several times faster than 2-d fancy indexing
        own = comp_probs.reshape(k * n, a).take(component * n + rows, axis=0)  # (n, A)
        action = sample_actions(own, rng.random(n))
        cell = rows * a + action
        pscore_components = comp_probs.reshape(k, n * a).take(cell, axis=1).T  # (n, K)
        return MixtureDraw(
            component=component,
            action=action,
            pscore=comp_probs.reshape(-1).take(component * (n * a) + cell),
            pscore_avg=pscore_components @ ax[0] if len(ax) == 1 else np.einsum("nk,nk->n", pscore_components, ax),
            pscore_components=pscore_components,
            alpha=ax,
        )

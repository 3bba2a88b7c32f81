"""Mixtures whose weights depend on the customer: the groups customers fall into, and the logging policy
that gives each group its own mixture (``couponmix.decide.contextual`` chooses the groups' rates)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from couponmix.errors import CouponmixError
from couponmix.policy.mixture import Mixture

__all__ = ["Grouping", "margin", "ContextualMixture"]


@dataclass
class Grouping:
    """How customers are cut into groups: ``kind`` segment (codes of a categorical covariate), feature,
    margin or logistic (quantile bins of a covariate or of the predicted margin: ``edges`` between groups)."""

    kind: str  #: "segment", "feature", "margin" or "logistic"
    column: int | None  #: the covariate's column in x (segment, feature); None for the predicted margin
    #: (G - 1,) ascending bin edges between groups, in the binned value's unit (None for segments)
    edges: np.ndarray | None
    values: list[float] | None  #: (G,) the segment code of each group (segments only)
    labels: list[str]  #: (G,) each group's label
    what: str  #: what is grouped on, in words (a covariate's name or "predicted margin")
    #: a parametric family over the groups (None: each group's rate is free)
    shape: Any = None

    @property
    def size(self) -> int:
        """G, the number of groups (one label each)."""
        return len(self.labels)

    def to_dict(self) -> dict:
        """What a log needs to put customers in their groups again (the family's shape is not needed).

        Returns
        -------
        dict
            kind, column, edges (a list or None), values, labels and what, JSON-ready.
        """
        return {
            "kind": self.kind,
            "column": self.column,
            "edges": None if self.edges is None else np.asarray(self.edges, float).tolist(),
            "values": self.values,
            "labels": list(self.labels),
            "what": self.what,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Grouping:
        """The grouping ``to_dict`` wrote (without the family's shape).

        Parameters
        ----------
        d : dict
            ``to_dict``'s document.

        Returns
        -------
        Grouping

        Raises
        ------
        CouponmixError
            A key missing or of the wrong type.
        """
        try:
            edges = None if d["edges"] is None else np.asarray(d["edges"], dtype=float)
            return cls(str(d["kind"]), d["column"], edges, d["values"], [str(v) for v in d["labels"]], str(d["what"]))
        except (KeyError, TypeError, ValueError):
            raise CouponmixError("the contextual rule's groups are incomplete: run again with --contextual") from None

    def group_of(self, scenario, x: np.ndarray) -> np.ndarray:
        """The group of each customer.

        Parameters
        ----------
        scenario : Scenario
            Its reward model gives the predicted margin (margin and logistic groupings).
        x : ndarray, (n, d)
            Covariates.

        Returns
        -------
        ndarray of int, (n,)
            Group indices in [0, G).

        Raises
        ------
        CouponmixError
            A customer whose segment is none of the groups', or (margin) a scenario without a revenue model.
        """
        if self.kind == "segment":
            col = x[:, self.column]
            out = np.full(len(x), -1)
            for g, v in enumerate(self.values or []):
                out[col == v] = g
            if (out < 0).any():
                raise CouponmixError(f"a customer's {self.what} is none of the groups' values")
            return out
        value = margin(scenario, x) if self.kind in ("margin", "logistic") else x[:, self.column]
        return np.searchsorted(np.asarray(self.edges), value, side="right")


def margin(scenario, x: np.ndarray) -> np.ndarray:
    """The production model's predicted margin: best action minus runner-up.

    Parameters
    ----------
    scenario : Scenario
        Its ``reward_model`` predicts (n, A) net revenue.
    x : ndarray, (n, d)
        Covariates.

    Returns
    -------
    ndarray, (n,)
        The margin, >= 0, in the reward's unit.

    Raises
    ------
    CouponmixError
        A scenario without a revenue model.
    """
    q = scenario.reward_model(x)
    if q is None:
        raise CouponmixError(f"scenario {scenario.name!r} has no revenue model: use segment exploration instead")
    top = np.sort(q, axis=1)[:, -2:]
    return top[:, 1] - top[:, 0]


class ContextualMixture(Mixture):
    """A mixture whose weights depend on the customer: group g of ``grouping`` is logged with ``alphas[g]``.
    ``Mixture.draw`` then records each customer's own balanced propensity p(a|x) = sum_k alpha_k(x) pi_k(a|x).

    Parameters
    ----------
    components : mapping of str to Policy
        The K component policies by name.
    scenario : Scenario
        Puts customers in their groups (``Grouping.group_of``).
    grouping : Grouping
        G groups.
    alphas : array_like, (G, K)
        Each group's mixture weights; their normalised mean is the mixture's ``alpha``.

    Raises
    ------
    CouponmixError
        ``alphas`` of another shape, or a mean off the simplex.
    """

    varies_by_customer = True

    def __init__(self, components, scenario, grouping: Grouping, alphas: np.ndarray):
        alphas = np.asarray(alphas, dtype=float)
        if alphas.shape != (grouping.size, len(components)):
            raise CouponmixError(f"need one mixture per group: shape ({grouping.size}, {len(components)})")
        super().__init__(components, alphas.mean(axis=0) / alphas.mean(axis=0).sum())
        self.scenario = scenario
        self.grouping = grouping
        self.group_alphas = alphas

    def alpha_of(self, x: np.ndarray) -> np.ndarray:
        """Each customer's mixture weights: their group's.

        Parameters
        ----------
        x : ndarray, (n, d)
            Covariates.

        Returns
        -------
        ndarray, (n, K)
        """
        return self.group_alphas[self.grouping.group_of(self.scenario, x)]

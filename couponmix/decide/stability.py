"""How firm the recommendation is: the study's rule applied again to each delete-a-group jackknife replicate of the
evaluation sample.

The recommended mix is a function of the evaluation sample's moments (on a team's own log, of the log's own
rows). Leaving out one group of customers at a time and deciding again gives replicates of that decision; their
spread, by the jackknife, is the decision's standard error from the sample. The replicates decide among mixtures
along the front (linear between neighbouring points), first on a coarse path, then on a fine one where their
picks lie, so that they can move by less than the front's spacing: the knee and the most revenue within a
tolerance are smooth functions of the moments along a smooth front, where the jackknife is sound.

It is stated for two logging policies (exploit and explore: one exploration rate), where the front is the
line of rates. What it does not cover: a revenue model refitted on another log (the calibrated world), the
payback rule (its log size and horizon are a second decision), and more than two logging policies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from couponmix.decide.curves import exploration_rate
from couponmix.decide.optimize import Front, Recommendation, nondominated_mask, recommend
from couponmix.infra.records import Record
from couponmix.ope.criterion import Criterion
from couponmix.ope.montecarlo import Z95

__all__ = ["COARSE_POINTS", "FINE_POINTS", "RecommendationSpread", "along", "refine", "recommendation_spread"]

#: mixtures on the path the replicates first decide on, evenly spaced along the front (its ends included)
COARSE_POINTS = 100
#: mixtures filling the stretch of that path where the replicates' picks lie, for the second decision
FINE_POINTS = 60


@dataclass
class RecommendationSpread(Record):
    """How much the recommended mix moves when the evaluation sample's customers are resampled (summary.json's
    ``recommendation_spread``). Rates and shares are fractions in [0, 1]."""

    rule: str  #: the rule applied again: "knee" or "max_rmse"
    groups: int  #: jackknife groups
    sample_size: int  #: customers in the evaluation sample
    exploration_rate: float  #: the recommendation's exploration rate (``decide.curves.exploration_rate``)
    exploration_rate_se: float  #: its jackknife standard error
    low: float  #: the rate minus 1.96 standard errors, at least 0
    high: float  #: the rate plus 1.96 standard errors, at most 1
    alpha_se: dict[str, float]  #: per logging component, the jackknife standard error of its share
    replicates: list[float]  #: the exploration rate each replicate recommends, in group order
    covers: str  #: what the spread measures, in words


def along(alphas: np.ndarray, points: int) -> np.ndarray:
    """``points`` mixtures evenly spaced along a path of mixtures (by position in it, linear between neighbours),
    its first and last included.

    Parameters
    ----------
    alphas : ndarray, (F, K)
        The path, in order (a front: by revenue), at least 2 mixtures.
    points : int
        Mixtures wanted (at least 2).

    Returns
    -------
    ndarray, (points, K)
        Each on the simplex (a convex combination of two neighbours).
    """
    alphas = np.asarray(alphas, dtype=float)
    u = np.linspace(0.0, len(alphas) - 1.0, points)
    i = np.minimum(np.floor(u).astype(int), len(alphas) - 2)
    t = (u - i)[:, None]
    return alphas[i] * (1 - t) + alphas[i + 1] * t


def _decide(front: Front, path: np.ndarray, revenue: np.ndarray, error: np.ndarray, max_rmse: float | None) -> int:
    """The row of ``path`` the rule picks among its non-dominated mixtures under one replicate's objectives."""
    keep = np.flatnonzero(nondominated_mask(revenue, error))
    keep = keep[np.argsort(revenue[keep], kind="stable")]
    sub = Front(front.component_names, front.target_names, path[keep], revenue[keep], error[keep], np.zeros((len(keep), 0)))
    return int(keep[recommend(sub, max_rmse).index])


def _coarse(front: Front, floors: np.ndarray | None) -> np.ndarray:
    """``COARSE_POINTS`` mixtures to decide on first: along the front; with two logging policies and their floors,
    along the whole line of rates the floors allow, so that a replicate's front may end where its own does."""
    if floors is not None and front.alphas.shape[1] == 2:
        f = np.asarray(floors, dtype=float)
        return along(np.array([[f[0], 1 - f[0]], [1 - f[1], f[1]]]), COARSE_POINTS)
    return along(front.alphas, COARSE_POINTS)


def _candidates(objectives: Criterion, front: Front, pick: int, coarse: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """The second decision's mixtures and which front points lead them: the front's two ends (whose objectives
    scale the knee), the rule's pick among the front's points, and the points whose revenue lies in the stretch
    ``coarse[lo : hi + 1]``; then the coarse path and ``FINE_POINTS`` mixtures filling that stretch. Returns
    (mixtures, the leading rows' front indices)."""
    r = objectives.revenue(coarse[[lo, hi]])
    inside = np.flatnonzero((front.revenue >= r.min()) & (front.revenue <= r.max()))
    idx = np.unique(np.concatenate([[0, len(front) - 1, pick], inside]))
    return np.vstack([front.alphas[idx], coarse, along(coarse[lo : hi + 1], FINE_POINTS)]), idx


def _stretch(coarse_picks: list[int], n: int) -> tuple[int, int]:
    """The stretch of the coarse path around its picks, one step either side."""
    return max(min(coarse_picks) - 1, 0), min(max(coarse_picks) + 1, n - 1)


def refine(
    objectives: Criterion, front: Front, rec: Recommendation, max_rmse: float | None, floors: np.ndarray | None = None
) -> tuple[Front, Recommendation]:
    """The rule's mix decided again between the front's points: on ``COARSE_POINTS`` mixtures along the front, then
    among those, the front's ends, its pick and its points there, and ``FINE_POINTS`` mixtures filling the
    stretch around that pick (``_candidates``), so that the recommendation does not depend on where the search
    happened to leave its points, and is never worse by the rule than the front's own pick. A mix between two
    front points is added to the front (a front point it dominates leaves the front).

    Parameters
    ----------
    objectives : Criterion
        The criterion the front was found with.
    front : Front
    rec : Recommendation
        The rule's pick among the front's points.
    max_rmse : float, optional
        The rule's tolerance (None: the knee).
    floors : ndarray, (K,), optional
        Each component's least share: with two components the first decision is along every rate they allow.

    Returns
    -------
    (Front, Recommendation)
        Unchanged for the payback rule or a front of one mixture.
    """
    if rec.rule not in ("knee", "max_rmse") or len(front) < 2:
        return front, rec
    coarse = _coarse(front, floors)
    rev, err, _ = objectives.evaluate(coarse)
    stretch = _stretch([_decide(front, coarse, rev, err, max_rmse)], len(coarse))
    cand, idx = _candidates(objectives, front, rec.index, coarse, *stretch)
    rev, err, per = objectives.evaluate(cand)
    j = _decide(front, cand, rev, err, max_rmse)
    meets = None if max_rmse is None else bool(err[j] <= max_rmse)
    if j < len(idx):
        return front, Recommendation(int(idx[j]), rec.rule, meets, rec.note)
    at = int(np.searchsorted(front.revenue, rev[j]))
    revenue, rmse = np.insert(front.revenue, at, rev[j]), np.insert(front.rmse, at, err[j])
    keep = nondominated_mask(revenue, rmse)  # a front point the new mix dominates leaves the front
    keep[at] = True
    grown = Front(
        front.component_names,
        front.target_names,
        np.insert(front.alphas, at, cand[j], axis=0)[keep],
        revenue[keep],
        rmse[keep],
        np.insert(front.rmse_per_target, at, per[j], axis=0)[keep],
    )
    return grown, Recommendation(int(keep[:at].sum()), rec.rule, meets, rec.note)


def _picks(objectives: Criterion, front: Front, pick: int, max_rmse: float | None, groups: int, floors: np.ndarray | None) -> np.ndarray:
    """Each replicate's mix (groups, K), decided as ``refine`` decides: on ``COARSE_POINTS`` mixtures (``_coarse``),
    then among the front's own, those and ``FINE_POINTS`` mixtures filling the stretch between the replicates'
    picks (one step either side)."""
    coarse = _coarse(front, floors)
    first = [_decide(front, coarse, rev, err, max_rmse) for rev, err in objectives.jackknife(coarse, groups)]
    cand, _ = _candidates(objectives, front, pick, coarse, *_stretch(first, len(coarse)))
    return np.array([cand[_decide(front, cand, rev, err, max_rmse)] for rev, err in objectives.jackknife(cand, groups)])


def recommendation_spread(
    objectives: Criterion,
    front: Front,
    rec: Recommendation,
    max_rmse: float | None,
    floors: np.ndarray | None = None,
    groups: int = 10,
    calibrated: bool = False,
) -> RecommendationSpread | None:
    """The recommendation's jackknife spread over the evaluation sample (see the module).

    Parameters
    ----------
    objectives : Criterion
        The study's criterion, on an evaluation sample held in memory.
    front : Front
        The front the recommendation was made on.
    rec : Recommendation
        The recommendation.
    max_rmse : float, optional
        The rule's tolerance (None: the knee).
    floors : ndarray, (K,), optional
        Each component's least share: the replicates then decide along every rate the floors allow (a
        replicate's front may end beyond the study's, which moves its knee).
    groups : int
        Jackknife groups.
    calibrated : bool
        The evaluation sample is a team's own log's rows (the words in ``covers`` say so).

    Returns
    -------
    RecommendationSpread or None
        None for the payback rule, a front of one mixture, a streamed population, or more than two logging
        policies: there the mixes that earn and measure alike form a surface, not a line, and a sample can move
        the recommendation across it, off the front the replicates decide along (on paper, with 4,000 customers
        per sample, the rate moved 6 times more across samples than this would state).
    """
    if rec.rule not in ("knee", "max_rmse") or len(front) < 2 or objectives.stream is not None or len(front.component_names) != 2:
        return None
    picks = _picks(objectives, front, rec.index, max_rmse, groups, floors)
    scale = (groups - 1) / groups
    alpha_se = np.sqrt(scale * ((picks - picks.mean(axis=0)) ** 2).sum(axis=0))
    rates = np.array([exploration_rate(objectives, p) for p in picks])
    rate = exploration_rate(objectives, front.alphas[rec.index])
    se = float(np.sqrt(scale * ((rates - rates.mean()) ** 2).sum()))
    whose = "your log's rows" if calibrated else "the simulated customers"
    covers = (
        f"deciding again with each of {groups} groups of the evaluation sample ({whose}) left out in turn; "
        + ("a revenue model refitted on another log would move the mix further, which this does not include" if calibrated else "")
    ).rstrip("; ")
    return RecommendationSpread(
        rule=rec.rule,
        groups=groups,
        sample_size=objectives.sample.size,
        exploration_rate=rate,
        exploration_rate_se=se,
        low=max(0.0, rate - Z95 * se),
        high=min(1.0, rate + Z95 * se),
        alpha_se=dict(zip(front.component_names, alpha_se.tolist())),
        replicates=rates.tolist(),
        covers=covers,
    )

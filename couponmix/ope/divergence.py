"""Is the IPS variance finite? (method.md section 4)

Plain and self-normalised IPS have variance proportional to
E_x[sum_a pi_e(a|x)^2 m2(x,a) / p_alpha(a|x)]. With bounded rewards whose
conditional variance is bounded away from 0 (true of every scenario here), it
is finite iff the importance-weight second moment
E_x[sum_a pi_e(a|x)^2 / p_alpha(a|x)] is.

Two ways to decide:
- analytic, when the scenario knows its propensity structure
  (``Scenario.weight_moment_verdict``);
- empirical, from the per-customer contributions Y_i on the evaluation sample:
  a Hill estimate of the tail index of Y. A tail index <= 1 means E[Y] = inf.
  We call the moment infinite unless the data reject index <= 1 at three
  standard errors, and we record how the sample mean grows with the sample size
  (a finite moment settles; an infinite one keeps climbing).

Finiteness is the same for every mixture inside the simplex: if all weights of
alpha and alpha' are positive, p_alpha >= (min_k alpha_k / alpha'_k) p_alpha'.
So one check at the barycentre decides for every interior mixture; mixtures on
the boundary (some alpha_k = 0) are checked on their own.
"""

from __future__ import annotations

import numpy as np

from couponmix.dataset.types import SupportVerdict

__all__ = ["Z_REJECT", "SupportVerdict", "hill_tail_index", "growth", "weight_contributions", "empirical_verdict", "weight_verdict"]

Z_REJECT = 3.0


def hill_tail_index(y: np.ndarray, k: int | None = None) -> tuple[float, float, int]:
    """Hill estimate of the tail index of positive data, its standard error, and k used.

    xi = mean(log(Y_(i) / Y_(k+1))) over the k largest; index = 1 / xi; se(index) ~ index / sqrt(k).
    Bounded data give xi -> 0, index -> inf.

    Parameters
    ----------
    y : ndarray, (M,)
        The data; values <= 0 are dropped.
    k : int, optional
        Largest values used (default: sqrt of the positive values' count, clipped to [10, 5000]).

    Returns
    -------
    index : float
        The tail index (inf for bounded data, or when there are no more than k + 1 positive values).
    se : float
        Its standard error (inf with it).
    k : int
        Largest values used (0 when there were too few).
    """
    y = np.asarray(y, dtype=float)
    y = y[y > 0]
    if k is None:
        k = int(np.clip(np.sqrt(len(y)), 10, 5000))
    if len(y) <= k + 1:
        return np.inf, np.inf, 0
    top = np.partition(y, len(y) - k - 1)[len(y) - k - 1 :]  # the k + 1 largest values
    xi = float(np.log(top / top.min()).sum() / k)  # the smallest of them adds log 1 = 0
    if xi <= 0:
        return np.inf, np.inf, k
    index = 1.0 / xi
    return index, index / np.sqrt(k), k


def growth(y: np.ndarray, steps: int = 5, factor: int = 4) -> list[dict]:
    """Sample means of y on nested prefixes of size M / factor^j, smallest first.

    Parameters
    ----------
    y : ndarray, (M,)
    steps : int
        Prefix sizes tried, j = 0 .. steps - 1 (fewer when sizes coincide).
    factor : int
        Ratio between consecutive prefix sizes.

    Returns
    -------
    list of dict
        ``{"sample_size": customers, "mean": the prefix's mean of y}``, smallest prefix first.
    """
    m = len(y)
    sizes = sorted({max(1, m // factor**j) for j in range(steps)})
    csum = np.cumsum(y)
    return [{"sample_size": int(s), "mean": float(csum[s - 1] / s)} for s in sizes]


def weight_contributions(target_probs: np.ndarray, balanced: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-customer Y_i = sum_a pi_e^2 / p_alpha over actions with p > 0, and the unsupported mass.

    Unsupported mass = E[sum_{a: p=0} pi_e].

    Parameters
    ----------
    target_probs, balanced : ndarray, (M, A)
        The target's probabilities and the balanced propensity p_alpha on M customers.

    Returns
    -------
    y : ndarray, (M,)
        Each customer's Y_i (a weight second moment, unitless).
    unsupported : float
        The target's probability mass on actions the mixture never plays, averaged over customers (a probability).
    """
    pos = balanced > 0
    y = np.divide(target_probs**2, balanced, out=np.zeros_like(balanced), where=pos).sum(axis=1)
    unsupported = float(np.where(pos, 0.0, target_probs).sum(axis=1).mean())
    return y, unsupported


def empirical_verdict(target_probs: np.ndarray, balanced: np.ndarray) -> SupportVerdict:
    """Empirical verdict on the importance weights' second moment at one mixture, from the evaluation sample.

    "unsupported" when the mixture never plays actions the target plays; else "infinite" unless a Hill tail
    index of Y_i = sum_a pi_e^2 / p_alpha rules out index <= 1 at ``Z_REJECT`` standard errors; else "finite".

    Parameters
    ----------
    target_probs, balanced : ndarray, (M, A)
        The target's probabilities and the balanced propensity p_alpha on the sample's M customers.

    Returns
    -------
    SupportVerdict
        With the tail index, its standard error and the sample mean's growth (or the unsupported mass) as evidence.
    """
    y, unsupported = weight_contributions(target_probs, balanced)
    if unsupported > 0:
        return SupportVerdict(
            "unsupported",
            "empirical",
            f"the logging mixture never plays actions that carry {unsupported:.1%} of the target's probability on the evaluation sample",
            {"unsupported_mass": unsupported},
        )
    index, se, k = hill_tail_index(y)
    evidence = {
        "tail_index": index if np.isfinite(index) else None,
        "tail_index_se": se if np.isfinite(se) else None,
        "tail_k": k,
        "weight_second_moment_growth": growth(y),
    }
    if np.isfinite(index) and index - Z_REJECT * se <= 1.0:
        return SupportVerdict(
            "infinite",
            "empirical",
            f"the importance weights have a tail index of about {index:.2f} (<= 1 cannot be "
            "ruled out), so their second moment diverges; its sample value keeps growing with "
            "the sample size",
            evidence,
        )
    return SupportVerdict(
        "finite",
        "empirical",
        "the importance weights' tail is light enough for a finite second moment"
        + (f" (tail index {index:.1f})" if np.isfinite(index) else " (they are bounded)"),
        evidence,
    )


def weight_verdict(scenario, sample, target: str, alpha: np.ndarray) -> SupportVerdict:
    """Analytic verdict where the scenario offers one, empirical otherwise.

    Parameters
    ----------
    scenario : Scenario
    sample : EvaluationSample
        Its customers give the empirical verdict.
    target : str
        A target's name.
    alpha : array_like, (K,)
        The logging mixture.

    Returns
    -------
    SupportVerdict
    """
    verdict = scenario.weight_moment_verdict(target, np.asarray(alpha, dtype=float))
    if verdict is not None:
        return verdict
    t = sample.target_names.index(target)
    return empirical_verdict(sample.target_probs[t], sample.balanced(np.asarray(alpha, dtype=float)))

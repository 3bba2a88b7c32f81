"""The OPE estimators couponmix optimises for, and how each maps onto obp.

Every estimator uses balanced importance weights w = pi_e(a|x) / p_alpha(a|x)
(method.md section 2). obp is imported lazily, only where an estimate is run.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import CouponmixError
from .validation import check_positive_float

KINDS = {
    "ips": "balanced inverse probability weighting",
    "clipped_ips": "balanced IPS with importance weights clipped at lambda",
    "snips": "self-normalised balanced IPS",
}
DEFAULT_CLIP = 10.0


@dataclass(frozen=True)
class EstimatorSpec:
    kind: str
    clip: float = np.inf

    def __post_init__(self):
        if self.kind not in KINDS:
            raise CouponmixError(f"unknown estimator {self.kind!r}; choose one of {', '.join(KINDS)}")
        clip = check_positive_float(self.clip, "clip (lambda)", allow_inf=True)
        if self.kind != "clipped_ips" and np.isfinite(clip):
            raise CouponmixError(f"estimator {self.kind} takes no clip; use clipped_ips")
        if self.kind == "clipped_ips" and not np.isfinite(clip):
            raise CouponmixError("clipped_ips needs a finite clip (lambda)")
        object.__setattr__(self, "clip", clip)

    @classmethod
    def parse(cls, kind: str, clip: float | None = None) -> "EstimatorSpec":
        if kind == "clipped_ips":
            return cls(kind, DEFAULT_CLIP if clip is None else clip)
        if clip is not None:
            raise CouponmixError(f"--clip applies to clipped_ips only, not {kind}")
        return cls(kind)

    @property
    def has_unbounded_weights(self) -> bool:
        """True when the variance depends on E[w^2] with unclipped weights (so it can be infinite)."""
        return self.kind in ("ips", "snips")

    @property
    def label(self) -> str:
        return f"clipped IPS (lambda = {self.clip:g})" if self.kind == "clipped_ips" else self.kind.upper()

    def to_dict(self) -> dict:
        d = {"name": self.kind, "description": KINDS[self.kind], "weights": "balanced"}
        if self.kind == "clipped_ips":
            d["lambda"] = self.clip
        return d

    def estimate(self, log: dict, action_dist: np.ndarray) -> float:
        """Run the matching obp estimator on a simulated log; ``action_dist`` is pi_e(.|x_i), (n, A)."""
        import obp.ope as ope  # lazy: obp imports torch

        dist = action_dist[:, :, np.newaxis]
        if self.kind == "snips":
            # obp has no multi-logger SNIPS; with the balanced propensity as pscore this is balanced SNIPS.
            est = ope.SelfNormalizedInverseProbabilityWeighting()
            return float(est.estimate_policy_value(reward=log["reward"], action=log["action"],
                                                   action_dist=dist, pscore=log["pscore_avg"]))
        est = ope.MultiLoggersBalancedInverseProbabilityWeighting(lambda_=float(self.clip))
        return float(est.estimate_policy_value(reward=log["reward"], action=log["action"],
                                               action_dist=dist, pscore_avg=log["pscore_avg"]))

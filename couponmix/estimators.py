"""The OPE estimators couponmix optimises for and validates, and how each maps onto obp.

Every estimator is  V_hat = mean_i[ D(x_i) + c(x_i, a_i) (r_i - q(x_i, a_i)) ]  (plain) or
mean_i[D] + mean_i[c (r - q)] / mean_i[c]  (self-normalised), with a reward model q fixed before
the log is collected (q = 0 for the IPS family), D(x) = sum_a pi_e(a|x) q(x, a), and weights c:

    ips          c = w                     w = pi_e(a|x) / p(a|x)
    clipped_ips  c = min(w, lambda)
    snips        c = w, self-normalised
    dr           c = w (or min(w, lambda) when a clip is given: obp's DR with lambda_)
    sndr         c = w, self-normalised
    switch_dr    c = w 1{w <= lambda}      (obp's SwitchDoublyRobust)
    dm           c = 0: the reward model's predictions alone (obp's DirectMethod)
    dr_fitted    c = w, with q fitted on the log itself (obp's RegressionModel with LightGBM, cross-fitted;
                 see fitted_reward)

p is the balanced propensity p_alpha (default) or, with weights="naive", the acting component's own
propensity pi_k(a|x) (obp's MultiLoggersNaive*). obp is imported lazily, only where an estimate runs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import CouponmixError
from .validation import check_positive_float

KINDS = {
    "ips": "inverse probability weighting",
    "clipped_ips": "IPS with importance weights clipped at lambda",
    "snips": "self-normalised IPS",
    "dr": "doubly robust (reward model plus weighted residuals)",
    "sndr": "self-normalised doubly robust",
    "switch_dr": "switch doubly robust (reward model alone where the weight exceeds lambda)",
    "dr_fitted": "doubly robust with a LightGBM reward model fitted on the log itself, cross-fitted",
    "dm": "direct method (the reward model's predictions alone, no weighting)",
}
#: plain words for reports: what each estimator does, without symbols
PLAIN = {
    "ips": "reweighting the logged revenue",
    "clipped_ips": "reweighting the logged revenue, with weights capped at {clip:g}",
    "snips": "reweighting the logged revenue, normalised",
    "dr": "the revenue model corrected by the reweighted logged revenue",
    "sndr": "the revenue model corrected by the reweighted logged revenue, normalised",
    "switch_dr": "the revenue model corrected by the reweighted logged revenue, model alone where a weight exceeds {clip:g}",
    "dr_fitted": "a revenue model fitted on the log, corrected by the reweighted logged revenue",
    "dm": "the revenue model's predictions alone",
}
NEEDS_CLIP = {"clipped_ips", "switch_dr"}
MAY_CLIP = {"dr"}
USES_REWARD_MODEL = {"dr", "sndr", "switch_dr", "dr_fitted", "dm"}
FITS_REWARD_MODEL = {"dr_fitted"}
SELF_NORMALISED = {"snips", "sndr"}
NAIVE_OK = {"ips", "clipped_ips", "dr", "dr_fitted"}   # obp has MultiLoggersNaive IPS and DR
DEFAULT_CLIP = 10.0
#: dr_fitted's model: obp's RegressionModel with LightGBM, cross-fitted on each log (see fitted_reward)
FITTED_FOLDS = 3
FITTED_SOURCE = (f"LightGBM fitted on the log itself by obp's RegressionModel, {FITTED_FOLDS}-fold cross-fitted "
                 "(features: the covariates and the action, one-hot)")


@dataclass(frozen=True)
class EstimatorSpec:
    kind: str
    clip: float = np.inf
    weights: str = "balanced"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise CouponmixError(f"unknown estimator {self.kind!r}; choose one of {', '.join(KINDS)}")
        clip = check_positive_float(self.clip, "clip (lambda)", allow_inf=True)
        if np.isfinite(clip) and self.kind not in NEEDS_CLIP | MAY_CLIP:
            raise CouponmixError(f"estimator {self.kind} takes no clip")
        if self.kind in NEEDS_CLIP and not np.isfinite(clip):
            raise CouponmixError(f"{self.kind} needs a finite clip (lambda)")
        if self.weights not in ("balanced", "naive"):
            raise CouponmixError(f"weights must be balanced or naive, got {self.weights!r}")
        if self.weights == "naive" and self.kind not in NAIVE_OK:
            raise CouponmixError(f"{self.kind} has no naive multi-logger form in obp (only {', '.join(sorted(NAIVE_OK))})")
        object.__setattr__(self, "clip", clip)

    @classmethod
    def parse(cls, kind: str, clip: float | None = None, weights: str = "balanced") -> EstimatorSpec:
        if kind in NEEDS_CLIP and clip is None:
            clip = DEFAULT_CLIP
        return cls(kind, np.inf if clip is None else clip, weights)

    @property
    def weight_fn(self) -> str:
        """'ips' (c = w), 'clip' (c = min(w, lambda)), 'switch' (c = w 1{w <= lambda}) or 'zero' (c = 0)."""
        if self.kind == "dm":
            return "zero"
        if self.kind == "switch_dr":
            return "switch"
        return "clip" if np.isfinite(self.clip) else "ips"

    def weight(self, w: np.ndarray) -> np.ndarray:
        """The estimator's weight c applied to importance weights w: w, min(w, lambda) or w 1{w <= lambda}."""
        if self.weight_fn == "clip":
            return np.minimum(w, self.clip)
        if self.weight_fn == "switch":
            return w * (w <= self.clip)
        if self.weight_fn == "zero":
            return np.zeros_like(w)
        return w

    @property
    def uses_reward_model(self) -> bool:
        return self.kind in USES_REWARD_MODEL

    @property
    def fits_reward_model(self) -> bool:
        """True when q is fitted on each log (so its error depends on the mixture through q as well)."""
        return self.kind in FITS_REWARD_MODEL

    @property
    def has_error_formula(self) -> bool:
        """False for naive DR with a model fitted on the log: only Monte Carlo measures its error."""
        return not (self.fits_reward_model and self.weights == "naive")

    @property
    def self_normalised(self) -> bool:
        return self.kind in SELF_NORMALISED

    @property
    def has_unbounded_weights(self) -> bool:
        """True when the variance involves E[w^2 ...] with unbounded weights (so it can be infinite)."""
        return self.weight_fn == "ips"

    @property
    def name(self) -> str:
        """A short unique name: kind, clip and weights, e.g. 'clipped_ips(10)' or 'ips[naive]'."""
        s = self.kind + (f"({self.clip:g})" if np.isfinite(self.clip) else "")
        return s + ("[naive]" if self.weights == "naive" else "")

    @property
    def label(self) -> str:
        base = {"ips": "IPS", "snips": "SNIPS", "dr": "DR", "sndr": "SNDR", "switch_dr": "Switch-DR",
                "clipped_ips": "clipped IPS", "dr_fitted": "DR with a model fitted on the log",
                "dm": "direct method"}[self.kind]
        if np.isfinite(self.clip):
            base += f" (lambda = {self.clip:g})"
        return base + (" with naive weights" if self.weights == "naive" else "")

    @property
    def plain(self) -> str:
        """The estimator in plain words, for headlines, cards and figure titles."""
        text = PLAIN[self.kind].format(clip=self.clip)
        return text + (" (each customer weighted by the policy that served them)" if self.weights == "naive" else "")

    def to_dict(self) -> dict:
        d: dict[str, object] = {"name": self.kind, "label": self.label, "plain": self.plain,
                                "description": KINDS[self.kind], "weights": self.weights}
        if np.isfinite(self.clip):
            d["lambda"] = self.clip
        if self.fits_reward_model:
            d["reward_model"] = FITTED_SOURCE
        elif self.uses_reward_model:
            d["reward_model"] = "fixed before logging (the scenario's revenue model, or the per-action average)"
        return d

    def obp_name(self) -> str:
        lam = f"(lambda_={self.clip:g})" if np.isfinite(self.clip) else ""
        if self.fits_reward_model:
            fit = f"RegressionModel(LGBMRegressor).fit_predict(n_folds={FITTED_FOLDS}) + "
            return fit + EstimatorSpec("dr", self.clip, self.weights).obp_name()
        if self.weights == "naive":
            return {"ips": "MultiLoggersNaiveInverseProbabilityWeighting",
                    "clipped_ips": "MultiLoggersNaiveInverseProbabilityWeighting",
                    "dr": "MultiLoggersNaiveDoublyRobust"}[self.kind] + lam
        if self.kind == "dm":
            return "DirectMethod"
        return {"ips": "MultiLoggersBalancedInverseProbabilityWeighting",
                "clipped_ips": "MultiLoggersBalancedInverseProbabilityWeighting",
                "dr": "MultiLoggersBalancedDoublyRobust",
                "snips": "SelfNormalizedInverseProbabilityWeighting with pscore = pscore_avg",
                "sndr": "SelfNormalizedDoublyRobust with pscore = pscore_avg",
                "switch_dr": "SwitchDoublyRobust with pscore = pscore_avg"}[self.kind] + lam

    def estimate(self, log: dict, action_dist: np.ndarray, reward_model: np.ndarray | None = None) -> float:
        """Run the matching obp estimator on a log. action_dist = pi_e(.|x_i) and reward_model = q(x_i, .),
        both (n, A); for dr_fitted, q must be the log's own cross-fitted model (``fitted_reward.cross_fitted``)."""
        import obp.ope as ope  # lazy: obp imports torch

        dist = action_dist[:, :, np.newaxis]
        common = dict(reward=log["reward"], action=log["action"], action_dist=dist)
        if self.uses_reward_model:
            if reward_model is None:
                raise CouponmixError(f"{self.kind} needs a reward model")
            common["estimated_rewards_by_reg_model"] = reward_model[:, :, np.newaxis]
        lam = dict(lambda_=float(self.clip)) if np.isfinite(self.clip) else {}
        if self.kind == "dm":
            return float(ope.DirectMethod().estimate_policy_value(
                action_dist=dist, estimated_rewards_by_reg_model=common["estimated_rewards_by_reg_model"]))
        if self.weights == "naive":
            est = (ope.MultiLoggersNaiveDoublyRobust(**lam) if self.kind in ("dr", "dr_fitted")
                   else ope.MultiLoggersNaiveInverseProbabilityWeighting(**lam))
            return float(est.estimate_policy_value(pscore=log["pscore"], **common))
        if self.kind in ("ips", "clipped_ips"):
            est = ope.MultiLoggersBalancedInverseProbabilityWeighting(**lam)
            return float(est.estimate_policy_value(pscore_avg=log["pscore_avg"], **common))
        if self.kind in ("dr", "dr_fitted"):
            est = ope.MultiLoggersBalancedDoublyRobust(**lam)
            return float(est.estimate_policy_value(pscore_avg=log["pscore_avg"], **common))
        # single-logger obp estimators with the balanced propensity as pscore are the balanced forms
        est = {"snips": ope.SelfNormalizedInverseProbabilityWeighting,
               "sndr": ope.SelfNormalizedDoublyRobust,
               "switch_dr": ope.SwitchDoublyRobust}[self.kind](**lam)
        return float(est.estimate_policy_value(pscore=log["pscore_avg"], **common))


def suite(clip: float = DEFAULT_CLIP) -> list[EstimatorSpec]:
    """Every estimator couponmix knows, balanced and (where obp has it) naive."""
    return [EstimatorSpec("ips"), EstimatorSpec("clipped_ips", clip), EstimatorSpec("snips"), EstimatorSpec("dr"),
            EstimatorSpec("sndr"), EstimatorSpec("switch_dr", clip), EstimatorSpec("dm"), EstimatorSpec("dr_fitted"),
            EstimatorSpec("ips", weights="naive"), EstimatorSpec("dr", weights="naive"),
            EstimatorSpec("dr_fitted", weights="naive")]


def exact_suite(clip: float = DEFAULT_CLIP, finite_variance: bool = True) -> list[EstimatorSpec]:
    """The estimators with an exact error formula at every mixture (the decision's candidates): the suite
    without ``dr_fitted`` (its model depends on the log); without the unbounded-weight ones when plain
    IPS has infinite variance."""
    return [s for s in suite(clip) if not s.fits_reward_model and (finite_variance or not s.has_unbounded_weights)]


def parse_list(text: str, clip: float | None = None) -> list[EstimatorSpec]:
    """'ips,snips,dr[naive],switch_dr' -> specs; clip applies to the kinds that take one."""
    specs = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        weights = "balanced"
        if item.endswith("[naive]"):
            item, weights = item[: -len("[naive]")], "naive"
        kind_clip = clip if item in NEEDS_CLIP else None
        specs.append(EstimatorSpec.parse(item, kind_clip, weights))
    if not specs:
        raise CouponmixError("no estimator named")
    return specs

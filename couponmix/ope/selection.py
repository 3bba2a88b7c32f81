"""Which estimators a decision may use, and why: the one place the selection rules live.

``choose_candidates`` gives the estimators the criterion chooses among for each future policy (every
estimator with an exact error formula whose variance is finite here, or the one the user forces);
``choose_estimator`` checks the single estimator a user forces (``--estimator`` in run, plan and evaluate);
``criterion_for`` builds the decision's criterion from them.
"""

from __future__ import annotations

import numpy as np

from couponmix.errors import CouponmixError
from couponmix.ope.criterion import Criterion
from couponmix.ope.divergence import weight_verdict
from couponmix.ope.estimators import DEFAULT_CLIP, EstimatorSpec, exact_suite
from couponmix.ope.objectives import EvaluationSample
from couponmix.policy.simplex import barycentre

__all__ = ["ROBUST_ASSUMPTION", "choose_estimator", "choose_candidates", "sample_and_verdicts", "criterion_for"]

ROBUST_ASSUMPTION = (
    "where an estimator relies on the revenue model (actions the log rarely or never shows, "
    "capped or switched weights), the model's mean squared error is no larger than its error on held-out "
    "customers whom every logging component and future policy treats alike (the same propensities), "
    "and its errors all push the same way"
)


def choose_estimator(requested: EstimatorSpec, verdicts: dict, scenario_name: str) -> tuple[EstimatorSpec, str]:
    """The single estimator a user forces (``--estimator``), checked, and why it is used. Refuses an estimator
    whose model is fitted on each log, and an unbounded-weight one whose variance is infinite here."""
    if requested.fits_reward_model:
        raise CouponmixError(
            f"{requested.label} cannot be optimised over mixtures: its model is fitted on each log; "
            "optimise for dr and read dr_fitted in validate at the recommended mix"
        )
    bad = {t: v for t, v in verdicts.items() if v.status == "infinite"}
    if requested.has_unbounded_weights and bad:
        t, v = next(iter(bad.items()))
        raise CouponmixError(
            f"{requested.label} has infinite variance in scenario {scenario_name!r} for target {t} "
            f"({v.reason}); its error has no limit to optimise: use --estimator clipped_ips"
        )
    return requested, "chosen by the user"


def choose_candidates(requested: EstimatorSpec | None, verdicts: dict, scenario_name: str) -> tuple[list[EstimatorSpec], str]:
    """The estimators the decision chooses among, and why: the one the user forces, or every estimator with
    an exact formula whose variance is finite here."""
    if requested is not None:
        spec, why = choose_estimator(requested, verdicts, scenario_name)
        return [spec], why
    bad = {t: v for t, v in verdicts.items() if v.status == "infinite"}
    why = "for each future policy, the estimator with the lowest error at the mixture, chosen before any log exists"
    if bad:
        why += (
            f"; estimators with unclipped weights (IPS, SNIPS, DR, SNDR) are left out because their variance "
            f"is infinite here for {', '.join(sorted(bad))}: {next(iter(bad.values())).reason}"
        )
    return exact_suite(DEFAULT_CLIP, finite_variance=not bad), why


def sample_and_verdicts(sc, eval_size: int, seed: int, floors: np.ndarray):
    """The evaluation sample, and plain-IPS finiteness per target at the centre of the floored simplex (which
    decides for every interior mixture)."""
    sample = EvaluationSample.from_scenario(sc, eval_size, seed)
    centre = barycentre(floors, len(sample.component_names))
    return sample, {t: weight_verdict(sc, sample, t, centre) for t in sample.target_names}


def criterion_for(
    sc, sample: EvaluationSample, verdicts: dict, n: int, aggregate: str = "max", estimator: EstimatorSpec | None = None
) -> tuple[Criterion, str]:
    """The decision's criterion (see ``couponmix.ope.criterion``) and the reason for its candidates."""
    specs, why = choose_candidates(estimator, verdicts, sc.name)
    return Criterion(sample, specs, n, aggregate), why

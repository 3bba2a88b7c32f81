"""One study end to end: scenario -> exact objectives -> Pareto front -> recommendation -> outputs."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import numpy as np

from simulators import get_scenario

from .curves import best_component, exploration_curve, exploration_rate, log_size_curve
from .divergence import growth, weight_verdict
from .errors import CouponmixError
from .estimators import DEFAULT_CLIP, EstimatorSpec, suite
from .fitted_reward import FittedModelObjectives, pilot_samples
from .mixture import Mixture
from .objectives import AGGREGATES, DEFAULT_EVAL_SIZE, EvaluationSample, MixtureObjectives
from .optimize import Front, Recommendation, check_max_rmse, pareto_front, recommend
from .planner import critical_rate, log_size_needed
from .progress import Progress
from .simplex import barycentre, check_floors
from .study_config import DEFAULT_DAILY_TRAFFIC, DEFAULT_FLOOR, StudyConfig
from .validation import check_positive_float, check_positive_int

log = logging.getLogger("couponmix")


@dataclass
class StudyResult:
    summary: dict
    front: Front
    recommendation: Recommendation


def choose_estimator(requested: EstimatorSpec | None, verdicts: dict, scenario_name: str) -> tuple[EstimatorSpec, str]:
    """The estimator to optimise for, and why. Refuses an unbounded-weight estimator whose variance is infinite."""
    bad = {t: v for t, v in verdicts.items() if v.status == "infinite"}
    if requested is not None and requested.fits_reward_model:
        raise CouponmixError(f"{requested.label} cannot be optimised over mixtures: its model is fitted on each log; "
                             "optimise for dr and read dr_fitted in the estimator comparison at the recommended mix")
    if requested is not None:
        if requested.has_unbounded_weights and bad:
            t, v = next(iter(bad.items()))
            raise CouponmixError(
                f"{requested.label} has infinite variance in scenario {scenario_name!r} for target {t} "
                f"({v.reason}); its error has no limit to optimise: use --estimator clipped_ips")
        return requested, "chosen by the user"
    if bad:
        return (EstimatorSpec("clipped_ips", DEFAULT_CLIP),
                f"plain IPS (and every estimator with unclipped weights: SNIPS, DR, SNDR) has infinite variance here for "
                f"{', '.join(sorted(bad))}: {next(iter(bad.values())).reason}. Clipping the importance weights at "
                f"lambda = {DEFAULT_CLIP:g} makes the variance finite at the price of a bias, reported per target.")
    return EstimatorSpec("ips"), "plain balanced IPS is unbiased and its variance is finite for every target"


def prepare(sc, eval_size: int, seed: int, floors: np.ndarray, estimator: EstimatorSpec | None):
    """The evaluation sample, plain-IPS finiteness at the centre of the floored simplex (which decides for
    every interior mixture), and the estimator to optimise for with the reason."""
    sample = EvaluationSample.from_scenario(sc, eval_size, seed)
    centre = barycentre(floors, len(sample.component_names))
    verdicts = {t: weight_verdict(sc, sample, t, centre) for t in sample.target_names}
    spec, why = choose_estimator(estimator, verdicts, sc.name)
    return sample, verdicts, spec, why


def no_exploration(objectives: MixtureObjectives, sample: EvaluationSample) -> dict:
    """The revenue-best single component with no mixing at all, and what OPE can say from its logs."""
    k = len(objectives.component_names)
    best = int(np.argmax(sample.component_values))
    alpha = np.eye(k)[best]
    targets = {}
    for name, d in objectives.describe(alpha).items():
        if not d["supported"]:
            targets[name] = {"status": "unsupported", "rmse": None, "unsupported_mass": 1 - d["support"],
                             "explanation": f"the logs never show actions that carry {1 - d['support']:.1%} of "
                                            f"{name}'s probability: it cannot be evaluated from them"}
        else:
            targets[name] = {"status": "supported", "rmse": d["rmse"]}
    return {"component": objectives.component_names[best], "alpha": dict(zip(objectives.component_names,
                                                                             alpha.tolist())),
            "revenue": float(sample.component_values[best]), "targets": targets}


def compare_estimators(sample: EvaluationSample, alpha: np.ndarray, n: int, aggregate: str, verdicts: dict,
                       clip: float, scenario=None, seed: int = 0) -> dict:
    """RMSE of every estimator of the suite at one mixture; unbounded ones only where their variance is finite.

    DR with a model fitted on the log needs the scenario (for pilot logs at this mixture); naive DR with a
    fitted model has no formula and is left out (``validate`` measures it by Monte Carlo)."""
    finite = all(v.finite for v in verdicts.values())
    pilots = None
    out = {}
    for spec in suite(clip):
        if (spec.has_unbounded_weights and not finite) or not spec.has_error_formula:
            continue
        if spec.fits_reward_model:
            if scenario is None:
                continue
            if pilots is None:
                pilots = pilot_samples(sample, scenario, Mixture(scenario.components(), alpha), n, seed)
            obj = FittedModelObjectives(pilots, spec, n, aggregate)
        else:
            obj = MixtureObjectives(sample, spec, n, aggregate)
        per = obj.rmse(alpha)[0]
        out[spec.name] = {"ope_rmse": float(obj.combine(per[None, :])[0]),
                          "ope_rmse_per_target": dict(zip(sample.target_names, per.tolist())),
                          "obp": spec.obp_name(), "spec": spec,
                          **({"error": "approximate: " + obj.q_source} if spec.fits_reward_model else {})}
    return out


LAW_SIZES = (1_000, 10_000, 100_000, 1_000_000, 10_000_000)


def sample_size_law(objectives: MixtureObjectives, sample: EvaluationSample, alpha: np.ndarray,
                    verdicts: dict) -> dict:
    """RMSE(n) = sqrt(bias^2 + s^2 / n) at the recommended mixture for several log sizes, from one computation;
    for targets where plain IPS diverges, the growth of its second-moment estimate instead."""
    laws = objectives.laws(alpha)
    out = {"estimator": objectives.estimator.name, "holds": True,
           "formula": "RMSE(n) = sqrt((bias0 + bias1 / n)^2 + s^2 / n)",
           "rmse_by_log_size": {str(n): {t: float(law.rmse(n)[0]) for t, law in zip(sample.target_names, laws)}
                                for n in LAW_SIZES},
           "bias": {t: float(law.bias0[0]) for t, law in zip(sample.target_names, laws)},
           "s": {t: float(np.sqrt(law.scaled_var[0])) for t, law in zip(sample.target_names, laws)}}
    bad = [t for t, v in verdicts.items() if v.status == "infinite"]
    if bad:
        p = sample.balanced(alpha)
        growth_by_target = {}
        for t in bad:
            j = sample.target_names.index(t)
            pe = sample.target_probs[j]
            y = np.divide(pe * pe * sample.m2, p, out=np.zeros_like(p), where=p > 0).sum(axis=1)
            growth_by_target[t] = growth(y)
        out["plain_ips"] = {
            "holds": False,
            "reason": "plain IPS has infinite variance here: no s exists, and the variance computed from a sample "
                      "keeps growing with the sample size instead of settling",
            "second_moment_growth": growth_by_target,
        }
    return out


def production_block(components, alpha, spec: EstimatorSpec, comparison: dict, q_source: str) -> dict:
    weights = dict(zip(components, alpha.tolist()))
    best = min(comparison, key=lambda k: comparison[k]["ope_rmse"])
    best_spec = comparison[best]["spec"]
    return {
        "exploration_rate": weights.get("explore"),
        "mixture": weights,
        "log_per_customer": ["the action taken", "the reward", "which component acted",
                             "the balanced propensity p(a|x) = sum_k alpha_k pi_k(a|x) of the action taken "
                             "(obp's pscore_avg), computed from every component's probabilities, not only the "
                             "acting one's",
                             "the acting component's own propensity pi_k(a|x) of the action taken (obp's pscore, "
                             "for naive-weight estimators)"],
        "estimator": {**best_spec.to_dict(), "id": best},
        "estimator_label": best_spec.label,
        "estimator_reason": (f"lowest RMSE among the estimators compared at this mixture "
                             f"({comparison[best]['ope_rmse']:.4g}, against {comparison[spec.name]['ope_rmse']:.4g} "
                             f"for {spec.label}, the one optimised for)" if spec.name in comparison and best != spec.name
                             else "lowest RMSE among the estimators compared at this mixture"),
        "obp_estimator": best_spec.obp_name(),
        **({"reward_model": comparison[best]["error"] if best_spec.fits_reward_model else q_source}
           if best_spec.uses_reward_model else {}),
        "estimator_comparison": {k: {kk: vv for kk, vv in v.items() if kk != "spec"} for k, v in comparison.items()},
    }


def run_config(cfg: StudyConfig, quiet: bool = True) -> StudyResult:
    """Run the study a ``StudyConfig`` (a study file) describes."""
    return run_study(cfg.scenario, n=cfg.n, seed=cfg.seed, pop_size=cfg.pop_size, generations=cfg.generations,
                     estimator=cfg.estimator, max_rmse=cfg.max_rmse, floor=cfg.floor, aggregate=cfg.aggregate,
                     eval_size=cfg.eval_size, quiet=quiet, config=cfg.market, tol=cfg.tolerance,
                     daily_traffic=cfg.daily_traffic, study=cfg.to_dict())


def run_study(scenario: str, n: int | None = None, seed: int = 0, pop_size: int = 100, generations: int = 100,
              estimator: EstimatorSpec | None = None, max_rmse: float | None = None, floor: float = DEFAULT_FLOOR,
              aggregate: str = "max", eval_size: int = DEFAULT_EVAL_SIZE, quiet: bool = True,
              config=None, tol: float | None = None, daily_traffic: float = DEFAULT_DAILY_TRAFFIC,
              study: dict | None = None) -> StudyResult:
    """Run a whole study in memory (nothing is written; see ``cli.cmd_run`` for the files)."""
    seed = check_positive_int(seed, "seed", minimum=0)
    daily_traffic = check_positive_float(daily_traffic, "daily_traffic")
    log.info("building scenario %s", scenario)
    sc = get_scenario(scenario, config=config, seed=seed)
    n = check_positive_int(sc.default_n if n is None else n, "n")
    if aggregate not in AGGREGATES:
        raise CouponmixError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
    max_rmse = check_max_rmse(max_rmse)
    components, targets = sc.components(), sc.targets()
    floors = check_floors(floor, len(components))

    log.info("sampling %d evaluation customers and checking importance-weight variance", eval_size)
    sample, verdicts, spec, why = prepare(sc, eval_size, seed, floors, estimator)

    objectives = MixtureObjectives(sample, spec, n, aggregate)
    log.info("optimising mixtures for %s: population %d, %d generations", spec.label, pop_size, generations)
    with Progress(generations, "optimising mixtures", quiet) as bar:
        front = pareto_front(objectives, floors, pop_size, generations, seed, on_generation=bar.update_to)
    rec = recommend(front, max_rmse)
    alpha = front.alphas[rec.index]
    at_rec = {t: weight_verdict(sc, sample, t, alpha) for t in targets}

    # The revenue-only choice: the best vertex of the floored simplex.
    free = 1.0 - floors.sum()
    vertices = floors + free * np.eye(len(components))
    best = int(np.argmax(objectives.revenue(vertices)))
    best_alpha = vertices[best]
    best_rev = float(objectives.revenue(best_alpha)[0])
    best_rmse = objectives.rmse(best_alpha)[0]

    values = {name: float(v) for name, v in zip(components, sample.component_values)}
    values.update({name: float(v) for name, v in zip(targets, sample.target_values)})
    references = sc.reference_policies()
    values.update({name: sample.policy_value_of(p) for name, p in references.items()})
    # the evaluation sample is drawn apart from any training data, so it serves as held-out customers
    model_report = sc.model_report(sample.x)
    rev = float(front.revenue[rec.index])
    detail = objectives.describe(alpha)
    warnings = [f"The textbook estimate (plain inverse propensity weighting) of {t} would stay unreliable however "
                f"many customers are logged: its variance is infinite. couponmix uses {spec.label} instead. "
                f"Detail: {v.reason}." for t, v in verdicts.items() if v.status == "infinite"]
    warnings += [f"{t} cannot be evaluated from logs of any mix: some actions it takes are never logged. "
                 f"Detail: {v.reason}." for t, v in verdicts.items() if v.status == "unsupported"]
    warnings += [f"At the recommended mix, {t} cannot be fully evaluated: some actions it takes are never logged. "
                 f"Detail: {v.reason}." for t, v in at_rec.items()
                 if v.status == "unsupported" and verdicts[t].status != "unsupported"]
    if rec.meets_max_rmse is False:
        warnings.append(rec.note[0].upper() + rec.note[1:] + ".")

    summary = {
        **({"study": study} if study is not None else {}),
        "scenario": sc.name,
        "scenario_description": sc.description,
        "n": n,
        "seed": seed,
        "evaluation_sample_size": sample.size,
        "estimator": {**spec.to_dict(), "label": spec.label, "reason": why},
        "aggregate": aggregate,
        "floors": dict(zip(components, floors.tolist())),
        "policies": {
            **{name: {"role": "logging component", "description": p.description, "value": values[name]}
               for name, p in components.items()},
            **{name: {"role": "target", "description": p.description, "value": values[name]}
               for name, p in targets.items()},
            **{name: {"role": "reference", "description": p.description, "value": values[name]}
               for name, p in references.items()},
        },
        "variance_finite": {t: v.finite for t, v in verdicts.items()},
        "ips_variance": {
            "applies_to": ("every mixture with all weights > 0 (finiteness is the same across the inside of the "
                           "simplex); checked at its centre"),
            "targets": {t: v.to_dict() for t, v in verdicts.items()},
            "at_recommended": {t: v.to_dict() for t, v in at_rec.items()},
        },
        "recommended": {
            "alpha": dict(zip(components, alpha.tolist())),
            "revenue": rev,
            "ope_rmse": float(front.rmse[rec.index]),
            "ope_rmse_per_target": dict(zip(targets, front.rmse_per_target[rec.index].tolist())),
            "targets": detail,
            "rule": rec.rule,
            "note": rec.note,
            **({"max_rmse": max_rmse, "meets_max_rmse": rec.meets_max_rmse} if max_rmse is not None else {}),
        },
        "revenue_only": {
            "alpha": dict(zip(components, best_alpha.tolist())),
            "revenue": best_rev,
            "ope_rmse": float(objectives.combine(best_rmse[None, :])[0]),
            "ope_rmse_per_target": dict(zip(targets, best_rmse.tolist())),
        },
        "revenue_cost": {"per_customer": best_rev - rev,
                         "pct": 100.0 * (best_rev - rev) / abs(best_rev) if best_rev else None},
        "no_exploration": no_exploration(objectives, sample),
        "production": production_block(components, alpha, spec,
                                       compare_estimators(sample, alpha, n, aggregate, verdicts,
                                                          spec.clip if np.isfinite(spec.clip) else DEFAULT_CLIP,
                                                          sc, seed),
                                       sample.q_source),
        "optimiser": {"algorithm": "NSGA-II (pymoo)", "pop_size": pop_size, "generations": generations,
                      "front_points": len(front)},
        "warnings": warnings,
    }
    if model_report is not None:
        summary["revenue_model"] = model_report
        if model_report["rmse_vs_true_mu"] > 0.8 * model_report["baseline_rmse_vs_true_mu"]:
            warnings.append("The revenue model is weak: its error against the true revenue is "
                            f"{model_report['rmse_vs_true_mu']:.3g}, barely below the "
                            f"{model_report['baseline_rmse_vs_true_mu']:.3g} of a per-action average.")
    summary["sample_size_law"] = sample_size_law(objectives, sample, alpha, verdicts)
    log.info("computing the curves for the report")
    summary["exploration_curve"] = exploration_curve(objectives, n)
    summary["log_size_curve"] = log_size_curve(objectives, alpha, daily_traffic)
    summary["headline"] = headline_numbers(summary, objectives, alpha)
    if tol is not None:
        plan = critical_rate(objectives, tol, n)
        summary["plan"] = {**plan.to_dict(), "estimator": spec.name}
        if plan.critical_exploration_rate is not None:
            rec_eps = summary["production"]["exploration_rate"]
            if rec_eps is not None:
                summary["plan"]["log_size_needed_at_recommended_rate"] = \
                    log_size_needed(objectives, rec_eps, tol).to_dict()["log_size_needed"]
    if "exploit" in components and "oracle" in references:
        summary["exploit_regret"] = {
            "per_customer": values["oracle"] - values["exploit"],
            "pct_of_oracle": 100 * (values["oracle"] - values["exploit"]) / abs(values["oracle"]),
        }
    unsupported = [t for t, d in summary["no_exploration"]["targets"].items() if d["status"] == "unsupported"]
    if unsupported:
        warnings.append(f"Without any exploration ({summary['no_exploration']['component']} alone), "
                        f"{', '.join(unsupported)} cannot be evaluated at all: the logs never show the actions "
                        "they would take.")
    return StudyResult(summary=summary, front=front, recommendation=rec)


def headline_numbers(summary: dict, objectives: MixtureObjectives, alpha: np.ndarray) -> dict:
    """The numbers a reader needs first: how much to explore, what it costs, what precision it buys."""
    rec, cost = summary["recommended"], summary["revenue_cost"]
    best = summary["production"]["estimator"]["id"]
    production = summary["production"]["estimator_comparison"][best]["ope_rmse_per_target"]
    return {
        "exploration_rate": exploration_rate(objectives, alpha),
        "revenue_best_component": objectives.component_names[best_component(objectives)],
        "exploration_definition": summary["exploration_curve"]["definition"],
        "revenue_per_customer": rec["revenue"],
        "revenue_cost_per_10k_customers": 10_000 * cost["per_customer"],
        "revenue_cost_pct": cost["pct"],
        "log_size": summary["n"],
        "log_days": summary["n"] / summary["log_size_curve"]["daily_traffic"],
        # precision with the estimator optimised for, and with the one recommended for production
        "precision": {t: {"rmse": d["rmse"], "production_rmse": production[t], "true_value": d["true_value"],
                          "supported": d["supported"]}
                      for t, d in rec["targets"].items()},
        "production_estimator": best,
        "production_estimator_label": summary["production"]["estimator_label"],
    }


def to_json(summary: dict) -> str:
    def default(o):
        if isinstance(o, (np.floating, np.integer)):
            return o.item()
        raise TypeError(type(o))

    return json.dumps(summary, indent=2, default=default, allow_nan=False) + "\n"

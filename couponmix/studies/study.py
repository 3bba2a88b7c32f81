"""One study end to end: scenario -> exact objectives -> Pareto front -> recommendation -> outputs."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from couponmix.dataset.scenario import get_scenario
from couponmix.decide.contextual import ContextualCriterion, check_contextual, contextual_block, grouping_for
from couponmix.decide.curves import (
    BASELINE,
    best_component,
    exploration_curve,
    exploration_rate,
    log_size_curve,
    no_exploration_alpha,
    no_exploration_revenue,
)
from couponmix.decide.optimize import Front, Recommendation, check_max_rmse, pareto_front, recommend
from couponmix.decide.planner import LogSizePlan, Plan, log_size_at, plan_mixture
from couponmix.decide.value import decision_summary, payback
from couponmix.errors import CouponmixError
from couponmix.infra.progress import Progress
from couponmix.infra.validation import check_positive_float, check_positive_int
from couponmix.ope.criterion import Criterion, interval_95, widest_share
from couponmix.ope.divergence import growth, weight_verdict
from couponmix.ope.estimators import DEFAULT_CLIP, EstimatorSpec, exact_suite
from couponmix.ope.objectives import AGGREGATES, DEFAULT_EVAL_SIZE, EvaluationSample
from couponmix.ope.real_log import log_estimates
from couponmix.ope.selection import ROBUST_ASSUMPTION, criterion_for, sample_and_verdicts
from couponmix.policy.simplex import check_floors, parse_alpha_spec
from couponmix.studies.config import DEFAULT_DAILY_TRAFFIC, DEFAULT_FLOOR, StudyConfig
from couponmix.studies.summary import (
    SUMMARY_FORMAT,
    CriterionInfo,
    FloorMix,
    Headline,
    PolicyInfo,
    Production,
    Recommended,
    RevenueCost,
    StudySummary,
    TargetPrecision,
)

#: front mixtures the payback rule weighs (evenly spaced along the front)
PAYBACK_MIXES = 25

__all__ = [
    "PROMISE_GOAL",
    "StudyResult",
    "no_exploration",
    "LAW_SIZES",
    "sample_size_law",
    "production_block",
    "objectives_comparison",
    "PlanResult",
    "plan_study",
    "run_config",
    "run_study",
    "PHASES",
    "headline_numbers",
]

log = logging.getLogger("couponmix")

#: the promised error's own standard error (from the evaluation sample) should stay below this share of it
PROMISE_GOAL = 0.02


@dataclass
class StudyResult:
    """What ``run_study`` returns: the typed summary (written as summary.json), the front and the pick."""

    summary: StudySummary
    front: Front
    recommendation: Recommendation


def no_exploration(objectives: Criterion, sample: EvaluationSample) -> dict:
    """The revenue-best single component with no mixing at all, and what OPE can say from its logs."""
    best = best_component(objectives)
    alpha = no_exploration_alpha(objectives)
    targets = {}
    for name, d in objectives.describe(alpha).items():
        if not d["logs_show_all"]:
            targets[name] = {
                "status": "unsupported",
                "rmse": d["rmse"],
                "estimator": d["estimator"],
                "sampling_error": d["sampling_error"],
                "model_dependent": d["model_dependent"],
                "unsupported_mass": 1 - d["support"],
                "explanation": f"the logs never show actions that carry {1 - d['support']:.1%} of "
                f"{name}'s probability: only the revenue model speaks for them, so the "
                f"error could be as large as {d['rmse']:.3g}",
            }
        else:
            targets[name] = {"status": "supported", "rmse": d["rmse"], "estimator": d["estimator"]}
    return {
        "component": objectives.component_names[best],
        "alpha": dict(zip(objectives.component_names, alpha.tolist())),
        "revenue": no_exploration_revenue(objectives),
        "worst_error": float(objectives.combine(np.array([[t["rmse"] for t in targets.values()]]))[0]),
        "targets": targets,
    }


LAW_SIZES = (1_000, 10_000, 100_000, 1_000_000, 10_000_000)


def sample_size_law(objectives: Criterion, sample: EvaluationSample, alpha: np.ndarray, verdicts: dict) -> dict:
    """The error at the recommended mixture for several log sizes, from one computation (the estimator chosen
    may change with the log size); for targets where plain IPS diverges, the growth of its second-moment
    estimate instead."""
    laws = objectives.laws(alpha)
    out = {
        "holds": True,
        "formula": "error(n) = sqrt(s^2 / n + (|computed bias| + model-error bound)^2), lowest over the estimators",
        "rmse_by_log_size": {str(n): {t: float(law.rmse(n)[0]) for t, law in zip(sample.target_names, laws)} for n in LAW_SIZES},
        "estimator_by_log_size": {
            str(n): {t: law.specs[int(law.choice(n)[0])].name for t, law in zip(sample.target_names, laws)} for n in LAW_SIZES
        },
    }
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


def production_block(components, alpha, objectives: Criterion, explore_description: str | None, finite: bool) -> Production:
    """What to do in production: the mixture, what to log, and the estimator for each future policy."""
    weights = dict(zip(components, alpha.tolist()))
    detail = objectives.describe(alpha)
    by_name = {s.name: s for s in objectives.specs}
    per_target = {
        t: {
            "estimator": d["estimator"],
            "label": d["estimator_label"],
            "plain": d["estimator_plain"],
            "obp": by_name[d["estimator"]].obp_name(),
            **({"reward_model": objectives.sample.q_source} if by_name[d["estimator"]].uses_reward_model else {}),
        }
        for t, d in detail.items()
    }
    return Production(
        exploration_rate=weights.get("explore"),
        mixture=weights,
        log_per_customer=[
            "the action taken",
            "the reward",
            "which component acted",
            "the balanced propensity p(a|x) = sum_k alpha_k pi_k(a|x) of the action taken "
            "(obp's pscore_avg), computed from every component's probabilities, not only the "
            "acting one's",
            "the acting component's own propensity pi_k(a|x) of the action taken (obp's pscore, for naive-weight estimators)",
        ],
        explore_description=explore_description,
        estimators=per_target,
        estimator_reason="the same estimator for each future policy as the recommendation used: the lowest "
        "error among the candidates at this mixture (" + objectives.label + ")",
        estimator_comparison=objectives_comparison(objectives, alpha, finite),
    )


def objectives_comparison(objectives: Criterion, alpha: np.ndarray, finite: bool) -> dict:
    """Every estimator of the exact suite at the mixture (even when one is forced), for the methods section;
    unclipped ones only where their variance is finite."""
    specs = exact_suite(DEFAULT_CLIP, finite_variance=finite)
    same = [s.name for s in specs] == [s.name for s in objectives.specs] and objectives.error == "robust"
    full = objectives if same else Criterion(objectives.sample, specs, objectives.n, objectives.aggregate)
    return full.compare(alpha)


@dataclass
class PlanResult:
    """What ``couponmix plan`` computed: a least-cost mixture (``plan``) or a log size (``log_size``)."""

    scenario: str
    criterion: str
    plan: Plan | LogSizePlan

    def to_dict(self) -> dict:
        return {"scenario": self.scenario, "criterion": self.criterion, **self.plan.to_dict()}

    def text(self) -> str:
        p = self.plan
        if isinstance(p, Plan):
            mix = ", ".join(f"{k}={v:.4g}" for k, v in p.alpha.items())
            where = "; ".join(f"{t}: ±{d['rmse']:.3g} with {d['estimator']}" for t, d in p.targets.items())
            if not p.reachable:
                return f"{p.note} (at {mix}: {where})."
            cost = f"{p.revenue_cost_per_10k_customers:,.0f} per 10,000 customers against no exploration" + (
                f" ({p.revenue_cost_pct:.1f}% of revenue)" if p.revenue_cost_pct is not None else ""
            )
            return (
                f"The least-cost mixture with error <= {p.tol:g} for every future policy from {p.n:,} customers is "
                f"{mix} ({100 * p.exploration_rate:.2f}% exploration); it costs {cost}. Per policy: {where}."
            )
        mix = ", ".join(f"{k}={v:.4g}" for k, v in p.alpha.items())
        if p.log_size_needed is None:
            return f"At {mix}: {p.note}."
        who = "customer" if p.log_size_needed == 1 else "customers"
        return f"At {mix}, a log of {p.log_size_needed:,.0f} {who} gives an error <= {p.tol:g} for every future policy."


#: ``plan``'s phases, named as they run
PLAN_PHASES = ("building the scenario and its revenue model", "sampling customers and checking weight variance", "planning")
#: their measured seconds on the demo settings (``plan market --tol 0.5``, models not cached), for the bar
PLAN_WEIGHTS = (0.1, 9.6, 4.1)


def plan_study(cfg: StudyConfig, tol: float, alpha=None, eps: float | None = None, floor: float | None = None, on_phase=None) -> PlanResult:
    """``couponmix plan``: the least-cost mixture for ``tol`` at the study's log size, or, given a mixture
    (``alpha`` as a spec or mapping, or an exploration rate ``eps``), the log size needed there. Every
    component keeps at least ``floor`` of the traffic (default: the study's floor, as in ``run``).
    ``on_phase(done, name)`` is told as each of ``PLAN_PHASES`` starts."""
    tol = check_positive_float(tol, "tol")  # the numbers first, before any model is built
    if eps is not None and not 0 <= eps <= 1:
        raise CouponmixError(f"eps must lie in [0, 1], got {eps}")
    phase = on_phase or (lambda done, name: None)
    phase(0, PLAN_PHASES[0])
    sc = cfg.build_scenario()
    n = check_positive_int(sc.default_n if cfg.n is None else cfg.n, "n")
    k = len(sc.components())
    floors = check_floors(cfg.floor if floor is None else floor, k)
    phase(1, PLAN_PHASES[1])
    sample, verdicts = sample_and_verdicts(sc, cfg.eval_size, cfg.seed, floors)
    objectives, _ = criterion_for(sc, sample, verdicts, n, cfg.aggregate, cfg.estimator)
    phase(2, PLAN_PHASES[2])
    names = objectives.component_names
    if eps is not None:
        if "explore" not in names:
            raise CouponmixError(
                f"--eps needs a component named 'explore'; this scenario's components are {', '.join(names)}: give --alpha"
            )
        a = np.zeros(k)
        a[best_component(objectives)] = 1 - eps
        a[names.index("explore")] = eps
        return PlanResult(sc.name, objectives.label, log_size_at(objectives, a, tol))
    if alpha is not None:
        a = parse_alpha_spec(alpha, names)
        return PlanResult(sc.name, objectives.label, log_size_at(objectives, a, tol))
    return PlanResult(sc.name, objectives.label, plan_mixture(objectives, tol, n, floors))


def run_config(cfg: StudyConfig, quiet: bool = True) -> StudyResult:
    """Run the study a ``StudyConfig`` (a study file) describes."""
    return run_study(
        cfg.scenario,
        n=cfg.n,
        seed=cfg.seed,
        pop_size=cfg.pop_size,
        generations=cfg.generations,
        estimator=cfg.estimator,
        max_rmse=cfg.max_rmse,
        horizon_days=cfg.horizon_days,
        floor=cfg.floor,
        aggregate=cfg.aggregate,
        eval_size=cfg.eval_size,
        quiet=quiet,
        config=cfg.scenario_config,
        tol=cfg.tolerance,
        daily_traffic=cfg.daily_traffic,
        study=cfg.to_dict(),
        world_seed=cfg.world_seed,
        contextual=cfg.contextual,
    )


def run_study(
    scenario: str,
    n: int | None = None,
    seed: int = 0,
    pop_size: int = 100,
    generations: int = 100,
    estimator: EstimatorSpec | None = None,
    max_rmse: float | None = None,
    floor: float = DEFAULT_FLOOR,
    aggregate: str = "max",
    eval_size: int = DEFAULT_EVAL_SIZE,
    quiet: bool = True,
    horizon_days: float | None = None,
    config=None,
    tol: float | None = None,
    daily_traffic: float = DEFAULT_DAILY_TRAFFIC,
    study: dict | None = None,
    world_seed: int = 0,
    contextual: str | None = None,
) -> StudyResult:
    """Run a whole study in memory (nothing is written; see ``cli.cmd_run`` for the files).

    One criterion (``couponmix.ope.criterion.Criterion``) drives the front, the recommendation, the plan, the
    curves and the headline: for each future policy, the estimator with the lowest robust error.
    """
    seed = check_positive_int(seed, "seed", minimum=0)
    world_seed = check_positive_int(world_seed, "world_seed", minimum=0)
    daily_traffic = check_positive_float(daily_traffic, "daily_traffic")
    if aggregate not in AGGREGATES:
        raise CouponmixError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
    max_rmse = check_max_rmse(max_rmse)
    if horizon_days is not None:
        horizon_days = check_positive_float(horizon_days, "horizon_days (--horizon-days)")
        if max_rmse is not None:
            raise CouponmixError("--horizon-days and --max-rmse are two decision rules: give one")
    with Progress(len(PHASES) - (contextual is None), PHASES[0], quiet, weights=PHASE_WEIGHTS) as bar:
        return _run(
            scenario,
            n,
            seed,
            pop_size,
            generations,
            estimator,
            max_rmse,
            floor,
            aggregate,
            eval_size,
            config,
            tol,
            daily_traffic,
            study,
            world_seed,
            bar,
            contextual,
            horizon_days,
        )


PHASES = (
    "building the scenario and its revenue model",
    "sampling customers and checking weight variance",
    "finding the best trade-offs",
    "measuring the recommendation and its uncertainty",
    "computing the curves",
    "planning",
    "comparing exploration that varies by customer",
)
#: their measured seconds on the demo settings (``run market --tol 0.5``, models not cached; the contextual
#: comparison from ``--contextual segment``), so that the bar advances with the time, not the step count
PHASE_WEIGHTS = (2.4, 7.3, 2.7, 0.9, 0.6, 4.2, 460.0)


def _run(
    scenario,
    n,
    seed,
    pop_size,
    generations,
    estimator,
    max_rmse,
    floor,
    aggregate,
    eval_size,
    config,
    tol,
    daily_traffic,
    study,
    world_seed,
    bar: Progress,
    contextual: str | None = None,
    horizon_days: float | None = None,
) -> StudyResult:
    log.info("building scenario %s", scenario)
    sc = get_scenario(scenario, config=config, seed=world_seed)
    n = check_positive_int(sc.default_n if n is None else n, "n")
    if contextual is not None:  # before the front: a typo in the covariate costs no optimisation
        check_contextual(contextual, sc)
    components, targets = sc.components(), sc.targets()  # fits the scenario's models where it has any
    floors = check_floors(floor, len(components))

    bar.phase(1, PHASES[1])
    log.info("sampling %d evaluation customers and checking importance-weight variance", eval_size)
    sample, verdicts = sample_and_verdicts(sc, eval_size, seed, floors)
    objectives, why = criterion_for(sc, sample, verdicts, n, aggregate, estimator)
    finite = all(v.finite for v in verdicts.values())

    bar.phase(2, PHASES[2])
    log.info("optimising mixtures (%s): population %d, %d generations", objectives.label, pop_size, generations)
    front = pareto_front(objectives, floors, pop_size, generations, seed)
    bar.phase(3, PHASES[3])
    rec = recommend(front, max_rmse)
    pay = None
    if horizon_days is not None:  # payback: the mix and log size with the most net revenue over the horizon
        log.info("weighing what a log at each mix is worth over %g days", horizon_days)
        incumbent = objectives.component_names[best_component(objectives)]
        pick = np.unique(np.linspace(0, len(front) - 1, min(len(front), PAYBACK_MIXES)).round().astype(int))
        pay = payback(sample, objectives, front.alphas[pick], incumbent, horizon_days, daily_traffic)
        best_pay = pay["best"]
        rec = Recommendation(
            int(pick[pay["best_index"]]),
            "payback",
            None,
            f"the most net revenue over {horizon_days:g} days after the log: log {best_pay['log_size']:,} customers "
            f"({best_pay['log_days']:.2g} days), then deploy by the safe rule",
        )
        if best_pay["log_size"] != n:  # every precision shown is at the log size the decision uses
            n = int(best_pay["log_size"])
            objectives = Criterion(objectives.sample, objectives.specs, n, objectives.aggregate, objectives.error)
            _, err_f, per_f = objectives.evaluate(front.alphas)
            front = replace(front, rmse=err_f, rmse_per_target=per_f)
    alpha = front.alphas[rec.index]
    at_rec = {t: weight_verdict(sc, sample, t, alpha) for t in targets}

    # Every cost is against no exploration (the revenue-best component alone). The floor is a separate choice:
    # the most revenue it allows is the best vertex of the floored simplex, priced apart.
    base_alpha, base_rev = no_exploration_alpha(objectives), no_exploration_revenue(objectives)
    free = 1.0 - floors.sum()
    vertices = floors + free * np.eye(len(components))
    floor_alpha = vertices[int(np.argmax(objectives.revenue(vertices)))]
    floor_rev = float(objectives.revenue(floor_alpha)[0])
    floor_rmse = objectives.rmse(floor_alpha)[0]

    values = {name: float(v) for name, v in zip(components, sample.component_values)}
    values.update({name: float(v) for name, v in zip(targets, sample.target_values)})
    references = sc.reference_policies()
    values.update({name: sample.policy_value_of(p) for name, p in references.items()})
    # the evaluation sample is drawn apart from any training data, so it serves as held-out customers
    model_report = sc.model_report(sample.x)
    rev = float(front.revenue[rec.index])
    detail = objectives.describe(alpha)
    log.info("measuring how much the promise depends on the evaluation sample")
    promise = objectives.promise_uncertainty(alpha, reference=base_alpha)
    for t in detail:
        detail[t]["promise_se"] = promise["error_se"][t]
    worst_rel = max(promise["relative"].values())
    promise.update(
        max_relative=worst_rel,
        goal=PROMISE_GOAL,
        enough=worst_rel <= PROMISE_GOAL,
        eval_size_for_goal=int(np.ceil(sample.size * (worst_rel / PROMISE_GOAL) ** 2)),
    )
    used = sorted({d["estimator"] for d in detail.values()})
    warnings = [
        f"The textbook estimate (plain inverse propensity weighting) of {t} would stay unreliable however "
        f"many customers are logged: its variance is infinite. couponmix leaves out every estimator with "
        f"unclipped weights here. Detail: {v.reason}."
        for t, v in verdicts.items()
        if v.status == "infinite"
    ]
    warnings += [
        f"{t} cannot be evaluated from logs of any mix: some actions it takes are never logged. Detail: {v.reason}."
        for t, v in verdicts.items()
        if v.status == "unsupported"
    ]
    warnings += [
        f"At the recommended mix, the logs never show some actions {t} takes: its error "
        f"({detail[t]['rmse']:.3g}) rests on the revenue model there."
        for t in targets
        if not detail[t]["logs_show_all"] and verdicts[t].status != "unsupported"
    ]
    if sc.ground_truth:  # the simulator knows the truth: say so when the exact error is above the promise
        over = {t: d for t, d in detail.items() if d["simulator"]["rmse"] > 1.01 * d["rmse"]}
        warnings += [
            f"The simulator's exact error for {t} at the recommended mix is {d['simulator']['rmse']:.3g}, above the "
            f"promised {d['rmse']:.3g}: the revenue model is more wrong, where the log relies on it, than the "
            "promise assumes. A real team could not see this; treat that promise as optimistic."
            for t, d in over.items()
        ]
    if rec.meets_max_rmse is False:
        warnings.append(rec.note[0].upper() + rec.note[1:] + ".")
    if not promise["enough"] and sample.observed is not None:  # the log's own rows: no larger sample to draw
        warnings.append(
            f"The promised errors rest on the log's own {sample.size:,} customers and would move by up to "
            f"{worst_rel:.1%} (standard error) with another log of the same size: read them as that uncertain."
        )
    elif not promise["enough"]:
        warnings.append(
            f"The promised errors depend on the {sample.size:,} simulated customers they are computed on "
            f"by up to {worst_rel:.1%} (standard error); for less than {PROMISE_GOAL:.0%}, use an "
            f"evaluation sample of about {promise['eval_size_for_goal']:,} customers (--eval-size)."
        )

    explore_desc = components["explore"].description if "explore" in components else None
    warnings = sc.warnings() + warnings  # a calibrated scenario's gates come first, in every report
    calibrated = None
    if not sc.ground_truth:
        meta = getattr(sc, "meta", {})
        calibrated = {
            "world": getattr(sc, "world", meta.get("world")),
            "fallback": getattr(sc, "fallback", None),
            "card": meta.get("card"),
            "diagnostics": meta.get("diagnostics"),
            "warnings": sc.warnings(),
            "values": (
                "estimates from the log: the model corrected by the logged rewards of the rows it was not trained "
                "on (doubly robust), not measurements"
                if sample.observed is not None
                else "model estimates: the reward means of the calibrated model, not measurements"
            ),
        }
    if model_report is not None and model_report["rmse_vs_true_mu"] > 0.8 * model_report["baseline_rmse_vs_true_mu"]:
        warnings.append(
            "The revenue model is weak: its error against the true revenue is "
            f"{model_report['rmse_vs_true_mu']:.3g}, barely below the "
            f"{model_report['baseline_rmse_vs_true_mu']:.3g} of a per-action average."
        )
    real = log_estimates(sc) or {}
    if real:
        real.update(log_estimates(sc, components) or {})
        for name, le in real.items():  # what the data can say about a model-based value: its distance to the
            half = (le["high"] - le["low"]) / 2  # log's own estimate plus that estimate's 95% margin
            le["model_error_bound"] = abs(values[name] - le["estimate"]) + half
    policies = {
        **{name: PolicyInfo("logging component", p.description, values[name], real.get(name)) for name, p in components.items()},
        **{name: PolicyInfo("target", p.description, values[name], real.get(name)) for name, p in targets.items()},
        **{name: PolicyInfo("reference", p.description, values[name]) for name, p in references.items()},
    }
    criterion = CriterionInfo(
        label=objectives.label,
        error=objectives.error,
        candidates={spec.name: {**spec.to_dict(), "obp": spec.obp_name()} for spec in objectives.specs},
        reason=why,
        assumption=ROBUST_ASSUMPTION,
        model_error=dict(zip(sc.action_names or [str(a) for a in range(sample.mu.shape[1])], sample.model_error_per_action.tolist())),
        model_error_source=sample.model_error_source,
        reward_model=sample.q_source,
        second_moments=sample.observed.source if sample.observed is not None else None,
        used_at_recommended=used,
    )
    recommended = Recommended(
        alpha=dict(zip(components, alpha.tolist())),
        revenue=rev,
        # from the same single computation as the per-target detail (the front's batch agrees to ~1e-13)
        ope_rmse=float(objectives.combine(np.array([[detail[t]["rmse"] for t in targets]]))[0]),
        ope_rmse_per_target={t: detail[t]["rmse"] for t in targets},
        targets=detail,
        rule=rec.rule,
        note=rec.note,
        max_rmse=max_rmse,
        meets_max_rmse=rec.meets_max_rmse if max_rmse is not None else None,
    )
    incumbent = objectives.component_names[best_component(objectives)]
    floor_mix = FloorMix(
        floor=float(floors.max()),
        alpha=dict(zip(components, floor_alpha.tolist())),
        revenue=floor_rev,
        revenue_cost_per_customer=base_rev - floor_rev,
        ope_rmse=float(objectives.combine(floor_rmse[None, :])[0]),
        ope_rmse_per_target=dict(zip(targets, floor_rmse.tolist())),
    )
    revenue_cost = RevenueCost(
        baseline=f"{BASELINE} ({incumbent} alone)",
        baseline_revenue=base_rev,
        per_customer=base_rev - rev,
        cost_pct=100.0 * (base_rev - rev) / abs(base_rev) if base_rev else None,
        std_error=promise["revenue_cost_se"],
    )
    no_explore = no_exploration(objectives, sample)
    log.info("the decision a log supports: chance of deploying the best policy, regret")
    alone = base_alpha
    try:
        decision = decision_summary(sample, objectives, {"recommended": alpha, "no_exploration": alone}, n, incumbent, sc.ground_truth)
    except CouponmixError as exc:
        decision = None
        warnings.append(f"The decision a log supports could not be computed: {exc}.")
    law = sample_size_law(objectives, sample, alpha, verdicts)
    bar.phase(4, PHASES[4])
    log.info("computing the curves for the report")
    curve = exploration_curve(objectives, n, tol)
    size_curve = log_size_curve(objectives, alpha, daily_traffic)
    bar.phase(5, PHASES[5])
    plan = None
    if tol is not None:
        log.info("planning: least revenue cost with error <= %g", tol)
        found = plan_mixture(objectives, tol, n, floors)
        plan = {**found.to_dict(), "criterion": objectives.label, "at_recommended": log_size_at(objectives, alpha, tol).to_dict()}
    ctx = None
    if contextual is not None:
        bar.phase(6, PHASES[6])
        log.info("contextual exploration (%s)", contextual)

        cobj = ContextualCriterion(objectives, sc, grouping_for(contextual, sc, sample.x))
        named = {"recommended": float(recommended.ope_rmse)}
        if tol is not None:
            named["tolerance"] = float(tol)

        def searching(fraction: float, what: str) -> None:
            bar.phase(6 + fraction, f"{PHASES[6]}: {what}")

        # costs against no exploration, like the headline's
        block = contextual_block(cobj, curve, base_rev, named, float(floors.max()), seed=seed, on_progress=searching)
        ctx = {"spec": contextual, **block}
        at = block["at"].get("recommended", {})
        # the rule is the recommendation when it buys the same precision for less than one rate for everyone
        ctx["recommended"] = bool(
            at.get("reachable") and at["revenue_cost_per_10k_customers"] < at["global_revenue_cost_per_10k_customers"]
        )
    regret = None
    if "exploit" in components and "oracle" in references:
        regret = {
            "per_customer": values["oracle"] - values["exploit"],
            "oracle_gap_pct": 100 * (values["oracle"] - values["exploit"]) / abs(values["oracle"]),
        }
    unsupported = [t for t, d in no_explore["targets"].items() if d["status"] == "unsupported"]
    if unsupported:
        warnings.append(
            f"Without any exploration ({no_explore['component']} alone), the logs never "
            f"show some actions that {', '.join(unsupported)} would take: only the revenue model could "
            "speak for them."
        )
    summary = StudySummary(
        summary_format=SUMMARY_FORMAT,
        study=study,
        scenario=sc.name,
        scenario_description=sc.description,
        n=n,
        seed=seed,
        world_seed=world_seed,
        evaluation_sample_size=sample.size,
        criterion=criterion,
        aggregate=aggregate,
        floors=dict(zip(components, floors.tolist())),
        policies=policies,
        variance_finite={t: v.finite for t, v in verdicts.items()},
        ips_variance={
            "applies_to": (
                "every mixture with all weights > 0 (finiteness is the same across the inside of the simplex); checked at its centre"
            ),
            "targets": {t: v.to_dict() for t, v in verdicts.items()},
            "at_recommended": {t: v.to_dict() for t, v in at_rec.items()},
        },
        recommended=recommended,
        floor_mix=floor_mix,
        revenue_cost=revenue_cost,
        promise_uncertainty=promise,
        no_exploration=no_explore,
        production=production_block(components, alpha, objectives, explore_desc, finite),
        optimiser={
            "algorithm": "NSGA-II (pymoo)" if len(components) > 2 else "exact evaluation on a fine grid of the segment (two components)",
            "pop_size": pop_size,
            "generations": generations,
            "front_points": len(front),
        },
        warnings=warnings,
        revenue_model=model_report,
        sample_size_law=law,
        exploration_curve=curve,
        log_size_curve=size_curve,
        plan=plan,
        headline=headline_numbers(objectives, alpha, tol, n, recommended, revenue_cost, curve, size_curve, plan),
        exploit_regret=regret,
        calibrated=calibrated,
        contextual=ctx,
        decision=decision,
        payback=pay,
        reward_unit=sc.reward_unit,
    )
    return StudyResult(summary=summary, front=front, recommendation=rec)


def headline_numbers(
    objectives: Criterion,
    alpha: np.ndarray,
    tol: float | None,
    n: int,
    rec: Recommended,
    cost: RevenueCost,
    curve: dict,
    size_curve: dict,
    plan: dict | None,
) -> Headline:
    """The numbers a reader needs first: how much to explore, what it costs, what precision it buys and how
    much of that precision the log itself can confirm."""
    need = plan["at_recommended"]["log_size_needed"] if plan is not None else None
    daily = size_curve["daily_traffic"]
    precision = {t: target_precision(d) for t, d in rec.targets.items()}
    return Headline(
        exploration_rate=exploration_rate(objectives, alpha),
        revenue_best_component=objectives.component_names[best_component(objectives)],
        exploration_definition=curve["definition"],
        revenue_per_customer=rec.revenue,
        revenue_cost_per_10k_customers=10_000 * cost.per_customer,
        revenue_cost_pct=cost.cost_pct,
        log_size=n,
        log_days=n / daily,
        tolerance=tol,
        log_size_needed=need,
        log_days_needed=None if need is None else need / daily,
        worst_error=rec.ope_rmse,
        criterion=objectives.label,
        precision=precision,
        worst_interval_95_pct=widest_share(p.interval_95_pct for p in precision.values()),
    )


def target_precision(d: dict) -> TargetPrecision:
    """A target's precision at the recommended mix (``Criterion.describe`` plus ``promise_se``)."""
    half = interval_95(d)
    value = d["true_value"]
    return TargetPrecision(
        rmse=d["rmse"],
        sampling_error=d["sampling_error"],
        model_dependent=d["model_dependent"],
        model_bias_bound=d["model_bias_bound"],
        estimator=d["estimator"],
        estimator_plain=d["estimator_plain"],
        true_value=value,
        logs_show_all=d["logs_show_all"],
        promise_se=d["promise_se"],
        interval_95=half,
        interval_95_pct=100.0 * half / abs(value) if abs(value) > 1e-12 else None,
    )

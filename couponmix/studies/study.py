"""One study end to end: scenario -> exact objectives -> Pareto front -> recommendation -> outputs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

import numpy as np

from couponmix.dataset.scenario import Scenario, get_scenario
from couponmix.dataset.types import ModelReport
from couponmix.decide.contextual import ContextualCriterion, check_contextual, contextual_block, grouping_for
from couponmix.decide.contextual_types import ContextualBlock
from couponmix.decide.curves import (
    BASELINE,
    ExplorationCurve,
    LogSizeCurve,
    best_component,
    exploration_curve,
    exploration_rate,
    log_size_curve,
    no_exploration_alpha,
    no_exploration_revenue,
)
from couponmix.decide.optimize import Front, Recommendation, check_max_rmse, pareto_front, recommend
from couponmix.decide.planner import LogSizePlan, Plan, StudyPlan, log_size_at, plan_mixture
from couponmix.decide.stability import recommendation_spread, refine
from couponmix.decide.value import DecisionBlock, Payback, decision_summary, payback
from couponmix.errors import CouponmixError
from couponmix.infra.progress import Progress
from couponmix.infra.validation import check_positive_float, check_positive_int
from couponmix.ope.criterion import Criterion, EstimatorErrors, PromiseUncertainty, TargetError, widest_share
from couponmix.ope.divergence import growth, weight_verdict
from couponmix.ope.estimators import DEFAULT_CLIP, EstimatorSpec, exact_suite
from couponmix.ope.objectives import AGGREGATES, DEFAULT_EVAL_SIZE, EvaluationSample
from couponmix.ope.real_log import log_estimates
from couponmix.ope.selection import ROBUST_ASSUMPTION, criterion_for, sample_and_verdicts
from couponmix.policy.policies import Policy
from couponmix.policy.simplex import check_floors, parse_alpha_spec, rate_mixture
from couponmix.studies.config import DEFAULT_DAILY_TRAFFIC, DEFAULT_FLOOR, StudyConfig, StudyInfo
from couponmix.studies.summary import (
    SUMMARY_FORMAT,
    CalibratedBlock,
    CriterionInfo,
    ExploitRegret,
    FloorMix,
    Headline,
    IpsVariance,
    NoExploration,
    OptimiserInfo,
    PolicyInfo,
    Production,
    Recommended,
    RevenueCost,
    SampleSizeLaw,
    StudySummary,
    TargetPrecision,
    UnexploredTarget,
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

    summary: StudySummary  #: the typed summary, written as summary.json
    front: Front  #: the Pareto front of revenue against error
    recommendation: Recommendation  #: the recommended point of the front and why


def no_exploration(objectives: Criterion, sample: EvaluationSample) -> NoExploration:
    """The revenue-best single component with no mixing at all, and what OPE can say from its logs.

    Parameters
    ----------
    objectives : Criterion
    sample : EvaluationSample
        Unused (kept for the callers' signature).

    Returns
    -------
    NoExploration
        The component, its mixture, its revenue per customer, the combined worst error (reward's unit per customer)
        and, per target, whether its logs show every action it takes.
    """
    best = best_component(objectives)
    alpha = no_exploration_alpha(objectives)
    targets = {}
    for name, d in objectives.describe(alpha).items():
        if not d.logs_show_all:
            targets[name] = UnexploredTarget(
                status="unsupported",
                rmse=d.rmse,
                estimator=d.estimator,
                sampling_error=d.sampling_error,
                model_dependent=d.model_dependent,
                unsupported_mass=1 - d.support,
                explanation=f"the logs never show actions that carry {1 - d.support:.1%} of "
                f"{name}'s probability: only the revenue model speaks for them, so the "
                f"error could be as large as {d.rmse:.3g}",
            )
        else:
            targets[name] = UnexploredTarget(status="supported", rmse=d.rmse, estimator=d.estimator)
    return NoExploration(
        component=objectives.component_names[best],
        alpha=dict(zip(objectives.component_names, alpha.tolist())),
        revenue=no_exploration_revenue(objectives),
        worst_error=float(objectives.combine(np.array([[t.rmse for t in targets.values()]]))[0]),
        targets=targets,
    )


LAW_SIZES = (1_000, 10_000, 100_000, 1_000_000, 10_000_000)


def sample_size_law(objectives: Criterion, sample: EvaluationSample, alpha: np.ndarray, verdicts: dict) -> SampleSizeLaw:
    """The error at the recommended mixture for several log sizes, from one computation (the estimator chosen
    may change with the log size); for targets where plain IPS diverges, the growth of its second-moment
    estimate instead.

    Parameters
    ----------
    objectives : Criterion
    sample : EvaluationSample
    alpha : ndarray, (K,)
        The recommended mixture.
    verdicts : dict of target name to SupportVerdict

    Returns
    -------
    SampleSizeLaw
        The error of each target (reward's unit per customer) and its chosen estimator at each of ``LAW_SIZES``
        customers.
    """
    laws = objectives.laws(alpha)
    out = SampleSizeLaw(
        holds=True,
        formula="error(n) = sqrt(s^2 / n + (|computed bias| + model-error bound)^2), lowest over the estimators",
        rmse_by_log_size={str(n): {t: float(law.rmse(n)[0]) for t, law in zip(sample.target_names, laws)} for n in LAW_SIZES},
        estimator_by_log_size={
            str(n): {t: law.specs[int(law.choice(n)[0])].name for t, law in zip(sample.target_names, laws)} for n in LAW_SIZES
        },
    )
    bad = [t for t, v in verdicts.items() if v.status == "infinite"]
    if bad:
        p = sample.balanced(alpha)
        growth_by_target = {}
        for t in bad:
            j = sample.target_names.index(t)
            pe = sample.target_probs[j]
            y = np.divide(pe * pe * sample.m2, p, out=np.zeros_like(p), where=p > 0).sum(axis=1)
            growth_by_target[t] = growth(y)
        out.plain_ips = {
            "holds": False,
            "reason": "plain IPS has infinite variance here: no s exists, and the variance computed from a sample "
            "keeps growing with the sample size instead of settling",
            "second_moment_growth": growth_by_target,
        }
    return out


def production_block(components, alpha, objectives: Criterion, explore_description: str | None, finite: bool) -> Production:
    """What to do in production: the mixture, what to log, and the estimator for each future policy.

    Parameters
    ----------
    components : sequence of str
        The K components' names.
    alpha : ndarray, (K,)
        The recommended mixture.
    objectives : Criterion
    explore_description : str or None
        The explore component's description.
    finite : bool
        Every target's importance-weight second moment is finite (then unclipped estimators are compared too).

    Returns
    -------
    Production
    """
    weights = dict(zip(components, alpha.tolist()))
    detail = objectives.describe(alpha)
    by_name = {s.name: s for s in objectives.specs}
    per_target = {
        t: {
            "estimator": d.estimator,
            "label": d.estimator_label,
            "plain": d.estimator_plain,
            "obp": by_name[d.estimator].obp_name(),
            **({"reward_model": objectives.sample.q_source} if by_name[d.estimator].uses_reward_model else {}),
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


def objectives_comparison(objectives: Criterion, alpha: np.ndarray, finite: bool) -> dict[str, EstimatorErrors]:
    """Every estimator of the exact suite at the mixture (even when one is forced), for the methods section;
    unclipped ones only where their variance is finite.

    Parameters
    ----------
    objectives : Criterion
    alpha : ndarray, (K,)
        The mixture.
    finite : bool
        Every target's importance-weight second moment is finite.

    Returns
    -------
    dict of target name to EstimatorErrors
    """
    specs = exact_suite(DEFAULT_CLIP, finite_variance=finite)
    same = [s.name for s in specs] == [s.name for s in objectives.specs] and objectives.error == "robust"
    full = objectives if same else Criterion(objectives.sample, specs, objectives.n, objectives.aggregate)
    return full.compare(alpha)


@dataclass
class PlanResult:
    """What ``couponmix plan`` computed: a least-cost mixture (``plan``) or a log size (``log_size``)."""

    scenario: str  #: the scenario's name
    criterion: str  #: the criterion's label
    plan: Plan | LogSizePlan  #: the least-cost mixture, or the log size needed at a given one

    def to_dict(self) -> dict:
        """The plan's fields, with the scenario and the criterion's label."""
        return {"scenario": self.scenario, "criterion": self.criterion, **self.plan.to_dict()}

    def text(self) -> str:
        """The answer in one or two sentences: the least-cost mixture and its cost per 10,000 customers, or the log size
        needed at the mixture (or why none is enough)."""
        p = self.plan
        if isinstance(p, Plan):
            mix = ", ".join(f"{k}={v:.4g}" for k, v in p.alpha.items())
            where = "; ".join(f"{t}: ±{d.rmse:.3g} with {d.estimator}" for t, d in p.targets.items())
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
    ``on_phase(done, name)`` is told as each of ``PLAN_PHASES`` starts.

    Parameters
    ----------
    cfg : StudyConfig
    tol : float
        Error every target must reach (reward's unit per customer).
    alpha : str or mapping, optional
        A mixture (``parse_alpha_spec``).
    eps : float, optional
        An exploration rate in [0, 1] (needs a component named explore).
    floor : float, optional
        Every component's least share of traffic.
    on_phase : callable (done, name), optional

    Returns
    -------
    PlanResult

    Raises
    ------
    CouponmixError
        tol not positive, eps outside [0, 1] or without an explore component, a bad mixture or floor, or a bad study.
    """
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
        a = rate_mixture(k, best_component(objectives), names.index("explore"), eps)
        return PlanResult(sc.name, objectives.label, log_size_at(objectives, a, tol))
    if alpha is not None:
        a = parse_alpha_spec(alpha, names)
        return PlanResult(sc.name, objectives.label, log_size_at(objectives, a, tol))
    return PlanResult(sc.name, objectives.label, plan_mixture(objectives, tol, n, floors))


def run_config(cfg: StudyConfig, quiet: bool = True) -> StudyResult:
    """Run the study a ``StudyConfig`` (a study file) describes.

    Parameters
    ----------
    cfg : StudyConfig
    quiet : bool
        No progress bar.

    Returns
    -------
    StudyResult

    Raises
    ------
    CouponmixError
        As ``run_study``.
    """
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
        study=cfg.info(),
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
    study: StudyInfo | None = None,
    world_seed: int = 0,
    contextual: str | None = None,
) -> StudyResult:
    """Run a whole study in memory (nothing is written; see ``cli.cmd_run`` for the files).

    One criterion (``couponmix.ope.criterion.Criterion``) drives the front, the recommendation, the plan, the
    curves and the headline: for each future policy, the estimator with the lowest robust error.

    Parameters
    ----------
    scenario, n, seed, world_seed, pop_size, generations, estimator, max_rmse, floor, aggregate, eval_size
        As ``StudyConfig``'s fields of the same names (units there).
    config, tol, daily_traffic, horizon_days, contextual
        As its ``scenario_config``, ``tolerance``, ``daily_traffic``, ``horizon_days`` and ``contextual``.
    quiet : bool
        No progress bar.
    study : StudyInfo, optional
        The study file's settings, echoed in the summary.

    Returns
    -------
    StudyResult

    Raises
    ------
    CouponmixError
        A setting out of range, both horizon_days and max_rmse, or a scenario that cannot be built.
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
    settings = RunSettings(
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
        contextual,
        horizon_days,
    )
    with Progress(len(PHASES) - (contextual is None), PHASES[0], quiet, weights=PHASE_WEIGHTS) as bar:
        return _run(settings, bar)


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


@dataclass(frozen=True)
class RunSettings:
    """A study's settings once ``run_study`` has checked them: what every phase of a run reads.

    Attributes
    ----------
    scenario : str
    n : int or None
        Customers in the future log (None: the scenario's default).
    seed, world_seed : int
    pop_size, generations : int
    estimator : EstimatorSpec or None
        The one estimator forced, or None for the criterion's choice per future policy.
    max_rmse, tol : float or None
        Error limits (reward's unit per customer).
    floor : float
        Least share of traffic per component (fraction).
    aggregate : str
    eval_size : int
    config : object
        The scenario's config (a market file or mapping), or None.
    daily_traffic : float
        Customers a day.
    study : StudyInfo or None
        The study file's settings, stored in the summary.
    contextual : str or None
    horizon_days : float or None
    """

    scenario: str
    n: int | None
    seed: int
    pop_size: int
    generations: int
    estimator: EstimatorSpec | None
    max_rmse: float | None
    floor: float
    aggregate: str
    eval_size: int
    config: object
    tol: float | None
    daily_traffic: float
    study: StudyInfo | None
    world_seed: int
    contextual: str | None = None
    horizon_days: float | None = None


@dataclass
class _Setup:
    """What the first two phases build: the scenario, its policies, the evaluation sample and the criterion."""

    sc: Scenario
    n: int
    components: Mapping[str, Policy]
    targets: Mapping[str, Policy]
    floors: np.ndarray
    sample: EvaluationSample
    verdicts: dict
    objectives: Criterion
    why: str

    @property
    def finite(self) -> bool:
        """True when every target's importance-weight second moment is finite (``verdicts``)."""
        return all(v.finite for v in self.verdicts.values())

    @property
    def x(self) -> np.ndarray:
        """(M, d) the evaluation sample's covariates (a scenario's sample keeps them)."""
        assert self.sample.x is not None
        return self.sample.x


def _setup(s: RunSettings, bar: Progress) -> _Setup:
    """Phases 0-1: the scenario and its models, the evaluation sample, the weights' verdicts, the criterion."""
    log.info("building scenario %s", s.scenario)
    sc = get_scenario(s.scenario, config=s.config, seed=s.world_seed)
    n = check_positive_int(sc.default_n if s.n is None else s.n, "n")
    if s.contextual is not None:  # before the front: a typo in the covariate costs no optimisation
        check_contextual(s.contextual, sc)
    components, targets = sc.components(), sc.targets()  # fits the scenario's models where it has any
    floors = check_floors(s.floor, len(components))
    bar.phase(1, PHASES[1])
    log.info("sampling %d evaluation customers and checking importance-weight variance", s.eval_size)
    sample, verdicts = sample_and_verdicts(sc, s.eval_size, s.seed, floors)
    objectives, why = criterion_for(sc, sample, verdicts, n, s.aggregate, s.estimator)
    return _Setup(sc, n, components, targets, floors, sample, verdicts, objectives, why)


def _front_and_rule(s: RunSettings, u: _Setup, bar: Progress) -> tuple[Front, Recommendation, Payback | None]:
    """Phases 2-3: the front and the recommended mix by the study's rule. The payback rule picks a log size
    too: then ``u``'s n and criterion move to it, and the front's errors are re-evaluated there, so that every
    precision shown is at the log size the decision uses."""
    bar.phase(2, PHASES[2])
    log.info("optimising mixtures (%s): population %d, %d generations", u.objectives.label, s.pop_size, s.generations)
    front = pareto_front(u.objectives, u.floors, s.pop_size, s.generations, s.seed)
    bar.phase(3, PHASES[3])
    front, rec = refine(u.objectives, front, recommend(front, s.max_rmse), s.max_rmse, u.floors)
    if s.horizon_days is None:
        return front, rec, None
    log.info("weighing what a log at each mix is worth over %g days", s.horizon_days)
    incumbent = u.objectives.component_names[best_component(u.objectives)]
    pick = np.unique(np.linspace(0, len(front) - 1, min(len(front), PAYBACK_MIXES)).round().astype(int))
    pay = payback(u.sample, u.objectives, front.alphas[pick], incumbent, s.horizon_days, s.daily_traffic)
    best_pay = pay.best
    rec = Recommendation(
        int(pick[pay.best_index]),
        "payback",
        None,
        f"the most net revenue over {s.horizon_days:g} days after the log: log {best_pay.log_size:,} customers "
        f"({best_pay.log_days:.2g} days), then deploy by the safe rule",
    )
    if best_pay.log_size != u.n:
        u.n = int(best_pay.log_size)
        u.objectives = Criterion(u.objectives.sample, u.objectives.specs, u.n, u.objectives.aggregate, u.objectives.error)
        _, err_f, per_f = u.objectives.evaluate(front.alphas)
        front = replace(front, rmse=err_f, rmse_per_target=per_f)
    return front, rec, pay


def _policy_values(u: _Setup) -> tuple[dict[str, float], Mapping[str, Policy]]:
    """Every policy's value on the evaluation sample (components, targets, references), and the references."""
    values = {name: float(v) for name, v in zip(u.components, u.sample.component_values)}
    values.update({name: float(v) for name, v in zip(u.targets, u.sample.target_values)})
    references = u.sc.reference_policies()
    values.update({name: u.sample.policy_value_of(p) for name, p in references.items()})
    return values, references


def _promise(u: _Setup, alpha: np.ndarray, base_alpha: np.ndarray) -> tuple[dict[str, TargetError], PromiseUncertainty]:
    """Each target's error and its parts at the recommended mix, and how much those promises depend on the
    evaluation sample (jackknife), with the revenue cost's standard error."""
    detail = u.objectives.describe(alpha)
    log.info("measuring how much the promise depends on the evaluation sample")
    promise = u.objectives.promise_uncertainty(alpha, reference=base_alpha)
    for t in detail:
        detail[t].promise_se = promise.error_se[t]
    worst_rel = max(promise.relative.values())
    promise = replace(
        promise,
        max_relative=worst_rel,
        goal=PROMISE_GOAL,
        enough=worst_rel <= PROMISE_GOAL,
        eval_size_for_goal=int(np.ceil(u.sample.size * (worst_rel / PROMISE_GOAL) ** 2)),
    )
    return detail, promise


def _precision_warnings(u: _Setup, detail: dict[str, TargetError], rec: Recommendation, promise: PromiseUncertainty) -> list[str]:
    """What the report must say about the weights, unsupported actions, the model and the promise's own noise."""
    verdicts, sample = u.verdicts, u.sample
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
        f"({detail[t].rmse:.3g}) rests on the revenue model there."
        for t in u.targets
        if not detail[t].logs_show_all and verdicts[t].status != "unsupported"
    ]
    if u.sc.ground_truth:  # the simulator knows the truth: say so when the exact error is above the promise
        over = {t: d for t, d in detail.items() if d.simulator.rmse > 1.01 * d.rmse}
        warnings += [
            f"The simulator's exact error for {t} at the recommended mix is {d.simulator.rmse:.3g}, above the "
            f"promised {d.rmse:.3g}: the revenue model is more wrong, where the log relies on it, than the "
            "promise assumes. A real team could not see this; treat that promise as optimistic."
            for t, d in over.items()
        ]
    if rec.meets_max_rmse is False:
        warnings.append(rec.note[0].upper() + rec.note[1:] + ".")
    worst_rel = promise.max_relative
    if not promise.enough and sample.observed is not None:  # the log's own rows: no larger sample to draw
        warnings.append(
            f"The promised errors rest on the log's own {sample.size:,} customers and would move by up to "
            f"{worst_rel:.1%} (standard error) with another log of the same size: read them as that uncertain."
        )
    elif not promise.enough:
        warnings.append(
            f"The promised errors depend on the {sample.size:,} simulated customers they are computed on "
            f"by up to {worst_rel:.1%} (standard error); for less than {PROMISE_GOAL:.0%}, use an "
            f"evaluation sample of about {promise.eval_size_for_goal:,} customers (--eval-size)."
        )
    return warnings


def _model_warnings(model_report: ModelReport | None) -> list[str]:
    """A revenue model barely better than the per-action average says so."""
    if model_report is None or model_report.rmse_vs_true_mu <= 0.8 * model_report.baseline_rmse_vs_true_mu:
        return []
    return [
        "The revenue model is weak: its error against the true revenue is "
        f"{model_report.rmse_vs_true_mu:.3g}, barely below the "
        f"{model_report.baseline_rmse_vs_true_mu:.3g} of a per-action average."
    ]


def _calibrated_block(u: _Setup) -> CalibratedBlock | None:
    """What a calibrated scenario (a team's own log) says about its world; None for a simulator."""
    sc = u.sc
    if sc.ground_truth:
        return None
    meta = getattr(sc, "meta", {})
    return CalibratedBlock(
        world=getattr(sc, "world", meta.get("world")),
        fallback=getattr(sc, "fallback", None),
        card=meta.get("card"),
        diagnostics=getattr(sc, "diagnostics", None),  # read and checked with the folder (``CalibratedScenario``)
        warnings=sc.warnings(),
        values=(
            "estimates from the log: the model corrected by the logged rewards of the rows it was not trained "
            "on (doubly robust), not measurements"
            if u.sample.observed is not None
            else "model estimates: the reward means of the calibrated model, not measurements"
        ),
    )


def _policies(u: _Setup, values: dict, references: Mapping[str, Policy]) -> dict:
    """Every policy's role, description and value, with the real log's own estimate where there is one."""
    real = log_estimates(u.sc) or {}
    if real:
        real.update(log_estimates(u.sc, u.components) or {})
        for name, le in real.items():  # what the data can say about a model-based value: its distance to the
            half = (le.high - le.low) / 2  # log's own estimate plus that estimate's 95% margin
            le.model_error_bound = abs(values[name] - le.estimate) + half
    return {
        **{name: PolicyInfo("logging component", p.description, values[name], real.get(name)) for name, p in u.components.items()},
        **{name: PolicyInfo("target", p.description, values[name], real.get(name)) for name, p in u.targets.items()},
        **{name: PolicyInfo("reference", p.description, values[name]) for name, p in references.items()},
    }


def _criterion_info(u: _Setup, detail: dict[str, TargetError]) -> CriterionInfo:
    sample, objectives = u.sample, u.objectives
    actions = u.sc.action_names or [str(a) for a in range(sample.mu.shape[1])]
    error = sample.model_error_per_action
    assert error is not None  # the robust criterion needs it
    return CriterionInfo(
        label=objectives.label,
        error=objectives.error,
        candidates={spec.name: {**spec.to_dict(), "obp": spec.obp_name()} for spec in objectives.specs},
        reason=u.why,
        assumption=ROBUST_ASSUMPTION,
        model_error=dict(zip(actions, error.tolist())),
        model_error_source=sample.model_error_source,
        reward_model=sample.q_source,
        second_moments=sample.observed.source if sample.observed is not None else None,
        used_at_recommended=sorted({d.estimator for d in detail.values()}),
    )


def _floor_mix(u: _Setup, base_rev: float) -> FloorMix:
    """The most revenue the floor allows (the best vertex of the floored simplex), priced apart from the
    recommendation: the floor is a separate choice, and every cost is against no exploration."""
    free = 1.0 - u.floors.sum()
    vertices = u.floors + free * np.eye(len(u.components))
    floor_alpha = vertices[int(np.argmax(u.objectives.revenue(vertices)))]
    floor_rev = float(u.objectives.revenue(floor_alpha)[0])
    floor_rmse = u.objectives.rmse(floor_alpha)[0]
    return FloorMix(
        floor=float(u.floors.max()),
        alpha=dict(zip(u.components, floor_alpha.tolist())),
        revenue=floor_rev,
        revenue_cost_per_customer=base_rev - floor_rev,
        ope_rmse=float(u.objectives.combine(floor_rmse[None, :])[0]),
        ope_rmse_per_target=dict(zip(u.targets, floor_rmse.tolist())),
    )


def _contextual(s: RunSettings, u: _Setup, bar: Progress, curve: ExplorationCurve, base_rev: float, worst: float) -> ContextualBlock | None:
    """Phase 6: exploration that varies by customer group, at the run's precision (and the tolerance)."""
    if s.contextual is None:
        return None
    bar.phase(6, PHASES[6])
    log.info("contextual exploration (%s)", s.contextual)
    cobj = ContextualCriterion(u.objectives, u.sc, grouping_for(s.contextual, u.sc, u.x))
    named = {"recommended": float(worst)}
    if s.tol is not None:
        named["tolerance"] = float(s.tol)

    def searching(fraction: float, what: str) -> None:
        """Move the bar within phase 6 by the search's fraction done."""
        bar.phase(6 + fraction, f"{PHASES[6]}: {what}")

    # costs against no exploration, like the headline's
    block = contextual_block(cobj, curve, base_rev, named, float(u.floors.max()), seed=s.seed, on_progress=searching)
    at = block.at.get("recommended")
    # the rule is the recommendation when it buys the same precision for less than one rate for everyone
    recommended = (
        at is not None
        and at.reachable
        and at.revenue_cost_per_10k_customers is not None
        and at.global_revenue_cost_per_10k_customers is not None
        and at.revenue_cost_per_10k_customers < at.global_revenue_cost_per_10k_customers
    )
    return replace(block, spec=s.contextual, recommended=bool(recommended))


def _recommended(
    s: RunSettings, u: _Setup, alpha: np.ndarray, rev: float, detail: dict[str, TargetError], rec: Recommendation
) -> Recommended:
    return Recommended(
        alpha=dict(zip(u.components, alpha.tolist())),
        revenue=rev,
        # from the same single computation as the per-target detail (the front's batch agrees to ~1e-13)
        ope_rmse=float(u.objectives.combine(np.array([[detail[t].rmse for t in u.targets]]))[0]),
        ope_rmse_per_target={t: detail[t].rmse for t in u.targets},
        targets=detail,
        rule=rec.rule,
        note=rec.note,
        max_rmse=s.max_rmse,
        meets_max_rmse=rec.meets_max_rmse if s.max_rmse is not None else None,
    )


def _decision(u: _Setup, alpha: np.ndarray, base_alpha: np.ndarray, incumbent: str, warnings: list[str]) -> DecisionBlock | None:
    """The decision a log supports at the recommended mix and without exploration (None, with a warning added,
    where it cannot be computed)."""
    log.info("the decision a log supports: chance of deploying the best policy, regret")
    try:
        mixes = {"recommended": alpha, "no_exploration": base_alpha}
        return decision_summary(u.sample, u.objectives, mixes, u.n, incumbent, u.sc.ground_truth)
    except CouponmixError as exc:
        warnings.append(f"The decision a log supports could not be computed: {exc}.")
        return None


def _plan(s: RunSettings, u: _Setup, alpha: np.ndarray) -> StudyPlan | None:
    """Phase 5: the least-cost mix for the tolerance, and the log size the recommended mix needs for it."""
    if s.tol is None:
        return None
    log.info("planning: least revenue cost with error <= %g", s.tol)
    found = plan_mixture(u.objectives, s.tol, u.n, u.floors)
    plan = {f.name: getattr(found, f.name) for f in fields(found)}
    return StudyPlan(**plan, criterion=u.objectives.label, at_recommended=log_size_at(u.objectives, alpha, s.tol))


def _run(s: RunSettings, bar: Progress) -> StudyResult:
    u = _setup(s, bar)
    front, rec, pay = _front_and_rule(s, u, bar)
    objectives, sample, components, targets = u.objectives, u.sample, u.components, u.targets
    alpha = front.alphas[rec.index]
    at_rec = {t: weight_verdict(u.sc, sample, t, alpha) for t in targets}
    base_alpha, base_rev = no_exploration_alpha(objectives), no_exploration_revenue(objectives)
    values, references = _policy_values(u)
    model_report = u.sc.model_report(u.x)  # the sample is held out from any training
    rev = float(front.revenue[rec.index])
    detail, promise = _promise(u, alpha, base_alpha)
    spread = recommendation_spread(objectives, front, rec, s.max_rmse, u.floors, calibrated=not u.sc.ground_truth)
    warnings = u.sc.warnings() + _precision_warnings(u, detail, rec, promise) + _model_warnings(model_report)  # the gates first
    recommended = _recommended(s, u, alpha, rev, detail, rec)
    incumbent = objectives.component_names[best_component(objectives)]
    assert promise.revenue_cost_se is not None  # _promise measures against no exploration
    revenue_cost = RevenueCost(
        baseline=f"{BASELINE} ({incumbent} alone)",
        baseline_revenue=base_rev,
        per_customer=base_rev - rev,
        cost_pct=100.0 * (base_rev - rev) / abs(base_rev) if base_rev else None,
        std_error=promise.revenue_cost_se,
    )
    decision = _decision(u, alpha, base_alpha, incumbent, warnings)
    bar.phase(4, PHASES[4])
    log.info("computing the curves for the report")
    curve = exploration_curve(objectives, u.n, s.tol)
    size_curve = log_size_curve(objectives, alpha, s.daily_traffic)
    bar.phase(5, PHASES[5])
    plan = _plan(s, u, alpha)
    ctx = _contextual(s, u, bar, curve, base_rev, recommended.ope_rmse)
    no_explore = no_exploration(objectives, sample)
    unsupported = [t for t, d in no_explore.targets.items() if d.status == "unsupported"]
    if unsupported:
        warnings.append(
            f"Without any exploration ({no_explore.component} alone), the logs never "
            f"show some actions that {', '.join(unsupported)} would take: only the revenue model could "
            "speak for them."
        )
    summary = StudySummary(
        summary_format=SUMMARY_FORMAT,
        study=s.study,
        scenario=u.sc.name,
        scenario_description=u.sc.description,
        n=u.n,
        seed=s.seed,
        world_seed=s.world_seed,
        evaluation_sample_size=sample.size,
        criterion=_criterion_info(u, detail),
        aggregate=s.aggregate,
        floors=dict(zip(components, u.floors.tolist())),
        policies=_policies(u, values, references),
        variance_finite={t: v.finite for t, v in u.verdicts.items()},
        ips_variance=_ips_variance(u.verdicts, at_rec),
        recommended=recommended,
        floor_mix=_floor_mix(u, base_rev),
        revenue_cost=revenue_cost,
        promise_uncertainty=promise,
        no_exploration=no_explore,
        production=production_block(components, alpha, objectives, _explore_description(components), u.finite),
        optimiser=_optimiser(s, len(components), len(front)),
        warnings=warnings,
        revenue_model=model_report,
        sample_size_law=sample_size_law(objectives, sample, alpha, u.verdicts),
        exploration_curve=curve,
        log_size_curve=size_curve,
        plan=plan,
        headline=headline_numbers(objectives, alpha, s.tol, u.n, recommended, revenue_cost, curve, size_curve, plan),
        exploit_regret=_exploit_regret(components, references, values),
        calibrated=_calibrated_block(u),
        contextual=ctx,
        decision=decision,
        payback=pay,
        reward_unit=u.sc.reward_unit,
        recommendation_spread=spread,
    )
    return StudyResult(summary=summary, front=front, recommendation=rec)


def _explore_description(components: Mapping[str, Policy]) -> str | None:
    return components["explore"].description if "explore" in components else None


def _ips_variance(verdicts: dict, at_rec: dict) -> IpsVariance:
    return IpsVariance(
        applies_to="every mixture with all weights > 0 (finiteness is the same across the inside of the simplex); checked at its centre",
        targets={t: v.info() for t, v in verdicts.items()},
        at_recommended={t: v.info() for t, v in at_rec.items()},
    )


def _optimiser(s: RunSettings, k: int, points: int) -> OptimiserInfo:
    return OptimiserInfo(
        algorithm="NSGA-II (pymoo)" if k > 2 else "exact evaluation on a fine grid of the segment (two components)",
        pop_size=s.pop_size,
        generations=s.generations,
        front_points=points,
    )


def _exploit_regret(components: Mapping[str, Policy], references: Mapping[str, Policy], values: dict) -> ExploitRegret | None:
    """What the exploit policy gives up against the oracle, where the scenario has one."""
    if "exploit" not in components or "oracle" not in references:
        return None
    return ExploitRegret(
        per_customer=values["oracle"] - values["exploit"],
        oracle_gap_pct=100 * (values["oracle"] - values["exploit"]) / abs(values["oracle"]),
    )


def headline_numbers(
    objectives: Criterion,
    alpha: np.ndarray,
    tol: float | None,
    n: int,
    rec: Recommended,
    cost: RevenueCost,
    curve: ExplorationCurve,
    size_curve: LogSizeCurve,
    plan: StudyPlan | None,
) -> Headline:
    """The numbers a reader needs first: how much to explore, what it costs, what precision it buys and how
    much of that precision the log itself can confirm.

    Parameters
    ----------
    objectives : Criterion
    alpha : ndarray, (K,)
        The recommended mixture.
    tol : float or None
        The planning tolerance (reward's unit per customer).
    n : int
        Customers in the log.
    rec : Recommended
    cost : RevenueCost
    curve : ExplorationCurve
    size_curve : LogSizeCurve
        Its daily traffic turns customers into days.
    plan : StudyPlan or None

    Returns
    -------
    Headline
    """
    need = plan.at_recommended.log_size_needed if plan is not None else None
    daily = size_curve.daily_traffic
    precision = {t: target_precision(d) for t, d in rec.targets.items()}
    return Headline(
        exploration_rate=exploration_rate(objectives, alpha),
        revenue_best_component=objectives.component_names[best_component(objectives)],
        exploration_definition=curve.definition,
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


def target_precision(d: TargetError) -> TargetPrecision:
    """A target's precision at the recommended mix (``Criterion.describe`` plus ``promise_se``).

    Parameters
    ----------
    d : TargetError
        With its true value and ``promise_se`` set.

    Returns
    -------
    TargetPrecision
        Errors in the reward's unit per customer; the 95% interval's half-width also as a percentage of the value.

    Raises
    ------
    ValueError
        No value or no ``promise_se``.
    """
    half = d.interval_95()
    value = d.true_value
    if value is None or d.promise_se is None:
        raise ValueError("a target's precision needs its value and the promise's standard error")
    return TargetPrecision(
        rmse=d.rmse,
        sampling_error=d.sampling_error,
        model_dependent=d.model_dependent,
        model_bias_bound=d.model_bias_bound,
        estimator=d.estimator,
        estimator_plain=d.estimator_plain,
        true_value=value,
        logs_show_all=d.logs_show_all,
        promise_se=d.promise_se,
        interval_95=half,
        interval_95_pct=100.0 * half / abs(value) if abs(value) > 1e-12 else None,
    )

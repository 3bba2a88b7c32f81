"""Every ``couponmix`` command as a Python function returning a result object; the CLI only parses and prints.

=============  ==========================================  ===================
command        function                                    returns
=============  ==========================================  ===================
``run``        ``run(cfg, out)``                           ``RunResult``
``plan``       ``plan(cfg, tol, alpha=, eps=, floor=)``    ``PlanResult``
``validate``   ``validate(cfg, alpha, ...)``               ``ValidationResult``
``evaluate``   ``evaluate(cfg, alphas, ...)``              ``EvaluationResult``
``simulate``   ``simulate(cfg, alpha, out, ...)``          ``SimulationResult``
``batch``      ``batch(folder, out, ...)``                 ``BatchResult``
``scenarios``  ``scenarios()``                             ``list[ScenarioInfo]``
``cache``      ``cache(clear=False)``                      ``CacheResult``
``calibrate``  ``calibrate(log, out, config)``             ``CalibrationResult``
``estimate``   ``estimate(scenario_folder, policies=)``    ``EstimateResult``
``campaign``   ``campaign(cfg, rates, periods, ...)``      ``CampaignReport``
=============  ==========================================  ===================
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from couponmix.dataset.calibration import calibrate as run_calibration
from couponmix.dataset.calibration_config import load_calibrate_config
from couponmix.dataset.scenario import SCENARIO_FILE, get_scenario, registered, scenario_class
from couponmix.dataset.simulate import DEFAULT_CHUNK as SIM_CHUNK
from couponmix.dataset.simulate import LogSummary, simulate_to_parquet
from couponmix.decide.contextual import ContextualCriterion
from couponmix.errors import CouponmixError
from couponmix.infra import cache as model_cache
from couponmix.infra.atomic import check_output_dir, check_replaceable, write_outputs
from couponmix.infra.records import OPTIONAL, Record, json_key
from couponmix.infra.validation import check_positive_int, did_you_mean
from couponmix.ope.criterion import Criterion, Population, TargetError
from couponmix.ope.divergence import weight_verdict
from couponmix.ope.estimators import DEFAULT_CLIP, EstimatorSpec, parse_list, suite
from couponmix.ope.montecarlo import TargetCheck, monte_carlo, obp_estimate, row_weights
from couponmix.ope.objectives import EvaluationSample
from couponmix.ope.real_log import real_log_estimators
from couponmix.ope.selection import choose_candidates
from couponmix.ope.streaming import DEFAULT_CHUNK, check_chunk_size
from couponmix.outputs.batch import BatchResult, run_batch
from couponmix.outputs.templating import render
from couponmix.outputs.writer import STUDY_FILES, study_files_for
from couponmix.policy.contextual import Grouping
from couponmix.policy.simplex import parse_alpha_spec, rate_mixture
from couponmix.studies.campaign import CampaignReport, campaign
from couponmix.studies.config import StudyConfig
from couponmix.studies.study import PlanResult, StudyResult, plan_study, run_config
from couponmix.studies.summary import StudySummary, from_doc, to_json

__all__ = [
    "PolicyEstimate",
    "ValidationResult",
    "EvaluationResult",
    "EvaluatedMixture",
    "EvaluatedTarget",
    "RuleGroup",
    "RunResult",
    "SimulationResult",
    "ScenarioInfo",
    "CacheResult",
    "run",
    "plan",
    "validate",
    "evaluate",
    "simulate",
    "batch",
    "scenarios",
    "cache",
    "campaign",
    "CampaignReport",
    "n_chunks",
    "VALIDATE_MAX_N",
]

#: customers per simulated log in validate (each log is held in memory, about 100 bytes per customer per worker)
VALIDATE_MAX_N = 5_000_000
#: simulated logs in one validate (each a full estimate of every estimator); 2,000 is plenty for |z| checks
VALIDATE_MAX_REPS = 1_000_000
#: customers in one evaluate population (streamed in chunks: time, not memory, is the limit)
EVALUATE_MAX_POPULATION = 10_000_000_000


class CriterionCheck(NamedTuple):
    """run's criterion for one target at the validated mixture, beside the Monte Carlo.

    Attributes
    ----------
    estimator : str
        The estimator the criterion chooses (``EstimatorSpec.name``).
    promise : float
        Its robust RMSE, the error run promises (reward's unit per customer).
    simulator_rmse : float
        Its exact RMSE with the simulator's true bias (what the Monte Carlo should show).
    mc_rmse, mc_rmse_se : float or None
        The Monte Carlo RMSE of that estimator and its standard error (None: not simulated).
    """

    estimator: str
    promise: float
    simulator_rmse: float
    mc_rmse: float | None
    mc_rmse_se: float | None


@dataclass
class ValidationResult:
    """``couponmix validate``: per estimator and target, the Monte Carlo check of the analytic error."""

    scenario: str  #: the scenario's name
    alpha: dict  #: the mixture (component -> weight, fractions summing to 1)
    n: int  #: customers per simulated log
    reps: int  #: simulated logs
    seed: int
    results: dict  #: estimator name -> target -> montecarlo.TargetCheck
    rule: str | None = None  #: a contextual rule, logged group by group (alpha is then its traffic average)
    #: run's criterion at this mixture, per target (``CriterionCheck``): the estimator it chooses, its promise,
    #: and the Monte Carlo RMSE of that estimator where it was simulated
    criterion: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """validation.json's document: the settings, the contextual rule when there is one, per estimator and target the
        ``TargetCheck``, and per target run's criterion (``CriterionCheck``)."""
        return {
            "scenario": self.scenario,
            "alpha": self.alpha,
            **({"contextual_rule": self.rule} if self.rule is not None else {}),
            "n": self.n,
            "reps": self.reps,
            "seed": self.seed,
            "estimators": {name: {t: r.to_dict() for t, r in pt.items()} for name, pt in self.results.items()},
            "criterion": {t: c._asdict() for t, c in self.criterion.items()},
        }

    def criterion_lines(self) -> list[str]:
        """run's criterion at this mixture, per target: its estimator, its promise and what the logs gave."""
        lines = []
        for t, c in self.criterion.items():
            if c.mc_rmse is None:
                seen = f"{c.estimator} was not simulated (add it to --estimator)"
            else:
                verdict = "holds" if c.promise >= c.mc_rmse - 2 * c.mc_rmse_se else "is optimistic"
                seen = f"Monte Carlo RMSE {c.mc_rmse:.5g} +/- {c.mc_rmse_se:.2g}: the promise {verdict}"
            lines.append(f"  {t}: {c.estimator}, promised error (robust RMSE) {c.promise:.5g}; {seen}")
        return ["run's criterion at this mixture (the estimator it would choose and the error it promises):", *lines] if lines else []

    def text(self) -> str:
        """The check as a table, one line per estimator and target (true value, mean estimate, Monte Carlo RMSE with
        its standard error, analytic RMSE, z-score, 95% coverage), then run's criterion per target."""
        mix = ",".join(f"{k}={v:.4g}" for k, v in self.alpha.items())
        head = f"n = {self.n:,}, {self.reps} logs, alpha = {mix}"
        if self.rule is not None:
            head = f"n = {self.n:,}, {self.reps} logs under the contextual rule: {self.rule} (alpha = {mix} on average)"
        lines = [
            head,
            f"{'estimator':20s} {'target':12s} {'true':>9s} {'mean est':>9s} {'MC RMSE':>9s} {'+/- se':>8s} "
            f"{'analytic':>9s} {'z':>6s} {'cover95':>7s}",
        ]
        for name, per_target in self.results.items():
            for t, r in per_target.items():
                analytic = "MC only" if r.analytic_rmse is None else f"{r.analytic_rmse:9.5f}"
                z = "" if r.z_score is None else f"{r.z_score:6.2f}"
                lines.append(
                    f"{name:20s} {t:12s} {r.true_value:9.4f} {r.mean_estimate:9.4f} {r.mc_rmse:9.5f} "
                    f"{r.mc_rmse_se:8.5f} {analytic:>9s} {z:>6s} {r.coverage:7.3f}"
                )
        return "\n".join(lines + self.criterion_lines())


def validate(
    cfg: StudyConfig,
    alpha,
    estimators: str | Sequence[EstimatorSpec] | None = None,
    reps: int = 200,
    clip: float | None = None,
    backend=None,
    on_replication: Callable[[int], None] | None = None,
    contextual_from=None,
    at: str = "recommended",
) -> ValidationResult:
    """Draw ``reps`` logs at mixture ``alpha`` (a spec such as 'pi1=0.2,pi2=0.8' or a mapping), run obp's estimators on each and
    compare with the analytic error. ``estimators``: a list such as 'ips,dr[naive]' or specs (default: the whole suite, without
    unbounded weights where their variance is infinite). ``contextual_from`` (a folder written by ``run --contextual``, or its
    summary.json) draws the logs under that run's contextual rule at ``at`` instead of ``alpha``: each customer group at its own
    mixture, every row with its own balanced propensity; the analytic error is the contextual one.

    Parameters
    ----------
    cfg, reps, clip, backend, on_replication
        The study (n at most 5 million customers per log); 2 to 1,000,000 logs; the clipping threshold for named estimators
        that take one; where the logs are drawn; called after each log.

    Returns
    -------
    ValidationResult
    """
    reps = check_positive_int(reps, "reps", minimum=2, maximum=VALIDATE_MAX_REPS)  # before any work
    if cfg.n is not None and cfg.n > VALIDATE_MAX_N:
        raise CouponmixError(
            f"validate holds each simulated log in memory: n = {cfg.n:,} is above its limit of "
            f"{VALIDATE_MAX_N:,} customers per log (the error law gives larger n from a smaller one)"
        )
    sc = cfg.build_scenario()
    rule = None
    if contextual_from is not None:
        if alpha is not None:
            raise CouponmixError("give --alpha or --contextual-from, not both")
        rule = contextual_rule(contextual_from, cfg, sc, at)
    elif alpha is None:
        raise CouponmixError("validate needs --alpha (the mixture) or --contextual-from (a contextual run's rule)")
    lam = DEFAULT_CLIP if clip is None else clip
    sample = EvaluationSample.from_scenario(sc, cfg.eval_size, cfg.seed)
    if rule is None:
        a = parse_alpha_spec(alpha, tuple(sc.components()))
        logged = [a]
    else:
        shares = np.bincount(rule.grouping.group_of(sc, sample.x), minlength=rule.grouping.size) / sample.size
        a, logged = shares @ rule.alphas, list(rule.alphas)
    # the weights' variance: the worst of every mixture logged (each group's, for a contextual rule)
    verdicts = {}
    for t in sc.targets():
        found = [weight_verdict(sc, sample, t, x) for x in logged]
        verdicts[t] = next((v for v in found if not v.finite), found[0])
    finite = all(v.finite for v in verdicts.values())
    if estimators is None:
        specs = [s for s in suite(lam) if finite or not s.has_unbounded_weights]
    else:
        # --clip reaches every named estimator that takes one; without it, those that need one get the default
        specs = parse_list(estimators, clip) if isinstance(estimators, str) else list(estimators)
        bad = [s.name for s in specs if s.has_unbounded_weights and not finite]
        if bad:
            t, v = next((t, v) for t, v in verdicts.items() if not v.finite)
            raise CouponmixError(f"{', '.join(bad)}: infinite variance at this mixture for {t} ({v.reason})")
    n = sc.default_n if cfg.n is None else cfg.n
    contextual = None if rule is None else (rule.grouping, rule.alphas)
    laws = _criterion_laws(cfg, sc, sample, verdicts, n, a, rule)  # before the simulation: its errors come first
    res: dict[str, dict[str, TargetCheck]] = monte_carlo(
        sc, a, specs, n, reps, cfg.seed, eval_size=cfg.eval_size, backend=backend, on_replication=on_replication, contextual=contextual
    )
    checks = {}
    for t, law in laws.items():
        d = law.summary(n, 0)
        mc = res.get(d.estimator, {}).get(t)
        checks[t] = CriterionCheck(
            d.estimator, d.rmse, d.simulator.rmse, None if mc is None else mc.mc_rmse, None if mc is None else mc.mc_rmse_se
        )
    mix = dict(zip(sc.components(), a.tolist()))
    return ValidationResult(sc.name, mix, n, reps, cfg.seed, res, None if rule is None else rule.rule, checks)


def _criterion_laws(cfg: StudyConfig, sc, sample: EvaluationSample, verdicts: dict, n: int, a: np.ndarray, rule) -> dict:
    """Each target's ``SelectedLaw`` under run's criterion at the validated mixture (or contextual rule)."""
    cands, _ = choose_candidates(cfg.estimator, verdicts, sc.name)
    crit = Criterion(sample, cands, n, cfg.aggregate)
    if rule is None:
        laws = crit.laws(a[None])
    else:
        laws = ContextualCriterion(crit, sc, rule.grouping).laws_of_mixtures(rule.alphas[None])
    return dict(zip(crit.target_names, laws))


@dataclass(kw_only=True)
class EvaluatedTarget(TargetError):
    """One future policy at an evaluated mixture: its value per customer (``value`` in the JSON), then the chosen
    estimator and the parts of its error (``SelectedLaw.summary``)."""

    true_value: float = field(metadata=json_key("value"))


@dataclass
class RuleGroup(Record):
    """One customer group of a contextual rule: its share of the customers and its own mixture."""

    label: str  #: the group in words
    share: float  #: its share of the customers, a fraction
    alpha: dict[str, float]  #: its mixture (component -> weight, fractions summing to 1)


@dataclass
class EvaluatedMixture(Record):
    """One row of ``evaluate``: a mixture's revenue per customer, the criterion's aggregate error and each future
    policy's; for a contextual rule, the traffic-weighted mixture, the rule in words and its groups."""

    alpha: dict[str, float]  #: component -> weight, fractions
    revenue: float  #: per customer, in the reward's unit
    ope_rmse: float  #: the aggregate of the targets' errors, reward's unit per customer
    targets: dict[str, EvaluatedTarget]  #: per future policy
    rule: str | None = field(default=None, metadata=OPTIONAL)  #: a contextual rule, in words
    groups: list[RuleGroup] | None = field(default=None, metadata=OPTIONAL)  #: a contextual rule's groups


@dataclass
class EvaluationResult:
    """``couponmix evaluate``: revenue and the decision's error of given mixtures, by the same criterion as
    ``run`` (``couponmix.ope.criterion``), on the run's evaluation sample or a streamed population.

    Attributes
    ----------
    scenario : str
    population : int
        Customers the moments are over.
    n : int
        Customers in the log the errors are for.
    seed : int
    criterion : str
        The criterion in plain words (``Criterion.label``).
    criterion_reason : str
        Why these candidate estimators (``selection.choose_candidates``).
    aggregate : str
    backend : str
    seconds : float
    mixtures : list of EvaluatedMixture
        Per mixture, then the contextual rule if any.
    """

    scenario: str
    population: int
    n: int
    seed: int
    criterion: str
    criterion_reason: str
    aggregate: str
    backend: str
    seconds: float
    mixtures: list[EvaluatedMixture]

    def to_dict(self) -> dict:
        """``evaluate --json``'s document: the fields, with ``mixture_evaluations_per_second`` added."""
        return {
            "scenario": self.scenario,
            "population": self.population,
            "n": self.n,
            "seed": self.seed,
            "criterion": self.criterion,
            "criterion_reason": self.criterion_reason,
            "aggregate": self.aggregate,
            "backend": self.backend,
            "seconds": self.seconds,
            "mixture_evaluations_per_second": len(self.mixtures) / max(self.seconds, 1e-9),
            "mixtures": [m.to_dict() for m in self.mixtures],
        }

    def labels(self) -> list[str]:
        """Each mixture's row label, 'component=weight,...' (prefixed 'contextual rule: ' for a rule)."""
        return [
            ("contextual rule: " if row.rule is not None else "") + ",".join(f"{k}={v:.3g}" for k, v in row.alpha.items())
            for row in self.mixtures
        ]

    def text(self) -> str:
        """The evaluation as a table: per mixture its revenue per customer, each future policy's error and estimator
        (``*`` where the logs never show some action the policy plays), and the aggregate error."""
        k = len(self.mixtures)
        targets = list(self.mixtures[0].targets) if self.mixtures else []
        labels = self.labels()
        w = max([34, *map(len, labels)])
        lines = [
            f"{self.scenario}: {k} mixture(s) evaluated exactly on {self.population:,} customers in "
            f"{self.seconds:.1f} s ({k / max(self.seconds, 1e-9):.3g} mixture evaluations/s, {self.backend})",
            f"error at a log of n = {self.n:,}, as run computes it: {self.criterion}",
            f"candidate estimators: {self.criterion_reason}",
            f"{'mixture':{w}s} {'revenue':>9s} "
            + " ".join(f"{'error ' + t:>14s} {'by':12s}" for t in targets)
            + f" {self.aggregate + ' error':>10s}",
        ]
        for mix, row in zip(labels, self.mixtures):
            cells = [f"{d.rmse:13.5g}{' ' if d.logs_show_all else '*'} {d.estimator:12s}" for d in row.targets.values()]
            lines.append(f"{mix:{w}s} {row.revenue:9.5g} " + " ".join(cells) + f" {row.ope_rmse:10.5g}")
        if any(not d.logs_show_all for row in self.mixtures for d in row.targets.values()):
            lines.append("* unsupported: the logs never show some actions this policy plays; part of its error rests on the revenue model")
        lines += [
            f"the contextual rule (its weights above: the traffic average): {row.rule}" for row in self.mixtures if row.rule is not None
        ]
        return "\n".join(lines)

    def warnings(self) -> list[str]:
        """One line per mixture and future policy whose actions the logs do not all show: how much of its error is bias
        that no log size removes."""
        out = []
        for mix, row in zip(self.labels(), self.mixtures):
            for t, d in row.targets.items():
                if not d.logs_show_all:
                    out.append(
                        f"at {mix} the logs never show actions that carry {1 - d.support:.1%} of {t}'s "
                        f"probability: of its error {d.rmse:.4g}, {d.model_dependent:.4g} is bias no log size "
                        f"removes (computed from the revenue model: {d.computed_bias:.4g}; resting on the model "
                        f"beyond that: up to {d.model_bias_bound:.4g})"
                    )
        return out


#: ``evaluate``'s population: the run's own evaluation sample, in memory (the same customers ``run`` used)
RUN_SAMPLE = "sample"


def evaluate(
    cfg: StudyConfig,
    alphas: Sequence | None,
    population: int | str = 1_000_000,
    chunk_size: int | None = None,
    naive: bool = False,
    backend=None,
    on_chunk: Callable[[int], None] | None = None,
    contextual_from=None,
    at: str = "recommended",
) -> EvaluationResult:
    """Revenue and the decision's error of the mixtures ``alphas`` (specs or mappings), by run's criterion.

    The error is the one ``run`` uses (``couponmix.ope.criterion``): per future policy, the lowest robust
    error among the estimators with an exact formula whose variance is finite at these mixtures, or the
    estimator the study forces (``cfg.estimator``; ``naive`` uses its naive multi-logger form).

    Parameters
    ----------
    cfg : StudyConfig
    alphas : sequence of str or mapping, optional
        Mixtures (component -> weight, fractions summing to 1).
    population : int or "sample"
        Customers of a population streamed in chunks (any size, memory bounded by the chunk), or "sample": the run's own
        evaluation sample (``cfg.eval_size`` customers, in memory), where evaluate gives exactly run's numbers.
    chunk_size : int, optional
        Customers per chunk (a multiple of 65,536).
    naive : bool
    backend : Backend, optional
    on_chunk : callable, optional
        Called with each chunk's index as it is done.
    contextual_from : path, optional
        A folder written by ``run --contextual`` (or its summary.json): adds that run's contextual rule at
        ``at``, each customer group at its own mixture, and the one rate for everyone that reached the same
        precision in the run (unless ``alphas`` are given), on the same customers.
    at : str

    Returns
    -------
    EvaluationResult

    Raises
    ------
    CouponmixError
        A bad population or mixture, no mixture nor rule, ``naive`` without an estimator, or a bad rule.
    """
    in_memory = population == RUN_SAMPLE
    if not in_memory:
        if isinstance(population, str):
            raise CouponmixError(f"population must be a number of customers or {RUN_SAMPLE!r}, got {population!r}")
        population = check_positive_int(population, "population size", minimum=100, maximum=EVALUATE_MAX_POPULATION)
    sc = cfg.build_scenario()
    names = tuple(sc.components())
    a, rule = _mixtures_and_rule(cfg, sc, alphas, contextual_from, at)
    requested = cfg.estimator
    if naive:
        if requested is None:
            raise CouponmixError("--naive needs --estimator")
        requested = EstimatorSpec(requested.kind, requested.clip, weights="naive")
    sample = EvaluationSample.from_scenario(sc, cfg.eval_size, cfg.seed)
    verdicts = _verdicts_at(sc, sample, [*a, *([] if rule is None else rule.alphas)])
    specs, why = choose_candidates(requested, verdicts, sc.name)
    n = sc.default_n if cfg.n is None else cfg.n
    start = time.perf_counter()
    if in_memory:
        crit = Criterion(sample, specs, n, cfg.aggregate)
        revenue, laws, shares = _assess_in_memory(crit, sc, a, rule)
        size, where = sample.size, "in memory"
    else:
        grouping = None if rule is None else rule.grouping
        pop = Population(sc, population, cfg.seed, chunk_size, backend, grouping, model_error_from=sample)  # type: ignore[arg-type]
        crit = Criterion(pop, specs, n, cfg.aggregate)
        assert crit.stream is not None
        revenue, laws = crit.assess(_with_rule(a, rule), on_chunk=on_chunk)
        size, where = crit.stream.size, crit.stream.backend.name
        shares = None if rule is None else np.asarray(crit.stream.group_shares, dtype=float)
    seconds = time.perf_counter() - start
    rows = _evaluation_rows(crit, names, a, revenue, laws, n, rule, shares)
    return EvaluationResult(sc.name, size, n, cfg.seed, crit.label, why, cfg.aggregate, where, seconds, rows)


def _mixtures_and_rule(cfg: StudyConfig, sc, alphas: Sequence | None, contextual_from, at: str) -> tuple:
    """(the mixtures given (B, K), the contextual rule or None); with a rule and no mixture, the one rate for
    everyone that reached the run's precision."""
    names = tuple(sc.components())
    a = np.array([parse_alpha_spec(x, names) for x in alphas or []]).reshape(-1, len(names))
    if contextual_from is None:
        if len(a) == 0:
            raise CouponmixError("evaluate needs --alpha (mixtures) or --contextual-from (a contextual run's rule)")
        return a, None
    rule = contextual_rule(contextual_from, cfg, sc, at)
    if len(a) == 0 and rule.global_alpha is not None:
        a = rule.global_alpha[None]
    return a, rule


def _verdicts_at(sc, sample: EvaluationSample, mixtures: list) -> dict:
    """Per target, the weights' verdict over every mixture logged (the first infinite one, else the first)."""
    verdicts = {}
    for t in sample.target_names:
        found = [weight_verdict(sc, sample, t, x) for x in mixtures]
        verdicts[t] = next((v for v in found if v.status == "infinite"), found[0])
    return verdicts


def _with_rule(a: np.ndarray, rule) -> np.ndarray:
    """(B, K) mixtures for everyone, or with a contextual rule (B + 1, G, K): each for every group, then the rule."""
    if rule is None:
        return a
    return np.concatenate([np.repeat(a[:, None, :], rule.grouping.size, axis=1), rule.alphas[None]])


def _assess_in_memory(crit: Criterion, sc, a: np.ndarray, rule) -> tuple:
    """(revenue, laws, the groups' shares or None) on run's own sample; a contextual rule is assessed on the
    same customers, each group at its own mixture."""
    if rule is None:
        return (*crit.assess(a), None)
    ctx = ContextualCriterion(crit, sc, rule.grouping)
    batch = _with_rule(a, rule)
    return ctx.revenue_of_mixtures(batch), ctx.laws_of_mixtures(batch), np.asarray(ctx.shares, dtype=float)


def _evaluation_rows(crit: Criterion, names: tuple, a: np.ndarray, revenue, laws, n: int, rule, shares) -> list[EvaluatedMixture]:
    """``EvaluationResult.mixtures``: per mixture its revenue, aggregate error and per-target detail, then the
    contextual rule with its groups' traffic shares."""
    values = dict(zip(crit.target_names, np.asarray(crit.target_values).tolist()))
    agg = crit.combine(np.column_stack([law.rmse(n) for law in laws]))

    def targets(i: int) -> dict[str, EvaluatedTarget]:
        """Each future policy's value and error at row ``i`` of the batch."""
        return {t: _evaluated(values[t], law.summary(n, i)) for t, law in zip(crit.target_names, laws)}

    rows = [EvaluatedMixture(dict(zip(names, x.tolist())), float(revenue[i]), float(agg[i]), targets(i)) for i, x in enumerate(a)]
    if rule is not None and shares is not None:  # the contextual rule: its traffic shares over the customers, and the rule
        rows.append(
            EvaluatedMixture(
                alpha=dict(zip(names, (shares @ rule.alphas).tolist())),
                revenue=float(revenue[-1]),
                ope_rmse=float(agg[-1]),
                targets=targets(len(a)),
                rule=rule.rule,
                groups=[
                    RuleGroup(lab, float(w), dict(zip(names, x.tolist()))) for lab, w, x in zip(rule.grouping.labels, shares, rule.alphas)
                ],
            )
        )
    return rows


def _evaluated(value: float, error: TargetError) -> EvaluatedTarget:
    """``error`` with the policy's value in front."""
    parts = {f.name: getattr(error, f.name) for f in dataclasses.fields(error)}
    return EvaluatedTarget(**{**parts, "true_value": value})


def n_chunks(population: int, chunk_size: int | None) -> int:
    """Chunks a streamed population is evaluated in (for a progress bar).

    Parameters
    ----------
    population : int
        Customers.
    chunk_size : int, optional
        Customers per chunk (default: ``streaming.DEFAULT_CHUNK``).

    Returns
    -------
    int

    Raises
    ------
    CouponmixError
        A chunk size that is not a positive multiple of the block.
    """
    size = check_chunk_size(DEFAULT_CHUNK if chunk_size is None else chunk_size)
    return -(-population // size)


@dataclass
class RunResult:
    """``couponmix run``: the study's result and the files written to ``out``."""

    study: StudyResult  #: the study's result
    out: Path  #: the folder written
    files: list[str]  #: the files written there

    @property
    def summary(self) -> StudySummary:
        """The study's summary (what summary.json holds)."""
        return self.study.summary


def run(cfg: StudyConfig, out, quiet: bool = True) -> RunResult:
    """Run the study ``cfg`` and write its files (pareto.csv, the figures, report.html, summary.json) to the
    folder ``out``, atomically; a folder couponmix did not write is refused before any work.

    Parameters
    ----------
    cfg : StudyConfig
    out : str or Path
        The output folder.
    quiet : bool
        No progress bar.

    Returns
    -------
    RunResult

    Raises
    ------
    CouponmixError
        A folder couponmix did not write, or as ``studies.study.run_study``.
    """
    folder = check_output_dir(out)
    check_replaceable(folder, STUDY_FILES)
    result = run_config(cfg, quiet=quiet)
    files = study_files_for(result)
    write_outputs(folder, files, retire=STUDY_FILES)  # e.g. contextual.png of an earlier --contextual run
    return RunResult(result, folder, list(files))


def plan(cfg: StudyConfig, tol: float, alpha=None, eps: float | None = None, floor: float | None = None, on_phase=None) -> PlanResult:
    """The least-cost mixture whose error is at most ``tol`` for every future policy at the study's log size,
    or (with ``alpha`` or ``eps``) the log size needed at that mixture. ``on_phase(done, name)``: progress.

    Parameters
    ----------
    cfg, tol, alpha, eps, floor, on_phase
        As ``studies.study.plan_study`` (tol in the reward's unit per customer, eps and floor fractions).

    Returns
    -------
    PlanResult

    Raises
    ------
    CouponmixError
        Both alpha and eps, or as ``plan_study``.
    """
    if eps is not None and alpha is not None:
        raise CouponmixError("give --alpha or --eps, not both")
    return plan_study(cfg, tol, alpha=alpha, eps=eps, floor=floor, on_phase=on_phase)


@dataclass
class SimulationResult:
    """``couponmix simulate``: what was written (``summary.to_dict()`` is the document ``out/_summary.json`` holds)."""

    out: Path  #: the folder written
    summary: LogSummary  #: what was drawn, where, and the realised shares and mean reward

    def text(self) -> str:
        """One line on what was written (customers, files, folder, backend, mean reward with its standard error), and
        the contextual rule the log was drawn under, if any."""
        s = self.summary
        return (
            f"wrote {s.n:,} customers in {len(s.files)} Parquet files to {self.out} ({s.backend}); "
            f"mean reward {s.reward_mean:.5g} +/- {s.reward_mean_se:.2g}"
            + (f"\nlogged under the contextual rule: {s.contextual.rule}" if s.contextual is not None else "")
        )


def simulate(
    cfg: StudyConfig,
    alpha,
    out,
    chunk_size: int | None = None,
    backend=None,
    on_chunk: Callable[[int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    contextual_from=None,
    at: str = "recommended",
) -> SimulationResult:
    """Simulate the study's log size of customers under ``alpha`` and write them to the new folder ``out`` as
    Parquet parts, chunk by chunk (refused before any work when the disk cannot hold them). ``on_start``
    gets the number of chunks once known, ``on_chunk`` the number written so far.

    ``contextual_from`` (a folder written by ``run --contextual``, or its summary.json) logs under that run's
    contextual rule at ``at`` (recommended or tolerance) instead of ``alpha``: each customer's group gets its
    own mixture, and every row records the customer's weights (``alpha.<component>``).

    Parameters
    ----------
    cfg : StudyConfig
        Its n (default: the scenario's) customers are simulated.
    alpha : str or mapping, optional
        The mixture (not with ``contextual_from``).
    out : str or Path
        The new folder.
    chunk_size : int, optional
        Customers per Parquet part (a multiple of 65,536).
    backend : Backend, optional
    on_chunk, on_start : callable (int), optional
    contextual_from : str or Path, optional
    at : str

    Returns
    -------
    SimulationResult

    Raises
    ------
    CouponmixError
        Both or neither of alpha and contextual_from, a bad mixture, rule, chunk size or folder, or too little disk.
    """
    sc = cfg.build_scenario()
    contextual = None
    if contextual_from is not None:
        if alpha is not None:
            raise CouponmixError("give --alpha or --contextual-from, not both")
        found = contextual_rule(contextual_from, cfg, sc, at)
        contextual = (found.grouping, found.alphas, found.rule)
        a = None
    else:
        if alpha is None:
            raise CouponmixError("simulate needs --alpha (the mixture) or --contextual-from (a contextual run's rule)")
        a = parse_alpha_spec(alpha, tuple(sc.components()))
    n = sc.default_n if cfg.n is None else cfg.n
    chunk = SIM_CHUNK if chunk_size is None else chunk_size
    if on_start is not None:
        on_start(-(-n // max(chunk, 1)))
    summary = simulate_to_parquet(sc, a, n, out, cfg.seed, chunk, backend, on_chunk=on_chunk, contextual=contextual)
    return SimulationResult(Path(out), summary)


#: a run's summary.json is at most this large (it is read whole)
MAX_SUMMARY_BYTES = 64 * 2**20


class ContextualRule(NamedTuple):
    """A contextual rule a ``run --contextual`` wrote: its customer groups, each group's mixture (G, K), the
    rule in words, and the mixture with one rate for everyone that reached the same precision in the run
    (K,), None if not recorded."""

    grouping: Any  #: the customer groups (``policy.contextual.Grouping``)
    alphas: np.ndarray  #: (G, K) each group's mixture
    rule: str  #: the rule in words
    global_alpha: np.ndarray | None  #: (K,) one rate for everyone at the same precision; None if not recorded


def contextual_rule(source, cfg: StudyConfig, scenario, at: str = "recommended") -> ContextualRule:
    """The contextual rule a ``run --contextual`` wrote to ``source`` (its folder or summary.json) at ``at``,
    checked against the study's scenario and world seed.

    Parameters
    ----------
    source : str or Path
        A ``run --contextual`` folder, or its summary.json.
    cfg : StudyConfig
    scenario : Scenario
        The study's scenario.
    at : str
        The rule's point: "recommended" or "tolerance".

    Returns
    -------
    ContextualRule

    Raises
    ------
    CouponmixError
        An unreadable or foreign summary, one without a rule, a rule for another scenario or world seed, or no reachable
        rule at ``at``.
    """
    file, summary = _contextual_summary(source)
    ctx = summary.contextual
    assert ctx is not None  # a "contextual" object in the document reads back as the block
    if summary.scenario != scenario.name or summary.world_seed != cfg.world_seed:
        raise CouponmixError(
            f"{file} is a rule for scenario {summary.scenario!r} with world seed {summary.world_seed}, "
            f"not {scenario.name!r} with world seed {cfg.world_seed}: its groups would not be the same customers"
        )
    written_for = None if summary.study is None else summary.study.scenario
    if written_for is not None and written_for != cfg.scenario:
        same_folder = (
            Path(written_for).is_dir() and Path(cfg.scenario).is_dir() and Path(written_for).resolve() == Path(cfg.scenario).resolve()
        )
        if not same_folder:
            raise CouponmixError(
                f"{file} is a rule for scenario {written_for!r}, not {cfg.scenario!r}: its groups would not be the same customers"
            )
    point = ctx.at.get(at)
    if point is None or not point.reachable or point.exploration_rate is None:
        known = ", ".join(k for k, v in ctx.at.items() if v.reachable) or "none"
        raise CouponmixError(f"{file}: no reachable contextual rule at {at!r} (reachable: {known})")
    grouping = Grouping.from_dict(ctx.grouping)
    names = list(scenario.components())
    try:
        i_exploit, i_explore = names.index(ctx.components["exploit"]), names.index(ctx.components["explore"])
        eps = np.asarray(point.exploration_rate, dtype=float)
    except (KeyError, ValueError, TypeError):
        raise CouponmixError(f"{file}: the rule names components the scenario does not have ({', '.join(names)})") from None
    if eps.shape != (grouping.size,) or not np.all((eps >= 0) & (eps <= 1)):
        raise CouponmixError(f"{file}: the rule's rates do not match its groups")
    alphas = rate_mixture(len(names), i_exploit, i_explore, eps)
    rate = point.global_exploration_rate
    one = None
    if isinstance(rate, (int, float)) and 0 <= rate <= 1:
        one = rate_mixture(len(names), i_exploit, i_explore, float(rate))
    return ContextualRule(grouping, alphas, str(point.rule or ""), one)


def _contextual_summary(source) -> tuple[Path, StudySummary]:
    """(the file, its summary) of a ``run --contextual`` folder or summary.json, read by ``summary.from_doc``."""
    path = Path(source)
    file = path / "summary.json" if path.is_dir() else path
    try:
        if file.stat().st_size > MAX_SUMMARY_BYTES:
            raise CouponmixError(f"{file} is larger than {MAX_SUMMARY_BYTES // 2**20} MB: not a couponmix summary")
        doc = json.loads(file.read_text())
    except OSError as exc:
        raise CouponmixError(f"--contextual-from: cannot read {file} ({exc.strerror or exc})") from None
    except (ValueError, UnicodeDecodeError):
        raise CouponmixError(f"--contextual-from: {file} is not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("contextual"), dict):
        raise CouponmixError(f"{file} holds no contextual rule: write one with couponmix run --contextual")
    try:
        summary = from_doc(doc)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CouponmixError(f"{file} was written by another couponmix version: run again with --contextual") from None
    return file, summary


def batch(folder, out, workers: int | None = None, quiet: bool = True) -> BatchResult:
    """Run every study file of ``folder`` into ``out`` (one sub-folder each, index.html, comparison.csv),
    in parallel and resumable.

    Parameters
    ----------
    folder, out : str or Path
    workers : int, optional
        Local processes (default: one per thread, at most one per study).
    quiet : bool
        No progress bar.

    Returns
    -------
    BatchResult
    """
    return run_batch(folder, out, workers=workers, quiet=quiet)


@dataclass
class ScenarioInfo:
    """A scenario ``couponmix scenarios`` lists: its registered name and its one-line description."""

    name: str  #: the registered name
    description: str  #: in one line


def scenarios() -> list[ScenarioInfo]:
    """Every registered scenario (shipped, or declared by another package's entry point)."""
    return [ScenarioInfo(name, scenario_class(name).description) for name in registered()]


@dataclass
class CacheResult:
    """``couponmix cache``: where the model cache is and what it holds (after clearing, if asked)."""

    path: str  #: the cache's folder
    enabled: bool  #: False when COUPONMIX_CACHE turns it off
    entries: int  #: models held
    bytes: int  #: their size on disk
    compiled: int = 0  #: compiled prediction libraries (couponmix.policy.compiled)
    cleared: int | None = None  #: entries removed (None: not cleared)

    def text(self) -> str:
        """The cache in one line: entries removed (when cleared), its path, whether it is off, models held, compiled
        libraries and size in MiB."""
        state = "" if self.enabled else " (turned off by COUPONMIX_CACHE)"
        head = f"removed {self.cleared} cached model(s); " if self.cleared is not None else ""
        libs = f", {self.compiled} compiled for fast prediction" if self.compiled else ""
        return f"{head}model cache {self.path}{state}: {self.entries} model(s){libs}, {self.bytes / 2**20:.1f} MiB"


def cache(clear: bool = False) -> CacheResult:
    """The model cache's location and size; ``clear`` first removes every entry couponmix wrote there.

    Parameters
    ----------
    clear : bool

    Returns
    -------
    CacheResult
    """
    cleared = model_cache.clear() if clear else None
    held = model_cache.info()
    return CacheResult(held.path, held.enabled, held.entries, held.bytes, held.compiled, cleared)


def calibrate(log, out, config, fallback: str | None = None, on_phase=None):
    """Calibrate a scenario folder ``out`` from the log at ``log`` (CSV, Parquet file or folder) as ``config``
    (a YAML path or mapping: ``columns``, ``components``, ``targets``, ...) says; returns a
    ``couponmix.dataset.calibration.CalibrationResult``. ``fallback`` (means, refuse or model) overrides the
    config's choice for a model no better than per-action means.

    Parameters
    ----------
    log : str or Path
    out : str or Path
        The new scenario folder.
    config : str, Path or mapping
    fallback : "means", "refuse" or "model", optional
    on_phase : callable (done, name), optional
        Told as each of calibrate's phases starts.

    Returns
    -------
    CalibrationResult

    Raises
    ------
    CouponmixError
        As ``dataset.calibration.calibrate``.
    """
    return run_calibration(log, out, config, fallback=fallback, on_phase=on_phase)


#: what the interval of an estimator without weights (DM) does not count
UNWEIGHTED_NOTE = (
    "no logged reward enters this estimate (the model's values only), so the interval counts the spread over the "
    "log's customers, not the error of the model itself"
)
#: a weighted estimate whose per-row terms are all equal (typically: no logged row the policy would choose had a
#: click): its upper end comes from the rule of three, not from the spread
RULE_OF_THREE_NOTE = (
    "every logged row the policy matches had the same outcome, so the spread is zero; the upper end is the rule "
    "of three (3 x the largest weight x the reward range / rows)"
)

#: a clipped or switched estimator that cut some logged rows' weights: where it does, its value rests on the
#: model (Switch-DR) or is biased toward zero (clipped IPS), and the interval does not count that bias
CUT_WEIGHTS_NOTE = (
    "this estimator cuts the largest weights (share of the weight it drops: 'weight_dropped' in estimate.json); "
    "there it rests on the revenue model, or is biased toward zero without one, and the interval does not cover "
    "that bias: it counts the spread over the log's rows only"
)


#: why ``estimate`` recommends the estimator it marks
RECOMMENDED_BECAUSE = (
    "the narrowest 95% interval among the estimators whose interval counts all of their error (the model-only "
    "estimate and the estimators that cut weights leave out a bias the log cannot measure)"
)


@dataclass
class PolicyEstimate(Record):
    """One policy's value estimated from the real log by one estimator (per customer, in the reward's unit), with
    its 95% interval."""

    estimate: float
    #: the estimate before a rate was clamped to [0, 1] (only when clamping moved it)
    unclamped_estimate: float | None = field(default=None, metadata=OPTIONAL)
    low: float = 0.0
    high: float = 0.0
    obp: str = ""  #: the obp estimator that computed the point estimate
    plain: str = ""  #: the estimator in plain words
    #: why the interval does not tell the whole story (``UNWEIGHTED_NOTE``, ``CUT_WEIGHTS_NOTE``, ``RULE_OF_THREE_NOTE``)
    note: str | None = field(default=None, metadata=OPTIONAL)
    #: with ``CUT_WEIGHTS_NOTE``: the share of the importance weights' sum the estimator cut
    weight_dropped: float | None = field(default=None, metadata=OPTIONAL)


@dataclass
class EstimateResult:
    """``couponmix estimate``: each policy's value estimated from the real log by each estimator, with 95%
    intervals (from the per-row terms; obp's own point estimate agrees to 1e-9)."""

    scenario: str  #: the scenario folder or log estimated from
    rows: int  #: logged rows
    estimates: dict[str, dict[str, PolicyEstimate]]  #: policy -> estimator -> its estimate
    loggers: list[str] = field(default_factory=list)  #: the log's logging components (empty: one logger)
    weighting: str = "each row weighted by the inverse of its logged propensity"  #: how rows are weighted, in words
    warnings: list[str] = field(default_factory=list)  #: the calibration's honesty gates (the DR terms use its model)

    recommended_because = RECOMMENDED_BECAUSE

    @property
    def recommended(self) -> dict[str, str | None]:
        """Per policy, the estimator to read: the narrowest 95% interval among those whose interval counts all of
        their error (not the model-only estimate, nor estimators that cut weights: the log cannot measure the
        bias they leave out); None when no estimator qualifies."""
        out: dict[str, str | None] = {}
        for pol, per in self.estimates.items():
            ok = {n: e.high - e.low for n, e in per.items() if e.note not in (UNWEIGHTED_NOTE, CUT_WEIGHTS_NOTE)}
            out[pol] = min(ok, key=lambda n: (ok[n], n)) if ok else None
        return out

    def to_dict(self) -> dict:
        """estimate.json's document: the fields, with the estimator to read per policy (``recommended``) and why."""
        return {
            "scenario": self.scenario,
            "rows": self.rows,
            "loggers": self.loggers,
            "weighting": self.weighting,
            "estimates": {pol: {name: e.to_dict() for name, e in per.items()} for pol, per in self.estimates.items()},
            "recommended": self.recommended,
            "recommended_because": RECOMMENDED_BECAUSE,
            "warnings": self.warnings,
        }

    def text(self) -> str:
        """The estimates as a table, one line per policy and estimator (estimate and 95% interval), notes marked by
        asterisks and the estimator to read marked; the footnotes follow."""
        lines = [
            f"{self.scenario}: estimates from the real log itself ({self.rows:,} rows), 95% intervals",
            *([f"{len(self.loggers)} loggers ({', '.join(self.loggers)}): {self.weighting}"] if self.loggers else []),
            f"{'policy':16s} {'estimator':16s} {'estimate':>10s} {'interval':>24s}",
        ]
        best = self.recommended
        for pol, per in self.estimates.items():
            for name, e in per.items():
                mark = " " + self.marker(e) if e.note else ""
                pick = "  <- read this one" if best[pol] == name else ""
                lines.append(f"{pol:16s} {name:16s} {e.estimate:10.5g} [{e.low:10.5g}, {e.high:10.5g}]{mark}{pick}")
        lines += [f"{'*' * (i + 1)} {note}" for i, note in enumerate(self.footnotes)]
        lines.append(f"<- read this one: {RECOMMENDED_BECAUSE}")
        return "\n".join(lines)

    @property
    def footnotes(self) -> list[str]:
        """The notes the estimates carry, in a fixed order; the i-th is marked by i + 1 asterisks."""
        present = {e.note for per in self.estimates.values() for e in per.values() if e.note}
        return [note for note in (UNWEIGHTED_NOTE, CUT_WEIGHTS_NOTE, RULE_OF_THREE_NOTE) if note in present]

    def marker(self, e: PolicyEstimate) -> str:
        """The asterisks that mark estimate ``e``'s note (one more per footnote's position in ``footnotes``; none
        without a note)."""
        return "*" * (self.footnotes.index(e.note) + 1) if e.note else ""

    def html(self) -> str:
        """estimate.html (``outputs.templating``)."""
        return render("estimate.html", r=self)


def estimate(source, policies: Sequence[str] | None = None, out=None, config=None, on_phase=None) -> EstimateResult:
    """Estimate the value of policies from a real log: the calibrated scenario's targets (or ``policies``,
    targets or components by name), with every estimator the log supports (``real_log_suite``: balanced
    weights, plus obp's naive multi-logger forms when the log has several loggers) run through obp, and our
    own 95% intervals (obp's interval for multi-logger estimators is broken).

    ``source`` is a scenario folder written by ``calibrate``, or the log itself (CSV, Parquet file or folder)
    with ``config``, the file ``calibrate`` takes: the policies' models are then fitted exactly as calibrate
    would, in a temporary folder that is removed afterwards. Writes ``estimate.json`` and ``estimate.html``
    to ``out`` when given.

    Parameters
    ----------
    source : str or Path
    policies : sequence of str, optional
    out : str or Path, optional
    config : str, Path or mapping, optional
        Only with a log.
    on_phase : callable (done, name), optional
        Calibrate's progress, with a log.

    Returns
    -------
    EstimateResult

    Raises
    ------
    CouponmixError
        A log without config, a folder with one, an unknown policy, a folder without a real log with propensities,
        or as ``calibrate``.
    """
    import tempfile

    if out is not None:
        check_output_dir(out, ["estimate.html", "estimate.json"])
    if not (Path(source).is_dir() and (Path(source) / SCENARIO_FILE).is_file()):
        if config is None:
            raise CouponmixError(
                f"{source} is not a scenario folder: to estimate from a log, give its mapping with --config (the file calibrate takes)"
            )
        if policies:  # the names first: a typo costs no model fitting
            cfg = load_calibrate_config(config)
            every = [*cfg.components, *cfg.targets]
            unknown = [p for p in policies if p not in every]
            if unknown:
                raise CouponmixError(
                    f"unknown policy {unknown[0]!r}; the mapping names {', '.join(every)}{did_you_mean(unknown[0], every)}"
                )
        with tempfile.TemporaryDirectory(prefix="couponmix-estimate-") as tmp:
            calibrate(source, Path(tmp) / "scenario", config, on_phase=on_phase)
            result = estimate(Path(tmp) / "scenario", policies)
        result.scenario = str(source)
        if out is not None:
            _write_estimate(result, out)
        return result
    if config is not None:
        raise CouponmixError(f"{source} is a scenario folder, which carries its own config; give no --config")
    return _estimate_folder(source, policies, out)


def _write_estimate(result: EstimateResult, out) -> None:
    write_outputs(out, {"estimate.html": result.html(), "estimate.json": to_json(result.to_dict())})


def _estimate_folder(scenario_folder, policies: Sequence[str] | None, out) -> EstimateResult:
    sc = get_scenario(str(scenario_folder))
    log = sc.real_log()
    if log is None:
        raise CouponmixError(
            f"{scenario_folder} holds no real log with propensities: estimate needs a scenario "
            "folder written by couponmix calibrate from a log with a propensity column"
        )
    every = {**sc.components(), **sc.targets()}
    names = list(policies) if policies else list(sc.targets())
    unknown = [p for p in names if p not in every]
    if unknown:
        raise CouponmixError(f"unknown policy {unknown[0]!r}; the scenario has {', '.join(every)}")
    q = sc.oof_reward_model()  # type: ignore[attr-defined]
    specs = real_log_estimators(sc)
    binary = bool(sc.binary)  # type: ignore[attr-defined]
    res: dict = {}
    for name in names:
        pe = sc.on_log(name)  # type: ignore[attr-defined]
        res[name] = {}  # (policies learned from the log are taken out of fold: CalibratedScenario.on_log)
        for spec in specs:
            raw, half = obp_estimate(spec, log, pe, q)
            point, low, high, note = raw, raw - half, raw + half, None
            if binary:  # a rate: it and its interval stay in [0, 1] (a doubly robust estimate can step outside)
                point, low, high = (min(max(v, 0.0), 1.0) for v in (raw, low, high))
            c = row_weights(spec, log, pe)
            w = row_weights(EstimatorSpec("ips", weights=spec.weights), log, pe) if spec.weight_fn != "zero" else c
            dropped = float((w - c).sum() / w.sum()) if w.sum() > 0 else 0.0
            if not c.any():  # DM, or a switch estimator whose weights all lie above its threshold
                note = UNWEIGHTED_NOTE
            elif dropped > 1e-12:
                note = CUT_WEIGHTS_NOTE
            elif half == 0:
                # every row's term is the same (no matched row had a reward above the rest): the spread says
                # nothing, so the upper end is the rule of three on the largest weight times the reward range
                high = point + 3 * float(c.max()) * float(np.ptp(log["reward"])) / len(c)
                note = RULE_OF_THREE_NOTE
            res[name][spec.name] = PolicyEstimate(
                estimate=point,
                unclamped_estimate=raw if raw != point else None,
                low=low,
                high=high,
                obp=spec.obp_name(),
                plain=spec.plain,
                note=note,
                weight_dropped=dropped if note == CUT_WEIGHTS_NOTE else None,
            )
    loggers = list(sc.meta["card"].get("components_in_log") or []) if sc.loggers > 1 else []  # type: ignore[attr-defined]
    weighting = EstimateResult.weighting
    if loggers:
        weighting = sc.meta["card"].get("multi_logger") or weighting  # type: ignore[attr-defined]
        if log["pscore_avg"] is not None:
            weighting += "; the naive forms weight each row by its own logger's propensity"
        else:
            weighting += "; only the naive forms (each row weighted by its own logger's propensity) and DM are run"
    result = EstimateResult(str(scenario_folder), len(log["action"]), res, loggers, weighting, sc.warnings())
    if out is not None:
        _write_estimate(result, out)
    return result

"""A study's result as typed records, and the one place that turns it into summary.json and back.

``StudySummary`` is what ``run_study`` computes and what the report, the CLI and the batch index read
(by attribute, checked by mypy), and ``to_json`` / ``from_json`` are its only serialisation. Field order
is the key order of summary.json. Every block is a record; those whose layout belongs to another module (the
criterion's per-target detail, the curves, the weights' verdicts, a calibration's diagnostics) are defined
where they are made. What stays a mapping is keyed by names (policies, actions, log sizes) or has keys that
differ by source: an estimator's settings, a verdict's evidence, a calibrated folder's data card.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from couponmix.dataset.calibration import CalibrationDiagnostics
from couponmix.dataset.types import ModelReport, VerdictInfo
from couponmix.decide.contextual_types import ContextualBlock
from couponmix.decide.curves import ExplorationCurve, LogSizeCurve
from couponmix.decide.planner import StudyPlan
from couponmix.decide.stability import RecommendationSpread
from couponmix.decide.value import DecisionBlock, Payback
from couponmix.infra.records import OPTIONAL, Record, plain
from couponmix.ope.criterion import EstimatorErrors, PromiseUncertainty, TargetError
from couponmix.ope.real_log import LogEstimate
from couponmix.studies.config import StudyInfo

__all__ = [
    "SUMMARY_FORMAT",
    "Record",
    "TargetPrecision",
    "Headline",
    "PolicyInfo",
    "CriterionInfo",
    "Recommended",
    "FloorMix",
    "NoExploration",
    "SampleSizeLaw",
    "UnexploredTarget",
    "RevenueCost",
    "Production",
    "IpsVariance",
    "OptimiserInfo",
    "ExploitRegret",
    "CalibratedBlock",
    "StudySummary",
    "to_json",
    "from_json",
    "from_doc",
]

#: the layout of summary.json: a batch reruns a finished study whose summary has another layout
SUMMARY_FORMAT = 5


@dataclass
class TargetPrecision(Record):
    """How precisely the log will measure one future policy at the recommended mix."""

    #: the promised error, a root mean squared error in the reward's unit per customer (robust: sampling error plus
    #: the bound on the part resting on the model)
    rmse: float
    sampling_error: float  #: the part a log shows itself (a standard deviation, reward's unit), falling like 1/sqrt(n)
    #: the part that rests on the revenue model, sqrt(rmse^2 - sampling_error^2) (reward's unit; 0 when none does)
    model_dependent: float
    model_bias_bound: float  #: the bound on the bias resting on the revenue model's error (reward's unit)
    estimator: str  #: the estimator's name (``couponmix.ope.estimators``)
    estimator_plain: str  #: the same in plain words
    #: the policy's value per customer (reward's unit) on the evaluation sample: the simulator's truth, or the
    #: calibrated model's estimate on a team's own log
    true_value: float
    logs_show_all: bool  #: the mix logs every action the policy takes
    promise_se: float  #: standard error of ``rmse`` itself (reward's unit), from the finite evaluation sample or log
    #: the 95% interval's half-width in the reward's unit: the estimate lies within it of the policy's value with
    #: at least 95% probability (|computed bias| + model_bias_bound + 1.96 sampling_error)
    interval_95: float
    interval_95_pct: float | None  #: the same as a percent of the policy's value (None when the value is 0)


@dataclass
class Headline(Record):
    """The numbers a reader needs first.

    Attributes
    ----------
    exploration_rate : float
        Share of traffic away from the revenue-best component, a fraction in [0, 1].
    revenue_best_component, exploration_definition : str
        The component exploration is measured against, and what "exploration" means here in words.
    revenue_per_customer : float
        Expected reward per customer at the recommended mix (reward's unit).
    revenue_cost_per_10k_customers : float
        Reward given up per 10,000 customers against no exploration (reward's unit).
    revenue_cost_pct : float or None
        The same as a percent of the no-exploration revenue.
    log_size : int
        Customers in the log the promise is for; ``log_days`` the days of traffic that takes.
    tolerance : float or None
        The error (RMSE, reward's unit) a plan was asked for; ``log_size_needed`` and ``log_days_needed`` the
        customers and days the recommended mix needs for it.
    worst_error : float
        RMSE for analysts: the criterion's error, its aggregate over future policies (reward's unit).
    criterion : str
        The criterion's label.
    precision : dict of str to TargetPrecision
        Per future policy.
    worst_interval_95_pct : float or None
        The widest 95% half-width over future policies, as a percent of that policy's value.
    """

    exploration_rate: float
    revenue_best_component: str
    exploration_definition: str
    revenue_per_customer: float
    revenue_cost_per_10k_customers: float
    revenue_cost_pct: float | None
    log_size: int
    log_days: float
    tolerance: float | None
    log_size_needed: float | None
    log_days_needed: float | None
    worst_error: float  # RMSE, for analysts: the criterion's error (its aggregate over future policies)
    criterion: str
    precision: dict[str, TargetPrecision]
    worst_interval_95_pct: float | None  # the widest 95% half-width over future policies, percent of its value


@dataclass
class PolicyInfo(Record):
    """One policy of the study for summary.json's ``policies`` block."""

    role: str  #: "logging component", "target" or "reference"
    description: str  #: the policy in plain words
    #: revenue per customer on the evaluation sample (reward's unit; a model estimate on a calibrated scenario)
    value: float
    #: a calibrated scenario's real log: the estimate from the log itself (``couponmix.ope.real_log``)
    log_estimate: LogEstimate | None = field(default=None, metadata=OPTIONAL)


@dataclass
class CriterionInfo(Record):
    """How the error of each future policy is measured (``couponmix.ope.criterion``)."""

    label: str  #: the criterion in words
    error: str  #: "robust" or "simulator"
    candidates: dict[str, dict]  #: the candidate estimators by name (their settings and obp's name)
    reason: str  #: why these candidates, in words
    assumption: str  #: what the robust error assumes about the reward model, in words
    model_error: dict[str, float]  #: per action, the reward model's error (RMSE, reward's unit per customer)
    model_error_source: str  #: where that error comes from, in words
    reward_model: str  #: the reward model the estimators use, in words
    used_at_recommended: list[str]  #: the estimators chosen at the recommended mix
    #: where the second moments behind the sampling error come from (a real log's rows, or the world's model)
    second_moments: str | None = field(default=None, metadata=OPTIONAL)


@dataclass
class Recommended(Record):
    """The recommended mixture (summary.json's ``recommended``).

    Attributes
    ----------
    alpha : dict of str to float
        The mixture, fractions summing to 1.
    revenue : float
        Reward per customer.
    ope_rmse, ope_rmse_per_target : float, dict of str to float
        The criterion's error (RMSE, reward's unit per customer), aggregated over the future policies and per policy.
    targets : dict of str to TargetError
        Per future policy: the estimator chosen, its error and the parts of it.
    rule, note : str
        The rule that chose it ("knee", "max_rmse" or "payback") and why, in words.
    max_rmse, meets_max_rmse : float, bool or None
        With ``max_rmse``: the bound, and whether the mixture meets it (None when the payback rule chose it).
    """

    alpha: dict[str, float]
    revenue: float
    ope_rmse: float
    ope_rmse_per_target: dict[str, float]
    targets: dict[str, TargetError]  # per target: the criterion's detail (``Criterion.describe``) and promise_se
    rule: str
    note: str
    max_rmse: float | None = field(default=None, metadata=OPTIONAL)
    meets_max_rmse: bool | None = field(default=None, metadata=OPTIONAL)


@dataclass
class FloorMix(Record):
    """The most revenue the floors allow (every logging policy keeps at least ``floor`` of the traffic,
    ``--floor``): a separate choice from exploration, with its own cost against no exploration.

    Attributes
    ----------
    floor : float
        Every logging policy's minimum share, a fraction.
    alpha : dict of str to float
        The mixture, fractions summing to 1.
    revenue, revenue_cost_per_customer : float
        Reward per customer, and what it gives up against no exploration (reward's unit).
    ope_rmse, ope_rmse_per_target
        The criterion's error there (RMSE, reward's unit), aggregated and per future policy.
    """

    floor: float  # every logging policy's minimum share, a fraction
    alpha: dict[str, float]
    revenue: float  # per customer
    revenue_cost_per_customer: float  # against no exploration, in the reward's unit
    ope_rmse: float
    ope_rmse_per_target: dict[str, float]


@dataclass
class RevenueCost(Record):
    """What the recommended mix gives up, per customer, against the one baseline: no exploration.

    Attributes
    ----------
    baseline : str
        "no exploration (exploit alone)".
    baseline_revenue : float
        Reward per customer with no exploration (reward's unit).
    per_customer : float
        Reward given up per customer (reward's unit); ``std_error`` its standard error.
    cost_pct : float or None
        The same as a percent of the baseline's revenue.
    """

    baseline: str  # "no exploration (exploit alone)"
    baseline_revenue: float  # per customer with no exploration
    per_customer: float  # in the reward's unit
    cost_pct: float | None  # percent of the baseline's revenue
    std_error: float  # of per_customer


@dataclass
class Production(Record):
    """What to do in production: the mixture, what to log, the estimator for each future policy.

    Attributes
    ----------
    exploration_rate : float or None
        Share of traffic to exploration, a fraction.
    mixture : dict of str to float
        Each logging component's share, fractions summing to 1.
    log_per_customer : list of str
        What to record beside each coupon sent.
    explore_description : str or None
        The exploration policy in words.
    estimators, estimator_reason, estimator_comparison
        The estimator to read for each future policy, why, and every candidate's error.
    """

    exploration_rate: float | None
    mixture: dict[str, float]
    log_per_customer: list[str]
    explore_description: str | None
    estimators: dict[str, dict]
    estimator_reason: str
    estimator_comparison: dict[str, EstimatorErrors]


@dataclass
class UnexploredTarget(Record):
    """What logs of the revenue-best component alone can say about one future policy.

    Attributes
    ----------
    status : str
        "supported" (the logs show every action it takes) or "unsupported".
    rmse : float
        The criterion's error there (reward's unit per customer); ``estimator`` the estimator that attains it.
    sampling_error, model_dependent, unsupported_mass, explanation
        Unsupported only: the part the log shows, the part resting on the model (reward's unit), the share of
        the policy's probability on actions never logged, and the same in words.
    """

    status: str
    rmse: float
    estimator: str
    sampling_error: float | None = field(default=None, metadata=OPTIONAL)
    model_dependent: float | None = field(default=None, metadata=OPTIONAL)
    unsupported_mass: float | None = field(default=None, metadata=OPTIONAL)
    explanation: str | None = field(default=None, metadata=OPTIONAL)


@dataclass
class NoExploration(Record):
    """The revenue-best component alone, with no mixing: its revenue and what OPE can say from its logs.

    Attributes
    ----------
    component : str
    alpha : dict of str to float
        The mixture (1 on ``component``).
    revenue : float
        Reward per customer (reward's unit).
    worst_error : float
        The criterion's aggregate error over future policies (reward's unit).
    targets : dict of str to UnexploredTarget
    """

    component: str
    alpha: dict[str, float]
    revenue: float
    worst_error: float
    targets: dict[str, UnexploredTarget]


@dataclass
class SampleSizeLaw(Record):
    """The error at the recommended mix for several log sizes, from one computation.

    Attributes
    ----------
    holds : bool
        Whether the law holds (a finite variance for the estimators the criterion may choose).
    formula : str
        The law in words.
    rmse_by_log_size, estimator_by_log_size : dict of str to dict
        Per log size (as a string: JSON keys), per future policy, the criterion's error (reward's unit) and the
        estimator it chooses there.
    plain_ips : dict or None
        Where plain IPS has infinite variance: why no law holds for it, and the growth of its second-moment
        estimate with the sample size (``ope.divergence.growth``).
    """

    holds: bool
    formula: str
    rmse_by_log_size: dict[str, dict[str, float]]
    estimator_by_log_size: dict[str, dict[str, str]]
    plain_ips: dict | None = field(default=None, metadata=OPTIONAL)


@dataclass
class IpsVariance(Record):
    """Whether plain IPS has a finite variance for each future policy (summary.json's ``ips_variance``)."""

    applies_to: str  #: the mixtures the verdicts in ``targets`` hold for, in words
    targets: dict[str, VerdictInfo]  #: per future policy, at the centre of the simplex
    at_recommended: dict[str, VerdictInfo]  #: per future policy, at the recommended mix


@dataclass
class OptimiserInfo(Record):
    """How the front was found (summary.json's ``optimiser``)."""

    algorithm: str  #: in words
    pop_size: int  #: NSGA-II population
    generations: int  #: NSGA-II generations
    front_points: int  #: mixtures on the front


@dataclass
class ExploitRegret(Record):
    """What the exploit policy gives up against the oracle that knows the truth (reward's unit per customer)."""

    per_customer: float  #: the oracle's value minus the exploit policy's
    oracle_gap_pct: float  #: the same as a percent of the oracle's value


@dataclass
class CalibratedBlock(Record):
    """What a scenario calibrated from a team's own log says about its world (summary.json's ``calibrated``)."""

    world: str | None  #: "model" or "means" (per-action averages: customers treated alike)
    fallback: str | None  #: what a model no better than the means falls back to (means, refuse, model)
    #: the folder's data card (calibration.json's ``card``: the log's source, rows, actions, features, reward, propensities),
    #: kept as the folder wrote it: its keys differ between the couponmix versions that wrote folders
    card: dict | None
    diagnostics: CalibrationDiagnostics | None  #: the reward model against the per-action means, out of fold
    warnings: list[str]  #: the calibration's and the honesty gate's, in plain words
    values: str  #: what the values are, in words (model estimates, or estimates corrected by the log)


@dataclass
class StudySummary(Record):
    """Everything a study computed; ``to_json`` writes it as summary.json."""

    summary_format: int  #: the layout's version (``SUMMARY_FORMAT``)
    study: StudyInfo | None = field(metadata=OPTIONAL)  #: the study's settings (``StudyConfig.info``)
    scenario: str  #: the scenario's name
    scenario_description: str  #: the scenario in words
    n: int  #: customers in the log the promises are for
    seed: int  #: the study's draws
    world_seed: int  #: the simulated world's seed
    evaluation_sample_size: int  #: customers in the evaluation sample
    criterion: CriterionInfo  #: how each future policy's error is measured
    aggregate: str  #: "max" or "mean": how per-target errors combine
    floors: dict[str, float]  #: each component's least share of traffic
    policies: dict[str, PolicyInfo]  #: every policy by name
    variance_finite: dict[str, bool]  #: per future policy, whether plain IPS has a finite variance
    ips_variance: IpsVariance  #: the verdicts behind ``variance_finite``
    recommended: Recommended  #: the recommended mixture
    floor_mix: FloorMix  #: the most revenue the floors allow
    revenue_cost: RevenueCost  #: what the recommended mix gives up against no exploration
    promise_uncertainty: PromiseUncertainty  #: how much the promises depend on the evaluation sample
    no_exploration: NoExploration  #: the revenue-best component alone
    production: Production  #: what to do in production
    optimiser: OptimiserInfo  #: how the front was found
    warnings: list[str]  #: in plain words
    revenue_model: ModelReport | None = field(metadata=OPTIONAL)  #: a simulated world's revenue model (None: none)
    sample_size_law: SampleSizeLaw  #: the error at the recommended mix for several log sizes
    exploration_curve: ExplorationCurve  #: revenue and each future policy's error by exploration rate
    log_size_curve: LogSizeCurve  #: error by log size at the recommended mix
    plan: StudyPlan | None = field(metadata=OPTIONAL)  #: with a tolerance: the least-cost plan
    headline: Headline  #: the numbers a reader needs first
    #: what the exploit policy gives up against the oracle, where the scenario has one
    exploit_regret: ExploitRegret | None = field(default=None, metadata=OPTIONAL)
    #: a scenario calibrated from a real log; absent for simulators
    calibrated: CalibratedBlock | None = field(default=None, metadata=OPTIONAL)
    #: exploration rates that vary by customer (``--contextual``): the rule at each precision, both fronts
    contextual: ContextualBlock | None = field(default=None, metadata=OPTIONAL)
    #: the decision a log supports (``decide.value.decision_summary``): at the recommended mix and without
    #: exploration, the chance of deploying the truly best policy and the regret, for two deployment rules
    decision: DecisionBlock | None = field(default=None, metadata=OPTIONAL)
    #: ``--horizon-days``: what a log is worth over the horizon at each mix and log size, and the best
    #: (``decide.value.payback``); the recommendation is then its mix
    payback: Payback | None = field(default=None, metadata=OPTIONAL)
    #: the reward's unit ('EUR'), from the market config's ``currency`` or the log mapping's ``reward_unit``
    reward_unit: str | None = field(default=None, metadata=OPTIONAL)
    #: how much the recommended mix moves when the evaluation sample's customers are resampled (the knee and the
    #: error-limit rules; ``decide.stability``)
    recommendation_spread: RecommendationSpread | None = field(default=None, metadata=OPTIONAL)

    def unit(self) -> str:
        """The reward's unit where the scenario names it (a market config's ``currency``, a log mapping's
        ``reward_unit``, kept in a calibrated scenario's card), else ''."""
        card = self.calibrated.card if self.calibrated is not None else None
        return self.reward_unit or (card or {}).get("reward_unit") or ""


def to_json(summary: StudySummary | dict) -> str:
    """summary.json's text: two-space indent, no NaN, a final newline.

    Parameters
    ----------
    summary : StudySummary or dict
        A summary, or a document of plain values.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        A NaN or infinite number.
    """
    doc = summary.to_dict() if isinstance(summary, Record) else plain(summary)
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def from_json(text: str | bytes) -> StudySummary:
    """A summary.json read back.

    Parameters
    ----------
    text : str or bytes
        summary.json's text.

    Returns
    -------
    StudySummary

    Raises
    ------
    ValueError or KeyError
        Not JSON, or another layout.
    """
    return from_doc(json.loads(text))


def from_doc(doc: object) -> StudySummary:
    """A parsed summary.json as a ``StudySummary``.

    Parameters
    ----------
    doc : object
        The parsed JSON document.

    Returns
    -------
    StudySummary

    Raises
    ------
    ValueError or KeyError
        Another layout (not a mapping, another ``summary_format``, or missing or damaged blocks).
    """
    if not isinstance(doc, dict) or doc.get("summary_format") != SUMMARY_FORMAT:
        raise ValueError("not a summary.json of this couponmix version")
    return StudySummary.from_dict(doc)

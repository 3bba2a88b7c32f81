"""Study files: one YAML file describes one campaign study.

Every key is optional; what is left out takes the command line's default::

    title: Spring win-back campaign        # shown in the report and the batch index
    description: Reactivate lapsed app users with a coupon mail.
    scenario: market                       # any of `couponmix scenarios`
    scenario_config:                       # the scenario's own parameters, validated by the scenario; for the
      exploit:                             # market (simulators/configs/market.yaml) merged over its defaults
        budget: {max_coupon_share: 0.3}    # (``market:`` is accepted as another name for it)
    n: 100000                              # customers in the future evaluation log
    daily_traffic: 20000                   # customers per day, to read log sizes as days
    seed: 1                                # this study's draws: evaluation sample, optimiser, logs
    world_seed: 0                          # the simulated world: market history, revenue model, budgets
    estimator: {name: clipped_ips, lambda: 10}   # or just: ips (default: the most precise per policy)
    tolerance: 0.5                         # plan: least exploration with RMSE <= tolerance for every target
    max_rmse: 0.6                          # recommend the highest-revenue mix with RMSE <= max_rmse
    floor: 0.01                            # every component's minimum share of traffic
    aggregate: max                         # combine per-target RMSEs by max or mean
    eval_size: 100000                      # covariate sample for the exact objectives
    optimiser: {pop_size: 100, generations: 100}

A file with none of these keys but market parameters at the top level (the format of
``simulators/configs/market.yaml``) is a market config, as before; mixing both is an error.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from couponmix.dataset.scenario import get_scenario
from couponmix.errors import CouponmixError
from couponmix.infra.atomic import check_name
from couponmix.infra.records import OPTIONAL, Record
from couponmix.infra.safeyaml import load_yaml_file
from couponmix.infra.schema import Int, Positive, PositiveReal, Schema, parse
from couponmix.infra.validation import check_positive_float, check_positive_int
from couponmix.ope.estimators import EstimatorSpec
from couponmix.ope.objectives import AGGREGATES, DEFAULT_EVAL_SIZE

__all__ = [
    "DEFAULT_FLOOR",
    "DEFAULT_DAILY_TRAFFIC",
    "STUDY_KEYS",
    "SUFFIXES",
    "MAX_TEXT",
    "StudyConfig",
    "StudyInfo",
    "is_study",
    "load_study",
    "StudyFile",
    "study_files",
]

DEFAULT_FLOOR = 0.01
DEFAULT_DAILY_TRAFFIC = 10_000
STUDY_KEYS = (
    "title",
    "description",
    "scenario",
    "scenario_config",
    "market",
    "n",
    "daily_traffic",
    "seed",
    "world_seed",
    "estimator",
    "tolerance",
    "max_rmse",
    "horizon_days",
    "floor",
    "aggregate",
    "eval_size",
    "optimiser",
    "contextual",
)
#: the largest evaluation sample and optimiser sizes a study takes (from the command line or a study file)
MAX_EVAL_SIZE = 50_000_000
MAX_OPTIMISER = 100_000
SUFFIXES = (".yaml", ".yml")
#: the longest title or description a study file may give (they are shown in reports and indexes)
MAX_TEXT = 2_000


@dataclass(frozen=True)
class StudyConfig:
    """Everything one study needs. ``scenario_config`` is the scenario's parameters (a dict, or a path to a
    parameter file such as a market config), validated by the scenario itself.

    Raises
    ------
    CouponmixError
        On construction, a setting out of its range (negative seeds, n, daily_traffic, tolerance, max_rmse or
        horizon_days not positive, an unknown aggregate or contextual, eval_size, pop_size or generations out of
        range, a floor outside [0, 1)).
    """

    name: str = "study"  #: the study's name (its file's stem): the name of its output folder
    title: str | None = None  #: shown in the report and the batch index
    description: str | None = None  #: shown under the title
    scenario: str = "market"  #: a name from ``couponmix scenarios``, or a scenario folder
    scenario_config: dict | str | None = None  #: the scenario's own parameters, or a path to a parameter file
    n: int | None = None  #: customers in the future evaluation log (None: the scenario's default)
    daily_traffic: float = DEFAULT_DAILY_TRAFFIC  #: customers per day, to read log sizes as days
    seed: int = 0  #: this study's draws: evaluation sample, optimiser, logs
    world_seed: int = 0  #: the simulated world's seed
    estimator: EstimatorSpec | None = None  #: one estimator forced for every target (None: the criterion chooses)
    tolerance: float | None = None  #: plan: error every target must reach (reward's unit per customer)
    max_rmse: float | None = None  #: recommend the highest revenue with error <= this (reward's unit per customer)
    horizon_days: float | None = None  #: recommend the mix and log size with the most net revenue over this many days
    contextual: str | None = None  #: also compare rates that vary by customer: segment, margin, logistic or feature:NAME
    floor: float = DEFAULT_FLOOR  #: every component's minimum share of traffic, in [0, 1)
    aggregate: str = "max"  #: combine per-target errors by "max" or "mean"
    eval_size: int = DEFAULT_EVAL_SIZE  #: customers in the evaluation sample of the exact objectives
    pop_size: int = 100  #: NSGA-II population
    generations: int = 100  #: NSGA-II generations
    source: str | None = field(default=None, compare=False)  #: the study file's path (None: the command line)

    def __post_init__(self):
        check_positive_int(self.seed, "seed", minimum=0)
        check_positive_int(self.world_seed, "world_seed", minimum=0)
        if self.n is not None:
            check_positive_int(self.n, "n")
        check_positive_float(self.daily_traffic, "daily_traffic")
        for name, flag in (("tolerance", "--tol"), ("max_rmse", "--max-rmse"), ("horizon_days", "--horizon-days")):
            if getattr(self, name) is not None:
                check_positive_float(getattr(self, name), f"{name} ({flag})")
        if self.aggregate not in AGGREGATES:
            raise CouponmixError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {self.aggregate!r}")
        check_positive_int(self.eval_size, "eval_size (--eval-size)", minimum=100, maximum=MAX_EVAL_SIZE)
        check_positive_int(self.pop_size, "pop_size (--pop-size)", minimum=4, maximum=MAX_OPTIMISER)
        check_positive_int(self.generations, "generations (--generations)", maximum=MAX_OPTIMISER)
        if self.contextual is not None and not (
            self.contextual in ("segment", "margin", "logistic") or (self.contextual.startswith("feature:") and len(self.contextual) > 8)
        ):
            raise CouponmixError(f"contextual must be segment, margin, logistic or feature:NAME, got {self.contextual!r}")
        if not (isinstance(self.floor, (int, float)) and 0 <= self.floor < 1):
            raise CouponmixError(f"floor must be a number in [0, 1), got {self.floor!r}")

    def build_scenario(self):
        """The study's scenario: its name or folder, its parameters and its world seed.

        Returns
        -------
        Scenario

        Raises
        ------
        CouponmixError
            An unknown scenario, a bad folder, or parameters the scenario refuses.
        """
        return get_scenario(self.scenario, config=self.scenario_config, seed=self.world_seed)

    def with_overrides(self, **values) -> StudyConfig:
        """A copy with the given fields replaced; None means 'keep the file's value'.

        Parameters
        ----------
        **values
            Field names and their new values (None: keep).

        Returns
        -------
        StudyConfig
            Checked again (``__post_init__``).
        """
        return dataclasses.replace(self, **{k: v for k, v in values.items() if v is not None})

    def info(self) -> StudyInfo:
        """The study's settings as summary.json echoes them: the estimator by name, a scenario config given inline as
        'given in the study file', ``contextual`` only when set."""
        return StudyInfo(
            name=self.name,
            title=self.title,
            description=self.description,
            scenario=self.scenario,
            n=self.n,
            daily_traffic=self.daily_traffic,
            seed=self.seed,
            world_seed=self.world_seed,
            tolerance=self.tolerance,
            max_rmse=self.max_rmse,
            horizon_days=self.horizon_days,
            floor=self.floor,
            aggregate=self.aggregate,
            eval_size=self.eval_size,
            pop_size=self.pop_size,
            generations=self.generations,
            source=self.source,
            estimator=None if self.estimator is None else self.estimator.name,
            scenario_config=self.scenario_config if isinstance(self.scenario_config, (str, type(None))) else "given in the study file",
            contextual=self.contextual,
        )


@dataclass
class StudyInfo(Record):
    """A study's settings as summary.json's ``study`` block echoes them (``StudyConfig.info``)."""

    name: str  #: as ``StudyConfig``'s fields of the same names
    title: str | None
    description: str | None
    scenario: str
    n: int | None  #: customers
    daily_traffic: float  #: customers per day
    seed: int
    world_seed: int
    tolerance: float | None  #: reward's unit per customer
    max_rmse: float | None  #: reward's unit per customer
    horizon_days: float | None  #: days
    floor: float  #: a share of traffic
    aggregate: str
    eval_size: int  #: customers
    pop_size: int
    generations: int
    source: str | None  #: the study file's path
    estimator: str | None  #: the forced estimator's name (None: the criterion chooses)
    scenario_config: str | None  #: a parameter file's path, or "given in the study file"
    contextual: str | None = field(default=None, metadata=OPTIONAL)  #: only when set


def _read_yaml(path: Path) -> dict:
    doc = load_yaml_file(path)
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise CouponmixError(f"config file {path}: the top level must be a mapping of keys to values")
    return doc


class _Estimator(Schema):
    name: Annotated[str, Field(max_length=64)] = Field(description="estimator kind (see couponmix.ope.estimators)")
    lambda_: Positive | None = Field(default=None, alias="lambda", description="clipping threshold")
    weights: Literal["balanced", "naive"] = Field(default="balanced", description="balanced or naive weights")


class _Optimiser(Schema):
    pop_size: Int = Field(default=100, ge=4, le=MAX_OPTIMISER, description="NSGA-II population")
    generations: Int = Field(default=100, ge=1, le=MAX_OPTIMISER, description="NSGA-II generations")


def _plain_text(value: str) -> str:
    """A title or description: text a report and a spreadsheet show, so no control characters (a newline in
    a description is fine; NUL, escapes and the like are refused)."""
    bad = next((c for c in value if not (c.isprintable() or c in "\n\t")), None)
    if bad is not None:
        raise ValueError(f"holds the control character {bad!r}: remove it")
    return value


Text = Annotated[str, Field(max_length=MAX_TEXT), AfterValidator(_plain_text)]


class StudyFile(Schema):
    """The keys of a study file (all optional), checked before any work."""

    title: Text | None = Field(default=None, description="shown in the report and the batch index")
    description: Text | None = Field(default=None, description="shown under the title")
    scenario: Annotated[str, Field(min_length=1, max_length=4096)] | None = Field(
        default=None, description="a name from `couponmix scenarios`, or a scenario folder"
    )
    scenario_config: dict | None = Field(default=None, description="the scenario's own parameters")
    market: dict | None = Field(default=None, description="older name of scenario_config for the market")
    n: Int | None = Field(default=None, ge=1, description="customers in the future evaluation log")
    daily_traffic: PositiveReal | None = Field(default=None, description="customers per day")
    seed: Int | None = Field(default=None, ge=0, description="this study's draws")
    world_seed: Int | None = Field(default=None, ge=0, description="the simulated world")
    estimator: Annotated[_Estimator, BeforeValidator(lambda v: {"name": v} if isinstance(v, str) else v)] | None = Field(
        default=None, description="force one estimator: a name or {name, lambda, weights}"
    )
    tolerance: PositiveReal | None = Field(default=None, description="plan: error every future policy must reach")
    max_rmse: PositiveReal | None = Field(default=None, description="recommend the highest revenue with error <= this")
    horizon_days: PositiveReal | None = Field(
        default=None, description="recommend the mix and log size with the most net revenue over this many days after logging"
    )
    floor: Annotated[float, Field(ge=0, lt=1)] | None = Field(default=None, description="every component's minimum share")
    aggregate: Literal["max", "mean"] | None = Field(default=None, description="combine per-target errors")
    eval_size: Int | None = Field(default=None, ge=100, le=MAX_EVAL_SIZE, description="covariate sample size")
    optimiser: _Optimiser | None = Field(default=None, description="NSGA-II settings")
    contextual: Annotated[str, Field(max_length=200)] | None = Field(
        default=None, description="also compare exploration rates that vary by customer: segment, margin, logistic or feature:NAME"
    )


def is_study(doc: dict) -> bool:
    """True when the YAML mapping has a study key (``STUDY_KEYS``); else it is read as market parameters.

    Parameters
    ----------
    doc : dict
        A YAML file's top-level mapping.

    Returns
    -------
    bool
    """
    return any(k in STUDY_KEYS for k in doc)


def load_study(path) -> StudyConfig:
    """Read and check a study file (an empty file is an empty study); a file with market parameters at
    the top level becomes a market study with that config.

    Parameters
    ----------
    path : str or Path
        The study file; its stem names the study.

    Returns
    -------
    StudyConfig

    Raises
    ------
    CouponmixError
        An unreadable file, a top level that is not a mapping, unknown keys, values that do not check, or both
        scenario_config and market (or market parameters for another scenario).
    """
    path = Path(path)
    doc = _read_yaml(path)
    name = path.stem
    if doc and not is_study(doc):
        return StudyConfig(name=name, scenario_config=str(path), source=str(path))
    unknown = sorted(set(doc) - set(STUDY_KEYS))
    if unknown:
        raise CouponmixError(
            f"{path}: unknown key(s) {', '.join(unknown)}; a study file takes "
            f"{', '.join(STUDY_KEYS)} (scenario parameters go under scenario_config:)"
        )
    study = parse(StudyFile, doc, str(path))
    kw = {k: v for k, v in study.model_dump(exclude={"estimator", "optimiser", "market"}).items() if v is not None}
    if study.market is not None:
        if study.scenario_config is not None:
            raise CouponmixError(f"{path}: give scenario_config or market (its older name), not both")
        if (study.scenario or "market") != "market":
            raise CouponmixError(f"{path}: market parameters given but scenario is {study.scenario!r}")
        kw["scenario_config"] = study.market
    if study.estimator is not None:
        kw["estimator"] = EstimatorSpec.parse(study.estimator.name, study.estimator.lambda_, study.estimator.weights)
    if study.optimiser is not None:
        kw.update(pop_size=study.optimiser.pop_size, generations=study.optimiser.generations)
    return StudyConfig(name=name, source=str(path), **kw)


def study_files(folder) -> list[Path]:
    """The study files of a folder, sorted by name; names must be distinct once the suffix is dropped.

    Parameters
    ----------
    folder : str or Path

    Returns
    -------
    list of Path
        Its .yaml and .yml files (hidden files left out).

    Raises
    ------
    CouponmixError
        Not a folder, no study files, a link leading outside the folder, a name unusable for an output folder,
        or two files for one study.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CouponmixError(f"study folder {folder} does not exist or is not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file() and not p.name.startswith("."))
    inside = folder.resolve()
    for p in files:  # a link is followed only when it stays in the study folder
        if p.is_symlink() and not p.resolve().is_relative_to(inside):
            raise CouponmixError(
                f"study file {p.name} links to {p.resolve()}, outside the study folder {folder}: copy the file into the folder instead"
            )
    if not files:
        raise CouponmixError(f"study folder {folder} holds no .yaml or .yml files")
    for p in files:  # each study becomes a folder named after its file
        check_name(p.stem, f"study file {p.name!r}: its name")
    stems = [p.stem for p in files]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise CouponmixError(f"study folder {folder}: two files for study {dup[0]!r} (.yaml and .yml)")
    return files

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

import numpy as np

from couponmix.errors import CouponmixError
from couponmix.infra.safeyaml import load_yaml_file
from couponmix.infra.validation import check_positive_float, check_positive_int
from couponmix.ope.estimators import KINDS, EstimatorSpec
from couponmix.ope.objectives import AGGREGATES, DEFAULT_EVAL_SIZE

__all__ = ['DEFAULT_FLOOR', 'DEFAULT_DAILY_TRAFFIC', 'STUDY_KEYS', 'OPTIMISER_KEYS', 'SUFFIXES', 'MAX_TEXT',
           'StudyConfig', 'is_study', 'load_study', 'study_files']

DEFAULT_FLOOR = 0.01
DEFAULT_DAILY_TRAFFIC = 10_000
STUDY_KEYS = ("title", "description", "scenario", "scenario_config", "market", "n", "daily_traffic", "seed", "world_seed", "estimator",
              "tolerance", "max_rmse", "floor", "aggregate", "eval_size", "optimiser")
OPTIMISER_KEYS = ("pop_size", "generations")
SUFFIXES = (".yaml", ".yml")
#: the longest title or description a study file may give (they are shown in reports and indexes)
MAX_TEXT = 2_000


@dataclass(frozen=True)
class StudyConfig:
    """Everything one study needs. ``scenario_config`` is the scenario's parameters (a dict, or a path to a
    parameter file such as a market config), validated by the scenario itself."""

    name: str = "study"
    title: str | None = None
    description: str | None = None
    scenario: str = "market"
    scenario_config: dict | str | None = None
    n: int | None = None
    daily_traffic: float = DEFAULT_DAILY_TRAFFIC
    seed: int = 0
    world_seed: int = 0
    estimator: EstimatorSpec | None = None
    tolerance: float | None = None
    max_rmse: float | None = None
    floor: float = DEFAULT_FLOOR
    aggregate: str = "max"
    eval_size: int = DEFAULT_EVAL_SIZE
    pop_size: int = 100
    generations: int = 100
    source: str | None = field(default=None, compare=False)

    def __post_init__(self):
        check_positive_int(self.seed, "seed", minimum=0)
        check_positive_int(self.world_seed, "world_seed", minimum=0)
        if self.n is not None:
            check_positive_int(self.n, "n")
        check_positive_float(self.daily_traffic, "daily_traffic")
        for name, flag in (("tolerance", "--tol"), ("max_rmse", "--max-rmse")):
            if getattr(self, name) is not None:
                check_positive_float(getattr(self, name), f"{name} ({flag})")
        if self.aggregate not in AGGREGATES:
            raise CouponmixError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {self.aggregate!r}")
        check_positive_int(self.eval_size, "eval_size", minimum=100)
        check_positive_int(self.pop_size, "pop_size", minimum=4)
        check_positive_int(self.generations, "generations")
        if not (isinstance(self.floor, (int, float)) and 0 <= self.floor < 1):
            raise CouponmixError(f"floor must be a number in [0, 1), got {self.floor!r}")

    def build_scenario(self):
        """The study's scenario: its name or folder, its parameters and its world seed."""
        from couponmix.dataset.scenario import get_scenario

        return get_scenario(self.scenario, config=self.scenario_config, seed=self.world_seed)

    def with_overrides(self, **values) -> StudyConfig:
        """A copy with the given fields replaced; None means 'keep the file's value'."""
        return dataclasses.replace(self, **{k: v for k, v in values.items() if v is not None})

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("name", "title", "description", "scenario", "n", "daily_traffic",
                                             "seed", "world_seed", "tolerance", "max_rmse", "floor", "aggregate", "eval_size",
                                             "pop_size", "generations", "source")}
        d["estimator"] = None if self.estimator is None else self.estimator.name
        d["scenario_config"] = (self.scenario_config if isinstance(self.scenario_config, (str, type(None)))
                                else "given in the study file")
        return d


def _read_yaml(path: Path) -> dict:
    doc = load_yaml_file(path)
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise CouponmixError(f"config file {path}: the top level must be a mapping of keys to values")
    return doc


def _estimator(value, path) -> EstimatorSpec:
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict) or "name" not in value:
        raise CouponmixError(f"{path}: estimator must be a name ({', '.join(KINDS)}) or {{name: ..., lambda: ...}}")
    unknown = set(value) - {"name", "lambda", "weights"}
    if unknown:
        raise CouponmixError(f"{path}: unknown estimator key(s) {', '.join(sorted(unknown))}")
    return EstimatorSpec.parse(value["name"], value.get("lambda"), value.get("weights", "balanced"))


def is_study(doc: dict) -> bool:
    return any(k in STUDY_KEYS for k in doc)


def load_study(path) -> StudyConfig:
    """Read and check a study file; a bare market config becomes a market study with that config."""
    path = Path(path)
    doc = _read_yaml(path)
    name = path.stem
    if not is_study(doc):
        return StudyConfig(name=name, scenario_config=str(path), source=str(path))
    unknown = sorted(set(doc) - set(STUDY_KEYS))
    if unknown:
        raise CouponmixError(f"{path}: unknown key(s) {', '.join(unknown)}; a study file takes "
                             f"{', '.join(STUDY_KEYS)} (scenario parameters go under scenario_config:)")
    kw = {k: doc[k] for k in STUDY_KEYS if k in doc and k not in ("estimator", "optimiser")}
    for key in ("title", "description", "scenario", "aggregate"):
        if key in kw and not isinstance(kw[key], str):
            raise CouponmixError(f"{path}: {key} must be text, got {type(kw[key]).__name__}")
        if key in kw and len(kw[key]) > MAX_TEXT:
            raise CouponmixError(f"{path}: {key} is longer than {MAX_TEXT:,} characters")
    if "market" in kw:
        if "scenario_config" in kw:
            raise CouponmixError(f"{path}: give scenario_config or market (its older name), not both")
        if kw.get("scenario", "market") != "market":
            raise CouponmixError(f"{path}: market parameters given but scenario is {kw['scenario']!r}")
        kw["scenario_config"] = kw.pop("market")
    if "scenario_config" in kw and not isinstance(kw["scenario_config"], dict):
        raise CouponmixError(f"{path}: scenario_config must be a mapping of the scenario's parameters")
    for key in ("n", "seed", "world_seed", "eval_size"):
        if key in kw and (isinstance(kw[key], bool) or not isinstance(kw[key], int)):
            raise CouponmixError(f"{path}: {key} must be a whole number, got {kw[key]!r}")
    for key in ("daily_traffic", "tolerance", "max_rmse", "floor"):
        if key in kw and (isinstance(kw[key], bool) or not isinstance(kw[key], (int, float))
                          or not np.isfinite(kw[key])):
            raise CouponmixError(f"{path}: {key} must be a number, got {kw[key]!r}")
    if "estimator" in doc:
        kw["estimator"] = _estimator(doc["estimator"], path)
    if "optimiser" in doc:
        opt = doc["optimiser"]
        if not isinstance(opt, dict) or set(opt) - set(OPTIMISER_KEYS):
            raise CouponmixError(f"{path}: optimiser takes {', '.join(OPTIMISER_KEYS)}")
        kw.update(opt)
    return StudyConfig(name=name, source=str(path), **kw)


def study_files(folder) -> list[Path]:
    """The study files of a folder, sorted by name; names must be distinct once the suffix is dropped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CouponmixError(f"study folder {folder} does not exist or is not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file() and not p.name.startswith("."))
    if not files:
        raise CouponmixError(f"study folder {folder} holds no .yaml or .yml files")
    stems = [p.stem for p in files]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise CouponmixError(f"study folder {folder}: two files for study {dup[0]!r} (.yaml and .yml)")
    return files

"""The mapping ``couponmix calibrate`` takes (which columns of a team's log are what, which policies to
fit) and the scenario folder's card file: the lowest layer of calibration, shared by the fit
(``calibration``) and the calibrated world (``calibrated``)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from couponmix.dataset.reallog import ColumnMapping
from couponmix.infra.safeyaml import load_yaml_file
from couponmix.infra.schema import Int, Number, Positive, PositiveInt, Schema, parse

__all__ = ["CARD", "CalibrateConfig", "ModelSettings", "PolicySpec", "load_calibrate_config", "sha256_of"]

CARD = "calibration.json"


def sha256_of(content: str | bytes) -> str:
    """The SHA-256 hex digest of ``content`` (text is encoded as UTF-8).

    Parameters
    ----------
    content : str or bytes

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    return hashlib.sha256(content.encode() if isinstance(content, str) else content).hexdigest()


#: a component or target name: it becomes part of a file name in the scenario folder
POLICY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class ModelSettings(Schema):
    """calibrate's ``model:`` block: cross-fitting folds, the fitted models' LightGBM settings, and (0/1 rewards) the fewest
    positive outcomes to fit an action."""

    folds: Int = Field(default=2, ge=2, le=10, description="cross-fitting folds")
    n_estimators: PositiveInt = Field(default=200, description="LightGBM trees at most (the count is chosen on the folds)")
    patience: PositiveInt | None = Field(
        default=20, description="rounds without a lower held-out error before a fold model stops growing; null grows n_estimators trees"
    )
    learning_rate: Positive = Field(default=0.05, description="LightGBM learning rate")
    num_leaves: Int = Field(default=15, ge=2, le=4096, description="LightGBM leaves per tree")
    min_child_samples: PositiveInt = Field(default=50, description="LightGBM minimum rows per leaf")
    min_positive: PositiveInt = Field(default=10, description="binary rewards: fewest positive outcomes to fit an action")


class PolicySpec(Schema):
    """One component or target of calibrate's config: its ``kind`` and the keys that kind reads."""

    kind: Literal["logged", "fixed", "greedy_model", "softmax_model", "uniform", "rule"] = Field(
        description="logged: the log's own (context-free) logging policy; fixed: given probabilities; "
        "greedy_model / softmax_model: of a LightGBM model fitted on the log; uniform; rule"
    )
    description: str | None = Field(default=None, max_length=2000)
    component: str | None = Field(default=None, description="logged: which logger of the log's component column it rebuilds")
    features: list[str] | None = Field(default=None, description="greedy_model: the model's features (default: all)")
    temperature: Positive | None = Field(default=None, description="softmax_model: temperature (reward units)")
    probabilities: dict[str, Number] | None = Field(default=None, description="fixed: probability per action label")
    feature: str | None = Field(default=None, description="rule: the feature it reads")
    min: Number | None = None  #: rule: applies where the feature is at least this
    max: Number | None = None  #: rule: applies where the feature is at most this
    equals: str | Number | None = None  #: rule: applies where the feature equals this (a category's label or a number)
    action: str | None = Field(default=None, description="rule: the action where it applies")
    otherwise: str | None = Field(default=None, description="rule: the action for everyone else (required)")

    @model_validator(mode="after")
    def _needs(self):
        if self.kind == "fixed" and not self.probabilities:
            raise ValueError("a fixed policy needs probabilities: {action: p, ...}")
        if self.kind == "rule" and (self.feature is None or self.action is None):
            raise ValueError("a rule needs feature: and action:")
        if self.kind == "rule" and self.otherwise is None:
            raise ValueError("a rule needs otherwise: the action for everyone it does not pick (for example the no-coupon action)")
        if self.kind == "softmax_model" and self.temperature is None:
            raise ValueError("a softmax_model needs temperature:")
        return self


def _default_components() -> dict[str, PolicySpec]:
    return {
        "exploit": PolicySpec(kind="greedy_model", description="greedy policy of a LightGBM model fitted on the log"),
        "explore": PolicySpec(kind="uniform", description="uniform over all actions"),
    }


class CalibrateConfig(Schema):
    """The mapping and choices of ``couponmix calibrate`` (a YAML file; ``columns:`` is required)."""

    description: str | None = Field(default=None, max_length=2000, description="shown in reports")
    columns: ColumnMapping
    model: ModelSettings = Field(default_factory=ModelSettings)
    fallback: Literal["means", "refuse", "model"] = Field(
        default="means", description="when the model is no better than per-action means: means, refuse or model"
    )
    components: dict[str, PolicySpec] = Field(default_factory=_default_components, description="logging components")
    targets: dict[str, PolicySpec] = Field(description="future policies to evaluate")
    n: PositiveInt | None = Field(default=None, description="default log size of studies (default: the log's rows)")
    seed: Int = Field(default=0, ge=0, description="seed of the model fits and of thinning a large log")

    @model_validator(mode="after")
    def _policies(self):
        if len(self.components) < 2:
            raise ValueError("components: name two or more logging components")
        if not self.targets:
            raise ValueError("targets: name at least one future policy")
        for where, names in (("components", self.components), ("targets", self.targets)):
            for name in names:
                if not POLICY_NAME.fullmatch(name):
                    raise ValueError(
                        f"{where}: {name!r} is not a usable name (letters, digits, '_' and '-', at most 64, "
                        "starting with a letter or digit): names become file names in the scenario folder"
                    )
        return self


def load_calibrate_config(config) -> CalibrateConfig:
    """The checked ``CalibrateConfig`` from a config, a path to a YAML file or a mapping (one-line errors).

    Parameters
    ----------
    config : CalibrateConfig, str, Path or mapping

    Returns
    -------
    CalibrateConfig
        ``config`` itself when it is one.

    Raises
    ------
    CouponmixError
        An unreadable file, or a config that does not check (in one line).
    """
    if isinstance(config, CalibrateConfig):
        return config
    if isinstance(config, (str, Path)):
        doc = load_yaml_file(Path(config))
        return parse(CalibrateConfig, doc, str(config))
    return parse(CalibrateConfig, config, "calibration config")

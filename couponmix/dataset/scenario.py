"""Scenarios: the protocol couponmix talks to, and the registry that finds them.

A scenario knows the law of the covariates, the conditional reward moments
mu(x, a) = E[r | x, a] and m2(x, a) = E[r^2 | x, a], how to sample rewards, and which logging
components and target policies it offers. couponmix's core only talks to scenarios through this
protocol and never imports a scenario's package.

Scenarios are found, by name, in three places:

- entry points of the group ``couponmix.scenarios`` (``name = "package.module:Class"``) in any installed
  package: this is how ``simulators`` (market, paper, paper_floor) and third-party scenarios plug in,
  and how batch worker processes see them;
- classes registered at run time with ``register`` (visible in this process only);
- a scenario folder on disk, given as a path: ``DIR/scenario.yaml`` with ``kind`` (a registered name)
  and ``config`` (that scenario's parameters, validated by the scenario itself). Folders hold data only;
  no code is loaded from them.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import numpy as np

from couponmix.dataset.types import BanditFeedback, ModelReport, SupportVerdict
from couponmix.errors import CouponmixError
from couponmix.infra.safeyaml import load_yaml_file
from couponmix.policy.policies import Policy

__all__ = ["Scenario", "register", "registered", "get_scenario", "ENTRY_POINT_GROUP", "SCENARIO_FILE"]

ENTRY_POINT_GROUP = "couponmix.scenarios"
SCENARIO_FILE = "scenario.yaml"
#: the scenarios shipped beside couponmix, used when the package's entry points are not installed
BUILTIN = {
    "market": "simulators.market:MarketScenario",
    "paper": "simulators.paper:PaperScenario",
    "paper_floor": "simulators.paper:PaperFloorScenario",
    "calibrated": "couponmix.dataset.calibrated:CalibratedScenario",
}


class Scenario(ABC):
    """Base class for coupon environments with known ground truth.

    Class attributes: ``name``, ``description``, ``action_names``, ``covariate_names``, ``default_n`` (log
    size), and ``takes_config``: True when the constructor takes ``config`` (a dict of parameters, or a
    path to a YAML file, validated by the scenario) and ``seed`` (the world seed).
    """

    name: str = ""  #: the registered name
    description: str = ""  #: the scenario in plain words
    action_names: tuple[str, ...] = ()  #: (A,) the actions' names; action 0 is no coupon
    #: the reward's unit shown beside amounts ('EUR'), or None
    reward_unit: str | None = None
    covariate_names: tuple[str, ...] = ()  #: (d,) the covariates' names
    default_n: int = 10_000  #: the default log size (customers)
    takes_config: bool = False  #: True when the constructor takes ``config`` and ``seed``
    #: True when the constructor also takes ``folder`` (the scenario folder holding the scenario's data)
    takes_folder: bool = False
    #: True for simulators, whose reward means are the truth; False where they are a model's estimates
    ground_truth: bool = True

    @property
    def n_actions(self) -> int:
        """A, the number of actions."""
        return len(self.action_names)

    @abstractmethod
    def sample_covariates(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw n customers' covariates i.i.d. from the scenario's law.

        Parameters
        ----------
        n : int
            Customers.
        rng : numpy.random.Generator

        Returns
        -------
        ndarray, (n, d)
        """

    @abstractmethod
    def mu(self, x: np.ndarray) -> np.ndarray:
        """E[r | x, a] for every action.

        Parameters
        ----------
        x : ndarray, (n, d)
            Covariates.

        Returns
        -------
        ndarray, (n, A)
            Mean reward, in the reward's unit.
        """

    @abstractmethod
    def m2(self, x: np.ndarray) -> np.ndarray:
        """E[r^2 | x, a] for every action.

        Parameters
        ----------
        x : ndarray, (n, d)
            Covariates.

        Returns
        -------
        ndarray, (n, A)
            Second moment of the reward, in the reward's unit squared.
        """

    @abstractmethod
    def sample_rewards(self, x: np.ndarray, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw one reward per customer for the action taken.

        Parameters
        ----------
        x : ndarray, (n, d)
            Covariates.
        actions : ndarray of int, (n,)
            The action taken for each customer.
        rng : numpy.random.Generator

        Returns
        -------
        ndarray, (n,)
            Rewards, in the reward's unit.
        """

    @abstractmethod
    def components(self) -> Mapping[str, Policy]:
        """The logging component policies, in order: K policies by name."""

    @abstractmethod
    def targets(self) -> Mapping[str, Policy]:
        """The candidate future policies to evaluate off-policy: T policies by name."""

    def reference_policies(self) -> Mapping[str, Policy]:
        """Policies whose value is reported but which neither log nor get evaluated (e.g. an oracle)."""
        return {}

    def reward_model(self, x: np.ndarray) -> np.ndarray | None:
        """A learned reward model q(x, .) fixed before logging, for DR-type estimators.

        Parameters
        ----------
        x : ndarray, (n, d)
            Covariates.

        Returns
        -------
        ndarray, (n, A), or None
            Predicted reward of each action, in the reward's unit; None without a model.
        """
        return None

    def reward_model_error(self) -> np.ndarray | None:
        """(A,) the root-mean-square error of ``reward_model`` per action, in the reward's unit, measured out of
        fold (None: no learned model). It sizes the bias that the data cannot check (see ``couponmix.ope.objectives``)."""
        return None

    def observed_rows(self, size: int, rng: np.random.Generator):
        """Customers of a real log with what was logged for them, for an evaluation sample of at most
        ``size`` (``(x (M, d), ope.objectives.ObservedRows)``), or None: a simulator, or a log without
        propensities. The second moments of the promise then come from the logged rewards.

        Parameters
        ----------
        size : int
            The most customers to return.
        rng : numpy.random.Generator
            Draws them, when the log has more.

        Returns
        -------
        (ndarray (M, d), ObservedRows) or None
            The customers' covariates and their logged rows, M <= size.
        """
        return None

    def reward_model_sq_error(self, x: np.ndarray, q: np.ndarray, mu: np.ndarray) -> np.ndarray | None:
        """(n, A) the reward model's squared error at each of customers x (held out from the model's
        training) and each action, or None to fall back on ``reward_model_error`` per action.

        couponmix averages it within cells of equal propensities (``ope.objectives.local_model_error``),
        so that the bias bound uses the model's error where the estimator relies on it, not on average.
        The default, for simulators (``ground_truth``), measures it against the true mean reward mu.

        Parameters
        ----------
        x : ndarray, (n, d)
            Covariates.
        q : ndarray, (n, A)
            ``reward_model(x)``.
        mu : ndarray, (n, A)
            ``mu(x)``.

        Returns
        -------
        ndarray, (n, A), or None
            Squared errors, in the reward's unit squared.
        """
        return (q - mu) ** 2 if self.ground_truth else None

    def reward_model_sq_error_source(self) -> str:
        """Where ``reward_model_sq_error`` comes from, in plain words."""
        return "the revenue model's error against the simulator's true mean revenue on held-out customers, where the log checks it"

    def model_report(self, x: np.ndarray) -> ModelReport | None:
        """Quality of any learned model behind the policies, measured on held-out customers x.

        Parameters
        ----------
        x : ndarray, (n, d)
            Covariates of customers the model was not trained on.

        Returns
        -------
        ModelReport or None
            None without a learned model.
        """
        return None

    def warnings(self) -> list[str]:
        """Plain-word warnings every report built on this scenario must repeat (e.g. a weak calibrated model)."""
        return []

    def categories(self, feature: str) -> list[str] | None:
        """The names of a categorical covariate's values, coded 0, 1, ... in the covariates, when the scenario
        declares them (every value, however rare); None where it does not.

        Parameters
        ----------
        feature : str
            A name in ``covariate_names``.

        Returns
        -------
        list of str or None
            The name of code 0, 1, ...
        """
        return None

    def real_log(self) -> BanditFeedback | None:
        """The real log behind the scenario in obp's format (``context``, ``action``, ``reward``, ``pscore``,
        ``pscore_avg``, ...), where it holds one with propensities (None for simulators); the log's own
        estimates are ``couponmix.ope.real_log.log_estimates``."""
        return None

    def weight_moment_verdict(self, target: str, alpha: np.ndarray) -> SupportVerdict | None:
        """Analytic verdict on E[sum_a pi_e^2 / p_alpha] for ``target`` at ``alpha``, or None if unknown.

        Parameters
        ----------
        target : str
            A name in ``targets()``.
        alpha : ndarray, (K,)
            Mixture weights.

        Returns
        -------
        SupportVerdict or None
        """
        return None


_REGISTERED: dict[str, type[Scenario]] = {}


def register(cls: type[Scenario]) -> type[Scenario]:
    """Register a scenario class under ``cls.name`` for this process (usable as a class decorator).

    Parameters
    ----------
    cls : type
        A named subclass of ``Scenario``.

    Returns
    -------
    type
        ``cls``.

    Raises
    ------
    CouponmixError
        ``cls`` is not a ``Scenario`` subclass, or has no name.
    """
    if not (isinstance(cls, type) and issubclass(cls, Scenario)) or not cls.name:
        raise CouponmixError("a scenario must be a named subclass of couponmix.dataset.scenario.Scenario")
    _REGISTERED[cls.name] = cls
    return cls


def _entry_points() -> dict[str, str]:
    found = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = ep.value
    return found


def registered() -> dict[str, str]:
    """Every scenario name this process can build, with where it comes from ("module:Class")."""
    out = _entry_points()
    out.update({name: f"{cls.__module__}:{cls.__qualname__}" for name, cls in _REGISTERED.items()})
    return dict(sorted(out.items()))


def scenario_class(name: str) -> type[Scenario]:
    """The scenario class registered as ``name`` (at run time, or by entry point); a one-line error naming the known
    scenarios when there is none, or when it cannot be loaded or is not a ``Scenario``.

    Parameters
    ----------
    name : str

    Returns
    -------
    type
        A ``Scenario`` subclass.

    Raises
    ------
    CouponmixError
        No scenario of that name, or one that cannot be loaded or is not a ``Scenario``.
    """
    if name in _REGISTERED:
        return _REGISTERED[name]
    points = _entry_points()
    if name not in points:
        import difflib

        close = difflib.get_close_matches(name, sorted(registered()), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise CouponmixError(f"unknown scenario {name!r}{hint}; known scenarios: {', '.join(sorted(registered()))} (or a scenario folder)")
    module, _, attr = points[name].partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise CouponmixError(f"scenario {name!r} is registered as {points[name]} but cannot be loaded: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Scenario)):
        raise CouponmixError(f"scenario {name!r} ({points[name]}) is not a couponmix Scenario")
    return cls


def _folder(path: Path) -> tuple[str, Any]:
    """(kind, config) from a scenario folder's scenario.yaml."""
    file = path / SCENARIO_FILE
    if not file.is_file():
        raise CouponmixError(f"scenario folder {path} has no {SCENARIO_FILE}")
    doc = load_yaml_file(file)
    if not isinstance(doc, dict) or not isinstance(doc.get("kind"), str):
        raise CouponmixError(f"{file} must be a mapping with kind: (a scenario name) and optionally config:")
    unknown = sorted(set(doc) - {"kind", "config", "description"})
    if unknown:
        raise CouponmixError(f"{file}: unknown key(s) {', '.join(unknown)}")
    return doc["kind"], doc.get("config")


def is_scenario_folder(name: str) -> bool:
    """A path to a folder, unless a registered scenario has that name.

    Parameters
    ----------
    name : str
        A scenario name or a path.

    Returns
    -------
    bool
    """
    if name in registered():
        return False
    try:
        return Path(name).is_dir()
    except OSError:  # a name too long for a path: not a folder (the unknown-scenario message follows)
        return False


def get_scenario(name: str, config=None, seed: int = 0) -> Scenario:
    """Build a scenario by registered name, or from a scenario folder (a path), with its config and world seed.

    Parameters
    ----------
    name : str
        A registered name, or a scenario folder's path.
    config : dict or str or path, optional
        The scenario's parameters, or a YAML file of them (scenarios that take a config only).
    seed : int
        The world seed (scenarios that take a config).

    Returns
    -------
    Scenario

    Raises
    ------
    CouponmixError
        An unknown name, a bad folder, a config beside a folder's own, a data scenario without its folder, or a
        config given to a scenario that takes none.
    """
    if not isinstance(name, str) or not name:
        raise CouponmixError("the scenario must be a name or a folder")
    folder = None
    if is_scenario_folder(name):
        folder = Path(name)
        kind, folder_config = _folder(folder)
        if config is not None and folder_config is not None:
            raise CouponmixError(f"scenario folder {name} has its own config; give no other")
        name, config = kind, folder_config if config is None else config
    cls = scenario_class(name)
    if cls.takes_folder:
        if folder is None:
            raise CouponmixError(f"scenario {name!r} is data on disk: give the folder `couponmix calibrate` wrote")
        return cls(config=config, seed=seed, folder=folder)  # type: ignore[call-arg]
    if cls.takes_config:
        return cls(config=config, seed=seed)  # type: ignore[call-arg]
    if config is not None:
        takers = [n for n in registered() if n in BUILTIN and scenario_class(n).takes_config]
        raise CouponmixError(f"scenario {name!r} takes no config (only {', '.join(takers) or 'none'} here)")
    return cls()

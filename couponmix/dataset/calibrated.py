"""A scenario calibrated from a team's own coupon log: the world a folder written by ``calibrate``
(``couponmix.dataset.calibration``) describes, its policies, and the honesty gate applied again at planning
time (``--fallback``). See ``calibration`` for how the world is fitted and what it promises."""

from __future__ import annotations

import io
import json
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from couponmix.dataset.calibration import CalibrationDiagnostics, fold_of, gate_outcome, ipw, shrunk_means
from couponmix.dataset.calibration_config import CARD, CalibrateConfig, PolicySpec, sha256_of
from couponmix.dataset.scenario import Scenario
from couponmix.dataset.types import BanditFeedback, ObservedRows
from couponmix.errors import CouponmixError
from couponmix.infra.safeyaml import load_yaml_file
from couponmix.infra.schema import Schema, parse
from couponmix.policy.allocation import softmax
from couponmix.policy.policies import Policy, one_hot, uniform
from couponmix.policy.revenue_model import CrossFittedRevenueModel

__all__ = ["CalibratedScenario", "ScenarioOptions"]


class ScenarioOptions(Schema):
    """What a study may choose about a calibrated scenario (``scenario_config:`` or ``--fallback``)."""

    fallback: Literal["means", "refuse", "model"] | None = Field(
        default=None,
        description="when the model is no better than per-action means: plan with the means, refuse, or keep "
        "the model (default: what calibrate chose)",
    )


class CalibratedScenario(Scenario):
    """A scenario folder written by ``calibrate``: the world as the log and its model describe it.

    ``config`` (``ScenarioOptions``) may choose the fallback for a model that failed the honesty gate at
    planning time, overriding the one calibrate used.

    Parameters
    ----------
    config : mapping, str or Path, optional
        ``ScenarioOptions`` as a mapping, or a YAML file holding them.
    seed : int
        Unused: the world is the folder's (kept for the ``Scenario`` signature).
    folder : str or Path
        The folder ``calibrate`` wrote.

    Raises
    ------
    CouponmixError
        No folder, a missing, unreadable or damaged card, a folder from another couponmix version, bad options,
        a fallback asked of a folder written before the gate was kept, or a model that failed the honesty gate
        under the fallback "refuse".
    """

    name = "calibrated"
    description = "a scenario calibrated from a real log (couponmix calibrate)"
    takes_config = True
    takes_folder = True
    ground_truth = False

    def __init__(self, config=None, seed: int = 0, folder=None):
        if folder is None:
            raise CouponmixError("a calibrated scenario is a folder written by couponmix calibrate: give its path")
        self.folder = Path(folder)
        try:
            self.meta = json.loads((self.folder / CARD).read_text())
        except (OSError, ValueError):
            raise CouponmixError(f"scenario folder {folder}: {CARD} is missing or unreadable; calibrate again") from None
        if not isinstance(self.meta, dict):
            raise CouponmixError(f"scenario folder {folder}: {CARD} is not what calibrate writes (not a JSON object); calibrate again")
        if self.meta.get("format") != 1:
            raise CouponmixError(f"scenario folder {folder}: written by another couponmix version; calibrate again")
        self.cfg = CalibrateConfig.model_validate(self.meta["config"])
        card = self.meta["card"]
        self.action_names = tuple(card["action_names"])
        self.reward_unit = card.get("reward_unit")
        self.covariate_names = tuple(card["features"])
        self.binary = bool(card["binary"])
        self.default_n = int(self.meta["n"])
        try:
            self.diagnostics = CalibrationDiagnostics.from_dict(self.meta["diagnostics"])
        except (KeyError, ValueError, TypeError, AttributeError):
            raise CouponmixError(f"scenario folder {folder}: {CARD}'s diagnostics are not what calibrate writes; calibrate again") from None
        if isinstance(config, (str, Path)):
            config = load_yaml_file(Path(config))
        options = parse(ScenarioOptions, config, "scenario_config")
        self.fallback = options.fallback or self.cfg.fallback
        if "gate" in self.meta:
            self.world, self._warnings = gate_outcome(self.meta["gate"], self.fallback, "planning on this scenario")
        else:  # written before the gate was kept: calibrate's choice
            if options.fallback is not None:
                raise CouponmixError(f"scenario folder {folder}: written by an older couponmix; calibrate again to choose its fallback")
            self.world, self._warnings = self.meta["world"], list(self.meta["warnings"])
        self.description = self.meta.get("description") or f"calibrated from {card['source']}"

    # ----- data -------------------------------------------------------------------------------------
    def _read(self, filename: str) -> bytes:
        """A data file of the folder, checked against the checksum calibrate wrote for it (folders from before
        checksums are read as they are)."""
        try:
            data = (self.folder / filename).read_bytes()
        except OSError as exc:  # deleted, or replaced by a folder
            raise CouponmixError(
                f"scenario folder {self.folder}: {filename} cannot be read ({exc.strerror or exc}); calibrate again"
            ) from None
        want = (self.meta.get("checksums") or {}).get(filename)
        if want is not None and sha256_of(data) != want:
            raise CouponmixError(
                f"scenario folder {self.folder}: {filename} is damaged (it differs from what calibrate wrote); calibrate again"
            )
        return data

    def _array(self, name: str) -> np.ndarray:
        return np.load(io.BytesIO(self._read(f"{name}.npy")), allow_pickle=False)

    @cached_property
    def customers(self) -> np.ndarray:
        """(N, d) the log's customers' covariates (categoricals as codes), as calibrate saved them."""
        return self._array("customers")

    @cached_property
    def _sparse(self) -> np.ndarray:
        return self._array("sparse")

    def _model(self, name: str) -> CrossFittedRevenueModel:
        spec = self.meta["models"][name]
        m = CrossFittedRevenueModel(
            self.n_actions, spec["features"], spec["categorical"], folds=spec["folds"], params=spec["params"], seed=spec["seed"]
        )
        texts = [self._read(f"model.{name}.{k}.txt").decode() for k in range(spec["folds"])]
        return m.load_texts(texts)

    @cached_property
    def reward_fit(self) -> CrossFittedRevenueModel:
        """The cross-fitted reward model calibrate fitted on the log (its folds' models read back from the folder)."""
        return self._model("reward")

    def warnings(self) -> list[str]:
        """The calibration's warnings, and the honesty gate's at planning time, in plain words."""
        return list(self._warnings)

    # ----- the world --------------------------------------------------------------------------------------
    def sample_covariates(self, n, rng):
        """(n, d) covariates of n customers drawn with replacement from the log's customers.

        Parameters
        ----------
        n : int
            Customers.
        rng : numpy.random.Generator

        Returns
        -------
        ndarray, (n, d)
        """
        return self.customers[rng.integers(0, len(self.customers), n)]

    def _finish(self, pred: np.ndarray, means: np.ndarray) -> np.ndarray:
        if len(self._sparse):
            pred = pred.copy()
            pred[:, self._sparse] = means[self._sparse]
        return np.clip(pred, 0.0, 1.0) if self.binary else pred

    def mu(self, x):
        """(n, A) E[r | x, a]: the cross-fitted model's prediction (per-action means in a means world, and for actions too
        sparse to fit), clipped to [0, 1] for a 0/1 reward; reward's unit per customer.

        Parameters
        ----------
        x : ndarray, (n, d)
            Covariates.

        Returns
        -------
        ndarray, (n, A)
        """
        means = self._array_cached("means")
        if self.world == "means":
            return np.broadcast_to(means, (len(x), self.n_actions)).copy()
        return self._finish(self.reward_fit.predict(x), means)

    def _array_cached(self, name: str) -> np.ndarray:
        cache = self.__dict__.setdefault("_arrays", {})
        if name not in cache:
            cache[name] = self._array(name)
        return cache[name]

    def m2(self, x):
        """(n, A) E[r^2 | x, a]: mu for a 0/1 reward; else the model of r^2, at least mu^2 plus 1% of the logged
        reward's variance (a means world: that plus each action's logged variance).

        Parameters
        ----------
        x : ndarray, (n, d)
            Covariates.

        Returns
        -------
        ndarray, (n, A)
            In the reward's unit squared.
        """
        mu = self.mu(x)
        if self.binary:
            return mu
        floor = 0.01 * float(self._array_cached("reward_variance")[0])
        if self.world == "means":
            return mu**2 + floor + self._means_variance()
        return np.maximum(self._model_cached("reward2").predict(x), mu**2 + floor)

    def _means_variance(self) -> np.ndarray:
        """Per-action variance of the logged reward (the means world's noise)."""
        action, reward = self._array_cached("log_action"), self._array_cached("log_reward")
        out = np.empty(self.n_actions)
        for a in range(self.n_actions):
            r = reward[action == a]
            out[a] = r.var() if len(r) > 1 else reward.var()
        return out

    def _model_cached(self, name: str) -> CrossFittedRevenueModel:
        cache = self.__dict__.setdefault("_models", {})
        if name not in cache:
            cache[name] = self._model(name)
        return cache[name]

    def sample_rewards(self, x, actions, rng):
        """Rewards with the world's mean and second moment and the log's own shape: mu + sd z, where z is
        drawn, for each action, from the log's standardised residuals of that action (importance weighted,
        centred and scaled to mean 0 and variance 1), so heavy tails survive the simulation (exact zeros do
        not: the shape is shared across customers; ``_residual_shapes``); a 0/1 reward is Bernoulli.

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
        rows = np.arange(len(x))
        actions = np.asarray(actions)
        mu = self.mu(x)[rows, actions]
        if self.binary:
            return (rng.random(len(x)) < mu).astype(float)
        sd = np.sqrt(np.maximum(self.m2(x)[rows, actions] - mu**2, 0.0))
        z = np.empty(len(x))
        u = rng.random(len(x))
        for a, (values, cdf) in enumerate(self._residual_shapes):
            at = actions == a
            z[at] = values[np.minimum(np.searchsorted(cdf, u[at], side="right"), len(values) - 1)]
        return mu + sd * z

    @cached_property
    def _residual_shapes(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per action, (z values, their cumulative weights): the logged rows' residuals r - mu over the world's
        standard deviation, weighted by the logging weights, then centred and scaled to mean 0 and variance
        1 under those weights. An action with fewer than 30 rows takes every action's residuals."""
        x, action, reward = self.customers, self._array_cached("log_action"), self._array_cached("log_reward")
        mu = self.mu(x)[np.arange(len(x)), action]
        sd = np.sqrt(np.maximum(self.m2(x)[np.arange(len(x)), action] - mu**2, 1e-300))
        w = self._log_weights()
        z_all = (reward - mu) / sd
        out = []
        for a in range(self.n_actions):
            rows = action == a
            if rows.sum() < self.MIN_OBSERVED_ROWS or w[rows].sum() <= 0:
                rows = np.ones(len(action), bool)
            z, ww = z_all[rows], w[rows] / w[rows].sum()
            mean = float(ww @ z)
            spread = float(np.sqrt(ww @ (z - mean) ** 2))
            z = (z - mean) / spread if spread > 0 else np.zeros_like(z)
            order = np.argsort(z, kind="stable")
            out.append((z[order], np.cumsum(ww[order])))
        return out

    # ----- the team's model and the policies ----------------------------------------------------------------
    def reward_model(self, x):
        """The production model: fold 0's model alone (trained on part of the log), per-action means in a
        means world.

        Parameters
        ----------
        x : ndarray, (n, d)
            Covariates.

        Returns
        -------
        ndarray, (n, A)
            Predicted reward of each action (reward's unit), clipped to [0, 1] for a 0/1 reward.
        """
        means_q = self._array_cached("means_q")
        if self.world == "means":
            return np.broadcast_to(means_q, (len(x), self.n_actions)).copy()
        return self._finish(self.reward_fit.predict_fold(x, 0), means_q)

    def _logging_propensity(self) -> np.ndarray | None:
        """The logging system's probability of each logged action: the balanced propensity where the log has
        several loggers and it is known, else the logged propensity (None without propensities)."""
        name = next((n for n in ("log_pscore_avg", "log_propensity") if (self.folder / f"{n}.npy").is_file()), None)
        return self._array_cached(name) if name is not None else None

    def _log_weights(self) -> np.ndarray:
        """The row weights calibrate fitted with: the inverse of ``_logging_propensity`` (all 1 without)."""
        return ipw(self._logging_propensity(), len(self.customers))[0]

    @cached_property
    def _mean_se2(self) -> np.ndarray:
        """(A,) the squared standard error of each action's average reward in the log (Kish effective size
        under the fitting weights): no model knows an action's average better than the log does."""
        action, reward = self._array_cached("log_action"), self._array_cached("log_reward")
        w = self._log_weights()
        se2 = np.empty(self.n_actions)
        for a in range(self.n_actions):
            rows = action == a
            ww, rr = w[rows], reward[rows]
            if ww.sum() <= 0 or rows.sum() < 2:
                se2[a] = reward.var()
                continue
            mean = (ww * rr).sum() / ww.sum()
            var = max(
                (ww * (rr - mean) ** 2).sum() / ww.sum(),
                float(self._array_cached("means")[a] * (1 - self._array_cached("means")[a])) if self.binary else 0.0,
            )
            se2[a] = var * (ww**2).sum() / ww.sum() ** 2  # Kish effective size
        return se2

    def reward_range(self) -> tuple[float, float]:
        """The range a mean reward can take: [0, 1] for a 0/1 reward, else the logged rewards' range.

        Returns
        -------
        low, high : float
            In the reward's unit.
        """
        if self.binary:
            return 0.0, 1.0
        reward = self._array_cached("log_reward")
        return float(reward.min()), float(reward.max())

    #: an action's second moments come from the log's rows when it has at least this many (and, for clicks,
    #: at least ``min_positive`` clicks)
    MIN_OBSERVED_ROWS = 30
    #: ... and when its importance-weighted mass E[1{a_i = a} / p_i] is at least this (the logger can send it
    #: to nearly every customer)
    MIN_LOGGED_MASS = 0.8

    def observed_rows(self, size, rng):
        """The log's own customers (all of them, or ``size`` drawn without replacement) with their logged
        action, reward and inverse propensity, where the log has propensities (else None).

        Parameters
        ----------
        size : int
            The most customers to return.
        rng : numpy.random.Generator
            Draws them, when the log has more.

        Returns
        -------
        (ndarray (M, d), ObservedRows) or None
            The customers' covariates and their logged rows, M = min(size, the log's rows); an action's rows are
            ``covered`` only with enough held-out rows (and clicks) and logged mass.
        """
        propensity = self._logging_propensity()
        if propensity is None:
            return None
        n = len(self.customers)
        idx = np.sort(rng.choice(n, size, replace=False)) if size < n else np.arange(n)
        action, reward = self._array_cached("log_action"), self._array_cached("log_reward")
        folds = self.reward_fit.folds
        held = fold_of(n, folds, self.reward_fit.seed) == 0  # the production model is fold 0's: not trained on these
        if self.world == "means":  # the means world's model uses every row alike: no row is held out of it
            held = np.ones(n, bool)
        share = held.mean()
        counts = np.bincount(action[held], minlength=self.n_actions)
        enough = counts >= self.MIN_OBSERVED_ROWS
        if self.binary:  # a handful of clicks says nothing about a second moment: those actions keep the model
            clicks = np.bincount(action[held], weights=(reward[held] > 0).astype(float), minlength=self.n_actions)
            enough &= clicks >= self.cfg.model.min_positive
        # an action the historical logger never sent to some customers has importance-weighted mass
        # E[1{a_i = a} / p_i] = P(the logger can send a) < 1: the log cannot speak for those customers
        mass = np.bincount(action[held], weights=1.0 / propensity[held], minlength=self.n_actions) / max(int(held.sum()), 1)
        enough &= mass >= self.MIN_LOGGED_MASS
        obs = ObservedRows(
            action=action[idx],
            reward=reward[idx],
            inverse_propensity=1.0 / propensity[idx],
            held_out=np.where(held[idx], 1.0 / share, 0.0),
            covered=enough,
            source=(
                "the log's own rewards: the rows the production model was not trained on, importance weighted "
                "(the sampling error's second moments, the model's error where an estimator relies on it, and "
                "every policy's value)"
                + (
                    ""
                    if enough.all()
                    else "; for " + ", ".join(n for n, ok in zip(self.action_names, enough) if not ok) + " (too few "
                    "logged rows, or not sent to every kind of customer) the world's model"
                )
            ),
        )
        return self.customers[idx], obs

    def reward_model_sq_error(self, x, q, mu):
        """(n, A) the squared error assumed for the production model at customers x.

        In the model world: its squared distance to the calibrated world's mu plus the squared standard
        error of the action's average in the log. In the means world, which cannot see how customers
        differ, the model's error where the log does not check it is bounded by the reward's range alone
        (no assumption): the largest distance from q to a mean reward the log allows.

        Parameters
        ----------
        x : ndarray, (n, d)
            Covariates (unused: the error depends on q and mu).
        q : ndarray, (n, A)
            ``reward_model(x)``.
        mu : ndarray, (n, A)
            ``mu(x)``.

        Returns
        -------
        ndarray, (n, A)
            Squared errors, in the reward's unit squared.
        """
        if self.world == "means":
            lo, hi = self.reward_range()
            return np.maximum(q - lo, hi - q) ** 2
        return (q - mu) ** 2 + self._mean_se2[None, :]

    def reward_model_sq_error_source(self) -> str:
        """Where ``reward_model_sq_error`` comes from, in plain words (the model world's or the means world's)."""
        if self.world == "means":
            return (
                "the reward's range: the per-action-means world cannot see how customers differ, so wherever an "
                "estimator relies on the model its error is bounded only by the range of the logged reward"
            )
        return (
            "the production model's distance to the calibrated world's model on the log's customers, plus the "
            "standard error of each action's average in the log (model estimates, not measurements)"
        )

    def _policy(self, key: str, name: str, spec: PolicySpec) -> Policy:
        A = self.n_actions
        desc = spec.description or ""
        if spec.kind == "uniform":
            return Policy(name, lambda x: uniform(len(x), A), A, desc or "uniform over all actions")
        if spec.kind == "logged":
            p = self._array_cached(f"logged_probabilities.{key}")
            return Policy(name, lambda x: np.broadcast_to(p, (len(x), A)).copy(), A, desc or "the log's own logging policy")
        if spec.kind == "fixed":
            p = np.array([float((spec.probabilities or {}).get(a, 0.0)) for a in self.action_names])
            if not abs(p.sum() - 1) <= 1e-6:
                raise CouponmixError(f"{key}.probabilities sum to {p.sum():.6g}, not 1")
            return Policy(name, lambda x: np.broadcast_to(p, (len(x), A)).copy(), A, desc or "fixed probabilities")
        if spec.kind == "rule":
            return Policy(name, lambda x: self._rule(spec, x), A, desc or f"rule on {spec.feature}")
        if spec.kind == "softmax_model":
            t = float(spec.temperature or 1.0)
            return Policy(name, lambda x: softmax(self.reward_model(x), t), A, desc or f"softmax of the model (temperature {t:g})")
        model_key = key if key in self.meta["models"] else None
        if model_key is None:  # the production model's greedy policy
            return Policy(
                name,
                lambda x: one_hot(np.argmax(self.reward_model(x), axis=1), A),
                A,
                desc or "greedy policy of the model fitted on the log",
            )
        # fold 0's model, as for the production model: every policy built on the log is then blind to the
        # same held-out rows, from which the promise takes its moments (``observed_rows``)
        return Policy(
            name,
            lambda x: one_hot(np.argmax(self._model_cached(model_key).predict_fold(x, 0), axis=1), A),
            A,
            desc or f"greedy policy of a model on {', '.join(spec.features or [])}",
        )

    def categories(self, feature: str) -> list[str] | None:
        """The log's values of a categorical feature, in the order of their codes (from the card).

        Parameters
        ----------
        feature : str
            A feature's name.

        Returns
        -------
        list of str or None
            None for a feature that is not categorical.
        """
        cats = self.meta["card"]["categories"].get(feature)
        return None if cats is None else [str(c) for c in cats]

    def _rule(self, spec: PolicySpec, x: np.ndarray) -> np.ndarray:
        j = self.covariate_names.index(str(spec.feature))
        col = x[:, j]
        hit = np.ones(len(x), bool)
        if spec.equals is not None:
            cats = self.meta["card"]["categories"].get(spec.feature)
            value = float(cats.index(str(spec.equals))) if cats is not None else float(spec.equals)
            hit &= col == value
        if spec.min is not None:
            hit &= col >= spec.min
        if spec.max is not None:
            hit &= col <= spec.max
        act = self.action_names.index(str(spec.action))
        other = self.action_names.index(str(spec.otherwise))
        return one_hot(np.where(hit, act, other), self.n_actions)

    def on_log(self, name: str) -> np.ndarray:
        """Policy ``name``'s action probabilities for the log's own rows, (n, A). A policy learned from the log
        is taken out of fold: each row's probabilities come from the fold model that was not trained on it, so
        the log does not score a policy fitted to its own noise (the estimate is of the learning procedure).

        Parameters
        ----------
        name : str
            A component or target of calibrate's config.

        Returns
        -------
        ndarray, (n, A)
            Probabilities for the log's n rows.
        """
        specs = {**self.cfg.components, **self.cfg.targets}
        kind = "component" if name in self.cfg.components else "target"
        spec = specs[name]
        x = self.customers
        if spec.kind not in ("greedy_model", "softmax_model"):
            return self._policy(f"{kind}.{name}", name, spec)(x)
        key = f"{kind}.{name}"
        pred = self.oof_reward_model(self._model_cached(key) if key in self.meta["models"] else None)
        if spec.kind == "softmax_model":
            return softmax(pred, float(spec.temperature or 1.0))
        return one_hot(np.argmax(pred, axis=1), self.n_actions)

    def components(self):
        """The logging components calibrate's config names, built from its policy specs."""
        return {k: self._policy(f"component.{k}", k, s) for k, s in self.cfg.components.items()}

    def targets(self):
        """The future policies calibrate's config names, built from its policy specs."""
        return {k: self._policy(f"target.{k}", k, s) for k, s in self.cfg.targets.items()}

    # ----- what the real log says -------------------------------------------------------------------------
    def real_log(self) -> BanditFeedback | None:
        """The log in obp's format (customers, actions, rewards, propensities), or None without propensities.

        With several loggers (a component column): ``pscore`` is the acting logger's own propensity (naive
        multi-logger weights), ``stratum_idx`` the logger, and ``pscore_avg`` the logging system's balanced
        propensity, or None where a logger's policy cannot be rebuilt from the log.

        Returns
        -------
        BanditFeedback or None
            ``context`` (n, d), ``action``, ``reward`` (reward's unit), ``pscore`` and ``pscore_avg`` (probabilities)
            (n,) each.
        """
        if not (self.folder / "log_propensity.npy").is_file():
            return None
        p = self._array_cached("log_propensity")
        log = BanditFeedback(
            context=self.customers,
            action=self._array_cached("log_action"),
            reward=self._array_cached("log_reward"),
            pscore=p,
            pscore_avg=p,
            n_rounds=len(p),
            n_actions=self.n_actions,
        )
        if self.loggers > 1:
            log["stratum_idx"] = self._array_cached("log_component")
            log["pscore_avg"] = self._array_cached("log_pscore_avg") if (self.folder / "log_pscore_avg.npy").is_file() else None
        return log

    @property
    def loggers(self) -> int:
        """How many logging components the log's component column names (1 without one)."""
        return max(1, len(self.meta["card"].get("components_in_log") or []))

    def oof_reward_model(self, model: CrossFittedRevenueModel | None = None) -> np.ndarray:
        """Out-of-fold reward predictions for the log's rows, (n, A): each fold's rows from ``model``'s fold
        model (default: the world's reward model) of the other folds, or, in a means world, from the shrunk
        per-action means of the other folds.

        Parameters
        ----------
        model : CrossFittedRevenueModel, optional
            A model fitted on the log's folds (default: the world's reward model).

        Returns
        -------
        ndarray, (n, A)
            Predicted rewards (reward's unit).
        """
        x = self.customers
        model = model or self.reward_fit
        fold = fold_of(len(x), model.folds, model.seed)
        out = np.empty((len(x), self.n_actions))
        action, reward, w = self._array_cached("log_action"), self._array_cached("log_reward"), self._log_weights()
        for k in range(model.folds):
            rows, train = fold == k, fold != k
            if self.world == "means":
                out[rows] = shrunk_means(action[train], reward[train], w[train], self.n_actions, self.binary, self.cfg.model.min_positive)
            else:
                out[rows] = self._finish(model.predict_fold(x[rows], k), self._array_cached("means_q"))
        return out

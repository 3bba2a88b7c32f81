"""The `market` scenario: a simulated coupon market, a LightGBM-driven exploit policy, and exploration.

Every parameter lives in a YAML file (``configs/market.yaml`` documents each one
and the model it drives). Ground truth is closed form:

    p(x, a)  = sigmoid(base(x) + uplift(x, a))           probability of buying
    E[B|x,a] = monetary * exp(lift_a),  E[B^2|x,a] = E[B|x,a]^2 * exp(s^2)   (lognormal basket)
    r        = buy * (B (1 - d_a) - c_a) - k_a            (d discount, c cost per order, k cost per send)
    mu(x, a) = p ((1 - d_a) E[B] - c_a) - k_a
    m2(x, a) = p E[(B (1 - d_a) - c_a - k_a)^2] + (1 - p) k_a^2

The logging components and targets are built on first use: a historical log from
the baseline policy trains the cross-fitted LightGBM revenue model, whose greedy
policy (under an optional budget) is the exploit component.
"""

from __future__ import annotations

import copy
from functools import cached_property
from pathlib import Path

import numpy as np
import yaml

from couponmix.dataset.scenario import Scenario
from couponmix.dataset.types import ModelReport
from couponmix.errors import CouponmixError
from couponmix.infra.safeyaml import load_yaml_file
from couponmix.infra.schema import parse
from couponmix.infra.seeding import stream
from couponmix.policy.allocation import Budget, GreedyAllocator, softmax
from couponmix.policy.mixture import sample_actions
from couponmix.policy.policies import Policy, one_hot, uniform
from couponmix.policy.revenue_model import CrossFittedRevenueModel

from .market_config import CATEGORICAL, CHANNELS, FEATURES, MarketConfig

DEFAULT_CONFIG = Path(__file__).with_name("configs") / "market.yaml"
# maps whose keys the user names (replaced whole, not merged key by key)
OPEN_MAPS = {("population", "segments"), ("actions",), ("purchase", "uplift"), ("basket", "lift"), ("rules",), ("targets",)}


def _merge(default, user, path=()):
    if path in OPEN_MAPS or not isinstance(default, dict):
        return copy.deepcopy(user)
    if not isinstance(user, dict):
        raise CouponmixError(f"config: {'.'.join(path) or 'top level'} must be a mapping")
    # top-level keys the schema knows but the default file may leave out (currency) are taken as given
    known = set(default) | (set(MarketConfig.model_fields) if not path else set())
    unknown = sorted(set(user) - known, key=str)
    if unknown:
        where = ".".join(path) or "top level"
        raise CouponmixError(f"config: unknown key(s) {', '.join(map(str, unknown))} in {where}")
    out = copy.deepcopy(default)
    for key, value in user.items():
        out[key] = _merge(default[key], value, path + (key,)) if default.get(key) is not None else copy.deepcopy(value)
    return out


def load_config(path=None) -> dict:
    """The default config, with the file at ``path`` (or a dict of parameters, as a study file's ``market:``
    section) merged over it, validated."""
    default = yaml.safe_load(DEFAULT_CONFIG.read_text())
    if path is None:
        return validate_config(default)
    if isinstance(path, dict):
        return validate_config(_merge(default, path))
    user = load_yaml_file(Path(path)) or {}
    return validate_config(_merge(default, user))


def validate_config(cfg: dict) -> dict:
    """The merged config checked against the declarative schema (``market_config.MarketConfig``), as a plain
    mapping (keys left unset are absent)."""
    return parse(MarketConfig, cfg, "config").model_dump(exclude_none=True)


class MarketScenario(Scenario):
    name = "market"
    description = (
        "Simulated coupon market (default): LightGBM-driven greedy coupons mixed with randomized "
        "exploration at a tunable rate. Parameters in a YAML config (--config)."
    )
    covariate_names = FEATURES
    default_n = 50_000
    takes_config = True

    def __init__(self, config=None, seed: int = 0):
        self.config_path = None if config is None or isinstance(config, dict) else str(config)
        self.cfg = load_config(config)
        self.seed = seed
        self.action_names = tuple(self.cfg["actions"])
        self.reward_unit = self.cfg.get("currency")
        acts = self.cfg["actions"].values()
        self.discount = np.array([a["discount"] for a in acts], float)
        self.cost_order = np.array([a["cost_per_order"] for a in acts], float)
        self.cost_send = np.array([a["cost_per_send"] for a in acts], float)
        self.segment_names = tuple(self.cfg["population"]["segments"])  # the segment covariate's codes 0, 1, ...
        segs, coupons = self.segment_names, self.action_names[1:]
        up = self.cfg["purchase"]["uplift"]
        self.uplift = np.array([[0.0] + [float(up[s][c]) for c in coupons] for s in segs])  # (S, A)
        self.lift = np.array([0.0] + [float(self.cfg["basket"]["lift"][c]) for c in coupons])  # (A,)
        self._check_finite()

    def _check_finite(self) -> None:
        """Refuse, before any model is fitted, parameters whose baskets or moments overflow (each value is
        finite, but exp() of them is not): one line naming the keys that drive the exponentials."""
        with np.errstate(all="ignore"):
            x = self.sample_covariates(2_000, np.random.default_rng(0))
            ok = bool(np.isfinite(x).all() and np.isfinite(self.mu(x)).all() and np.isfinite(self.m2(x)).all())
        if not ok:
            raise CouponmixError(
                "config: the market's revenue overflows (a basket or its square is infinite): lower "
                "population.monetary_log_mean, population.monetary_log_sd, basket.lift or basket.log_sd"
            )

    def at_period(self, period: int) -> MarketScenario:
        """The market in campaign period ``period`` (0: as configured), after its ``drift:``: the uplifts
        moved linearly and by the step, the segment shares by their drift (floored at 0, renormalised).
        The historical log and the models are the configured market's (they are not refitted)."""
        drift = self.cfg.get("drift") or {}
        # the history and everything fitted on it belong to the configured market: build them here, so that
        # the copy shares them instead of refitting on a drifted population
        for name in ("history", "model", "_target_models", "allocator"):
            getattr(self, name)
        out = copy.copy(self)
        out.__dict__.pop("oracle_allocator", None)  # the oracle knows the drifted truth
        if not drift or period == 0:
            return out
        segs, coupons = self.segment_names, self.action_names[1:]
        up = self.uplift.copy()

        def add(table, times):
            for seg, row in (table or {}).items():
                for c, v in row.items():
                    up[segs.index(seg), 1 + coupons.index(c)] += times * float(v)

        add(drift.get("uplift_per_period"), period)
        step = drift.get("step")
        if step is not None and period >= int(step["period"]):
            add(step["uplift"], 1)
        out.uplift = up
        shares = drift.get("segment_shares_per_period")
        if shares:
            cfg = copy.deepcopy(self.cfg)
            now = {s: max(float(v) + period * float(shares.get(s, 0.0)), 0.0) for s, v in cfg["population"]["segments"].items()}
            total = sum(now.values())
            if total <= 0:
                raise CouponmixError(f"drift: every segment's share is 0 in period {period}")
            cfg["population"]["segments"] = {s: v / total for s, v in now.items()}
            out.cfg = cfg
        return out

    # ----- the law of customers and the exact reward moments -------------------------------------
    def sample_covariates(self, n, rng):
        pop = self.cfg["population"]
        shares = np.array(list(pop["segments"].values()), float)
        segment = sample_actions(np.broadcast_to(shares, (n, len(shares))), rng.random(n))
        channel = (rng.random(n) < pop["app_share"]).astype(float)
        recency = rng.exponential(pop["recency_mean_days"], n)
        frequency = rng.poisson(pop["frequency_mean"], n).astype(float)
        monetary = np.exp(pop["monetary_log_mean"] + pop["monetary_log_sd"] * rng.standard_normal(n))
        tenure = rng.random(n) * pop["tenure_max_years"]
        return np.column_stack([recency, frequency, monetary, tenure, segment.astype(float), channel])

    def buy_probability(self, x):
        pur = self.cfg["purchase"]
        recency, frequency, monetary, tenure, segment, channel = x.T
        base = (
            pur["intercept"]
            + pur["recency_per_30_days"] * recency / 30
            + pur["log1p_frequency"] * np.log1p(frequency)
            + pur["log_monetary"] * np.log(monetary / 30)
            + pur["tenure_per_year"] * tenure
            + pur["app_channel"] * channel
        )
        boost = 1 + pur["uplift_recency_boost_per_30_days"] * recency / 30
        logit = base[:, None] + self.uplift[segment.astype(int)] * boost[:, None]
        return 1.0 / (1.0 + np.exp(-logit))

    def basket_moments(self, x):
        s2 = self.cfg["basket"]["log_sd"] ** 2
        eb = x[:, 2:3] * np.exp(self.lift)[None, :]
        return eb, eb * eb * np.exp(s2)

    def mu(self, x):
        p = self.buy_probability(x)
        eb, _ = self.basket_moments(x)
        return p * ((1 - self.discount) * eb - self.cost_order) - self.cost_send

    def m2(self, x):
        p = self.buy_probability(x)
        eb, eb2 = self.basket_moments(x)
        d, c, k = 1 - self.discount, self.cost_order, self.cost_send
        return p * (d * d * eb2 - 2 * d * (c + k) * eb + (c + k) ** 2) + (1 - p) * k * k

    def expected_spend(self, x):
        """E[coupon cost | x, a] = p (discount * E[B] + cost per order) + cost per send."""
        p = self.buy_probability(x)
        eb, _ = self.basket_moments(x)
        return p * (self.discount * eb + self.cost_order) + self.cost_send

    def sample_outcomes(self, x, actions, rng):
        """(reward, coupon spend) for each customer's action."""
        rows = np.arange(len(x))
        p = self.buy_probability(x)[rows, actions]
        buy = rng.random(len(x)) < p
        s = self.cfg["basket"]["log_sd"]
        basket = x[:, 2] * np.exp(self.lift[actions] - s * s / 2 + s * rng.standard_normal(len(x)))
        d, c, k = self.discount[actions], self.cost_order[actions], self.cost_send[actions]
        reward = buy * (basket * (1 - d) - c) - k
        spend = buy * (basket * d + c) + k
        return reward, spend

    def sample_rewards(self, x, actions, rng):
        return self.sample_outcomes(x, actions, rng)[0]

    # ----- rules, history, models -----------------------------------------------------------------
    def _rule_probs(self, rule: dict, x: np.ndarray) -> np.ndarray:
        when = rule["when"]
        col = x[:, FEATURES.index(when["feature"])]
        hit = np.ones(len(x), bool)
        if "equals" in when:
            target = when["equals"]
            if when["feature"] == "channel":
                target = CHANNELS.index(target) if target in CHANNELS else target
            elif when["feature"] == "segment":
                target = self.segment_names.index(target) if target in self.segment_names else target
            hit &= col == float(target)
        if when.get("min") is not None:
            hit &= col >= when["min"]
        if when.get("max") is not None:
            hit &= col <= when["max"]
        action = self.action_names.index(rule["action"])
        otherwise = self.action_names.index(rule.get("otherwise", self.action_names[0]))
        return one_hot(np.where(hit, action, otherwise), self.n_actions)

    def _rule_policy(self, name: str) -> Policy:
        rule = self.cfg["rules"][name]
        return Policy(name, lambda x: self._rule_probs(rule, x), self.n_actions, rule.get("description", f"rule {name}"))

    @cached_property
    def history(self) -> dict:
        """The historical log: baseline policy, outcomes, spend."""
        size = int(self.cfg["history"]["size"])
        rng = stream(self.seed, "history")
        x = self.sample_covariates(size, rng)
        name = self.cfg["history"]["policy"]
        probs = uniform(size, self.n_actions) if name == "uniform" else self._rule_probs(self.cfg["rules"][name], x)
        action = sample_actions(probs, rng.random(size))
        reward, spend = self.sample_outcomes(x, action, rng)
        return dict(x=x, action=action, reward=reward, spend=spend)

    def _fit(self, features, target: str) -> CrossFittedRevenueModel:
        m = self.cfg["model"]
        h = self.history
        idx = [FEATURES.index(f) for f in features]
        model = CrossFittedRevenueModel(
            self.n_actions,
            idx,
            [FEATURES.index(c) for c in CATEGORICAL],
            folds=int(m["folds"]),
            params=dict(
                n_estimators=int(m["n_estimators"]),
                learning_rate=float(m["learning_rate"]),
                num_leaves=int(m["num_leaves"]),
                min_child_samples=int(m["min_child_samples"]),
            ),
            seed=self.seed,
            patience=m.get("patience"),
        )
        return model.fit(h["x"], h["action"], h[target])

    def campaign_model(self) -> tuple[list[int], list[int], dict, int | None]:
        """(features, categorical features, LightGBM settings, early-stopping patience) for a campaign's retrained
        revenue model: the production model's."""
        m = self.cfg["model"]
        params = dict(
            n_estimators=int(m["n_estimators"]),
            learning_rate=float(m["learning_rate"]),
            num_leaves=int(m["num_leaves"]),
            min_child_samples=int(m["min_child_samples"]),
        )
        return [FEATURES.index(f) for f in m["features"]], [FEATURES.index(c) for c in CATEGORICAL], params, m.get("patience")

    @cached_property
    def model(self) -> CrossFittedRevenueModel:
        return self._fit(self.cfg["model"]["features"], "reward")

    @cached_property
    def budget(self) -> Budget:
        b = self.cfg["exploit"]["budget"]
        return Budget(b.get("max_coupon_share"), b.get("max_spend_per_customer"))

    @cached_property
    def cost_model(self) -> CrossFittedRevenueModel | None:
        return self._fit(self.cfg["model"]["features"], "spend") if self.budget.max_spend_per_customer is not None else None

    @cached_property
    def calibration_x(self) -> np.ndarray:
        return self.sample_covariates(int(self.cfg["model"]["calibration_size"]), stream(self.seed, "calibration"))

    def _predicted_cost(self, x):
        return None if self.cost_model is None else np.maximum(self.cost_model.predict(x), 1e-6)

    @cached_property
    def allocator(self) -> GreedyAllocator:
        if not self.budget.active:
            return GreedyAllocator(self.budget)
        x = self.calibration_x
        return GreedyAllocator.calibrate(self.model.predict(x), self._predicted_cost(x), self.budget)

    @cached_property
    def oracle_allocator(self) -> GreedyAllocator:
        if not self.budget.active:
            return GreedyAllocator(self.budget)
        x = self.calibration_x
        return GreedyAllocator.calibrate(self.mu(x), self.expected_spend(x), self.budget)

    def exploit_probs(self, x):
        return self.allocator.probabilities(self.model.predict(x), self._predicted_cost(x))

    def oracle_probs(self, x):
        return self.oracle_allocator.probabilities(self.mu(x), self.expected_spend(x))

    # ----- the protocol's policies ----------------------------------------------------------------
    def _explore(self) -> Policy:
        e = self.cfg["explore"]
        if e["kind"] == "uniform":
            return Policy("explore", lambda x: uniform(len(x), self.n_actions), self.n_actions, "uniform over all actions")
        t = float(e["temperature"])
        return Policy(
            "explore",
            lambda x: softmax(self.model.predict(x), t),
            self.n_actions,
            f"softmax of the revenue model's predictions, temperature {t:g}",
        )

    def components(self):
        out = {}
        budget = self.budget
        for name in self.cfg["components"]:
            if name == "exploit":
                desc = "greedy coupon of the LightGBM revenue model" + (
                    f" (budget: {budget.max_coupon_share:.0%} of customers)"
                    if budget.max_coupon_share is not None
                    else f" (budget: {budget.max_spend_per_customer:g} spend per customer)"
                    if budget.max_spend_per_customer is not None
                    else ""
                )
                out[name] = Policy(name, self.exploit_probs, self.n_actions, desc)
            elif name == "explore":
                out[name] = self._explore()
            else:
                out[name] = self._rule_policy(name)
        return out

    @cached_property
    def _target_models(self) -> dict:
        return {
            name: self._fit(t.get("features", self.cfg["model"]["features"]), "reward")
            for name, t in self.cfg["targets"].items()
            if t["kind"] == "greedy_model"
        }

    def targets(self):
        out = {}
        for name, t in self.cfg["targets"].items():
            kind, desc = t["kind"], t.get("description", "")
            if kind == "greedy_model":
                model = self._target_models[name]
                fn = (lambda m: lambda x: GreedyAllocator(Budget()).probabilities(m.predict(x)))(model)
                out[name] = Policy(name, fn, self.n_actions, desc or "greedy policy of a retrained model")
            elif kind == "softmax_model":
                temp = float(t.get("temperature", 1.0))
                out[name] = Policy(
                    name,
                    (lambda tt: lambda x: softmax(self.model.predict(x), tt))(temp),
                    self.n_actions,
                    desc or f"softmax of the model, temperature {temp:g}",
                )
            elif kind == "rule":
                pol = self._rule_policy(t["rule"])
                out[name] = Policy(name, pol.fn, self.n_actions, desc or pol.description)
            else:
                out[name] = Policy(name, lambda x: uniform(len(x), self.n_actions), self.n_actions, desc or "uniform over all actions")
        return out

    def reference_policies(self):
        return {
            "oracle": Policy(
                "oracle", self.oracle_probs, self.n_actions, "true best action per customer (from the simulator's truth), same budget"
            )
        }

    def categories(self, feature: str) -> list[str] | None:
        """The segment covariate's values by name (codes 0, 1, ... in the order of the config's segments)."""
        return list(self.segment_names) if feature == "segment" else None

    def reward_model(self, x):
        """The production revenue model: trained on the historical log, so fixed before any new log."""
        return self.model.predict(x)

    @cached_property
    def _oof_error(self) -> np.ndarray:
        h = self.history
        return np.sqrt(np.mean((self.model.out_of_fold() - self.mu(h["x"])) ** 2, axis=0))

    def reward_model_error(self) -> np.ndarray:
        """Out-of-fold RMSE of the revenue model per action on the historical log's customers.

        The simulator measures it against the true mean revenue. A team with its own log cannot: with
        revenue noise of variance about 500 per customer and 25,000 customers per action, the
        out-of-fold squared error is known only to about +-20, far above the model's error of about 10.
        """
        return self._oof_error

    def model_report(self, x: np.ndarray) -> ModelReport:
        """Revenue model quality against the truth on held-out customers x, beside a per-action-mean baseline."""
        truth = self.mu(x)
        pred = self.model.predict(x)
        h = self.history
        means = np.array([h["reward"][h["action"] == a].mean() if (h["action"] == a).any() else 0.0 for a in range(self.n_actions)])
        oof = self.model.out_of_fold()
        rmse = float(np.sqrt(np.mean((pred - truth) ** 2)))
        base = float(np.sqrt(np.mean((means[None, :] - truth) ** 2)))
        return ModelReport(
            kind="LightGBM, cross-fitted",
            folds=int(self.cfg["model"]["folds"]),
            trees=self.model.trees_,
            max_trees=int(self.cfg["model"]["n_estimators"]),
            features=list(self.cfg["model"]["features"]),
            history_size=int(self.cfg["history"]["size"]),
            history_policy=self.cfg["history"]["policy"],
            rmse_vs_true_mu=rmse,
            baseline_rmse_vs_true_mu=base,
            baseline="mean reward of each action in the historical log",
            out_of_fold_rmse_vs_true_mu=float(np.sqrt(np.mean((oof - self.mu(h["x"])) ** 2))),
            rmse_per_action=dict(zip(self.action_names, np.sqrt(((pred - truth) ** 2).mean(axis=0)).tolist())),
            held_out_customers=len(x),
        )

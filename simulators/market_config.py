"""The market scenario's configuration: one declarative schema stating each key's type, range and meaning.

``configs/market.yaml`` holds the defaults (and explains the model they drive); a user's file is merged
over it and checked here. ``python -m simulators.market_config`` prints every key with its type and
meaning. Errors are one line: ``config: population.app_share: expected a number <= 1, got 1.5``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from couponmix.infra.schema import Int, NonNegative, Number, Positive, Schema, Share, describe

__all__ = ["FEATURES", "CHANNELS", "CATEGORICAL", "MarketConfig"]

FEATURES = ("recency", "frequency", "monetary", "tenure", "segment", "channel")
CHANNELS = ("email", "app")
CATEGORICAL = ("segment", "channel")
Feature = Literal["recency", "frequency", "monetary", "tenure", "segment", "channel"]


class Population(Schema):
    segments: dict[str, Share] = Field(description="share of customers per segment; the shares sum to 1")
    app_share: Share = Field(description="share of customers reached in the app (the others by email)")
    recency_mean_days: NonNegative = Field(description="days since last purchase ~ exponential with this mean")
    frequency_mean: NonNegative = Field(description="purchases in the last year ~ Poisson with this mean")
    monetary_log_mean: Number = Field(description="average basket ~ lognormal with this log-mean")
    monetary_log_sd: NonNegative = Field(description="... and this log-sd")
    tenure_max_years: NonNegative = Field(description="years as a customer ~ uniform(0, max)")

    @model_validator(mode="after")
    def _shares(self):
        if not self.segments:
            raise ValueError("segments: name at least one segment")
        total = sum(self.segments.values())
        if abs(total - 1) > 1e-9:
            raise ValueError(f"segments: shares sum to {total:.6g}, not 1")
        return self


class Action(Schema):
    discount: Share = Field(description="share of the basket taken off")
    cost_per_order: NonNegative = Field(description="cost per order placed with the coupon (e.g. shipping)")
    cost_per_send: NonNegative = Field(description="cost of sending the coupon")


class Purchase(Schema):
    intercept: Number = Field(description="log-odds of buying, base level")
    recency_per_30_days: Number = Field(description="log-odds per 30 days since last purchase")
    log1p_frequency: Number = Field(description="log-odds per unit of log(1 + frequency)")
    log_monetary: Number = Field(description="log-odds per unit of log(monetary / 30)")
    tenure_per_year: Number = Field(description="log-odds per year of tenure")
    app_channel: Number = Field(description="log-odds for app customers")
    uplift: dict[str, dict[str, Number]] = Field(description="change in log-odds of buying, by segment and coupon")
    uplift_recency_boost_per_30_days: Number = Field(description="relative uplift boost per 30 days of recency")


class Basket(Schema):
    lift: dict[str, Number] = Field(description="log-scale lift of the basket when buying with each coupon")
    log_sd: NonNegative = Field(description="log-sd of the basket")


class History(Schema):
    size: Int = Field(ge=100, le=50_000_000, description="customers in the historical log the model learns from")
    policy: str = Field(description="how it was logged: uniform, or the name of a rule")


class Model(Schema):
    features: list[Feature] = Field(min_length=1, description="what the production revenue model sees")
    folds: Int = Field(ge=2, le=20, description="cross-fitting folds")
    n_estimators: Int = Field(ge=1, le=100_000, description="LightGBM trees at most (the count is chosen on the folds)")
    patience: Int | None = Field(
        default=20,
        ge=1,
        le=100_000,
        description="rounds without a lower held-out error before a fold model stops growing; null grows n_estimators trees",
    )
    learning_rate: Positive = Field(description="LightGBM learning rate")
    num_leaves: Int = Field(ge=2, le=131_072, description="LightGBM leaves per tree")
    min_child_samples: Int = Field(ge=1, description="LightGBM minimum customers per leaf")
    calibration_size: Int = Field(ge=1_000, le=50_000_000, description="customers on which budgets are calibrated")


class BudgetConfig(Schema):
    max_coupon_share: Share | None = Field(default=None, description="at most this share of customers get a coupon")
    max_spend_per_customer: NonNegative | None = Field(default=None, description="at most this predicted coupon cost per customer")

    @model_validator(mode="after")
    def _one(self):
        if self.max_coupon_share is not None and self.max_spend_per_customer is not None:
            raise ValueError("give max_coupon_share or max_spend_per_customer, not both")
        return self


class Exploit(Schema):
    budget: BudgetConfig = Field(description="optional budget of the greedy exploit policy")


class Explore(Schema):
    kind: Literal["uniform", "softmax"] = Field(description="uniform over all actions, or softmax of the model's predictions")
    temperature: Positive = Field(description="softmax temperature (currency units); ignored for uniform")


class When(Schema):
    feature: Feature = Field(description="the covariate the rule reads")
    min: Number | None = Field(default=None, description="applies where the feature is >= min")
    max: Number | None = Field(default=None, description="applies where the feature is <= max")
    equals: str | Number | None = Field(default=None, description="applies where the feature equals this")


class Rule(Schema):
    description: str | None = Field(default=None, max_length=2000, description="plain words for reports")
    when: When
    action: str = Field(description="the action where the rule applies")
    otherwise: str | None = Field(default=None, description="the action elsewhere (default: the first, no coupon)")


class Target(Schema):
    kind: Literal["greedy_model", "softmax_model", "rule", "uniform"]
    description: str | None = Field(default=None, max_length=2000)
    features: list[Feature] | None = Field(default=None, min_length=1, description="greedy_model: its model's features")
    rule: str | None = Field(default=None, description="rule: the rule's name")
    temperature: Positive | None = Field(default=None, description="softmax_model: temperature")


class DriftStep(Schema):
    period: Int = Field(ge=1, le=10_000, description="the period from which the change applies")
    uplift: dict[str, dict[str, Number]] = Field(description="added to purchase.uplift, by segment and coupon")


class Drift(Schema):
    """How the market changes from one campaign period to the next (``couponmix campaign``)."""

    uplift_per_period: dict[str, dict[str, Number]] | None = Field(
        default=None, description="added to purchase.uplift each period, by segment and coupon (linear drift)"
    )
    step: DriftStep | None = Field(default=None, description="a change of the uplifts from a given period on")
    segment_shares_per_period: dict[str, Number] | None = Field(
        default=None, description="added to each segment's share each period (new customers arriving); renormalised"
    )


class MarketConfig(Schema):
    """A simulated coupon market (see configs/market.yaml for the model each key drives)."""

    population: Population
    actions: dict[str, Action] = Field(description="the first is 'no coupon' and costs nothing")
    purchase: Purchase
    basket: Basket
    history: History
    model: Model
    exploit: Exploit
    explore: Explore
    rules: dict[str, Rule] = Field(description="business rules, usable as logging components or targets")
    components: list[str] = Field(description="logging components mixed by the optimiser")
    targets: dict[str, Target] = Field(description="candidate future policies")
    drift: Drift | None = Field(default=None, description="campaigns only: how the market changes period by period")
    currency: str | None = Field(
        default=None, max_length=12, pattern=r"^[A-Za-z$€£¥]{1,12}$", description="the revenue's unit (e.g. EUR), shown beside amounts"
    )

    @model_validator(mode="after")
    def _consistent(self):
        actions = list(self.actions)
        if len(actions) < 2:
            raise ValueError("actions: list 'no coupon' and at least one coupon")
        first = self.actions[actions[0]]
        if (first.discount, first.cost_per_order, first.cost_per_send) != (0, 0, 0):
            raise ValueError(f"actions.{actions[0]}: the first action is 'no coupon' and must have zero discount and costs")
        coupons = actions[1:]
        segments = list(self.population.segments)
        for seg in segments:
            row = self.purchase.uplift.get(seg)
            if row is None:
                raise ValueError(f"purchase.uplift: no entry for segment {seg}")
            missing = [c for c in coupons if c not in row]
            if missing:
                raise ValueError(f"purchase.uplift.{seg}: no value for coupon {missing[0]}")
        missing = [c for c in coupons if c not in self.basket.lift]
        if missing:
            raise ValueError(f"basket.lift: no value for coupon {missing[0]}")
        for name, rule in self.rules.items():
            for key in ("action", "otherwise"):
                value = getattr(rule, key)
                if value is not None and value not in self.actions:
                    raise ValueError(f"rules.{name}.{key}: {value!r} is not an action ({', '.join(actions)})")
            w = rule.when
            if w.equals is not None:
                allowed = {"segment": segments, "channel": list(CHANNELS)}.get(w.feature)
                if allowed is not None and w.equals not in allowed:
                    raise ValueError(f"rules.{name}.when.equals: expected one of {', '.join(allowed)}, got {w.equals!r}")
                if allowed is None and isinstance(w.equals, str):
                    raise ValueError(f"rules.{name}.when.equals: {w.feature} is a number, got {w.equals!r}")
            if w.feature in CATEGORICAL and (w.min is not None or w.max is not None):
                raise ValueError(f"rules.{name}.when: {w.feature} is categorical: use equals, not min or max")
        known = {"exploit", "explore", *self.rules}
        comps = self.components
        if len(comps) < 2 or len(set(comps)) != len(comps) or any(c not in known for c in comps):
            raise ValueError(f"components: two or more distinct names among {', '.join(sorted(known))}")
        if self.history.policy != "uniform" and self.history.policy not in self.rules:
            raise ValueError(f"history.policy: expected uniform or a rule name, got {self.history.policy!r}")
        if not self.targets:
            raise ValueError("targets: at least one target is needed")
        for name, t in self.targets.items():
            if t.kind == "rule" and t.rule not in self.rules:
                raise ValueError(f"targets.{name}.rule: {t.rule!r} names no rule")
        if self.drift is not None:
            tables = [("drift.uplift_per_period", self.drift.uplift_per_period)]
            tables.append(("drift.step.uplift", self.drift.step.uplift if self.drift.step is not None else None))
            for where, table in tables:
                for seg, row in (table or {}).items():
                    if seg not in segments:
                        raise ValueError(f"{where}: unknown segment {seg!r}")
                    bad = [c for c in row if c not in coupons]
                    if bad:
                        raise ValueError(f"{where}.{seg}: unknown coupon {bad[0]!r}")
            bad = [seg for seg in (self.drift.segment_shares_per_period or {}) if seg not in segments]
            if bad:
                raise ValueError(f"drift.segment_shares_per_period: unknown segment {bad[0]!r}")
        return self


if __name__ == "__main__":
    for key, kind, meaning in describe(MarketConfig):
        print(f"{key:45s} {kind:12s} {meaning}")

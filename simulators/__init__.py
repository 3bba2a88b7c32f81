"""Simulated coupon environments with known ground truth, and their registry."""
from __future__ import annotations

from couponmix.divergence import SupportVerdict
from couponmix.errors import CouponmixError

from .base import Scenario
from .market import MarketScenario
from .paper import PaperFloorScenario, PaperScenario

SCENARIOS: dict[str, type[Scenario]] = {
    cls.name: cls for cls in (MarketScenario, PaperScenario, PaperFloorScenario)
}
#: scenarios that take a YAML config and a seed for their learned models
CONFIGURABLE = {"market"}


def get_scenario(name: str, config=None, seed: int = 0) -> Scenario:
    """Instantiate a registered scenario by name, or raise a one-line error listing the known ones."""
    if name not in SCENARIOS:
        raise CouponmixError(f"unknown scenario {name!r}; known scenarios: {', '.join(sorted(SCENARIOS))}")
    if name in CONFIGURABLE:
        return SCENARIOS[name](config=config, seed=seed)
    if config is not None:
        raise CouponmixError(f"scenario {name!r} takes no --config (only {', '.join(sorted(CONFIGURABLE))} does)")
    return SCENARIOS[name]()


__all__ = ["Scenario", "SupportVerdict", "SCENARIOS", "get_scenario"]

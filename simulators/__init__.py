"""Simulated coupon environments with known ground truth, and their registry."""
from __future__ import annotations

from couponmix.errors import CouponmixError

from .base import Scenario
from couponmix.divergence import SupportVerdict
from .paper import PaperFloorScenario, PaperScenario

SCENARIOS: dict[str, type[Scenario]] = {
    cls.name: cls for cls in (PaperScenario, PaperFloorScenario)
}


def get_scenario(name: str) -> Scenario:
    """Instantiate a registered scenario by name, or raise a one-line error listing the known ones."""
    try:
        return SCENARIOS[name]()
    except KeyError:
        raise CouponmixError(f"unknown scenario {name!r}; known scenarios: {', '.join(sorted(SCENARIOS))}") from None


__all__ = ["Scenario", "SupportVerdict", "SCENARIOS", "get_scenario"]

"""Simulated coupon environments with known ground truth: market, paper and paper_floor.

They plug into couponmix through the entry points of the group ``couponmix.scenarios`` (pyproject.toml),
like any third-party scenario; ``get_scenario`` and ``SCENARIOS`` are kept here for convenience.
"""

from __future__ import annotations

from couponmix.dataset.scenario import Scenario, get_scenario, registered
from couponmix.ope.divergence import SupportVerdict

from .market import MarketScenario
from .paper import PaperFloorScenario, PaperScenario

SCENARIOS: dict[str, type[Scenario]] = {cls.name: cls for cls in (MarketScenario, PaperScenario, PaperFloorScenario)}

__all__ = ["Scenario", "SupportVerdict", "SCENARIOS", "get_scenario", "registered"]

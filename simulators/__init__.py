"""Simulated coupon environments with known ground truth: market, paper and paper_floor.

They plug into couponmix through the entry points of the group ``couponmix.scenarios`` (pyproject.toml),
like any third-party scenario; ``get_scenario`` is kept here for convenience, and ``Scenario`` and
``SupportVerdict`` for scenarios written against this package.
"""

from __future__ import annotations

from couponmix.dataset.scenario import Scenario, get_scenario, registered
from couponmix.dataset.types import SupportVerdict

from .market import MarketScenario
from .paper import PaperFloorScenario, PaperScenario

__all__ = ["Scenario", "SupportVerdict", "MarketScenario", "PaperScenario", "PaperFloorScenario", "get_scenario", "registered"]

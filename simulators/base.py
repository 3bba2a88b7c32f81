"""The scenario protocol lives in couponmix (``couponmix.dataset.scenario.Scenario``); re-exported here for scenarios
written against this module."""

from couponmix.dataset.scenario import Scenario

__all__ = ["Scenario"]

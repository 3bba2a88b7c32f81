"""The scenario protocol lives in couponmix (``couponmix.scenario.Scenario``); re-exported here for scenarios
written against this module."""
from couponmix.scenario import Scenario

__all__ = ["Scenario"]

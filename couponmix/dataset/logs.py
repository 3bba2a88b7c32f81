"""Simulated logs in obp's multi-logger bandit-feedback format.

Keys follow ``obp.dataset.SyntheticMultiLoggersBanditDataset``: context, action,
reward, pscore (the acting component's own propensity, for obp's
MultiLoggersNaive* estimators), pscore_avg (the balanced propensity, for
MultiLoggersBalanced*), stratum_idx (the acting component), plus
pscore_components (n, K) and expected_reward mu(x, .) (n, A).
"""

from __future__ import annotations

from typing import cast

import numpy as np

from couponmix.dataset.scenario import Scenario
from couponmix.dataset.types import BanditFeedback
from couponmix.infra.seeding import BLOCK, stream
from couponmix.infra.validation import check_positive_int
from couponmix.policy.mixture import Mixture

__all__ = ["simulate_block", "simulate_log"]


def simulate_block(scenario: Scenario, mixture: Mixture, size: int, rng: np.random.Generator) -> BanditFeedback:
    """One block of customers: covariates, component, action, reward and propensities, drawn in this order
    (``simulate_log`` and the chunked ``simulate`` both build on it, so they give the same rows).

    Parameters
    ----------
    scenario : Scenario
    mixture : Mixture
        The logging mixture of K components.
    size : int
        Customers in the block.
    rng : numpy.random.Generator
        The block's stream.

    Returns
    -------
    BanditFeedback
        ``context`` (size, d), ``action``, ``reward`` (reward's unit), ``pscore``, ``pscore_avg`` and ``stratum_idx``
        (size,) each, ``pscore_components`` (size, K), and ``alpha`` (size, K) when the mixture varies by customer.
    """
    x = scenario.sample_covariates(size, rng)
    draw = mixture.draw(x, rng)
    reward = scenario.sample_rewards(x, draw.action, rng)
    block = BanditFeedback(
        context=x,
        action=draw.action,
        reward=reward,
        pscore=draw.pscore,
        pscore_avg=draw.pscore_avg,
        stratum_idx=draw.component,
        pscore_components=draw.pscore_components,
    )
    if mixture.varies_by_customer:  # each customer's own weights
        block = BanditFeedback(alpha=draw.alpha, **block)
    return block


def simulate_log(
    scenario: Scenario, mixture: Mixture, n: int, seed: int, replication: int | None = None, pilot: int | None = None
) -> BanditFeedback:
    """Draw a log of ``n`` customers from ``scenario`` under ``mixture``.

    Customers are simulated in blocks of ``seeding.BLOCK``, block b from its own
    stream, so the log is the same whatever the processing order. ``replication``
    r draws the r-th of a set of independent logs (Monte Carlo); ``pilot`` j draws the j-th
    of another set, independent of both (to fit reward models ahead of the evaluation log).

    Parameters
    ----------
    scenario : Scenario
    mixture : Mixture
        The logging mixture of K components.
    n : int
        Customers.
    seed : int
    replication, pilot : int, optional
        At most one of them.

    Returns
    -------
    BanditFeedback
        ``simulate_block``'s keys for all n customers, with ``expected_reward`` (n, A) (the reward's unit), ``n_rounds``,
        ``n_actions``, ``n_strata`` (K), ``position`` (None) and ``component_names``.

    Raises
    ------
    CouponmixError
        n not positive.
    ValueError
        Both a replication and a pilot.
    """
    n = check_positive_int(n, "n")
    if pilot is not None and replication is not None:
        raise ValueError("a log is either a pilot or a replication")
    key = ("pilot", pilot) if pilot is not None else ("log",) if replication is None else ("replication", replication)
    parts = [simulate_block(scenario, mixture, min(BLOCK, n - start), stream(seed, *key, b)) for b, start in enumerate(range(0, n, BLOCK))]
    log = cast(BanditFeedback, {key: np.concatenate([cast(dict, part)[key] for part in parts]) for key in parts[0]})
    log.update(
        BanditFeedback(
            expected_reward=scenario.mu(log["context"]),
            n_rounds=n,
            n_actions=scenario.n_actions,
            n_strata=len(mixture.names),
            position=None,
            component_names=mixture.names,
        )
    )
    return log

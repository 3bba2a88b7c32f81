"""Named, reproducible random streams.

Every random draw in couponmix comes from ``stream(seed, purpose, index)``: a
generator seeded by the user's seed, a fixed code for what the draws are for
(covariates of the evaluation sample, a simulated log, a Monte Carlo
replication, ...) and an index (block of customers, replication number). So
results never depend on the order work is done in, on chunk sizes that are
multiples of ``BLOCK``, or on how many workers share it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BLOCK", "PURPOSES", "stream", "fit_seed"]

#: customers per random-number block of a simulated log
BLOCK = 1 << 16

PURPOSES = {
    "evaluation_sample": 1,
    "log": 2,
    "replication": 3,
    "optimiser": 4,
    "truth": 5,
    "history": 6,
    "model": 7,
    "calibration": 8,
    "pilot": 9,
    "fit": 10,
    "evaluation_population": 11,
    "model-error": 12,
    "contextual_search": 13,
    "campaign": 14,
    "reward_draws": 15,
}


def stream(seed: int, purpose: str, *index: int) -> np.random.Generator:
    """The random generator of ``(seed, purpose, *index)``: the same numbers for the same key, independent ones for
    different keys. ``purpose`` is a name in ``PURPOSES``; ``index`` e.g. a block or replication number.

    Parameters
    ----------
    seed : int
        The user's seed.
    purpose : str
        A key of ``PURPOSES``.
    *index : int
        E.g. a block or replication number.

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    KeyError
        An unknown purpose.
    """
    return np.random.default_rng(np.random.SeedSequence([int(seed), PURPOSES[purpose], *map(int, index)]))


def fit_seed(seed: int, *index: int) -> int:
    """An integer random_state for a library that takes one (a model fit's fold shuffling).

    Parameters
    ----------
    seed : int
    *index : int
        What the fit is (e.g. a fold).

    Returns
    -------
    int
        In [0, 2^31 - 1), from the stream ``(seed, "fit", *index)``.
    """
    return int(stream(seed, "fit", *index).integers(2**31 - 1))

import atexit
import os
import shutil
import tempfile

# Under pytest-xdist each worker is its own process: one thread each keeps the cores from being
# oversubscribed (LightGBM's OpenMP threads spin while they wait).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("COUPONMIX_THREADS", "1")

# The trained-model cache of the test run: a folder of its own (never the user's ~/.cache), removed at exit.
if "COUPONMIX_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="couponmix-test-cache-")
    os.environ["COUPONMIX_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from couponmix.ope.objectives import EvaluationSample  # noqa: E402
from simulators import get_scenario  # noqa: E402

#: Monte Carlo size: CI runs "reduced"; `make test-full` sets COUPONMIX_MC_SCALE=full.
MC_SCALE = os.environ.get("COUPONMIX_MC_SCALE", "reduced")


def mc_reps(reduced: int, full: int) -> int:
    return full if MC_SCALE == "full" else reduced


@pytest.fixture(scope="session")
def paper():
    return get_scenario("paper")


@pytest.fixture(scope="session")
def paper_floor():
    return get_scenario("paper_floor")


@pytest.fixture(scope="session")
def paper_sample(paper):
    return EvaluationSample.from_scenario(paper, 200_000, seed=11)


@pytest.fixture(scope="session")
def floor_sample(paper_floor):
    return EvaluationSample.from_scenario(paper_floor, 200_000, seed=12)


def assert_within_se(estimate, truth, se, z=4.0, what=""):
    """|estimate - truth| <= z standard errors (se > 0)."""
    assert se > 0, f"{what}: standard error must be positive"
    assert abs(estimate - truth) <= z * se, f"{what}: {estimate} vs {truth} (se {se}, z {(estimate - truth) / se:.2f})"


def mean_and_se(values):
    values = np.asarray(values, dtype=float)
    return values.mean(), values.std(ddof=1) / np.sqrt(len(values))

import numpy as np
import pytest

from couponmix.errors import CouponmixError
from couponmix.policy.policies import Policy, binary, one_hot


def test_policy_output_is_checked():
    x = np.zeros((4, 2))
    good = Policy("good", lambda x: binary(np.full(len(x), 0.3)), 2)
    np.testing.assert_allclose(good(x), [[0.7, 0.3]] * 4)
    cases = [
        (lambda x: np.full((len(x), 2), 0.6), "do not sum to 1"),
        (lambda x: np.column_stack([np.full(len(x), np.nan), np.ones(len(x))]), "NaN"),
        (lambda x: np.column_stack([-np.ones(len(x)), 2 * np.ones(len(x))]), "negative"),
        (lambda x: np.ones((len(x), 1)), "returned 1 actions"),
        (lambda x: np.ones((len(x) + 1, 2)) / 2, "rows for 4 customers"),
    ]
    for fn, msg in cases:
        with pytest.raises(CouponmixError, match=msg):
            Policy("bad", fn, 2)(x)


def test_one_hot():
    np.testing.assert_array_equal(one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])


def test_non_second_moment_is_refused(paper):
    from couponmix.ope.objectives import EvaluationSample

    class Broken(type(paper)):
        def m2(self, x):
            return np.zeros((len(x), 2)) + 0.1  # below mu^2 where mu = x2 + x3 is large

    with pytest.raises(CouponmixError, match="m2 < mu"):
        EvaluationSample.from_scenario(Broken(), 1000)


def test_lightgbm_threads_follow_the_free_cores_and_do_not_change_the_model(monkeypatch):
    """free_threads: every core on an idle machine, fewer under load, at least 1, COUPONMIX_THREADS first; and a
    revenue model fitted with one thread predicts exactly what one fitted with two does."""
    import os

    import numpy as np

    from couponmix.infra import threads
    from couponmix.policy.revenue_model import CrossFittedRevenueModel

    monkeypatch.delenv("COUPONMIX_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.0, 0.0, 0.0))  # this process alone
    assert threads.free_threads() == 4
    monkeypatch.setattr(os, "getloadavg", lambda: (3.2, 0.0, 0.0))  # two other busy processes and a bit
    assert threads.free_threads() == 2
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 0.0, 0.0))
    assert threads.free_threads() == 1
    monkeypatch.setenv("COUPONMIX_THREADS", "3")
    assert threads.free_threads() == 3
    monkeypatch.setenv("COUPONMIX_CACHE", "off")  # each fit really trains
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 3))
    a = rng.integers(0, 3, 4000)
    r = x[:, 0] + a * x[:, 1] + rng.normal(size=4000)
    fits = [CrossFittedRevenueModel(3, [0, 1, 2], params={"n_estimators": 30}, threads=t).fit(x, a, r) for t in (1, 2)]
    assert np.array_equal(fits[0].predict(x[:500]), fits[1].predict(x[:500]))

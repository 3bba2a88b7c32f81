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

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from couponmix.errors import CouponmixError
from couponmix.policy.simplex import barycentre, check_alpha, parse_alpha_spec, project

K = 4
finite = st.floats(-5, 5, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(y=arrays(float, (3, K), elements=finite), floor=st.floats(0, 0.2))
def test_projection_is_feasible_idempotent_and_nearest(y, floor):
    floors = np.full(K, floor)
    a = project(y, floors)
    assert np.all(a >= floors - 1e-12)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(project(a, floors), a, atol=1e-12)
    # optimality (variational inequality) checked at every vertex of the feasible polytope
    vertices = floors + (1 - floors.sum()) * np.eye(K)
    for row_y, row_a in zip(y, a):
        assert np.all((vertices - row_a) @ (row_y - row_a) <= 1e-9)


def test_barycentre_is_interior():
    c = barycentre(0.01, 3)
    assert np.all(c > 0.01) and c.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "alpha,msg",
    [
        ([0.5, 0.6, -0.1], "negative"),
        ([0.2, 0.2, 0.2], "sum to 0.6"),
        ([np.nan, 0.5, 0.5], "NaN"),
        ([0.5, 0.5], "3 weights"),
    ],
)
def test_alpha_off_the_simplex_is_refused(alpha, msg):
    with pytest.raises(CouponmixError, match=msg):
        check_alpha(alpha, 3)


def test_alpha_below_floor_is_refused():
    with pytest.raises(CouponmixError, match="below its floor"):
        check_alpha([0.0, 0.5, 0.5], 3, floors=0.01, names=["a", "b", "c"])


def test_parse_alpha_spec():
    np.testing.assert_allclose(parse_alpha_spec("pi1=0.2, pi2=0.4,pi3=0.4", ["pi1", "pi2", "pi3"]), [0.2, 0.4, 0.4])
    np.testing.assert_allclose(parse_alpha_spec("pi2=1", ["pi1", "pi2", "pi3"]), [0, 1, 0])
    for bad, msg in [("pi9=1", "unknown component"), ("pi1", "NAME=WEIGHT"), ("pi1=x", "not a number"), ("pi1=0.5", "sum to 0.5")]:
        with pytest.raises(CouponmixError, match=msg):
            parse_alpha_spec(bad, ["pi1", "pi2", "pi3"])


def test_rate_mixture_sends_exactly_eps_to_exploration():
    """An exploration rate as a mixture: the exploit component exactly 1 - eps, the explorer exactly eps, for
    rates of any shape, and a direction spreads eps over several components."""
    import numpy as np

    from couponmix.policy.simplex import rate_mixture

    eps = np.array([[0.0, 0.1], [0.37, 1.0]])
    a = rate_mixture(3, 2, 0, eps)
    assert a.shape == (2, 2, 3)
    assert np.array_equal(a[..., 2], 1 - eps) and np.array_equal(a[..., 0], eps) and not a[..., 1].any()
    spread = rate_mixture(3, 0, [0.0, 0.5, 0.5], 0.2)
    assert np.allclose(spread, [0.8, 0.1, 0.1]) and spread.shape == (3,)

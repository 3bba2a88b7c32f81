"""Infinite IPS variance is detected (analytically and empirically) in the paper setting, not with a floor."""

import numpy as np
import pytest

from couponmix.errors import CouponmixError
from couponmix.ope.divergence import empirical_verdict, growth, hill_tail_index, weight_verdict
from couponmix.ope.estimators import EstimatorSpec
from couponmix.ope.selection import choose_candidates, choose_estimator

CENTRE = np.ones(3) / 3


@pytest.mark.parametrize("index", [0.8, 1.5, 3.0])
def test_hill_estimator_recovers_pareto_tail_index(index):
    rng = np.random.default_rng(7)
    y = rng.random(400_000) ** (-1.0 / index)  # P(Y > y) = y^-index
    est, se, k = hill_tail_index(y)
    assert k > 100
    assert abs(est - index) <= 4 * se


def test_hill_estimator_calls_bounded_data_infinite_index():
    est, _, _ = hill_tail_index(np.minimum(np.random.default_rng(1).random(10_000) * 5, 3.0))
    assert np.isinf(est)


def test_paper_is_infinite_for_every_interior_mixture_analytically(paper):
    rng = np.random.default_rng(0)
    for alpha in np.vstack([CENTRE, rng.dirichlet(np.ones(3), 50), [[0.98, 0.01, 0.01]]]):
        for t in paper.targets():
            v = paper.weight_moment_verdict(t, alpha)
            assert (v.status, v.method) == ("infinite", "analytic")
            assert "x1" in v.reason


def test_paper_without_pi1_is_unsupported_not_infinite(paper):
    v = paper.weight_moment_verdict("pi_e1", np.array([0.0, 0.5, 0.5]))
    assert v.status == "unsupported" and not v.finite


def test_floor_makes_it_finite_analytically(paper_floor):
    for alpha in (CENTRE, np.array([0.98, 0.01, 0.01]), np.array([1.0, 0.0, 0.0])):
        for t in paper_floor.targets():
            assert paper_floor.weight_moment_verdict(t, alpha).finite


def test_empirical_detector_agrees_at_the_centre(paper_sample, floor_sample):
    for t in range(2):
        bad = empirical_verdict(paper_sample.target_probs[t], paper_sample.balanced(CENTRE))
        assert bad.status == "infinite" and bad.method == "empirical"
        assert abs(bad.evidence["tail_index"] - 1.0) < 4 * bad.evidence["tail_index_se"]
        good = empirical_verdict(floor_sample.target_probs[t], floor_sample.balanced(CENTRE))
        assert good.status == "finite"


def test_infinite_second_moment_keeps_growing_with_sample_size(paper_sample, floor_sample):
    from couponmix.ope.divergence import weight_contributions

    y_bad, _ = weight_contributions(paper_sample.target_probs[0], paper_sample.balanced(CENTRE))
    y_good, _ = weight_contributions(floor_sample.target_probs[0], floor_sample.balanced(CENTRE))

    # log divergence: E over M customers grows like c * log M. Average over disjoint blocks to
    # compare sizes without the noise of a single prefix.
    def block_mean(y, size):
        blocks = y[: len(y) // size * size].reshape(-1, size)
        return blocks.mean(axis=1).mean(), np.median(blocks.mean(axis=1))

    _, med_small = block_mean(y_bad, 200)
    _, med_large = block_mean(y_bad, 50_000)
    assert med_large > med_small * 1.05  # the typical sample value climbs with the sample size
    _, g_small = block_mean(y_good, 200)
    _, g_large = block_mean(y_good, 50_000)
    assert g_large == pytest.approx(g_small, rel=0.05)  # a finite moment settles
    assert [g["sample_size"] for g in growth(y_bad)] == sorted(g["sample_size"] for g in growth(y_bad))


def test_weight_verdict_prefers_analytic(paper, paper_sample):
    v = weight_verdict(paper, paper_sample, "pi_e2", CENTRE)
    assert v.method == "analytic"


def test_unbounded_estimators_are_refused_where_variance_is_infinite(paper, paper_sample):
    """A forced estimator with unclipped weights is refused where plain IPS diverges; without one, the candidates
    leave every unclipped estimator out and say why; a clipped one is kept as forced."""
    verdicts = {t: weight_verdict(paper, paper_sample, t, CENTRE) for t in paper.targets()}
    for kind in ("ips", "snips"):
        with pytest.raises(CouponmixError, match="infinite variance"):
            choose_estimator(EstimatorSpec(kind), verdicts, "paper")
    specs, why = choose_candidates(None, verdicts, "paper")
    assert specs and not any(s.has_unbounded_weights for s in specs) and "infinite" in why
    spec, _ = choose_estimator(EstimatorSpec("clipped_ips", 4.0), verdicts, "paper")
    assert spec.clip == 4.0


def test_every_exact_estimator_is_a_candidate_when_the_variance_is_finite(paper_floor, floor_sample):
    verdicts = {t: weight_verdict(paper_floor, floor_sample, t, CENTRE) for t in paper_floor.targets()}
    specs, _ = choose_candidates(None, verdicts, "paper_floor")
    assert {"ips", "snips", "dr", "sndr"} <= {s.name for s in specs}

"""A new estimator is one record plus its weight function: DR with optimistic shrinkage (obp's
DoublyRobustWithShrinkage), added here without touching couponmix, is optimised, explained and run."""

import numpy as np
import pytest

from couponmix.ope.criterion import Criterion
from couponmix.ope.estimators import KINDS, WEIGHTS, EstimatorKind, EstimatorSpec, WeightFunction, register_estimator, register_weight
from couponmix.ope.montecarlo import monte_carlo
from couponmix.ope.objectives import MixtureObjectives

from .conftest import mc_reps


def _shrink(w, lam):
    return lam * w / (w * w + lam)


def _rows_shrink(pe, p, inv, lam, all_pos):
    sup = np.broadcast_to(pe, p.shape) if all_pos else pe * (p > 0)
    w = pe * inv
    d = w * w + lam
    return lam * sup / d, (lam * lam) * (w * w) * p / (d * d), sup


@pytest.fixture
def dr_os():
    register_weight(WeightFunction("shrink", _shrink, _rows_shrink))
    register_estimator(
        EstimatorKind(
            "dr_os",
            "DR-os",
            "the revenue model corrected by shrunk reweighted revenue",
            "doubly robust with optimistic shrinkage of the weights",
            "shrink",
            clip="needs",
            reward_model="fixed",
            obp="DoublyRobustWithShrinkage",
        )
    )
    yield EstimatorSpec.parse("dr_os", 5.0)
    del KINDS["dr_os"], WEIGHTS["shrink"]


def test_the_record_drives_the_exact_engine_and_obp(dr_os, paper_floor):
    assert dr_os.name == "dr_os(5)" and dr_os.uses_reward_model and not dr_os.has_unbounded_weights
    assert "DoublyRobustWithShrinkage" in dr_os.obp_name()
    alpha = [0.4, 0.3, 0.3]
    res = monte_carlo(paper_floor, alpha, [dr_os], 2000, mc_reps(150, 1000), seed=4, eval_size=100_000, workers=1)[dr_os.name]
    for t, r in res.items():
        assert abs(r.mc_mse - r.analytic_rmse**2) <= 3 * r.mc_mse_se, (t, r.mc_mse, r.analytic_rmse**2)


def test_the_decision_can_choose_it(dr_os, floor_sample):
    crit = Criterion(floor_sample, [EstimatorSpec("dr"), dr_os], 2000)
    law = crit.laws(np.array([[0.4, 0.3, 0.3]]))[0]
    alone = MixtureObjectives(floor_sample, dr_os, 2000).laws(np.array([[0.4, 0.3, 0.3]]))[0]
    assert law.per_estimator(2000)[1, 0] == pytest.approx(float(alone.robust_rmse(2000)[0]), rel=1e-12)
    assert np.isfinite(law.rmse(2000)).all()

"""The revenue model's tree count, chosen by early stopping on the cross-fitting folds, checked against an
independent rerun of the rule on fully grown models."""

from __future__ import annotations

import numpy as np
import pytest

from couponmix.errors import CouponmixError
from couponmix.infra.seeding import stream
from couponmix.policy.revenue_model import CrossFittedRevenueModel, common_trees


def test_common_trees_minimises_the_size_weighted_sum_over_the_shortest_curve():
    a = np.array([5.0, 3.0, 2.0, 2.5, 1.0])  # fold 0 keeps improving, but fold 1 stopped after 4
    b = np.array([5.0, 4.0, 3.0, 3.2])
    assert common_trees([a, b], [1.0, 1.0]) == 3  # 5.0 at 3 trees against 5.7 at 4; the 5th is beyond fold 1
    assert common_trees([np.array([1.0, 2.0]), np.array([3.0, 1.0])], [1.0, 3.0]) == 2  # 10 > 5: weights count
    assert common_trees([np.array([2.0, 2.0, 2.0])], [1.0]) == 1  # ties go to fewer trees


def _log(n: int = 6000, seed: int = 3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    a = rng.integers(0, 3, n)
    r = x[:, 0] * (a == 1) + np.sin(x[:, 1]) * a + rng.normal(scale=2.0, size=n)
    w = 1.0 / rng.uniform(0.2, 1.0, n)
    return x, a, r, w


def _held_out_curves(full: CrossFittedRevenueModel, x, a, r, w, patience: int):
    """Each fold's held-out (weighted) squared error for 1..n_estimators trees, cut where LightGBM's early
    stopping would have stopped: ``patience`` trees after the last strict improvement."""
    fold = stream(full.seed, "model", 0).permutation(len(x)) % full.folds
    curves, sizes = [], []
    for k, booster in enumerate(full.models_):
        held = fold == k
        design = full._design(x[held], a[held])
        trees = range(1, booster.num_trees() + 1)
        errors = np.array([np.average((booster.predict(design, num_iteration=t) - r[held]) ** 2, weights=w[held]) for t in trees])
        best, stop = 0, len(errors)
        for t in range(1, len(errors)):
            if errors[t] < errors[best]:
                best = t
            elif t - best >= patience:
                stop = t + 1
                break
        curves.append(errors[:stop])
        sizes.append(w[held].sum())
    return fold, curves, sizes


@pytest.mark.parametrize("weighted", [False, True])
def test_the_fold_models_are_the_fully_grown_ones_cut_where_the_summed_held_out_error_is_least(weighted, tmp_path, monkeypatch):
    monkeypatch.setenv("COUPONMIX_CACHE", "off")
    x, a, r, w = _log()
    sw = w if weighted else None
    params = dict(n_estimators=150, learning_rate=0.1, num_leaves=15, min_child_samples=20)
    cut = CrossFittedRevenueModel(3, [0, 1, 2], params=params, seed=4, threads=1, patience=10).fit(x, a, r, sw)
    full = CrossFittedRevenueModel(3, [0, 1, 2], params=params, seed=4, threads=1, patience=None).fit(x, a, r, sw)
    assert full.trees_ == 150
    fold, curves, sizes = _held_out_curves(full, x, a, r, w if weighted else np.ones(len(x)), patience=10)
    length = min(len(c) for c in curves)
    summed = sum(s * c[:length] for c, s in zip(curves, sizes))
    assert cut.trees_ == int(np.argmin(summed)) + 1 < 150  # the noisy log is overfitted well before 150 trees

    # the cut models are the first trees of the fully grown ones, and the out-of-fold predictions are theirs
    def every_action(rows):
        return full._design(np.repeat(x[rows], 3, axis=0), np.tile(np.arange(3), len(x[rows])))

    t = cut.trees_
    for k in range(2):
        design = every_action(slice(0, 500))
        np.testing.assert_allclose(cut.models_[k].predict(design), full.models_[k].predict(design, num_iteration=t), rtol=0, atol=1e-12)
        expect = full.models_[k].predict(every_action(fold == k), num_iteration=t).reshape(-1, 3)
        np.testing.assert_allclose(cut.out_of_fold()[fold == k], expect, rtol=0, atol=1e-12)
    # fewer trees fit the truth better here than all of them
    truth = np.stack([x[:, 0] * (k == 1) + np.sin(x[:, 1]) * k for k in range(3)], axis=1)
    assert np.mean((cut.out_of_fold() - truth) ** 2) < np.mean((full.out_of_fold() - truth) ** 2)


def test_patience_is_checked_and_keyed_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COUPONMIX_CACHE_DIR", str(tmp_path))
    with pytest.raises(CouponmixError, match="patience"):
        CrossFittedRevenueModel(3, [0, 1, 2], patience=0)
    x, a, r, _ = _log(2000)
    params = dict(n_estimators=60, min_child_samples=20)
    cut = CrossFittedRevenueModel(3, [0, 1, 2], params=params, threads=1, patience=3).fit(x, a, r)
    full = CrossFittedRevenueModel(3, [0, 1, 2], params=params, threads=1, patience=None).fit(x, a, r)
    again = CrossFittedRevenueModel(3, [0, 1, 2], params=params, threads=1, patience=3).fit(x, a, r)
    assert full.trees_ == 60 and cut.trees_ < 60 and again.trees_ == cut.trees_

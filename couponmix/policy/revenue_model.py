"""The revenue model: LightGBM predicting E[r | x, a] for every action, cross-fitted.

One gradient-boosted model per fold takes the chosen covariate columns plus the
action (categorical) as features. With K folds, fold k's model is trained on
the other folds; rows of the training log get out-of-fold predictions (so the
model is never judged on its own training data) and new customers get the
average of the K models.

The number of trees is chosen on the folds themselves: each fold model grows up to ``n_estimators`` trees
while its held-out fold's squared error is recorded (stopping ``patience`` rounds after that error last fell),
and every fold model is cut to the one count that minimises the held-out error summed over the folds. It is
cross-validation of a single setting; the out-of-fold predictions come from the cut models. ``patience=None``
grows every fold model to ``n_estimators`` trees.

A fit is kept in couponmix's model cache (``couponmix.infra.cache``), keyed by the parameters, the seed,
the training data and the library versions; the same fit asked again is read back, bit for bit.

Why obp's ``RegressionModel`` is not used here (it is, for ``dr_fitted``, in ``ope.fitted_reward``):
this model must also predict for new customers (the mean of the fold models), which ``RegressionModel``
does not offer; ``dr_fitted`` instead reproduces obp's own cross-fitting on a log, as a team would run it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from couponmix.errors import CouponmixError
from couponmix.infra import cache
from couponmix.infra.seeding import stream
from couponmix.infra.threads import free_threads
from couponmix.infra.validation import check_positive_int
from couponmix.policy import compiled

__all__ = ["PREDICTION_CACHE", "DEFAULT_PARAMS", "DEFAULT_PATIENCE", "CrossFittedRevenueModel", "common_trees"]

PREDICTION_CACHE = 3
#: ``n_estimators`` is the most trees a fold model may grow; early stopping on the folds picks the count
DEFAULT_PARAMS = dict(n_estimators=200, learning_rate=0.05, num_leaves=31, min_child_samples=50)
#: rounds without a lower held-out error before a fold model stops growing
DEFAULT_PATIENCE = 20


def common_trees(curves: Sequence[np.ndarray], sizes: Sequence[float]) -> int:
    """The tree count shared by every fold model: the one minimising the held-out squared error summed over
    the folds. Counts beyond the shortest curve (a fold that stopped early) are not considered. Ties go to
    the fewer trees.

    Parameters
    ----------
    curves : sequence of ndarray, each (T_k,)
        Each fold's mean held-out squared error (reward's unit squared) after 1, 2, ... trees.
    sizes : sequence of float, (folds,)
        Each fold's held-out size: rows, or their summed weight.

    Returns
    -------
    int
        The tree count, >= 1.
    """
    length = min(len(c) for c in curves)
    total = sum(float(w) * np.asarray(c[:length], float) for c, w in zip(curves, sizes))
    return int(np.argmin(total)) + 1


def _stop_after(patience: int):
    """A LightGBM callback that stops growing ``patience`` trees after the held-out error last strictly fell,
    keeping every tree grown. (LightGBM's own ``early_stopping`` cuts the model to that fold's best count,
    where the count must be chosen over all folds.)"""
    import lightgbm as lgb

    best = [np.inf, 0]

    def callback(env) -> None:
        """Record the best held-out error so far; stop once it is ``patience`` trees old."""
        score = env.evaluation_result_list[0][2]
        if score < best[0]:
            best[:] = [score, env.iteration]
        elif env.iteration - best[1] >= patience:
            raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list)

    callback.order = 30  # type: ignore[attr-defined]  # after the evaluation is recorded
    return callback


class CrossFittedRevenueModel:
    """scikit-learn style: ``fit(x, action, reward)``, then ``predict(x) -> (n, A)``.

    Parameters
    ----------
    n_actions : int
        A, >= 2.
    features : sequence of int
        The covariate columns the model uses.
    categorical : sequence of int
        Columns of ``features`` that are categorical (any other column is ignored).
    folds : int
        Cross-fitting folds, >= 2.
    params : dict, optional
        LightGBM parameters over ``DEFAULT_PARAMS``.
    seed : int
        Seeds LightGBM and the split into folds.
    threads : int, optional
        LightGBM's threads (default: ``free_threads()``).
    patience : int, optional
        Early-stopping rounds (``DEFAULT_PATIENCE``); None grows ``n_estimators`` trees.

    Raises
    ------
    CouponmixError
        n_actions < 2, folds < 2, or threads or patience not a positive integer.
    """

    def __init__(
        self,
        n_actions: int,
        features: Sequence[int],
        categorical: Sequence[int] = (),
        folds: int = 2,
        params: dict | None = None,
        seed: int = 0,
        threads: int | None = None,
        patience: int | None = DEFAULT_PATIENCE,
    ):
        self.n_actions = check_positive_int(n_actions, "n_actions", minimum=2)
        self.features = list(features)
        self.categorical = [self.features.index(c) for c in categorical if c in self.features]
        self.folds = check_positive_int(folds, "folds", minimum=2)
        self.params = {**DEFAULT_PARAMS, **(params or {})}
        self.seed = seed
        self.threads = free_threads() if threads is None else check_positive_int(threads, "threads")
        self.patience = None if patience is None else check_positive_int(patience, "patience")

    def _design(self, x: np.ndarray, action: np.ndarray) -> np.ndarray:
        return np.column_stack([x[:, self.features], action])

    def _new_model(self):
        import lightgbm as lgb

        return lgb.LGBMRegressor(
            **self.params, random_state=self.seed, deterministic=True, force_row_wise=True, n_jobs=self.threads, verbose=-1
        )

    def fit(
        self, x: np.ndarray, action: np.ndarray, reward: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> CrossFittedRevenueModel:
        """Fit on a log (or read the same fit back from the model cache).

        Parameters
        ----------
        x : ndarray, (n, d)
            Covariates.
        action : ndarray of int, (n,)
            Logged actions.
        reward : ndarray, (n,)
            Logged rewards (net revenue, the reward's unit).
        sample_weight : ndarray, (n,), optional
            Row weights, e.g. the inverse logged propensity, so that the model does not inherit the logging
            policy's selection.

        Returns
        -------
        CrossFittedRevenueModel
            self, fitted.

        Raises
        ------
        CouponmixError
            Inputs of different lengths, rewards not finite, or fewer than 10 customers per fold.
        """
        x, action, reward = np.asarray(x, float), np.asarray(action), np.asarray(reward, float)
        if not (len(x) == len(action) == len(reward)):
            raise CouponmixError("revenue model: x, action and reward have different lengths")
        if not np.isfinite(reward).all():
            raise CouponmixError("revenue model: rewards contain NaN or infinite values")
        n = len(x)
        if n < 10 * self.folds:
            raise CouponmixError(f"revenue model: {n} logged customers are too few to cross-fit {self.folds} folds")
        entry = cache.key(
            "CrossFittedRevenueModel",
            {
                "n_actions": self.n_actions,
                "features": self.features,
                "categorical": self.categorical,
                "folds": self.folds,
                "params": self.params,
                "seed": self.seed,
                "patience": self.patience,
            },
            (x[:, self.features], np.asarray(action, np.int64), reward)
            + (() if sample_weight is None else (np.asarray(sample_weight, float),)),
        )
        hit = cache.load(entry)
        if hit is not None:
            import lightgbm as lgb

            texts, arrays = hit
            self.models_ = [lgb.Booster(model_str=t) for t in texts]
            self.oof_ = arrays["oof"]
            return self
        self._fit_folds(x, action, reward, None if sample_weight is None else np.asarray(sample_weight, float))
        cache.store(entry, [m.model_to_string() for m in self.models_], {"oof": self.oof_})
        return self

    def _fit_folds(self, x: np.ndarray, action: np.ndarray, reward: np.ndarray, weight: np.ndarray | None) -> None:
        """Grow every fold model, each watched on its held-out fold, cut them all to the common tree count
        (``common_trees``) and predict the held-out rows with the cut models."""
        import lightgbm as lgb

        n = len(x)
        fold = stream(self.seed, "model", 0).permutation(n) % self.folds
        cat = self.categorical + [len(self.features)]  # the action column is categorical too
        boosters, curves, sizes = [], [], []
        for k in range(self.folds):
            train, held = fold != k, fold == k
            w_held = None if weight is None else weight[held]
            watch: dict = {}
            if self.patience is not None:
                watch = dict(
                    eval_X=(self._design(x[held], action[held]),),
                    eval_y=(reward[held],),
                    eval_sample_weight=None if w_held is None else [w_held],
                    eval_metric="l2",
                    callbacks=[_stop_after(self.patience)],
                )
            model = self._new_model()
            w_train = None if weight is None else weight[train]
            model.fit(self._design(x[train], action[train]), reward[train], sample_weight=w_train, categorical_feature=cat, **watch)
            boosters.append(model.booster_)
            if self.patience is not None:
                curves.append(np.asarray(model.evals_result_["valid_0"]["l2"], float))
                sizes.append(float(held.sum()) if w_held is None else float(w_held.sum()))
        if self.patience is None:  # every tree asked for
            self.models_ = boosters
        else:
            trees = common_trees(curves, sizes)
            self.models_ = [lgb.Booster(model_str=b.model_to_string(num_iteration=trees)) for b in boosters]
        self.oof_ = np.empty((n, self.n_actions))
        for k, b in enumerate(self.models_):
            held = fold == k
            self.oof_[held] = self._predict_with(b, x[held], compile_ok=False)

    @property
    def trees_(self) -> int:
        """The number of trees in each fold model, as chosen on the folds; a ``CouponmixError`` before ``fit``."""
        if not hasattr(self, "models_"):
            raise CouponmixError("revenue model is not fitted")
        return int(self.models_[0].num_trees())

    def _predict_with(self, model, x: np.ndarray, compile_ok: bool = True) -> np.ndarray:
        """One fold model's predictions (n, A). ``compile_ok`` False: LightGBM's own predict, for the
        out-of-fold predictions of a fit, which each fold model makes once (compiling would not pay)."""
        n = len(x)
        design = self._design(np.repeat(x, self.n_actions, axis=0), np.tile(np.arange(self.n_actions), n))
        if not compile_ok:
            return model.predict(design, num_threads=self.threads).reshape(n, self.n_actions)
        return compiled.predict(model, design, self.threads).reshape(n, self.n_actions)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted net revenue of every action for new customers: the mean of the fold models.

        Several policies built on one model ask for the same customers in turn, so the result for the
        last few array objects is kept (by identity; arrays passed here must not be changed in place).

        Parameters
        ----------
        x : ndarray, (n, d)
            Covariates.

        Returns
        -------
        ndarray, (n, A)
            Read-only predictions, in the reward's unit per customer.

        Raises
        ------
        CouponmixError
            The model is not fitted.
        """
        if not hasattr(self, "models_"):
            raise CouponmixError("revenue model is not fitted")
        cache = self.__dict__.setdefault("_cache", [])
        for xc, pred in cache:
            if xc is x:
                return pred
        pred = np.mean([self._predict_with(m, np.asarray(x, float)) for m in self.models_], axis=0)
        pred.setflags(write=False)
        cache.append((x, pred))
        del cache[:-PREDICTION_CACHE]
        return pred

    def predict_fold(self, x: np.ndarray, k: int) -> np.ndarray:
        """Predictions of fold ``k``'s model alone (trained on the other folds); kept for the last few array
        objects like ``predict``.

        Parameters
        ----------
        x : ndarray, (n, d)
            Covariates.
        k : int
            The fold, in [0, folds).

        Returns
        -------
        ndarray, (n, A)
            Read-only predictions, in the reward's unit per customer.
        """
        cache = self.__dict__.setdefault("_fold_cache", [])
        for xc, kc, pred in cache:
            if xc is x and kc == k:
                return pred
        pred = self._predict_with(self.models_[k], np.asarray(x, float))
        pred.setflags(write=False)
        cache.append((x, k, pred))
        del cache[:-PREDICTION_CACHE]
        return pred

    def to_texts(self) -> list[str]:
        """The fold models in LightGBM's text format (data, not code)."""
        return [m.model_to_string() for m in self.models_]

    def load_texts(self, texts: list[str], oof: np.ndarray | None = None) -> CrossFittedRevenueModel:
        """The fold models back from ``to_texts`` (predictions are identical).

        Parameters
        ----------
        texts : list of str, (folds,)
            The fold models in LightGBM's text format.
        oof : ndarray, (n, A), optional
            The out-of-fold predictions of the fit, when kept.

        Returns
        -------
        CrossFittedRevenueModel
            self.

        Raises
        ------
        CouponmixError
            Not one text per fold.
        """
        import lightgbm as lgb

        if len(texts) != self.folds:
            raise CouponmixError(f"revenue model: {len(texts)} fold models given, {self.folds} expected")
        self.models_ = [lgb.Booster(model_str=t) for t in texts]
        if oof is not None:
            self.oof_ = oof
        return self

    def out_of_fold(self) -> np.ndarray:
        """Predictions for the training rows, each from the model that did not see it: (n, A), reward's unit."""
        return self.oof_

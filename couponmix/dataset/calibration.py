"""Calibration: a team's own coupon log turned into a scenario folder, with the honesty gates that guard it.

The world the folder describes is ``couponmix.dataset.calibrated.CalibratedScenario``.

``calibrate(log, out, config)`` reads the log (``reallog``), fits the world's reward model and writes a
scenario folder that every command takes in place of a scenario name. In that world:

- customers are drawn (with replacement) from the log's customers;
- mu(x, a) is a cross-fitted LightGBM model of the reward, weighted by the inverse logged propensity when
  the log is not uniform (so that it does not inherit the logging policy's selection). Actions with too few
  positive outcomes (binary rewards) cannot be fitted: their mu is their click rate shrunk toward the
  overall rate (a Beta prior worth ``min_positive`` clicks);
- m2(x, a): a binary reward is Bernoulli, so m2 = mu; a continuous reward gets a second model of r^2, floored
  at mu^2 + 1% of the log's reward variance. Simulated continuous rewards have that mean and variance and
  the log's own shape (mu + sd z, z resampled from the log's standardised residuals of the action), so
  heavy tails survive; the exact objectives use only mu and m2, which match the fitted ones;
- the reward model the estimators use (the team's production model) is fold 0's model alone, trained on
  half of the log, so it differs from mu as a real model differs from the world; its per-action RMSE against
  mu is the model-error bound of the decision's criterion.

**Honesty gates.** Out of fold, the model must predict better than the per-action means (paired difference
of squared errors, more than one standard error). When it does not, ``fallback`` decides: ``means`` (the
default) builds the world from shrunk per-action means and says so, ``refuse`` stops, ``model`` keeps the
model and says so. Either way the warning is written to the folder and repeated by every report built on it.
Every value the calibrated world gives is a model estimate, not a measurement; reports say so and show,
beside each, the estimate from the real log itself with its 95% interval where the log has propensities.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from couponmix.dataset.calibration_config import CARD, CalibrateConfig, PolicySpec, load_calibrate_config, sha256_of
from couponmix.dataset.reallog import RealLog, read_log
from couponmix.dataset.scenario import SCENARIO_FILE
from couponmix.errors import CouponmixError
from couponmix.infra.atomic import check_output_dir, write_outputs
from couponmix.infra.records import OPTIONAL, Record
from couponmix.infra.seeding import stream
from couponmix.infra.validation import did_you_mean
from couponmix.policy.revenue_model import CrossFittedRevenueModel

__all__ = [
    "ActionFit",
    "CalibrationBin",
    "CalibrationDiagnostics",
    "CalibrationResult",
    "PHASES",
    "PHASE_WEIGHTS",
    "balanced_propensity",
    "calibrate",
    "fold_of",
    "gate_outcome",
    "ipw",
    "shrunk_means",
]


@dataclass
class CalibrationBin(Record):
    """One tenth of the log's rows by the model's out-of-fold prediction: the mean prediction beside the mean reward."""

    predicted: float  #: the rows' mean out-of-fold prediction (reward's unit per customer)
    observed: float  #: their mean logged reward (reward's unit per customer)
    rows: int  #: rows in the bin


@dataclass
class ActionFit(Record):
    """One action's rows and the out-of-fold squared errors on them (model, per-action means)."""

    rows: int  #: the action's logged rows
    share: float  #: its share of the log's rows, a fraction
    positives: int | None = field(metadata=OPTIONAL)  #: a binary reward's positive rows (None for a continuous reward)
    model_mse: float  #: the model's mean squared error on them, out of fold (reward's unit squared)
    baseline_mse: float  #: the per-action means' (reward's unit squared)


@dataclass
class CalibrationDiagnostics(Record):
    """The reward model against the per-action means, out of fold (calibration.json's and summary.json's ``diagnostics``).

    ``overall_mean_mse``, ``model_settings`` and ``tried`` are absent from folders written before the gate compared
    with the overall mean and tried other settings. ``model_settings`` (the chosen model's LightGBM complexity) and
    ``tried`` (each setting tried: its complexity, trees, gain, whether it passed, whether it was the configured one)
    stay mappings: their keys follow the settings the gate tries and have grown between versions.
    """

    model_mse: float  #: the model's mean squared error over the log's rows, out of fold (reward's unit squared)
    baseline_mse: float  #: the per-action means' (reward's unit squared)
    overall_mean_mse: float | None = field(metadata=OPTIONAL)  #: the overall mean's (reward's unit squared)
    gain: float  #: the model's gain in squared error over the harder of the two averages (reward's unit squared)
    gain_se: float  #: its standard error
    auc: float | None  #: binary rewards only: the model's AUC out of fold
    baseline_auc: float | None  #: binary rewards only: the per-action means' AUC
    calibration: list[CalibrationBin]  #: up to ten bins of rows by the model's out-of-fold prediction
    per_action: dict[str, ActionFit]  #: by action name
    weighted_by_inverse_propensity: bool  #: the model was fitted with inverse-propensity weights (a log that is not uniform)
    measured: str  #: how, in words
    model_settings: dict | None = field(default=None, metadata=OPTIONAL)
    tried: list[dict] | None = field(default=None, metadata=OPTIONAL)


@dataclass
class CalibrationResult:
    """``couponmix calibrate``: the scenario folder written, its data card, diagnostics and warnings."""

    out: Path  #: the scenario folder written
    card: dict  #: the data card (the log's source, actions, features, reward and propensities)
    diagnostics: CalibrationDiagnostics  #: the reward model against the per-action means, out of fold
    world: str  #: "model" or "means": what the world is built from
    warnings: list[str]  #: in plain words

    def text(self) -> str:
        """What calibrate did in a few lines: the folder written, the log, the model against the per-action means, the
        world chosen, and the warnings."""
        c, d = self.card, self.diagnostics
        kind = "clicks" if c["binary"] else "reward"
        lines = [
            f"calibrated scenario written to {self.out}",
            f"log: {c['rows']:,} rows ({c['rows_in_file']:,} in the file), {c['actions']} actions, "
            f"{kind} mean {c['reward']['mean']:.4g}"
            + (f" ({c['reward']['positives']:,} positive)" if c["binary"] else f", sd {c['reward']['sd']:.4g}"),
            f"revenue model out of fold: mean squared error {d.model_mse:.5g} against {d.baseline_mse:.5g} for "
            f"the per-action means and {d.overall_mean_mse:.5g} for the overall mean (gain over the harder "
            f"{d.gain:.3g} +/- {d.gain_se:.2g})" + (f", AUC {d.auc:.3f}" if d.auc is not None else ""),
            f"world built from: {'the model' if self.world == 'model' else 'per-action means (shrunk)'}",
        ]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------
def ipw(propensity: np.ndarray | None, n: int) -> tuple[np.ndarray, bool]:
    """(n,) inverse-propensity row weights normalised to mean 1, and whether the log is uniform (then all 1).

    Parameters
    ----------
    propensity : ndarray, (n,), or None
        Each row's logging probability (None: unknown, taken as uniform).
    n : int
        Rows.

    Returns
    -------
    w : ndarray, (n,)
        Row weights, mean 1.
    uniform : bool
        The propensities are all equal (up to 1e-9 relative) or unknown.
    """
    if propensity is None or np.ptp(propensity) <= 1e-9 * propensity.max():
        return np.ones(n), True
    w = 1.0 / propensity
    return w / w.mean(), False


def _complexity(params: dict) -> dict:
    return {"num_leaves": int(params["num_leaves"]), "min_child_samples": int(params["min_child_samples"])}


def _tried(params: dict, model: CrossFittedRevenueModel, gain: float, gain_se: float, configured: bool) -> dict:
    """One model setting the gate tried: its complexity, the trees chosen on the folds, its gain over the means."""
    passed = gain > gain_se
    return {**_complexity(params), "trees": model.trees_, "gain": gain, "gain_se": gain_se, "passed": passed, "configured": configured}


def _settings_words(s: dict) -> str:
    return f"{s['num_leaves']} leaves, at least {s['min_child_samples']:,} rows a leaf"


def _ladder(n: int) -> list[dict]:
    """The model settings the gate tries when the configured one fails: from 4 leaves with 1% of the rows
    per leaf to 31 leaves with 50, cross-validated out of fold like the configured model."""
    return [
        {"num_leaves": 4, "min_child_samples": max(20, n // 100)},
        {"num_leaves": 8, "min_child_samples": max(20, n // 200)},
        {"num_leaves": 15, "min_child_samples": max(20, n // 500)},
        {"num_leaves": 31, "min_child_samples": 50},
    ]


def fold_of(n: int, folds: int, seed: int) -> np.ndarray:
    """(n,) each row's cross-fitting fold in 0..folds-1, assigned as ``CrossFittedRevenueModel`` assigns them.

    Parameters
    ----------
    n, folds : int
        Rows and folds.
    seed : int
        The model's seed (stream ``(seed, "model", 0)``).

    Returns
    -------
    ndarray of int, (n,)
    """
    return stream(seed, "model", 0).permutation(n) % folds  # as CrossFittedRevenueModel assigns them


def _weighted_means(action: np.ndarray, reward: np.ndarray, w: np.ndarray, n_actions: int) -> tuple[np.ndarray, np.ndarray]:
    sw = np.bincount(action, weights=w, minlength=n_actions)
    swr = np.bincount(action, weights=w * reward, minlength=n_actions)
    return swr, sw


def shrunk_means(action, reward, w, n_actions: int, binary: bool, min_positive: int) -> np.ndarray:
    """Per-action means shrunk toward the overall mean: by a prior worth ``min_positive`` positive outcomes
    (binary) or 30 rows (continuous).

    Parameters
    ----------
    action : ndarray of int, (n,)
    reward : ndarray, (n,)
        Logged rewards (reward's unit).
    w : ndarray, (n,)
        Row weights (``ipw``).
    n_actions : int
    binary : bool
        A 0/1 reward.
    min_positive : int
        Positive outcomes the prior is worth for a binary reward.

    Returns
    -------
    ndarray, (A,)
        Each action's shrunk weighted mean reward (reward's unit per customer); the overall mean for an action never logged.
    """
    swr, sw = _weighted_means(action, reward, w, n_actions)
    overall = float((w * reward).sum() / w.sum())
    counts = np.bincount(action, minlength=n_actions).astype(float)
    scale = sw / np.maximum(counts, 1)  # weight per row, to express the prior in rows
    prior_rows = (min_positive / max(overall, 1e-12)) if binary and overall > 0 else 30.0
    prior = prior_rows * np.where(counts > 0, scale, 1.0)
    return (swr + prior * overall) / (sw + prior)


def _auc(y: np.ndarray, score: np.ndarray) -> float | None:
    if y.min() == y.max():
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score))


def _calibration_bins(pred: np.ndarray, y: np.ndarray, bins: int = 10) -> list[CalibrationBin]:
    order = np.argsort(pred, kind="stable")
    chunks = [c for c in np.array_split(order, bins) if len(c)]
    return [CalibrationBin(float(pred[c].mean()), float(y[c].mean()), len(c)) for c in chunks]


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(a), allow_pickle=False)
    return buf.getvalue()


def _logged_probabilities(log: RealLog, component: str | None = None) -> np.ndarray:
    """A context-free logger's probability of each action, read from the logged propensities (of the rows of
    ``component`` when the log has a component column)."""
    if log.propensity is None:
        raise CouponmixError("a 'logged' policy needs the log's propensity column")
    rows = np.ones(log.n, bool)
    who = "the log"
    if log.component is not None and len(log.component_names) > 1:
        if component is None:
            raise CouponmixError(
                f"the log has several loggers ({', '.join(log.component_names)}): a 'logged' policy names one with component:"
            )
        if component not in log.component_names:
            raise CouponmixError(f"component {component!r} is not a logger of the log ({', '.join(log.component_names)})")
        rows = log.component == log.component_names.index(component)
        who = f"logger {component!r}"
    elif component is not None and component not in log.component_names:
        raise CouponmixError(f"component {component!r}: the log has no component column naming it")
    action, propensity = log.action[rows], log.propensity[rows]
    probs = np.zeros(log.n_actions)
    for a in range(log.n_actions):
        p = propensity[action == a]
        if len(p) == 0:
            continue
        if np.ptp(p) > 0.05 * np.median(p):
            raise CouponmixError(
                f"the logged propensities of action {log.action_names[a]!r} under {who} vary from row to row "
                f"({p.min():.3g} to {p.max():.3g}): the logging policy depends on the customer or the time and "
                "cannot be rebuilt from the log alone; give it as a fixed or model policy"
            )
        probs[a] = np.median(p)
    total = probs.sum()
    if not 0.9 <= total <= 1.1:
        raise CouponmixError(
            f"the logged propensities per action of {who} sum to {total:.3g}, not 1: the log does not show a "
            "single context-free logging policy"
        )
    return probs / total


def balanced_propensity(log: RealLog) -> tuple[np.ndarray | None, str]:
    """For a log with several loggers: the propensity of the logging system as a whole for each row's action,
    sum_k (n_k / n) pi_k(a_i), and how it was obtained; (None, why not) when a logger's policy cannot be
    rebuilt from the log (its propensities vary with the customer or the time). Balanced weights need every
    logger's probability of the row's action, not only the acting one's.

    Parameters
    ----------
    log : RealLog
        A log with propensities and a component column.

    Returns
    -------
    propensity : ndarray, (n,), or None
        Each row's balanced propensity (a probability).
    how : str
        How it was obtained, or why it could not be, in words.
    """
    assert log.propensity is not None and log.component is not None
    share = np.bincount(log.component, minlength=len(log.component_names)) / log.n
    total = np.zeros(log.n)
    for k, name in enumerate(log.component_names):
        try:
            probs = _logged_probabilities(log, name)
        except CouponmixError as exc:
            return None, (
                f"balanced weights are not available: they need every logger's probability of each row's action, "
                f"and the policy of logger {name!r} cannot be rebuilt from the log ({str(exc).split(': the logging policy')[0]})"
            )
        total += share[k] * probs[log.action]
    return total, (
        "balanced weights: each logger's probability of the row's action, read from its logged propensities, "
        "averaged with the loggers' shares of the log"
    )


def gate_outcome(gate: dict, fallback: str, who: str) -> tuple[str, list[str]]:
    """(world, warnings) for a calibration's honesty gate under ``fallback`` (means, refuse or model): the
    world is built from the model unless the model failed the gate and the fallback is means; with refuse a
    failed gate stops ``who`` (calibrate, or the command planning on the scenario).

    Parameters
    ----------
    gate : dict
        What calibrate's gates found: "model_weak" (the failing model in words, or None), "sparse" (a warning or None)
        and "data" (the log's notes).
    fallback : "means", "refuse" or "model"
    who : str
        Who refuses, for the message.

    Returns
    -------
    world : "model" or "means"
    warnings : list of str

    Raises
    ------
    CouponmixError
        A weak model under the fallback "refuse".
    """
    warnings, world = [], "model"
    what = gate.get("model_weak")
    if what:
        if fallback == "refuse":
            raise CouponmixError(what[0].lower() + what[1:-1] + f"; {who} refuses (fallback: refuse)")
        if fallback == "means":
            world = "means"
            warnings.append(
                what + " couponmix therefore treats every customer alike (per-action averages, shrunk "
                "toward the overall average): no policy can gain from customer features here."
            )
        else:
            warnings.append(what + " The model is kept anyway (fallback: model): its policy values are not supported by the data.")
    sparse = gate.get("sparse")
    if sparse:
        warnings.append(sparse)
    warnings += [f"The log: {note}." for note in gate.get("data") or []]  # the reader's checks (reallog.read_log)
    return world, warnings


#: the phases of calibrate that take the time, for a progress bar
PHASES = ("reading and checking the log", "fitting the reward model", "fitting the policies' models", "writing the scenario")
#: their measured seconds (50,000 rows of the test suite's own-log world), for the progress bar
PHASE_WEIGHTS = (0.15, 1.06, 0.34, 0.05)


def calibrate(log_path, out, config, fallback: str | None = None, on_phase=None) -> CalibrationResult:
    """Calibrate a scenario from the log at ``log_path`` as ``config`` (a path, mapping or ``CalibrateConfig``) says, ``fallback``
    overriding its own, and write it to the new folder ``out``. ``on_phase(done, name)`` is told as each of ``PHASES`` starts.
    Raises ``CouponmixError`` for an ``out`` that is not empty, a bad config, log or policy, or fewer than 20 rows per fold.

    Returns
    -------
    CalibrationResult
    """
    phase = on_phase or (lambda done, name: None)

    cfg = load_calibrate_config(config)
    if fallback is not None:
        cfg = cfg.model_copy(update={"fallback": fallback})
    folder = check_output_dir(out)
    if folder.exists() and any(folder.iterdir()):
        raise CouponmixError(f"output folder {folder} is not empty; calibrate writes a new scenario folder")
    phase(0, PHASES[0])
    log = read_log(log_path, cfg.columns, seed=cfg.seed)
    _check_policies(cfg, log)  # names first: a typo costs no model fitting
    phase(1, PHASES[1])
    if log.n < 20 * cfg.model.folds:
        raise CouponmixError(f"log: {log.n} rows are too few to calibrate a scenario (at least {20 * cfg.model.folds})")
    fit = _Fit(log, cfg)
    model, q_oof, gain, gain_se, tried, params = fit.gated_model()
    diagnostics, counts, positives = _diagnostics(log, fit, q_oof, gain, gain_se, tried, params)
    gate, sparse = _gate(log, cfg, diagnostics, tried, params, positives)
    world, warnings = gate_outcome(gate, cfg.fallback, "calibrate")
    arrays = _arrays(log, fit, sparse)
    models = {"reward": model}
    if not log.binary:
        models["reward2"] = fit.model_on(fit.feats, log.reward**2)
        arrays["reward_variance"] = np.array([log.reward.var()])
    phase(2, PHASES[2])
    policies = {**{f"component.{k}": v for k, v in cfg.components.items()}, **{f"target.{k}": v for k, v in cfg.targets.items()}}
    for key, spec in policies.items():
        if spec.kind == "greedy_model" and spec.features is not None:
            models[key] = fit.model_on([log.feature_names.index(f) for f in spec.features], log.reward)
        if spec.kind == "logged":
            arrays[f"logged_probabilities.{key}"] = _logged_probabilities(log, spec.component)
    phase(3, PHASES[3])
    files: dict[str, bytes | str] = {}
    for name, m in models.items():
        for k, text in enumerate(m.to_texts()):
            files[f"model.{name}.{k}.txt"] = text
    for name, a in arrays.items():
        files[f"{name}.npy"] = _npy(a)
    card = _card(log, cfg, fit, counts)
    meta = {
        "format": 1,
        "world": world,
        "description": cfg.description,
        "card": card,
        "diagnostics": diagnostics.to_dict(),
        "warnings": warnings,
        "gate": gate,
        "config": cfg.model_dump(mode="json", by_alias=True),
        "models": {
            name: {
                "features": m.features,
                "categorical": [m.features[c] for c in m.categorical],
                "folds": m.folds,
                "params": m.params,
                "trees": m.trees_,
                "seed": m.seed,
            }
            for name, m in models.items()
        },
        "n": cfg.n or log.n,
    }
    # every data file's checksum: a damaged file is refused with one line before LightGBM or numpy reads it
    meta["checksums"] = {name: sha256_of(content) for name, content in sorted(files.items())}
    files[CARD] = json.dumps(meta, indent=2, allow_nan=False) + "\n"
    files[SCENARIO_FILE] = (
        "# a scenario calibrated by `couponmix calibrate`: data only (models, arrays, card)\n"
        f"kind: calibrated\ndescription: {json.dumps(cfg.description or 'calibrated from ' + log.source)}\n"
    )
    write_outputs(folder, files)
    return CalibrationResult(folder, card, diagnostics, world, warnings)


class _Fit:
    """What calibrate fits on a log: its weighting (inverse propensity of the logging system, balanced when it
    can be rebuilt), the folds, the per-action means out of fold, and cross-fitted revenue models."""

    def __init__(self, log: RealLog, cfg: CalibrateConfig):
        self.log, self.cfg, ms = log, cfg, cfg.model
        n = log.n
        self.loggers = log.propensity is not None and log.component is not None and len(log.component_names) > 1
        self.pscore_avg: np.ndarray | None
        if self.loggers and log.balanced_propensity is not None:
            self.pscore_avg = log.balanced_propensity
            self.weighting = f"balanced weights: the log's own column {cfg.columns.balanced_propensity!r}"
        else:
            self.pscore_avg, self.weighting = balanced_propensity(log) if self.loggers else (log.propensity, "")
        # the model is weighted by the inverse propensity of the logging system (balanced when it can be rebuilt)
        self.w, self.uniform_log = ipw(self.pscore_avg if self.pscore_avg is not None else log.propensity, n)
        self.weights = None if self.uniform_log else self.w
        self.params = dict(
            n_estimators=ms.n_estimators, learning_rate=ms.learning_rate, num_leaves=ms.num_leaves, min_child_samples=ms.min_child_samples
        )
        self.cat = [log.feature_names.index(c) for c in log.categories]
        self.feats = list(range(len(log.feature_names)))
        self.fold = fold_of(n, ms.folds, cfg.seed)
        self.base_oof = np.empty(n)  # the per-action means of the other folds
        self.overall_oof = np.empty(n)  # the overall mean of the other folds
        w, a_n = self.w, log.n_actions
        for k in range(ms.folds):
            train = self.fold != k
            swr, sw = _weighted_means(log.action[train], log.reward[train], w[train], a_n)
            overall = float((w[train] * log.reward[train]).sum() / w[train].sum())
            means_k = np.where(sw > 0, swr / np.maximum(sw, 1e-300), overall)
            self.base_oof[~train] = means_k[log.action[~train]]
            self.overall_oof[~train] = overall

    def model_on(self, features: list[int], target: np.ndarray, settings: dict | None = None) -> CrossFittedRevenueModel:
        """A ``CrossFittedRevenueModel`` of ``target`` (n,) on the feature columns ``features``, fitted on the log with the
        inverse-propensity weights (none for a uniform log) and ``settings`` (default: the configured LightGBM settings)."""
        ms, log = self.cfg.model, self.log
        m = CrossFittedRevenueModel(
            log.n_actions,
            features,
            [c for c in self.cat if c in features],
            folds=ms.folds,
            params=settings or self.params,
            seed=self.cfg.seed,
            patience=ms.patience,
        )
        return m.fit(log.x, log.action, target, sample_weight=self.weights)

    def _gated(self, settings: dict) -> tuple[CrossFittedRevenueModel, np.ndarray, float, float]:
        """The reward model with these settings, its out-of-fold predictions and its gain (fall in squared error,
        out of fold) over the harder of two baselines, the per-action means and the overall mean, with that
        gain's standard error. Beating the overall mean as well keeps a model that has learned next to nothing
        (a tree or two, chosen on the folds when the per-action means are noisier than the overall mean) from
        passing as a model of how customers differ."""
        log = self.log
        m = self.model_on(self.feats, log.reward, settings)
        oof = m.out_of_fold()[np.arange(log.n), log.action]
        gains = []
        for base in (self.base_oof, self.overall_oof):
            d = (log.reward - base) ** 2 - (log.reward - oof) ** 2
            gains.append((float(d.mean()), float(d.std(ddof=1) / np.sqrt(log.n))))
        gain, gain_se = min(gains, key=lambda g: g[0] - g[1])
        return m, oof, gain, gain_se

    def gated_model(self) -> tuple:
        """(model, its out-of-fold predictions, gain over the means, its standard error, the settings tried,
        the settings kept): the configured model, or, when it is no better than the means, the best of a
        ladder of simpler and richer ones that is (cross-validated, out of fold)."""
        params = self.params
        model, q_oof, gain, gain_se = self._gated(params)
        tried = [_tried(params, model, gain, gain_se, True)]
        if not gain > gain_se:
            configured = _complexity(params)
            for rung in _ladder(self.log.n):
                if rung == configured:
                    continue
                cand = self._gated({**params, **rung})
                tried.append(_tried(rung, cand[0], cand[2], cand[3], False))
                if cand[2] > cand[3] and cand[2] > gain:
                    (model, q_oof, gain, gain_se), params = cand, {**params, **rung}
        return model, q_oof, gain, gain_se, tried, params


def _diagnostics(log: RealLog, fit: _Fit, q_oof, gain: float, gain_se: float, tried: list, params: dict) -> tuple:
    """(the model's out-of-fold diagnostics against the per-action means, rows per action, positives per action)."""
    a_n, n, base_oof = log.n_actions, log.n, fit.base_oof
    counts = np.bincount(log.action, minlength=a_n)
    positives = np.bincount(log.action, weights=(log.reward > 0).astype(float), minlength=a_n).astype(int)
    per_action = {
        log.action_names[a]: ActionFit(
            rows=int(counts[a]),
            share=float(counts[a] / n),
            positives=int(positives[a]) if log.binary else None,
            model_mse=float(((log.reward - q_oof) ** 2)[log.action == a].mean()),
            baseline_mse=float(((log.reward - base_oof) ** 2)[log.action == a].mean()),
        )
        for a in range(a_n)
    }
    diagnostics = CalibrationDiagnostics(
        model_mse=float(((log.reward - q_oof) ** 2).mean()),
        baseline_mse=float(((log.reward - base_oof) ** 2).mean()),
        overall_mean_mse=float(((log.reward - fit.overall_oof) ** 2).mean()),
        gain=gain,
        gain_se=gain_se,
        auc=_auc(log.reward, q_oof) if log.binary else None,
        baseline_auc=_auc(log.reward, base_oof) if log.binary else None,
        calibration=_calibration_bins(q_oof, log.reward),
        per_action=per_action,
        weighted_by_inverse_propensity=not fit.uniform_log,
        measured="out of fold: each row scored by the model (and the per-action means) of the other folds",
        model_settings=_complexity(params),
        tried=tried,
    )
    return diagnostics, counts, positives


def _gate(
    log: RealLog, cfg: CalibrateConfig, diagnostics: CalibrationDiagnostics, tried: list, params: dict, positives
) -> tuple[dict, list[int]]:
    """(what the honesty gates say: a weak model, actions too sparse to model, the data's notes; the sparse actions)."""
    a_n, gain, gain_se = log.n_actions, diagnostics.gain, diagnostics.gain_se
    min_positive = cfg.model.min_positive
    sparse = [a for a in range(a_n) if log.binary and positives[a] < min_positive]
    gate: dict = {"model_weak": None, "sparse": None, "data": list(log.notes)}
    if not gain > gain_se:
        settings = "; ".join(f"{_settings_words(t)}: {t['gain']:.2g} +- {t['gain_se']:.2g}" for t in tried)
        gate["model_weak"] = (
            f"The revenue model is no better than the per-action averages (or the overall average): out of fold "
            f"its squared error is {diagnostics.model_mse:.4g} against {diagnostics.baseline_mse:.4g} for "
            f"the per-action averages and {diagnostics.overall_mean_mse:.4g} for the overall average (gain over "
            f"the harder of the two {gain:.2g}, standard error {gain_se:.2g})"
            + (f", AUC {diagnostics.auc:.3f}" if diagnostics.auc else "")
            + f". None of the {len(tried)} model settings tried does better (gain out of fold: "
            f"{settings}), so the log cannot support a model of how customers differ."
        )
    elif not tried[0]["passed"]:
        first = tried[0]
        gate["data"].append(
            f"the configured revenue model ({_settings_words(first)}) was no better than the per-action averages "
            f"(gain {first['gain']:.2g} +- {first['gain_se']:.2g}); a model with {_settings_words(params)} is "
            f"(gain {gain:.2g} +- {gain_se:.2g}) and is used for the world and every policy's model"
        )
    if sparse:
        gate["sparse"] = (
            f"{len(sparse)} of {a_n} actions have fewer than {min_positive} positive outcomes in the "
            f"log ({sum(int(positives[a]) for a in sparse)} in all): no model can be fitted for them, so "
            "their rate is the overall rate, adjusted a little by their own counts. Values of policies "
            "that favour them are guesses."
        )
    return gate, sparse


def _arrays(log: RealLog, fit: _Fit, sparse: list[int]) -> dict[str, np.ndarray]:
    """The scenario folder's arrays: the log's own rows, the shrunk per-action means, the sparse actions."""
    a_n, w, min_positive = log.n_actions, fit.w, fit.cfg.model.min_positive
    fold0 = fit.fold != 0
    arrays = {
        "customers": log.x,
        "log_action": log.action,
        "log_reward": log.reward,
        "means": shrunk_means(log.action, log.reward, w, a_n, log.binary, min_positive),
        "means_q": shrunk_means(log.action[fold0], log.reward[fold0], w[fold0], a_n, log.binary, min_positive),
        "sparse": np.array(sparse, dtype=np.int64),
    }
    if log.propensity is not None:
        arrays["log_propensity"] = log.propensity
    if log.component is not None:
        arrays["log_component"] = log.component
    if fit.loggers and fit.pscore_avg is not None:
        arrays["log_pscore_avg"] = fit.pscore_avg
    return arrays


def _card(log: RealLog, cfg: CalibrateConfig, fit: _Fit, counts) -> dict:
    """The data card: where the log came from, its actions, features, reward and propensities."""
    reward, n, a_n = log.reward, log.n, log.n_actions
    return {
        "source": log.source,
        "rows": n,
        "rows_in_file": log.rows_in_file,
        "actions": a_n,
        "action_names": log.action_names,
        "action_share": {log.action_names[a]: float(counts[a] / n) for a in range(a_n)},
        "features": log.feature_names,
        "categories": log.categories,
        "binary": log.binary,
        "reward_name": cfg.columns.reward_name or ("clicks" if log.binary else "revenue"),
        "reward_unit": cfg.columns.reward_unit,
        "reward": {
            "mean": float(reward.mean()),
            "sd": float(reward.std()),
            "min": float(reward.min()),
            "max": float(reward.max()),
            "share_zero": float((reward == 0).mean()),
            **({"positives": int((reward > 0).sum())} if log.binary else {}),
        },
        "date_range": list(log.date_range) if log.date_range else None,
        "propensities": None
        if log.propensity is None
        else {"min": float(log.propensity.min()), "max": float(log.propensity.max()), "uniform": bool(fit.uniform_log)},
        "components_in_log": log.component_names,
        "component_share": (
            {c: float((log.component == k).mean()) for k, c in enumerate(log.component_names)} if log.component is not None else None
        ),
        "multi_logger": fit.weighting if fit.loggers else None,
        "second_moment": (
            "Bernoulli: E[r^2] = E[r]"
            if log.binary
            else "a LightGBM model of r^2, floored at mu^2 + 1% of the reward variance; simulated rewards "
            "have that mean and variance and the shape of the log's own residuals (resampled per coupon)"
        ),
    }


def _check_policies(cfg: CalibrateConfig, log: RealLog) -> None:
    """Every feature and action a component or target names is the log's (with a suggestion for a typo)."""
    names = log.feature_names
    policies = {**{f"component.{k}": v for k, v in cfg.components.items()}, **{f"target.{k}": v for k, v in cfg.targets.items()}}
    for key, spec in policies.items():
        if spec.kind == "greedy_model" and spec.features is not None:
            unknown = [f for f in spec.features if f not in names]
            if unknown:
                raise CouponmixError(
                    f"{key}.features: {unknown[0]!r} is not a feature of the log ({', '.join(names)}){did_you_mean(unknown[0], names)}"
                )
        if spec.kind == "rule":
            _check_rule(key, spec, log)
        if spec.kind == "fixed":
            probs = spec.probabilities or {}
            unknown = [a for a in probs if a not in log.action_names]
            if unknown:
                raise CouponmixError(
                    f"{key}.probabilities: {unknown[0]!r} is not an action of the log{did_you_mean(unknown[0], log.action_names)}"
                )
            bad = next((a for a, v in probs.items() if not 0 <= float(v) <= 1), None)
            if bad is not None:
                raise CouponmixError(f"{key}.probabilities: {bad!r} has {float(probs[bad]):g}; a probability lies in [0, 1]")
            total = sum(float(v) for v in probs.values())
            if not abs(total - 1) <= 1e-6:
                raise CouponmixError(f"{key}.probabilities sum to {total:.6g}, not 1")
        if spec.kind == "logged":
            _logged_probabilities(log, spec.component)  # the logger must be in the log, context-free


def _check_rule(key: str, spec: PolicySpec, log: RealLog) -> None:
    if spec.feature not in log.feature_names:
        raise CouponmixError(
            f"{key}.feature: {spec.feature!r} is not a feature of the log{did_you_mean(str(spec.feature), log.feature_names)}"
        )
    for k in ("action", "otherwise"):
        v = getattr(spec, k)
        if v is not None and str(v) not in log.action_names:
            raise CouponmixError(f"{key}.{k}: {v!r} is not an action of the log{did_you_mean(str(v), log.action_names)}")
    if spec.equals is not None and spec.feature in log.categories and str(spec.equals) not in log.categories[spec.feature]:
        raise CouponmixError(f"{key}.equals: {spec.equals!r} is not a value of {spec.feature}")

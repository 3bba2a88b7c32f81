"""The OPE estimators couponmix optimises for and validates, and how each maps onto obp.

Every estimator is  V_hat = mean_i[ D(x_i) + c(x_i, a_i) (r_i - q(x_i, a_i)) ]  (plain) or
mean_i[D] + mean_i[c (r - q)] / mean_i[c]  (self-normalised), with a reward model q fixed before
the log is collected (q = 0 for the IPS family), D(x) = sum_a pi_e(a|x) q(x, a), and weights c:

    ips          c = w                     w = pi_e(a|x) / p(a|x)
    clipped_ips  c = min(w, lambda)
    snips        c = w, self-normalised
    dr           c = w (or min(w, lambda) when a clip is given: obp's DR with lambda_)
    sndr         c = w, self-normalised
    switch_dr    c = w 1{w <= lambda}      (obp's SwitchDoublyRobust)
    dm           c = 0: the reward model's predictions alone (obp's DirectMethod)
    dr_fitted    c = w, with q fitted on the log itself (obp's RegressionModel with LightGBM, cross-fitted;
                 see fitted_reward)

p is the balanced propensity p_alpha (default) or, with weights="naive", the acting component's own
propensity pi_k(a|x) (obp's MultiLoggersNaive*). obp is imported lazily, only where an estimate runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from couponmix.errors import CouponmixError
from couponmix.infra.validation import check_positive_float

__all__ = [
    "WeightFunction",
    "EstimatorKind",
    "WEIGHTS",
    "KINDS",
    "register_weight",
    "register_estimator",
    "EstimatorSpec",
    "suite",
    "exact_suite",
    "parse_list",
    "DEFAULT_CLIP",
    "REAL_LOG_SUITE",
    "real_log_suite",
]

DEFAULT_CLIP = 10.0
#: dr_fitted's model: obp's RegressionModel with LightGBM, cross-fitted on each log (see fitted_reward)
FITTED_FOLDS = 3
FITTED_SOURCE = (
    f"LightGBM fitted on the log itself by obp's RegressionModel, {FITTED_FOLDS}-fold cross-fitted "
    "(features: the covariates and the action, one-hot)"
)


@dataclass(frozen=True)
class WeightFunction:
    """How an estimator weights a logged row: c as a function of the importance weight w = pi_e / p."""

    name: str  #: its name in ``WEIGHTS`` (an estimator kind's ``weight``)
    #: ``apply(w, lam)``: c for logged rows (Monte Carlo intervals), the shape of the importance weights w
    apply: Callable[[np.ndarray, float], np.ndarray]
    #: ``rows(pe, p, inv, lam, all_pos)``: for the exact engine, (p c, p c^2, pi_e 1{p > 0}), each (r, B), on r rows
    #: of the evaluation sample: pe (r, 1), p and inv = 1/p (r, B) for B mixtures, all 0 where p = 0 (the estimator
    #: never sees those actions)
    rows: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]]
    #: c = w, so the variance involves E[w^2 ...] and can be infinite; then p c = pi_e 1{p > 0}
    unbounded: bool = False
    #: c = 0 on every row (the direct method): the exact engine skips p c and p c^2
    vanishes: bool = False
    #: ``rows`` from a ``ChunkTerms`` (``shared(terms, lam)``), whose products estimators over the same rows
    #: share; the built-in weights have one, a registered weight needs only ``rows``
    shared: Callable[[ChunkTerms, float], tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
    #: the compiled kernel that computes these weights' sums (``couponmix.ope.fused.KERNELS``: the built-ins);
    #: None runs the numpy engine
    kernel: str | None = None

    def row_sums(self, terms: ChunkTerms, lam: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p c, p c^2, pi_e 1{p > 0}) on the chunk ``terms`` describes.

        Parameters
        ----------
        terms : ChunkTerms
            One target on r rows, B mixtures.
        lam : float
            The clip lambda (inf: none).

        Returns
        -------
        (ndarray, ndarray, ndarray), each (r, B)
            Read only: they may be shared with other estimators on the same rows.
        """
        if self.shared is not None:
            return self.shared(terms, lam)
        return self.rows(terms.pe, terms.p, terms.inv, lam, terms.all_pos)


class ChunkTerms:
    """One target's probabilities ``pe`` (r, 1) on a chunk of rows, the balanced propensities ``p`` (r, B) of a
    batch of mixtures, ``inv`` = 1/p (0 where p = 0) and whether every p is positive (``all_pos``), with the
    products several weight functions need (lam p, (lam^2) p, pe^2 / p) computed once per chunk and target.

    Parameters
    ----------
    pe : ndarray, (r, 1)
        The target's probability of each row's action (a probability).
    p : ndarray, (r, B)
        Each mixture's balanced propensity of that action (a probability).
    inv : ndarray, (r, B)
        1/p, 0 where p = 0.
    all_pos : bool
        Every p is positive.
    """

    def __init__(self, pe: np.ndarray, p: np.ndarray, inv: np.ndarray, all_pos: bool):
        self.pe, self.p, self.inv, self.all_pos = pe, p, inv, all_pos
        self._memo: dict = {}

    def _get(self, key, make):
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def scaled(self, lam: float) -> np.ndarray:
        """(r, B) lam p (read only: shared).

        Parameters
        ----------
        lam : float
            The clip lambda.
        """
        return self._get(("scaled", lam), lambda: lam * self.p)

    def scaled_sq(self, lam: float) -> np.ndarray:
        """(r, B) (lam^2) p (read only: shared).

        Parameters
        ----------
        lam : float
            The clip lambda.
        """
        return self._get(("scaled_sq", lam), lambda: (lam * lam) * self.p)

    def w2p(self) -> np.ndarray:
        """(r, B) pe^2 / p, the squared weight times p (read only: shared)."""
        return self._get("w2p", lambda: (self.pe * self.pe) * self.inv)

    def supported(self) -> np.ndarray:
        """(r, B) pe 1{p > 0} (read only: a broadcast view when every p is positive)."""
        return self._get("supported", lambda: np.broadcast_to(self.pe, self.p.shape) if self.all_pos else self.pe * (self.p > 0))


def _rows_ips(t: ChunkTerms, lam):
    """(p c, p c^2, pi_e 1{p > 0}) for c = w, each (r, B)."""
    sup = t.supported()
    return sup, t.w2p(), sup


def _rows_clip(t: ChunkTerms, lam):
    """(p c, p c^2, pi_e 1{p > 0}) for c = min(w, lam), each (r, B)."""
    return np.minimum(t.pe, t.scaled(lam)), np.minimum(t.w2p(), t.scaled_sq(lam)), t.supported()


def _rows_switch(t: ChunkTerms, lam):
    """(p c, p c^2, pi_e 1{p > 0}) for c = w 1{w <= lam}, each (r, B)."""
    sup = t.supported()
    keep = t.pe <= t.scaled(lam)  # w <= lambda (rows with p = 0 are 0 already)
    return sup * keep, t.w2p() * keep, sup


def _rows_zero(t: ChunkTerms, lam):
    """(0, 0, pi_e 1{p > 0}), each (r, B): c = 0."""
    z = np.zeros(t.p.shape)
    return z, z, t.supported()


def _plain(shared):
    """The ``rows(pe, p, inv, lam, all_pos)`` form of a ``shared(terms, lam)`` function."""
    return lambda pe, p, inv, lam, all_pos: shared(ChunkTerms(pe, p, inv, all_pos), lam)


WEIGHTS: dict[str, WeightFunction] = {}


def register_weight(fn: WeightFunction) -> WeightFunction:
    """Make a weight function available to estimator records (by its name).

    Parameters
    ----------
    fn : WeightFunction
        Replaces any registered under the same name.

    Returns
    -------
    WeightFunction
        ``fn`` itself.
    """
    WEIGHTS[fn.name] = fn
    return fn


register_weight(WeightFunction("ips", lambda w, lam: w, _plain(_rows_ips), unbounded=True, shared=_rows_ips, kernel="ips"))
register_weight(WeightFunction("clip", lambda w, lam: np.minimum(w, lam), _plain(_rows_clip), shared=_rows_clip, kernel="clip"))
register_weight(WeightFunction("switch", lambda w, lam: w * (w <= lam), _plain(_rows_switch), shared=_rows_switch, kernel="switch"))
register_weight(
    WeightFunction("zero", lambda w, lam: np.zeros_like(w), _plain(_rows_zero), vanishes=True, shared=_rows_zero, kernel="zero")
)


@dataclass(frozen=True)
class EstimatorKind:
    """One estimator: everything couponmix needs to optimise for it, explain it and run it with obp."""

    name: str  #: its id
    label: str  #: its short name for analysts
    plain: str  #: what it does in plain words (``{clip:g}`` is filled in)
    description: str  #: a one-line description
    weight: str  #: the weight function (``WEIGHTS``) without a clip
    clip: str = "none"  #: "none", "needs" or "may"
    clipped_weight: str = "clip"  #: the weight function used when a clip is given (``clip="may"``)
    reward_model: str = "none"  #: "none", "fixed" (chosen before logging) or "fitted" (fitted on each log)
    self_normalised: bool = False  #: the estimate is divided by the mean weight
    obp: str = ""  #: the obp class for balanced weights
    obp_pscore: str = "pscore"  #: the keyword of ``obp`` that takes the balanced propensity
    obp_naive: str | None = None  #: the obp class for naive weights (None: no naive form)


KINDS: dict[str, EstimatorKind] = {}


def register_estimator(kind: EstimatorKind) -> EstimatorKind:
    """Add an estimator to the suite couponmix optimises over (its weight function must be registered).

    Parameters
    ----------
    kind : EstimatorKind
        Replaces any registered under the same name.

    Returns
    -------
    EstimatorKind
        ``kind`` itself.

    Raises
    ------
    CouponmixError
        An unregistered weight function, or a ``clip`` or ``reward_model`` outside its choices.
    """
    if kind.weight not in WEIGHTS or (kind.clip == "may" and kind.clipped_weight not in WEIGHTS):
        raise CouponmixError(f"estimator {kind.name}: unknown weight function {kind.weight!r}")
    if kind.clip not in ("none", "needs", "may") or kind.reward_model not in ("none", "fixed", "fitted"):
        raise CouponmixError(f"estimator {kind.name}: clip must be none/needs/may, reward_model none/fixed/fitted")
    KINDS[kind.name] = kind
    return kind


_REWEIGHT = "reweighting the logged revenue"
_CORRECT = "the revenue model corrected by the reweighted logged revenue"
for _k in (
    EstimatorKind(
        "ips",
        "IPS",
        _REWEIGHT,
        "inverse probability weighting",
        "ips",
        obp="MultiLoggersBalancedInverseProbabilityWeighting",
        obp_pscore="pscore_avg",
        obp_naive="MultiLoggersNaiveInverseProbabilityWeighting",
    ),
    EstimatorKind(
        "clipped_ips",
        "clipped IPS",
        _REWEIGHT + ", with weights capped at {clip:g}",
        "IPS with importance weights clipped at lambda",
        "clip",
        clip="needs",
        obp="MultiLoggersBalancedInverseProbabilityWeighting",
        obp_pscore="pscore_avg",
        obp_naive="MultiLoggersNaiveInverseProbabilityWeighting",
    ),
    EstimatorKind(
        "snips",
        "SNIPS",
        _REWEIGHT + ", normalised",
        "self-normalised IPS",
        "ips",
        self_normalised=True,
        obp="SelfNormalizedInverseProbabilityWeighting",
    ),
    EstimatorKind(
        "dr",
        "DR",
        _CORRECT,
        "doubly robust (reward model plus weighted residuals)",
        "ips",
        clip="may",
        reward_model="fixed",
        obp="MultiLoggersBalancedDoublyRobust",
        obp_pscore="pscore_avg",
        obp_naive="MultiLoggersNaiveDoublyRobust",
    ),
    EstimatorKind(
        "sndr",
        "SNDR",
        _CORRECT + ", normalised",
        "self-normalised doubly robust",
        "ips",
        reward_model="fixed",
        self_normalised=True,
        obp="SelfNormalizedDoublyRobust",
    ),
    EstimatorKind(
        "switch_dr",
        "Switch-DR",
        _CORRECT + ", model alone where a weight exceeds {clip:g}",
        "switch doubly robust (reward model alone where the weight exceeds lambda)",
        "switch",
        clip="needs",
        reward_model="fixed",
        obp="SwitchDoublyRobust",
    ),
    EstimatorKind(
        "dm",
        "direct method",
        "the revenue model's predictions alone",
        "direct method (the reward model's predictions alone, no weighting)",
        "zero",
        reward_model="fixed",
        obp="DirectMethod",
    ),
    EstimatorKind(
        "dr_fitted",
        "DR with a model fitted on the log",
        "a revenue model fitted on the log, corrected by the reweighted logged revenue",
        "doubly robust with a LightGBM reward model fitted on the log itself, cross-fitted",
        "ips",
        clip="may",
        reward_model="fitted",
        obp="MultiLoggersBalancedDoublyRobust",
        obp_pscore="pscore_avg",
        obp_naive="MultiLoggersNaiveDoublyRobust",
    ),
):
    register_estimator(_k)


@dataclass(frozen=True)
class EstimatorSpec:
    """One estimator as the decision uses it: its kind (``KINDS``), clip lambda and weights.

    Raises
    ------
    CouponmixError
        An unknown kind, a clip that is not positive or that the kind does not take (or lacks when it needs
        one), weights other than "balanced" or "naive", or naive weights for a kind with no naive form.
    """

    kind: str  #: a registered estimator name (``KINDS``), e.g. "ips", "dr", "switch_dr"
    #: the clip lambda on the importance weight (inf: none); checked against the kind's ``clip`` rule
    clip: float = np.inf
    #: "balanced" or "naive": the propensity the weight divides by, the mixture's p_alpha or the acting component's own
    weights: str = "balanced"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise CouponmixError(f"unknown estimator {self.kind!r}; choose one of {', '.join(KINDS)}")
        rec = KINDS[self.kind]
        clip = check_positive_float(self.clip, "clip (lambda)", allow_inf=True)
        if np.isfinite(clip) and rec.clip == "none":
            raise CouponmixError(f"estimator {self.kind} takes no clip")
        if rec.clip == "needs" and not np.isfinite(clip):
            raise CouponmixError(f"{self.kind} needs a finite clip (lambda)")
        if self.weights not in ("balanced", "naive"):
            raise CouponmixError(f"weights must be balanced or naive, got {self.weights!r}")
        if self.weights == "naive" and rec.obp_naive is None:
            naive = sorted(k for k, r in KINDS.items() if r.obp_naive is not None)
            raise CouponmixError(f"{self.kind} has no naive multi-logger form in obp (only {', '.join(naive)})")
        object.__setattr__(self, "clip", clip)

    @classmethod
    def parse(cls, kind: str, clip: float | None = None, weights: str = "balanced") -> EstimatorSpec:
        """A spec from a kind and optional clip; kinds that need a clip get ``DEFAULT_CLIP`` when none is given.

        Parameters
        ----------
        kind : str
            A registered estimator name (``KINDS``).
        clip : float, optional
            The clip lambda (None: none, or ``DEFAULT_CLIP`` for a kind that needs one).
        weights : "balanced" or "naive"

        Returns
        -------
        EstimatorSpec

        Raises
        ------
        CouponmixError
            As ``EstimatorSpec``.
        """
        if kind in KINDS and KINDS[kind].clip == "needs" and clip is None:
            clip = DEFAULT_CLIP
        return cls(kind, np.inf if clip is None else clip, weights)

    @property
    def record(self) -> EstimatorKind:
        """The registered ``EstimatorKind`` of this spec's kind."""
        return KINDS[self.kind]

    @property
    def weight_fn(self) -> str:
        """The name of the weight function in ``WEIGHTS`` (e.g. 'ips': c = w, 'clip': c = min(w, lambda))."""
        rec = self.record
        return rec.clipped_weight if rec.clip == "may" and np.isfinite(self.clip) else rec.weight

    @property
    def weight_function(self) -> WeightFunction:
        """The ``WeightFunction`` named by ``weight_fn``."""
        return WEIGHTS[self.weight_fn]

    def weight(self, w: np.ndarray) -> np.ndarray:
        """The estimator's weight c applied to importance weights w.

        Parameters
        ----------
        w : ndarray
            Importance weights pi_e / p, any shape.

        Returns
        -------
        ndarray
            c, w's shape.
        """
        return self.weight_function.apply(w, self.clip)

    @property
    def uses_reward_model(self) -> bool:
        """True when the estimator uses a reward model q (fixed or fitted on the log); False for the IPS family."""
        return self.record.reward_model != "none"

    @property
    def fits_reward_model(self) -> bool:
        """True when q is fitted on each log (so its error depends on the mixture through q as well)."""
        return self.record.reward_model == "fitted"

    @property
    def has_error_formula(self) -> bool:
        """False for naive DR with a model fitted on the log: only Monte Carlo measures its error."""
        return not (self.fits_reward_model and self.weights == "naive")

    @property
    def self_normalised(self) -> bool:
        """True when the estimate is divided by the mean weight (SNIPS, SNDR)."""
        return self.record.self_normalised

    @property
    def has_unbounded_weights(self) -> bool:
        """True when the variance involves E[w^2 ...] with unbounded weights (so it can be infinite)."""
        return self.weight_function.unbounded

    @property
    def name(self) -> str:
        """A short unique name: kind, clip and weights, e.g. 'clipped_ips(10)' or 'ips[naive]'."""
        s = self.kind + (f"({self.clip:g})" if np.isfinite(self.clip) else "")
        return s + ("[naive]" if self.weights == "naive" else "")

    @property
    def label(self) -> str:
        """The estimator's short label for analysts, with its clip and naive weights when set, e.g. 'clipped IPS (lambda = 10)'."""
        base = self.record.label
        if np.isfinite(self.clip):
            base += f" (lambda = {self.clip:g})"
        return base + (" with naive weights" if self.weights == "naive" else "")

    @property
    def plain(self) -> str:
        """The estimator in plain words, for headlines, cards and figure titles."""
        text = self.record.plain.format(clip=self.clip)
        return text + (" (each customer weighted by the policy that served them)" if self.weights == "naive" else "")

    def to_dict(self) -> dict:
        """The estimator for summary.json: kind (as ``name``), label, plain words, description, weights; lambda, reward model if any."""
        d: dict[str, object] = {
            "name": self.kind,
            "label": self.label,
            "plain": self.plain,
            "description": self.record.description,
            "weights": self.weights,
        }
        if np.isfinite(self.clip):
            d["lambda"] = self.clip
        if self.fits_reward_model:
            d["reward_model"] = FITTED_SOURCE
        elif self.uses_reward_model:
            d["reward_model"] = "fixed before logging (the scenario's revenue model, or the per-action average)"
        return d

    def obp_name(self) -> str:
        """The obp estimator (and reward-model fit) this spec runs, in words, e.g. 'SwitchDoublyRobust(lambda_=10)'."""
        rec = self.record
        lam = f"(lambda_={self.clip:g})" if np.isfinite(self.clip) else ""
        fit = f"RegressionModel(LGBMRegressor).fit_predict(n_folds={FITTED_FOLDS}) + " if self.fits_reward_model else ""
        if self.weights == "naive":
            return fit + f"{rec.obp_naive}{lam}"
        pscore = "" if rec.obp_pscore == "pscore_avg" or rec.weight == "zero" else " with pscore = pscore_avg"
        return fit + f"{rec.obp}{pscore}{lam}"

    def estimate(self, log: Mapping[str, Any], action_dist: np.ndarray, reward_model: np.ndarray | None = None) -> float:
        """Run the matching obp estimator on a log. action_dist = pi_e(.|x_i) and reward_model = q(x_i, .),
        both (n, A); for dr_fitted, q must be the log's own cross-fitted model (``fitted_reward.cross_fitted``).

        Parameters
        ----------
        log : dict
            An obp-format log of n customers: ``action`` (n,), ``reward`` (n,), and ``pscore`` (n,) for naive
            weights or ``pscore_avg`` (n,) for balanced ones.
        action_dist : ndarray, (n, A)
            The target policy's probabilities at the logged customers.
        reward_model : ndarray, (n, A), optional
            The reward model's predictions (reward's unit), for estimators that use one.

        Returns
        -------
        float
            The estimated value, per customer in the reward's unit.

        Raises
        ------
        CouponmixError
            An estimator that uses a reward model without ``reward_model``.
        """
        import obp.ope as ope  # lazy: obp imports torch

        rec = self.record
        kw = dict(reward=log["reward"], action=log["action"], action_dist=action_dist[:, :, np.newaxis])
        if self.uses_reward_model:
            if reward_model is None:
                raise CouponmixError(f"{self.kind} needs a reward model")
            kw["estimated_rewards_by_reg_model"] = reward_model[:, :, np.newaxis]
        lam = dict(lambda_=float(self.clip)) if np.isfinite(self.clip) else {}
        if self.weights == "naive":
            est = getattr(ope, str(rec.obp_naive))(**lam)
            kw["pscore"] = log["pscore"]
        else:
            est = getattr(ope, rec.obp)(**lam)
            kw[rec.obp_pscore] = log["pscore_avg"]  # the balanced propensity, whatever obp calls it
        return float(est.estimate_policy_value(**kw))


#: the estimators ``estimate`` runs on a real log with balanced weights (one logger, or the logging system's
#: propensity rebuilt for several)
REAL_LOG_SUITE = ("ips", "snips", "dr", "sndr", "switch_dr", "dm")


def real_log_suite(balanced: bool = True, naive: bool = False) -> list[str]:
    """Names of the estimators a real log supports: ``REAL_LOG_SUITE`` when balanced weights are available
    (else only DM, which uses no weights), plus the naive multi-logger forms obp has for several loggers.

    Parameters
    ----------
    balanced : bool
        The log's balanced propensity is available.
    naive : bool
        Add the naive forms (the log has several loggers), as ``kind[naive]``; not those that need a clip.

    Returns
    -------
    list of str
        Names ``parse_list`` reads.
    """
    names = list(REAL_LOG_SUITE) if balanced else ["dm"]
    if naive:
        names += [f"{k}[naive]" for k in REAL_LOG_SUITE if KINDS[k].obp_naive is not None and KINDS[k].clip != "needs"]
    return names


def suite(clip: float = DEFAULT_CLIP) -> list[EstimatorSpec]:
    """Every registered estimator, balanced, then the naive forms obp has (unclipped), in registration order.

    Parameters
    ----------
    clip : float
        The clip lambda of the kinds that need one (the others get none).

    Returns
    -------
    list of EstimatorSpec
    """
    balanced = [EstimatorSpec.parse(k, clip if r.clip == "needs" else None) for k, r in KINDS.items()]
    naive = [EstimatorSpec(k, weights="naive") for k, r in KINDS.items() if r.obp_naive is not None and r.clip != "needs"]
    return balanced + naive


def optimisable() -> list[str]:
    """Estimator names that can drive the decision (an exact formula at every mixture): the CLI's choices."""
    return [k for k, r in KINDS.items() if r.reward_model != "fitted"]


def exact_suite(clip: float = DEFAULT_CLIP, finite_variance: bool = True) -> list[EstimatorSpec]:
    """The estimators with an exact error formula at every mixture (the decision's candidates): the suite
    without ``dr_fitted`` (its model depends on the log); without the unbounded-weight ones when plain
    IPS has infinite variance.

    Parameters
    ----------
    clip : float
        As for ``suite``.
    finite_variance : bool
        Plain IPS has finite variance (False drops the estimators with unbounded weights).

    Returns
    -------
    list of EstimatorSpec
    """
    return [s for s in suite(clip) if not s.fits_reward_model and (finite_variance or not s.has_unbounded_weights)]


def parse_list(text: str, clip: float | None = None) -> list[EstimatorSpec]:
    """'ips,snips,dr[naive],switch_dr' -> specs; clip applies to the kinds that take one.

    Parameters
    ----------
    text : str
        Comma-separated estimator names, each optionally followed by ``[naive]``.
    clip : float, optional
        The clip lambda for the kinds that need or may take one (None: ``DEFAULT_CLIP`` for those that need it).

    Returns
    -------
    list of EstimatorSpec
        In the text's order.

    Raises
    ------
    CouponmixError
        No name, or a name or clip ``EstimatorSpec`` rejects.
    """

    specs = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        weights = "balanced"
        if item.endswith("[naive]"):
            item, weights = item[: -len("[naive]")], "naive"
        # a clip goes to every kind that takes one: those that need it (clipped IPS, switch DR) and those that may
        # (DR, fitted DR), as --clip's help says; kinds without a clip ignore it
        kind_clip = clip if item in KINDS and KINDS[item].clip in ("needs", "may") else None
        specs.append(EstimatorSpec.parse(item, kind_clip, weights))
    if not specs:
        raise CouponmixError("no estimator named")
    return specs

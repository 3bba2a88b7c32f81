"""The two objectives of method.md section 3, exact and vectorized over a batch of mixtures.

Revenue f_r(alpha) = sum_k alpha_k V(pi_k), with V(pi) = E_x[sum_a pi(a|x) mu(x,a)].

Evaluation error: the MSE at log size n of a balanced-weight OPE estimator of
V(pi_e), for each target pi_e. With p = p_alpha(a|x) and c = min(pi_e/p, lambda):

    clipped IPS (IPS is lambda = inf):
        mean   = E_x[sum_a p c mu]          = E_x[sum_{a: p>0} min(pi_e, lambda p) mu]
        second = E_x[sum_a p c^2 m2]        = E_x[sum_{a: p>0} min(pi_e^2 / p, lambda^2 p) m2]
        MSE_n  = (mean - V)^2 + (second - mean^2) / n
    SNIPS (delta method, with its O(1/n) bias):
        W = E[w] = E_x[sum_{a: p>0} pi_e]  (1 when pi_e is supported), R = mean_IPS / W,
        Var_n  = E_x[sum_{a: p>0} pi_e^2/p (m2 - 2 R mu + R^2)] / (n W^2),
        bias_n = (R - V) + (R E[w^2] - E[w^2 r]) / (n W^2).

Actions with p = 0 contribute nothing (the estimator never sees them); their
mass shows up as bias. The expectations over x are taken on a fixed covariate
sample (the *evaluation sample*, size M, independent of n), so both objectives
are deterministic, smooth functions of alpha: the front is not noise. n only
enters through the 1/n above, so one computation gives the RMSE at every n.

Speed: rows (x, a) with identical component propensities and target
probability are merged exactly (their mu and m2 summed), and a batch of B
mixtures is one (rows x K) @ (K x B) product followed by fused elementwise work
over row chunks, so memory stays bounded by chunk_rows x B.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from simulators.base import Scenario

from .errors import CouponmixError
from .estimators import EstimatorSpec
from .policies import Policy
from .seeding import stream
from .threads import default_threads
from .validation import check_positive_int

AGGREGATES = ("max", "mean")
#: elements (rows x mixtures) per chunk when chunk_rows is not given: temporaries stay cache-sized
CHUNK_ELEMENTS = 1 << 17
#: a target gets its own row set when its merged rows are fewer than this share of the sample
SMALL_GROUP_SHARE = 0.05
DEFAULT_EVAL_SIZE = 100_000


@dataclass
class EvaluationSample:
    """A fixed covariate sample with every policy and reward moment the objectives need."""

    component_names: tuple[str, ...]
    target_names: tuple[str, ...]
    comp_probs: np.ndarray    # (K, M, A)
    target_probs: np.ndarray  # (T, M, A)
    mu: np.ndarray            # (M, A)
    m2: np.ndarray            # (M, A)
    x: np.ndarray | None = None  # (M, d) the covariates, kept for policies evaluated later

    @classmethod
    def from_scenario(cls, scenario: Scenario, size: int = DEFAULT_EVAL_SIZE, seed: int = 0,
                      components: Mapping[str, Policy] | None = None,
                      targets: Mapping[str, Policy] | None = None) -> "EvaluationSample":
        size = check_positive_int(size, "evaluation sample size", minimum=100)
        components = dict(scenario.components() if components is None else components)
        targets = dict(scenario.targets() if targets is None else targets)
        x = scenario.sample_covariates(size, stream(seed, "evaluation_sample"))
        mu, m2 = scenario.mu(x), scenario.m2(x)
        if not (np.isfinite(mu).all() and np.isfinite(m2).all()):
            raise CouponmixError(f"scenario {scenario.name!r} returned non-finite reward moments")
        if (m2 < mu * mu - 1e-9 * (1 + np.abs(m2))).any():
            raise CouponmixError(f"scenario {scenario.name!r} has m2 < mu^2 somewhere: not a second moment")
        return cls(component_names=tuple(components), target_names=tuple(targets),
                   comp_probs=np.stack([p(x) for p in components.values()]),
                   target_probs=np.stack([p(x) for p in targets.values()]), mu=mu, m2=m2, x=x)

    @property
    def size(self) -> int:
        return self.mu.shape[0]

    def policy_value(self, probs: np.ndarray) -> float:
        """V(pi) = E_x[sum_a pi(a|x) mu(x,a)] on this sample."""
        return float(np.einsum("ma,ma->", probs, self.mu) / self.size)

    def policy_value_of(self, policy: Policy) -> float:
        """V(pi) for a policy not stored with the sample (needs the covariates, so they are kept)."""
        return self.policy_value(policy(self.x))

    @property
    def component_values(self) -> np.ndarray:
        return np.einsum("kma,ma->k", self.comp_probs, self.mu) / self.size

    @property
    def target_values(self) -> np.ndarray:
        return np.einsum("tma,ma->t", self.target_probs, self.mu) / self.size

    def balanced(self, alpha: np.ndarray) -> np.ndarray:
        """p_alpha(a|x) on the sample, (M, A)."""
        return np.tensordot(alpha, self.comp_probs, axes=1)


@dataclass(frozen=True)
class RowTerms:
    """Rows (x, a) that some target plays, merged exactly where all propensities coincide.

    Weights carry 1/M, so sums over rows are expectations over the evaluation sample.
    """

    P: np.ndarray    # (R, K) component propensities pi_k(a|x)
    pe: np.ndarray   # (R, T) target probabilities pi_e(a|x)
    w: np.ndarray    # (R,) merged row count / M
    wmu: np.ndarray  # (R,) sum of mu over merged rows / M
    wm2: np.ndarray  # (R,) sum of m2 over merged rows / M
    values: np.ndarray  # (T,) V(pi_e)

    @classmethod
    def build(cls, comp_probs: np.ndarray, target_probs: np.ndarray, mu: np.ndarray,
              m2: np.ndarray) -> "RowTerms":
        k, m, a = comp_probs.shape
        t = target_probs.shape[0]
        P = comp_probs.transpose(1, 2, 0).reshape(m * a, k)
        pe = target_probs.transpose(1, 2, 0).reshape(m * a, t)
        mu_rows, m2_rows = mu.reshape(-1), m2.reshape(-1)
        keep = (pe > 0).any(axis=1)
        keys, inverse = np.unique(np.column_stack([P[keep], pe[keep]]), axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)

        def merged(v):
            return np.bincount(inverse, weights=v, minlength=len(keys)) / m

        return cls(P=np.ascontiguousarray(keys[:, :k]), pe=np.ascontiguousarray(keys[:, k:]),
                   w=merged(np.ones(int(keep.sum()))), wmu=merged(mu_rows[keep]), wm2=merged(m2_rows[keep]),
                   values=np.einsum("tma,ma->t", target_probs, mu) / m)

    @property
    def n_rows(self) -> int:
        return self.P.shape[0]


@dataclass(frozen=True)
class ErrorLaw:
    """MSE(n) = (bias0 + bias1 / n)^2 + scaled_var / n, for a batch of mixtures (arrays of shape (B,)).

    ``support`` is E_x[sum_{a: p_alpha>0} pi_e(a|x)]: 1 when the target is supported, less when the
    logging mixture never plays some action the target plays.
    """

    bias0: np.ndarray
    bias1: np.ndarray
    scaled_var: np.ndarray
    support: np.ndarray

    def mse(self, n) -> np.ndarray:
        return (self.bias0 + self.bias1 / n) ** 2 + self.scaled_var / n

    def rmse(self, n) -> np.ndarray:
        return np.sqrt(self.mse(n))

    def bias(self, n) -> np.ndarray:
        return self.bias0 + self.bias1 / n


_MOMENTS = {"ips": ("mean", "second", "support"), "clipped_ips": ("mean", "second", "support"),
            "snips": ("mean", "second", "support", "ew2", "ew2r")}


def _chunk_moments(rows: RowTerms, sl: slice, at: np.ndarray, spec: EstimatorSpec) -> np.ndarray:
    """Moments of every target over one chunk of rows: array (T, n_moments, B)."""
    keys = _MOMENTS[spec.kind]
    p = rows.P[sl] @ at                            # (r, B) balanced propensities
    all_pos = bool((p > 0).all())
    if all_pos:
        inv = 1.0 / p
    else:
        pos = p > 0
        inv = np.divide(1.0, p, out=np.zeros_like(p), where=pos)
    lam = spec.clip
    clipped = np.isfinite(lam)
    if clipped:
        lam_p, lam2_p = lam * p, (lam * lam) * p
    w, wmu, wm2 = rows.w[sl], rows.wmu[sl], rows.wm2[sl]
    out = np.empty((rows.pe.shape[1], len(keys), at.shape[1]))
    for t in range(rows.pe.shape[1]):
        pe = rows.pe[sl, t]
        pe_col = pe[:, None]
        w2 = (pe * pe)[:, None] * inv                # pi_e^2 / p  (0 where p = 0)
        if all_pos:
            supported = None
            out[t, keys.index("support")] = w @ pe
        else:
            supported = pe_col * pos
            out[t, keys.index("support")] = w @ supported
        if clipped:
            mean_term = np.minimum(pe_col, lam_p)        # p c    (0 where p = 0)
            second_term = np.minimum(w2, lam2_p)         # p c^2  (0 where p = 0)
        else:
            mean_term = np.broadcast_to(pe_col, p.shape) if supported is None else supported
            second_term = w2
        out[t, keys.index("mean")] = wmu @ mean_term
        out[t, keys.index("second")] = wm2 @ second_term
        if spec.kind == "snips":
            out[t, keys.index("ew2")] = w @ w2
            out[t, keys.index("ew2r")] = wmu @ w2
    return out


def _moments(rows: RowTerms, alphas: np.ndarray, spec: EstimatorSpec, chunk_rows: int | None,
             executor: ThreadPoolExecutor | None) -> dict:
    """Sums over rows of the moments ``spec`` needs, per target, for each mixture in ``alphas`` (B, K).

    Chunks may run on threads (numpy releases the GIL); partial sums are added in chunk order,
    so the result does not depend on scheduling.
    """
    at = np.ascontiguousarray(alphas.T)
    if chunk_rows is None:
        chunk_rows = max(256, CHUNK_ELEMENTS // at.shape[1])
    slices = [slice(s, s + chunk_rows) for s in range(0, rows.n_rows, chunk_rows)]
    if executor is None or len(slices) < 4:
        parts = [_chunk_moments(rows, sl, at, spec) for sl in slices]
    else:
        parts = list(executor.map(lambda sl: _chunk_moments(rows, sl, at, spec), slices))
    total = np.sum(parts, axis=0)
    return {key: total[:, i, :] for i, key in enumerate(_MOMENTS[spec.kind])}


def error_laws(rows: RowTerms, alphas: np.ndarray, spec: EstimatorSpec, chunk_rows: int | None = None,
               executor: ThreadPoolExecutor | None = None) -> list[ErrorLaw]:
    """Exact (IPS, clipped IPS) or delta-method (SNIPS) error law of ``spec``, one per target."""
    alphas = np.atleast_2d(np.asarray(alphas, dtype=float))
    acc = _moments(rows, alphas, spec, chunk_rows, executor)
    v = rows.values[:, None]
    if spec.kind in ("ips", "clipped_ips"):
        bias0 = acc["mean"] - v
        scaled_var = np.maximum(acc["second"] - acc["mean"] ** 2, 0.0)
        bias1 = np.zeros_like(bias0)
    else:  # SNIPS, delta method. "second" is E[w^2 r^2] (lambda = inf), "mean" is E[w r].
        wbar = acc["support"]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = acc["mean"] / wbar
            denom = wbar * wbar
            scaled_var = np.maximum((acc["second"] - 2 * ratio * acc["ew2r"] + ratio ** 2 * acc["ew2"]) / denom, 0.0)
            bias1 = (ratio * acc["ew2"] - acc["ew2r"]) / denom
        bias0 = ratio - v
    return [ErrorLaw(bias0=bias0[t], bias1=bias1[t], scaled_var=scaled_var[t], support=acc["support"][t])
            for t in range(len(rows.values))]


class MixtureObjectives:
    """Revenue and OPE error of a mixture, for a batch of mixtures at once.

    Parameters
    ----------
    sample : EvaluationSample
    estimator : EstimatorSpec
    n : int
        Log size at which the OPE error is measured.
    aggregate : "max" or "mean"
        How per-target RMSEs combine into the single error objective.
    """

    def __init__(self, sample: EvaluationSample, estimator: EstimatorSpec, n: int,
                 aggregate: str = "max", chunk_rows: int | None = None, threads: int | None = None):
        if aggregate not in AGGREGATES:
            raise CouponmixError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
        self.sample = sample
        self.estimator = estimator
        self.n = check_positive_int(n, "n")
        self.aggregate = aggregate
        self.chunk_rows = None if chunk_rows is None else check_positive_int(chunk_rows, "chunk_rows")
        self.component_values = sample.component_values
        self.groups = self._group_targets(sample)
        threads = min(default_threads(), 4) if threads is None else check_positive_int(threads, "threads")
        self._executor = ThreadPoolExecutor(threads) if threads > 1 else None

    @staticmethod
    def _group_targets(sample: EvaluationSample) -> list[tuple[list[int], RowTerms]]:
        """Row sets to evaluate: one shared by all targets, except targets whose own merged rows are few.

        A deterministic target merges into a handful of rows on its own but would cost a full pass
        over the shared rows; a target with continuous probabilities gains nothing from its own set.
        """
        t_all = list(range(len(sample.target_names)))
        alone = {t: RowTerms.build(sample.comp_probs, sample.target_probs[t:t + 1], sample.mu, sample.m2)
                 for t in t_all}
        shared_t = [t for t in t_all if alone[t].n_rows > SMALL_GROUP_SHARE * sample.size]
        groups = [([t], alone[t]) for t in t_all if t not in shared_t]
        if len(shared_t) == 1:
            groups.append((shared_t, alone[shared_t[0]]))
        elif shared_t:
            groups.append((shared_t, RowTerms.build(sample.comp_probs, sample.target_probs[shared_t],
                                                    sample.mu, sample.m2)))
        return groups

    @property
    def n_rows(self) -> int:
        """Rows processed per mixture evaluation, over all row sets."""
        return sum(rows.n_rows * len(ts) if len(ts) == 1 else rows.n_rows for ts, rows in self.groups)

    @property
    def component_names(self) -> tuple[str, ...]:
        return self.sample.component_names

    @property
    def target_names(self) -> tuple[str, ...]:
        return self.sample.target_names

    def revenue(self, alphas) -> np.ndarray:
        """Expected reward per customer of each mixture, (B,)."""
        return np.atleast_2d(alphas) @ self.component_values

    def laws(self, alphas) -> list[ErrorLaw]:
        """The error law of every target for each mixture."""
        alphas = np.atleast_2d(np.asarray(alphas, dtype=float))
        laws: list = [None] * len(self.target_names)
        for ts, rows in self.groups:
            for t, law in zip(ts, error_laws(rows, alphas, self.estimator, self.chunk_rows, self._executor)):
                laws[t] = law
        return laws

    def rmse(self, alphas, n: int | None = None) -> np.ndarray:
        """Per-target RMSE at log size n (default: self.n), (B, T)."""
        n = self.n if n is None else n
        return np.column_stack([law.rmse(n) for law in self.laws(alphas)])

    def combine(self, per_target: np.ndarray) -> np.ndarray:
        return per_target.max(axis=1) if self.aggregate == "max" else per_target.mean(axis=1)

    def evaluate(self, alphas) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(revenue (B,), aggregated RMSE (B,), per-target RMSE (B, T))."""
        per = self.rmse(alphas)
        return self.revenue(alphas), self.combine(per), per

    def describe(self, alpha: Sequence[float]) -> dict:
        """Per-target breakdown at one mixture, for summaries and reports."""
        alpha = np.asarray(alpha, dtype=float)[None, :]
        out = {}
        for name, value, law in zip(self.target_names, self.sample.target_values, self.laws(alpha)):
            out[name] = {
                "true_value": float(value),
                "rmse": float(law.rmse(self.n)[0]),
                "bias": float(law.bias(self.n)[0]),
                "std_error": float(np.sqrt(law.scaled_var[0] / self.n)),
                "support": float(law.support[0]),
            }
        return out

"""Monte Carlo check of the analytic error: simulate R independent logs, run obp, compare.

For each replication r a fresh log of n customers is drawn from the scenario
(covariates from its law, component, action, reward) under the mixture alpha;
the obp estimator matching the EstimatorSpec estimates V(pi_e) for each
target. The empirical MSE against the true value and its standard error
(std of the squared errors / sqrt(R)) are reported beside the analytic RMSE.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from simulators.base import Scenario

from .errors import CouponmixError
from .estimators import EstimatorSpec
from .logs import simulate_log
from .mixture import Mixture
from .objectives import DEFAULT_EVAL_SIZE, EvaluationSample, MixtureObjectives
from .seeding import stream
from .validation import check_positive_int

TRUTH_SIZE = 2_000_000
TRUTH_CHUNK = 250_000


@dataclass(frozen=True)
class TargetCheck:
    true_value: float
    mean_estimate: float
    bias: float
    mc_mse: float
    mc_mse_se: float
    mc_rmse: float
    mc_rmse_se: float
    analytic_rmse: float
    analytic_bias: float
    z_score: float  # (mc_mse - analytic_mse) / mc_mse_se

    def to_dict(self) -> dict:
        return asdict(self)


def true_values(scenario: Scenario, seed: int, size: int = TRUTH_SIZE) -> dict[str, float]:
    """V(pi_e) for every target on a large sample, in chunks (bounded memory)."""
    targets = scenario.targets()
    totals = dict.fromkeys(targets, 0.0)
    for c, start in enumerate(range(0, size, TRUTH_CHUNK)):
        x = scenario.sample_covariates(min(TRUTH_CHUNK, size - start), stream(seed, "truth", c))
        mu = scenario.mu(x)
        for name, pol in targets.items():
            totals[name] += float(np.einsum("ma,ma->", pol(x), mu))
    return {name: total / size for name, total in totals.items()}


def monte_carlo(scenario: Scenario, alpha, estimator: EstimatorSpec, n: int, reps: int, seed: int = 0,
                floors=0.0, eval_size: int = DEFAULT_EVAL_SIZE, truth_size: int = TRUTH_SIZE,
                on_replication: Callable[[int], None] | None = None) -> dict[str, TargetCheck]:
    n = check_positive_int(n, "n")
    reps = check_positive_int(reps, "reps", minimum=2)
    components, targets = scenario.components(), scenario.targets()
    mixture = Mixture(components, alpha, floors)
    sample = EvaluationSample.from_scenario(scenario, eval_size, seed)
    analytic = MixtureObjectives(sample, estimator, n, threads=1).describe(mixture.alpha)
    for name, d in analytic.items():
        if d["support"] < 1 - 1e-9:
            raise CouponmixError(
                f"zero propensity where {name} acts: the mixture never plays actions that carry "
                f"{1 - d['support']:.1%} of {name}'s probability, so no propensity-weighted estimator can "
                "evaluate it; give every component some weight")
    truth = true_values(scenario, seed, truth_size)
    estimates = np.empty((reps, len(targets)))
    for r in range(reps):
        log = simulate_log(scenario, mixture, n, seed, replication=r)
        for j, pol in enumerate(targets.values()):
            estimates[r, j] = estimator.estimate(log, pol(log["context"]))
        if on_replication is not None:
            on_replication(r + 1)
    out = {}
    for j, name in enumerate(targets):
        sq = (estimates[:, j] - truth[name]) ** 2
        mse, mse_se = float(sq.mean()), float(sq.std(ddof=1) / np.sqrt(reps))
        rmse = float(np.sqrt(mse))
        a_rmse = analytic[name]["rmse"]
        out[name] = TargetCheck(
            true_value=truth[name], mean_estimate=float(estimates[:, j].mean()),
            bias=float(estimates[:, j].mean() - truth[name]), mc_mse=mse, mc_mse_se=mse_se,
            mc_rmse=rmse, mc_rmse_se=mse_se / (2 * rmse) if rmse > 0 else float("nan"),
            analytic_rmse=a_rmse, analytic_bias=analytic[name]["bias"],
            z_score=(mse - a_rmse ** 2) / mse_se if mse_se > 0 else float("nan"))
    return out

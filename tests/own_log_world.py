"""An independent coupon world with heavy-tailed net revenue, written apart from couponmix's market, for
checking couponmix on a team's own log (issue 21): calibrate from one log of this world, then compare the
promise with what logs drawn from the world itself give.

Customers: spend (lognormal), recency in days (uniform 0-365), region (north, south, east, west).
Coupons, as a team would name them: NONE, SAVE10, SAVE20, FREESHIP. A customer buys with a logistic
probability that each coupon shifts differently by recency, spend and region; an order's value is lognormal
with sigma 0.8 (kurtosis over 100: the top 1% of orders carry about a quarter of the revenue); net revenue is the order
less the discount (10% or 20%) or a 6.0 shipping cost, 0 without a purchase. mu(x, a) is exact (the lognormal
mean), so true policy values need no Monte Carlo. The log's policy is a known softmax of a score, every
coupon at least 5% of the time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COUPONS = ("NONE", "SAVE10", "SAVE20", "FREESHIP")
REGIONS = ("north", "south", "east", "west")
DISCOUNT = np.array([0.0, 0.10, 0.20, 0.0])
SHIPPING = np.array([0.0, 0.0, 0.0, 6.0])
SIGMA = 0.8


def customers(n: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "spend": np.round(rng.lognormal(3.5, 0.5, n), 2),
            "recency": rng.integers(0, 366, n).astype(float),
            "region": rng.choice(REGIONS, n, p=[0.3, 0.3, 0.2, 0.2]),
        }
    )


def _parts(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(purchase probability (n, A), mean order value (n,))."""
    spend, rec = frame["spend"].to_numpy(float), frame["recency"].to_numpy(float) / 365
    north = (frame["region"] == "north").to_numpy(float)
    east = (frame["region"] == "east").to_numpy(float)
    base = -1.6 + 0.4 * np.log(spend / 30) - 1.2 * rec
    lift = np.column_stack([np.zeros(len(frame)), 0.35 + 0.3 * rec, 0.2 + 1.2 * rec, 0.15 + 0.6 * north + 0.3 * east - 0.4 * rec])
    buy = 1 / (1 + np.exp(-(base[:, None] + lift)))
    order = np.exp(np.log(spend) + 0.3 + SIGMA**2 / 2)
    return buy, order


def mu(frame: pd.DataFrame) -> np.ndarray:
    """E[net revenue | x, a], (n, A), exact."""
    buy, order = _parts(frame)
    return buy * (order[:, None] * (1 - DISCOUNT) - SHIPPING)


def rewards(frame: pd.DataFrame, action: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    buy, _ = _parts(frame)
    rows = np.arange(len(frame))
    bought = rng.random(len(frame)) < buy[rows, action]
    order = np.exp(np.log(frame["spend"].to_numpy(float)) + 0.3 + SIGMA * rng.standard_normal(len(frame)))
    return np.where(bought, order * (1 - DISCOUNT[action]) - SHIPPING[action], 0.0)


def logging_probabilities(frame: pd.DataFrame) -> np.ndarray:
    """The log's own policy: a softmax of a hand-made score, floored at 5% per coupon."""
    rec = frame["recency"].to_numpy(float) / 365
    score = np.column_stack([np.full(len(frame), 1.0), 0.5 + rec, 1.5 * rec, (frame["region"] == "north").to_numpy(float)])
    p = np.exp(score)
    p /= p.sum(axis=1, keepdims=True)
    return 0.05 + 0.8 * p


def log(n: int, seed: int) -> pd.DataFrame:
    """A team's log: customers, the coupon sent (as text), its propensity and the net revenue."""
    rng = np.random.default_rng(seed)
    frame = customers(n, rng)
    p = logging_probabilities(frame)
    action = (rng.random(n)[:, None] > p.cumsum(axis=1)).sum(axis=1)
    frame["coupon"] = np.array(COUPONS)[action]
    frame["p"] = p[np.arange(n), action]
    frame["revenue"] = np.round(rewards(frame, action, rng), 2)
    frame.insert(0, "customer_id", np.arange(n))
    return frame


MAPPING = {
    "features": ["spend", "recency"],
    "categorical": ["region"],
    "action": "coupon",
    "reward": "revenue",
    "propensity": "p",
    "id": "customer_id",
}

CONFIG = {
    "columns": MAPPING,
    "model": {"num_leaves": 7, "min_child_samples": 300, "n_estimators": 150},
    "components": {"exploit": {"kind": "greedy_model"}, "explore": {"kind": "uniform"}},
    "targets": {
        "lapsed_save20": {"kind": "rule", "feature": "recency", "min": 180, "action": "SAVE20", "otherwise": "NONE"},
        "north_ship": {"kind": "rule", "feature": "region", "equals": "north", "action": "FREESHIP", "otherwise": "SAVE10"},
        "model_v2": {"kind": "greedy_model", "features": ["recency", "region"]},
    },
}


def encode(frame: pd.DataFrame, card: dict) -> np.ndarray:
    """Fresh customers in a calibrated scenario's covariate layout (categories as their index in the card)."""
    cols = []
    for name in card["features"]:
        if name in card["categories"]:
            cats = card["categories"][name]
            cols.append(frame[name].map({c: i for i, c in enumerate(cats)}).to_numpy(float))
        else:
            cols.append(frame[name].to_numpy(float))
    return np.column_stack(cols)


# ----- the check: calibrate from one log, then Monte Carlo over logs drawn from the world itself ------------

#: a mapping whose only feature is a ticket number that says nothing about the customer: the model cannot beat
#: the per-action averages, so calibrate falls back to the per-action-means world, which cannot see that
#: customers differ; the targets split customers by ticket or at random
MEANS_CONFIG = {
    "columns": {**MAPPING, "features": ["ticket"], "categorical": []},
    "components": CONFIG["components"],
    "targets": {
        "half_save20": {"kind": "fixed", "probabilities": {"SAVE20": 0.5, "NONE": 0.5}},
        "ticket_ship": {"kind": "rule", "feature": "ticket", "min": 500, "action": "FREESHIP", "otherwise": "SAVE10"},
    },
}


def with_ticket(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    return frame.assign(ticket=np.random.default_rng(seed).integers(0, 1000, len(frame)).astype(float))


def promise_check(
    tmp, means: bool = False, reps: int = 100, rows: int = 50_000, eval_size: int = 50_000, config=None, seed: int = 1
) -> dict:
    """Calibrate from a ``rows``-row log of this world (drawn with ``seed``), run the study, then draw ``reps`` logs of the
    run's size from the world at the recommended mixture; per target, the promise beside the Monte Carlo
    RMSE, bias and their standard errors, and the stated revenue cost beside the world's own."""
    from pathlib import Path

    from couponmix.commands import calibrate
    from couponmix.dataset.scenario import get_scenario
    from couponmix.ope.estimators import exact_suite
    from couponmix.ope.montecarlo import interval
    from couponmix.studies.config import StudyConfig
    from couponmix.studies.study import run_config

    tmp = Path(tmp)
    frame = with_ticket(log(rows, seed=seed), seed + 1)
    r = frame["revenue"].to_numpy()
    tails = {
        "kurtosis": float(((r - r.mean()) ** 4).mean() / r.var() ** 2),
        "top_1pct_share": float(np.sort(r)[::-1][: len(r) // 100].sum() / r.sum()),
    }
    frame.to_csv(tmp / "log.csv", index=False)
    cal = calibrate(tmp / "log.csv", tmp / "sc", config or (MEANS_CONFIG if means else CONFIG))
    summary = run_config(StudyConfig(scenario=str(tmp / "sc"), eval_size=eval_size)).summary.to_dict()
    sc = get_scenario(str(tmp / "sc"))
    perm = [COUPONS.index(a) for a in sc.action_names]
    alpha = np.array([summary["recommended"]["alpha"][c] for c in sc.components()])
    ref = np.array([summary["no_exploration"]["alpha"][c] for c in sc.components()])
    pool = with_ticket(customers(200_000, np.random.default_rng(7)), 8)
    x = encode(pool, sc.meta["card"])
    m = mu(pool)[:, perm]
    comp = np.stack([p(x) for p in sc.components().values()])  # (K, P, A)
    targets = {t: p(x) for t, p in sc.targets().items()}
    q = sc.reward_model(x)
    truth = {t: float((pe * m).sum(axis=1).mean()) for t, pe in targets.items()}
    true_cost = float((ref - alpha) @ (np.einsum("kpa,pa->k", comp, m) / len(x)))
    n = summary["n"]
    detail = summary["recommended"]["targets"]
    specs = {s.name: s for s in exact_suite()}
    p_bal = np.tensordot(alpha, comp, axes=1)
    est = {t: np.empty(reps) for t in targets}
    for rep in range(reps):
        g = np.random.default_rng([11, rep])
        idx = g.integers(0, len(x), n)
        k = (g.random(n)[:, None] > np.cumsum(alpha)[None, :]).sum(axis=1).clip(0, len(alpha) - 1)
        probs = comp[k, idx]
        a = (g.random(n)[:, None] > probs.cumsum(axis=1)).sum(axis=1).clip(0, len(perm) - 1)
        reward = rewards(pool.iloc[idx].reset_index(drop=True), np.array(perm)[a], g)
        one = {"action": a, "reward": reward, "pscore": probs[np.arange(n), a], "pscore_avg": p_bal[idx, a]}
        for t, pe in targets.items():
            est[t][rep] = interval(specs[detail[t]["estimator"]], one, pe[idx], q[idx])[0]
    out_targets = {}
    for t in targets:
        d = detail[t]
        err = est[t] - truth[t]
        mc = float(np.sqrt((err**2).mean()))
        out_targets[t] = {
            "estimator": d["estimator"],
            "promised_rmse": d["rmse"],
            "promise_se": d["promise_se"],
            "sampling_error": d["sampling_error"],
            "estimated_bias": d["computed_bias"],
            "model_bias_bound": d["model_bias_bound"],
            "mc_rmse": mc,
            "mc_rmse_se": float((err**2).std(ddof=1) / np.sqrt(reps) / (2 * mc)),
            "mc_bias": float(err.mean()),
            "mc_bias_se": float(err.std(ddof=1) / np.sqrt(reps)),
            "promise_over_mc": d["rmse"] / mc,
        }
    stated = summary["revenue_cost"]["per_customer"]
    return {
        "rows": rows,
        "tails": tails,
        "world": cal.world,
        "second_moments": summary["criterion"]["second_moments"],
        "gate": {"gain": cal.diagnostics.gain, "gain_se": cal.diagnostics.gain_se},
        "recommended": summary["recommended"]["alpha"],
        "n": n,
        "reps": reps,
        "targets": out_targets,
        "revenue_cost_per_10k": {
            "stated": 1e4 * stated,
            "stated_se": 1e4 * summary["promise_uncertainty"]["revenue_cost_se"],
            "true": 1e4 * true_cost,
            "stated_over_true": stated / true_cost,
        },
    }

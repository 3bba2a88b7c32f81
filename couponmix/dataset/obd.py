"""The Open Bandit Dataset samples that obp ships, as a first real log.

obp bundles 10,000-row samples of the Open Bandit Dataset (ZOZOTOWN fashion recommendations) logged by a
uniform-random policy and by Bernoulli Thompson Sampling (BTS), for the campaigns all, men and women
(``obp/dataset/obd/{random,bts}/{all,men,women}/``). obp's own ``OpenBanditDataset`` loader breaks on
pandas 3; these are plain CSV files, read here directly.

How the data maps onto couponmix's one action per customer: every row is one impression. The action is
the item shown (80 items in ``all``); the reward is the click; the position (1 to 3) is a categorical
feature of the impression, beside the four hashed user features (categorical) and the 80 user-item
affinities (numeric). The logged propensity is the probability of that item at that position. For the
random log it is 1/80 throughout. BTS's propensities change from batch to batch as its posterior
updates, so no single context-free policy reproduces them (``kind: logged`` refuses it); its average
allocation over the sample, the share of impressions each item got, is used as the production policy.

``python -m couponmix.dataset.obd --out DIR [--campaign all]`` writes ``DIR/random_<campaign>.csv`` (the
random log) and ``DIR/obd.yaml``: the calibration config for "how much uniform-random traffic should the
recommender keep beside its BTS production policy". It also writes ``DIR/random_bts_<campaign>.csv``, both
samples in one log with a ``logger`` column (random or bts), and ``DIR/obd_two_loggers.yaml``: a log written
by two logging policies, for ``couponmix estimate``'s multi-logger estimators. BTS's propensities vary from
row to row, so the logging system's balanced propensity cannot be rebuilt; the naive multi-logger forms
(each row weighted by its own logger's propensity) are what the log supports.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

from couponmix.errors import CouponmixError

__all__ = [
    "CAMPAIGNS",
    "POLICIES",
    "sample_path",
    "read_sample",
    "bts_allocation",
    "write_example",
    "main",
]

CAMPAIGNS = ("all", "men", "women")
POLICIES = ("random", "bts")


def sample_path(policy: str = "random", campaign: str = "all") -> Path:
    """The CSV of obp's bundled sample for ``policy`` (random or bts) and ``campaign``."""
    if policy not in POLICIES or campaign not in CAMPAIGNS:
        raise CouponmixError(f"Open Bandit samples: policy is one of {', '.join(POLICIES)}, campaign one of {', '.join(CAMPAIGNS)}")
    try:
        import importlib.util

        spec = importlib.util.find_spec("obp")
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        raise CouponmixError("the Open Bandit samples ship with obp, which is not installed")
    path = Path(spec.origin).parent / "dataset" / "obd" / policy / campaign / f"{campaign}.csv"
    if not path.is_file():
        raise CouponmixError(f"obp's Open Bandit sample {path} is missing")
    return path


def read_sample(policy: str = "random", campaign: str = "all"):
    """The sample as a pandas DataFrame (one row per impression)."""
    import pandas as pd

    return pd.read_csv(sample_path(policy, campaign), index_col=0)


def bts_allocation(campaign: str = "all") -> dict[str, float]:
    """BTS's average probability of showing each item: its share of the BTS sample's impressions."""
    frame = read_sample("bts", campaign)
    items = sorted(read_sample("random", campaign)["item_id"].unique().tolist())
    counts = frame["item_id"].value_counts()
    total = float(counts.sum())
    return {str(i): float(counts.get(i, 0)) / total for i in items}


def _example_config(campaign: str = "all") -> dict:
    """The calibration config of obp's uniform-random Open Bandit sample: columns, model settings, the BTS and
    uniform components, and the BTS and greedy-model targets."""
    frame = read_sample("random", campaign)
    affinities = [c for c in frame.columns if c.startswith("user-item_affinity_")]
    users = [c for c in frame.columns if c.startswith("user_feature_")]
    return {
        "description": f"Open Bandit Dataset ({campaign} campaign, obp's 10,000-row sample): ZOZOTOWN fashion "
        "recommendations, calibrated on the uniform-random log",
        "columns": {
            "features": affinities,
            "categorical": [*users, "position"],
            "action": "item_id",
            "reward": "click",
            "propensity": "propensity_score",
            "timestamp": "timestamp",
            "reward_kind": "binary",
        },
        "model": {"n_estimators": 100, "num_leaves": 7, "min_child_samples": 50, "min_positive": 10},
        "fallback": "means",
        "components": {
            "bts": {
                "kind": "fixed",
                "probabilities": bts_allocation(campaign),
                "description": "the production recommender, Bernoulli Thompson Sampling (its average allocation)",
            },
            "explore": {"kind": "uniform", "description": "uniform-random recommendations"},
        },
        "targets": {
            "bts": {
                "kind": "fixed",
                "probabilities": bts_allocation(campaign),
                "description": "Bernoulli Thompson Sampling, as in production",
            },
            "model": {"kind": "greedy_model", "description": "greedy recommender of a click model fitted on the log"},
        },
    }


def _two_logger_config(campaign: str = "all") -> dict:
    """The calibration config of the two-logger log (random and BTS in one file, column ``logger``)."""
    cfg = _example_config(campaign)
    cfg["description"] = (
        f"Open Bandit Dataset ({campaign} campaign, obp's samples): the uniform-random and the Bernoulli Thompson "
        "Sampling logs in one, as a log written by two logging policies"
    )
    cfg["columns"] = {**cfg["columns"], "component": "logger"}
    cfg["components"] = {
        "bts": cfg["components"]["bts"],
        "random": {"kind": "logged", "component": "random", "description": "uniform-random recommendations, rebuilt from the log"},
    }
    return cfg


def _dump(config: dict, path: Path, what: str) -> None:
    import yaml

    text = f"# {what} (written by python -m couponmix.dataset.obd)\n" + yaml.safe_dump(config, sort_keys=False, width=120)
    path.write_text(text)


def write_example(out, campaign: str = "all") -> tuple[Path, Path]:
    """Write the random log and its calibration config to the folder ``out``, and the two-logger log and its
    config beside them; returns (log, config) of the random one."""
    import pandas as pd

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / f"random_{campaign}.csv"
    shutil.copyfile(sample_path("random", campaign), log)
    config = out / "obd.yaml"
    _dump(_example_config(campaign), config, "calibration config for obp's Open Bandit sample")
    both = pd.concat([read_sample("random", campaign).assign(logger="random"), read_sample("bts", campaign).assign(logger="bts")])
    both.to_csv(out / f"random_bts_{campaign}.csv", index=False)
    _dump(_two_logger_config(campaign), out / "obd_two_loggers.yaml", "calibration config for the random and BTS samples in one log")
    return log, config


def main(argv=None) -> int:
    """``python -m couponmix.dataset.obd --out DIR``: write the sample and its configs; 0 on success, 2 on an error."""
    parser = argparse.ArgumentParser(
        prog="python -m couponmix.dataset.obd", description="write obp's Open Bandit sample and its calibration config"
    )
    parser.add_argument("--out", required=True)
    parser.add_argument("--campaign", choices=CAMPAIGNS, default="all")
    args = parser.parse_args(argv)
    try:
        log, config = write_example(args.out, args.campaign)
    except CouponmixError as exc:
        print(f"couponmix: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {log} and {config}")
    print(f"next: couponmix calibrate {log} --config {config} --out {Path(args.out) / 'scenario'}")
    both = Path(args.out) / f"random_bts_{args.campaign}.csv"
    print(f"and:  couponmix estimate {both} --config {Path(args.out) / 'obd_two_loggers.yaml'}")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())

"""Regenerate datasets/paper_log.csv: 2,000 customers logged in the paper setting by the mix
pi1 = 0.3, pi2 = 0.3, pi3 = 0.4 (seed 0). Columns: x1..x4, component, action, reward,
pscore (acting component's own propensity), pscore_avg (balanced propensity).

    .venv/bin/python datasets/make_paper_log.py
"""

from pathlib import Path

import pandas as pd

from couponmix.dataset.logs import simulate_log
from couponmix.policy.mixture import Mixture
from simulators import get_scenario

OUT = Path(__file__).with_name("paper_log.csv")


def build() -> pd.DataFrame:
    sc = get_scenario("paper")
    mix = Mixture(sc.components(), [0.3, 0.3, 0.4])
    log = simulate_log(sc, mix, 2000, seed=0)
    df = pd.DataFrame(log["context"], columns=list(sc.covariate_names))
    df["component"] = [mix.names[k] for k in log["stratum_idx"]]
    for key in ("action", "reward", "pscore", "pscore_avg"):
        df[key] = log[key]
    return df


if __name__ == "__main__":
    build().to_csv(OUT, index=False, float_format="%.10g")
    print(f"wrote {OUT}")

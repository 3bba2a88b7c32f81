"""The setting of Nishimura, Kobayashi & Nakata (PRICAI 2024), exactly as published.

x ~ U(0,1)^4; actions 0 = no coupon, 1 = coupon.
r(x, 0) = e0, r(x, 1) = x2 + x3 + e1, e ~ N(0, 1) independent.
Logging components: pi1 gives the coupon with probability x1; pi2 iff x2 >= 0.5;
pi3 iff x3 >= 0.5. Targets: pi_e1 gives it with probability 0.8 if x2 >= 0.5
else 0.2; pi_e2 the reverse (0.2 if x2 >= 0.5 else 0.8).

(The paper's code drew pi_e2's truth with pi_e1's probabilities; here each
target has its own.) ``PaperFloorScenario`` is the same market with pi1's
coupon probability clipped to [floor, 1 - floor], which keeps every balanced
propensity away from 0 and so makes IPS variance finite.
"""

from __future__ import annotations

import numpy as np

from couponmix.dataset.scenario import Scenario
from couponmix.dataset.types import SupportVerdict
from couponmix.policy.policies import Policy, binary

# (x2 >= .5, x3 >= .5) cells: each has probability 1/4 and x1 is independent of them.
_CELLS = ((0, 0), (0, 1), (1, 0), (1, 1))


class PaperScenario(Scenario):
    name = "paper"
    description = (
        "Published PRICAI 2024 setting: x ~ U(0,1)^4, coupon or not, three logging rules, "
        "two targets. Plain IPS has infinite variance for every mixture."
    )
    action_names = ("no_coupon", "coupon")
    covariate_names = ("x1", "x2", "x3", "x4")
    default_n = 10_000
    pi1_floor = 0.0

    def sample_covariates(self, n, rng):
        return rng.random((n, 4))

    def mu(self, x):
        return np.column_stack([np.zeros(len(x)), x[:, 1] + x[:, 2]])

    def m2(self, x):
        s = x[:, 1] + x[:, 2]
        return np.column_stack([np.ones(len(x)), s * s + 1.0])

    def sample_rewards(self, x, actions, rng):
        noise = rng.standard_normal(len(x))
        return np.where(actions == 1, x[:, 1] + x[:, 2], 0.0) + noise

    def _pi1(self, x):
        return np.clip(x[:, 0], self.pi1_floor, 1.0 - self.pi1_floor)

    def components(self):
        return {
            "pi1": Policy(
                "pi1",
                lambda x: binary(self._pi1(x)),
                2,
                "coupon with probability x1" + (f" clipped to [{self.pi1_floor:g}, {1 - self.pi1_floor:g}]" if self.pi1_floor else ""),
            ),
            "pi2": Policy("pi2", lambda x: binary(x[:, 1] >= 0.5), 2, "coupon iff x2 >= 0.5"),
            "pi3": Policy("pi3", lambda x: binary(x[:, 2] >= 0.5), 2, "coupon iff x3 >= 0.5"),
        }

    def targets(self):
        return {
            "pi_e1": Policy(
                "pi_e1", lambda x: binary(np.where(x[:, 1] >= 0.5, 0.8, 0.2)), 2, "coupon with probability 0.8 if x2 >= 0.5 else 0.2"
            ),
            "pi_e2": Policy(
                "pi_e2", lambda x: binary(np.where(x[:, 1] >= 0.5, 0.2, 0.8)), 2, "coupon with probability 0.2 if x2 >= 0.5 else 0.8"
            ),
        }

    def weight_moment_verdict(self, target, alpha):
        """Closed-form support analysis of E[sum_a pi_e(a|x)^2 / p_alpha(a|x)].

        Within a cell (b2, b3) = (x2 >= .5, x3 >= .5), p_alpha(1|x) = a1 * g(x1) + c1 and
        p_alpha(0|x) = a1 * (1 - g(x1)) + c0 with c1 = a2 b2 + a3 b3, c0 = a2 (1-b2) + a3 (1-b3)
        and g(x1) = clip(x1, f, 1-f). Both targets put probability >= 0.2 on each action, so
        the moment is infinite iff some cell has c = 0 with a1 > 0 and f = 0
        (integral of 1/(a1 x1) over (0, 1) diverges), and the target is unsupported iff
        some cell has c = 0 and a1 = 0.
        """
        if target not in self.targets():
            raise KeyError(target)
        a1, a2, a3 = (float(v) for v in alpha)
        for b2, b3 in _CELLS:
            for action, c in ((1, a2 * b2 + a3 * b3), (0, a2 * (1 - b2) + a3 * (1 - b3))):
                if c > 0:
                    continue
                where = f"x2 {'>=' if b2 else '<'} 0.5 and x3 {'>=' if b3 else '<'} 0.5"
                act = self.action_names[action]
                if a1 == 0:
                    return SupportVerdict(
                        "unsupported", "analytic", f"no logging component ever plays {act} where {where}, but {target} does"
                    )
                if self.pi1_floor == 0:
                    edge = "0" if action == 1 else "1"
                    return SupportVerdict(
                        "infinite",
                        "analytic",
                        f"where {where} only pi1 can play {act}, with probability that goes to 0 "
                        f"as x1 -> {edge}; the integral of 1/x1 diverges, so IPS variance is "
                        "infinite for every mixture with this support",
                    )
        return SupportVerdict("finite", "analytic", "every balanced propensity is bounded away from 0")


class PaperFloorScenario(PaperScenario):
    name = "paper_floor"
    description = (
        "The published setting with pi1's coupon probability clipped to [0.05, 0.95]: "
        "propensities are bounded away from 0, so plain IPS has finite variance."
    )
    pi1_floor = 0.05

"""Closed-loop campaigns: what exploration earns when the team retrains and redeploys (issue 22, item 3).

A campaign runs T periods. In each period t, with exploration rate r:

0. every retraining starts from what the team logged before (``_history``: a simulated market's history, or a
   calibrated scenario's own log, the team's real rows);
1. the period's customers (drawn from the world as it is in period t, ``Scenario.at_period``) are served by
   (1 - r) x the deployed exploit policy + r x the exploration component, and logged with that propensity;
2. half of the period's rows (even positions) join the training data, and the revenue model is retrained on
   the historical log plus every training half so far, each row weighted by 1 / its logged propensity;
3. every candidate (the deployed policy, the retrained model's greedy policy and the configured targets) is
   estimated on the other half with SNDR, the retrained model as its reward model (it never saw those
   rows);
4. the safe rule deploys the best estimate only when the lower end of the 95% interval of its difference
   with the deployed policy is above 0; the evaluation half then joins the training data.

Revenue is counted as the world's expected reward of what each customer was served (mu(x, a) in that
period), so that rates are compared with less noise than realised rewards would give; every rate of one
replication sees the same customers and the same random numbers (common random numbers), so their
differences are measured more precisely than their levels. Replications give error bars.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from couponmix.decide.value import Payback, payback, safe_choice
from couponmix.errors import CouponmixError
from couponmix.infra.records import Record
from couponmix.infra.seeding import stream
from couponmix.infra.validation import check_positive_int
from couponmix.ope.criterion import Criterion
from couponmix.ope.estimators import EstimatorSpec, exact_suite
from couponmix.ope.montecarlo import influence
from couponmix.ope.objectives import EvaluationSample
from couponmix.policy.mixture import sample_actions
from couponmix.policy.policies import one_hot
from couponmix.policy.revenue_model import DEFAULT_PATIENCE, CrossFittedRevenueModel

__all__ = ["CampaignReport", "CampaignResult", "PaybackRate", "campaign", "payback_rate", "run_campaign"]

SNDR = EstimatorSpec("sndr")


@dataclass(frozen=True)
class CampaignResult:
    """Cumulative revenue per exploration rate over the campaign.

    Attributes
    ----------
    rates : tuple of float
    periods, period_size, reps : int
    revenue : ndarray, (R, reps, T)
        Expected revenue per customer of each rate, replication and period.
    deployed : list (R) of list (reps) of list (T) of str
        The policy deployed at the end of each period.
    """

    rates: tuple[float, ...]
    periods: int
    period_size: int
    reps: int
    revenue: np.ndarray
    deployed: list = field(repr=False)

    def cumulative(self) -> np.ndarray:
        """(R, reps) total revenue per customer-period summed over the campaign, per rate and replication.

        Returns
        -------
        ndarray, (R, reps)
            Expected revenue of all the campaign's customers (periods x period_size), in the reward's unit.
        """
        return self.revenue.sum(axis=2) * self.period_size

    def table(self) -> list[dict]:
        """Per rate: mean cumulative revenue, its standard error over replications, and the difference with
        the first rate (paired: same customers), with its standard error (None with one replication).

        Returns
        -------
        list of dict, (R,)
            ``rate`` (a fraction), ``revenue`` and ``revenue_se``, ``vs_first`` and ``vs_first_se`` (cumulative, reward's unit),
            ``switches`` (redeployments per replication).
        """
        total = self.cumulative()
        base = total[0]
        rows = []
        for i, r in enumerate(self.rates):
            diff = total[i] - base
            se = lambda v: float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else None  # one replication: none
            rows.append(
                {
                    "rate": float(r),
                    "revenue": float(total[i].mean()),
                    "revenue_se": se(total[i]),
                    "vs_first": float(diff.mean()),
                    "vs_first_se": se(diff),
                    # redeployments, the first one away from the configured exploit included
                    "switches": float(np.mean([sum(a != b for a, b in zip(["exploit", *d], d)) for d in self.deployed[i]])),
                }
            )
        return rows

    def cumulative_vs_first(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, standard error), each (R, T): cumulative revenue up to each period minus the first rate's,
        paired over replications (the same customers).

        Returns
        -------
        mean, se : ndarray, (R, T)
            In the reward's unit; se is NaN with one replication.
        """
        cum = np.cumsum(self.revenue, axis=2) * self.period_size  # (R, reps, T)
        diff = cum - cum[:1]
        se = diff.std(axis=1, ddof=1) / np.sqrt(self.reps) if self.reps > 1 else np.full(diff.shape[::2], np.nan)
        return diff.mean(axis=1), se

    def to_dict(self) -> dict:
        """The campaign for summary.json: per-period cumulative revenue against the first rate (mean and standard error,
        R x T; a standard error is null with one replication, where none can be measured), the settings, ``table``, the
        mean revenue per customer per rate and period (R, T), and what was deployed."""
        mean, se = self.cumulative_vs_first()
        return {
            "cumulative_vs_first_by_period": {
                "mean": mean.tolist(),
                "se": [[float(v) if np.isfinite(v) else None for v in row] for row in se],
            },
            "rates": list(self.rates),
            "periods": self.periods,
            "period_size": self.period_size,
            "reps": self.reps,
            "table": self.table(),
            "revenue_per_customer_by_period": self.revenue.mean(axis=1).tolist(),
            "deployed": self.deployed,
        }


def _model_spec(scenario) -> tuple[list[int], list[int], dict, int | None]:
    """(features, categorical features, LightGBM settings, early-stopping patience) of the scenario's revenue model."""
    spec = getattr(scenario, "campaign_model", None)
    if spec is not None:
        return spec()
    return list(range(len(scenario.covariate_names))), [], {}, DEFAULT_PATIENCE


def _history(scenario) -> dict[str, list]:
    """What the team has logged before the campaign, which every retraining starts from: a simulated market's
    historical log, or a calibrated scenario's own log (the team's real rows), each row weighted by the
    inverse of its logged propensity; empty lists where there is neither."""
    if hasattr(scenario, "history"):  # the market's history is logged uniformly: equal weights
        h = scenario.history
        return {"x": [h["x"]], "a": [h["action"]], "r": [h["reward"]], "w": [np.ones(len(h["action"]))]}
    log = scenario.real_log()
    if log is None:
        return {"x": [], "a": [], "r": [], "w": []}
    p = log["pscore_avg"] if log.get("pscore_avg") is not None else log["pscore"]
    return {"x": [log["context"]], "a": [log["action"]], "r": [log["reward"]], "w": [1.0 / np.asarray(p, float)]}


def _greedy(model: CrossFittedRevenueModel, n_actions: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: one_hot(np.argmax(model.predict(x), axis=1), n_actions)


def check_campaign(rates: Sequence[float], periods: int, period_size: int, reps: int) -> tuple[tuple[float, ...], int, int, int]:
    """The campaign's numbers checked before any work: (rates, periods, period_size, reps).

    Parameters
    ----------
    rates : sequence of float
        Exploration rates, each a fraction of traffic in [0, 1].
    periods : int
        At most 1,000.
    period_size : int
        Customers per period, 100 to 10 million.
    reps : int
        Replications, at most 10,000.

    Returns
    -------
    tuple of (tuple of float, int, int, int)
        The same, as floats and ints.

    Raises
    ------
    CouponmixError
        A number out of its range, or rates that are not numbers.
    """
    try:
        rates = tuple(float(r) for r in rates)
    except (TypeError, ValueError):
        raise CouponmixError(f"campaign rates must be numbers, got {rates!r}") from None
    if not rates or any(not 0 <= r <= 1 for r in rates):  # NaN fails the comparison too
        raise CouponmixError("campaign rates must be exploration shares in [0, 1] (for example --rates 0,0.05,0.14)")
    periods = check_positive_int(periods, "periods", maximum=1_000)
    period_size = check_positive_int(period_size, "period_size", minimum=100, maximum=10_000_000)
    reps = check_positive_int(reps, "reps", maximum=10_000)
    return rates, periods, period_size, reps


def check_components(scenario) -> None:
    """A one-line error unless the scenario has components named exploit and explore.

    Parameters
    ----------
    scenario : Scenario

    Raises
    ------
    CouponmixError
        No component named exploit, or none named explore.
    """
    comps = scenario.components()
    if "exploit" not in comps or "explore" not in comps:
        raise CouponmixError(f"a campaign needs components named exploit and explore; {scenario.name} has {', '.join(comps)}")


def run_campaign(
    scenario,
    rates: Sequence[float],
    periods: int = 12,
    period_size: int = 20_000,
    reps: int = 2,
    seed: int = 0,
    on_step: Callable[[int, int], None] | None = None,
) -> CampaignResult:
    """Simulate the closed loop (module docstring) for every exploration rate in ``rates`` and ``reps`` replications. ``scenario``
    needs ``components()`` with ``exploit`` and ``explore``; its ``at_period(t)``, where it has one, gives the world of period t.
    ``on_step(done, total)`` reports progress per period. Bad numbers or components raise ``CouponmixError``.

    Parameters
    ----------
    rates : sequence of float
        Exploration rates, each a fraction of traffic in [0, 1].
    periods, period_size, reps, seed : int
        Periods, customers per period, replications, and the seed.

    Returns
    -------
    CampaignResult
    """
    rates, periods, period_size, reps = check_campaign(rates, periods, period_size, reps)
    check_components(scenario)
    comps = scenario.components()
    a_n = scenario.n_actions
    features, categorical, params, patience = _model_spec(scenario)
    hist = _history(scenario)
    worlds = [scenario.at_period(t) if hasattr(scenario, "at_period") else scenario for t in range(periods)]
    targets = scenario.targets()
    revenue = np.empty((len(rates), reps, periods))
    deployed: list = [[[] for _ in range(reps)] for _ in rates]
    done, total = 0, len(rates) * reps * periods
    for i, r in enumerate(rates):
        for rep in range(reps):
            exploit_name, exploit = "exploit", comps["exploit"]
            train: dict[str, list] = {key: list(v) for key, v in hist.items()}
            for t in range(periods):
                world = worlds[t]
                rng = stream(seed, "campaign", rep, t)  # the same customers and draws for every rate
                x = world.sample_covariates(period_size, rng)
                u_action = rng.random(period_size)
                p = (1 - r) * exploit(x) + r * comps["explore"](x)
                a = sample_actions(p, u_action)
                reward = world.sample_rewards(x, a, rng)
                rows = np.arange(period_size)
                revenue[i, rep, t] = float(world.mu(x)[rows, a].mean())
                prop = p[rows, a]
                half = rows % 2 == 0
                for key, v in (("x", x[half]), ("a", a[half]), ("r", reward[half]), ("w", 1.0 / prop[half])):
                    train[key].append(v)
                model = CrossFittedRevenueModel(a_n, features, categorical, folds=2, params=params, seed=seed, patience=patience).fit(
                    np.concatenate(train["x"]), np.concatenate(train["a"]), np.concatenate(train["r"]), np.concatenate(train["w"])
                )
                ev = ~half
                xe = x[ev]
                log = {"action": a[ev], "reward": reward[ev], "pscore": prop[ev], "pscore_avg": prop[ev]}
                q = model.predict(xe)
                cands: dict[str, Callable] = {exploit_name: exploit, "retrained": _greedy(model, a_n)}
                cands.update({name: pol for name, pol in targets.items() if name not in cands})
                names = list(cands)
                est, phi = [], []
                for name in names:
                    e, terms = influence(SNDR, log, cands[name](xe), q)
                    est.append(e)
                    phi.append(terms)
                pick = safe_choice(est, phi, 0)
                if pick != 0:
                    exploit_name = names[pick] if names[pick] != "retrained" else f"retrained@{t}"
                    exploit = cands[names[pick]]
                deployed[i][rep].append(exploit_name)
                for key, v in (("x", xe), ("a", a[ev]), ("r", reward[ev]), ("w", 1.0 / prop[ev])):
                    train[key].append(v)
                done += 1
                if on_step is not None:
                    on_step(done, total)
    return CampaignResult(rates, periods, period_size, reps, revenue, deployed)


@dataclass
class PaybackRate(Record):
    """The payback rule's exploration rate for a campaign (``payback_rate``)."""

    rate: float  #: the chosen exploration rate (fraction of traffic explored), one of the candidate rates
    #: the payback rule's grid over every candidate rate (net revenue in the reward's unit), whose best mixture gave ``rate``
    payback: Payback


def payback_rate(scenario, rates: Sequence[float], periods: int, period_size: int, seed: int = 0, eval_size: int = 50_000) -> PaybackRate:
    """The exploration rate the payback rule (``decide.value.payback``) recommends for a campaign, from the
    world as it is at the start (period 0): log one period at each candidate rate, then deploy by the safe
    rule for the remaining ``periods - 1`` periods of ``period_size`` customers each.

    Parameters
    ----------
    scenario : Scenario
        With components exploit and explore, and only those.
    rates : sequence of float
        Candidate exploration rates, each a fraction of traffic.
    periods : int
        At least 2.
    period_size : int
        Customers per period: the log's size, and the traffic of each period after it.
    seed : int
        Seed of the evaluation sample.
    eval_size : int
        Customers in the evaluation sample.

    Returns
    -------
    PaybackRate
        The chosen rate and the payback rule's grid behind it.

    Raises
    ------
    CouponmixError
        Fewer than 2 periods, or a scenario without exactly two components.
    """
    if periods < 2:
        raise CouponmixError("a payback rate needs at least 2 periods: one to log, one to earn")
    sample = EvaluationSample.from_scenario(scenario, eval_size, seed)
    comps = list(sample.component_names)
    k = comps.index("exploit")
    alphas = np.array([[1 - r if j == k else r for j in range(len(comps))] for r in rates]) if len(comps) == 2 else None
    if alphas is None:
        raise CouponmixError("a campaign mixes exactly two components: exploit and explore")
    crit = Criterion(sample, exact_suite(), period_size)
    pb = payback(sample, crit, alphas, "exploit", periods - 1, period_size, sizes=[period_size])
    return PaybackRate(rate=float(rates[pb.best_index]), payback=pb)


@dataclass(frozen=True)
class CampaignReport:
    """``couponmix campaign``: the closed loop per fixed rate, and the payback rule's rate against the best
    fixed rate in hindsight and against no exploration.

    Attributes
    ----------
    scenario : str
    seed : int
    result : CampaignResult
        Revenue per rate, replication and period, and what was deployed.
    best_fixed_rate : float
        The rate with the most cumulative revenue (fraction of traffic explored).
    payback_rate : float or None
        The payback rule's rate, decided at the start from the world of period 0 (None without it).
    payback_vs_best, payback_vs_no_exploration : dict or None
        Cumulative revenue of the payback rate minus the best fixed rate's (``diff``, its standard error
        ``diff_se`` over paired replications, ``diff_pct`` of the best's revenue), and minus no exploration's.
    payback_plan : dict or None
        The payback rule's log: mix, size, cost, value, break-even day (``decide.value.payback``).
    """

    scenario: str
    seed: int
    result: CampaignResult
    best_fixed_rate: float
    payback_rate: float | None = None
    payback_vs_best: dict | None = None
    payback_vs_no_exploration: dict | None = None
    payback_plan: dict | None = None

    def to_dict(self) -> dict:
        """The report for campaign.json: scenario, seed, the result's fields, the best fixed rate, and the payback rule's
        rate, comparisons and plan when it ran."""
        out = {"scenario": self.scenario, "seed": self.seed, **self.result.to_dict(), "best_fixed_rate": self.best_fixed_rate}
        if self.payback_rate is not None:
            out["payback_rate"] = self.payback_rate
            out["payback_vs_best"] = self.payback_vs_best
            if self.payback_vs_no_exploration is not None:
                out["payback_vs_no_exploration"] = self.payback_vs_no_exploration
            out["payback_plan"] = self.payback_plan
        return out

    def text(self) -> str:
        """The table per rate (cumulative revenue, difference with the first rate, switches) and the payback line."""
        table = self.result.table()
        lines = [f"{'rate':>6} {'cumulative revenue':>20} {'vs rate ' + format(self.result.rates[0], 'g'):>22} {'switches':>9}"]
        for row in table:
            se = "" if row["vs_first_se"] is None else f" +- {row['vs_first_se']:,.0f}"
            lines.append(f"{row['rate']:6.1%} {row['revenue']:20,.0f} {row['vs_first']:>12,.0f}{se:<10} {row['switches']:9.1f}")
        if self.payback_rate is not None and self.payback_vs_best is not None:
            pv = self.payback_vs_best
            lines.append(
                f"payback rule: {self.payback_rate:.1%}; best fixed rate in hindsight: {self.best_fixed_rate:.1%} "
                f"(payback - best: {pv['diff']:,.0f}, {pv['diff_pct']:.2f}%)"
            )
        return "\n".join(lines)


def _paired(d: np.ndarray) -> tuple[float, float | None]:
    """(mean, standard error over replications; None with one) of a paired difference."""
    return float(d.mean()), (float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else None)


def campaign(
    cfg, rates: Sequence[float], periods: int, period_size: int, reps: int, with_payback: bool = True, on_step=None
) -> CampaignReport:
    """``couponmix campaign``: the closed loop for each fixed rate in ``rates`` and, with ``with_payback``,
    for the payback rule's rate (decided at the start from the world of period 0), with the best fixed rate
    in hindsight and their gap. ``on_step(done, total)`` reports progress per period.

    Parameters
    ----------
    cfg : StudyConfig
        The study whose scenario and seed the campaign runs.
    rates : sequence of float
        Exploration rates, each a fraction of traffic in [0, 1] (sorted, duplicates dropped).
    periods, period_size, reps : int
        Periods, customers per period, replications.
    with_payback : bool
        Also decide and compare the payback rule's rate.
    on_step : callable (done, total), optional

    Returns
    -------
    CampaignReport

    Raises
    ------
    CouponmixError
        As ``check_campaign`` and ``check_components``, or fewer than 2 periods with the payback rule.
    """
    rates_checked, periods, period_size, reps = check_campaign(rates, periods, period_size, reps)  # before any work
    if with_payback and periods < 2:
        raise CouponmixError("a payback rate needs at least 2 periods: one to log, one to earn")
    rates = sorted(set(rates_checked))
    scenario = cfg.build_scenario()
    check_components(scenario)
    chosen = payback_rate(scenario, rates, periods, period_size, cfg.seed) if with_payback else None
    res = run_campaign(scenario, rates, periods, period_size, reps, cfg.seed, on_step)
    total = res.cumulative()
    best = int(np.argmax(total.mean(axis=1)))
    if chosen is None:
        return CampaignReport(scenario.name, cfg.seed, res, float(rates[best]))
    j = rates.index(chosen.rate)
    diff, diff_se = _paired(total[j] - total[best])
    vs_best = {"diff": diff, "diff_se": diff_se, "diff_pct": float(100 * diff / total[best].mean())}
    vs_zero = None
    if 0.0 in rates:
        d0, d0_se = _paired(total[j] - total[rates.index(0.0)])
        vs_zero = {"diff": d0, "diff_se": d0_se}
    return CampaignReport(scenario.name, cfg.seed, res, float(rates[best]), chosen.rate, vs_best, vs_zero, chosen.payback.best.to_dict())

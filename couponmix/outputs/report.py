"""The report for marketing teams: plain words first, then figures, then the detail.

One self-contained HTML file (figures embedded as data URIs, no network), with the same figures
also written as PNG files beside it. Every number in the report comes from the study's typed summary
(``couponmix.studies.summary``, written as summary.json); the key ones are tagged
``data-key="<path in summary.json>"`` so a test can check they agree.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field

import numpy as np

from couponmix.decide.contextual_types import ContextualBlock, RuleAt
from couponmix.decide.optimize import Front
from couponmix.decide.value import LogPlan, Payback
from couponmix.infra.records import OPTIONAL, Record
from couponmix.outputs.templating import in_words, render
from couponmix.studies.summary import Headline, StudySummary

__all__ = [
    "COLORS",
    "FIGURES",
    "OPTIONAL_FIGURES",
    "contextual_figure",
    "front_figure",
    "exploration_figure",
    "log_size_figure",
    "figures",
    "days",
    "headline_detail",
    "plus_minus",
    "follows_rule",
    "rule_steps",
    "RateSlider",
    "RateSliderTarget",
    "SliderPayback",
    "RuleSlider",
    "RuleSliderTarget",
    "SliderGroup",
    "slider_data",
    "rule_slider_data",
    "reward_word",
    "reward_unit",
    "verdict",
    "amount",
    "headline",
    "render_html",
    "contextual_phrase",
]

COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3"]
FIGURES = ("front.png", "exploration.png", "log_size.png")
#: written only by a study with --contextual
OPTIONAL_FIGURES = ("contextual.png", "payback.png")


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _per_customer(summary: StudySummary) -> str:
    """'EUR per customer' where the scenario names its unit, else 'per customer'."""
    unit = reward_unit(summary)
    return f"{unit} per customer" if unit else "per customer"


def _error_words(summary: StudySummary, n: int) -> str:
    """The error axis in words: how far a later estimate typically is from the truth (its RMSE)."""
    return f"typical error of a later estimate ({_per_customer(summary)})\nworst future policy, log of {n:,} customers"


def _plain_ticks(axis, log: bool) -> None:
    """Tick labels as plain numbers (1,000 and 0.1, not 10^3 and 10^-1)."""
    from matplotlib.ticker import FuncFormatter

    def fmt(v, _pos):
        """A tick's label: thousands separated from 1,000 on, else three significant digits."""
        if v >= 1000:
            return f"{v:,.0f}"
        return f"{v:.3g}"

    axis.set_major_formatter(FuncFormatter(fmt))
    if log:
        axis.set_minor_formatter(FuncFormatter(lambda v, _pos: ""))


def _error_scale(ax, values) -> None:
    """A linear error axis from 0 where the curves span less than a factor of 20, else a log axis; plain
    tick labels either way."""
    flat = [x for part in values for x in np.ravel(np.asarray(part, dtype=object))]
    v = np.asarray([x for x in flat if x is not None and np.isfinite(x) and x > 0], float)
    if len(v) and v.max() / v.min() > 20:
        ax.set_yscale("log")
        _plain_ticks(ax.yaxis, log=True)
    else:
        ax.set_ylim(0, (v.max() if len(v) else 1.0) * 1.08)
        _plain_ticks(ax.yaxis, log=False)


def front_figure(front: Front, summary: StudySummary) -> bytes:
    """Pareto front with the recommended mix and the most revenue the floors allow marked.

    Parameters
    ----------
    front : Front
    summary : StudySummary

    Returns
    -------
    bytes
        A PNG image.
    """
    plt = _plt()
    rec, only = summary.recommended, summary.floor_mix
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    ax.plot(front.rmse, front.revenue, "-o", ms=3, color=COLORS[0], label="best trade-offs (Pareto front)")
    ax.plot([rec.ope_rmse], [rec.revenue], "*", ms=16, color=COLORS[1], label="recommended mix")
    floor = f"most revenue with every policy at {only.floor:.0%} or more (the floor)"
    ax.plot([only.ope_rmse], [only.revenue], "s", ms=8, color=COLORS[2], label=floor)
    ax.set_xlabel(_error_words(summary, summary.n).replace("\n", ", "))
    ax.set_title(
        "Revenue now against evaluation error later\n(each policy measured with its most precise estimator)"
        if len(summary.criterion.candidates) > 1
        else f"Revenue now against evaluation error later ({summary.criterion.label.split(';')[0]})",
        fontsize=10,
    )
    ax.set_ylabel(f"revenue now ({_per_customer(summary)})")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return _png(fig)


def exploration_figure(summary: StudySummary) -> bytes:
    """Revenue (top) and each future policy's RMSE (bottom) against the exploration rate.

    Parameters
    ----------
    summary : StudySummary

    Returns
    -------
    bytes
        A PNG image.
    """
    plt = _plt()
    curve, head = summary.exploration_curve, summary.headline
    eps = np.array(curve.eps) * 100
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), dpi=110, sharex=True)
    top.plot(eps, curve.revenue, color=COLORS[0], lw=2)
    top.set_ylabel(f"revenue now\n({_per_customer(summary)})")
    shown = []
    for i, (t, values) in enumerate(curve.rmse.items()):
        r = np.array([np.nan if v is None else v for v in values], float)
        color = COLORS[(i + 2) % len(COLORS)]
        bottom.plot(eps, r, color=color, lw=2, label=t)
        shown.append(r)
        if curve.sampling_error is not None:
            bottom.plot(eps, curve.sampling_error[t], color=color, ls="--", lw=1.4)
    tol = None if summary.plan is None else summary.plan.tol
    if tol is not None:
        bottom.axhline(tol, color="#555", ls="-.", lw=1.4, label=f"tolerance {tol:g}")
    for ax in (top, bottom):
        ax.axvline(100 * head.exploration_rate, color=COLORS[1], ls="--", lw=1.5)
        ax.grid(alpha=0.3)
    top.text(100 * head.exploration_rate, top.get_ylim()[1], " recommended", va="top", color=COLORS[1])
    top.set_title(
        "Revenue and evaluation error against exploration\n(each policy measured with its most precise "
        "estimator; dashed: what the log itself shows)",
        fontsize=10,
    )
    _error_scale(bottom, [*shown, *([tol] if tol is not None else [])])
    bottom.set_ylabel(f"typical error later\n({_per_customer(summary)}, log of {curve.n:,})")
    bottom.set_xlabel("exploration rate (% of traffic)")
    bottom.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def log_size_figure(summary: StudySummary) -> bytes:
    """Each future policy's RMSE at the recommended mix against the log size, in customers and in days.

    Parameters
    ----------
    summary : StudySummary

    Returns
    -------
    bytes
        A PNG image.
    """
    plt = _plt()
    curve = summary.log_size_curve
    sizes = np.array(curve.log_size, float)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for i, (t, r) in enumerate(curve.rmse.items()):
        ax.plot(sizes, r, color=COLORS[(i + 2) % len(COLORS)], lw=2, label=t)
    tol = None if summary.plan is None else summary.plan.tol
    if tol is not None:
        ax.axhline(tol, color="#555", ls="-.", lw=1.4, label=f"tolerance {tol:g}")
    ax.axvline(summary.n, color=COLORS[1], ls="--", lw=1.5, label=f"planned log ({summary.n:,})")
    ax.set_xscale("log")  # log sizes span several orders of magnitude
    _plain_ticks(ax.xaxis, log=True)
    _error_scale(ax, [*curve.rmse.values(), *([tol] if tol is not None else [])])
    ax.set_title(
        "Evaluation error at the recommended mix against log size\n(each policy measured with its most precise estimator)", fontsize=10
    )
    ax.set_xlabel("customers logged at the recommended mix")
    ax.set_ylabel(f"typical error of a later estimate\n({_per_customer(summary)})")
    daily = curve.daily_traffic
    days = ax.secondary_xaxis("top", functions=(lambda n: n / daily, lambda d: d * daily))
    _plain_ticks(days.xaxis, log=True)
    days.set_xlabel(f"days of logging at {daily:,.0f} customers per day")
    ax.grid(alpha=0.3, which="major")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def contextual_figure(summary: StudySummary) -> bytes:
    """Both fronts: one exploration rate for everyone, and one per group (``--contextual``).

    Parameters
    ----------
    summary : StudySummary
        With a contextual block.

    Returns
    -------
    bytes
        A PNG image.

    Raises
    ------
    ValueError
        No contextual block.
    """
    plt = _plt()
    cx = summary.contextual
    if cx is None:
        raise ValueError("the contextual figure needs a contextual block")
    glob, ctx = cx.front.global_, cx.front.contextual
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    # one rate for everyone as a wide pale band, the searched front (which includes the constant rates where no
    # rule by group beats them) as a thin dark line on top, so that both stay visible where they coincide
    ax.plot([p.error for p in glob], [p.revenue for p in glob], "-", color=COLORS[0], lw=7, alpha=0.35, label="one rate for everyone")
    ax.plot(
        [p.error for p in ctx],
        [p.revenue for p in ctx],
        "o-",
        ms=3,
        lw=1.6,
        color=COLORS[2],
        label=(
            "a logistic curve in the predicted margin (best found)"
            if cx.family == "logistic"
            else f"one rate per {cx.grouped_by} group (best found)"
        ),
    )
    at = cx.at.get("recommended")
    if at is not None and at.reachable and at.revenue_cost_per_10k_customers is not None:
        best = summary.revenue_cost.baseline_revenue
        ax.plot([summary.recommended.ope_rmse], [summary.recommended.revenue], "*", ms=14, color=COLORS[1], label="recommended (one rate)")
        ax.plot(
            [at.error],
            [best - at.revenue_cost_per_10k_customers / 10_000],
            "D",
            ms=8,
            color=COLORS[3],
            label="same precision, rate per group",
        )
    hi = max(p.error for p in ctx) if ctx else max(p.error for p in glob)
    ax.set_xlim(0, hi * 1.1)
    ax.set_xlabel(_error_words(summary, summary.n).replace("\n", ", "))
    ax.set_ylabel(f"revenue now ({_per_customer(summary)})")
    ax.set_title("Exploration that varies by customer against one rate for everyone", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def payback_curve(pb: Payback, p: LogPlan, days: np.ndarray) -> np.ndarray:
    """Cumulative net revenue against keeping the incumbent without exploring, day by day from the start of
    logging, for one of the payback block's plans (``best``, ``no_exploration``): the logging cost accrues
    while the log is collected, then the gain per customer on every day of the horizon.

    Parameters
    ----------
    pb : Payback
    p : LogPlan
        One of its plans.
    days : ndarray, (D,)
        Days from the start of logging.

    Returns
    -------
    ndarray, (D,)
        Cumulative net revenue (reward's unit).
    """
    logging = np.minimum(days, p.log_days)
    after = np.clip(days - p.log_days, 0.0, pb.horizon_days)
    return -p.logging_cost * logging / max(p.log_days, 1e-12) + pb.daily_traffic * p.gain_per_customer * after


def payback_figure(summary: StudySummary) -> bytes:
    """Cumulative net revenue over the horizon (``--horizon-days``): the payback plan and a log without
    exploration, against keeping the incumbent without exploring (the zero line).

    Parameters
    ----------
    summary : StudySummary
        With a payback block.

    Returns
    -------
    bytes
        A PNG image.

    Raises
    ------
    ValueError
        No payback block.
    """
    plt = _plt()
    pb = summary.payback
    if pb is None:
        raise ValueError("the payback figure needs a payback block")
    end = pb.best.log_days + pb.horizon_days
    days = np.linspace(0, end, 400)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    best = pb.best
    ax.plot(
        days,
        payback_curve(pb, best, days),
        color=COLORS[1],
        lw=2,
        label=f"log {best.log_size:,} at {best.exploration_rate:.1%} exploration, then deploy",
    )
    z = pb.no_exploration
    ax.plot(
        days,
        payback_curve(pb, z, days),
        color=COLORS[0],
        ls="--",
        lw=1.5,
        label=f"log {z.log_size:,} without exploration, then deploy",
    )
    ax.axhline(0, color="#444", lw=1, label="keep the incumbent, do not explore")
    if best.break_even_day is not None:
        ax.axvline(best.break_even_day, color=COLORS[1], ls="--", lw=1.6, label=f"paid back on day {best.break_even_day:.2g}")
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel("days from the start of logging")
    unit = reward_unit(summary)
    ax.set_ylabel(f"cumulative {reward_word(summary)} gained" + (f" ({unit})" if unit else ""))
    ax.set_title(f"What the log earns over {pb.horizon_days:g} days (deploying by the safe rule)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def campaign_figure(result: dict) -> bytes:
    """``couponmix campaign``: cumulative revenue of each exploration rate against the first (no
    exploration), period by period, with 95% bands over the replications (paired).

    Parameters
    ----------
    result : dict
        campaign.json's document (``CampaignReport.to_dict``).

    Returns
    -------
    bytes
        A PNG image.
    """
    plt = _plt()
    from matplotlib.ticker import FuncFormatter

    mean = np.array(result["cumulative_vs_first_by_period"]["mean"])
    se = np.array(result["cumulative_vs_first_by_period"]["se"], dtype=float)  # null (one replication): no band
    periods = np.arange(1, mean.shape[1] + 1)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for i, rate in enumerate(result["rates"]):
        color = COLORS[i % len(COLORS)]
        chosen = rate == result.get("payback_rate")
        label = f"{rate:.0%} exploration" + (" (payback rule)" if chosen else "")
        ax.plot(periods, mean[i], "-", color=color, lw=2 if chosen else 1.3, label=label)
        ax.fill_between(periods, mean[i] - 1.96 * se[i], mean[i] + 1.96 * se[i], color=color, alpha=0.12, lw=0)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel("period")
    ax.set_ylabel(f"cumulative revenue against {result['rates'][0]:.0%} exploration")
    ax.set_title(
        f"Closed-loop campaign: {result['reps']} replications of {result['periods']} periods of {result['period_size']:,} customers",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def figures(summary: StudySummary, front: Front) -> dict[str, bytes]:
    """The study's figures as PNG bytes by file name: front, exploration and log size, plus contextual and payback when
    the study has them.

    Parameters
    ----------
    summary : StudySummary
    front : Front

    Returns
    -------
    dict of str to bytes
        "front.png", "exploration.png", "log_size.png", and "contextual.png" and "payback.png" where they apply.
    """
    out = {
        "front.png": front_figure(front, summary),
        "exploration.png": exploration_figure(summary),
        "log_size.png": log_size_figure(summary),
    }
    if summary.contextual is not None:
        out["contextual.png"] = contextual_figure(summary)
    if summary.payback is not None:
        out["payback.png"] = payback_figure(summary)
    return out


def _explore_phrase(head: Headline, alpha: dict, explore_description: str | None) -> str:
    rate = head.exploration_rate
    if "explore" in alpha:
        how = f" ({explore_description})" if explore_description else ""
        return f"send {rate:.1%} of customers to the exploration policy{how}"
    best = head.revenue_best_component
    mix = ", ".join(f"{w:.0%} {name}" for name, w in alpha.items())
    return f"log with {mix}: {rate:.1%} of traffic away from {best}"


def days(d: float) -> str:
    """A number of days in words: '0.5 day' below 1.05, '3.5 days' below 10, '12 days' from 10 on.

    Parameters
    ----------
    d : float
        Days.

    Returns
    -------
    str
    """
    return f"{d:.2g} day" if d < 1.05 else f"{d:,.0f} days" if d >= 10 else f"{d:.1f} days"


def reward_word(summary: StudySummary) -> str:
    """What the reward is called in plain words: the mapping's reward_name for a calibrated scenario (clicks
    for a binary reward by default), else revenue.

    Parameters
    ----------
    summary : StudySummary

    Returns
    -------
    str
    """
    if summary.calibrated is None:
        return "revenue"
    card = summary.calibrated.card or {}
    return card.get("reward_name") or ("clicks" if card.get("binary") else "revenue")


def reward_unit(summary: StudySummary) -> str:
    """The reward's unit where the scenario names it ('EUR': a market config's ``currency``, a log mapping's
    ``reward_unit``), else ''.

    Parameters
    ----------
    summary : StudySummary

    Returns
    -------
    str
    """
    return summary.unit()


def verdict(summary: StudySummary) -> str | None:
    """On a calibrated scenario, what the log supports, in one sentence that comes before any number.

    Parameters
    ----------
    summary : StudySummary

    Returns
    -------
    str or None
        None for a simulator.
    """
    cal = summary.calibrated
    if cal is None:
        return None
    word = reward_word(summary)
    if cal.world == "means":
        return (
            f"Your log cannot support a model of how customers differ, so every customer is treated alike: the {word} "
            "of each coupon is its average in the log, and every number below assumes customers do not differ."
        )
    d = cal.diagnostics
    gain = f" (out of fold it beats the per-coupon averages by {d.gain:.3g} ± {d.gain_se:.2g})" if d is not None else ""
    return (
        f"A model fitted to your log predicts {word} better than the per-coupon averages{gain}. The values below are "
        "that model's estimates, not measurements: beside each, the log's own estimate shows how far to trust it."
    )


def amount(v: float) -> str:
    """A whole number when large (2,990), two significant digits when small (0.13), 0 for rounding noise.

    Parameters
    ----------
    v : float
        An amount (from 100 on in absolute value: whole; below 1e-9: 0).

    Returns
    -------
    str
    """
    if abs(v) < 1e-9:
        return "0"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2g}"


def plus_minus(value: float, half: float) -> str:
    """'11.8 ± 1.0': the value to the half-width's precision (two significant digits of the half-width).

    Parameters
    ----------
    value, half : float
        A value and its interval's half-width (a half-width that is not finite and positive: the value alone).

    Returns
    -------
    str
    """
    if not np.isfinite(half) or half <= 0:
        return f"{value:.3g}"
    decimals = max(0, 1 - int(np.floor(np.log10(half))))
    return f"{value:,.{decimals}f} ± {half:,.{decimals}f}"


def share(pct: float) -> str:
    """'8%' or '0.6%' or '1,400%'.

    Parameters
    ----------
    pct : float
        A percentage (whole from 1.5 on, else one decimal).

    Returns
    -------
    str
    """
    return f"{pct:,.0f}%" if pct >= 1.5 else f"{pct:.1f}%"


def headline(summary: StudySummary) -> str:
    """The first screen's answer in three sentences: what to do, what it costs (against no exploration) and what it
    buys (each future policy's value with its 95% interval, in the reward's unit and as a share); the payback
    when ``--horizon-days`` chose the mix. The detail is ``headline_detail``.

    Parameters
    ----------
    summary : StudySummary

    Returns
    -------
    str
    """
    head = summary.headline
    alike = summary.calibrated is not None and summary.calibrated.world == "means"
    word, unit = reward_word(summary), reward_unit(summary)
    explore = _explore_phrase(head, summary.recommended.alpha, summary.production.explore_description)
    lead = ""
    if summary.calibrated is not None:
        lead = "From a model of your log (estimates, not measurements): " if not alike else "If customers do not differ: "
    if follows_rule(summary):
        return lead + rule_headline(summary, word, unit)
    buys = what_it_buys({t: (p.true_value, p.interval_95) for t, p in head.precision.items()}, head.worst_interval_95_pct, word, unit)
    return (
        f"{lead}{explore[0].upper()}{explore[1:]}{firmness(summary)}. "
        + cost_phrase(head.revenue_cost_per_10k_customers, head.revenue_cost_pct, word, unit)
        + f" It buys, from a log of {head.log_size:,} customers (about {days(head.log_days)}), {buys}"
        + payback_phrase(summary, word, unit)
    )


#: the recommendation's 95% range is shown beside it from this width on (a fraction: 2 percentage points)
FIRMNESS_SHOWN = 0.02


def firmness(summary: StudySummary) -> str:
    """'; resampling your log's customers moves this rate anywhere from 22% to 44%': how far the recommended rate
    moves when the evaluation sample's customers are resampled (``summary.recommendation_spread``'s 95% range),
    when that range is at least ``FIRMNESS_SHOWN`` wide; '' otherwise.

    Parameters
    ----------
    summary : StudySummary

    Returns
    -------
    str
    """
    sp = summary.recommendation_spread
    if sp is None or sp.high - sp.low < FIRMNESS_SHOWN:
        return ""
    if summary.calibrated is not None:
        return f"; resampling your log's customers moves this rate anywhere from {sp.low:.0%} to {sp.high:.0%}"
    return f"; the evaluation sample of {sp.sample_size:,} customers pins this rate down only to {sp.low:.0%}-{sp.high:.0%} (--eval-size)"


def what_it_buys(intervals: dict[str, tuple[float, float]], widest_pct: float | None, word: str, unit: str) -> str:
    """'every future policy's revenue per customer (EUR) within ±8% (95% interval): a 14.88 ± 0.53, ...' from
    each policy's (value, 95% half-width) and the widest half-width as a percent of its value.

    Parameters
    ----------
    intervals : dict of str to (float, float)
        Per future policy, its value and 95% half-width (reward's unit per customer).
    widest_pct : float or None
        The widest half-width, percent of its policy's value.
    word, unit : str
        The reward in words ("revenue", "clicks") and its unit ('' without one).

    Returns
    -------
    str
    """
    within = f" within ±{share(widest_pct)}" if widest_pct is not None else ""
    values = ", ".join(f"{t} {plus_minus(v, h)}" for t, (v, h) in intervals.items())
    per = f"per customer ({unit})" if unit else "per customer"
    return f"every future policy's {word} {per}{within} (95% interval): {values}."


def follows_rule(summary: StudySummary) -> bool:
    """Whether the recommendation is a rate per customer group (``--contextual``, cheaper at the same precision).

    Parameters
    ----------
    summary : StudySummary

    Returns
    -------
    bool
    """
    return bool(summary.contextual and summary.contextual.recommended)


def _given(v: float | None) -> float:
    """A number a reachable rule always carries."""
    if v is None:
        raise ValueError("a reachable contextual rule lacks one of its numbers")
    return v


def _recommended_rule(summary: StudySummary) -> tuple[ContextualBlock, RuleAt]:
    """The contextual block and its reachable rule at the recommended precision (``follows_rule`` holds)."""
    cx = summary.contextual
    at = None if cx is None else cx.at.get("recommended")
    if cx is None or at is None or not at.reachable:
        raise ValueError("the summary recommends no rule per group")
    return cx, at


def rule_headline(summary: StudySummary, word: str, unit: str) -> str:
    """The headline when the recommendation is the rule per group: what to do, its cost, what it buys.

    Parameters
    ----------
    summary : StudySummary
        One whose recommendation is the rule (``follows_rule``).
    word, unit : str
        The reward in words and its unit ('' without one).

    Returns
    -------
    str

    Raises
    ------
    ValueError
        No reachable rule at the recommended precision.
    """
    head = summary.headline
    _, at = _recommended_rule(summary)
    assert at.revenue_cost_per_10k_customers is not None and at.rule and at.intervals_95 is not None  # a reachable rule
    base = summary.revenue_cost.baseline_revenue
    cost = at.revenue_cost_per_10k_customers
    pct = 100.0 * cost / 10_000 / abs(base) if base else None
    rule = at.rule[0].upper() + at.rule[1:]
    # the rule's own 95% intervals, in the reward's unit and as a share of each value
    intervals = {t: (head.precision[t].true_value, h) for t, h in at.intervals_95.items()}
    buys = what_it_buys(intervals, at.worst_interval_95_pct, word, unit)
    return (
        f"{rule}. "
        + cost_phrase(cost, pct, word, unit)
        + f" That is {at.saving_pct:.1f}% less than one rate for everyone ({head.exploration_rate:.1%}, "
        f"{amount(_given(at.global_revenue_cost_per_10k_customers))}) for the same precision: from a log of {head.log_size:,} customers "
        f"(about {days(head.log_days)}), {buys}"
    )


def rule_steps(summary: StudySummary) -> list[str]:
    """How to deploy the recommended rule per group, and why it costs less than one rate for everyone.

    Parameters
    ----------
    summary : StudySummary
        One whose recommendation is the rule (``follows_rule``).

    Returns
    -------
    list of str
        The steps, one sentence or two each.

    Raises
    ------
    ValueError
        No reachable rule at the recommended precision.
    """
    cx, at = _recommended_rule(summary)
    rates = ", ".join(f"{g.label} {r:.0%}" for g, r in zip(cx.groups, at.exploration_rate or []))
    costs = [g.explore_cost_per_customer for g in cx.groups]
    steps = [
        f"For each customer, look up their group ({cx.grouped_by}) and send them to the exploration policy with that "
        f"group's probability ({rates}); everyone else follows {cx.components['exploit']}.",
        "Log each customer's own exploration probability beside the coupon: the estimators weight every row by its "
        "own mix of the two policies.",
    ]
    if all(c is not None for c in costs):
        why = ", ".join(f"{g.label} {amount(c)}" for g, c in zip(cx.groups, costs))
        steps.append(
            f"Why it costs less: exploring one customer gives up a different amount in each group ({why} per customer: "
            f"the {cx.components['exploit']} policy's value there minus a random coupon's). The rule explores more where "
            "exploring is cheap and less where it is dear, and still logs every coupon in every group."
        )
    return steps


def headline_detail(summary: StudySummary) -> str:
    """What the headline's intervals rest on, how they are measured, and the log size a tolerance needs.

    Parameters
    ----------
    summary : StudySummary

    Returns
    -------
    str
    """
    head = summary.headline
    alike = summary.calibrated is not None and summary.calibrated.world == "means"
    word = reward_word(summary)
    model_word = "revenue model" if word == "revenue" else f"model of {word}"
    leaning = {t: p for t, p in head.precision.items() if p.model_bias_bound > 0.01 * p.rmse}
    if alike:
        parts = "These intervals are computed as a world where customers do not differ computes them: it cannot vouch for them."
    elif not leaning:
        parts = "All of each interval is sampling error, which the log itself will show and which shrinks as more customers are logged."
    else:
        parts = (
            "Sampling error, which the log itself will show, is part of each interval; "
            + "; ".join(
                f"up to ±{p.model_bias_bound:.2g} of {t}'s rests on the {model_word} where the log cannot check it"
                for t, p in leaning.items()
            )
            + "."
        )
    how = sorted({in_words(p.estimator_plain, word) for p in head.precision.values()})
    need = ""
    if head.tolerance is not None:
        need = (
            f" For an error (RMSE) of at most {head.tolerance:g} on every policy, log {head.log_size_needed:,.0f} customers "
            f"(about {days(head.log_days_needed or 0.0)})."
            if head.log_size_needed is not None
            else f" No log size reaches an error (RMSE) of {head.tolerance:g} on every policy at this mix."
        )
    return f"{parts} Measured with {' / '.join(how)}.{need}"


def cost_phrase(per_10k: float, pct: float | None, word: str, unit: str) -> str:
    """What a mix gives up against no exploration, in one sentence; a negative cost is said as a gain.

    Parameters
    ----------
    per_10k : float
        Revenue given up per 10,000 customers (reward's unit).
    pct : float or None
        The same, percent of the revenue without exploration.
    word, unit : str
        The reward in words and its unit ('' without one).

    Returns
    -------
    str
    """
    money = f"{amount(abs(per_10k))}{' ' + unit if unit else ''}"
    share = f" ({abs(pct):.1f}% of {word})" if pct is not None else ""
    if per_10k < -1e-9:
        return f"It earns {money} more {word} per 10,000 customers{share} than no exploration: here exploring pays."
    return f"It costs {money} in {word} per 10,000 customers{share} against no exploration."


def payback_phrase(summary: StudySummary, word: str, unit: str) -> str:
    """' Over 90 days: ...' when the payback rule chose the mix (``--horizon-days``), else ''.

    Parameters
    ----------
    summary : StudySummary
    word, unit : str
        The reward in words and its unit ('' without one).

    Returns
    -------
    str
    """
    pb = summary.payback
    if not pb:
        return ""
    b = pb.best
    money = lambda v: f"{amount(v)}{' ' + unit if unit else ''}"
    out = (
        f" Over {pb.horizon_days:g} days after the log, the most {word} comes from logging {b.log_size:,} customers "
        f"(about {days(b.log_days)}) at this mix, then deploying by the safe rule: the log costs {money(b.logging_cost)} "
        f"and is worth {money(b.value_of_log)}"
    )
    if b.break_even_day is not None:
        out += f", paid back by day {b.break_even_day:.2g}"
    return out + "."


def contextual_phrase(summary: StudySummary) -> str | None:
    """The contextual answer in one sentence (``--contextual``), or None.

    Parameters
    ----------
    summary : StudySummary

    Returns
    -------
    str or None
        None without a contextual block.
    """
    cx = summary.contextual
    if cx is None:
        return None
    at = cx.at.get("recommended")
    if at is None or not at.reachable:
        return f"No exploration rule by {cx.grouped_by} reaches the recommended precision."
    if follows_rule(summary):
        explore = _explore_phrase(summary.headline, summary.recommended.alpha, summary.production.explore_description)
        return (
            f"One rate for everyone instead: {explore}, for {amount(_given(at.global_revenue_cost_per_10k_customers))} per 10,000 "
            "customers; the rule by group is the cheaper way to the same precision."
        )
    if at.beats_no_exploration:
        return (
            f"Exploring by {cx.grouped_by} instead: {at.rule}. Same precision, and "
            f"{amount(_given(at.revenue_gain_per_10k_customers))} more revenue per 10,000 customers than one rate for "
            "everyone: more even than no exploration, because in some groups exploring earns more than the "
            "exploit policy."
        )
    return (
        f"Exploring by {cx.grouped_by} instead: {at.rule}. Same precision for "
        f"{amount(_given(at.revenue_cost_per_10k_customers))} instead of {amount(_given(at.global_revenue_cost_per_10k_customers))} "
        f"per 10,000 customers ({at.saving_pct:.1f}% less)."
    )


@dataclass
class RateSliderTarget(Record):
    """One future policy on the report's rate slider, per exploration rate of the curve (``RateSlider.eps``)."""

    interval_95: list[float | None]  #: half-width of its 95% interval (reward's unit per customer)
    interval_95_pct: list[float | None]  #: that half-width, percent of the policy's value
    rmse: list[float | None]  #: its error, an RMSE (reward's unit per customer)


@dataclass
class SliderPayback(Record):
    """With ``--horizon-days``: the payback of the evaluated mix nearest each rate of the slider."""

    horizon_days: float  #: days of traffic after the log that the payback counts
    rate: list[float]  #: the evaluated mix's exploration rate (fraction of traffic)
    net: list[float]  #: its best net revenue over the horizon against not exploring (reward's unit)
    log_size: list[int]  #: the log size (customers) that earns that net


@dataclass
class RateSlider(Record):
    """What the report's rate slider shows (``slider_data``; embedded in report.html as JSON, in field order). Lists
    run over the curve's R exploration rates."""

    eps: list[float]  #: (R,) exploration rates (fractions of traffic)
    start: int  #: position of the recommended rate
    n: int  #: customers in the log
    days: float  #: days of traffic the log takes
    daily_traffic: float  #: customers a day
    cost_per_10k: list[float]  #: (R,) revenue given up per 10,000 customers against no exploration (reward's unit)
    cost_pct: list[float | None]  #: (R,) that cost, percent of the revenue without exploration (None when that revenue is 0)
    targets: dict[str, RateSliderTarget]  #: per future policy, its interval and error at each rate
    #: with a tolerance: the RMSE bound (reward's unit per customer); left out of the JSON without one
    tolerance: float | None = field(default=None, metadata=OPTIONAL)
    #: (R,) customers of logging the tolerance needs at each rate (None: no log size is enough)
    log_size_needed: list[float | None] | None = field(default=None, metadata=OPTIONAL)
    #: (R,) days of logging the tolerance needs at each rate
    days_needed: list[float | None] | None = field(default=None, metadata=OPTIONAL)
    #: with ``--horizon-days``: the payback near each rate; left out of the JSON without it
    payback: SliderPayback | None = field(default=None, metadata=OPTIONAL)


def slider_data(summary: StudySummary) -> RateSlider | None:
    """What the report's slider shows at each exploration rate of the curve, computed here from summary.json's
    exploration curve (the same numbers, embedded in the page): the cost against no exploration, each future
    policy's 95% interval (in the reward's unit and as a share of its value) and RMSE, the log size and days a
    tolerance needs, and, with ``--horizon-days``, the payback of the evaluated mix nearest the rate. None when
    the curve has no intervals.

    Parameters
    ----------
    summary : StudySummary

    Returns
    -------
    RateSlider or None
        Non-finite numbers as None (the page parses strict JSON).
    """
    curve, head = summary.exploration_curve, summary.headline
    if curve.interval_95 is None:
        return None
    eps = np.asarray(curve.eps, float)
    base = curve.revenue[0]
    targets = {}
    for t, p in head.precision.items():
        value = abs(p.true_value)
        iv = curve.interval_95[t]
        targets[t] = RateSliderTarget(
            interval_95=iv, interval_95_pct=[None if v is None or value < 1e-12 else 100.0 * v / value for v in iv], rmse=curve.rmse[t]
        )
    daily = summary.log_size_curve.daily_traffic
    out = RateSlider(
        eps=curve.eps,
        start=int(np.argmin(np.abs(eps - head.exploration_rate))),
        n=curve.n,
        days=curve.n / daily,
        daily_traffic=daily,
        cost_per_10k=curve.revenue_cost_per_10k_customers,
        cost_pct=[None if abs(base) < 1e-12 else 100.0 * c / 10_000 / abs(base) for c in curve.revenue_cost_per_10k_customers],
        targets=targets,
    )
    if curve.log_size_needed is not None:
        out.tolerance = curve.tolerance
        out.log_size_needed = curve.log_size_needed
        out.days_needed = [None if v is None else v / daily for v in curve.log_size_needed]
    pb = summary.payback
    if pb is not None:
        rates = np.asarray(pb.exploration_rates, dtype=float)
        net = np.asarray(pb.net_by_mixture_and_size, dtype=float)
        near = [int(np.argmin(np.abs(rates - e))) for e in eps]
        out.payback = SliderPayback(
            horizon_days=pb.horizon_days,
            rate=[float(rates[j]) for j in near],
            net=[float(net[j].max()) for j in near],
            log_size=[int(pb.sizes[int(np.argmax(net[j]))]) for j in near],
        )
    return RateSlider.from_dict(_finite(out.to_dict()))


@dataclass
class SliderGroup(Record):
    """One customer group on the rule slider."""

    label: str  #: the group, in words
    share: float  #: its share of customers (a fraction)


@dataclass
class RuleSliderTarget(Record):
    """One future policy on the rule slider, per rule (``RuleSlider``'s positions)."""

    value: float  #: the policy's value (reward's unit per customer)
    interval_95: list[float | None]  #: half-width of its 95% interval (reward's unit per customer)
    interval_95_pct: list[float | None]  #: that half-width, percent of its value
    rmse: list[float | None]  #: its error, an RMSE (reward's unit per customer)


@dataclass
class RuleSlider(Record):
    """What the report's slider over the rules by customer group shows (``rule_slider_data``; embedded in
    report.html as JSON, in field order). Lists run over the slider's positions, from the cheapest rule to the
    most precise."""

    grouped_by: str  #: what the customers are grouped by
    groups: list[SliderGroup]  #: the groups, in the rules' order
    start: int  #: the recommended rule's position (0 without one)
    marks: dict[str, str]  #: position (as text) -> what the rule there is, in words
    exploration_rate: list[list[float]]  #: each group's exploration rate (fractions)
    explored_share: list[float]  #: the share of all traffic explored (a fraction)
    cost_per_10k: list[float]  #: revenue given up per 10,000 customers against no exploration (reward's unit)
    cost_pct: list[float | None]  #: that cost, percent of the revenue without exploration
    worst_interval_95_pct: list[float | None]  #: the widest 95% half-width over future policies, percent of its value
    targets: dict[str, RuleSliderTarget]  #: per future policy, its value and its interval and error per rule


def rule_slider_data(summary: StudySummary) -> RuleSlider | None:
    """What the report's second slider shows at each rule by customer group that the contextual search kept
    (``--contextual``: the front of summary.json's contextual block), from the cheapest to the most precise:
    each group's exploration rate and share of customers, the share of all traffic explored, the cost per
    10,000 customers against no exploration (and as a percent of its revenue, as for the rate slider), and each
    future policy's 95% interval in the reward's unit and as a percent of its value, with its RMSE.

    Parameters
    ----------
    summary : StudySummary
        A study's summary.

    Returns
    -------
    RuleSlider or None
        ``groups`` (label, share: a fraction of customers), ``start`` (the recommended rule's position),
        ``marks`` (position -> what the rule there is: recommended, for the tolerance, one rate for everyone),
        per position ``exploration_rate`` (fractions per group), ``explored_share`` (fraction of all traffic),
        ``cost_per_10k`` (reward's unit per 10,000 customers), ``cost_pct`` (percent of the revenue without
        exploration), ``worst_interval_95_pct`` (percent), and ``targets`` (name -> ``value``, and per
        position ``interval_95`` (reward's unit per customer), ``interval_95_pct`` (percent), ``rmse``).
        None without a contextual block, or for a summary whose front lacks what the slider shows.
    """
    cx = summary.contextual
    front = [] if cx is None else cx.front.contextual
    if cx is None or not front or any(p.intervals_95 is None or p.intervals_95_pct is None or p.errors is None for p in front):
        return None
    points = front[::-1]  # stored by increasing error: the slider runs from the cheapest rule to the most precise
    last = len(points) - 1
    base = summary.revenue_cost.baseline_revenue
    costs = [p.revenue_cost_per_10k_customers for p in points]
    marks: dict[int, str] = {}
    for i, p in enumerate(points):
        rates = p.exploration_rate
        if max(rates) - min(rates) < 1e-12:
            marks[i] = f"one rate for everyone ({rates[0]:.1%})"
    named = {"tolerance": "the rule for the tolerance", "recommended": "the recommended rule"}  # the later wins a shared point
    for name, words in named.items():
        at = cx.at.get(name)
        if at is not None and at.front_index is not None:
            marks[last - at.front_index] = words
    rec = cx.at.get("recommended")
    out = RuleSlider(
        grouped_by=cx.grouped_by,
        groups=[SliderGroup(label=g.label, share=g.share) for g in cx.groups],
        start=last - rec.front_index if rec is not None and rec.front_index is not None else 0,
        marks={str(i): w for i, w in sorted(marks.items())},
        exploration_rate=[p.exploration_rate for p in points],
        explored_share=[p.explored_share for p in points],
        cost_per_10k=costs,
        cost_pct=[None if abs(base) < 1e-12 else 100.0 * c / 10_000 / abs(base) for c in costs],
        worst_interval_95_pct=[p.worst_interval_95_pct for p in points],
        targets={
            t: RuleSliderTarget(
                value=prec.true_value,
                interval_95=[(p.intervals_95 or {})[t] for p in points],
                interval_95_pct=[(p.intervals_95_pct or {})[t] for p in points],
                rmse=[(p.errors or {})[t] for p in points],
            )
            for t, prec in summary.headline.precision.items()
        },
    )
    return RuleSlider.from_dict(_finite(out.to_dict()))


def _finite(v):
    """``v`` with every non-finite float as None: the page parses it as strict JSON."""
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def render_html(summary: StudySummary, front: Front, pngs: dict[str, bytes]) -> str:
    """report.html: the summary, the front's table and the figures (embedded as base64) rendered in one page.

    Parameters
    ----------
    summary : StudySummary
    front : Front
    pngs : dict of str to bytes
        The figures by file name (``figures``).

    Returns
    -------
    str
        The HTML page.
    """
    images = {name: base64.b64encode(data).decode() for name, data in pngs.items()}
    word, unit = reward_word(summary), reward_unit(summary)
    return render(
        "report.html",
        s=summary,
        headline=headline(summary),
        headline_detail=headline_detail(summary),
        slider=slider_data(summary),
        rule_slider=rule_slider_data(summary),
        rule_steps=rule_steps(summary) if follows_rule(summary) else None,
        verdict=verdict(summary),
        word=word,
        unit=f"{unit} " if unit else "",
        model_word="revenue model" if word == "revenue" else f"model of {word}",
        images=images,
        front_rows=front.to_frame().round(6).to_dict("records"),
    )

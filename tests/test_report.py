"""The report as a reader gets it: numbers equal summary.json's, self-contained, renders in Chromium."""

import json
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from couponmix.cli import main
from couponmix.outputs.report import headline
from couponmix.studies.summary import from_json

STUDIES = Path(__file__).with_name("data") / "studies"
FORMATS = {
    "pct0": lambda v: f"{100 * v:.0f}%",
    "pct1": lambda v: f"{100 * v:.1f}%",
    "pct2": lambda v: f"{100 * v:.2f}%",
    "thousands": lambda v: f"{v:,.0f}",
    "num0": lambda v: f"{v:.0f}",
    "num1": lambda v: f"{v:.1f}",
    "num3": lambda v: f"{v:.3f}",
    "num4": lambda v: f"{v:.4f}",
}


class KeyedNumbers(HTMLParser):
    """Collects (data-key, data-fmt, text) of every element tagged with data-key."""

    def __init__(self):
        super().__init__()
        self.found, self._open = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self._open.append((a.get("data-key"), a.get("data-fmt"), []))

    def handle_endtag(self, tag):
        key, fmt, text = self._open.pop()
        if key is not None:
            self.found.append((key, fmt, "".join(text).strip()))
        if self._open:
            self._open[-1][2].extend(text)

    def handle_data(self, data):
        if self._open:
            self._open[-1][2].append(data)


def lookup(summary, key):
    value = summary
    for part in key.split("."):
        value = value[part]
    return value


@pytest.fixture(scope="module", params=["b_market", "c_paper"])
def run_dir(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / request.param
    assert main(["run", "--config", str(STUDIES / f"{request.param}.yaml"), "--out", str(out), "--quiet"]) == 0
    return out


def test_every_tagged_number_equals_summary_json(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    parser = KeyedNumbers()
    parser.feed((run_dir / "report.html").read_text())
    keys = {k for k, _, _ in parser.found}
    # the headline numbers, every target's precision and every policy's value are all tagged
    assert {"headline.exploration_rate", "headline.revenue_cost_per_10k_customers", "headline.worst_error", "recommended.revenue"} <= keys
    assert {"headline.log_size", "headline.log_size_needed"} & keys
    assert {
        f"headline.precision.{t}.{k}" for t in summary["recommended"]["targets"] for k in ("rmse", "sampling_error", "model_bias_bound")
    } <= keys
    # one criterion everywhere: the card's worst error is the front's, the table's and the recommendation's
    h = summary["headline"]
    assert h["worst_error"] == summary["recommended"]["ope_rmse"]
    per = [p["rmse"] for p in h["precision"].values()]
    assert h["worst_error"] == pytest.approx(max(per) if summary["aggregate"] == "max" else np.mean(per), rel=1e-12)
    for t, p in h["precision"].items():
        assert p["estimator"] == summary["production"]["estimators"][t]["estimator"]
        assert p["rmse"] == summary["recommended"]["ope_rmse_per_target"][t]
    assert {f"policies.{p}.value" for p in summary["policies"]} <= keys
    for key, fmt, text in parser.found:
        assert text == FORMATS[fmt](lookup(summary, key)), (key, text)


def test_report_headline_and_figures_are_the_summary_s(run_dir):
    summary = from_json((run_dir / "summary.json").read_text())
    html = (run_dir / "report.html").read_text()
    assert headline(summary) in unescape(html)
    for name in ("front.png", "exploration.png", "log_size.png"):
        png = (run_dir / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        import base64

        assert base64.b64encode(png).decode() in html  # the same figure, embedded
    # self-contained: nothing to fetch from a network
    assert not re.search(r'(src|href)="(https?:)?//', html)


@pytest.mark.browser
def test_report_renders_in_headless_chromium(run_dir, tmp_path):
    from couponmix.outputs.browser import open_report

    shot = tmp_path / "screenshot.png"
    check = open_report(run_dir / "report.html", screenshot=shot)
    assert check.console_errors == [] and check.page_errors == [], (check.console_errors, check.page_errors)
    assert check.external_requests == []
    assert [i["id"] for i in check.images] == ["fig-front", "fig-exploration", "fig-log-size"]
    for img in check.images:
        assert img["complete"] and img["width"] > 300 and img["height"] > 200, img
    summary = from_json((run_dir / "summary.json").read_text())
    assert check.headline == headline(summary)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


@pytest.mark.browser
def test_the_slider_shows_summary_json_numbers_at_each_rate(run_dir):
    """Issue 23, item 4: move the slider with the keyboard in Chromium and read the page; every number equals
    what summary.json's exploration curve says at that rate (the cost against its no-exploration revenue)."""
    from couponmix.outputs.browser import slide_report

    summary = json.loads((run_dir / "summary.json").read_text())
    curve = summary["exploration_curve"]
    last = len(curve["eps"]) - 1
    start = int(np.argmin(np.abs(np.array(curve["eps"]) - summary["headline"]["exploration_rate"])))
    moves = [-start, 3, 9, 2 * last]  # to no exploration, then up, then past the end
    seen = slide_report(run_dir / "report.html", moves)
    positions = [start]
    for m in moves:
        positions.append(min(max(positions[-1] + m, 0), last))
    assert [s["index"] for s in seen] == positions
    base = summary["revenue_cost"]["baseline_revenue"]
    number = lambda text: float(text.replace(",", "").replace("±", "").replace("%", ""))
    for shown, i in zip(seen, positions):
        assert shown["rate"] == f"{100 * curve['eps'][i]:.1f}%"
        cost = 1e4 * (base - curve["revenue"][i])
        assert number(shown["cost"]) == pytest.approx(cost, abs=0.5 + 1e-6 * abs(cost))
        assert number(shown["cost_pct"]) == pytest.approx(100 * (base - curve["revenue"][i]) / base, abs=0.051)
        if "log_size_needed" in curve:
            need = curve["log_size_needed"][i]
            if need is None:
                assert shown["days"] == "never"
            else:
                days = need / summary["log_size_curve"]["daily_traffic"]
                assert number(shown["days"]) == pytest.approx(days, abs=0.051)
                assert number(shown["log_size"]) == pytest.approx(need, abs=0.5 + 1e-6 * need)
        for t, row in shown["rows"].items():
            rmse, se = curve["rmse"][t][i], curve["sampling_error"][t][i]
            if rmse is None:
                continue
            half = np.sqrt(max(rmse**2 - se**2, 0.0)) + 1.959963984540054 * se
            value = abs(summary["headline"]["precision"][t]["true_value"])
            assert number(row["rmse"]) == pytest.approx(rmse, abs=5.1e-5)
            assert number(row["iv"]) == pytest.approx(half, abs=5.1e-4)
            assert number(row["pct"]) == pytest.approx(100 * half / value, abs=0.051)
    assert number(seen[1]["cost"]) == 0  # no exploration costs nothing against itself


def test_the_interval_is_the_headlines_and_the_curves(run_dir):
    """The 95% half-width: |computed bias| + model-error bound + 1.96 sampling errors, the same in the
    headline's precision, its sentence, and the curve's (bias part sqrt(rmse^2 - sampling^2))."""
    from couponmix.outputs.report import plus_minus

    s = from_json((run_dir / "summary.json").read_text())
    for t, p in s.headline.precision.items():
        d = s.recommended.targets[t]
        half = abs(d.computed_bias) + d.model_bias_bound + 1.959963984540054 * d.sampling_error
        assert p.interval_95 == pytest.approx(half, rel=1e-12)
        assert np.sqrt(max(p.rmse**2 - p.sampling_error**2, 0)) + 1.959963984540054 * p.sampling_error == pytest.approx(half, rel=1e-9)
        assert p.interval_95_pct == pytest.approx(100 * half / abs(p.true_value), rel=1e-12)
        assert f"{t} {plus_minus(p.true_value, p.interval_95)}" in headline(s)
    assert s.headline.worst_interval_95_pct == max(p.interval_95_pct for p in s.headline.precision.values())


def test_estimators_are_named_in_the_studys_reward():
    """A click study's estimators reweight logged clicks, not revenue (issue 21, item 5)."""
    from couponmix.outputs.templating import in_words

    assert in_words("reweighting the logged revenue, normalised", "clicks") == "reweighting the logged clicks, normalised"
    assert (
        in_words("the revenue model corrected by the reweighted logged revenue", "clicks")
        == "the model of clicks corrected by the reweighted logged clicks"
    )
    assert in_words("the revenue model's predictions alone", "clicks") == "the model's predictions alone"
    assert in_words("the revenue model's predictions alone", "revenue") == "the revenue model's predictions alone"


@pytest.fixture(scope="module")
def contextual_run_dir(tmp_path_factory):
    """The small market study with a rate per segment (``contextual: segment``): one contextual run, shared by
    the tests of the rule slider."""
    root = tmp_path_factory.mktemp("contextual_report")
    config = root / "b_market_segment.yaml"
    config.write_text((STUDIES / "b_market.yaml").read_text() + "contextual: segment\n")
    out = root / "run"
    assert main(["run", "--config", str(config), "--out", str(out), "--quiet"]) == 0
    return out


def test_no_rule_slider_without_contextual(run_dir):
    """A run without --contextual has no rule by group to slide over: no data, no section."""
    from couponmix.outputs.report import rule_slider_data

    assert rule_slider_data(from_json((run_dir / "summary.json").read_text())) is None
    html = (run_dir / "report.html").read_text()
    assert 'id="rule-slider"' not in html and 'id="try-rules"' not in html


@pytest.mark.slow
def test_the_contextual_front_stores_what_the_rule_slider_shows(contextual_run_dir):
    """Each rule of the contextual front carries its cost against no exploration, explored share and each
    future policy's error and 95% interval (the same keys as the rule at a named precision); the recommended
    rule is on the front, and the rule slider runs from the cheapest to the most precise, starting there."""
    from couponmix.outputs.report import rule_slider_data

    summary = json.loads((contextual_run_dir / "summary.json").read_text())
    cx, base = summary["contextual"], summary["revenue_cost"]["baseline_revenue"]
    front, at = cx["front"]["contextual"], cx["at"]["recommended"]
    shares = np.array([g["share"] for g in cx["groups"]])
    values = {t: p["value"] for t, p in summary["policies"].items()}
    for p in front:
        assert p["revenue_cost_per_10k_customers"] == pytest.approx(1e4 * (base - p["revenue"]), rel=1e-12, abs=1e-9)
        assert p["explored_share"] == pytest.approx(np.dot(p["exploration_rate"], shares), rel=1e-12)
        per = list(p["errors"].values())
        assert p["error"] == pytest.approx(max(per) if summary["aggregate"] == "max" else np.mean(per), rel=1e-12)
        for t, half in p["intervals_95"].items():
            assert p["errors"][t] <= half <= np.hypot(1, 1.959964) * p["errors"][t] + 1e-9
            assert p["intervals_95_pct"][t] == pytest.approx(100 * half / abs(values[t]), rel=1e-12)
        assert p["worst_interval_95_pct"] == max(p["intervals_95_pct"].values())
    assert [p["error"] for p in front] == sorted(p["error"] for p in front)
    rule = front[at["front_index"]]
    for k in ("exploration_rate", "explored_share", "errors", "intervals_95", "intervals_95_pct", "worst_interval_95_pct"):
        assert rule[k] == at[k], k
    assert rule["revenue_cost_per_10k_customers"] == at["revenue_cost_per_10k_customers"]
    s = from_json((contextual_run_dir / "summary.json").read_text())
    data = rule_slider_data(s)
    assert data is not None
    last = len(front) - 1
    assert data.start == last - at["front_index"] and data.marks[str(data.start)] == "the recommended rule"
    assert data.cost_per_10k == [p["revenue_cost_per_10k_customers"] for p in front[::-1]]
    assert data.cost_per_10k[0] == min(data.cost_per_10k)  # the cheapest first, the most precise last
    # a summary written before the front carried these numbers has no rule slider (and no error)
    for p in s.contextual.front.contextual:
        p.intervals_95 = None
    assert rule_slider_data(s) is None


@pytest.mark.slow
@pytest.mark.browser
def test_the_rule_slider_shows_summary_json_numbers_at_each_rule(contextual_run_dir):
    """Issue 23, item 4 (the per-group part): in Chromium, move the slider over the rules by segment with the
    keyboard and read the page; at each position every group's rate, the explored share, the cost against no
    exploration and each policy's interval equal summary.json's contextual front, and it starts at the
    recommended rule with the numbers of the rule the headline gives."""
    from couponmix.outputs.browser import open_report, slide_rules

    summary = json.loads((contextual_run_dir / "summary.json").read_text())
    cx = summary["contextual"]
    front, at = cx["front"]["contextual"], cx["at"]["recommended"]
    points = front[::-1]  # cheapest first
    last = len(points) - 1
    start = last - at["front_index"]
    moves = [-start, 5, 17, 2 * last]  # to the cheapest, then up, then past the most precise
    seen = slide_rules(contextual_run_dir / "report.html", moves)
    positions = [start]
    for m in moves:
        positions.append(min(max(positions[-1] + m, 0), last))
    assert [s["index"] for s in seen] == positions
    assert seen[0]["note"] == "(the recommended rule)" and seen[-1]["note"] in ("(the most precise)", "(the rule for the tolerance)")
    base = summary["revenue_cost"]["baseline_revenue"]
    number = lambda text: float(text.replace(",", "").replace("±", "").replace("%", ""))
    for shown, i in zip(seen, positions):
        p = points[i]
        assert shown["position"] == f"{i + 1} of {last + 1}"
        assert [g["label"] for g in shown["groups"]] == [g["label"] for g in cx["groups"]]
        assert [g["share"] for g in shown["groups"]] == [f"{100 * g['share']:.1f}%" for g in cx["groups"]]
        assert [g["rate"] for g in shown["groups"]] == [f"{100 * r:.1f}%" for r in p["exploration_rate"]]
        assert shown["explored"] == f"{100 * p['explored_share']:.1f}%"
        cost = p["revenue_cost_per_10k_customers"]
        assert number(shown["cost"]) == pytest.approx(cost, abs=0.5 + 1e-6 * abs(cost))
        assert number(shown["cost_pct"]) == pytest.approx(100 * cost / 1e4 / abs(base), abs=0.051)
        assert number(shown["worst_pct"]) == pytest.approx(p["worst_interval_95_pct"], abs=0.051)
        assert set(shown["rows"]) == set(p["intervals_95"])
        for t, row in shown["rows"].items():
            assert number(row["iv"]) == pytest.approx(p["intervals_95"][t], abs=5.1e-4)
            assert number(row["pct"]) == pytest.approx(p["intervals_95_pct"][t], abs=0.051)
            assert number(row["rmse"]) == pytest.approx(p["errors"][t], abs=5.1e-5)
    # at the start: the recommended rule's own numbers (summary.json's contextual.at.recommended)
    first = seen[0]
    assert [g["rate"] for g in first["groups"]] == [f"{100 * r:.1f}%" for r in at["exploration_rate"]]
    assert number(first["cost"]) == pytest.approx(at["revenue_cost_per_10k_customers"], abs=0.5)
    for t, row in first["rows"].items():
        assert number(row["iv"]) == pytest.approx(at["intervals_95"][t], abs=5.1e-4)
    check = open_report(contextual_run_dir / "report.html")
    assert check.console_errors == [] and check.page_errors == [] and check.external_requests == []

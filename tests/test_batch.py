"""Study files and batch runs: end to end, resumable after a kill, failures isolated."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from html import unescape
from pathlib import Path

import pandas as pd
import pytest

from couponmix.cli import main
from couponmix.errors import CouponmixError
from couponmix.outputs.batch import run_batch
from couponmix.studies.config import StudyConfig, load_study

STUDIES = Path(__file__).with_name("data") / "studies"
NAMES = ["a_floor", "b_market", "c_paper"]
RESULT_FILES = [".couponmix", "exploration.png", "front.png", "log_size.png", "pareto.csv", "report.html", "study.yaml", "summary.json"]


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under folder (relative path -> bytes), hidden temporary names included."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted batch of the three small studies."""
    out = tmp_path_factory.mktemp("batch") / "reference"
    res = run_batch(STUDIES, out, workers=1, quiet=True)
    assert (res.done, res.failed, res.ran, res.skipped) == (3, 0, 3, 0)
    return out


def test_batch_writes_every_study_an_index_and_a_comparison(reference):
    assert sorted(p.name for p in reference.iterdir()) == sorted([".couponmix", "comparison.csv", "index.html", *NAMES])
    for name in NAMES:
        assert sorted(p.name for p in (reference / name).iterdir()) == RESULT_FILES
        assert (reference / name / "study.yaml").read_bytes() == (STUDIES / f"{name}.yaml").read_bytes()
    table = pd.read_csv(reference / "comparison.csv")
    assert table["study"].tolist() == NAMES and (table["status"] == "done").all()
    index = (reference / "index.html").read_text()
    for name in NAMES:
        summary = json.loads((reference / name / "summary.json").read_text())
        row = table.set_index("study").loc[name]
        assert row["exploration_rate"] == pytest.approx(summary["headline"]["exploration_rate"], rel=1e-9)
        assert row["worst_error"] == pytest.approx(summary["recommended"]["ope_rmse"], rel=1e-9)
        assert f'href="./{name}/report.html"' in index
        assert summary["study"]["title"] in index


def test_study_file_fields_reach_the_summary(reference):
    s = json.loads((reference / "b_market" / "summary.json").read_text())
    assert s["n"] == 20000 and s["seed"] == 1 and s["evaluation_sample_size"] == 5000
    assert s["plan"]["tol"] == 1.5  # tolerance
    assert s["optimiser"]["pop_size"] == 8 and s["optimiser"]["generations"] == 3
    assert s["study"]["title"] == "Small market with a coupon budget"
    c = json.loads((reference / "c_paper" / "summary.json").read_text())
    assert list(c["criterion"]["candidates"]) == ["clipped_ips(5)"]
    a = json.loads((reference / "a_floor" / "summary.json").read_text())
    assert a["log_size_curve"]["daily_traffic"] == 2000 and a["headline"]["log_days"] == pytest.approx(2.5)


def test_run_with_a_study_file_equals_the_batch_study(reference, tmp_path):
    assert main(["run", "--config", str(STUDIES / "c_paper.yaml"), "--out", str(tmp_path / "c"), "--quiet"]) == 0
    for name in ("summary.json", "pareto.csv", "report.html"):
        assert (tmp_path / "c" / name).read_bytes() == (reference / "c_paper" / name).read_bytes()


@pytest.mark.slow
def test_killed_batch_resumes_to_identical_outputs(reference, tmp_path):
    out = tmp_path / "killed"
    env = {**os.environ, "COUPONMIX_THREADS": "1", "CI": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "couponmix.cli", "batch", str(STUDIES), "--out", str(out), "--workers", "1", "--quiet"],
        env=env,
        start_new_session=True,
    )
    try:
        for _ in range(6000):  # poll every 0.05 s, for at most about 5 minutes
            if (out / NAMES[0] / "summary.json").exists():
                break
            assert proc.poll() is None, "the batch ended before it could be interrupted"
            time.sleep(0.05)
        else:
            raise AssertionError("the first study never finished")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the batch and its worker processes, mid-run
        proc.wait()
    finished = [n for n in NAMES if (out / n / "summary.json").exists()]
    assert NAMES[0] in finished and len(finished) < len(NAMES), "kill came too late to test a resume"
    # nothing half-written under a final name: every study folder present is complete
    for p in out.iterdir():
        if not p.name.startswith(".") and p.is_dir():
            assert p.name in finished, f"{p.name} is under its final name but incomplete"
    # the killed workers end a moment after the parent: until then they hold their staging folders' locks,
    # which a rerun rightly leaves alone (wait on that event, not on a fixed time)
    from couponmix.infra.atomic import release, try_lock

    deadline = time.monotonic() + 120
    for staging in out.glob(".*.tmp-*"):
        while staging.is_dir() and time.monotonic() < deadline:
            fd = try_lock(staging)
            if fd is not None:
                release(fd)
                break
            time.sleep(0.05)
    before = (out / NAMES[0] / "summary.json").stat().st_mtime_ns
    res = run_batch(STUDIES, out, workers=1, quiet=True)
    assert res.skipped == len(finished) and res.ran == len(NAMES) - len(finished) and res.failed == 0
    assert (out / NAMES[0] / "summary.json").stat().st_mtime_ns == before  # not run again
    assert tree(out) == tree(reference)  # identical, and no temporary leftovers


def test_a_failing_study_is_isolated_and_retried(tmp_path):
    folder = tmp_path / "studies"
    folder.mkdir()
    shutil.copy(STUDIES / "a_floor.yaml", folder / "good.yaml")
    (folder / "bad.yaml").write_text("scenario: nowhere\nn: 1000\n")
    out = tmp_path / "out"
    assert main(["batch", str(folder), "--out", str(out), "--workers", "2", "--quiet"]) == 1
    table = pd.read_csv(out / "comparison.csv").set_index("study")
    assert table.loc["good", "status"] == "done"
    assert table.loc["bad", "status"] == "failed" and "unknown scenario 'nowhere'" in table.loc["bad", "error"]
    assert "unknown scenario &#39;nowhere&#39;" in (out / "index.html").read_text()
    assert sorted(p.name for p in (out / "bad").iterdir()) == [".couponmix", "error.json", "study.yaml"]
    # fix the file: the failed study runs again, the good one is skipped
    (folder / "bad.yaml").write_text((STUDIES / "c_paper.yaml").read_text())
    res = run_batch(folder, out, workers=1, quiet=True)
    assert (res.skipped, res.ran, res.failed) == (1, 1, 0)
    assert (out / "bad" / "summary.json").is_file() and not (out / "bad" / "error.json").exists()


def test_study_file_errors_are_one_line(tmp_path, capsys):
    cases = {
        "typo.yaml": ("scenario: market\nsead: 3\n", "unknown key(s) sead"),
        "mixed.yaml": ("scenario: market\npopulation: {app_share: 0.5}\n", "unknown key(s) population"),
        "neg.yaml": ("n: -3\n", "n: expected a number >= 1"),
        "est.yaml": ("estimator: {name: magic}\n", "unknown estimator 'magic'"),
        "wrongmarket.yaml": ("scenario: paper\nmarket: {history: {size: 100}}\n", "scenario is 'paper'"),
        "list.yaml": ("- 1\n- 2\n", "top level must be a mapping"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        code = main(["run", "--config", str(tmp_path / name), "--out", str(tmp_path / "o"), "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1, (name, err)
        assert not (tmp_path / "o").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CouponmixError, match="holds no .yaml"):
        run_batch(empty, tmp_path / "x")


def test_a_bare_market_file_is_still_a_market_config():
    cfg = load_study(Path(__file__).with_name("data") / "market_small.yaml")
    assert cfg.scenario == "market" and cfg.scenario_config.endswith("market_small.yaml")
    assert cfg == StudyConfig(name="market_small", scenario_config=cfg.scenario_config)


def test_command_line_values_override_the_study_file(tmp_path):
    out = tmp_path / "o"
    assert main(["run", "--config", str(STUDIES / "a_floor.yaml"), "--n", "7000", "--seed", "5", "--out", str(out), "--quiet"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["n"] == 7000 and s["seed"] == 5 and s["optimiser"]["generations"] == 3  # the rest from the file


def test_index_links_are_percent_encoded_relative_paths():
    """A study file named like a script URL must not become a script link (it is a folder name, encoded)."""
    from couponmix.outputs.batch import StudyRow, index_html

    row = StudyRow(
        study="javascript:alert(1)",
        title="x",
        status="done",
        scenario="market",
        exploration_rate=0.1,
        revenue_per_customer=1.0,
        revenue_cost_per_10k_customers=1.0,
        revenue_cost_pct=1.0,
        worst_error=0.1,
        worst_sampling_error=0.1,
        log_size=10,
        log_days=1.0,
        log_size_needed=None,
        estimators="e",
    )
    html = index_html([row])
    assert 'href="./javascript%3Aalert%281%29/report.html"' in html and 'href="javascript:' not in html


def test_the_index_names_each_studys_currency_escaped():
    from dataclasses import replace

    from couponmix.outputs.batch import StudyRow, index_html

    money = dict(exploration_rate=0.1, revenue_per_customer=1.0, revenue_cost_per_10k_customers=3220.0, revenue_cost_pct=2.2)
    row = StudyRow(study="a", title="x", status="done", scenario="market", **money, worst_error=0.1, worst_sampling_error=0.1)
    row.log_size, row.log_days, row.estimators, row.reward_unit = 10, 1.0, "e", "EUR"
    html = index_html([row, replace(row, study="b", reward_unit="<b>$</b>")])
    assert "3,220 EUR</td>" in html and "3,220 EUR; 10.0% explored" in html
    assert "<b>$</b>" not in html and "&lt;b&gt;$&lt;/b&gt;" in html


def test_a_result_of_an_older_summary_layout_is_rerun(tmp_path):
    """A finished study written by an older couponmix (another summary layout) is not read as current."""
    from couponmix.outputs.batch import _finished

    study = tmp_path / "s.yaml"
    study.write_text("scenario: paper\n")
    final = tmp_path / "out" / "s"
    final.mkdir(parents=True)
    (final / "study.yaml").write_bytes(study.read_bytes())
    (final / "summary.json").write_text(json.dumps({"headline": {}}))
    from couponmix.infra.atomic import mark

    mark(final, files=["study.yaml", "summary.json"])  # as couponmix leaves a finished study
    assert not _finished(study, final)
    from couponmix.studies.study import run_study
    from couponmix.studies.summary import SUMMARY_FORMAT, to_json

    (final / "summary.json").write_text(json.dumps({"summary_format": SUMMARY_FORMAT}))
    assert not _finished(study, final)  # the current format number, but not its layout: run again
    small = run_study("paper_floor", n=2000, eval_size=3000, pop_size=8, generations=2).summary
    (final / "summary.json").write_text(to_json(small))
    assert _finished(study, final)


def test_batch_never_deletes_what_it_did_not_write(tmp_path, capsys):
    """A folder under a study's name that couponmix did not write stops the batch with one line, before any
    work; hidden temporaries of someone else's stay; an empty --out is an error."""
    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "mydata.yaml").write_text((STUDIES / "c_paper.yaml").read_text())
    out = tmp_path / "out"
    (out / "mydata").mkdir(parents=True)
    (out / "mydata" / "thesis.txt").write_text("years of work")
    (out / ".notes.tmp-keep").mkdir()
    assert main(["batch", str(folder), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mydata" in err and "did not write" in err
    assert (out / "mydata" / "thesis.txt").read_text() == "years of work"
    (out / "mydata" / "thesis.txt").rename(tmp_path / "thesis.txt")
    (out / "mydata").rmdir()
    assert main(["batch", str(folder), "--out", str(out), "--quiet"]) == 0
    assert (out / ".notes.tmp-keep").is_dir()  # not couponmix's: left alone
    assert main(["batch", str(folder), "--out", "", "--quiet"]) == 2
    assert "output folder is empty" in capsys.readouterr().err


def test_a_study_cannot_be_named_like_the_batch_index(tmp_path, capsys):
    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "index.html.yaml").write_text("scenario: paper\n")
    assert main(["batch", str(folder), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "index.html" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_run_never_replaces_a_file_it_did_not_write(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "report.html").write_text("my own report")
    assert main(["run", "paper", "--out", str(out), "--n", "2000", "--eval-size", "3000", "--quiet"]) == 2
    assert "report.html" in capsys.readouterr().err
    assert (out / "report.html").read_text() == "my own report"


def test_a_rerun_cleans_only_dead_runs_own_staging_folders(tmp_path):
    """Leftover staging folders of killed runs are removed when couponmix can prove they are its own and their
    writer is gone; a live writer's, or a folder without the marker, stay."""
    import json as _json

    from couponmix.infra.atomic import MARKER, write_outputs

    out = tmp_path / "report"
    dead = tmp_path / ".report.tmp-dead0000"
    dead.mkdir()
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    (dead / MARKER).write_text(_json.dumps({"written_by": "couponmix", "pid": int(proc.stdout), "host": socket.gethostname()}))
    (dead / "big.bin").write_bytes(b"x" * 1000)
    live = tmp_path / ".report.tmp-live0000"
    live.mkdir()
    (live / MARKER).write_text(_json.dumps({"written_by": "couponmix", "pid": os.getpid(), "host": socket.gethostname()}))
    foreign = tmp_path / ".report.tmp-user0000"
    foreign.mkdir()
    write_outputs(out, {"a.txt": "a"})
    assert not dead.exists() and live.exists() and foreign.exists() and (out / "a.txt").read_text() == "a"


def test_untrusted_study_files_cannot_explode_or_inject(tmp_path, capsys):
    """Nested YAML aliases are refused, long or non-text titles are refused, and a title that a spreadsheet
    would run as a formula is neutralised in comparison.csv."""
    from couponmix.outputs.batch import StudyRow, comparison_csv

    bomb = tmp_path / "bomb.yaml"
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    bomb.write_text("\n".join(lines) + "\ndescription: *a8\n")
    assert main(["run", "--config", str(bomb), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "aliases" in err and not (tmp_path / "o").exists()
    long = tmp_path / "long.yaml"
    long.write_text("title: " + "x" * 3000 + "\n")
    assert main(["run", "--config", str(long), "--out", str(tmp_path / "o")]) == 2
    assert "title: string should have at most 2000 characters" in capsys.readouterr().err
    row = StudyRow(study="s", title='=HYPERLINK("http://evil","click")', status="done", error="-1+1", worst_error=-0.5)
    text = comparison_csv([row])
    assert "'=HYPERLINK" in text and "'-1+1" in text and ",-0.5," in text


def test_index_and_comparison_change_together_or_not_at_all(tmp_path, monkeypatch):
    """When the second rename fails, the first file gets its previous version back: index.html and
    comparison.csv never disagree, and no temporary file is left."""
    import couponmix.infra.atomic as atomic

    out = tmp_path / "batch"
    atomic.write_outputs(out, {"comparison.csv": "old csv", "index.html": "old html"})
    real_replace = os.replace
    calls = []

    def failing_replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # comparison.csv is already in place; index.html's rename fails
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(OSError):
        atomic.write_outputs(out, {"comparison.csv": "new csv", "index.html": "new html"})
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    assert (out / "comparison.csv").read_text() == "old csv" and (out / "index.html").read_text() == "old html"
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".") and p.name != atomic.MARKER) == []
    atomic.write_outputs(out, {"comparison.csv": "new csv", "index.html": "new html"})
    assert (out / "comparison.csv").read_text() == "new csv" and (out / "index.html").read_text() == "new html"
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".") and p.name != atomic.MARKER) == []


def test_a_rerun_retires_only_the_outputs_it_wrote_and_no_longer_writes(tmp_path):
    """An optional output of an earlier run (contextual.png) is removed when a rerun no longer writes it, if
    the folder's manifest lists it; a user's file of the same name in a folder without that record stays."""
    from couponmix.infra.atomic import MARKER, manifest, write_outputs

    out = tmp_path / "run"
    write_outputs(out, {"report.html": "a", "contextual.png": "fig"}, retire=("contextual.png",))
    assert manifest(out) == {"report.html", "contextual.png"}
    write_outputs(out, {"report.html": "b"}, retire=("contextual.png",))
    assert not (out / "contextual.png").exists() and (out / "report.html").read_text() == "b"
    assert manifest(out) == {"report.html"}
    again = json.loads((out / MARKER).read_text())
    write_outputs(out, {"report.html": "b"}, retire=("contextual.png",))
    assert json.loads((out / MARKER).read_text()) == again  # the marker is the same from run to run
    # a marker without a manifest (an older couponmix): nothing is retired
    (out / MARKER).write_text(json.dumps({"written_by": "couponmix"}) + "\n")
    (out / "contextual.png").write_text("mine")
    write_outputs(out, {"report.html": "c"}, retire=("contextual.png",))
    assert (out / "contextual.png").read_text() == "mine"


@pytest.mark.parametrize(
    "text,message",
    [
        ("name: a\nn: 1000\nname: b\n", "has the key 'name' twice (lines 1 and 3)"),
        ("scenario_config: {history: {size: 5000, size: 6000}}\n", "has the key 'size' twice (lines 1 and 1)"),
        ("name: " + "[" * 3000 + "]" * 3000 + "\n", "is nested more than 50 levels deep"),
    ],
)
def test_study_files_with_duplicate_keys_or_deep_nesting_are_refused_in_one_line(tmp_path, capsys, text, message):
    """YAML keeps the last of two equal keys silently, and deep nesting used to end in a RecursionError with
    thousands of lines of traceback: both are one line, exit 2, nothing written."""
    (tmp_path / "s.yaml").write_text(text)
    assert main(["run", "--config", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and not (tmp_path / "o").exists(), err


def test_yaml_merge_keys_may_still_override(tmp_path):
    """A << merge followed by the same key overrides it: that is no duplicate."""
    from couponmix.infra.safeyaml import load_yaml_file

    path = tmp_path / "m.yaml"
    path.write_text("base: &b {x: 1, z: 0}\nother: {<<: *b, x: 2}\n")
    assert load_yaml_file(path) == {"base": {"x": 1, "z": 0}, "other": {"x": 2, "z": 0}}


def test_a_study_whose_files_were_deleted_is_run_again(reference, tmp_path):
    """A finished study whose report was deleted afterwards is not 'already finished': the rerun rebuilds it,
    so the index never links to a missing file; untouched studies are skipped."""
    out = tmp_path / "batch"
    shutil.copytree(reference, out)
    (out / "c_paper" / "report.html").unlink()
    res = run_batch(STUDIES, out, workers=1, quiet=True)
    assert (res.ran, res.skipped) == (1, 2)
    assert (out / "c_paper" / "report.html").read_bytes() == (reference / "c_paper" / "report.html").read_bytes()


def test_a_batch_that_could_not_update_its_index_refuses_before_any_study(tmp_path, capsys):
    """An --out folder couponmix did not write, holding a user's index.html: one line before any study runs
    (it used to run every study, then refuse to write the index, leaving a stale one)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.html").write_text("the user's own page")
    assert main(["batch", str(STUDIES), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "index.html exists in a folder couponmix did not write" in err[0]
    assert sorted(p.name for p in out.iterdir()) == ["index.html"]
    assert (out / "index.html").read_text() == "the user's own page"


def test_one_cost_against_no_exploration_everywhere(reference, capsys):
    """Issue 23, item 1: one revenue cost, against no exploration, the same in summary.json, the headline, the
    report's card, the plan, the batch's table and index, and the ``plan`` command."""
    from couponmix.outputs.report import amount

    study = reference / "b_market"
    s = json.loads((study / "summary.json").read_text())
    cost, base = s["headline"]["revenue_cost_per_10k_customers"], s["revenue_cost"]["baseline_revenue"]
    # the baseline is the exploit policy alone: no exploration, not the floored revenue-best mix
    assert s["no_exploration"]["component"] == "exploit" and s["no_exploration"]["alpha"]["exploit"] == 1.0
    assert base == pytest.approx(s["no_exploration"]["revenue"], rel=1e-12) == pytest.approx(s["policies"]["exploit"]["value"], rel=1e-9)
    assert s["revenue_cost"]["baseline"].startswith("no exploration")
    assert cost == pytest.approx(1e4 * s["revenue_cost"]["per_customer"], rel=1e-12)
    assert cost == pytest.approx(1e4 * (base - s["recommended"]["revenue"]), rel=1e-9)
    assert s["headline"]["revenue_cost_pct"] == pytest.approx(100 * (base - s["recommended"]["revenue"]) / base, rel=1e-9)
    # the floor is priced apart: its own cost against the same baseline
    fm = s["floor_mix"]
    assert fm["floor"] == 0.01 and fm["revenue_cost_per_customer"] == pytest.approx(base - fm["revenue"], rel=1e-9)
    # the plan measures against the same baseline, and the plan command gives the same plan
    p = s["plan"]
    assert p["baseline_revenue"] == pytest.approx(base, rel=1e-12)
    assert p["revenue_cost_per_10k_customers"] == pytest.approx(1e4 * (base - p["revenue"]), rel=1e-9)
    capsys.readouterr()
    assert main(["plan", "--config", str(STUDIES / "b_market.yaml"), "--tol", str(p["tol"]), "--json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert planned["alpha"] == pytest.approx(p["alpha"]) and planned["revenue_cost"] == pytest.approx(p["revenue_cost"], rel=1e-9)
    # the batch's table and index, the report's headline and card
    row = pd.read_csv(reference / "comparison.csv").set_index("study").loc["b_market"]
    assert row["revenue_cost_per_10k_customers"] == pytest.approx(cost, rel=1e-9)
    assert f'data-sort="{cost}">{cost:,.0f}</td>' in (reference / "index.html").read_text()
    html = unescape((study / "report.html").read_text())
    assert f'{cost:,.0f}</span>\n  <span class="what">revenue given up per 10,000 customers against no exploration' in html
    assert f"It costs {amount(cost)} in revenue per 10,000 customers" in html and "against no exploration" in html
    assert "revenue-only" not in html


@pytest.mark.browser
def test_the_index_sorts_by_a_click_and_draws_one_comparison_chart(reference):
    """Issue 23, item 5: a click on a column sorts the studies by it (again: the other way); one chart."""
    from playwright.sync_api import sync_playwright

    from couponmix.outputs.browser import CHROMIUM_FLAGS, chromium_path

    table = pd.read_csv(reference / "comparison.csv").set_index("study")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto((reference / "index.html").resolve().as_uri())
            order = "els => els.map(r => r.querySelector('.small').textContent.split(';')[0])"
            page.click("th:nth-child(3)")  # cost per 10,000 customers
            up = page.eval_on_selector_all("#studies tbody tr", order)
            page.click("th:nth-child(3)")
            down = page.eval_on_selector_all("#studies tbody tr", order)
            bars = page.eval_on_selector_all("#chart rect", "els => els.length")
            overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
            # every label of the chart inside the chart (the longest bar's label was cut off)
            cut = page.evaluate(
                "() => { const svg = document.querySelector('#chart'); const w = svg.width.baseVal.value;"
                " return [...svg.querySelectorAll('text')].filter(t => { const b = t.getBBox(); return b.x < 0 || b.x + b.width > w; })"
                ".map(t => t.textContent); }"
            )
        finally:
            browser.close()
    assert errors == []
    assert up == sorted(NAMES, key=lambda n: table.loc[n, "revenue_cost_per_10k_customers"]) and down == up[::-1]
    assert bars == len(NAMES) and not overflow and cut == []  # one bar per study; nothing cut off at 1280 px

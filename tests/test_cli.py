"""The CLI end to end on small inputs, and its answers to bad input."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from couponmix.cli import main

SMALL = ["--n", "5000", "--pop-size", "16", "--generations", "6", "--eval-size", "4000", "--quiet"]


def run_cli(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "paper"
    assert main(["run", "paper", "--out", str(out), "--seed", "3", *SMALL]) == 0
    return out


def test_run_writes_complete_outputs(paper_run):
    assert sorted(os.listdir(paper_run)) == [
        ".couponmix",
        "exploration.png",
        "front.png",
        "log_size.png",
        "pareto.csv",
        "report.html",
        "summary.json",
    ]
    s = json.loads((paper_run / "summary.json").read_text())
    for key in ("scenario", "n", "seed", "criterion", "policies", "variance_finite", "recommended"):
        assert key in s
    assert s["scenario"] == "paper" and s["n"] == 5000 and s["seed"] == 3
    cands = s["criterion"]["candidates"]
    assert "clipped_ips(10)" in cands and "ips" not in cands and "snips" not in cands and "dr" not in cands
    assert "infinite" in s["criterion"]["reason"]
    assert s["variance_finite"] == {"pi_e1": False, "pi_e2": False}
    assert set(s["policies"]) == {"pi1", "pi2", "pi3", "pi_e1", "pi_e2"}
    assert abs(s["policies"]["pi_e1"]["value"] - 0.575) < 0.05
    rec = s["recommended"]
    assert set(rec["alpha"]) == {"pi1", "pi2", "pi3"}
    assert abs(sum(rec["alpha"].values()) - 1) < 1e-9 and min(rec["alpha"].values()) >= 0.01 - 1e-12
    assert rec["ope_rmse"] == max(rec["ope_rmse_per_target"].values())


def test_pareto_csv_matches_summary(paper_run):
    rows = list(csv.DictReader((paper_run / "pareto.csv").open()))
    assert list(rows[0]) == ["alpha.pi1", "alpha.pi2", "alpha.pi3", "revenue", "ope_rmse", "ope_rmse.pi_e1", "ope_rmse.pi_e2"]
    s = json.loads((paper_run / "summary.json").read_text())
    rec = s["recommended"]
    assert any(abs(float(r["revenue"]) - rec["revenue"]) < 1e-9 and abs(float(r["ope_rmse"]) - rec["ope_rmse"]) < 1e-9 for r in rows)
    for r in rows:
        assert abs(sum(float(r[f"alpha.{c}"]) for c in ("pi1", "pi2", "pi3")) - 1) < 1e-9


def test_report_shows_the_recommendation(paper_run):
    html = (paper_run / "report.html").read_text()
    s = json.loads((paper_run / "summary.json").read_text())
    assert "data:image/png;base64," in html
    assert f"{s['recommended']['ope_rmse']:.4f}" in html
    assert "infinite" in html  # the warning, in plain words


def test_same_seed_same_outputs(paper_run, tmp_path):
    again = tmp_path / "again"
    assert main(["run", "paper", "--out", str(again), "--seed", "3", *SMALL]) == 0
    for name in ("summary.json", "pareto.csv", "report.html"):
        assert (again / name).read_bytes() == (paper_run / name).read_bytes(), name


def test_rerun_into_existing_dir_replaces_files(paper_run, tmp_path, capsys):
    import shutil

    out = tmp_path / "copy"  # a copy: the module's paper_run stays as other tests expect it
    shutil.copytree(paper_run, out)
    code, _, _ = run_cli(["run", "paper_floor", "--out", str(out), *SMALL], capsys)
    assert code == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["scenario"] == "paper_floor" and "ips" in s["criterion"]["candidates"]
    assert [f for f in os.listdir(out) if f.startswith(".")] == [".couponmix"]  # the marker, no leftovers


def test_max_rmse(tmp_path, capsys):
    code, out, err = run_cli(["run", "paper", "--out", str(tmp_path / "a"), "--max-rmse", "0.0001", *SMALL], capsys)
    assert code == 0
    s = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert s["recommended"]["meets_max_rmse"] is False and "no mixture reaches" in err.lower()


def test_scenarios_lists_both(capsys):
    code, out, _ = run_cli(["scenarios"], capsys)
    assert code == 0 and "paper " in out and "paper_floor" in out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["run", "nowhere", *SMALL], "unknown scenario 'nowhere'"),
        (["run", "paper", "--n", "-5", *SMALL[2:]], "n must be at least 1"),
        (["run", "paper", "--estimator", "ips", *SMALL], "infinite variance"),
        (["run", "paper", "--floor", "0.5", *SMALL], "floors sum to 1.5"),
        (["run", "paper", "--estimator", "clipped_ips", "--clip", "-1", *SMALL], "clip"),
        (["run", "paper", "--max-rmse", "nan", *SMALL], "max-rmse"),
        (["run", "paper", *SMALL, "--eval-size", "100000000000"], "eval_size (--eval-size) must be at most 50,000,000"),
        (["run", "paper", *SMALL, "--pop-size", "100000000000"], "pop_size (--pop-size) must be at most 100,000"),
    ],
)
def test_bad_input_one_line_error_nothing_written(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    code, _, err = run_cli([*argv[:2], "--out", str(out), *argv[2:]], capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("couponmix: error:") and message in err, err
    assert not out.exists()
    assert not list(tmp_path.iterdir())


def test_unwritable_out(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli(["run", "paper", "--out", str(blocker / "sub"), *SMALL], capsys)
    assert code == 2 and "not writable" in err and err.count("\n") == 1
    code, _, err = run_cli(["run", "paper", "--out", str(blocker), *SMALL], capsys)
    assert code == 2 and "not a directory" in err


@pytest.mark.parametrize(
    "alpha,message",
    [
        ("pi1=0.5,pi2=0.6", "off the simplex"),
        ("pi1=-0.2,pi2=0.6,pi3=0.6", "negative"),
        ("pi7=1", "unknown component"),
    ],
)
def test_validate_rejects_bad_alpha(tmp_path, capsys, alpha, message):
    code, _, err = run_cli(["validate", "paper", "--alpha", alpha, "--reps", "5", "--out", str(tmp_path / "v")], capsys)
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "v").exists()


def test_validate_prints_table_and_json(tmp_path, capsys):
    code, out, _ = run_cli(
        [
            "validate",
            "paper_floor",
            "--alpha",
            "pi1=0.4,pi2=0.3,pi3=0.3",
            "--estimator",
            "ips",
            "--reps",
            "30",
            "--n",
            "500",
            "--eval-size",
            "20000",
            "--quiet",
            "--out",
            str(tmp_path / "v"),
        ],
        capsys,
    )
    assert code == 0 and "MC RMSE" in out and "pi_e1" in out
    doc = json.loads((tmp_path / "v" / "validation.json").read_text())
    r = doc["estimators"]["ips"]["pi_e1"]
    for key in ("true_value", "mean_estimate", "bias", "mc_rmse", "mc_rmse_se", "analytic_rmse"):
        assert key in r
    assert r["mc_rmse_se"] > 0


def test_console_script_runs_as_a_process(tmp_path):
    exe = Path(sys.executable).with_name("couponmix")
    res = subprocess.run([str(exe), "run", "nowhere", "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.strip() == (
        "couponmix: error: unknown scenario 'nowhere'; known scenarios: calibrated, market, paper, paper_floor (or a scenario folder)"
    )


def test_validate_refuses_zero_propensity_where_the_target_acts(tmp_path, capsys):
    code, _, err = run_cli(
        ["validate", "paper", "--alpha", "pi2=0.5,pi3=0.5", "--reps", "5", "--eval-size", "5000", "--out", str(tmp_path / "v")], capsys
    )
    assert code == 2 and "zero propensity where pi_e1 acts" in err and err.count("\n") == 1
    assert not (tmp_path / "v").exists()


def test_summary_names_the_production_estimator_and_the_law(paper_run):
    s = json.loads((paper_run / "summary.json").read_text())
    prod = s["production"]
    comp = prod["estimator_comparison"]
    for t, e in prod["estimators"].items():  # per target the lowest error among the candidates
        best = min(comp, key=lambda k: comp[k]["targets"][t]["rmse"])
        assert comp[best]["targets"][t]["rmse"] == pytest.approx(comp[e["estimator"]]["targets"][t]["rmse"], rel=1e-12)
        assert s["recommended"]["targets"][t]["estimator"] == e["estimator"]
    assert "ips" not in comp and "snips" not in comp  # infinite variance in the paper setting: not offered
    law = s["sample_size_law"]
    assert law["holds"] and law["plain_ips"]["holds"] is False
    r = law["rmse_by_log_size"]
    for t in ("pi_e1", "pi_e2"):
        assert r["1000"][t] > r["1000000"][t] >= r["10000000"][t]


def test_log_seed_and_world_seed_mean_one_thing_each(tmp_path, capsys):
    """--seed draws replicate logs of one market; --world-seed changes the market (its history and model)."""
    import pandas as pd

    from simulators import get_scenario

    market_small = str(Path(__file__).with_name("data") / "market_small.yaml")
    logs = {}
    for name, seeds in (("a", ["--seed", "1"]), ("b", ["--seed", "2"]), ("w", ["--seed", "1", "--world-seed", "1"])):
        out = tmp_path / name
        assert (
            main(
                [
                    "simulate",
                    "market",
                    "--config",
                    market_small,
                    "--alpha",
                    "exploit=0.9,explore=0.1",
                    "--n",
                    "3000",
                    "--out",
                    str(out),
                    "--workers",
                    "1",
                    *seeds,
                ]
            )
            == 0
        )
        logs[name] = pd.read_parquet(out)
    capsys.readouterr()
    assert not logs["a"]["reward"].equals(logs["b"]["reward"])  # different draws
    cols = ["recency", "frequency", "monetary", "tenure", "segment", "channel"]
    for world, names in ((0, ("a", "b")), (1, ("w",))):
        sc = get_scenario("market", config=market_small, seed=world)
        for name in names:
            log = logs[name]
            exploit = log["component"] == 0
            probs = sc.exploit_probs(log.loc[exploit, cols].to_numpy())
            # every exploit row took an action the world's own exploit policy gives positive probability
            assert (probs[np.arange(len(probs)), log.loc[exploit, "action"].to_numpy()] > 0).all(), (world, name)
    # and the other world's exploit policy disagrees somewhere: the seeds are not the same thing
    sc1 = get_scenario("market", config=market_small, seed=1)
    a = logs["a"][logs["a"]["component"] == 0]
    p1 = sc1.exploit_probs(a[cols].to_numpy())
    assert (p1[np.arange(len(p1)), a["action"].to_numpy()] == 0).any()


def test_version(capsys):
    from couponmix import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"couponmix {__version__}"


def test_progress_names_the_phases_that_take_the_time(monkeypatch, capsys):
    from couponmix.infra import progress
    from couponmix.studies.study import PHASES, run_study

    monkeypatch.setattr(progress, "interactive", lambda: True)
    run_study("paper", n=2000, eval_size=3000, pop_size=8, generations=2, quiet=False)
    err = capsys.readouterr().err
    for phase in PHASES[:-1]:  # the last one runs only with --contextual
        assert phase in err, phase
    assert PHASES[-1] not in err


def test_validate_takes_clip_and_simulate_does_not(tmp_path, capsys):
    code, out, _ = run_cli(
        [
            "validate",
            "paper_floor",
            "--alpha",
            "pi1=0.4,pi2=0.3,pi3=0.3",
            "--reps",
            "3",
            "--n",
            "500",
            "--eval-size",
            "2000",
            "--estimator",
            "clipped_ips",
            "--clip",
            "5",
            "--quiet",
        ],
        capsys,
    )
    assert code == 0 and "clipped_ips(5)" in out
    code, _, err = run_cli(["simulate", "paper", "--alpha", "pi1=1", "--n", "10", "--out", str(tmp_path / "s"), "--clip", "3"], capsys)
    assert code == 2 and err.count("\n") == 1 and "--clip" in err and not (tmp_path / "s").exists()


def test_validate_refuses_a_log_too_large_for_memory(capsys):
    code, _, err = run_cli(["validate", "paper", "--alpha", "pi1=1", "--n", "100000000000", "--reps", "2"], capsys)
    assert code == 2 and err.count("\n") == 1 and "limit" in err


def test_an_evaluation_sample_larger_than_the_memory_available_is_refused_before_any_work(monkeypatch):
    """The sample's arrays are sized before they are drawn: with 64 MiB available, 1,000,000 customers of the
    published setting (two actions, three components, two targets: about 0.4 GiB) are refused in one line."""
    import couponmix.infra.memory as memory
    from couponmix.errors import CouponmixError
    from couponmix.ope.objectives import EvaluationSample
    from simulators import get_scenario

    monkeypatch.setattr(memory, "available_bytes", lambda: 64 * 2**20)
    with pytest.raises(CouponmixError, match=r"an evaluation sample of 1,000,000 customers needs about 0\.\d GiB; 0\.1 GiB are available"):
        EvaluationSample.from_scenario(get_scenario("paper"), 1_000_000)
    monkeypatch.setattr(memory, "available_bytes", lambda: None)  # unknown: no refusal
    assert EvaluationSample.from_scenario(get_scenario("paper"), 1000).size == 1000


@pytest.mark.parametrize(
    "args,hint",
    [
        (["rnu", "market"], "did you mean run?"),
        (["run", "markt", "--out", "x"], "unknown scenario 'markt' (did you mean market?)"),
        (["run", "market", "--tolerence", "0.5", "--out", "x"], "unrecognized arguments: --tolerence 0.5; did you mean --tol?"),
        # argparse reports a missing required option before an unknown one: the unknown one is named too
        (["run", "market", "--ot", "x"], "required: --out; --ot is not an option (did you mean --out?)"),
        (["--bogus"], "required: command; --bogus is not an option"),
    ],
)
def test_a_likely_typo_gets_a_suggestion(tmp_path, capsys, monkeypatch, args, hint):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and hint in err[0], err
    assert not (tmp_path / "x").exists()


def test_every_commands_help_ends_with_an_example_that_parses(capsys):
    """Issue 23, item 7: --help gives an example per command, and each example is a valid command line."""
    import shlex

    from couponmix.cli import HELP_EXAMPLES, build_parser

    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert set(HELP_EXAMPLES) == commands
    for name, lines in HELP_EXAMPLES.items():
        with pytest.raises(SystemExit):
            main([name, "--help"])
        shown = capsys.readouterr().out
        assert "example:" in shown
        for line in lines:
            assert line in shown
            words = shlex.split(line.split("#")[0])
            assert words[0] == "couponmix" and parser.parse_args(words[1:]).command == name


def test_evaluate_and_validate_give_runs_error_at_its_mixture(paper_run, capsys, tmp_path):
    """evaluate on the run's own sample reproduces run's revenue, per-target errors and chosen estimators at
    the recommended mixture; validate reports the same estimator and promise beside its Monte Carlo."""
    s = json.loads((paper_run / "summary.json").read_text())
    rec = s["recommended"]
    mix = ",".join(f"{k}={v!r}" for k, v in rec["alpha"].items())
    common = ["paper", "--alpha", mix, "--seed", "3", "--n", "5000", "--eval-size", "4000"]
    assert main(["evaluate", *common, "--population", "sample", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    row = doc["mixtures"][0]
    assert doc["population"] == 4000 and doc["n"] == 5000
    assert row["revenue"] == pytest.approx(rec["revenue"], rel=1e-9, abs=1e-12)
    assert row["ope_rmse"] == pytest.approx(rec["ope_rmse"], rel=1e-9)
    for t, err in rec["ope_rmse_per_target"].items():
        assert row["targets"][t]["rmse"] == pytest.approx(err, rel=1e-9)
        assert row["targets"][t]["estimator"] == rec["targets"][t]["estimator"]
    assert "most precise" in doc["criterion"] and "infinite" in doc["criterion_reason"]
    from couponmix.commands import EvaluatedMixture, EvaluatedTarget, evaluate
    from couponmix.studies.config import StudyConfig

    res = evaluate(StudyConfig(scenario="paper", seed=3, n=5000, eval_size=4000), [mix], population="sample")
    assert all(isinstance(m, EvaluatedMixture) for m in res.mixtures)  # rows are records, written as the JSON's rows
    assert all(isinstance(t, EvaluatedTarget) for t in res.mixtures[0].targets.values())
    assert res.to_dict()["mixtures"] == doc["mixtures"]
    out = tmp_path / "val"
    assert main(["validate", *common, "--reps", "40", "--estimator", "clipped_ips,switch_dr", "--quiet", "--out", str(out)]) == 0
    assert "run's criterion at this mixture" in capsys.readouterr().out
    val = json.loads((out / "validation.json").read_text())
    for t, err in rec["ope_rmse_per_target"].items():
        c = val["criterion"][t]
        assert c["estimator"] == rec["targets"][t]["estimator"] and c["promise"] == pytest.approx(err, rel=1e-9)
        assert c["mc_rmse"] == val["estimators"][c["estimator"]][t]["mc_rmse"]

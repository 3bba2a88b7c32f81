"""Progress where the time goes (issue 23, item 6): every long phase of run, plan, batch and calibrate reports,
named as it starts, and a phased bar advances with the phases' measured times. No timing is asserted."""

import shutil
from pathlib import Path

import pytest
import yaml

from couponmix.cli import main
from couponmix.infra import progress
from couponmix.infra.progress import Progress, listen

STUDIES = Path(__file__).with_name("data") / "studies"


def phases(events):
    """The phase names in the order they started (each once)."""
    out = []
    for e in events:
        if e.kind in ("start", "phase") and (not out or out[-1] != e.desc):
            out.append(e.desc)
    return out


def test_a_phased_bar_advances_with_the_measured_weights():
    bar = Progress(3, "a", quiet=True, weights=[1.0, 3.0, 6.0])
    assert [bar._position(i) for i in range(4)] == pytest.approx([0.0, 10.0, 40.0, 100.0])
    assert bar._position(1.5) == pytest.approx(25.0)  # half of the second phase: halfway from 10 to 40
    assert Progress(3, "b", quiet=True)._position(2) == 2  # unweighted: the step count
    with listen() as events:
        with Progress(2, "first", quiet=True, weights=[1, 1]) as bar:
            bar.phase(1, "second")
    assert [(e.kind, e.desc, e.done) for e in events] == [("start", "first", 0), ("phase", "second", 1), ("end", "second", 2)]
    assert progress._LISTENERS == []  # the listener is removed on leaving the block


def test_run_and_plan_report_every_phase(tmp_path, capsys):
    from couponmix.studies.study import PHASES, PLAN_PHASES

    with listen() as events:
        assert main(["run", "--config", str(STUDIES / "b_market.yaml"), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    assert phases(events) == list(PHASES[:6])  # b_market has a tolerance: planning runs; no --contextual
    with listen() as events:
        assert main(["plan", "--config", str(STUDIES / "b_market.yaml"), "--tol", "1.5", "--quiet"]) == 0
    assert phases(events) == list(PLAN_PHASES)


def test_calibrate_reports_every_phase(tmp_path):
    from couponmix.dataset.calibration import PHASES
    from tests import own_log_world as world

    world.log(5_000, 3).to_csv(tmp_path / "log.csv", index=False)
    (tmp_path / "map.yaml").write_text(yaml.safe_dump(world.CONFIG))
    with listen() as events:
        args = ["calibrate", str(tmp_path / "log.csv"), "--config", str(tmp_path / "map.yaml"), "--out", str(tmp_path / "s")]
        code = main([*args, "--quiet"])
    assert code == 0 and phases(events) == list(PHASES)


def test_batch_names_each_study_as_it_starts(tmp_path):
    folder = tmp_path / "studies"
    folder.mkdir()
    for name in ("a_floor", "c_paper"):
        shutil.copy(STUDIES / f"{name}.yaml", folder)
    with listen() as events:
        assert main(["batch", str(folder), "--out", str(tmp_path / "b"), "--workers", "1", "--quiet"]) == 0
    said = phases(events)
    assert said[1] == "studies 0/2 finished; running a_floor"
    assert "studies 1/2 finished; running c_paper" in said and said[-1] == "studies finished"


def test_a_typo_in_a_policy_is_reported_before_any_model_is_fitted(tmp_path, capsys):
    """Issue 23, item 6: names are checked before the first model, with a suggestion."""
    import copy

    from couponmix.dataset.calibration import PHASES
    from tests import own_log_world as world

    world.log(2_000, 4).to_csv(tmp_path / "log.csv", index=False)
    cfg = copy.deepcopy(world.CONFIG)
    cfg["targets"]["model_v2"]["features"] = ["recency", "regoin"]
    (tmp_path / "map.yaml").write_text(yaml.safe_dump(cfg))
    with listen() as events:
        code = main(["calibrate", str(tmp_path / "log.csv"), "--config", str(tmp_path / "map.yaml"), "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("couponmix: error: target.model_v2.features: 'regoin'") and "did you mean region?" in err[-1]
    assert PHASES[1] not in phases(events) and not (tmp_path / "s").exists()

"""Scenarios plug in without editing couponmix: by entry point (a package of their own), by registration, or
as a scenario folder of data. couponmix's core never imports the simulators package."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from couponmix.cli import main
from couponmix.dataset.scenario import get_scenario, registered
from couponmix.errors import CouponmixError

TOY = textwrap.dedent('''
    import numpy as np
    from couponmix.policy.policies import Policy
    from couponmix.dataset.scenario import Scenario


    class ToyScenario(Scenario):
        """Two actions; the coupon pays x, no coupon pays 0.3; Gaussian noise of variance 1."""
        name = "toy"
        description = "toy scenario from a third-party package"
        action_names = ("none", "coupon")
        covariate_names = ("x",)
        default_n = 2000

        def sample_covariates(self, n, rng):
            return rng.random((n, 1))

        def mu(self, x):
            return np.column_stack([np.full(len(x), 0.3), x[:, 0]])

        def m2(self, x):
            return self.mu(x) ** 2 + 1.0

        def sample_rewards(self, x, actions, rng):
            return self.mu(x)[np.arange(len(x)), actions] + rng.standard_normal(len(x))

        def components(self):
            greedy = lambda x: np.column_stack([x[:, 0] < 0.3, x[:, 0] >= 0.3]).astype(float)
            coin = lambda x: np.full((len(x), 2), 0.5)
            return {"greedy": Policy("greedy", greedy, 2, "coupon when x >= 0.3"),
                    "coin": Policy("coin", coin, 2, "a fair coin")}

        def targets(self):
            high = lambda x: np.column_stack([x[:, 0] < 0.6, x[:, 0] >= 0.6]).astype(float)
            return {"high": Policy("high", high, 2, "coupon when x >= 0.6")}
''')


@pytest.fixture
def toy_package(tmp_path, monkeypatch):
    """An installed-looking package: a module and a dist-info with an entry point, on sys.path."""
    (tmp_path / "toy_scenarios.py").write_text(TOY)
    info = tmp_path / "toy_scenarios-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-scenarios\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[couponmix.scenarios]\ntoy = toy_scenarios:ToyScenario\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_a_scenario_from_another_package_runs_end_to_end(toy_package, tmp_path, capsys):
    assert registered()["toy"] == "toy_scenarios:ToyScenario"
    out = tmp_path / "run"
    assert main(["run", "toy", "--out", str(out), "--eval-size", "4000", "--tol", "0.2", "--quiet"]) == 0
    s = yaml.safe_load((out / "summary.json").read_text())
    assert s["scenario"] == "toy" and set(s["recommended"]["alpha"]) == {"greedy", "coin"}
    assert s["plan"]["reachable"] and s["plan"]["worst_error"] <= 0.2 + 1e-9
    assert main(["plan", "toy", "--tol", "0.2", "--eval-size", "4000"]) == 0
    assert "least-cost mixture" in capsys.readouterr().out
    assert main(["scenarios"]) == 0 and "toy scenario from a third-party package" in capsys.readouterr().out


def test_batch_workers_see_entry_point_scenarios(toy_package, tmp_path, monkeypatch):
    """Spawned worker processes find the scenario by its entry point, not by anything set in the parent."""
    studies = tmp_path / "studies"
    studies.mkdir()
    (studies / "t.yaml").write_text("scenario: toy\neval_size: 3000\nn: 1000\n")
    monkeypatch.setenv("PYTHONPATH", str(toy_package))
    code = subprocess.run(
        [sys.executable, "-m", "couponmix.cli", "batch", str(studies), "--out", str(tmp_path / "o"), "--workers", "2", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert code.returncode == 0, code.stderr
    assert (tmp_path / "o" / "t" / "report.html").is_file()


def test_a_scenario_folder_holds_data_not_code(tmp_path, capsys):
    small = yaml.safe_load((Path(__file__).with_name("data") / "market_small.yaml").read_text())
    folder = tmp_path / "calibrated"
    folder.mkdir()
    (folder / "scenario.yaml").write_text(yaml.safe_dump({"kind": "market", "config": small}))
    sc = get_scenario(str(folder))
    assert sc.name == "market" and sc.cfg["history"]["size"] == small["history"]["size"]
    assert main(["plan", str(folder), "--tol", "1.0", "--eval-size", "5000", "--alpha", "exploit=0.9,explore=0.1"]) == 0
    assert "customers gives an error" in capsys.readouterr().out
    (folder / "scenario.yaml").write_text("kind: market\nconfig: {bogus: 1}\n")
    with pytest.raises(CouponmixError, match="unknown key"):
        get_scenario(str(folder))
    (folder / "scenario.yaml").write_text("kind: market\ncode: import os\n")
    with pytest.raises(CouponmixError, match="unknown key"):
        get_scenario(str(folder))


def test_core_does_not_import_the_simulators_package():
    code = (
        "import sys, couponmix.cli, couponmix.studies.study, couponmix.outputs.batch, "
        "couponmix.ope.criterion, couponmix.decide.planner, "
        "couponmix.ope.montecarlo, couponmix.ope.streaming, couponmix.dataset.simulate; "
        "print(any(m == 'simulators' or m.startswith('simulators.') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"

"""Bad inputs and faults, as a careful new user and a hostile one would try them, on the real command line.

Each case runs ``couponmix`` as a process and checks: exit code 2, exactly one line on stderr starting
``couponmix: error:`` and no traceback, nothing written, files that were there untouched, and no process
of the run left behind (found by a tag in their environment, so reparented orphans count too). Config
values refused while the file is read run the first case of each kind as a process and the rest in this
process, which is the same code path.
"""

import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import psutil
import pytest

MARKET_BAD = {
    "history_size": ("history:\n  size: -5\n", "history.size: expected a number >= 100, got -5"),
    "log_mean_text": ("population:\n  monetary_log_mean: abc\n", "population.monetary_log_mean: expected a number"),
    "intercept_text": ("purchase:\n  intercept: high\n", "purchase.intercept: expected a number, got 'high'"),
    "overflow": ("population:\n  monetary_log_mean: 800\n", "the market's revenue overflows (a basket or its square is infinite)"),
    "otherwise": (
        "rules:\n  winback:\n    when: {feature: recency, min: 60}\n    action: pct15\n    otherwise: pct99\n",
        "rules.winback.otherwise: 'pct99' is not an action",
    ),
    "equals_text": (
        "rules:\n  winback:\n    when: {feature: recency, equals: lots}\n    action: pct15\n",
        "rules.winback.when.equals: recency is a number",
    ),
    "boolean": ("population:\n  app_share: true\n", "population.app_share: expected a number, got a boolean"),
    "shares": ("population:\n  segments: {a: 0.5, b: 0.4}\n", "shares sum to 0.9"),
    "unknown": ("populaton:\n  app_share: 0.5\n", "unknown key(s) populaton"),
}
STUDY_BAD = {
    "n_negative": ("n: -3\n", "n: expected a number >= 1"),
    "n_fraction": ("n: 1.5e3\neval_size: 1000.5\n", "eval_size: expected a whole number"),
    "title_number": ("title: 5\n", "title: expected text"),
    "estimator": ("estimator: {name: ips, lambda: -3}\n", "estimator.lambda: expected a number > 0"),
    "aggregate": ("aggregate: median\n", "aggregate: expected 'max' or 'mean'"),
    "optimiser": ("optimiser: {pop_size: 2}\n", "optimiser.pop_size: expected a number >= 4"),
}


def couponmix(args, cwd, timeout=120, prefix=()):
    """Run the CLI as a process tagged in its environment; returns (exit code, stdout, stderr, tag)."""
    tag = uuid.uuid4().hex
    env = {**os.environ, "COUPONMIX_TEST_TAG": tag, "COUPONMIX_THREADS": "1", "CI": "1"}
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "couponmix.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    return proc.returncode, proc.stdout, proc.stderr, tag


def leftovers(tag):
    found = []
    for p in psutil.process_iter(["pid"]):
        try:
            if p.environ().get("COUPONMIX_TEST_TAG") == tag:
                found.append(p.pid)
        except (psutil.Error, OSError):
            continue
    return found


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def assert_refused(code, err, tag, message, before=None, folder=None):
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("couponmix: error:"), err
    assert "Traceback" not in err
    assert message in err, err
    assert leftovers(tag) == []
    if folder is not None:
        assert snapshot(folder) == before, "files were written, changed or removed"


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "keep.txt").write_text("a file the user had")
    return tmp_path


def in_process(args, cwd, capsys, monkeypatch):
    """The CLI's main in this process (for cases refused while reading the input, where no worker or signal
    is involved): (exit code, stdout, stderr, tag of no process)."""
    from couponmix.cli import main

    monkeypatch.chdir(cwd)
    capsys.readouterr()
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err, uuid.uuid4().hex


@pytest.mark.parametrize("case", sorted(MARKET_BAD))
def test_market_config_values_are_checked(workdir, case, capsys, monkeypatch):
    """The first case as a process; the others, refused while the config is read, in this process."""
    text, message = MARKET_BAD[case]
    (workdir / "m.yaml").write_text(text)
    before = snapshot(workdir)
    run = couponmix if case == sorted(MARKET_BAD)[0] else lambda a, w: in_process(a, w, capsys, monkeypatch)
    code, _, err, tag = run(["plan", "market", "--config", "m.yaml", "--tol", "0.5", "--eps", "0.1"], workdir)
    assert_refused(code, err, tag, message, before, workdir)


def test_a_binary_config_file(workdir):
    (workdir / "b.yaml").write_bytes(b"\x00\xff\xfe\x00")
    before = snapshot(workdir)
    code, _, err, tag = couponmix(["run", "market", "--config", "b.yaml", "--out", "o"], workdir)
    assert_refused(code, err, tag, "not UTF-8 text", before, workdir)


@pytest.mark.parametrize("case", sorted(STUDY_BAD))
def test_study_file_values_are_checked(workdir, case, capsys, monkeypatch):
    """The first case as a process; the others, refused while the study file is read, in this process."""
    text, message = STUDY_BAD[case]
    (workdir / "s.yaml").write_text(text)
    before = snapshot(workdir)
    run = couponmix if case == sorted(STUDY_BAD)[0] else lambda a, w: in_process(a, w, capsys, monkeypatch)
    code, _, err, tag = run(["run", "paper_floor", "--config", "s.yaml", "--out", "o"], workdir)
    assert_refused(code, err, tag, message, before, workdir)


@pytest.mark.parametrize(
    "args,message",
    [
        (["plan", "paper", "--tol", "0.5", "--alpha", "pi1=0.5,pi1=0.3,pi2=0.2"], "names component 'pi1' twice"),
        (["plan", "paper", "--tol", "0.5", "--alpha", "pi1=0.5,pi2=0.4"], "weights sum to 0.9"),
        (["run", "paper", "--out", ""], "the output folder is empty"),
        (["batch", ".", "--out", "b", "--workers", "0"], "workers must be at least 1"),
        (["simulate", "paper", "--alpha", "pi1=1", "--n", "10000000000000", "--out", "log"], "GiB free"),
        (["validate", "paper", "--alpha", "pi1=1", "--n", "100000000"], "above its limit"),
        (["evaluate", "paper", "--alpha", "pi1=1", "--scheduler", "bogus"], "neither threads, processes nor"),
        (
            ["evaluate", "paper", "--alpha", "pi1=1", "--scheduler", "tcp://127.0.0.1:1", "--scheduler-timeout", "0.5"],
            "cannot use the Dask scheduler at tcp://127.0.0.1:1",
        ),
    ],
)
def test_bad_arguments(workdir, args, message):
    (workdir / "s.yaml").write_text("scenario: paper\n")
    before = snapshot(workdir)
    code, _, err, tag = couponmix(args, workdir)
    assert_refused(code, err, tag, message, before, workdir)


def test_thirds_written_to_six_decimals_are_accepted_with_a_warning(workdir):
    code, out, err, _ = couponmix(["plan", "paper", "--tol", "0.5", "--alpha", "pi1=0.333333,pi2=0.333333,pi3=0.333333"], workdir)
    assert code == 0, err
    assert err.startswith("warning: alpha weights sum to 0.999999") and "Traceback" not in err
    assert "pi1=0.3333" in out


@pytest.mark.slow  # waits out the timeout by design
def test_a_scheduler_that_accepts_but_never_answers(workdir):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    held = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    try:
        port = server.getsockname()[1]
        before = snapshot(workdir)
        code, _, err, tag = couponmix(
            ["evaluate", "paper", "--alpha", "pi1=1", "--scheduler", f"tcp://127.0.0.1:{port}", "--scheduler-timeout", "2"],
            workdir,
            timeout=60,
        )
        assert_refused(code, err, tag, "did not answer within 2 s", before, workdir)
    finally:
        stop.set()
        for c in held:
            c.close()
        server.close()


def test_a_symlinked_study_file_leaving_the_folder_is_refused(workdir):
    studies = workdir / "studies"
    studies.mkdir()
    (workdir / "outside.yaml").write_text("scenario: paper\n")
    (studies / "inside.yaml").symlink_to(workdir / "outside.yaml")
    before = snapshot(workdir)
    code, _, err, tag = couponmix(["batch", "studies", "--out", "b"], workdir)
    assert_refused(code, err, tag, "outside the study folder", before, workdir)


def test_an_empty_config_works_for_any_scenario(workdir):
    (workdir / "empty.yaml").write_text("")
    code, out, err, _ = couponmix(
        ["plan", "paper", "--config", "empty.yaml", "--tol", "0.5", "--alpha", "pi1=0.4,pi2=0.3,pi3=0.3"], workdir
    )
    assert code == 0 and "Traceback" not in err, err
    assert out.startswith("At pi1=0.4")


#: run the rest of the command line as 'nobody' (uid and gid 65534, no supplementary groups), where util-linux's
#: setpriv is missing
AS_NOBODY = "import os, sys; os.setgroups([]); os.setgid(65534); os.setuid(65534); os.execv(sys.argv[1], sys.argv[1:])"


def _as_another_user():
    """Root ignores permissions: as root, drop to 'nobody' for the permission tests, with setpriv or else a
    Python shim; never skipped (if neither can run couponmix as nobody, the test fails and says so)."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is not None:
        return (setpriv, "--reuid=65534", "--regid=65534", "--clear-groups")
    return (sys.executable, "-c", AS_NOBODY)


def test_a_read_only_folder(tmp_path):
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="couponmix-ro-"))  # under /tmp: every user can enter it
    base.chmod(0o755)
    ro = base / "ro"
    ro.mkdir()
    (ro / "keep.txt").write_text("mine")
    ro.chmod(0o555)
    try:
        before = snapshot(ro)
        code, _, err, tag = couponmix(
            ["run", "paper_floor", "--out", str(ro / "out"), "--n", "2000", "--eval-size", "2000", "--pop-size", "8", "--generations", "2"],
            base,
            prefix=_as_another_user(),
        )
        assert_refused(code, err, tag, "is not writable", before, ro)
    finally:
        ro.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


def test_an_output_folder_below_one_that_cannot_be_entered(tmp_path):
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="couponmix-ro-"))
    base.chmod(0o755)
    locked = base / "locked"
    locked.mkdir()
    locked.chmod(0o000)
    try:
        code, _, err, tag = couponmix(["run", "paper_floor", "--out", str(locked / "a" / "out")], base, prefix=_as_another_user())
        assert_refused(code, err, tag, "is not writable")
    finally:
        locked.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


def test_a_target_no_mix_can_evaluate_is_reported_and_the_study_completes(tmp_path):
    """No logging component ever plays some of a target's actions: the study finishes, says so in the
    summary and the report, and the figures draw (no late crash)."""
    from couponmix.commands import run
    from couponmix.studies.config import StudyConfig

    cfg = StudyConfig(
        scenario="market",
        n=20_000,
        eval_size=5_000,
        pop_size=8,
        generations=2,
        scenario_config={
            "history": {"size": 5_000},
            "model": {"n_estimators": 30, "calibration_size": 5_000},
            "components": ["winback", "app_shipping"],
            "targets": {"everything": {"kind": "uniform"}, "winback": {"kind": "rule", "rule": "winback"}},
        },
    )
    res = run(cfg, tmp_path / "out")
    s = res.summary
    assert s.ips_variance.targets["everything"].status == "unsupported"
    assert any("everything cannot be evaluated from logs of any mix" in w for w in s.warnings)
    html = (tmp_path / "out" / "report.html").read_text()
    assert "everything cannot be evaluated from logs of any mix" in html
    assert all((tmp_path / "out" / f).stat().st_size > 1000 for f in ("front.png", "exploration.png", "log_size.png"))


def test_a_full_disk_is_one_line_and_leaves_nothing_behind(tmp_path, monkeypatch, capsys):
    """No space left while the outputs are written: one line naming the file, exit 1, no output folder and no
    staging folder left beside it."""
    import errno
    from pathlib import Path as _Path

    from couponmix.cli import main

    real = _Path.write_bytes

    def full(self, data):
        if self.name == "report.html":
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real(self, data)

    monkeypatch.setattr(_Path, "write_bytes", full)
    out = tmp_path / "run"
    assert main(["run", "market", "--out", str(out), "--eval-size", "5000", "--pop-size", "8", "--generations", "2", "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("couponmix: error: No space left on device writing ") and "nothing was written" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_two_runs_into_one_new_folder_one_wins_and_the_other_says_so(tmp_path, monkeypatch, capsys):
    """Two commands writing the same new --out at once: the one that renames second gets one line (exit 2)
    instead of 'OSError: Directory not empty', its staging folder is removed, and the winner's files stay."""
    import os as _os

    from couponmix.cli import main

    real = _os.rename
    out = tmp_path / "logs"

    def racing(src, dst):
        if str(dst) == str(out) and not out.exists():  # the other run gets there first
            out.mkdir()
            (out / "theirs.txt").write_text("the other run's output")
        return real(src, dst)

    monkeypatch.setattr(_os, "rename", racing)
    args = ["simulate", "market", "--alpha", "exploit=0.9,explore=0.1", "--n", "2000", "--out", str(out), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "was written by another run at the same time" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs"]
    assert sorted(p.name for p in out.iterdir()) == ["theirs.txt"]

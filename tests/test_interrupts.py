"""Ctrl-C stops within about a second and leaves nothing behind; workers die with their parent."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

pytestmark = pytest.mark.slow


#: the command line with the pool's stop made to hang (what the watchdog is for)
HANGING_STOP = (
    "import sys, time; import couponmix.infra.backend as b; b.stop_pool = lambda pool: time.sleep(60); "
    "from couponmix.cli import main; sys.argv[0] = 'couponmix'; sys.exit(main())"
)


def start_simulate(tmp_path, hang: bool = False):
    out = tmp_path / "log"
    env = {**os.environ, "COUPONMIX_THREADS": "1", "CI": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            *(["-c", HANGING_STOP] if hang else ["-m", "couponmix.cli"]),
            "simulate",
            "paper",
            "--alpha",
            "pi1=1",
            "--n",
            "400000000",
            "--chunk-size",
            "262144",
            "--workers",
            "2",
            "--out",
            str(out),
        ],
        env=env,
        start_new_session=True,
        stderr=subprocess.PIPE,
        text=True,
    )
    children = []
    for _ in range(600):  # until both workers exist and parts are being written
        children = psutil.Process(proc.pid).children(recursive=True)
        parts = list(tmp_path.glob(".log.tmp-*/part-*.parquet"))
        if len([c for c in children if "spawn_main" in " ".join(c.cmdline())]) >= 2 and parts:
            break
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    else:
        raise AssertionError("the workers never started writing")
    return proc, children, out


def ctrl_c(proc) -> tuple[int, float, str]:
    """SIGINT to the whole process group (what a terminal sends on Ctrl-C); (exit code, seconds to exit,
    stderr). A process still there after 120 s is killed and the wait's timeout raised: the tests check that
    the process ends and how (its code, its words, the watchdog's 2 s), not how fast a loaded machine is;
    the time to stop is measured in benchmarks, not asserted here."""
    t = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    try:
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return code, time.monotonic() - t, proc.stderr.read()


def gone(pids, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids):
            return True
        time.sleep(0.05)
    return False


def test_ctrl_c_stops_at_once_and_cleans_up(tmp_path):
    proc, children, out = start_simulate(tmp_path)
    code, elapsed, err = ctrl_c(proc)
    assert code == 130 and err.strip() == "couponmix: interrupted", err
    assert elapsed < 60, elapsed  # it ends (and, unloaded, within a second: see the docstring of ctrl_c)
    assert gone([c.pid for c in children], within=60)
    assert not out.exists() and not list(tmp_path.glob(".log.tmp-*"))


def test_ctrl_c_stops_even_when_stopping_the_workers_hangs(tmp_path):
    """The watchdog started at the interrupt: if the clean-up on the way up hangs (here the pool's stop), the
    process still ends 2 s after Ctrl-C, ends its workers, removes the staging folder it created and says
    so."""
    proc, children, out = start_simulate(tmp_path, hang=True)
    code, elapsed, err = ctrl_c(proc)
    # first line ours; on this emergency path multiprocessing's resource tracker may add its own warning
    assert code == 130 and err.splitlines()[0] == "couponmix: interrupted" and "Traceback" not in err, err
    assert elapsed > 1.9, elapsed  # the watchdog's path: it waits 2 s before ending the process
    assert gone([c.pid for c in children], within=60)
    assert not out.exists() and not list(tmp_path.glob(".log.tmp-*"))


def test_workers_die_with_a_killed_parent(tmp_path):
    proc, children, _ = start_simulate(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)  # the parent alone, with no chance to clean up
    proc.wait(timeout=120)
    try:
        assert gone([c.pid for c in children], within=60), "workers outlived their parent"
    finally:
        for c in children:
            if psutil.pid_exists(c.pid):
                os.kill(c.pid, signal.SIGKILL)


def test_ctrl_c_while_the_modules_load_is_one_line(monkeypatch, capsys):
    """The console command's entry point: a KeyboardInterrupt while couponmix's modules are imported (Ctrl-C
    in the first fraction of a second) is 'couponmix: interrupted' and exit 130, not a traceback."""
    import builtins
    import sys as _sys

    from couponmix import entry

    real = builtins.__import__

    def interrupted(name, *args, **kwargs):
        if name == "couponmix.cli":
            raise KeyboardInterrupt
        return real(name, *args, **kwargs)

    monkeypatch.delitem(_sys.modules, "couponmix.cli", raising=False)
    monkeypatch.setattr(builtins, "__import__", interrupted)
    with pytest.raises(SystemExit) as stop:
        entry.run()
    assert stop.value.code == 130
    assert capsys.readouterr().err == "couponmix: interrupted\n"


def test_output_piped_into_a_reader_that_stops_early_ends_quietly():
    """`couponmix scenarios | head -1`: no BrokenPipeError traceback."""
    proc = subprocess.run(f"{sys.executable} -m couponmix scenarios | head -c 1", shell=True, capture_output=True, text=True, timeout=120)
    assert proc.stdout and "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr


def test_the_watchdog_ends_the_process_even_when_removing_staging_fails():
    """remove_live_staging raising (rmtree's final os.close can raise EBADF when another thread has just
    closed that descriptor) must not keep the watchdog from ending the process: it exits 130 while the main
    thread is still stuck."""
    script = (
        "import errno, time\n"
        "import couponmix.cli as cli\n"
        "import couponmix.infra.atomic as atomic\n"
        "def broken():\n"
        "    raise OSError(errno.EBADF, 'Bad file descriptor')\n"
        "atomic.remove_live_staging = broken\n"
        "cli._arm_watchdog()\n"
        "cli._interrupt_seen.set()\n"
        "time.sleep(600)  # the stuck main thread\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip() == "couponmix: interrupted", proc.stderr

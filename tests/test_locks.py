"""Writers under concurrency: a staging folder's advisory lock, not only its marker's pid, says whether its
writer is alive; one batch at a time writes into a folder."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from couponmix.cli import main
from couponmix.infra.atomic import MARKER, clean_stale_staging, mark, release, try_lock, write_outputs, writer_alive
from couponmix.outputs.batch import run_batch

STUDIES = Path(__file__).with_name("data") / "studies"

#: a writer that creates its staging folder as couponmix does, says where, and stays at work until told
HOLDER = (
    "import sys; from pathlib import Path; from couponmix.infra.atomic import new_staging, mark; "
    "s = new_staging(Path(sys.argv[1])); mark(s, staging=True); print(s, flush=True); sys.stdin.readline()"
)


@pytest.fixture
def live_writer():
    procs = []

    def start(target: Path) -> tuple[subprocess.Popen, Path]:
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(target)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        staging = Path(proc.stdout.readline().strip())  # waits for the event, not for a time
        assert staging.is_dir() and (staging / MARKER).is_file()
        return proc, staging

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_live_writers_staging_is_never_removed_and_a_killed_ones_is(tmp_path, live_writer):
    out = tmp_path / "report"
    proc, staging = live_writer(out)
    assert writer_alive(staging)
    assert clean_stale_staging(out) == 0 and staging.is_dir()
    write_outputs(out, {"a.txt": "a"})  # another run into the same --out cleans only what is dead
    assert staging.is_dir() and (out / "a.txt").read_text() == "a"
    proc.kill()  # no chance to clean up
    proc.wait()
    assert not writer_alive(staging)
    assert clean_stale_staging(out) == 1 and not staging.exists()


def test_a_dead_writer_whose_pid_now_names_a_live_process_is_recognised(tmp_path):
    """The marker's pid may have been reused by another process: the free lock proves the writer gone. A
    marker of a writer that did not lock (an older version) falls back to the pid, and is kept."""
    out = tmp_path / "report"
    reused, old = tmp_path / ".report.tmp-reused00", tmp_path / ".report.tmp-oldlive0"
    for folder, doc in (
        (reused, {"lock": "flock"}),
        (old, {}),
    ):
        folder.mkdir()
        (folder / MARKER).write_text(json.dumps({"written_by": "couponmix", "pid": os.getppid(), "host": socket.gethostname(), **doc}))
    assert clean_stale_staging(out) == 1
    assert not reused.exists() and old.is_dir()


def test_a_folder_locked_by_this_very_process_counts_as_alive(tmp_path):
    folder = tmp_path / ".report.tmp-mine0000"
    folder.mkdir()
    mark(folder, staging=True)
    fd = try_lock(folder)
    assert fd is not None
    try:
        assert writer_alive(folder) and clean_stale_staging(tmp_path / "report") == 0
    finally:
        release(fd)
    assert not writer_alive(folder)


def test_a_second_batch_into_the_same_folder_refuses_in_one_line(tmp_path, capsys):
    out = tmp_path / "batch"
    out.mkdir()
    mark(out)
    before = sorted(p.name for p in out.iterdir())
    fd = try_lock(out)  # a batch at work in this folder
    try:
        assert main(["batch", str(STUDIES), "--out", str(out), "--quiet"]) == 2
    finally:
        release(fd)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("couponmix: error: another couponmix batch is writing into"), err
    assert sorted(p.name for p in out.iterdir()) == before


def test_batch_leaves_a_live_writers_staging_alone(tmp_path, live_writer):
    """A finished batch rerun (every study skipped) cleans the staging of dead writers in its folder only."""
    studies = tmp_path / "studies"
    studies.mkdir()
    shutil.copy(STUDIES / "c_paper.yaml", studies)
    out = tmp_path / "batch"
    res = run_batch(studies, out, workers=1, quiet=True)
    assert res.failed == 0
    proc, staging = live_writer(out / "extra")
    dead = out / ".gone.tmp-dead0000"
    dead.mkdir()
    (dead / MARKER).write_text(json.dumps({"written_by": "couponmix", "pid": 1, "host": socket.gethostname(), "lock": "flock"}))
    again = run_batch(studies, out, workers=1, quiet=True)
    assert again.skipped == res.done and again.ran == 0
    assert staging.is_dir() and not dead.exists()
    proc.kill()
    proc.wait()
    run_batch(studies, out, workers=1, quiet=True)
    assert not staging.exists()


def test_reading_the_umask_never_changes_it(monkeypatch):
    """Where the kernel reports the umask (/proc/self/status), reading it never sets it, even for an instant in
    which another thread's new file would get no umask."""
    from couponmix.infra.atomic import current_umask

    if not os.path.exists("/proc/self/status") or "Umask:" not in open("/proc/self/status").read():
        pytest.skip("this kernel does not report the umask")
    old = os.umask(0o027)
    try:
        monkeypatch.setattr(os, "umask", lambda mask: pytest.fail("the umask was set while reading it"))
        assert current_umask() == 0o027
    finally:
        monkeypatch.undo()
        os.umask(old)

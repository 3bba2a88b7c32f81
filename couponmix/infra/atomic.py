"""Outputs that are never half-written: write to a temporary name, then rename.

couponmix deletes or replaces only what it can prove it wrote: every folder it assembles (and its
staging folder, from the moment it exists) holds the marker file ``.couponmix``; a folder without it is
never removed (``owned``, ``remove_owned``).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from couponmix.errors import CouponmixError

__all__ = [
    "MARKER",
    "mark",
    "manifest",
    "clean_stale_staging",
    "writer_alive",
    "try_lock",
    "release",
    "owned",
    "remove_owned",
    "check_output_dir",
    "check_name",
    "check_replaceable",
    "current_umask",
    "write_outputs",
]

MARKER = ".couponmix"


#: staging folders this process is writing now, each with the descriptor holding its advisory lock (None if
#: it could not be locked): what ``remove_live_staging`` removes when the process must end at once (the Ctrl-C
#: watchdog), since the ``except`` blocks that normally remove them may not run
_LIVE: dict[Path, int | None] = {}


def try_lock(directory) -> int | None:
    """An exclusive advisory lock (``flock``) on a folder: the open descriptor that holds it, or None when
    another open descriptor (another process, or another part of this one) holds it. The lock lives as long
    as the descriptor and follows the folder through a rename; it ends with the process whatever kills it,
    so a lock that can be taken proves its holder gone.

    Parameters
    ----------
    directory : str or Path

    Returns
    -------
    int or None
        The descriptor (give it to ``release``), or None when the lock is held or the folder cannot be opened.
    """
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def release(fd: int | None) -> None:
    """Close the descriptor ``try_lock`` returned, ending its lock (None: nothing to do; an error closing it is ignored).

    Parameters
    ----------
    fd : int or None
    """
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


def new_staging(target: Path) -> Path:
    """A new staging folder beside ``target`` (``.NAME.tmp-*``), registered as this process's and locked for
    as long as this process writes it (see ``writer_alive``).

    Parameters
    ----------
    target : Path
        The folder it will become.

    Returns
    -------
    Path
    """
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    _LIVE[staging] = try_lock(staging)
    return staging


def end_staging(staging: Path, remove: bool) -> None:
    """The staging folder is renamed into place (``remove`` False) or abandoned (True).

    Parameters
    ----------
    staging : Path
        A folder ``new_staging`` made.
    remove : bool
        Remove it (abandoned); else only release its lock (renamed into place).
    """
    if remove:
        shutil.rmtree(staging, ignore_errors=True)
        if os.path.lexists(staging):  # a worker still writing refilled it: the exit watchdog retries
            return
    release(_LIVE.pop(staging, None))


def remove_live_staging(within: float = 1.0) -> None:
    """Remove every staging folder this process is still writing (it created each one).

    Called when the process must end at once, while other threads (and, until they are killed, workers) may
    still be writing: a file created during the walk leaves a folder ``rmtree`` cannot remove, and rmtree's
    own final ``os.close`` can raise EBADF when another thread has just closed that reused descriptor (not
    covered by ``ignore_errors``). So each folder is retried until it is gone, for up to ``within`` seconds.

    Parameters
    ----------
    within : float
        Seconds, in all.
    """
    deadline = time.monotonic() + within
    for staging in list(_LIVE):
        while True:
            try:
                shutil.rmtree(staging, ignore_errors=True)
            except OSError:
                pass
            if not os.path.lexists(staging) or time.monotonic() > deadline:
                break
            time.sleep(0.02)


def mark(directory: Path, staging: bool = False, files: Iterable[str] | None = None) -> None:
    """Record that couponmix wrote ``directory``, and which of its files (``files``: a manifest, so that a
    later run may retire an output it no longer writes). A staging folder is marked first thing, with the
    process writing it, so that a later run can tell a killed run's leftovers from a live one's; a finished
    folder's marker names no process (outputs stay identical from run to run).

    Parameters
    ----------
    directory : Path
    staging : bool
        A staging folder: the marker names this process and host.
    files : iterable of str, optional
        The manifest.
    """
    doc: dict = {"written_by": "couponmix"}
    if staging:
        doc.update(pid=os.getpid(), host=socket.gethostname(), lock="flock")
    if files is not None:
        doc["files"] = sorted(set(files))
    (Path(directory) / MARKER).write_text(json.dumps(doc) + "\n")


def manifest(directory: Path) -> set[str] | None:
    """The files the marker of ``directory`` says couponmix wrote there (None: no marker, or none listed).

    Parameters
    ----------
    directory : Path

    Returns
    -------
    set of str or None
    """
    try:
        files = json.loads((Path(directory) / MARKER).read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        return None
    return set(files) if isinstance(files, list) and all(isinstance(f, str) for f in files) else None


def writer_alive(directory: Path) -> bool:
    """Whether the process writing a staging folder may still be at work (then the folder is not touched).

    Its writer holds an advisory lock on the folder for its whole life: a lock held means alive, whatever
    the marker says. A lock that can be taken, on a folder whose marker says its writer locks (and was
    written on this machine), means the writer is gone, even when its pid now belongs to another process.
    Folders of writers that did not lock (older versions) fall back to the marker's pid; anything that
    cannot be read, or another machine's folder, counts as alive.

    Parameters
    ----------
    directory : Path
        A staging folder.

    Returns
    -------
    bool
    """
    fd = try_lock(directory)
    if fd is None:
        return True
    release(fd)
    try:
        doc = json.loads((directory / MARKER).read_text())
        if doc.get("host") != socket.gethostname():
            return True  # another machine's: its lock may not reach here, so keep it
        if doc.get("lock") == "flock":
            return False
        os.kill(int(doc["pid"]), 0)
    except ProcessLookupError:
        return False
    except (OSError, ValueError, KeyError, TypeError):
        return True  # unreadable or not ours to judge: keep it
    return True


def clean_stale_staging(target) -> int:
    """Remove the staging folders (``.NAME.tmp-*`` beside ``target``) that earlier, killed couponmix runs left
    behind: only folders with couponmix's marker whose writing process is gone.

    Parameters
    ----------
    target : str or Path
        The folder they were staging.

    Returns
    -------
    int
        Folders removed.
    """
    target = Path(target)
    removed = 0
    if not target.parent.is_dir():
        return 0
    for stale in target.parent.glob(f".{target.name}.tmp-*"):
        if owned(stale) and not writer_alive(stale):
            shutil.rmtree(stale, ignore_errors=True)
            removed += 1
    return removed


def owned(path) -> bool:
    """True when ``path`` is a folder couponmix wrote: a real folder (not a link) holding the marker.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    bool
    """
    path = Path(path)
    return path.is_dir() and not path.is_symlink() and (path / MARKER).is_file()


def remove_owned(path) -> None:
    """Remove a folder couponmix wrote; refuse, with a one-line error, anything else.

    Parameters
    ----------
    path : str or Path

    Raises
    ------
    CouponmixError
        A file, a link, or a folder without the marker.
    """
    path = Path(path)
    if not owned(path):
        what = "a file" if path.is_file() or path.is_symlink() else "a folder couponmix did not write"
        raise CouponmixError(
            f"{path} is {what} (no {MARKER} marker): couponmix will not delete or replace it; move it away or choose another --out"
        )
    shutil.rmtree(path)


#: the longest file name the file systems couponmix writes to take (bytes), and what staging adds to a name
NAME_MAX = 255
STAGING_SUFFIX = len(".tmp-XXXXXXXX") + 1


def check_name(name: str, what: str) -> str:
    """A name that becomes a file or folder name: short enough, with its staging prefix and suffix, for the
    file system (``NAME_MAX`` bytes), one line of text, no path separator, not ``.`` or ``..``.

    Parameters
    ----------
    name : str
    what : str
        What the name is, for the message.

    Returns
    -------
    str
        ``name``.

    Raises
    ------
    CouponmixError
        Too long, or holding a control character.
    """
    size = len(os.fsencode(name))
    if size + STAGING_SUFFIX > NAME_MAX:
        raise CouponmixError(f"{what} is too long ({size} bytes; at most {NAME_MAX - STAGING_SUFFIX}): choose a shorter one")
    if any(not c.isprintable() for c in name):
        raise CouponmixError(f"{what} {name!r} holds a control character (a newline, a tab, an escape): rename it")
    return name


def check_output_dir(path, names: Iterable[str] = ()) -> Path:
    """Fail early, before any work, if ``path`` cannot become a writable directory, or (``names``: the files
    the command will write) if it is a folder couponmix did not write holding one of them.

    Parameters
    ----------
    path : str or Path
    names : iterable of str

    Returns
    -------
    Path

    Raises
    ------
    CouponmixError
        An empty or bad name, a dangling link, a file, a folder that cannot be written, or one of ``names`` in a folder
        couponmix did not write.
    """
    if path is None or str(path).strip() == "":
        raise CouponmixError("the output folder is empty (an unset variable?): give --out DIR")
    path = Path(path)
    check_name(path.name, "the output folder's name")
    try:
        if path.is_symlink() and not path.exists():
            raise CouponmixError(f"output path {path} is a link to nothing (or a loop of links): give a real folder")
        if path.exists() and not path.is_dir():
            raise CouponmixError(f"output path {path} exists and is not a directory")
        probe = path
        while not probe.exists():
            probe = probe.parent
    except PermissionError:
        raise CouponmixError(f"output directory {path} is not writable: a folder above it cannot be entered") from None
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise CouponmixError(f"output directory {path} is not writable ({probe} does not allow writing)")
    try:
        fd, name = tempfile.mkstemp(prefix=".couponmix-probe-", dir=probe)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise CouponmixError(f"output directory {path} is not writable: {exc.strerror}") from None
    check_replaceable(path, list(names))
    return path


def check_replaceable(directory, names) -> None:
    """Before any work: refuse to write ``names`` into an existing folder couponmix did not write where one of
    them already exists (``write_outputs`` would refuse too, after the work).

    Parameters
    ----------
    directory : str or Path
    names : iterable of str
        The files to be written.

    Raises
    ------
    CouponmixError
        One of them exists in a folder couponmix did not write.
    """
    directory = Path(directory)
    if directory.is_dir() and not owned(directory):
        taken = [n for n in names if (directory / n).exists() or (directory / n).is_symlink()]
        if taken:
            raise CouponmixError(
                f"{directory / taken[0]} exists in a folder couponmix did not write (no {MARKER} "
                "marker): couponmix will not replace it; choose another --out"
            )


_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process's umask.

    Read from ``/proc/self/status`` where the kernel reports it (Linux 4.7 and later), so that no other thread
    ever sees it changed. Elsewhere it is read by setting it to 0 and back, under a lock; a file another thread
    creates in that instant would get no umask, so couponmix's own writers all go through ``mkstemp`` (0600)
    and ``mkdtemp`` (0700), whose modes do not depend on it.

    Returns
    -------
    int
        The mask's permission bits.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        mask = os.umask(0)
        os.umask(mask)
    return mask


def rename_into_place(staging: Path, directory: Path) -> None:
    """Rename a finished staging folder to ``directory``. When another run created ``directory`` in the
    meantime (two commands into the same new --out at once), this run's output is discarded and the error
    says so in one line: the other run's folder is left as it is.

    Parameters
    ----------
    staging : Path
    directory : Path

    Raises
    ------
    CouponmixError
        Another run created ``directory`` meanwhile.
    OSError
        Any other failure to rename.
    """
    try:
        os.rename(staging, directory)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) or (directory.exists() and any(directory.iterdir())):
            raise CouponmixError(
                f"{directory} was written by another run at the same time; this run's output was discarded (give each run its own --out)"
            ) from None
        raise


def _write_new_folder(directory: Path, files: Mapping[str, bytes | str]) -> list[Path]:
    """A new folder: assembled under a temporary name beside it, marked, and renamed into place in one step."""
    clean_stale_staging(directory)
    staging = new_staging(directory)
    try:
        mark(staging, staging=True)
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes it private; reports are meant to be shared
        for name, data in files.items():
            (staging / name).write_bytes(data.encode() if isinstance(data, str) else data)
        mark(staging, files=files)
        rename_into_place(staging, directory)
        end_staging(staging, remove=False)
    except BaseException:
        end_staging(staging, remove=True)
        raise
    return [directory / name for name in files]


def write_outputs(directory, files: Mapping[str, bytes | str], retire: Iterable[str] = ()) -> list[Path]:
    """Write every file of ``files`` into ``directory`` atomically.

    A new directory is assembled under a temporary name beside it and renamed into place in one step. Into an existing
    directory each file is written to a temporary name and renamed; the files are renamed in the order given, so put the
    one that marks completion (summary.json) last. If any rename fails, the files already renamed get their previous
    version back (kept as hard links until the end), so the files change together or not at all; only a SIGKILL between
    two renames can leave a mixed pair, and ``batch`` rebuilds both on its next run.

    Parameters
    ----------
    directory : str or Path
    files : mapping of str to bytes or str
        File name -> content (text written as UTF-8).
    retire : iterable of str
        Outputs an earlier run may have written that this one does not (an optional figure): each is removed after the
        renames when the folder's marker lists it as couponmix's, never otherwise.

    Returns
    -------
    list of Path

    Raises
    ------
    CouponmixError
        As ``check_output_dir``, or a file of ``files`` in a folder couponmix did not write.
    """
    directory = check_output_dir(directory)
    parent = directory.parent
    parent.mkdir(parents=True, exist_ok=True)
    if not directory.exists():
        return _write_new_folder(directory, files)
    if not owned(directory):  # a folder of someone else's: add files, never replace one
        check_replaceable(directory, files)
        if not any(directory.iterdir()):
            mark(directory)
    written = manifest(directory)
    temps: list[tuple[str, Path]] = []
    backups: list[tuple[str, Path]] = []  # hard links to the files being replaced, to put back on failure
    replaced: list[Path] = []
    try:
        for name, data in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.tmp-", dir=directory)
            temps.append((tmp, directory / name))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data.encode() if isinstance(data, str) else data)
            os.chmod(tmp, 0o666 & ~current_umask())
        for _, final in temps:
            if final.is_file():
                backup = tempfile.mktemp(prefix=f".{final.name}.tmp-", dir=directory)
                os.link(final, backup)
                backups.append((backup, final))
        for tmp, final in temps:
            os.replace(tmp, final)
            replaced.append(final)
    except BaseException:
        # together or not at all: the files already renamed get their previous version back
        kept = {final for _, final in backups}
        for final in replaced:
            if final not in kept and final.exists():
                os.unlink(final)
        for backup, final in backups:
            if final in replaced:
                os.replace(backup, final)
            else:  # still the same file (rename between two links of one file would do nothing)
                os.unlink(backup)
        for tmp, _ in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise
    for backup, _ in backups:
        os.unlink(backup)
    if owned(directory):
        gone = {name for name in retire if name not in files and written is not None and name in written}
        for name in sorted(gone):
            if (directory / name).is_file():
                os.unlink(directory / name)
        mark(directory, files=((written or set()) - gone) | set(files))
    return [final for _, final in temps]

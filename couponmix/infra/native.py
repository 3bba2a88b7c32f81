"""Native code couponmix builds for itself on this machine, and the one place it may load it from.

Two kinds of native library speed couponmix up, each with a pure-Python fallback that gives the same results
to rounding: LightGBM models compiled by lleaves (``couponmix.policy.compiled``) and the exact engine's fused
moment sums (``couponmix.ope.fused``), a C file compiled here with the machine's C compiler. Both keep their
library in the model cache (``couponmix.infra.cache``) under a key that names everything the code depends on.

A library is native code: it is loaded only from a file this user owns, that no one else can write, in a cache
folder no one else can write, and whose SHA-256 matches the one recorded beside it when it was built. Anything
else (a cache folder shared by mistake, a damaged file) is rebuilt into a fresh file, or, where that fails,
the fallback runs. ``COUPONMIX_COMPILED=off`` turns every native path off.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import platform
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from couponmix.infra import cache

__all__ = ["enabled", "private", "sha256_file", "store", "trusted", "load_c"]

#: flags of every C build: no contraction of a * b + c into one rounding and no reordering of sums, so a
#: library gives the same results on any x86 or ARM machine; -march=native only widens the vectors
C_FLAGS = ("-O3", "-std=c99", "-ffp-contract=off", "-fno-math-errno", "-fPIC", "-shared")
#: a C build that takes longer than this is abandoned (the fallback runs)
BUILD_TIMEOUT = 120.0


def enabled() -> bool:
    """False when the environment variable COUPONMIX_COMPILED is off, 0, no or false; True otherwise (the default)."""
    return os.environ.get("COUPONMIX_COMPILED", "on").lower() not in ("off", "0", "no", "false")


def private(path: Path) -> bool:
    """A regular file or folder owned by this user that no one else can write (not a link).

    Parameters
    ----------
    path : Path

    Returns
    -------
    bool
    """
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if stat.S_ISLNK(st.st_mode) or st.st_uid != os.getuid():
        return False
    return not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex).

    Parameters
    ----------
    path : Path

    Returns
    -------
    str
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def trusted(root: Path, lib: Path, meta: Path) -> bool:
    """The cached library ``lib`` may be loaded: the cache is on, the folder, the library and its record are
    private (``private``) and the library's SHA-256 is the one its record holds.

    Parameters
    ----------
    root : Path
        The cache folder.
    lib, meta : Path
        The library and its JSON record ``{"sha256": ...}``.

    Returns
    -------
    bool
    """
    if not (cache.enabled() and private(root) and private(lib) and private(meta)):
        return False
    try:
        return json.loads(meta.read_text()).get("sha256") == sha256_file(lib)
    except (OSError, ValueError, AttributeError):
        return False


def store(root: Path, built: Path, lib: Path, meta: Path) -> None:
    """Copy a built library into the cache (mode 0600, renamed into place) with its SHA-256 record; skipped when
    the cache is off or the copy cannot be made.

    Parameters
    ----------
    root : Path
        The cache folder (created when missing).
    built : Path
        The library as built, in a temporary folder.
    lib, meta : Path
        Where the library and its record go, inside ``root``.
    """
    if not cache.enabled():
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
        if not private(root):
            return
        digest = sha256_file(built)
        for final, data in ((lib, built.read_bytes()), (meta, json.dumps({"sha256": digest}).encode())):
            fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.tmp-", dir=root)
            with os.fdopen(fd, "wb") as fh:  # mkstemp makes it 0600
                fh.write(data)
            os.replace(tmp, final)
    except OSError:
        pass


def _compiler() -> tuple[str, str] | None:
    """The C compiler on PATH (gcc, else cc, else clang) and the first line of its ``--version``; None without one."""
    for name in ("gcc", "cc", "clang"):
        path = shutil.which(name)
        if path is None:
            continue
        try:
            done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=True)
        except (OSError, subprocess.SubprocessError):
            continue
        return path, (done.stdout.splitlines() or [""])[0]
    return None


def _cpu() -> str:
    """What the host CPU can run (its model and flags from /proc/cpuinfo where there is one): -march=native
    builds differ between CPUs, so the cache key names it."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    keep = [line for line in text.splitlines() if line.startswith(("model name", "flags", "Features", "CPU part"))]
    return "\n".join(sorted(set(keep)))


def _compile(cc: str, src: Path, out: Path) -> bool:
    """Compile ``src`` into the shared library ``out``, with -march=native where the compiler takes it."""
    for extra in (("-march=native",), ()):
        try:
            subprocess.run([cc, *C_FLAGS, *extra, str(src), "-o", str(out), "-lm"], capture_output=True, timeout=BUILD_TIMEOUT, check=True)
            return True
        except (OSError, subprocess.SubprocessError):
            continue
    return False


def load_c(name: str, source: str) -> ctypes.CDLL | None:
    """The shared library of the C ``source``, loaded: from the cache when a trusted copy is there (``trusted``),
    else compiled now (and stored when the cache is on). None when native code is off, there is no C compiler,
    or building or loading fails: the caller runs its fallback.

    Parameters
    ----------
    name : str
        A short name for the library's files (``native-<name>-<key>.so``).
    source : str
        The C code.

    Returns
    -------
    ctypes.CDLL or None
        Its functions release the GIL while they run.
    """
    if not enabled():
        return None
    found = _compiler()
    if found is None:
        return None
    cc, version = found
    meta_key = json.dumps({"compiler": version, "flags": C_FLAGS, "cpu": _cpu(), "machine": platform.machine()}, sort_keys=True)
    key = hashlib.sha256((meta_key + "\n" + source).encode()).hexdigest()
    root = cache.cache_dir()
    lib, meta = root / f"native-{name}-{key}.so", root / f"native-{name}-{key}.json"
    if trusted(root, lib, meta):
        try:
            return ctypes.CDLL(str(lib))
        except OSError:
            pass
    with tempfile.TemporaryDirectory(prefix=f"couponmix-{name}-") as tmp:
        src, built = Path(tmp) / f"{name}.c", Path(tmp) / f"{name}.so"
        src.write_text(source)
        if not _compile(cc, src, built):
            return None
        store(root, built, lib, meta)
        try:
            return ctypes.CDLL(str(lib) if trusted(root, lib, meta) else str(built))  # mapped: outlives the folder
        except OSError:
            return None

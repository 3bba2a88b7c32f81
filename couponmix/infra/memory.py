"""Allocator tuning for the chunked loops.

numpy allocates each large temporary (above glibc's 128 KiB mmap threshold) with mmap and returns it
with munmap, so every block of customers pays fresh page faults for every array: measured here, 2 ms
of a 2.3 ms policy evaluation on 65,536 customers. Raising the mmap threshold (to glibc's maximum,
32 MiB) and the trim threshold lets freed blocks be reused, which makes simulation about 1.5x faster.
Memory stays bounded: the loops reuse the same few chunk-sized blocks. glibc only; elsewhere a no-op.
Applied only in couponmix's own processes (the CLI and its worker processes), never to a host process
such as a notebook that imports couponmix as a library.
"""

from __future__ import annotations

import ctypes
import ctypes.util

__all__ = ["M_TRIM_THRESHOLD", "M_MMAP_THRESHOLD", "MMAP_THRESHOLD", "TRIM_THRESHOLD", "tune_allocator", "available_bytes"]

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 512 * 1024 * 1024
_tuned = False


def tune_allocator() -> bool:
    """Apply the settings once per process; True if glibc accepted them."""
    global _tuned
    if _tuned:
        return True
    try:
        try:
            libc = ctypes.CDLL("libc.so.6")
        except OSError:  # find_library runs ldconfig in a subprocess: only when the usual name fails
            libc = ctypes.CDLL(ctypes.util.find_library("c"))
        ok = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    except (OSError, AttributeError):
        return False
    _tuned = ok
    return ok


def available_bytes() -> int | None:
    """Memory the system can give without swapping (Linux's MemAvailable), or None where unknown.

    Returns
    -------
    int or None
        Bytes.
    """
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None

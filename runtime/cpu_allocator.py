"""Keep the C allocator's memory across CPU synthesis calls (glibc `mallopt`), so batches pay.

glibc serves blocks above M_MMAP_THRESHOLD with their own mmap and unmaps them on free, and trims the
heap top above M_TRIM_THRESHOLD: a CPU synthesis call then faults every page of its large activations
in again on every call. On sg3r_256 at batch 4 that was about 65,600 page faults and 140.6 ms per image
against 47.8 ms one image at a time (issue 13). With mmap off and no trimming, freed blocks stay in the
heap and the next call reuses them (0 faults). The cost: the process keeps its peak heap until it exits
(the memory a batch needed once is not given back to the OS). M_ARENA_MAX is left alone: threads keep
their own arenas.

Applied once per process by the torch runtime on a CPU, on glibc Linux only (a no-op elsewhere, e.g.
musl, macOS, Windows). Set SG3RT_KEEP_CPU_MEMORY=0 to leave the allocator as it is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

# mallopt parameter numbers from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1  # heap top kept before free() gives it back to the OS
M_MMAP_MAX = -4  # most blocks served by their own mmap at once; 0 = every block from the heap
KEEP_TRIM_THRESHOLD = 2**31 - 1  # the largest int mallopt takes: in practice, never trim
ENV_SWITCH = "SG3RT_KEEP_CPU_MEMORY"  # "0" leaves glibc's defaults

_applied: dict[str, int] | None = None  # the settings made, once per process ({} where none)


def _glibc():
    """The C library as a ctypes handle when it is glibc (it has mallopt and gnu_get_libc_version), else None."""
    if platform.system() != "Linux":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.gnu_get_libc_version  # only glibc has it
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def keep_cpu_memory() -> dict[str, int]:
    """Turn off glibc's per-block mmap and heap trimming, once per process; returns the settings made
    ({} on a non-glibc system, when SG3RT_KEEP_CPU_MEMORY=0, or if glibc refused them)."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = {}
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return _applied
    libc = _glibc()
    if libc is None:
        return _applied
    for name, param, value in (("M_MMAP_MAX", M_MMAP_MAX, 0), ("M_TRIM_THRESHOLD", M_TRIM_THRESHOLD, KEEP_TRIM_THRESHOLD)):
        if libc.mallopt(param, value) == 1:  # mallopt returns 1 on success
            _applied[name] = value
    return _applied

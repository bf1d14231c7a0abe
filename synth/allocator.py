"""The synthesizing process's memory allocator: keep freed tensor buffers in the heap.

glibc serves every allocation over 128 KiB-32 MiB with its own mmap and returns it to the kernel on free,
so each forward pass maps, faults in and unmaps its activations again: on CPU a padded batch spent more
time in the kernel than in the model (bench/batching.py). Turning mmap off and trimming only past a very
high watermark keeps those pages mapped for the next pass. It is done here, with mallopt at engine load,
so every launch of a worker (Procfile, local provider, pods, images) gets it without an environment entry.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# mallopt parameters from glibc's malloc.h.
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
#: Free heap kept before any is trimmed (mallopt takes an int: 2 GiB, far above what a pass frees).
TRIM_THRESHOLD = 2**31 - 1

_tuned: bool | None = None


def tune_for_synthesis() -> bool:
    """Make glibc keep freed memory for reuse (once per process); False where glibc's malloc is not the
    one in use (another allocator preloaded, or a libc without mallopt)."""
    global _tuned
    if _tuned is None:
        _tuned = _mallopt(M_MMAP_MAX, 0) and _mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return _tuned


def preloaded_allocator() -> str | None:
    """The allocator library LD_PRELOAD puts in front of glibc's malloc (jemalloc, tcmalloc), if any."""
    preload = os.environ.get("LD_PRELOAD", "")
    names = [p for p in preload.replace(":", " ").split() if "malloc" in os.path.basename(p)]
    return names[0] if names else None


def _mallopt(param: int, value: int) -> bool:
    if preloaded_allocator() is not None:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(param, value) == 1

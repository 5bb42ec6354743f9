"""Give the allocator's free heap pages back to the system (glibc ``malloc_trim``).

A window's evaluation allocates and frees megabytes of small and medium blocks; glibc keeps
the freed pages of its heap for reuse, and with many models the pages freed between two
windows' evaluations are rarely the top of the heap, so RSS kept ~1.7 MB a model (20 features)
more than the live data (bench/models.py prints RSS before and after a trim). The daemon
trims after each checkpoint (every ``state.checkpoint_interval``): a few ms.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
        return trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim this way
        return None


_TRIM = _malloc_trim()


def release_free_heap() -> bool:
    """Return free heap pages to the system; False where the C library has no ``malloc_trim``."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True

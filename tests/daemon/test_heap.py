"""Free heap pages go back to the system after a trim (glibc; elsewhere the call says it did nothing)."""

from __future__ import annotations

import os

from driftwarden.daemon.heap import release_free_heap


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_trim_returns_freed_heap_pages() -> None:
    keep = [bytearray(1024) for _ in range(60_000)]  # ~60 MB of malloc'd (not mmap'd) blocks
    pin = bytearray(1024)  # allocated last: the freed blocks below it are not the top of the heap
    before = _rss()
    del keep[:]
    freed = _rss()
    if not release_free_heap():
        return  # not glibc
    after = _rss()
    assert before - after > 30 * 2**20, (before, freed, after)
    assert len(pin) == 1024

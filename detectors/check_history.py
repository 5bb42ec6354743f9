"""The last evaluations of each check of a model: (window end, statistic, threshold, degraded).

Kept for reports and ``driftwarden status`` (the last ``maxlen`` per check). One small
ring per check instead of a deque of 4-item lists (a list and three float objects an
evaluation: ~270 kB a model of 30 checks x 50 evaluations). A row is 17 bytes: the window
end as float64 (event time needs it), the statistic and threshold as float32 (shown to their
7 significant digits: what a report plots and prints), degraded as a bool; float64 rows of
4 were 32 bytes (~175 kB a model of ~110 checks).

>>> h = CheckHistory(2)
>>> for end in (1.0, 2.0, 3.0):
...     h.append("data_drift/cusum/x", end, end / 10, 0.5, end > 2)
>>> h.entries()
{'data_drift/cusum/x': [[2.0, 0.2, 0.5, False], [3.0, 0.3, 0.5, True]]}
>>> h.append("data_drift/cusum/x", 4.0, 1 / 3, 9.80665432, False); h.rows("data_drift/cusum/x")[-1]
[4.0, 0.3333333, 9.806654, False]
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

ROW = np.dtype([("window_end", "<f8"), ("statistic", "<f4"), ("threshold", "<f4"), ("degraded", "?")])
RAW = np.dtype(f"V{ROW.itemsize}")  # a row as 17 opaque bytes: numpy gathers these ~5x faster than the records


F32_MAX = float(np.finfo(np.float32).max)


def _narrow(x: float) -> float:
    """``x`` within float32's range (beyond it: +-inf, as float32 would say, without numpy's warning)."""
    return x if -F32_MAX <= x <= F32_MAX or x != x else float("inf") if x > 0 else float("-inf")


def _shown(values: np.ndarray) -> list[float]:
    """float32 values as the floats of their 7 significant digits (0.2, not 0.20000000298)."""
    return [float(f"{v:.7g}") for v in values.tolist()]


def _listed(rows: np.ndarray) -> list[list[Any]]:
    """ROW records as [window_end, statistic, threshold, degraded] lists."""
    return [list(r) for r in zip(rows["window_end"].tolist(), _shown(rows["statistic"]), _shown(rows["threshold"]),
                                 rows["degraded"].tolist(), strict=True)]


GROW = 16  # checks the tables grow by when a new one appears (a model has ~110)
PARTS = 5  # chunks a full ring takes: a check takes them one at a time, as its evaluations come


class CheckHistory:
    """Per check key, its last ``maxlen`` evaluations in order (oldest first).

    Every check's rows live in one pool of chunks of ``maxlen / PARTS`` rows, and a check
    takes its next chunk when its evaluations reach it: memory follows the evaluations kept.
    A ring of ``maxlen`` rows a check, allocated with the check's first evaluation, made a
    model's history ~94 KiB (110 checks x 50 rows) at its first window, most of it for rows
    that come 50 windows later or, in a fleet of models that see few events, never. Not an
    array and an int object a check either: their ~110 headers and small blocks a model were
    ~20 KB more, scattered over the heap between the events' short-lived ones.
    """

    def __init__(self, maxlen: int) -> None:
        self.maxlen = maxlen
        self.chunk = -(-maxlen // PARTS)  # rows a chunk holds
        self._index: dict[str, int] = {}  # key -> its row in _chunks and _counts, in the order keys appeared
        # per check: its chunks in the pool, in ring order (-1: not taken yet), and the evaluations
        # appended to it (the ring's next slot is count % maxlen)
        self._chunks, self._counts = self._room(0)
        self._pool = np.empty((0, self.chunk), dtype=ROW)
        self._used = 0  # chunks of the pool taken

    def __len__(self) -> int:
        return len(self._index)

    def _row(self, key: str) -> int:
        i = self._index.get(key)
        if i is None:
            i = self._index[key] = len(self._index)
            if i == len(self._counts):  # room for GROW more checks
                chunks, counts = self._room(i + 1)
                chunks[:i], counts[:i] = self._chunks, self._counts
                self._chunks, self._counts = chunks, counts
        return i

    def _room(self, checks: int) -> tuple[np.ndarray, np.ndarray]:
        """Chunk tables (none taken) and counts (0) for ``checks`` checks, rounded up to GROW."""
        rows = -(-checks // GROW) * GROW
        return np.full((rows, -(-self.maxlen // self.chunk)), -1, dtype=np.int32), np.zeros(rows, dtype=np.int64)

    def _slot(self, i: int, slot: int) -> tuple[int, int]:
        """Where check ``i``'s ring slot is in the pool (chunk, row), its chunk taken if it had none."""
        part, row = divmod(slot, self.chunk)
        c = int(self._chunks[i, part])
        if c < 0:
            if self._used == len(self._pool):  # a quarter more (copying the pool is rare: chunks are never freed)
                pool = np.empty((self._used + max(GROW, self._used // 4), self.chunk), dtype=ROW)
                pool[: self._used] = self._pool
                self._pool = pool
            c = self._chunks[i, part] = self._used
            self._used += 1
        return c, row

    def append(self, key: str, window_end: float, statistic: float, threshold: float, degraded: bool) -> None:
        i = self._row(key)
        n = int(self._counts[i])
        at = self._slot(i, n % self.maxlen)  # before self._pool is read: taking a chunk may grow it
        self._pool[at] = (window_end, _narrow(statistic), _narrow(threshold), degraded)
        self._counts[i] = n + 1

    def _raw(self) -> np.ndarray:
        """The pool's rows, flat, as RAW."""
        return self._pool.reshape(-1).view(RAW)

    def _where(self, checks: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """Flat pool positions of the (check, ring slot) pairs given (their chunks taken)."""
        part, row = np.divmod(slots, self.chunk)
        return self._chunks[checks, part].astype(np.int64) * self.chunk + row

    def _ordered(self) -> tuple[np.ndarray, np.ndarray]:
        """Every check's rows oldest first, one after the other (ROW records), and how many each has."""
        k = len(self._index)
        n = self._counts[:k]
        kept = np.minimum(n, self.maxlen)
        if not self._used:
            return np.empty(0, ROW), kept
        cap = self._chunks.shape[1] * self.chunk
        # every check's ring in slot order, its chunks side by side (those not taken: some other chunk, not read)
        rings = self._pool.view(np.dtype(f"V{ROW.itemsize * self.chunk}"))[self._chunks[:k], 0].reshape(-1).view(RAW)
        oldest = np.where(n > self.maxlen, n % self.maxlen, 0) - np.cumsum(kept) + kept  # ring's oldest slot - start
        nth = np.arange(int(kept.sum())) + np.repeat(oldest, kept)  # within each check: oldest slot + 0, 1, ...
        nth[nth >= self.maxlen] -= self.maxlen
        return rings[np.repeat(np.arange(k) * cap, kept) + nth].view(ROW), kept

    def stored(self, key: str) -> np.ndarray:
        """The evaluations of ``key``, oldest first, as stored (ROW records)."""
        i, n = self._index[key], int(self._counts[self._index[key]])
        oldest = n % self.maxlen if n > self.maxlen else 0
        slots = (oldest + np.arange(min(n, self.maxlen))) % self.maxlen
        return self._raw()[self._where(np.full(len(slots), i), slots)].view(ROW)

    def rows(self, key: str) -> list[list[Any]]:
        """The evaluations of ``key``, oldest first, as [window_end, statistic, threshold, degraded]."""
        return _listed(self.stored(key))

    def entries(self) -> dict[str, list[list[Any]]]:
        """Every check's evaluations (JSON-safe, NaN aside): what reports show (and earlier checkpoints held)."""
        rows, kept = self._ordered()
        listed = _listed(rows)
        ends = np.cumsum(kept).tolist()
        return {k: listed[end - count : end] for k, count, end in zip(self._index, kept.tolist(), ends, strict=True)}

    def state(self) -> dict[str, Any]:
        """The rows as stored (exact: float32 statistics as float32), every check's oldest first, in one
        base64 string: ~0.1 ms a model of ~110 checks, where :meth:`entries` (a list of 4 a row) takes ~1 ms.

        >>> h = CheckHistory(2)
        >>> h.append("a/b/x", 1.0, 0.1, 0.5, True)
        >>> g = CheckHistory(2); g.load(h.state()); g.entries() == h.entries()
        True
        """
        rows, kept = self._ordered()
        return {"keys": list(self._index), "counts": kept.tolist(), "rows": base64.b64encode(rows.tobytes()).decode()}

    def load(self, state: dict[str, Any]) -> None:
        """From :meth:`state`, or from :meth:`entries` (what checkpoints of earlier versions hold)."""
        self.__init__(self.maxlen)  # type: ignore[misc]
        if set(state) == {"keys", "counts", "rows"} and isinstance(state["rows"], str):
            data = np.frombuffer(base64.b64decode(state["rows"]), dtype=ROW)
            counts = np.asarray(state["counts"], dtype=np.int64)
            kept = np.minimum(counts, self.maxlen)  # a shorter history in the config keeps each check's newest
            first = np.cumsum(counts) - kept
            nth = np.arange(int(kept.sum())) - np.repeat(np.cumsum(kept) - kept, kept)
            rows = data[np.repeat(first, kept) + nth]
            for key in state["keys"]:
                self._row(key)
            k = len(state["keys"])
            parts = -(-kept // self.chunk)  # each check's chunks, in the pool one check after the other
            self._pool = np.empty((int(parts.sum()), self.chunk), dtype=ROW)
            self._used = len(self._pool)
            taken = np.arange(self._chunks.shape[1]) < parts[:, None]
            self._chunks[:k][taken] = np.arange(self._used)
            self._counts[:k] = kept
            self._raw()[self._where(np.repeat(np.arange(k), kept), nth)] = rows.view(RAW)
            return
        for key, entries in state.items():
            for window_end, statistic, threshold, degraded in entries[-self.maxlen :]:
                self.append(key, window_end, statistic, threshold, bool(degraded))

    def nbytes(self) -> int:
        """Bytes of the pool (chunks taken and room for more), the chunk tables and the counts."""
        return self._pool.nbytes + self._chunks.nbytes + self._counts.nbytes

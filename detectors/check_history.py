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


F32_MAX = float(np.finfo(np.float32).max)


def _narrow(x: float) -> float:
    """``x`` within float32's range (beyond it: +-inf, as float32 would say, without numpy's warning)."""
    return x if -F32_MAX <= x <= F32_MAX or x != x else float("inf") if x > 0 else float("-inf")


def _shown(values: np.ndarray) -> list[float]:
    """float32 values as the floats of their 7 significant digits (0.2, not 0.20000000298)."""
    return [float(f"{v:.7g}") for v in values.tolist()]


GROW = 16  # checks the rows grow by when a new one appears (a model has ~110)


class CheckHistory:
    """Per check key, its last ``maxlen`` evaluations in order (oldest first).

    One array holds every check's ring (a row of ``maxlen`` evaluations a check) and one its
    counts: not an array and an int object a check, whose ~110 headers and small blocks a
    model were ~20 KB more, scattered over the heap between the events' short-lived ones.
    """

    def __init__(self, maxlen: int) -> None:
        self.maxlen = maxlen
        self._index: dict[str, int] = {}  # key -> its row in _rings and _counts, in the order keys appeared
        # evaluations appended to each check (the ring's next slot is count % maxlen)
        self._rings, self._counts = self._room(0)

    def __len__(self) -> int:
        return len(self._index)

    def _row(self, key: str) -> int:
        i = self._index.get(key)
        if i is None:
            i = self._index[key] = len(self._index)
            if i == len(self._rings):  # room for GROW more checks
                rings, counts = self._room(i + 1)
                rings[:i], counts[:i] = self._rings, self._counts
                self._rings, self._counts = rings, counts
        return i

    def _room(self, checks: int) -> tuple[np.ndarray, np.ndarray]:
        """Rings and counts for ``checks`` checks, rounded up to GROW (counts 0)."""
        rows = -(-checks // GROW) * GROW
        return np.empty((rows, self.maxlen), dtype=ROW), np.zeros(rows, dtype=np.int64)

    def append(self, key: str, window_end: float, statistic: float, threshold: float, degraded: bool) -> None:
        i = self._row(key)
        n = int(self._counts[i])
        self._rings[i, n % self.maxlen] = (window_end, _narrow(statistic), _narrow(threshold), degraded)
        self._counts[i] = n + 1

    def rows(self, key: str) -> list[list[Any]]:
        """The evaluations of ``key``, oldest first, as [window_end, statistic, threshold, degraded]."""
        ring = self._ordered(key)
        return [list(r) for r in zip(ring["window_end"].tolist(), _shown(ring["statistic"]), _shown(ring["threshold"]),
                                     ring["degraded"].tolist(), strict=True)]

    def entries(self) -> dict[str, list[list[Any]]]:
        """Every check's evaluations (JSON-safe, NaN aside): what reports show (and earlier checkpoints held)."""
        return {k: self.rows(k) for k in self._index}

    def state(self) -> dict[str, Any]:
        """The rows as stored (exact: float32 statistics as float32), every check's oldest first, in one
        base64 string: ~0.03 ms a model of ~110 checks, where :meth:`entries` (a list of 4 a row) took ~0.8 ms.

        >>> h = CheckHistory(2)
        >>> h.append("a/b/x", 1.0, 0.1, 0.5, True)
        >>> g = CheckHistory(2); g.load(h.state()); g.entries() == h.entries()
        True
        """
        keys = list(self._index)
        counts: list[int] = []
        parts: list[bytes] = []
        for k in keys:  # the rings' bytes in order (np.roll and np.concatenate of records cost ~20 us a check)
            i = self._index[k]
            n, ring = int(self._counts[i]), self._rings[i]
            cut = n % self.maxlen if n > self.maxlen else 0
            parts += (ring[cut : min(n, self.maxlen)].tobytes(), ring[:cut].tobytes())
            counts.append(min(n, self.maxlen))
        return {"keys": keys, "counts": counts, "rows": base64.b64encode(b"".join(parts)).decode()}

    def _ordered(self, key: str) -> np.ndarray:
        i = self._index[key]
        n, ring = int(self._counts[i]), self._rings[i]
        if n > self.maxlen:
            ring = np.roll(ring, -(n % self.maxlen))
        return ring[: min(n, self.maxlen)]

    def load(self, state: dict[str, Any]) -> None:
        """From :meth:`state`, or from :meth:`entries` (what checkpoints of earlier versions hold)."""
        self._index = {}
        self._rings, self._counts = self._room(0)
        if set(state) == {"keys", "counts", "rows"} and isinstance(state["rows"], str):
            data = np.frombuffer(base64.b64decode(state["rows"]), dtype=ROW)
            keys = state["keys"]
            self._rings, self._counts = self._room(len(keys))
            start = 0
            for i, (key, count) in enumerate(zip(keys, state["counts"], strict=True)):
                rows = data[start + max(0, count - self.maxlen) : start + count]
                start += count
                self._index[key] = i
                self._rings[i, : len(rows)] = rows
                self._counts[i] = len(rows)
            return
        for key, entries in state.items():
            for window_end, statistic, threshold, degraded in entries[-self.maxlen :]:
                self.append(key, window_end, statistic, threshold, bool(degraded))

    def nbytes(self) -> int:
        return self._rings.nbytes + self._counts.nbytes

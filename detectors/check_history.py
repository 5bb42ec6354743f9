"""The last evaluations of each check of a model: (window end, statistic, threshold, degraded).

Kept for reports and ``driftwarden status`` (the last ``maxlen`` per check). One small
float64 ring per check instead of a deque of 4-item lists (a list and three float
objects an evaluation: ~270 kB a model of 30 checks x 50 evaluations, ~50 kB here).

>>> h = CheckHistory(2)
>>> for end in (1.0, 2.0, 3.0):
...     h.append("data_drift/cusum/x", end, end / 10, 0.5, end > 2)
>>> h.entries()
{'data_drift/cusum/x': [[2.0, 0.2, 0.5, False], [3.0, 0.3, 0.5, True]]}
"""

from __future__ import annotations

from typing import Any

import numpy as np


class CheckHistory:
    """Per check key, its last ``maxlen`` evaluations in order (oldest first)."""

    def __init__(self, maxlen: int) -> None:
        self.maxlen = maxlen
        self._rows: dict[str, np.ndarray] = {}  # key -> (maxlen, 4): window_end, statistic, threshold, degraded
        self._count: dict[str, int] = {}  # evaluations appended (the ring's next row is count % maxlen)

    def __len__(self) -> int:
        return len(self._rows)

    def append(self, key: str, window_end: float, statistic: float, threshold: float, degraded: bool) -> None:
        rows = self._rows.get(key)
        if rows is None:
            rows = self._rows[key] = np.empty((self.maxlen, 4), dtype=np.float64)
            self._count[key] = 0
        n = self._count[key]
        rows[n % self.maxlen] = (window_end, statistic, threshold, 1.0 if degraded else 0.0)
        self._count[key] = n + 1

    def rows(self, key: str) -> list[list[Any]]:
        """The evaluations of ``key``, oldest first, as [window_end, statistic, threshold, degraded]."""
        n, ring = self._count[key], self._rows[key]
        if n > self.maxlen:
            ring = np.roll(ring, -(n % self.maxlen), axis=0)
        return [[r[0], r[1], r[2], bool(r[3])] for r in ring[: min(n, self.maxlen)].tolist()]

    def entries(self) -> dict[str, list[list[Any]]]:
        """Every check's evaluations (JSON-safe, NaN aside): what ``state()`` stores."""
        return {k: self.rows(k) for k in self._rows}

    def load(self, entries: dict[str, list[list[Any]]]) -> None:
        self._rows.clear()
        self._count.clear()
        for key, rows in entries.items():
            for window_end, statistic, threshold, degraded in rows[-self.maxlen :]:
                self.append(key, window_end, statistic, threshold, bool(degraded))

    def nbytes(self) -> int:
        return sum(r.nbytes for r in self._rows.values())

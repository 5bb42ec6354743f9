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


class CheckHistory:
    """Per check key, its last ``maxlen`` evaluations in order (oldest first)."""

    def __init__(self, maxlen: int) -> None:
        self.maxlen = maxlen
        self._rows: dict[str, np.ndarray] = {}  # key -> maxlen rows of ROW
        self._count: dict[str, int] = {}  # evaluations appended (the ring's next row is count % maxlen)

    def __len__(self) -> int:
        return len(self._rows)

    def append(self, key: str, window_end: float, statistic: float, threshold: float, degraded: bool) -> None:
        rows = self._rows.get(key)
        if rows is None:
            rows = self._rows[key] = np.empty(self.maxlen, dtype=ROW)
            self._count[key] = 0
        n = self._count[key]
        rows[n % self.maxlen] = (window_end, _narrow(statistic), _narrow(threshold), degraded)
        self._count[key] = n + 1

    def rows(self, key: str) -> list[list[Any]]:
        """The evaluations of ``key``, oldest first, as [window_end, statistic, threshold, degraded]."""
        n, ring = self._count[key], self._rows[key]
        if n > self.maxlen:
            ring = np.roll(ring, -(n % self.maxlen))
        ring = ring[: min(n, self.maxlen)]
        return [list(r) for r in zip(ring["window_end"].tolist(), _shown(ring["statistic"]), _shown(ring["threshold"]),
                                     ring["degraded"].tolist(), strict=True)]

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

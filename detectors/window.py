"""A count-bounded window of named columns, filled by micro-batches, JSON-serializable.

>>> w = ColumnWindow(3)
>>> w.add({"x": np.array([1.0, 2.0])})
>>> w.room, w.take()["x"].tolist(), len(w)
(1, [1.0, 2.0], 0)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from driftwarden.detectors.base import decode_array, encode_array


class ColumnWindow:
    """Chunks of equal-length columns, at most ``capacity`` rows; ``take()`` empties it."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._chunks: list[dict[str, np.ndarray]] = []
        self._n = 0

    def __len__(self) -> int:
        return self._n

    @property
    def room(self) -> int:
        return self.capacity - self._n

    def add(self, columns: dict[str, np.ndarray]) -> None:
        n = len(next(iter(columns.values()))) if columns else 0
        if n > self.room:
            raise ValueError(f"window overflow: {n} rows for {self.room} free slots")
        if n:
            self._chunks.append(columns)
            self._n += n

    def columns(self) -> dict[str, np.ndarray]:
        """The rows as columns. A column some chunks lack (a batch without scores, say) is
        filled there with NaN (numeric) or None (object), so rows stay aligned."""
        if not self._chunks:
            return {}
        kinds: dict[str, np.dtype[Any]] = {}
        for chunk in self._chunks:
            for k, v in chunk.items():
                kinds.setdefault(k, v.dtype)
        out = {}
        for k, dtype in kinds.items():
            parts = []
            for c in self._chunks:
                if k in c:
                    parts.append(c[k])
                else:
                    n = len(next(iter(c.values())))
                    parts.append(np.full(n, None, dtype=object) if dtype.kind == "O" else np.full(n, np.nan))
            out[k] = np.concatenate(parts)
        return out

    def take(self) -> dict[str, np.ndarray]:
        out = self.columns()
        self._chunks, self._n = [], 0
        return out

    def state(self) -> dict[str, Any]:
        cols = self.columns()
        return {"capacity": self.capacity, "columns": {k: encode_column(v) for k, v in cols.items()}}

    def load_state(self, state: dict[str, Any]) -> None:
        self._chunks, self._n = [], 0
        cols = {k: decode_column(v) for k, v in state["columns"].items()}
        if cols:
            self.add(cols)


def encode_column(values: np.ndarray) -> dict[str, Any]:
    """Numeric columns as base64 (exact), object columns (str/None) as JSON lists."""
    if values.dtype.kind == "O":
        return {"dtype": "object", "values": [None if v is None else str(v) for v in values]}
    return encode_array(values)


def decode_column(blob: dict[str, Any]) -> np.ndarray:
    if blob["dtype"] == "object":
        out = np.empty(len(blob["values"]), dtype=object)
        out[:] = blob["values"]
        return out
    return decode_array(blob)

"""A count-bounded window of named columns, filled by micro-batches, JSON-serializable.

>>> w = ColumnWindow(3)
>>> w.add({"x": np.array([1.0, 2.0])})
>>> w.room, w.take()["x"].tolist(), len(w)
(1, [1.0, 2.0], 0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from driftwarden.detectors.base import decode_array, encode_array


class StoredRowsError(ValueError):
    """A checkpoint's stored window rows do not add up to what its state says (a gap, a count that differs)."""


class RowSpill(Protocol):
    """Where a window's earlier rows go while it fills (the daemon's: a file per model and window)."""

    def append(self, columns: dict[str, np.ndarray]) -> None:
        """Keep these rows (the arrays may be the caller's: write them out or copy them, now)."""

    def read(self, first: int = 0) -> list[dict[str, np.ndarray]]:
        """The rows appended since the last ``clear``, in order: one dict a call, from the ``first``-th call's on."""

    def clear(self) -> None: ...


class ColumnWindow:
    """Equal-length columns, at most ``capacity`` rows; ``take()`` empties it.

    Rows are copied into one buffer per column, grown by doubling up to ``capacity``: with
    many models in one process a model gets a few events per poll, and keeping each batch's
    slices as its own arrays (about 100 bytes of array header per column and batch, for a
    few rows of data) cost several times the data itself.

    With a ``spill``, every ``spill_every`` rows held in memory are handed to it and only the
    latest (fewer than ``spill_every``) stay: the rows come back, in order and aligned as if
    they had stayed (the same columns, dtypes and missing values), when the window is read.
    A thousand models' windows of 5,000 rows x 25 columns were ~1 MB a model in memory.
    """

    def __init__(self, capacity: int, spill: RowSpill | None = None, spill_every: int = 0) -> None:
        self.capacity = capacity
        self._cols: dict[str, np.ndarray] = {}
        self._n = 0  # rows in memory
        self._spill = spill if spill is not None and 0 < spill_every < capacity else None
        self._spill_every = spill_every
        self._spilled = 0  # rows handed to the spill
        self._parts: list[int] = []  # rows of each part handed to it, in order
        # rows of this window a checkpoint store holds (its first rows; see WindowRows); None: none of
        # this window's, whatever the store holds under its name is an earlier window's
        self._stored: int | None = None
        if self._spill is not None:
            self._spill.clear()

    def __len__(self) -> int:
        return self._spilled + self._n

    @property
    def room(self) -> int:
        return self.capacity - len(self)

    def add(self, columns: dict[str, np.ndarray]) -> None:
        n = len(next(iter(columns.values()))) if columns else 0
        if n > self.room:
            raise ValueError(f"window overflow: {n} rows for {self.room} free slots")
        if not n:
            return
        if self._spill is not None and self._n + n >= self._spill_every and self.room > n and self._spill_now(columns):
            return
        end = self._n + n
        for k, v in columns.items():
            buf = self._cols.get(k)
            if buf is None:  # new, or a column the earlier rows lack: missing there (NaN or None)
                buf = self._cols[k] = _missing(v.dtype, self._size(end)) if len(self) else np.empty(
                    self._size(end), v.dtype)
            else:
                dtype = np.result_type(buf.dtype, v.dtype)
                if end > buf.size or dtype != buf.dtype:
                    grown = _missing(dtype, self._size(end)) if dtype != buf.dtype else np.empty(
                        self._size(end), dtype)
                    grown[: self._n] = buf[: self._n]
                    buf = self._cols[k] = grown
            buf[self._n : end] = v
        for k, buf in self._cols.items():
            if k not in columns:  # this batch lacks a column the earlier rows have
                if buf.dtype.kind != "O" and buf.dtype != np.result_type(buf.dtype, np.float64):
                    buf = self._cols[k] = buf.astype(np.result_type(buf.dtype, np.float64))
                if end > buf.size:
                    grown = _missing(buf.dtype, self._size(end))
                    grown[: self._n] = buf[: self._n]
                    buf = self._cols[k] = grown
                buf[self._n : end] = None if buf.dtype.kind == "O" else np.nan
        self._n = end
        if self._spill is not None and self._n >= self._spill_every and self.room:
            self._spill.append({k: v[: self._n].copy() for k, v in self._cols.items()})
            self._spilled += self._n
            self._parts.append(self._n)
            self._n = 0
            # the columns and dtypes stay, their buffers go: regrown by doubling as rows come, a window
            # holds ~2/3 of a spill's rows on average instead of a full spill's rows for good
            self._cols = {k: v[:0].copy() for k, v in self._cols.items()}

    def _spill_now(self, columns: dict[str, np.ndarray]) -> bool:
        """Hand the rows in memory and ``columns`` to the spill as one part, not through the buffers.

        A model's coalesced batch is often a spill's worth alone: copied into buffers grown for it
        and copied out again, it cost ~3 allocations and 2 copies a column (at 200 models, 15 % of
        the loop's time). The part is the rows as they came; :meth:`rows_from` aligns parts whose
        columns differ. False (nothing done) when rows in memory lack or add a column: the buffers
        align those.
        """
        assert self._spill is not None
        if not self._n:
            self._spill.append(dict(columns))
        elif columns.keys() == self._cols.keys():
            self._spill.append({k: np.concatenate((buf[: self._n], columns[k])) for k, buf in self._cols.items()})
        else:
            return False
        self._parts.append(self._n + len(next(iter(columns.values()))))
        self._spilled += self._parts[-1]
        self._n = 0
        if columns.keys() == self._cols.keys() and all(
                not v.size and v.dtype == columns[k].dtype for k, v in self._cols.items()):
            return True  # no buffer, each column's dtype kept: as it was
        # no buffers, but each column's dtype as the buffers would have it (later rows are promoted alike)
        dtypes = {k: np.result_type(v.dtype, columns[k].dtype) if k in columns
                  else v.dtype if v.dtype.kind == "O" else np.result_type(v.dtype, np.float64)
                  for k, v in self._cols.items()}
        dtypes.update((k, v.dtype) for k, v in columns.items() if k not in dtypes)
        self._cols = {k: np.empty(0, dtype) for k, dtype in dtypes.items()}
        return True

    def _size(self, rows: int) -> int:
        """The buffer length for ``rows`` rows: doubled, at most the capacity."""
        size = 16
        while size < rows:
            size *= 2
        return min(size, self.capacity) if rows <= self.capacity else rows

    def columns(self) -> dict[str, np.ndarray]:
        """The rows as columns (copies). A column some batches lacked (a batch without scores,
        say) holds NaN (numeric) or None (object) in their rows, so rows stay aligned."""
        if self._spilled:
            return self.rows_from(0)
        return {k: v[: self._n].copy() for k, v in self._cols.items()} if self._n else {}

    def take(self) -> dict[str, np.ndarray]:
        """The rows as columns, and the window empty again (the buffers are handed over)."""
        if self._spilled:
            out = self.rows_from(0)
            assert self._spill is not None
            self._spill.clear()
        else:
            out = ({k: v if v.size == self._n else v[: self._n].copy() for k, v in self._cols.items()}
                   if self._n else {})
        self._cols, self._n, self._spilled, self._parts = {}, 0, 0, []
        self._stored = None
        return out

    def nbytes(self) -> int:
        """Bytes of the buffers in memory (object columns: their pointers only)."""
        return sum(v.nbytes for v in self._cols.values())

    def rows_from(self, start: int) -> dict[str, np.ndarray]:
        """The columns of the rows from row ``start`` on (copies), aligned as :meth:`columns`: spilled parts
        are added again in order to a window of their own, so parts whose columns differ line up."""
        if start >= len(self):
            return {}
        if start >= self._spilled:
            return {k: v[start - self._spilled : self._n].copy() for k, v in self._cols.items()}
        assert self._spill is not None
        first, at = 0, 0  # the part holding row ``start``, and its first row
        while at + self._parts[first] <= start:
            at += self._parts[first]
            first += 1
        tail = ColumnWindow(self.capacity)  # the parts from there on
        for i, part in enumerate(self._spill.read(first)):
            tail.add({k: v[start - at :] for k, v in part.items()} if i == 0 and start > at else part)
        if self._n:
            tail.add({k: v[: self._n] for k, v in self._cols.items()})
        return tail.take()

    def state(self) -> dict[str, Any]:
        cols = self.columns()
        return {"capacity": self.capacity, "columns": {k: encode_column(v) for k, v in cols.items()}}

    def load_state(self, state: dict[str, Any]) -> None:
        """The rows of :meth:`state`, or of a checkpoint store's ``parts`` (:class:`WindowRows`): then the
        store holds these rows (``stored_rows`` of them, else the state is refused)."""
        self._cols, self._n, self._spilled, self._parts, self._stored = {}, 0, 0, [], None
        if self._spill is not None:
            self._spill.clear()
        for part in state["parts"] if "parts" in state else [state["columns"]]:
            cols = {k: decode_column(v) for k, v in part.items()}
            if cols:
                self.add(cols)
        if "stored_rows" in state:
            if state["stored_rows"] != len(self):
                raise StoredRowsError(f"a window's stored rows are {len(self)}, its state says {state['stored_rows']}")
            self._stored = len(self)


class WindowRows:
    """A model's open windows in a checkpoint as rows appended, not as the whole window each time.

    A checkpoint of many models wrote each model's open windows whole, every time: up to
    ``window_size`` rows x every column, read back from the spill files, base64-encoded and
    compressed (at 50 models with windows of 5,000 nearly full, 685 KiB and 14 ms of CPU a model
    and checkpoint). :meth:`state` stands for a window in a model's state: a marker of its rows,
    and the rows the store lacks (those added since its last stored checkpoint, or all of them
    after the window closed or the store lost track) kept here for the checkpoint to write
    beside the state, in the same transaction. :meth:`stored` tells the windows once that
    transaction committed; until then a window's rows are sent again.
    """

    def __init__(self) -> None:
        self.parts: list[StoredPart] = []

    def state(self, name: str, window: ColumnWindow) -> dict[str, Any]:
        """The marker a model's state holds for ``window`` (its rows the store lacks go to :attr:`parts`)."""
        first = window._stored or 0
        rows = window.rows_from(first)
        self.parts.append(StoredPart(name, window, window._stored is None, first, len(window) - first,
                                     {k: encode_column(v) for k, v in rows.items()}))
        return {"capacity": window.capacity, "stored_rows": len(window)}

    def stored(self) -> None:
        """The checkpoint holding :attr:`parts` committed: each window's rows up to now are stored."""
        for part in self.parts:
            part.window._stored = part.first + part.rows


@dataclass
class StoredPart:
    """Rows of one open window for a checkpoint store: ``columns`` (encoded) are rows ``first`` on;
    ``rewrite``: the store's rows under ``name`` are an earlier window's (deleted first)."""

    name: str
    window: ColumnWindow
    rewrite: bool
    first: int
    rows: int
    columns: dict[str, Any]


def _missing(dtype: np.dtype[Any], size: int) -> np.ndarray:
    """A buffer of ``size`` missing values: None (object), else NaN (promoted as a float64 NaN would)."""
    if dtype.kind == "O":
        return np.full(size, None, dtype=object)
    return np.full(size, np.nan, dtype=np.result_type(dtype, np.float64))


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

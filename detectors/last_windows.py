"""Where a monitor keeps its last evaluated windows (the rows a root-cause report explains).

A :class:`ModelMonitor` hands each window it evaluated to a store and reads it back
only when a report is written. The default keeps the arrays in memory; the daemon
gives each model a store that keeps them in a file of its state directory instead
(``daemon.window_spill``): with a thousand models, two windows of 5,000 rows a model
held in memory were ~1.9 MB a model, read only by the rare report.

>>> store = InMemoryWindows()
>>> store.put("prediction", {"t": np.array([1.0, 2.0])})
>>> store.get("prediction")["t"].tolist(), store.get("outcome")
([1.0, 2.0], None)
>>> store.clear(); store.get("prediction") is None
True
"""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np

from driftwarden.detectors.window import RowSpill

# the last evaluated windows, and the last degraded blocks of a replay (``detectors.replay_steps``)
WindowKind = Literal["prediction", "outcome", "prediction_block", "outcome_block"]
Columns = dict[str, np.ndarray]


class LastWindows(Protocol):
    """The last evaluated window of each kind: ``put`` replaces it, ``get`` returns it (or None)."""

    def put(self, kind: WindowKind, columns: Columns) -> None: ...

    def get(self, kind: WindowKind) -> Columns | None: ...

    def clear(self) -> None: ...

    def nbytes(self) -> int:
        """Bytes held in memory (the bench's per-object figure)."""
        ...


class WindowStorage(Protocol):
    """What a monitor's windows may keep outside memory: the last evaluated windows (``last``)
    and the earlier rows of its open windows while they fill (``rows``; None: all in memory)."""

    @property
    def last(self) -> LastWindows: ...

    def rows(self, window: str) -> RowSpill | None: ...


class InMemoryWindows:
    """The columns themselves, kept as handed over (arrays the monitor never writes again)."""

    def __init__(self) -> None:
        self._windows: dict[WindowKind, Columns] = {}

    def put(self, kind: WindowKind, columns: Columns) -> None:
        self._windows[kind] = columns

    def get(self, kind: WindowKind) -> Columns | None:
        return self._windows.get(kind)

    def clear(self) -> None:
        self._windows.clear()

    def nbytes(self) -> int:
        return sum(v.nbytes for cols in self._windows.values() for v in cols.values())

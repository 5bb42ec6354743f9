"""A model's windows in files beside the state database, not in memory: with many models.

Two parts, both optional for a monitor (:class:`WindowFiles` gives both, from
:data:`SPILL_FROM` models in one process; with fewer, a model's windows are cheap to
hold and fastest in memory):

* the last evaluated windows (:class:`SpilledWindows`). A report explains the last
evaluated prediction and outcome windows; they are read
when a report is written, rarely, and were ~1.9 MB a model in memory (two windows
of 5,000 rows of 20 features). :class:`SpilledWindows` is the daemon's
:class:`~driftwarden.detectors.last_windows.LastWindows`: each ``put`` replaces one
file (written beside it, then renamed: a reader never sees half a window), ``get``
reads it back with the same dtypes and values. The files are not part of the
checkpoint: a monitor clears its store when it is built, so after a restart a
report uses the open windows, as it did when these were kept in memory.

* the rows of the open windows (:class:`SpilledRows`): the prediction and outcome windows and
the sequential checks' block; every few dozen rows a window holds
(:data:`~driftwarden.detectors.monitor.SPILL_ROWS`, a model's coalesced batch at once) go to the end
of its file, read back when the window closes or is checkpointed
(:class:`~driftwarden.detectors.window.ColumnWindow`).

>>> import tempfile
>>> import numpy as np
>>> store = SpilledWindows(Path(tempfile.mkdtemp()), "churn/eu")
>>> store.put("outcome", {"y_true": np.array(["1", None], dtype=object), "t": np.arange(2.0)})
>>> cols = store.get("outcome"); cols["y_true"].tolist(), cols["t"].dtype.name, store.nbytes()
(['1', None], 'float64', 0)
"""

from __future__ import annotations

import contextlib
import os
import pickle
from pathlib import Path
from typing import Any, get_args
from urllib.parse import quote

import numpy as np

from driftwarden.detectors.last_windows import Columns, InMemoryWindows, LastWindows, WindowKind

KINDS: tuple[WindowKind, ...] = get_args(WindowKind)


SPILL_FROM = 100  # models in one process from which their windows are kept in files


def spill_directory(state_path: Path) -> Path:
    """The directory of the window files that go with the state database ``state_path``."""
    return state_path.with_name(state_path.name + ".windows")


class SpilledWindows:
    """One model's last evaluated windows, one pickle file per kind under ``directory``."""

    def __init__(self, directory: Path, model_id: str) -> None:
        self.directory = directory
        self._stem = quote(model_id, safe="")  # any model id, one flat file name

    def _path(self, kind: WindowKind) -> Path:
        return self.directory / f"{self._stem}.{kind}.pickle"

    def put(self, kind: WindowKind, columns: Columns) -> None:
        """Write ``columns`` beside the kind's file, then move them in (the old file moved aside first).

        Not one ``os.replace`` over the old file: on ext4 (``auto_da_alloc``) a rename that
        replaces a file starts writing the new one to disk at once and waits for the device:
        0.4-2.4 s of a 6-9 s App.handle run of 100k predictions under I/O load (40 such
        puts); a put of a 5,000-row window took 3-4 ms (median, load 9), 1.6 ms this way.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(kind)
        tmp, aside = path.with_suffix(".tmp"), path.with_suffix(".old")
        with open(tmp, "wb") as f:
            pickle.dump(columns, f, protocol=pickle.HIGHEST_PROTOCOL)
        with contextlib.suppress(FileNotFoundError):  # the first window of the kind
            os.rename(path, aside)
        os.rename(tmp, path)
        aside.unlink(missing_ok=True)

    def get(self, kind: WindowKind) -> Columns | None:
        path = self._path(kind)
        for candidate in (path, path.with_suffix(".old"), path):  # a put moves the old file aside for a moment
            try:
                with open(candidate, "rb") as f:
                    columns: Columns = pickle.load(f)  # our own file in the state directory
            except FileNotFoundError:
                continue
            return columns
        return None

    def clear(self) -> None:
        for kind in KINDS:
            self._path(kind).unlink(missing_ok=True)
            self._path(kind).with_suffix(".old").unlink(missing_ok=True)

    def nbytes(self) -> int:
        return 0



class SpilledRows:
    """A window's spilled rows: pickled column blocks appended to one file, read back in order."""

    def __init__(self, directory: Path, model_id: str, window: str) -> None:
        self.directory = directory
        self.path = directory / f"{quote(model_id, safe='')}.open-{window}.pickle"
        self._offsets: list[int] = []  # where each part appended since the last clear starts in the file

    def append(self, columns: Columns) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as f:
            self._offsets.append(f.tell())  # the end: opened to append
            pickle.dump(_blocks(columns), f, protocol=pickle.HIGHEST_PROTOCOL)

    def read(self, first: int = 0) -> list[Columns]:
        """The parts appended, from the ``first``-th on (a checkpoint takes the newest rows: the earlier
        parts are not unpickled)."""
        parts: list[Columns] = []
        try:
            with open(self.path, "rb") as f:
                if first:
                    f.seek(self._offsets[first])
                while True:
                    try:
                        parts.append(_columns(pickle.load(f)))  # our own file in the state directory
                    except EOFError:
                        return parts
        except FileNotFoundError:
            return parts

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        self._offsets = []


# a part of a window's rows as pickled: its column names in order, the numeric columns of each dtype
# as the rows of one array, and the object columns
Blocks = tuple[list[str], list[tuple[list[str], np.ndarray]], Columns]


def _blocks(columns: Columns) -> Blocks:
    """``columns`` as one array per dtype: a pickle of one array, not of twenty (54 -> 11 us a part of
    70 rows x 21 float columns and a string column; a model's spill is written every few dozen rows).

    >>> order, blocks, objects = _blocks({"a": np.arange(2.0), "s": np.array(["x", None], dtype=object),
    ...                                   "b": np.ones(2)})
    >>> order, [(names, block.shape) for names, block in blocks], list(objects)
    (['a', 's', 'b'], [(['a', 'b'], (2, 2))], ['s'])
    """
    by_dtype: dict[np.dtype[Any], list[str]] = {}
    objects: Columns = {}
    for name, values in columns.items():
        if values.dtype.kind == "O":
            objects[name] = values
        else:
            by_dtype.setdefault(values.dtype, []).append(name)
    rows = len(next(iter(columns.values()))) if columns else 0
    blocks = [(names, np.concatenate([columns[n] for n in names]).reshape(len(names), rows))  # np.stack: 4x the time
              for names in by_dtype.values()]
    return list(columns), blocks, objects


def _columns(blocks: Blocks) -> Columns:
    """The columns :func:`_blocks` was given: the same names in order, dtypes and values."""
    order, numeric, objects = blocks
    out = dict(objects)
    for names, block in numeric:
        out.update(zip(names, block, strict=True))
    return {name: out[name] for name in order}


class WindowFiles:
    """A model's :class:`~driftwarden.detectors.last_windows.WindowStorage` under ``directory``: its
    last evaluated windows and its open windows' rows in files when ``spill`` (many models), else
    in memory.

    In memory, a put of the last window is a reference to arrays the monitor made anyway; in a file
    it was ~5 % of a single model's App.handle (a pickle of two 5,000-row windows per 5,000 events).
    """

    def __init__(self, directory: Path, model_id: str, spill: bool) -> None:
        self.directory, self.model_id, self.spill = directory, model_id, spill
        self._last: LastWindows = SpilledWindows(directory, model_id) if spill else InMemoryWindows()

    @property
    def last(self) -> LastWindows:
        return self._last

    def rows(self, window: str) -> SpilledRows | None:
        return SpilledRows(self.directory, self.model_id, window) if self.spill else None

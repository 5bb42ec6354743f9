"""Event time per model: a watermark per source, the model's clock the minimum over its sources.

Each model keeps its own clock (never one for the whole daemon: with 12 models in
one instance, the one whose events ran furthest made the 11 others look hours
stale). Within a model, each source (``predictions``, ``outcomes``) has a
watermark, the maximum event time seen on it, as in Kafka Streams and Flink; the
model's clock is the minimum over its sources, so that while both topics are read
from the start after downtime, outcomes running ahead of predictions do not make
the predictions look stale.

Two rules keep the clock honest:

- An event further in the future than ``future_tolerance`` (against the wall
  clock at the daemon's edge) never moves a watermark: it is a data-quality
  finding, and its time in the detectors' columns is replaced by the source's
  watermark (see :meth:`ModelClock.observe`).
- A source silent since ``idle_after`` seconds (wall time) before another source's
  latest event does not hold the clock back (outcomes of a model whose labels
  stopped, or that has none). Past the latest arrival the clock runs with the wall
  clock, so staleness while live is judged by wall time, and a replay of last
  week's events is not stale while it flows.

>>> c = ModelClock(idle_after=60, future_tolerance=3600)
>>> c.now(1000.0) is None                          # no event yet: no clock
True
>>> c.observe("predictions", np.array([100.0, 110.0]), wall=1000.0).tolist()
[100.0, 110.0]
>>> c.observe("outcomes", np.array([500.0]), wall=1000.0).tolist()   # outcomes read ahead
[500.0]
>>> c.now(1000.0), c.now(1030.0)                   # min over sources, then wall time runs
(110.0, 140.0)
>>> c.now(1100.0)                                  # both silent: the same min, + 100 s of wall time
210.0
>>> _ = c.observe("predictions", np.array([900.0]), wall=1300.0)  # outcomes silent for 300 s: not counted
>>> c.now(1300.0)
900.0
>>> c.observe("predictions", np.array([950.0, 1e9]), wall=1300.0).tolist()   # 1e9 is in the future
[950.0, 950.0]
>>> c.future
1
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from driftwarden.alerts.settings import Duration

SOURCES = ("predictions", "outcomes")


class EventTimeSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``event_time:`` in the YAML: how far ahead an event may be, and when a silent source stops counting."""

    future_tolerance: Duration = "1h"
    idle_after: Duration = "60s"


class _Source(msgspec.Struct):
    watermark: float | None = None  # max event time seen (future events excluded)
    arrived: float | None = None  # wall time of the last event that moved or met the watermark


class ModelClock:
    """The event clock of one model (time passed in: ``wall`` is the daemon edge's clock)."""

    def __init__(self, idle_after: float = 60.0, future_tolerance: float = 3600.0) -> None:
        if idle_after <= 0 or future_tolerance < 0:
            raise ValueError("idle_after must be > 0 and future_tolerance >= 0 seconds")
        self.idle_after = idle_after
        self.future_tolerance = future_tolerance
        self.sources = {name: _Source() for name in SOURCES}
        self.future = 0  # events refused as being in the future, since the start
        self._now = -np.inf
        self._settled = -np.inf
        self._first: float | None = None  # wall time of the model's first event (or of the restore)

    def observe(self, source: str, times: np.ndarray, wall: float) -> np.ndarray:
        """Move ``source``'s watermark with ``times``; return the times the detectors should use.

        Future events (beyond ``wall + future_tolerance``) keep their place in the stream
        but get the source's watermark as their time (the latest plausible one), so no
        window, bucket or alert is dated in the future. Count them with :meth:`count_future`.
        """
        if times.size == 0:
            return times
        s = self.sources[source]
        if self._first is None:
            self._first = wall
        future = times > wall + self.future_tolerance
        if future.any():
            self.future += int(future.sum())
            valid = times[~future]
            if valid.size:
                s.watermark = max(s.watermark if s.watermark is not None else -np.inf, float(valid.max()))
            fill = s.watermark if s.watermark is not None else wall
            times = np.where(future, fill, times)
            s.arrived = wall
            return times
        latest = float(times.max())
        s.watermark = latest if s.watermark is None else max(s.watermark, latest)
        s.arrived = wall
        return times

    @staticmethod
    def count_future(original: np.ndarray, used: np.ndarray) -> int:
        return int(np.count_nonzero(original != used))

    def now(self, wall: float) -> float | None:
        """The model's event time at wall time ``wall``; None before it has one.

        A source not heard from yet holds the clock (None) for ``idle_after`` after the
        model's first event, as an idle input holds a stream processor's watermark: read
        from the start, a model's outcomes may come before its first prediction, and a
        clock run ahead on them alone would call the predictions hours stale. Of the
        sources heard, those heard within ``idle_after`` of the latest arrival count (a
        source silent since long before the others, like outcomes of a model whose labels
        stopped, does not hold the clock back); the clock is the minimum of their
        watermarks, plus the wall time since that latest arrival. It never runs backwards.
        """
        counted = self._counted(wall)
        if counted is None:
            return None
        sources, latest = counted
        self._now = max(self._now, min(mark for mark, _ in sources) + max(0.0, wall - latest))
        return self._now

    def _counted(self, wall: float) -> tuple[list[tuple[float, float]], float] | None:
        """(watermark, arrival) of the sources that count at ``wall``, and the latest arrival;
        None while a source not heard from yet holds the clock (see :meth:`now`)."""
        heard = [(s.watermark, s.arrived) for s in self.sources.values()
                 if s.watermark is not None and s.arrived is not None]
        if not heard or self._first is None:
            return None
        if len(heard) < len(self.sources) and wall - self._first <= self.idle_after:
            return None
        latest = max(arrived for _, arrived in heard)
        return [(mark, arrived) for mark, arrived in heard if latest - arrived <= self.idle_after], latest

    def settled(self, wall: float) -> float | None:
        """Event time up to which every counted source has been read; None while a source is awaited.

        Unlike :meth:`now`, a source that is flowing counts with its watermark alone (no
        wall time added between polls), so what is decided before this time is final
        however the topics interleave; a source silent for ``idle_after`` is taken as
        caught up, and from then on its time runs with the wall clock.
        """
        counted = self._counted(wall)
        if counted is None:
            return None
        sources, _ = counted
        self._settled = max(self._settled, min(mark + max(0.0, wall - arrived - self.idle_after)
                                               for mark, arrived in sources))
        return self._settled

    def silent(self, source: str, wall: float) -> bool:
        """No event of ``source`` for more than ``idle_after`` (or never one)."""
        arrived = self.sources[source].arrived
        return arrived is None or wall - arrived > self.idle_after

    def watermark(self, source: str) -> float | None:
        return self.sources[source].watermark

    def state(self) -> dict[str, Any]:
        """Watermarks only: arrival times are wall time of this process and start afresh."""
        return {"watermarks": {k: s.watermark for k, s in self.sources.items()}, "future": self.future}

    def load_state(self, state: dict[str, Any], wall: float) -> None:
        for name, mark in (state.get("watermarks") or {}).items():
            if name in self.sources and mark is not None:
                self.sources[name] = _Source(float(mark), wall)
                self._first = wall
        self.future = int(state.get("future", 0))

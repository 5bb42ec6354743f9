"""Traffic: event rate vs its recent baseline, staleness, label coverage and label lag.

Predictions are counted per ``bucket_seconds`` of *event time*. ``tick(now)``
evaluates every bucket that ended at or before ``now`` (at most
``baseline_buckets`` of a long silent gap, which count as zero-event buckets).
Events of an already evaluated bucket are late: counted in ``late`` only
(before the first evaluation no bucket is late: the earliest one seen starts).

>>> t = TrafficMonitor()
>>> for b in range(4):
...     t.observe_predictions(np.full(300, b * 300.0))
>>> t.observe_predictions(np.full(30, 1200.0))
>>> [(f.detector, round(f.statistic, 2), f.degraded) for f in t.tick(1500.0)]
[('event_rate', 1.0, False), ('event_rate', 0.1, True), ('staleness', 300.0, False)]
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import msgspec
import numpy as np

from driftwarden.detectors.base import check_params, fmt, register
from driftwarden.detectors.findings import Finding
from driftwarden.detectors.settings import TRAFFIC_RANGES, TrafficSettings


@register("traffic")
class TrafficMonitor:
    """Rate, staleness and label-coverage checks of one model (time passed in).

    ``param_ranges`` covers the fields of ``settings``. Buckets are at least a
    millisecond, so that epoch timestamps in buckets stay within int64.
    """

    param_ranges: ClassVar[dict[str, tuple[float, float]]] = TRAFFIC_RANGES

    def __init__(self, settings: TrafficSettings | None = None) -> None:
        self.settings = settings or TrafficSettings()
        check_params(type(self).__name__, self.param_ranges, msgspec.structs.asdict(self.settings))
        self._counts: dict[int, int] = {}  # open prediction buckets
        self._labels: dict[int, list[int]] = {}  # prediction bucket -> [predictions, outcomes]
        self._history: list[int] = []  # counts of evaluated buckets, newest last
        self._next: int | None = None  # first bucket not yet evaluated
        self._evaluated = False  # has tick evaluated a bucket (only then can an event be late)
        self.last_event: float | None = None
        self.late = 0

    def _bucket(self, t: np.ndarray) -> np.ndarray:
        return np.floor(t / self.settings.bucket_seconds).astype(np.int64)

    def observe_predictions(self, timestamps: np.ndarray) -> None:
        if timestamps.size == 0:
            return
        b, c = np.unique(self._bucket(timestamps), return_counts=True)
        for bucket, count in zip(b.tolist(), c.tolist(), strict=True):
            if self._evaluated and self._next is not None and bucket < self._next:
                self.late += count
            else:
                self._counts[bucket] = self._counts.get(bucket, 0) + count
            if self.settings.min_label_coverage > 0:
                self._labels.setdefault(bucket, [0, 0])[0] += count
        if self._next is None or (not self._evaluated and int(b[0]) < self._next):
            self._next = int(b[0])
        latest = float(timestamps.max())
        self.last_event = latest if self.last_event is None else max(self.last_event, latest)

    def observe_outcomes(self, prediction_timestamps: np.ndarray) -> None:
        if self.settings.min_label_coverage <= 0 or prediction_timestamps.size == 0:
            return
        b, c = np.unique(self._bucket(prediction_timestamps), return_counts=True)
        for bucket, count in zip(b.tolist(), c.tolist(), strict=True):
            if bucket in self._labels:
                self._labels[bucket][1] += count

    def tick(self, now: float, complete_until: float | None = None) -> list[Finding]:
        """Staleness at ``now``; rate and coverage of the buckets ended by ``complete_until`` (default ``now``)."""
        s = self.settings
        out: list[Finding] = []
        until = now if complete_until is None else min(now, complete_until)
        current = math.floor(until / s.bucket_seconds)
        if self._next is not None and self._next < current:
            for bucket in self._due(self._next, current):
                out.extend(self._rate_finding(bucket))
            self._counts = {b: c for b, c in self._counts.items() if b >= current}
            self._next, self._evaluated = current, True
        if self.last_event is not None:
            age = max(now - self.last_event, 0.0)
            out.append(Finding(kind="traffic", detector="staleness", subject="predictions", statistic=age,
                               threshold=s.stale_after_seconds, degraded=age > s.stale_after_seconds,
                               window_end=now, window_size=0, severity="critical",
                               summary=f"no prediction for {fmt(age)} s (limit {fmt(s.stale_after_seconds)} s)"))
        out.extend(self._coverage_findings(until))
        return out

    def _due(self, first: int, current: int) -> list[int]:
        """Buckets to judge in ``[first, current)``: every one with events (a catch-up after downtime
        closes hours of buckets at once), and of each run of empty buckets the last
        ``baseline_buckets`` (a long silence is judged, not counted out bucket by bucket)."""
        due: list[int] = []
        b = first
        for k in [*sorted(k for k in self._counts if first <= k < current), current]:
            due.extend(range(max(b, k - self.settings.baseline_buckets), k))  # the empty run before k
            if k < current:
                due.append(k)
            b = k + 1
        return due

    def _rate_finding(self, bucket: int) -> list[Finding]:
        s = self.settings
        count = self._counts.get(bucket, 0)
        history = self._history[-s.baseline_buckets:]
        self._history = [*history, count][-s.baseline_buckets:]
        if len(history) < s.min_baseline_buckets:
            return []
        base = float(np.median(history)) / s.bucket_seconds
        rate = count / s.bucket_seconds
        low, high = base * s.drop_ratio, base * s.spike_ratio
        # against a baseline of no traffic every event is a "spike": it is the stream starting (after a
        # stray event dated long ago, say), not a fault; a drop to nothing is one
        degraded = rate < low or (base > 0 and rate > high)
        bound = low if rate < (low + high) / 2 else high
        word = "drop" if rate < low else "spike" if rate > high else "normal"
        return [Finding(kind="traffic", detector="event_rate", subject="predictions", statistic=rate,
                        threshold=bound, degraded=degraded, window_end=(bucket + 1) * s.bucket_seconds,
                        window_size=count, severity="critical" if degraded and rate == 0 else "warning",
                        summary=f"event rate {fmt(rate)}/s vs baseline {fmt(base)}/s ({word})",
                        details={"baseline": base, "lower": low, "upper": high, "late": self.late})]

    def _coverage_findings(self, now: float) -> list[Finding]:
        s = self.settings
        out = []
        for bucket in sorted(self._labels):
            end = (bucket + 1) * s.bucket_seconds
            if end + s.label_delay_seconds > now:
                break
            preds, outs = self._labels.pop(bucket)
            cov = outs / preds if preds else 1.0
            out.append(Finding(kind="traffic", detector="label_coverage", subject="outcomes", statistic=cov,
                               threshold=s.min_label_coverage, degraded=cov < s.min_label_coverage,
                               window_end=end, window_size=preds,
                               summary=f"label coverage {fmt(cov)} (min {fmt(s.min_label_coverage)})",
                               details={"predictions": preds, "outcomes": outs}))
        return out

    def label_lag_finding(self, lags: np.ndarray, window_end: float) -> Finding | None:
        limit = self.settings.max_label_lag_seconds
        lags = lags[np.isfinite(lags)]
        if limit is None or lags.size == 0:
            return None
        med = float(np.median(lags))
        return Finding(kind="traffic", detector="label_lag", subject="outcomes", statistic=med,
                       threshold=limit, degraded=med > limit, window_end=window_end, window_size=int(lags.size),
                       summary=f"median label lag {fmt(med)} s (limit {fmt(limit)} s)",
                       details={"p90": float(np.quantile(lags, 0.9))})

    def state(self) -> dict[str, Any]:
        return {"counts": [[b, c] for b, c in sorted(self._counts.items())],
                "labels": [[b, *v] for b, v in sorted(self._labels.items())], "history": list(self._history),
                "next": self._next, "evaluated": self._evaluated, "last_event": self.last_event, "late": self.late}

    def load_state(self, state: dict[str, Any]) -> None:
        self._counts = {int(b): int(c) for b, c in state["counts"]}
        self._labels = {int(b): [int(p), int(o)] for b, p, o in state["labels"]}
        self._history = list(state["history"])
        self._next, self.last_event, self.late = state["next"], state["last_event"], state["late"]
        self._evaluated = bool(state.get("evaluated", self._history))  # checkpoints from before the flag

"""Concept drift on the error stream with river's detectors, with JSON state and a refractory rule.

The error stream is 0/1 (misclassified) for classifiers and the absolute
error for regression. Detections are exactly river's: the detector is fed the
same values, one at a time (inherently sequential).

Refractory rule: river detectors can fire again a few hundred values after a
change while they re-adapt (e.g. during a gradual change). A detection less
than ``refractory`` values after the last *reported* change point is merged
into it (counted in ``merged``, not reported). So one change -> one change point.

State: river 0.26 keeps ADWIN's window and HDDM_W's means in Rust objects
that cannot be exported. Every river detector resets itself completely on the
update after a detection, so its state is a pure function of the values seen
since its last reset. We keep exactly those values (``replay buffer``) and
restore by replaying them into a fresh detector built from the same params:
identical state, identical next detections. The buffer is bounded by
``replay_limit``: when full, the detector is rebuilt from the newest half
(which is the one approximation: after that point it equals a river detector
started ``replay_limit / 2`` values ago, not one started at the beginning).

>>> rng = np.random.default_rng(1)
>>> errors = np.concatenate([rng.random(2000) < 0.1, rng.random(2000) < 0.4]).astype(float)
>>> det = ConceptDriftDetector("adwin")
>>> det.update(errors)
[2079]
"""

from __future__ import annotations

from itertools import compress, count
from typing import Any, ClassVar

import numpy as np
from river import drift
from river.drift import binary

from driftwarden.detectors.base import check_params, decode_array, encode_array, register

INF = float("inf")
RIVER_DETECTORS: dict[str, tuple[Any, dict[str, tuple[float, float]]]] = {
    "adwin": (drift.ADWIN, {"delta": (1e-12, 1.0), "clock": (1, 1e9), "max_buckets": (1, 1e6),
                            "min_window_length": (1, 1e9), "grace_period": (1, 1e9)}),
    "page_hinkley": (drift.PageHinkley, {"min_instances": (1, 1e9), "delta": (0.0, INF),
                                         "threshold": (1e-12, INF), "alpha": (0.0, 1.0)}),
    "kswin": (drift.KSWIN, {"alpha": (1e-12, 1.0), "window_size": (2, 1e7), "stat_size": (1, 1e7),
                            "seed": (0, 2**32 - 1)}),
    "ddm": (binary.DDM, {"warm_start": (1, 1e9), "warning_threshold": (0.0, INF),
                         "drift_threshold": (1e-12, INF)}),
    "eddm": (binary.EDDM, {"warm_start": (1, 1e9), "alpha": (0.0, 1.0), "beta": (0.0, 1.0)}),
    "hddm_a": (binary.HDDMA, {"drift_confidence": (1e-12, 1.0), "warning_confidence": (1e-12, 1.0)}),
    "hddm_w": (binary.HDDMW, {"drift_confidence": (1e-12, 1.0), "warning_confidence": (1e-12, 1.0),
                              "lambda_val": (1e-12, 1.0)}),
}
#: detectors defined on 0/1 (or [0, 1]) input only
BINARY_ONLY = {"ddm", "eddm", "hddm_a", "hddm_w"}
EXTRA_PARAMS = {"page_hinkley": {"mode"}, "hddm_a": {"two_sided_test"}, "hddm_w": {"two_sided_test"}}


def make_river_detector(name: str, params: dict[str, Any]) -> Any:
    """A river detector from its name and constructor params (validated, ``ValueError`` otherwise)."""
    if name not in RIVER_DETECTORS:
        raise ValueError(f"concept detector {name!r} unknown; allowed: {sorted(RIVER_DETECTORS)}")
    cls, ranges = RIVER_DETECTORS[name]
    allowed = set(ranges) | EXTRA_PARAMS.get(name, set())
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(f"{name}: unknown parameter(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    check_params(name, ranges, params)
    return cls(**params)


_EMPTY: np.ndarray[Any, Any] = np.empty(0, dtype=np.uint8)
_EMPTY.flags.writeable = False


@register("concept")
class ConceptDriftDetector:
    """One river detector on one error stream, with the refractory rule and replayable state."""

    param_ranges: ClassVar[dict[str, tuple[float, float]]] = {"refractory": (0, 1e12),
                                                              "replay_limit": (2, 1e9)}

    def __init__(self, detector: str = "adwin", params: dict[str, Any] | None = None,
                 refractory: int = 1000, replay_limit: int = 50_000) -> None:
        check_params(type(self).__name__, self.param_ranges,
                     {"refractory": refractory, "replay_limit": replay_limit})
        self.name = detector
        self.params = dict(params or {})
        if detector == "kswin" and "seed" not in self.params:
            self.params["seed"] = 42  # deterministic sampling, required for replayable state
        self.refractory = refractory
        self.replay_limit = replay_limit
        self._detector = make_river_detector(detector, self.params)
        # the values since the last detection (at most replay_limit), replayed into a fresh detector
        # when trimmed or restored: an array in the narrowest form that holds them exactly (bits while
        # every value is 0 or 1, as a classifier's errors are; then bytes while 0..255; then float32),
        # not a list of Python floats (32 bytes a value: 1.6 MB a model at the limit; float32: 200 KB;
        # bytes: 50 KB; bits: 6 KB, claimed whole with the first value, so a model's memory does
        # not creep up over its first 50,000 outcomes)
        self._buffer: np.ndarray[Any, Any] = _EMPTY
        self._kind = "bits"  # of the buffer: "bits" (packed, 8 values a byte) or a numpy dtype's name
        self._n = 0
        self.n_seen = 0
        self.last_change: int | None = None
        self.merged = 0
        self.raw_detections = 0

    @property
    def buffered(self) -> int:
        """Values kept for a replay (since the last detection, at most ``replay_limit``)."""
        return self._n

    def update(self, values: np.ndarray) -> list[int]:
        """Feed values in order; return the stream indices of newly reported change points."""
        reported: list[int] = []
        arr = np.asarray(values, dtype=np.float64)
        xs = arr.tolist()
        pos = 0
        while pos < len(xs):
            chunk = xs[pos : pos + self.replay_limit - self._n]  # up to a full buffer
            hit = _feed(self._detector, chunk)
            if hit < 0:
                self._keep(arr[pos : pos + len(chunk)])
                self.n_seen += len(chunk)
                pos += len(chunk)
                if self._n >= self.replay_limit:
                    last = self._kept()[self._n - self.replay_limit // 2 :]
                    self._n = 0
                    self._keep(last)
                    self._detector = self._replay(last.tolist())
                continue
            i = self.n_seen + hit
            self.n_seen, pos = i + 1, pos + hit + 1
            self._n = 0  # the buffer is kept for the next values; river resets the detector on its next update
            self.raw_detections += 1
            if self.last_change is None or i - self.last_change >= self.refractory:
                reported.append(i)
                self.last_change = i
            else:
                self.merged += 1
        return reported

    def _keep(self, values: np.ndarray) -> None:
        """Append float64 ``values`` to the buffer (widened, bits -> uint8 -> float32 -> float64, as they need)."""
        if not values.size:
            return
        kind = self._kind if self._n else "bits"
        if kind == "bits" and not bool(np.all((values == 0) | (values == 1))):
            kind = "uint8"
        if kind == "uint8" and not bool(np.all((values >= 0) & (values <= 255) & (values == np.floor(values)))):
            kind = "float32"
        if kind == "float32" and not np.array_equal(values.astype(np.float32).astype(np.float64), values):
            kind = "float64"
        if kind != self._kind:  # the values so far again, in the wider form
            kept = self._kept()
            self._kind, self._buffer, self._n = kind, _EMPTY, 0
            self._append(kept)
        self._append(values)

    def _append(self, values: np.ndarray) -> None:
        if not values.size:
            return
        end = self._n + values.size
        if self._kind == "bits":
            if (end + 7) // 8 > self._buffer.size:  # the whole limit's bytes at once (6 KB at 50,000)
                grown = np.zeros(max((end + 7) // 8, (self.replay_limit + 7) // 8), dtype=np.uint8)
                grown[: self._buffer.size] = self._buffer
                self._buffer = grown
            first = self._n // 8  # the last byte may hold some bits already: packed again with the new ones
            head = np.unpackbits(self._buffer[first : first + 1], count=self._n % 8)
            packed = np.packbits(np.concatenate([head, values.astype(np.uint8)]))
            self._buffer[first : first + packed.size] = packed
        else:
            if end > self._buffer.size:
                grown = np.empty(max(end, min(self.replay_limit, max(2 * self._buffer.size, 64))), dtype=self._kind)
                grown[: self._n] = self._buffer[: self._n]
                self._buffer = grown
            self._buffer[self._n : end] = values
        self._n = end

    def _kept(self) -> np.ndarray:
        """The buffered values as float64 (exactly the values fed)."""
        if not self._n:
            return np.empty(0)
        if self._kind == "bits":
            return np.unpackbits(self._buffer, count=self._n).astype(np.float64)
        return self._buffer[: self._n].astype(np.float64)

    def _replay(self, values: list[float]) -> Any:
        det = make_river_detector(self.name, self.params)
        while values:
            hit = _feed(det, values)
            if hit < 0:
                break
            values = values[hit + 1 :]
        return det

    def state(self) -> dict[str, Any]:
        return {"detector": self.name, "params": self.params, "refractory": self.refractory,
                "replay_limit": self.replay_limit, "buffer": encode_array(self._kept()),
                "n_seen": self.n_seen, "last_change": self.last_change, "merged": self.merged,
                "raw_detections": self.raw_detections}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ConceptDriftDetector:
        det = cls(state["detector"], state["params"], state["refractory"], state["replay_limit"])
        kept = decode_array(state["buffer"]).astype(np.float64)
        det._keep(kept)
        det._detector = det._replay(kept.tolist())
        det.n_seen, det.last_change = state["n_seen"], state["last_change"]
        det.merged, det.raw_detections = state["merged"], state["raw_detections"]
        return det


def _feed(det: Any, xs: list[float]) -> int:
    """Feed ``xs`` to a river detector up to its first detection: that index, or -1.

    For ADWIN, river's ``update`` is inlined (reset after a detection, then the Rust
    window's own update): the Python wrapper and its property cost more than the
    window update itself. Tests hold the detections equal to river's ``update``.
    """
    if type(det) is drift.ADWIN and hasattr(det, "_helper"):
        if det._drift_detected:
            det._reset()
        # the first index whose update detects, iterated in C (map stops there: no value is fed after it)
        hit = next(compress(count(), map(det._helper.update, xs)), -1)
        if hit >= 0:
            det._drift_detected = True
        return hit
    for i, x in enumerate(xs):
        det.update(x)
        if det.drift_detected:
            return i
    return -1


def change_split(values: np.ndarray, min_segment: int = 20) -> int:
    """Where the mean of ``values`` most likely changed: the split maximizing the standardized
    difference of the means before and after it (the CUSUM change-point estimate). Returns the
    first index after the change; 0 when there are fewer than ``2 * min_segment`` values.

    A detector fires some values after a change: the errors since the split give the new level.

    >>> rng = np.random.default_rng(0)
    >>> change_split(np.concatenate([rng.random(900) < 0.2, rng.random(100) < 0.6]).astype(float))
    901
    """
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    if n < 2 * min_segment:
        return 0
    k = np.arange(min_segment, n - min_segment + 1)
    csum = np.concatenate(([0.0], np.cumsum(x)))
    gap = np.abs(csum[k] - k * csum[-1] / n) / np.sqrt(k * (n - k) / n)
    return int(k[int(np.argmax(gap))])


def error_stream(task: str, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """0/1 misclassification for classifiers, absolute error for regression (NaN rows dropped)."""
    if task == "regression":
        err = np.abs(np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64))
        return err[~np.isnan(err)]
    return (y_true != y_pred).astype(np.float64)

"""The small protocol every detector follows, its registry and shared helpers.

A detector is constructed from keyword parameters (validated, ``ValueError``
naming the allowed range), is updated with numpy arrays, and round-trips its
state through plain JSON-safe dicts: ``state()`` / ``cls.from_state(state)``.
No pickle anywhere: checkpoints must stay readable across versions.

Severity rule (shared): a degraded finding is ``critical`` when its statistic
is beyond the threshold by ``critical_factor`` (default 2) times the distance
between the healthy value and the threshold; otherwise ``warning``.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import numpy as np

#: name -> detector class; filled by :func:`register`.
REGISTRY: dict[str, type[Any]] = {}

T = TypeVar("T")


@runtime_checkable
class Detector(Protocol):
    """What the conformance test checks on every registered detector."""

    #: parameter name -> (lowest, highest) allowed value, both inclusive. A name is a
    #: constructor keyword or, for a detector configured by a settings struct, one of its fields.
    param_ranges: ClassVar[dict[str, tuple[float, float]]]

    def state(self) -> dict[str, Any]: ...


def register(name: str) -> Callable[[type[T]], type[T]]:
    """Class decorator adding a detector to :data:`REGISTRY` under ``name``."""

    def wrap(cls: type[T]) -> type[T]:
        if name in REGISTRY:
            raise ValueError(f"detector {name!r} registered twice")
        REGISTRY[name] = cls
        return cls

    return wrap


def check_params(cls_name: str, ranges: dict[str, tuple[float, float]], values: dict[str, Any]) -> None:
    """Raise ``ValueError`` for the first value outside its allowed range."""
    for key, (lo, hi) in ranges.items():
        value = values.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not (lo <= value <= hi):
            raise ValueError(f"{cls_name}: {key}={value!r} is outside the allowed range [{lo}, {hi}]")


def severity(statistic: float, threshold: float, healthy: float, factor: float) -> str:
    """``critical`` when ``statistic`` is ``factor`` times further from ``healthy`` than ``threshold``.

    >>> severity(0.45, 0.2, 0.0, 2.0), severity(0.3, 0.2, 0.0, 2.0)
    ('critical', 'warning')
    >>> severity(0.79, 0.85, 0.9, 2.0)
    'critical'
    """
    gap = threshold - healthy
    if gap == 0 or not math.isfinite(statistic):
        return "critical"
    return "critical" if (statistic - healthy) / gap >= factor else "warning"


def encode_array(values: np.ndarray) -> dict[str, Any]:
    """A numeric numpy array as JSON-safe ``{"dtype", "shape", "b64"}`` (exact, NaN-safe)."""
    arr = np.ascontiguousarray(values)
    return {"dtype": arr.dtype.str, "shape": list(arr.shape), "b64": base64.b64encode(arr.tobytes()).decode()}


def decode_array(blob: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`encode_array` (returns a writable copy)."""
    raw = base64.b64decode(blob["b64"])
    return np.frombuffer(raw, dtype=np.dtype(blob["dtype"])).reshape(blob["shape"]).copy()


def json_float(x: float) -> float | str:
    """Floats are JSON-safe only when finite; others travel as strings."""
    return x if math.isfinite(x) else repr(x)


def from_json_float(x: float | str) -> float:
    return float(x)


def utc_text(ts: float | None) -> str:
    """An epoch time for people, UTC to the second; ``-`` for none, the number itself when out of the
    calendar's range (a hostile or broken clock).

    >>> utc_text(1761955200.25), utc_text(None), utc_text(1e20)
    ('2025-11-01T00:00:00Z', '-', '1e+20')
    """
    if ts is None:
        return "-"
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return repr(ts)


def fmt(x: float) -> str:
    """Short human number for summaries: ``0.312``, ``1e-12``."""
    if x == 0 or not math.isfinite(x):
        return str(x)
    if abs(x) < 1e-3 or abs(x) >= 1e5:
        return f"{x:.1e}".replace("e-0", "e-").replace("e+0", "e+")
    return f"{x:.3g}"


def run_bounds(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For sorted ``w``: counts of values <= and < each element, from its run of ties (O(n)).

    >>> [b.tolist() for b in run_bounds(np.array([1.0, 2.0, 2.0, 3.0]))]
    [[1, 3, 3, 4], [0, 1, 1, 3]]
    """
    n = w.size
    starts = np.flatnonzero(np.concatenate(([True], w[1:] != w[:-1])))
    lengths = np.diff(np.append(starts, n))
    return np.repeat(starts + lengths, lengths), np.repeat(starts, lengths)

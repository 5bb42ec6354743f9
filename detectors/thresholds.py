"""Threshold strategies: turn a reference baseline into alert bounds for a metric.

Each strategy returns ``(lower, upper)`` (either may be ``None`` = unbounded),
clamped to the metric's theoretical range. ``direction`` says which side is
bad: ``decrease`` (accuracy, revenue), ``increase`` (MAE, log loss) or ``both``.

>>> t = StdThreshold(k=3)
>>> t.bounds(0.9, 0.02, "decrease", (0.0, 1.0))
(0.84, None)
>>> RelativeThreshold(0.1).bounds(2.0, 0.0, "increase", (0.0, float("inf")))
(None, 2.2)
>>> AbsoluteThreshold(lower=-1.0).bounds(0.5, 0.1, "decrease", (0.0, 1.0))
(0.0, None)
"""

from __future__ import annotations

from dataclasses import dataclass

from driftwarden.detectors.settings import ThresholdSettings

Bounds = tuple[float | None, float | None]


def _clamp(x: float | None, rng: tuple[float, float]) -> float | None:
    if x is None:
        return None
    return round(min(max(x, rng[0]), rng[1]), 12)


def _sides(lower: float, upper: float, direction: str, rng: tuple[float, float]) -> Bounds:
    lo = lower if direction in ("decrease", "both") else None
    hi = upper if direction in ("increase", "both") else None
    return _clamp(lo, rng), _clamp(hi, rng)


@dataclass(frozen=True)
class StdThreshold:
    """baseline -/+ k standard deviations of the metric over reference chunks."""

    k: float = 3.0

    def bounds(self, baseline: float, std: float, direction: str, rng: tuple[float, float]) -> Bounds:
        return _sides(baseline - self.k * std, baseline + self.k * std, direction, rng)


@dataclass(frozen=True)
class RelativeThreshold:
    """baseline degraded by a fraction (0.1: 10 % below for ``decrease``, above for ``increase``)."""

    fraction: float = 0.1

    def bounds(self, baseline: float, std: float, direction: str, rng: tuple[float, float]) -> Bounds:
        delta = abs(baseline) * self.fraction
        return _sides(baseline - delta, baseline + delta, direction, rng)


@dataclass(frozen=True)
class AbsoluteThreshold:
    """Fixed bounds, independent of the baseline."""

    lower: float | None = None
    upper: float | None = None

    def bounds(self, baseline: float, std: float, direction: str, rng: tuple[float, float]) -> Bounds:
        return _clamp(self.lower, rng), _clamp(self.upper, rng)


Threshold = StdThreshold | RelativeThreshold | AbsoluteThreshold


def threshold_from_settings(s: ThresholdSettings) -> Threshold:
    """The strategy object for a ``ThresholdSettings`` block (``ValueError`` on bad values)."""
    if s.strategy == "std":
        if not (0 < s.k <= 100):
            raise ValueError(f"threshold k={s.k!r} is outside the allowed range (0, 100]")
        return StdThreshold(s.k)
    if s.strategy == "relative":
        if not (0 < s.relative <= 10):
            raise ValueError(f"threshold relative={s.relative!r} is outside the allowed range (0, 10]")
        return RelativeThreshold(s.relative)
    if s.lower is None and s.upper is None:
        raise ValueError("absolute threshold needs lower and/or upper")
    return AbsoluteThreshold(s.lower, s.upper)


def breach(value: float, bounds: Bounds) -> tuple[bool, float | None]:
    """Whether ``value`` is outside ``bounds``, and the bound it is judged against."""
    lower, upper = bounds
    if lower is not None and value < lower:
        return True, lower
    if upper is not None and value > upper:
        return True, upper
    if lower is not None and upper is not None:
        return False, lower if abs(value - lower) < abs(value - upper) else upper
    return False, lower if lower is not None else upper


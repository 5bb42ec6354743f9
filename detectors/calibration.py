"""The CUSUM threshold ``h`` of a model, from its false-alarm budget and its traffic.

Budget: ``monitoring.false_alarm_budget`` false drift alarms per 30 days for the
whole model (all drift subjects together; default 1). Traffic, in order:

1. ``monitoring.expected_rate`` (predictions per second) when configured;
2. the reference's rows over its timestamp span, when it has timestamps that span time;
3. unknown: :data:`MIN_PREDICTIONS_PER_FALSE_ALARM` predictions per false alarm.

Whatever the traffic and budget, the target is never fewer than
:data:`MIN_PREDICTIONS_PER_FALSE_ALARM` predictions per false alarm (a slow model's month
is short; it must not buy a nervous threshold with it).

Predictions per false alarm / ``block`` = the model's in-control average run length
(ARL0) in blocks. Its ``m`` subjects each run a CUSUM; the first false alarm of
``m`` independent ones comes ``m`` times sooner than one's (Bonferroni on rates,
which Sidak matches for rare alarms), so each subject gets ARL0 ``m`` times the
model's, and ``h`` solves Siegmund's approximation for a standard normal score::

    ARL0(h) = (exp(2 k b) - 2 k b - 1) / (2 k^2),  b = h + 1.166

(Siegmund 1985, Sequential Analysis, eq. 2.56). For k = 0.5 and h = 4 it gives
338 where the exact value (Brook and Evans 1972) is 336; a test checks it by
simulation. Guarantee, under no drift and scores that are standard normal (or
conservative, as KS p-values of tied data are): the expected number of CUSUM
alarms is at most the budget. The effect-size floor (see :mod:`detectors.sequential`)
only removes alarms.

>>> c = calibrate(budget=1.0, block=500, subjects=8, rate=20.0)
>>> c.rate_source, round(c.predictions_per_false_alarm), round(c.h, 2)
('configured', 51840000, 11.77)
>>> round(siegmund_arl(c.h, 0.5) / (c.predictions_per_false_alarm / 500 * 8), 6)
1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from driftwarden.detectors.cusum import CUSUM_K

PERIOD_SECONDS = 30 * 86_400.0  # the budget's period
MIN_PREDICTIONS_PER_FALSE_ALARM = 5_000_000
SIEGMUND_OFFSET = 1.166  # the overshoot correction of the boundary (Siegmund)


def siegmund_arl(h: float, k: float = CUSUM_K, mu: float = 0.0) -> float:
    """Siegmund's approximation of the ARL of a CUSUM of N(mu, 1) scores (in blocks).

    >>> round(siegmund_arl(4.0, 0.5))
    338
    >>> round(siegmund_arl(4.0, 0.5, mu=1.0), 2)  # 1 sd shift: Brook-Evans 8.38
    8.34
    """
    delta = mu - k
    b = h + SIEGMUND_OFFSET
    if abs(delta) < 1e-12:
        return b * b
    return (math.exp(-2 * delta * b) + 2 * delta * b - 1) / (2 * delta * delta)


def threshold_for_arl(arl: float, k: float = CUSUM_K) -> float:
    """The ``h`` whose in-control ARL (Siegmund) is ``arl`` blocks (``h >= 0``).

    >>> round(threshold_for_arl(338.05), 3)
    4.0
    """
    if arl <= siegmund_arl(0.0, k):
        return 0.0
    hi = 1.0
    while siegmund_arl(hi, k) < arl:
        hi *= 2
    return float(brentq(lambda h: siegmund_arl(h, k) - arl, 0.0, hi, xtol=1e-10))


def reference_rate(timestamps: np.ndarray | None) -> float | None:
    """Rows per second of a reference with real timestamps (None without a usable span).

    >>> reference_rate(np.arange(1.0, 1001.0, 0.5)), reference_rate(np.zeros(10))
    (2.0, None)
    """
    if timestamps is None or timestamps.size < 2:
        return None
    t = timestamps[np.isfinite(timestamps) & (timestamps > 0)]
    if t.size < 2:
        return None
    span = float(t.max() - t.min())
    return (t.size - 1) / span if span > 0 else None


@dataclass(frozen=True, slots=True)
class Calibration:
    """How ``h`` was reached (shown in every sequential finding's details)."""

    h: float
    k: float
    block: int
    subjects: int
    rate: float | None
    rate_source: str  # "configured", "reference" or "unknown"
    predictions_per_false_alarm: float
    arl_per_subject: float  # blocks

    def details(self) -> dict[str, float | int | str]:
        return {"cusum_k": self.k, "block": self.block, "family_subjects": self.subjects,
                "predictions_per_false_alarm": round(self.predictions_per_false_alarm),
                "rate_source": self.rate_source, "arl0_blocks_per_subject": round(self.arl_per_subject)}


def calibrate(budget: float, block: int, subjects: int, rate: float | None = None,
              reference_rows_per_second: float | None = None, k: float = CUSUM_K) -> Calibration:
    """The CUSUM threshold of a model with ``subjects`` monitored subjects (see the module doc)."""
    if budget <= 0:
        raise ValueError(f"false_alarm_budget must be > 0, got {budget}")
    source, r = "unknown", None
    if rate is not None:
        source, r = "configured", rate
    elif reference_rows_per_second is not None:
        source, r = "reference", reference_rows_per_second
    per_period = r * PERIOD_SECONDS / budget if r is not None else 0.0
    predictions = max(per_period, float(MIN_PREDICTIONS_PER_FALSE_ALARM))
    m = max(subjects, 1)
    arl = predictions / block * m
    return Calibration(h=threshold_for_arl(arl, k), k=k, block=block, subjects=m, rate=r, rate_source=source,
                       predictions_per_false_alarm=predictions, arl_per_subject=arl)


def calibrate_outcomes(false_alarms_per_million: float, block: int, subjects: int, k: float = CUSUM_K) -> Calibration:
    """The threshold of ``subjects`` CUSUMs over blocks of ``block`` labelled outcomes that together
    expect at most ``false_alarms_per_million`` false alarms per million outcomes (as above, Bonferroni).

    >>> c = calibrate_outcomes(0.2, 500, 2)
    >>> c.rate_source, round(c.predictions_per_false_alarm), round(c.arl_per_subject)
    ('outcomes', 5000000, 20000)
    """
    if false_alarms_per_million <= 0:
        raise ValueError(f"false_alarms_per_million must be > 0, got {false_alarms_per_million}")
    outcomes = 1e6 / false_alarms_per_million
    m = max(subjects, 1)
    arl = outcomes / block * m
    return Calibration(h=threshold_for_arl(arl, k), k=k, block=block, subjects=m, rate=None, rate_source="outcomes",
                       predictions_per_false_alarm=outcomes, arl_per_subject=arl)

"""Sequential drift evidence: Page's CUSUM over small blocks, gated by an effect-size floor.

Every ``drift.block`` predictions (default 500) each subject (a feature, the
prediction, the score, the PCA reconstruction error) gets a p-value for "this
block comes from the reference distribution": KS for numeric, chi-square for
categorical, a z-test of the mean reconstruction error for PCA. Under no drift
the p-value is uniform (conservative, i.e. larger, for tied data), so
``z = Phi^-1(1 - p)`` is standard normal; a change makes it large. Per subject::

    S = min(max(0, S + z - k), 2 h)        k = 0.5, z clipped to [-8, 8]

``h`` comes from the model's false-alarm budget (:mod:`detectors.calibration`);
the recursion and :class:`CusumAlarm` are the project's one CUSUM (:mod:`detectors.cusum`).
The clip makes a block count as 8 standard deviations at most, so even a
blatant change needs two blocks above a typical ``h`` of 9-13 (one odd block is
not an alarm); the cap 2 h lets an alarm clear within about ``h / k`` blocks
once the data look like the reference again.

The *change window* is the data since the CUSUM was last at or below h / 2:
the blocks of its latest climb (since it left 0, the classic change-point
estimate, would take in the blocks where noise held S a little above 0
before the change, and dilute the effect). Its pooled counts give the effect
size (PSI by default). A subject alarms when ``S >= h`` AND the effect over the change
window is at least the floor (default PSI 0.1, "moderate shift"): a tiny but
persistent difference, like a daily cycle seen by a window of a few hours
against a reference of whole days, piles up evidence without ever being
relevant, and as the window grows the pooled effect shrinks towards the
long-run difference. Once raised, the alarm holds while ``S >= h``: the
finding's statistic is S and its threshold h, so it never clears while its
statistic is past its threshold.

Delays (blocks of 500, h about 12): a 0.5 sd jump gives z = 8 per block, an
alarm after 2 blocks (1,000 predictions, up to 1,500 when the change falls
mid-block); a shift giving z of 1.5 per block takes about h / (1.5 - k) = 12
blocks. Streaming equals batch: blocks are cut by count, so how the
predictions were split into micro-batches does not change any finding.

>>> z_score(np.array([0.5, 1e-300, 1.0])).round(3).tolist()
[0.0, 8.0, -8.0]
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from driftwarden.detectors.base import fmt, severity
from driftwarden.detectors.calibration import Calibration
from driftwarden.detectors.cusum import CusumAlarm
from driftwarden.detectors.findings import Finding, Kind, Scalar

Z_MAX = 8.0  # a block counts for at most 8 standard deviations
__all__ = ["Z_MAX", "CusumAlarm", "sequential_finding", "z_score"]


def z_score(p: np.ndarray) -> np.ndarray:
    """``Phi^-1(1 - p)`` (computed as ``-Phi^-1(p)``, exact for tiny p), clipped to +/- ``Z_MAX``."""
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        return np.clip(0.0 - ndtri(p), -Z_MAX, Z_MAX)


def sequential_finding(*, kind: Kind, subject: str, alarm: CusumAlarm, calibration: Calibration, z: float,
                       p: float, test: str, effect: float, floor: float, effect_label: str, window_end: float,
                       block_events: int, change_events: int, critical_factor: float,
                       extra: dict[str, Scalar] | None = None) -> Finding:
    """The finding of one subject after one block: statistic S, threshold h (what the alert shows).

    ``details['sequential']`` tells the alert lifecycle that the evidence already held
    over several blocks (it fires at the first degraded evaluation, not after
    ``for_windows`` of them).
    """
    degraded = alarm.alarmed
    op = ">=" if alarm.s >= alarm.h else "<"
    summary = (f"CUSUM of {subject} {fmt(alarm.s)} {op} {fmt(alarm.h)} over the last {change_events} values; "
               f"{effect_label} {fmt(effect)} {'>=' if effect >= floor else '<'} floor {fmt(floor)} "
               f"(block {test} p={fmt(p)}, z={z:.2f})")
    details: dict[str, Scalar] = {"sequential": True, "test": test, "block_p": p, "z": z, "effect": effect,
                                  "effect_metric": effect_label, "effect_floor": floor,
                                  "change_window_events": change_events, "change_window_blocks": alarm.run,
                                  **calibration.details(), **(extra or {})}
    return Finding(kind=kind, detector="cusum", subject=subject, statistic=alarm.s, threshold=alarm.h,
                   degraded=degraded, window_end=window_end, window_size=block_events, p_value=p,
                   severity=severity(effect, floor, 0.0, critical_factor)  # type: ignore[arg-type]
                   if degraded else "warning",
                   summary=summary, details=details)

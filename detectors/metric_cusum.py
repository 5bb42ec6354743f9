"""A performance metric judged sequentially: a CUSUM of its per-block z-scores, gated by a relative floor.

Why: F1 and ROC AUC (realized, and estimated by CBPE) were judged on fixed windows of
5,000 at 3 standard deviations. Every window was a fresh test, so their false alarms
added up (5 per 1M on a daily-cycle stream), and a fault waited for a whole window.
Here, as for drift (:mod:`detectors.sequential`), every ``block`` rows give one score::

    z = sign * (baseline - value) / (std_block * margin) - REFERENCE_Z * sqrt(n / N)

``sign`` is +1 for a metric whose decrease is bad (F1, ROC AUC) and -1 for one whose
increase is (log loss). ``std_block`` is the metric's standard deviation over
``DRAWS`` random reference subsamples of ``block`` rows (without replacement,
finite-population corrected), rescaled as 1/sqrt(n) for a block of ``n`` rows;
``margin`` (1.07 for 400 draws) is the upper 95 % bound of that estimated spread,
and the last term charges the reference value's own error (``N`` reference rows) at
``REFERENCE_Z`` standard errors. Under no change z is then at most standard normal
(the block values are means of many rows; tested by simulation), so the threshold
``h`` of :mod:`detectors.calibration` keeps its false-alarm guarantee.

A metric alarms when its CUSUM reaches ``h`` AND its mean over the change window
(the blocks since S was last at or below h / 2) is worse than the baseline by at
least ``floor`` (a fraction of the baseline, default 5 %): a daily cycle moves
F1 by about 2 % at some hours, which piles up evidence but is no fault.

>>> rng = np.random.default_rng(1)
>>> cal = calibrate(budget=1.0, block=500, subjects=1)
>>> mc = MetricCusum("f1", "performance", baseline=0.8, std=0.02, rows=50_000, block=500,
...                  direction="decrease", calibration=cal)
>>> [mc.judge(v, 500, float(i)).degraded for i, v in enumerate([0.80, 0.79, 0.70, 0.70, 0.70])]
[False, False, False, True, True]
>>> f = mc.judge(0.70, 500, 5.0); round(f.statistic, 2), round(f.threshold, 2), f.details["value"]
(14.71, 7.35, 0.7)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np

from driftwarden.detectors.base import fmt, severity
from driftwarden.detectors.calibration import Calibration, calibrate
from driftwarden.detectors.cusum import CusumAlarm
from driftwarden.detectors.findings import Finding, Kind
from driftwarden.detectors.replay_steps import ReplayStep
from driftwarden.detectors.sequential import Z_MAX
from driftwarden.detectors.window import ColumnWindow

Columns = dict[str, np.ndarray]
DRAWS = 400  # reference subsamples for a block's spread: relative error of the std ~3.5 %
MARGIN = 1.0 + 2.0 / math.sqrt(2.0 * (DRAWS - 1))  # the spread's upper 95 % bound (chi distribution, normal approx.)
REFERENCE_Z = 2.0  # the reference value's own error, charged at this many standard errors
FLOOR = 0.05  # a change window's mean must be this fraction of the baseline worse to alarm


@lru_cache(maxsize=8)
def draw_rows(n: int, block: int, draws: int = DRAWS, seed: int = 0) -> np.ndarray:
    """``draws`` random blocks of ``block`` of ``n`` rows (without replacement, each sorted): one per row.

    The same for every model whose reference has ``n`` rows: drawn once, shared (read-only).
    """
    rng = np.random.default_rng(seed)
    rows = np.stack([np.sort(rng.choice(n, block, replace=False)) for _ in range(draws)])
    rows = rows.astype(np.int32 if n < 2**31 else np.int64)
    rows.flags.writeable = False
    return rows


def effect_severity(effect: float, baseline: float, critical_factor: float, floor: float = FLOOR) -> str:
    """Severity of a degraded metric by the size of its effect, the same rule for every metric.

    ``critical`` when the metric is worse than its baseline by at least ``critical_factor``
    times the alarm floor (a fraction ``floor`` of the baseline): with the defaults, 10 %
    worse. Accuracy (per outcome), F1, ROC AUC and CBPE's estimates (per block) all use it, so
    one fault that moves them alike gets one severity.

    >>> effect_severity(0.739 - 0.498, 0.739, 2.0), effect_severity(0.05, 0.739, 2.0)
    ('critical', 'warning')
    """
    return severity(effect, floor * abs(baseline), 0.0, critical_factor)


def block_spread(fn: Callable[[Columns], dict[str, float]], reference: Columns, block: int,
                 draws: int = DRAWS, seed: int = 0,
                 many: Callable[[Columns, np.ndarray], dict[str, np.ndarray]] | None = None,
                 ) -> dict[str, tuple[float, float | None]]:
    """Per metric: (value on the whole reference, std over ``draws`` subsamples of ``block`` rows).

    ``fn`` returns every metric of a set of rows at once (CBPE computes them together).
    ``many``, when given, returns what ``fn`` would for every subsample at once (rows of an index
    matrix; :mod:`detectors.subsample_metrics`): the same draws, one numpy call instead of ``draws``.
    The std is None when fewer than two subsamples give a finite value or the
    reference has fewer than ``2 * block`` rows.

    >>> ref = {"x": np.arange(10_000.0)}
    >>> value, std = block_spread(lambda c: {"mean": float(c["x"].mean())}, ref, 100)["mean"]
    >>> value, round(float(std) / float(ref["x"].std() / 10), 1)  # the standard error of a mean of 100
    (4999.5, 1.0)
    """
    n = len(next(iter(reference.values()))) if reference else 0
    whole = fn(reference) if n else {}
    if n < 2 * block:
        return {k: (v, None) for k, v in whole.items()}
    rows = draw_rows(n, block, draws, seed)
    samples: dict[str, list[float]] = {k: [] for k in whole}
    if many is not None:
        for k, values in many(reference, rows).items():
            if k in samples:
                samples[k] = [v for v in values.tolist() if math.isfinite(v)]
    else:
        for idx in rows:
            for k, v in fn({c: a[idx] for c, a in reference.items()}).items():
                if k in samples and math.isfinite(v):
                    samples[k].append(v)
    fpc = math.sqrt(max(1.0 - block / n, 1e-9))
    return {k: (whole[k], float(np.std(samples[k], ddof=1)) / fpc if len(samples[k]) >= 2 else None)
            for k in whole}


class MetricCusum:
    """One metric's CUSUM over per-block values; ``judge`` gives the finding after a block."""

    def __init__(self, name: str, kind: Kind, *, baseline: float, std: float, rows: int, block: int,
                 direction: str, calibration: Calibration, floor: float = FLOOR, critical_factor: float = 2.0,
                 label: str | None = None) -> None:
        if direction not in ("decrease", "increase"):
            raise ValueError(f"a sequential metric needs direction decrease or increase, got {direction!r}")
        if not (std > 0 and math.isfinite(baseline)):
            raise ValueError(f"{name}: a sequential metric needs a finite baseline and std > 0")
        self.name, self.kind, self.label = name, kind, label or name
        self.baseline, self.std, self.rows, self.block = baseline, std, rows, block
        self.sign = 1.0 if direction == "decrease" else -1.0
        self.calibration = calibration
        self.floor_fraction = floor
        self.floor = floor * abs(baseline)
        self.critical_factor = critical_factor
        self.alarm = CusumAlarm(calibration.h, calibration.k)
        self.run_sum = 0.0  # the block values of the change window
        self.run_n = 0

    def z(self, value: float, n: int) -> float:
        """The block's score: standard normal (or smaller) under no change."""
        se = self.std * MARGIN * math.sqrt(self.block / max(n, 1))
        raw = self.sign * (self.baseline - value) / se - REFERENCE_Z * math.sqrt(n / max(self.rows, 1))
        return float(np.clip(raw, -Z_MAX, Z_MAX))

    def judge(self, value: float, n: int, window_end: float) -> Finding:
        if not math.isfinite(value):  # e.g. ROC AUC of a block with one class: no evidence either way
            value, z = self.baseline, 0.0
        else:
            z = self.z(value, n)
        if self.alarm.starts_run:
            self.run_sum, self.run_n = 0.0, 0
        self.alarm.step(z)
        self.run_sum += value
        self.run_n += 1
        mean = self.run_sum / self.run_n
        effect = self.sign * (self.baseline - mean)
        degraded = self.alarm.decide(effect, self.floor)
        a = self.alarm
        summary = (f"{self.label} {fmt(mean)} over the last {self.run_n} blocks (baseline {fmt(self.baseline)}, "
                   f"worse by {fmt(effect)} {'>=' if effect >= self.floor else '<'} floor {fmt(self.floor)}); "
                   f"CUSUM {fmt(a.s)} {'>=' if a.s >= a.h else '<'} {fmt(a.h)} (block {fmt(value)}, z={z:.2f})")
        details: dict[str, Any] = {"sequential": True, "value": value, "baseline": self.baseline, "z": z,
                                   "change_window_value": mean, "effect": effect, "effect_floor": self.floor,
                                   "change_window_blocks": self.run_n, **self.calibration.details()}
        sev = effect_severity(effect, self.baseline, self.critical_factor, self.floor_fraction) if degraded else "warning"
        return Finding(kind=self.kind, detector=self.name, subject=self.name, statistic=a.s, threshold=a.h,
                       degraded=degraded, window_end=window_end, window_size=n, severity=sev,  # type: ignore[arg-type]
                       summary=summary, details=details)

    def state(self) -> dict[str, Any]:
        return {**self.alarm.state(), "run_sum": self.run_sum, "run_n": self.run_n}

    def load_state(self, state: dict[str, Any]) -> None:
        self.alarm.load_state(state)
        self.run_sum, self.run_n = float(state["run_sum"]), int(state["run_n"])


class BlockMetrics:
    """Labelled rows cut into blocks of ``block`` (by count: batching does not matter), each metric judged.

    ``fn`` gives every metric of a block's columns (``many``: of many blocks at once, for the
    reference's spread; see :func:`block_spread`); the metrics without a usable reference spread
    are left out (``names``).
    """

    def __init__(self, fn: Callable[[Columns], dict[str, float]], reference: Columns, block: int,
                 directions: dict[str, str], kind: Kind, calibration: Calibration | None = None,
                 floor: float = FLOOR, critical_factor: float = 2.0, label: str = "",
                 many: Callable[[Columns, np.ndarray], dict[str, np.ndarray]] | None = None) -> None:
        self.fn, self.block = fn, block
        rows = len(next(iter(reference.values()))) if reference else 0
        spreads = block_spread(fn, reference, block, many=many)
        usable = [m for m in directions if m in spreads and spreads[m][1] and math.isfinite(spreads[m][0])]
        cal = calibration or calibrate(1.0, block, len(usable))
        self.metrics = {m: MetricCusum(m, kind, baseline=spreads[m][0], std=float(spreads[m][1] or 0.0), rows=rows,
                                       block=block, direction=directions[m], calibration=cal, floor=floor,
                                       critical_factor=critical_factor, label=f"{label}{m}")
                        for m in usable}
        self.pending = ColumnWindow(block)
        self.last_degraded: ReplayStep | None = None  # the last block of :meth:`observe` with a degraded finding

    @property
    def names(self) -> list[str]:
        return list(self.metrics)

    def cusum_state(self) -> dict[str, Any]:
        """The metrics' CUSUMs alone (what a block's findings depend on besides its rows)."""
        return {m: mc.state() for m, mc in self.metrics.items()}

    def load_cusum_state(self, state: dict[str, Any]) -> None:
        for m, s in state.items():
            if m in self.metrics:
                self.metrics[m].load_state(s)

    def judge_block(self, cols: Columns, window_end: float) -> list[Finding]:
        """One complete block's findings (the caller cut it)."""
        n = len(next(iter(cols.values())))
        values = self.fn(cols)
        return [mc.judge(values.get(m, math.nan), n, window_end) for m, mc in self.metrics.items()]

    def observe(self, cols: Columns, t: np.ndarray) -> list[Finding]:
        """Add rows in order (``t``: their event times); the findings of every block they complete."""
        out: list[Finding] = []
        n, start = len(t), 0
        cols = {**cols, "t": np.asarray(t, dtype=np.float64)}
        while start < n:
            take = min(self.pending.room, n - start)
            self.pending.add({k: v[start:start + take] for k, v in cols.items()})
            start += take
            if self.pending.room == 0:
                block = self.pending.take()
                t_block = block.pop("t")
                end = float(t_block[-1])
                before = self.cusum_state()
                found = self.judge_block(block, end)
                if any(f.degraded for f in found):
                    self.last_degraded = ReplayStep("outcome_block", end, before, {**block, "t": t_block})
                out.extend(found)
        return out

    def state(self) -> dict[str, Any]:
        return {"pending": self.pending.state(), "metrics": {m: mc.state() for m, mc in self.metrics.items()}}

    def load_state(self, state: dict[str, Any]) -> None:
        self.pending.load_state(state["pending"])
        self.load_cusum_state(state.get("metrics", {}))

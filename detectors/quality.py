"""Data quality per prediction window: missing values, types, ranges, unseen and undeclared keys.

Rates are fractions of the window's events. With ``drift.method: sequential`` the
monitor checks the missing rate every ``monitoring.block`` predictions
(:meth:`QualityMonitor.evaluate_missing`) instead of per window, so that a burst of
nulls is named within two blocks: with the default margin of 0.1 over the
reference rate a block of 500 is at least 4.5 binomial standard deviations from
a false breach. Batch-level counters from the
decoder (``type_errors``, ``missing_keys``, ``undeclared_keys``) are charged to
the window that is open when the batch arrives. Range: declared ``min``/``max``
of the feature if any, else the reference's observed range.

>>> import numpy as np
>>> from driftwarden.detectors.spec import FeatureSpec
>>> q = QualityMonitor({"x": FeatureSpec("numeric", min=0.0)}, {"x": np.arange(100.0)})
>>> q.add_counters({"x": 3}, {}, {"extra": 10})
>>> fs = q.evaluate({"x": np.array([1.0, np.nan, -5.0, 2.0] * 25)}, 100, 0.0)
>>> [(f.detector, f.subject, f.statistic, f.degraded) for f in fs if f.degraded]
[('missing_rate', 'x', 0.25, True), ('type_mismatch_rate', 'x', 0.03, True), \
('out_of_range_rate', 'x', 0.25, True), ('undeclared_key_rate', 'extra', 0.1, True)]
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import msgspec
import numpy as np

from driftwarden.detectors.base import check_params, fmt, register, severity
from driftwarden.detectors.binning import CategoricalBinning, missing_mask, unseen_share
from driftwarden.detectors.findings import Finding
from driftwarden.detectors.settings import QUALITY_RANGES, QualitySettings
from driftwarden.detectors.spec import FeatureSpec

MAX_TRACKED_KEYS = 100


UNSEEN_MARGIN_SD = 4.0  # a window's unseen rate is this many standard errors above its expectation


def unseen_limit(share: float, allowed: float, n: int, reference_values: int) -> float:
    """The unseen-category rate above which a window of ``n`` values alerts.

    ``share`` (the reference's Good-Turing estimate) + ``allowed`` (``max_unseen_rate``) +
    :data:`UNSEEN_MARGIN_SD` standard errors of the window's rate and of the estimate
    (binomial). A column whose reference saw every category twice has share 0 and the
    limit is ``allowed`` alone.

    >>> unseen_limit(0.0, 0.01, 5000, 50_000)
    0.01
    >>> round(unseen_limit(0.095, 0.01, 5000, 50_000), 4)
    0.1224
    """
    if share <= 0.0:
        return allowed
    se = math.sqrt(share * (1.0 - share) * (1.0 / max(n, 1) + 1.0 / max(reference_values, 1)))
    return min(share + allowed + UNSEEN_MARGIN_SD * se, 1.0)


@register("quality")
class QualityMonitor:
    """Quality checks of one model's declared features (and undeclared keys).

    ``param_ranges`` covers ``critical_factor`` and the rate limits of ``settings``.
    """

    param_ranges: ClassVar[dict[str, tuple[float, float]]] = {**QUALITY_RANGES, "critical_factor": (1, math.inf)}

    def __init__(self, features: dict[str, FeatureSpec], reference: dict[str, np.ndarray],
                 settings: QualitySettings | None = None, critical_factor: float = 2.0) -> None:
        self.settings = settings or QualitySettings()
        check_params(type(self).__name__, self.param_ranges,
                     {**msgspec.structs.asdict(self.settings), "critical_factor": critical_factor})
        self.features = features
        self.critical_factor = critical_factor
        self.ref_missing: dict[str, float] = {}
        self.ranges: dict[str, tuple[float, float]] = {}
        self.categories: dict[str, CategoricalBinning] = {}
        self.unseen_share: dict[str, float] = {}  # the reference's Good-Turing share of unseen values
        self.reference_values: dict[str, int] = {}  # its non-missing values (the share's precision)
        for name, fs in features.items():
            values = reference.get(name)
            if values is None or values.size == 0:
                self.ref_missing[name] = 0.0
                continue
            self.ref_missing[name] = float(missing_mask(values).mean())
            if fs.type == "numeric":
                v = np.asarray(values, dtype=np.float64)
                v = v[np.isfinite(v)]
                lo = fs.min if fs.min is not None else (float(v.min()) if v.size else -np.inf)
                hi = fs.max if fs.max is not None else (float(v.max()) if v.size else np.inf)
                self.ranges[name] = (lo, hi)
            else:
                self.categories[name] = CategoricalBinning.from_reference(values, 10**9)
                self.unseen_share[name] = unseen_share(values)
                self.reference_values[name] = int((~missing_mask(values)).sum())
        self._type_errors: dict[str, int] = {}
        self._missing_keys: dict[str, int] = {}
        self._undeclared: dict[str, int] = {}
        self._flagged_undeclared: list[str] = []
        self._future = 0  # events of the open window dated in the future (their clock refused them)

    def add_counters(self, type_errors: dict[str, int], missing_keys: dict[str, int],
                     undeclared_keys: dict[str, int]) -> None:
        for src, dst in ((type_errors, self._type_errors), (missing_keys, self._missing_keys),
                         (undeclared_keys, self._undeclared)):
            for k, v in src.items():
                if k in dst or len(dst) < MAX_TRACKED_KEYS:
                    dst[k] = dst.get(k, 0) + int(v)

    def add_future(self, count: int) -> None:
        """Events (predictions or outcomes) whose timestamp lay beyond the clock's future tolerance."""
        self._future += int(count)

    def _finding(self, detector: str, subject: str, rate: float, limit: float, n: int, end: float,
                 what: str, extra: dict[str, Any] | None = None) -> Finding:
        degraded = rate > limit
        op = ">" if degraded else "<="
        return Finding(kind="quality", detector=detector, subject=subject, statistic=rate, threshold=limit,
                       degraded=degraded, window_end=end, window_size=n,
                       severity=severity(rate, limit, 0.0, self.critical_factor)  # type: ignore[arg-type]
                       if degraded else "warning",
                       summary=f"{what} of {subject} {fmt(rate)} {op} {fmt(limit)}",
                       details={"n": n, **(extra or {})})

    def evaluate_missing(self, columns: dict[str, np.ndarray], n: int, window_end: float) -> list[Finding]:
        """The missing-rate findings of ``n`` events (a window, or a block when called per block)."""
        out: list[Finding] = []
        for name in self.features:
            values = columns.get(name)
            if values is None or n == 0:
                continue
            ref_rate = self.ref_missing.get(name, 0.0)
            out.append(self._finding("missing_rate", name, float(missing_mask(values).mean()),
                                     min(ref_rate + self.settings.max_missing_increase, 1.0), n, window_end,
                                     "missing rate", {"reference_rate": ref_rate}))
        return out

    def evaluate(self, columns: dict[str, np.ndarray], n: int, window_end: float,
                 missing: bool = True) -> list[Finding]:
        """Findings of one window of ``n`` events; resets the batch counters.

        ``missing=False`` leaves the missing rate out (checked per block by :meth:`evaluate_missing`).
        """
        s = self.settings
        out: list[Finding] = self.evaluate_missing(columns, n, window_end) if missing else []
        for name in self.features:
            values = columns.get(name)
            if values is None or n == 0:
                continue
            out.append(self._finding("type_mismatch_rate", name, self._type_errors.get(name, 0) / n,
                                     s.max_type_error_rate, n, window_end, "type mismatch rate"))
            out.append(self._finding("missing_key_rate", name, self._missing_keys.get(name, 0) / n,
                                     s.max_missing_key_rate, n, window_end, "missing key rate"))
            if name in self.ranges:
                lo, hi = self.ranges[name]
                v = np.asarray(values, dtype=np.float64)
                outside = int(np.sum((v < lo) | (v > hi)))
                out.append(self._finding("out_of_range_rate", name, outside / n, s.max_out_of_range_rate, n,
                                         window_end, "out-of-range rate", {"lower": lo, "upper": hi}))
            elif name in self.categories:
                counts = self.categories[name].counts(values)
                expected = self.unseen_share[name]
                out.append(self._finding("unseen_category_rate", name, float(counts[-1]) / n,
                                         unseen_limit(expected, s.max_unseen_rate, n, self.reference_values[name]),
                                         n, window_end, "unseen-category rate", {"reference_unseen_share": expected}))
        seen = set(self._undeclared)
        for key in [*self._undeclared, *[k for k in self._flagged_undeclared if k not in seen]]:
            out.append(self._finding("undeclared_key_rate", key, self._undeclared.get(key, 0) / max(n, 1),
                                     s.max_undeclared_rate, n, window_end, "undeclared key rate"))
        self._flagged_undeclared = [f.subject for f in out if f.detector == "undeclared_key_rate" and f.degraded]
        if n:
            out.append(self._finding("future_timestamp_rate", "timestamp", self._future / n,
                                     s.max_future_timestamp_rate, n, window_end, "future-dated rate",
                                     {"future_events": self._future}))
        self._type_errors, self._missing_keys, self._undeclared, self._future = {}, {}, {}, 0
        return out

    def state(self) -> dict[str, Any]:
        """The batch counters of the open window and the undeclared keys flagged by the last one."""
        return {"type_errors": dict(self._type_errors), "missing_keys": dict(self._missing_keys),
                "undeclared": dict(self._undeclared), "flagged": list(self._flagged_undeclared),
                "future": self._future}

    def load_state(self, state: dict[str, Any]) -> None:
        self._type_errors = dict(state["type_errors"])
        self._missing_keys = dict(state["missing_keys"])
        self._undeclared = dict(state["undeclared"])
        self._flagged_undeclared = list(state["flagged"])
        self._future = int(state.get("future", 0))

"""Business KPIs per outcome window (mean, sum or rate of an outcome ``kpis`` field).

Baseline and spread come from the reference outcomes like performance metrics
(see ``performance.Baseline``). A ``sum`` depends on how many outcomes a window
has, so it is judged per outcome: its statistic is sum / n (the window's sum
is ``details["sum"]``, its n the finding's); thresholds apply to that per-event value.

>>> import numpy as np
>>> from driftwarden.detectors.settings import KpiSettings
>>> rng = np.random.default_rng(0)
>>> k = KpiMonitor([KpiSettings("revenue")], {"revenue": rng.normal(10, 2, 5000)}, window=500)
>>> [(f.subject, round(f.statistic, 2), f.degraded) for f in k.evaluate({"revenue": rng.normal(8, 2, 500)}, 0.0)]
[('revenue', 7.95, True)]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from driftwarden.detectors.base import check_params, register
from driftwarden.detectors.findings import Finding
from driftwarden.detectors.performance import Baseline, evaluate_against
from driftwarden.detectors.settings import KpiSettings
from driftwarden.detectors.thresholds import threshold_from_settings

NAN = float("nan")


def _aggregate(kind: str, key: str) -> Callable[[dict[str, np.ndarray]], float]:
    def fn(cols: dict[str, np.ndarray]) -> float:
        v = cols[key]
        v = v[~np.isnan(v)]
        if v.size == 0:
            return NAN
        if kind == "rate":
            return float(np.mean(v > 0))
        return float(v.mean())

    return fn


@register("kpi")
class KpiMonitor:
    """The configured KPIs of one model."""

    param_ranges: ClassVar[dict[str, tuple[float, float]]] = {"window": (1, 1e9), "critical_factor": (1, math.inf)}

    def __init__(self, kpis: list[KpiSettings], reference: dict[str, np.ndarray], window: int,
                 critical_factor: float = 2.0) -> None:
        check_params(type(self).__name__, self.param_ranges, {"window": window, "critical_factor": critical_factor})
        self.kpis = kpis
        self.critical_factor = critical_factor
        self.fns = {k.name: _aggregate(k.aggregate, k.field or k.name) for k in kpis}
        self.strategies = {k.name: threshold_from_settings(k.threshold) for k in kpis}
        self.baselines = {}
        for k in kpis:
            key = k.field or k.name
            ref = {key: np.asarray(reference.get(key, np.empty(0)), dtype=np.float64)}
            self.baselines[k.name] = Baseline(self.fns[k.name], ref, window)

    def evaluate(self, kpis: dict[str, np.ndarray], window_end: float) -> list[Finding]:
        out = []
        for k in self.kpis:
            key = k.field or k.name
            if key not in kpis:
                continue
            n = int(np.sum(~np.isnan(kpis[key])))
            rng = (0.0, 1.0) if k.aggregate == "rate" else (-np.inf, np.inf)
            f = evaluate_against(kind="kpi", detector=k.aggregate, subject=k.name,
                                 value=self.fns[k.name]({key: kpis[key]}), baseline=self.baselines[k.name],
                                 n=n, strategy=self.strategies[k.name], direction=k.direction, rng=rng,
                                 window_end=window_end, critical_factor=self.critical_factor,
                                 label=f"{k.aggregate} of {k.name}")
            if f is not None:
                if k.aggregate == "sum":
                    f.details["sum"] = float(np.nansum(kpis[key]))  # the window's total, judged per outcome
                out.append(f)
        return out

    def state(self) -> dict[str, Any]:
        """Stateless between windows (the monitor holds the window): only which KPIs are judged."""
        return {"kpis": [k.name for k in self.kpis]}

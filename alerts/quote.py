"""What an alert says in numbers: the metric, and for a sequential check, separately, its evidence.

A windowed check's statistic is the metric itself: PSI 0.31 over 2,000 events against the
threshold 0.2. A sequential check decides on accumulated evidence, Page's CUSUM ``S`` against
its threshold ``h``, and ``S`` is not the metric: a user reads the metric over the change
window (PSI of ``age`` over the 2,500 values since the change, against its floor; accuracy
over the 2,191 outcomes since the change, against the reference's), and, labelled apart, the
evidence (``CUSUM S 19.1 above h 9.55``, the false-alarm budget ``h`` was calibrated to).

The alert (``alerts/lifecycle.py``), its Slack and log lines, its Alertmanager annotations and
the root-cause report all print :meth:`Quote.metric_text` and :meth:`Quote.evidence_text` of
the same finding, so they quote the same numbers.

Findings come from detectors that may add or drop details: every detail is read defensively,
and a finding without the details of a sequential verdict is quoted as a windowed one.

>>> import dataclasses
>>> from driftwarden.detectors.findings import Finding
>>> q = quote(Finding("data_drift", "psi", "age", 0.31, 0.2, True, 60.0, 2000, p_value=0.001))
>>> q.metric_text(), q.evidence_text()
('psi 0.31 over 2,000 events (threshold 0.2, p=0.001)', '')
>>> seq = Finding("data_drift", "cusum", "age", 19.1, 9.55, True, 60.0, 500, p_value=1e-80, details={
...     "sequential": True, "effect": 1.53, "effect_metric": "PSI", "effect_floor": 0.1,
...     "change_window_events": 2500, "test": "KS", "predictions_per_false_alarm": 2_592_000})
>>> q = quote(seq)
>>> q.metric_text()
'PSI 1.53 over the 2,500 values since the change (floor 0.1)'
>>> q.evidence_text()
'CUSUM S 19.1 above h 9.55 (block KS p=1e-80; budget: 1 false alarm per 2.59M predictions)'
>>> quote(dataclasses.replace(seq, details={**seq.details, "effect": 0.0867})).metric_text()
'PSI 0.0867 over the 2,500 values since the change (under its floor 0.1 now; raised past it, held while S is above h)'
>>> acc = Finding("performance", "accuracy", "accuracy", 1.98, 1.0, True, 60.0, 2191, details={
...     "leading": "all", "cusum": 28.0, "cusum_threshold": 14.5, "accuracy_since_change": 0.498,
...     "baseline": 0.739, "false_alarms_per_million": 0.2})
>>> quote(acc).metric_text()
'accuracy 0.498 over the 2,191 outcomes since the change (reference 0.739)'
>>> quote(acc).evidence_text()
'CUSUM S 28 above h 14.5 (budget: 0.2 false alarms per 1M outcomes)'
>>> auc = Finding("performance", "roc_auc", "roc_auc", 16.1, 8.05, True, 60.0, 500, details={
...     "sequential": True, "value": 0.51, "baseline": 0.81, "change_window_value": 0.52, "effect": 0.29,
...     "effect_floor": 0.0405, "change_window_blocks": 4, "block": 500, "predictions_per_false_alarm": 5e6})
>>> quote(auc).metric_text()
'roc_auc 0.52 over the 2,000 outcomes since the change (reference 0.81)'
>>> quote(auc).evidence_text()
'CUSUM S 16.1 above h 8.05 (budget: 1 false alarm per 5M outcomes)'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from driftwarden.alerts.model import Alert
from driftwarden.detectors.findings import Finding, Scalar


@dataclass(frozen=True, slots=True)
class Quote:
    """The numbers of one finding as a user reads them."""

    metric: str  # "psi", "PSI", "accuracy", "relative PCA error change"
    value: float
    bound: float | None  # the threshold, floor or reference value the metric is read against
    bound_label: str  # "threshold", "floor" or "reference"
    events: int  # how many values the metric is over
    since_change: bool  # over the change window of a sequential check (else: one window)
    unit: str = "events"  # "values", "outcomes"
    p_value: float | None = None  # of the metric's own test (windowed checks)
    evidence: float | None = None  # CUSUM S
    evidence_threshold: float | None = None  # its h
    evidence_name: str = "CUSUM"  # "CUSUM" or "CUSUM of plan=pro"
    evidence_note: str = ""  # the latest block's test, the false-alarm budget

    @property
    def sequential(self) -> bool:
        return self.evidence is not None

    def metric_text(self) -> str:
        over = (f" over the {self.events:,} {self.unit} since the change" if self.since_change
                else f" over {self.events:,} {self.unit}" if self.events > 0 else "")
        bound = f"{self.bound_label} {number(self.bound)}" if self.bound is not None else ""
        if self.sequential and self.bound_label == "floor" and self.bound is not None and self.value < self.bound:
            # raised when the effect was past the floor; the pooled effect shrank as the window grew
            bound = f"under its floor {number(self.bound)} now; raised past it, held while S is above h"
        p = f"p={number(self.p_value, 2)}" if self.p_value is not None else ""
        extra = ", ".join(x for x in (bound, p) if x)
        return f"{self.metric} {number(self.value)}{over}" + (f" ({extra})" if extra else "")

    def evidence_text(self) -> str:
        if self.evidence is None or self.evidence_threshold is None:
            return ""
        op = "above" if self.evidence >= self.evidence_threshold else "below"  # words: no escaping in mrkdwn or HTML
        note = f" ({self.evidence_note})" if self.evidence_note else ""
        return f"{self.evidence_name} S {number(self.evidence)} {op} h {number(self.evidence_threshold)}{note}"

    def values(self) -> dict[str, float | None]:
        """The numbers an alert stores (``Alert.values``): ``statistic``/``threshold`` are the metric's."""
        out: dict[str, float | None] = {"statistic": self.value, "threshold": self.bound, "p_value": self.p_value,
                                        "window_size": float(self.events)}
        if self.evidence is not None:
            out["evidence"], out["evidence_threshold"] = self.evidence, self.evidence_threshold
        return out


def number(x: float | None, digits: int = 3) -> str:
    """``0.312``, ``19.1``, ``2.59M``, ``1e-80``: short and the same everywhere."""
    if x is None:
        return "n/a"
    if not math.isfinite(x):
        return str(x)
    if x != 0 and abs(x) < 1e-3:
        return f"{x:.{max(digits - 2, 1)}g}" if abs(x) >= 1e-4 else f"{x:.0e}".replace("e-0", "e-")
    for size, suffix in ((1e9, "G"), (1e6, "M")):
        if abs(x) >= size:
            return f"{x / size:.{digits}g}{suffix}"
    if abs(x) >= 10 ** digits:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _num(details: dict[str, Scalar], key: str) -> float | None:
    v = details.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def quote(f: Finding) -> Quote:
    """The numbers of ``f``: the metric (and for a sequential verdict, the evidence apart)."""
    d = f.details
    s, h = _num(d, "cusum"), _num(d, "cusum_threshold")
    value = _num(d, f"{f.detector}_since_change")
    if s is not None and h is not None and value is not None:  # a sequential performance verdict
        lead = str(d.get("leading") or "all")
        budget = _num(d, "false_alarms_per_million")
        note = f"budget: {number(budget)} false alarms per 1M outcomes" if budget is not None else ""
        return Quote(f.detector, value, _num(d, "baseline"), "reference", f.window_size, True, "outcomes",
                     evidence=s, evidence_threshold=h, evidence_name="CUSUM" if lead == "all" else f"CUSUM of {lead}",
                     evidence_note=note)
    mean = _num(d, "change_window_value")
    if d.get("sequential") is True and mean is not None:  # a sequential metric verdict (F1, ROC AUC, CBPE estimates)
        blocks, block = _num(d, "change_window_blocks"), _num(d, "block")
        unit = "outcomes" if f.kind == "performance" else "predictions"
        per = _num(d, "predictions_per_false_alarm")
        note = f"budget: 1 false alarm per {number(per)} {unit}" if per is not None else ""
        over = int(blocks * block) if blocks is not None and block is not None else f.window_size
        return Quote(f.detector, mean, _num(d, "baseline"), "reference", over, blocks is not None, unit,
                     evidence=f.statistic, evidence_threshold=f.threshold, evidence_note=note)
    effect = _num(d, "effect")
    if d.get("sequential") is True and effect is not None:  # a sequential drift verdict (S, h in the finding)
        events = _num(d, "change_window_events")
        notes = []
        if (p := f.p_value) is not None:
            notes.append(f"block {d.get('test') or 'test'} p={number(p, 2)}")
        per = _num(d, "predictions_per_false_alarm")
        if per is not None:
            notes.append(f"budget: 1 false alarm per {number(per)} predictions")
        return Quote(str(d.get("effect_metric") or "effect"), effect, _num(d, "effect_floor"), "floor",
                     int(events) if events is not None else f.window_size, events is not None, "values",
                     evidence=f.statistic, evidence_threshold=f.threshold, evidence_note="; ".join(notes))
    return Quote(f.detector, f.statistic, f.threshold, "threshold", f.window_size, False, p_value=f.p_value)


def metric_text(alert: Alert) -> str:
    """The alert's metric line (as its lifecycle wrote it; built from its values for older alerts)."""
    text = alert.annotations.get("metric")
    if text:
        return text
    v = alert.values
    q = Quote(alert.labels.get("detector", "statistic"), v.get("statistic") or math.nan, v.get("threshold"),
              "threshold", int(v.get("window_size") or 0), False, p_value=v.get("p_value"))
    return q.metric_text()


def evidence_text(alert: Alert) -> str:
    return alert.annotations.get("evidence", "")

"""The short Markdown summary that the Slack message carries (with a link to the HTML report).

User text is put in code spans with backticks removed and ``& < >`` escaped
(Slack's mrkdwn escaping), so a hostile value can neither format the message
nor inject a link or a mention.
"""

from __future__ import annotations

from datetime import UTC, datetime

from driftwarden.alerts.quote import number, quote
from driftwarden.alerts.reports.report import Report

MAX_VALUE = 60
OUTCOME_KINDS = ("performance", "estimated_performance", "concept_drift", "kpi")


def code(value: object, limit: int = MAX_VALUE) -> str:
    text = " ".join(str(value).replace("`", "'").split())
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f"`{text}`" if text else "`(empty)`"


def _n(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or x != x else f"{x:.{digits}g}"


def _when(t: float | None) -> str:
    return "unknown" if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _span(onset: float | None, began: float | None) -> str:
    if onset is None or began is None:
        return "?"
    minutes = max(0.0, onset - began) / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def render_markdown(report: Report, link: str | None = None, suspects: int = 3, segments: int = 2) -> str:
    r = report
    version = f" {code(r.model_version)}" if r.model_version else ""
    lines = [f"*Model {code(r.model_id)}{version}: root-cause report* (onset {_when(r.onset)})"]
    for f in r.triggering[:3]:
        lo, hi = f.details.get("ci_low"), f.details.get("ci_high")
        ci = f", 95% CI {number(lo)}-{number(hi)}" if isinstance(lo, float) and isinstance(hi, float) else ""
        q = quote(f)
        evidence = f"; evidence: {q.evidence_text()}" if q.sequential else ""
        test = "" if q.metric.lower() == f.detector.lower() or q.sequential else f" {f.detector}"
        lines.append(f"- {f.severity}: {code(f.kind)} {code(f.subject)}{test}: {q.metric_text()}{ci}{evidence}")
    if len(r.triggering) > 3:
        lines.append(f"- and {len(r.triggering) - 3} more (see the report)")
    top = [s for s in r.suspects if (s.drift_degraded or s.onset_fit == "blamed") and s.onset_fit != "before"][:suspects]
    before = [s for s in r.suspects if s.onset_fit == "before"][:suspects]
    if top:
        lines.append("*Top suspects:* " + "; ".join(
            f"{code(s.feature)} ({'blamed by the alert; ' if s.onset_fit == 'blamed' else ''}{s.drift_metric} "
            f"{_n(s.drift_statistic)} vs {_n(s.drift_threshold)}, importance {_n(s.importance, 2)})" for s in top))
    elif before:
        outcome = any(f.kind in OUTCOME_KINDS for f in r.triggering)
        lines.append("*Suspects:* no feature drift lines up with the onset" + (
            " (the relation between features and outcome may have changed: see segments)" if outcome else ""))
    elif r.suspects:
        lines.append("*Suspects:* no feature drifted beyond its threshold (see segments and changes)")
    if before:
        lines.append("*Drifted before the onset while the triggering checks held:* " + "; ".join(
            f"{code(s.feature)} (since {_span(r.onset, s.drift_onset)} before)" for s in before))
    for s in r.segments[:segments]:
        word = "fell" if s.change < 0 else "rose"
        unit = f"{abs(s.change) * 100:.0f} points" if s.metric == "accuracy" else _n(abs(s.change))
        lines.append(
            f"*Segment:* {s.metric} {word} {unit} for {code(s.label, 100)} "
            f"({_n(s.value)} vs {_n(s.reference_value)} reference, n={s.n})"
        )
    lined = [c for c in r.changes if c.lined_up][:3]
    if lined:
        lines.append("*Lined up with the onset:* " + "; ".join(f"{c.kind} {code(c.subject)}" for c in lined))
    if r.labels.get("coverage") is not None:
        lines.append(f"Labels: coverage {r.labels['coverage']:.0%}, median lag {_n(r.labels.get('median_lag_seconds'))} s")
    if link:
        lines.append(f"<{link}|Open the full report>")
    return "\n".join(lines) + "\n"

"""The report as one self-contained HTML page: inline CSS, inline PNG plots, no script at all.

Every value that comes from data or configuration (model ids, feature names,
category values, summaries) is escaped with :func:`esc` (``html.escape`` with
quotes) and shortened; the page carries a Content-Security-Policy that forbids
scripts, external resources and forms, so it stays inert even if opened from a
hostile reports directory. Plots are ``data:`` URIs produced by ``plots.py``.
Each section's heading has an id (``what-fired``, ``suspects``, ``changes``, ``quality``,
``segments``, ``timelines``, ``other-degraded``, ``reproduce``), the headline ``headline``:
anchors for links, and what the browser test looks for.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from driftwarden.alerts.quote import quote
from driftwarden.alerts.reports.report import Report
from driftwarden.detectors.findings import Finding

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'none'; base-uri 'none'"
MAX_TEXT = 200
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:1.6em}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}th,td{border:1px solid #ddd;padding:.25em .5em;
text-align:left;vertical-align:top;overflow-wrap:anywhere;max-width:28em}th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b00020;font-weight:600}.ok{color:#2e7d32}.muted{color:#777}.plots img{max-width:100%;margin:.3em}
.lead{font-size:1.05em}code{background:#f4f4f4;padding:0 .2em}
table.findings td:nth-child(-n+3){white-space:nowrap}
"""


def esc(value: object, limit: int = MAX_TEXT) -> str:
    """Escaped (quotes too) and shortened text of any value."""
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return html.escape(text, quote=True)


def num(x: float | int | None, digits: int = 4) -> str:
    if x is None:
        return "&ndash;"
    if isinstance(x, int) and not isinstance(x, bool):
        return f"{x:,}"
    if x != x:
        return "NaN"
    return esc(f"{x:.{digits}g}")


def when(t: float | None) -> str:
    if t is None:
        return "&ndash;"
    return esc(datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], empty: str = "none", cls: str = "") -> str:
    """Headers are ours (escaped anyway); cells must already be escaped HTML fragments."""
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    if not body:
        return f'<p class="muted">{esc(empty)}</p>'
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    attr = f' class="{esc(cls)}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _finding_rows(findings: Sequence[Finding]) -> list[list[str]]:
    rows = []
    for f in findings:
        lo, hi = f.details.get("ci_low"), f.details.get("ci_high")
        ci = f"{num(lo)} &ndash; {num(hi)}" if isinstance(lo, float) and isinstance(hi, float) else "&ndash;"
        cls = "bad" if f.degraded else "ok"
        q = quote(f)
        rows.append(
            [
                esc(f.kind),
                esc(f.detector),
                f"<code>{esc(f.subject)}</code>",
                f'<span class="{cls}">{esc(q.metric_text(), 400)}</span>',
                ci,
                esc(q.evidence_text(), 400) if q.sequential else "&ndash;",
                esc(f.severity),
                when(f.window_end),
                esc(f.summary, 400),
            ]
        )
    return rows


FINDING_HEADERS = [
    "kind",
    "detector",
    "subject",
    "metric",
    "interval",
    "evidence (sequential checks)",
    "severity",
    "window end",
    "summary",
]


def _pct(x: float | None) -> str:
    return "&ndash;" if x is None else esc(f"{x:.1%}")


def render(report: Report, bundle_name: str | None = None) -> str:
    r = report
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP, 1000)}">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>driftwarden report: {esc(r.model_id, 80)}</title><style>{CSS}</style></head><body>",
        f'<h1 id="headline">Model <code>{esc(r.model_id)}</code>: {esc(r.headline, 300)}</h1>',
        f'<p class="lead">Model version <code>{esc(r.model_version or "unknown")}</code> &middot; '
        f"onset {when(r.onset)} (last healthy window {when(r.last_healthy)}) &middot; report {when(r.created_at)}"
        f" &middot; id <code>{esc(r.report_id)}</code></p>",
    ]
    w, lab = r.window, r.labels
    parts.append(
        f"<p>Evaluated window: {num(w.get('rows'))} predictions from {when(w.get('start'))} to "
        f"{when(w.get('end'))}. Labels: {num(lab.get('outcomes'))} joined outcomes, coverage "
        f"{_pct(lab.get('coverage'))}, median label lag {num(lab.get('median_lag_seconds'))} s "
        f"(p90 {num(lab.get('p90_lag_seconds'))} s).</p>"
    )
    if r.notes:
        parts.append("<ul>" + "".join(f"<li>{esc(n, 400)}</li>" for n in r.notes) + "</ul>")
    parts += ['<h2 id="what-fired">What fired</h2>',
              table(FINDING_HEADERS, _finding_rows(r.triggering), "on-demand report", "findings")]
    parts += [
        '<h2 id="suspects">Suspects</h2>',
        '<p class="muted">Features ranked by drift score (the drift metric / its threshold; for a sequential '
        "check its effect over the change window / the floor) "
        "x importance, drift that fits the onset first; drift that began while the triggering checks "
        "were still healthy (onset: before) does not explain it and ranks after; features a triggering alert blames "
        "itself (onset: blamed) rank first; r: correlation of the "
        "feature's drift with the performance degradation over recent windows.</p>",
    ]
    srows = []
    for i, s in enumerate(r.suspects, 1):
        cls = "bad" if s.drift_degraded else ""
        new = ", ".join(s.new_categories[:5])
        srows.append(
            [
                num(i),
                f"<code>{esc(s.feature)}</code>",
                esc(s.type),
                num(s.rank_score, 3),
                f'<span class="{cls}">{num(s.drift_score, 3)}</span>',
                f"{esc(s.drift_metric)} {num(s.drift_statistic)} / {num(s.drift_threshold)}",
                num(s.drift_p_value),
                f"{num(s.importance, 3)} ({esc(s.importance_source)})",
                f"{num(s.drift_performance_correlation, 3)} ({num(s.correlation_windows)} windows)",
                f"{_pct(s.reference_missing_rate)} &rarr; {_pct(s.current_missing_rate)}",
                esc(new),
                esc(s.onset_fit),
            ]
        )
    parts.append(
        table(
            [
                "#",
                "feature",
                "type",
                "rank score",
                "drift score",
                "statistic / threshold",
                "p-value",
                "importance",
                "r (drift, perf)",
                "missing",
                "new categories",
                "onset",
            ],
            srows,
        )
    )
    parts.append(_plots(r, [k for k in r.plots if k.startswith("distribution:")]))
    parts.append('<h2 id="changes">Changes near the onset</h2>')
    crows = [
        [
            ('<span class="bad">yes</span>' if c.lined_up else "no"),
            esc(c.kind),
            f"<code>{esc(c.subject)}</code>",
            when(c.time),
            num(c.offset_seconds),
            esc(c.summary, 400),
        ]
        for c in r.changes
    ]
    parts.append(table(["lined up", "kind", "subject", "time", "seconds from onset", "what"], crows))
    parts += ['<h2 id="quality">Data-quality events</h2>',
              table(FINDING_HEADERS, _finding_rows(r.quality_events), cls="findings")]
    parts.append(f'<h2 id="segments">Worst segments ({esc(r.segment_metric or "no joined outcomes")})</h2>')
    grows = [
        [
            f"<code>{esc(s.label, 300)}</code>",
            num(s.n),
            num(s.value, 3),
            f"{num(s.ci_low, 3)} &ndash; {num(s.ci_high, 3)}",
            num(s.reference_value, 3),
            num(s.reference_n),
            f'<span class="bad">{num(s.change, 3)}</span>',
            num(s.worse_by_at_least, 3),
        ]
        for s in r.segments
    ]
    parts.append(
        table(
            ["segment", "rows", "value", "95% interval", "reference", "reference rows", "change", "worse by at least"],
            grows,
            "no joined outcomes in the window",
        )
    )
    parts.append(_plots(r, ["segments"]))
    parts += ['<h2 id="timelines">Timelines</h2>', _plots(r, [k for k in r.plots if k.startswith("timeline:")])]
    parts += ['<h2 id="other-degraded">Other degraded findings (recent)</h2>',
              table(FINDING_HEADERS, _finding_rows(r.recent_degraded), cls="findings")]
    parts.append('<h2 id="reproduce">Reproduce</h2>')
    if bundle_name:
        parts.append(
            f'<p>Replay bundle: <a href="{esc(bundle_name)}">{esc(bundle_name)}</a> &mdash; '
            f"<code>driftwarden replay {esc(bundle_name)}</code> recomputes these statistics.</p>"
        )
    parts.append(table(["package", "version"], [[esc(k), esc(v)] for k, v in sorted(r.versions.items())]))
    parts.append("</body></html>")
    return "\n".join(parts)


def _plots(report: Report, names: Sequence[str]) -> str:
    imgs = []
    for name in names:
        uri = report.plots.get(name)
        if uri and uri.startswith("data:image/png;base64,"):
            imgs.append(f'<img alt="{esc(name)}" src="{esc(uri, len(uri) + 1)}">')
    return f'<div class="plots">{"".join(imgs)}</div>' if imgs else ""

"""The ``/reports/`` index and ``/reports/<model>/`` history pages, self-contained like report.html.

Same rules as ``html.py``: inline CSS, no script, the same Content-Security-Policy, every
value from data (model ids, subjects, problems) escaped. Links are relative (``./churn/``,
``./<report id>/report.html``, ``../``) and percent-encoded, so the pages work behind a
proxy that serves the daemon under a path prefix.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from driftwarden.alerts.reports.catalog import Entry, Fired, Model, Summary
from driftwarden.alerts.reports.html import CSP, CSS, esc, table, when

MAX_FIRED = 6
PAGE_CSS = CSS + """
.sev-critical{color:#b00020;font-weight:600}.sev-warning{color:#a15c00;font-weight:600}
ul.fired{margin:0;padding-left:1.1em}nav{margin-bottom:1em}nav a{margin-right:1em}
th,td a,.sev-critical,.sev-warning{white-space:nowrap;overflow-wrap:normal}
"""


def href(path: str) -> str:
    """A relative link: percent-encoded (``:`` and ``?`` too, so no part reads as a scheme or query), escaped.

    >>> href("weird:model?x/")
    './weird%3Amodel%3Fx/'
    >>> href("../archive/m/r1.tar.gz")
    '../archive/m/r1.tar.gz'
    """
    encoded = quote(path, safe="/")
    return esc(encoded if encoded.startswith("../") else "./" + encoded, 2000)


def _page(title: str, body: Sequence[str]) -> str:
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP, 1000)}">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{esc(title, 120)}</title><style>{PAGE_CSS}</style></head><body>",
        *body,
        "</body></html>",
    ])


def severity(summary: Summary) -> str:
    level = summary.severity
    if level is None:
        return '<span class="muted">on demand</span>' if summary.problem is None else "&ndash;"
    return f'<span class="sev-{esc(level, 20)}">{esc(level, 20)}</span>'


def fired(summary: Summary) -> str:
    """What fired, as a list (at most :data:`MAX_FIRED` items, then how many more)."""
    if summary.problem is not None:
        return f'<span class="bad">{esc(summary.problem)}</span>'
    if not summary.fired:
        return '<span class="muted">nothing (on-demand report)</span>'

    def item(f: Fired) -> str:
        return f"<li>{esc(f.kind)} {esc(f.detector)} on <code>{esc(f.subject)}</code></li>"

    items = [item(f) for f in summary.fired[:MAX_FIRED]]
    if len(summary.fired) > MAX_FIRED:
        items.append(f'<li class="muted">and {len(summary.fired) - MAX_FIRED} more</li>')
    return f'<ul class="fired">{"".join(items)}</ul>'


def render_index(models: Sequence[Model]) -> str:
    rows = []
    for m in models:
        link = f'<a class="model" href="{href(m.folder + "/")}"><code>{esc(m.model_id)}</code></a>'
        if m.latest is None:
            rows.append([link, '<span class="muted">no report yet</span>', "&ndash;", "&ndash;", "&ndash;", "0"])
            continue
        e = m.latest
        report = dict(e.files).get("report")
        stamp = when(e.time)
        latest = f'<a href="{href(m.folder + "/" + report)}">{stamp}</a>' if report else stamp
        if e.archived:
            latest += ' <span class="muted">(archived)</span>'
        rows.append([link, latest, when(e.summary.onset), fired(e.summary), severity(e.summary), f"{m.reports:,}"])
    body = [
        "<h1>driftwarden reports</h1>",
        f'<p class="lead">{len(models):,} model(s). Each model links to its history of reports, newest first.</p>',
        '<div id="models">',
        table(["model", "latest report", "onset", "what fired", "severity", "reports"], rows,
              "no models: no reports written yet and no model configured"),
        "</div>",
    ]
    return _page("driftwarden reports", body)


def render_history(model_id: str, entries: Sequence[Entry]) -> str:
    rows = []
    for e in entries:
        links = " ".join(f'<a href="{href(path)}">{esc(label)}</a>' for label, path in e.files)
        state = '<span class="muted">archived</span>' if e.archived else ""
        rows.append([when(e.time), when(e.summary.onset), fired(e.summary), severity(e.summary),
                     f"<code>{esc(e.report_id)}</code> {state}", links or "&ndash;"])
    archived = sum(e.archived for e in entries)
    body = [
        '<nav><a id="back" href="../">&larr; all models</a></nav>',
        f"<h1>Reports of model <code>{esc(model_id)}</code></h1>",
        f'<p class="lead">{len(entries):,} report(s), newest first'
        + (f", {archived:,} of them archived (one <code>.tar.gz</code> each)" if archived else "") + ".</p>",
        '<div id="reports">',
        table(["report time", "onset", "what fired", "severity", "id", "files"], rows, "no report yet"),
        "</div>",
    ]
    return _page(f"driftwarden reports: {model_id}", body)

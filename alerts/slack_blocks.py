"""Block Kit rendering of alert notifications for Slack (pure functions, no I/O).

What the on-call reads at 3 a.m., first lines first: severity and state, model and version,
the most likely cause (the notification's first alert, ``alerts/cause.py``) in the title and
first section with its numbers and threshold, since when, what it blames, then the other
alerts of the same fault under it, the report link.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from driftwarden.alerts.model import Alert
from driftwarden.alerts.notify import Notification
from driftwarden.alerts.quote import evidence_text, metric_text, number

MAX_ALERTS = 10
_ICON = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "resolved": ":white_check_mark:"}


def when(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


def clock(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M UTC")


def span(seconds: float) -> str:
    minutes = int(max(0.0, seconds) // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    return " ".join(p for p in (f"{days}d" if days else "", f"{hours}h" if hours else "", f"{mins}m") if p)


def _worst(alerts: list[Alert]) -> str:
    return "critical" if any(a.severity == "critical" for a in alerts) else "warning"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def alert_line(a: Alert, now: float) -> str:
    """One alert in mrkdwn: what, the metric vs its threshold (for a sequential check, the evidence
    on a line of its own), since when (and until when)."""
    v, lab = a.values, a.labels
    head = (
        f"{_ICON.get(a.severity, '')} *{lab.get('kind', '?')}* `{lab.get('detector', '?')}` on "
        f"`{lab.get('subject', '?')}`: {metric_text(a)}"
    )
    end = v.get("window_end")
    if end is not None:
        head += f", ending {clock(end)}"
    latest, latest_end = v.get("latest_statistic"), v.get("latest_window_end")
    if a.state == "firing" and latest is not None and latest_end is not None and latest_end != v.get("window_end"):
        head += f"; latest {number(latest)} ({clock(latest_end)})"
    if a.state == "resolved" and a.ends_at is not None:
        tail = f"resolved {when(a.ends_at)} after {span(a.ends_at - a.starts_at)}"
        if "resolved_by" in a.annotations:
            tail += f" ({a.annotations['resolved_by']})"
    else:
        tail = f"since {when(a.starts_at)} ({span(now - a.starts_at)})"
    if a.annotations.get("supersedes"):
        head = f":arrow_up: escalated from {a.annotations['supersedes']}: " + head
    lines = [head]
    if evidence_text(a):
        lines.append(f"Evidence: {evidence_text(a)}")
    lines.append(f"_{tail}_")
    blames = a.annotations.get("blames")
    if blames:
        lines.append(f"Blames: {blames}")
    if a.labels.get("segment"):
        lines.append(f"Segment: {segment_text(a)}")
    if a.labels.get("version") or a.annotations.get("version_change"):
        lines.append(f"Model version: {a.annotations.get('version_change') or a.labels['version']}")
    if a.annotations.get("estimate"):
        lines.append(f"Estimate before the labels: {a.annotations['estimate']}")
    suspects = a.annotations.get("detail.top_suspects")
    if suspects:
        lines.append(f"Top suspects: {suspects}")
    return "\n".join(lines)[:2900]


def segment_text(a: Alert) -> str:
    """The segment a performance alert blames, with its own numbers when its check gave them."""
    d = a.annotations
    text = a.labels.get("segment", "")
    acc, ref, n, p = (_float(d.get(f"detail.segment_{k}")) for k in ("accuracy", "baseline", "n", "p_holm"))
    if acc is not None and ref is not None:
        text += f": accuracy {number(acc)} vs reference {number(ref)}"
        text += f" (n={n:,.0f}, Holm p={number(p, 2)})" if n is not None and p is not None else ""
    return text


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def report_sections(alerts: list[Alert]) -> list[dict[str, Any]]:
    """Each distinct root-cause summary once per message (several alerts share one report)."""
    seen: list[str] = []
    for a in alerts:
        summary = a.annotations.get("report_summary")
        if not summary or summary in seen:
            continue
        link = a.annotations.get("report_link")
        if link and link not in summary:
            summary += f"\n<{link}|Root-cause report>"
        seen.append(summary)
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}} for text in seen[:2]]


def title(n: Notification, alerts: list[Alert], resolved: bool) -> str:
    first = alerts[0] if alerts else None
    model = n.group_labels.get("model") or (first.model if first else "")
    version = first.labels.get("model_version", "") if first else ""
    label = "RESOLVED" if resolved else f"FIRING:{len(alerts)}"
    icon = _ICON["resolved"] if resolved else _ICON[_worst(alerts)]
    sev = "" if resolved else f" · {_worst(alerts)}"
    cause = f" · {cause_text(first)}" if first is not None else ""
    return f"{icon} [{label}] {model} {version}".rstrip() + sev + cause


def cause_text(a: Alert) -> str:
    """The lead alert in a few words: ``data_drift on age``."""
    return f"{a.labels.get('kind', '?')} on {a.labels.get('subject', '?')}"


def render(n: Notification, now: float) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) for a notification; replies only show what changed."""
    firing = n.firing_alerts()
    resolved_now = [a for a in n.alerts if a.instance in set(n.resolved)]
    if n.thread_role == "root" or n.reason == "first_notification":
        shown, head = firing, title(n, firing, resolved=False)
    elif not firing:
        shown, head = resolved_now, title(n, resolved_now, resolved=True)
    elif n.reason == "new_alerts":
        new = set(n.new)
        shown = [a for a in firing if a.instance in new]
        head = f":new: {len(shown)} new alert(s); {len(firing)} firing"
    elif n.reason == "resolved":
        shown, head = resolved_now, f"{_ICON['resolved']} {len(resolved_now)} resolved; {len(firing)} still firing"
    else:
        shown = firing
        oldest = min(a.starts_at for a in firing)
        head = f":alarm_clock: still firing: {len(firing)} alert(s) for {span(now - oldest)}"
    return head, blocks(head, shown, n, now)


def root_resolved(n: Notification, now: float) -> tuple[str, list[dict[str, Any]]]:
    """The original message rewritten once the whole group resolved (``chat.update``)."""
    head = title(n, n.alerts, resolved=True)
    return head, blocks(head, n.alerts, n, now)


def blocks(head: str, alerts: list[Alert], n: Notification, now: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": head[:150], "emoji": True}}]
    for i, a in enumerate(alerts[:MAX_ALERTS]):
        if i == 1:
            more = len(alerts) - 1
            out.append({"type": "context", "elements": [
                {"type": "mrkdwn", "text": f"Also in this fault ({more} alert{'s' if more > 1 else ''}):"}]})
        out.append({"type": "section", "text": {"type": "mrkdwn", "text": alert_line(a, now)}})
    if len(alerts) > MAX_ALERTS:
        out.append({"type": "section", "text": {"type": "mrkdwn", "text": f"... and {len(alerts) - MAX_ALERTS} more"}})
    out.extend(report_sections(alerts))
    links = [a.annotations["report_link"] for a in alerts if a.annotations.get("report_link")]
    if links:
        out.append(
            {
                "type": "actions",
                "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open report"}, "url": links[0]}],
            }
        )
    out.append(
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": (f"driftwarden · {n.reason.replace('_', ' ')} · group `{n.group_key}`")[:3000]}
            ],
        }
    )
    return out

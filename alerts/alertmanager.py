"""Alertmanager receiver: our alerts posted to an existing Prometheus Alertmanager (API v2).

One notification becomes one ``POST {url}/api/v2/alerts`` with a JSON list of alerts::

    [{"labels": {"alertname": "driftwarden_data_drift", "model": "churn", "kind": "data_drift",
                 "detector": "psi", "subject": "age", "severity": "warning", "model_version": "3.2.0",
                 ...the model's configured labels},
      "annotations": {"summary": "...", "statistic": "0.31", "threshold": "0.2", ...},
      "startsAt": "2025-11-30T05:00:00.000Z", "endsAt": "2025-11-30T17:15:00.000Z",
      "generatorURL": "http://driftwarden:8080/reports/churn/.../report.html"}]

Times. ``startsAt`` is event time: the end of the first degraded window, not the moment the
daemon noticed (annotation ``time_basis`` says so). Alertmanager treats an alert as resolved
once its ``endsAt`` has passed, so a firing alert carries a lease: ``endsAt = sent + ends_after``.
Every notification of the group re-posts all its firing alerts (new alerts, resolutions, a
report attached, and the route's ``repeat_interval``), which renews the lease; ``ends_after``
must therefore exceed the route's ``repeat_interval + group_interval`` (checked with the config;
the default is three times that). If the daemon stops, its alerts resolve in Alertmanager when
their lease runs out, as Prometheus' own do. A resolved alert is posted with ``endsAt`` = its
resolution time (event time, clamped to [startsAt, now]).

Label and annotation names are made Prometheus-safe (``[a-zA-Z_][a-zA-Z0-9_]*``: other
characters become ``_``); empty label values are dropped, as Alertmanager drops them.

>>> from driftwarden.alerts.model import Alert
>>> a = Alert(fingerprint="00cc4e21a01b3de5", severity="warning", state="firing", starts_at=1764478800.0,
...           labels={"model": "churn", "kind": "data_drift", "detector": "psi", "subject": "age",
...                   "severity": "warning", "model_version": "", "team.name": "growth"},
...           annotations={"summary": "PSI 0.31 > 0.2 on age"}, values={"statistic": 0.31, "threshold": 0.2})
>>> doc = postable_alert(a, sent_at=1764479000.0, ends_after=3600.0, reports_url="http://dw:8080/reports")
>>> doc["labels"]["alertname"], sorted(doc["labels"])[-2:], doc["startsAt"], doc["endsAt"]
('driftwarden_data_drift', ['subject', 'team_name'], '2025-11-30T05:00:00.000Z', '2025-11-30T06:03:20.000Z')
>>> doc["generatorURL"], doc["annotations"]["statistic"]
('http://dw:8080/reports/churn/', '0.31')
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from datetime import UTC, datetime
from typing import Any

from driftwarden.alerts.model import Alert
from driftwarden.alerts.notify import DeliveryResult, Notification, http_post
from driftwarden.alerts.quote import evidence_text, metric_text

_INVALID_NAME_CHAR = re.compile(r"[^a-zA-Z0-9_]")
TIME_BASIS = "startsAt is event time (end of the first degraded window); endsAt of a firing alert is a lease renewed on re-send"


def label_name(name: str) -> str:
    """A Prometheus-safe label or annotation name.

    >>> label_name("detail.top_suspects"), label_name("9lives"), label_name("")
    ('detail_top_suspects', '_9lives', '_')
    """
    safe = _INVALID_NAME_CHAR.sub("_", name)
    return safe if safe and not safe[0].isdigit() else "_" + safe


def rfc3339(t: float) -> str:
    """UTC RFC 3339 with milliseconds, as Alertmanager's API takes it.

    >>> rfc3339(1764478800.25)
    '2025-11-30T05:00:00.250Z'
    """
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _number(value: float | None) -> str | None:
    return None if value is None else f"{value:.6g}"


def postable_alert(alert: Alert, sent_at: float, ends_after: float, reports_url: str | None = None) -> dict[str, Any]:
    """One element of the ``POST /api/v2/alerts`` body (see the module docstring)."""
    labels = {label_name(k): v for k, v in alert.labels.items() if v != ""}
    labels["alertname"] = "driftwarden_" + label_name(alert.labels.get("kind", "alert"))
    labels["severity"] = alert.severity
    notes = {label_name(k): v for k, v in alert.annotations.items() if v != "" and k != "report_link"}
    for name in ("statistic", "threshold", "p_value", "window_size"):
        if (text := _number(alert.values.get(name))) is not None:
            notes[name] = text
    for name in ("evidence", "evidence_threshold"):
        if (text := _number(alert.values.get(name))) is not None:
            notes[name] = text
    if alert.values.get("statistic") is not None:
        notes["description"] = metric_text(alert) + (f"; evidence: {evidence_text(alert)}" if evidence_text(alert) else "")
    notes["driftwarden_fingerprint"] = alert.fingerprint
    notes["time_basis"] = TIME_BASIS
    if alert.state == "resolved":
        ends = max(alert.starts_at, min(alert.ends_at if alert.ends_at is not None else sent_at, sent_at))
    else:
        ends = max(sent_at, alert.starts_at) + ends_after
    doc: dict[str, Any] = {
        "labels": labels,
        "annotations": notes,
        "startsAt": rfc3339(alert.starts_at),
        "endsAt": rfc3339(ends),
    }
    link = alert.annotations.get("report_link")
    if link:
        notes["report_url"] = link
        doc["generatorURL"] = link
    elif reports_url:
        doc["generatorURL"] = f"{reports_url.rstrip('/')}/{urllib.parse.quote(alert.model, safe='')}/"
    return doc


class AlertmanagerNotifier:
    """POST a notification's alerts to ``{url}/api/v2/alerts`` (basic auth or bearer token optional)."""

    def __init__(
        self,
        url: str,
        ends_after: float,
        *,
        reports_url: str | None = None,
        username: str | None = None,
        password: str | None = None,
        bearer_token: str | None = None,
        timeout: float = 10.0,
        send_resolved: bool = True,
    ) -> None:
        if ends_after <= 0:
            raise ValueError(f"ends_after must be positive, got {ends_after!r}")
        self.endpoint = url.rstrip("/") + "/api/v2/alerts"
        self.ends_after, self.reports_url, self.timeout, self.send_resolved = ends_after, reports_url, timeout, send_resolved
        self._auth: str | None = None
        if bearer_token:
            self._auth = f"Bearer {bearer_token}"
        elif username is not None:
            self._auth = "Basic " + base64.b64encode(f"{username}:{password or ''}".encode()).decode()

    def body(self, n: Notification) -> list[dict[str, Any]]:
        """The alerts posted for ``n`` (firing ones, and resolved ones unless disabled)."""
        return [
            postable_alert(a, n.sent_at, self.ends_after, self.reports_url)
            for a in n.alerts
            if a.state == "firing" or (a.state == "resolved" and self.send_resolved)
        ]

    def notify(self, n: Notification) -> DeliveryResult:
        if n.type != "alerts":
            return DeliveryResult(ok=False, detail="an alertmanager receiver takes alerts, not retraining requests")
        alerts = self.body(n)
        if not alerts:
            return DeliveryResult(ok=True, detail="nothing to post")
        headers = {"Content-Type": "application/json", "User-Agent": "driftwarden"}
        if self._auth:
            headers["Authorization"] = self._auth
        return http_post(self.endpoint, json.dumps(alerts).encode(), headers, self.timeout, n.sent_at,
                         detail=f"{len(alerts)} alert(s) posted")

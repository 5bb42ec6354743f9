"""Webhook receiver: versioned JSON, HMAC-signed, with presets for GitHub and GitLab CI.

Retraining request body (``"version": 1``; new fields may be added, none removed)::

    {"version": 1, "model": "churn", "model_version": "3.2.0", "reason": "...",
     "evidence": [{"kind": "data_drift", "detector": "psi", "subject": "age",
                   "statistic": 0.31, "threshold": 0.2, ...}],
     "idempotency_key": "...", "group_key": "retrain:churn", "sent_at": 1764478800.0}

Alert-group body (``"version": 1``): ``type``, ``status``, ``reason``, ``receiver``, ``group_key``
(one per route group and fault), ``group_labels``, ``alerts`` (most likely cause first),
``lead`` (the instance of that first alert), ``idempotency_key``, ``sent_at``.

Signing: ``X-Driftwarden-Timestamp: <unix seconds>`` and ``X-Driftwarden-Signature:
v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>`` over the exact bytes sent; the secret
comes from the env var named by ``secret_env``. Receivers must verify with
:func:`verify_signature` and reject timestamps more than 5 minutes away from their clock
(replay window), and should drop repeated ``idempotency_key`` values: delivery is
at-least-once (a crash between the receiver's 2xx and our record resends the same key).

>>> body = b'{"version": 1}'
>>> sig = sign("s3cret", "1764478800", body)
>>> verify_signature("s3cret", "1764478800", body, sig, now=1764478900)
True
>>> verify_signature("s3cret", "1764478800", body, sig, now=1764479200)   # 400 s late: replay
False
>>> verify_signature("wrong", "1764478800", body, sig, now=1764478800)
False
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.parse
from collections.abc import Mapping
from typing import Any

from driftwarden.alerts.notify import DeliveryResult, Notification, http_post

GITHUB_EVENT = "driftwarden-retrain"


def sign(secret: str, timestamp: str, body: bytes | str) -> str:
    raw = body.encode() if isinstance(body, str) else body
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify_signature(
    secret: str, timestamp: str, body: bytes | str, signature: str, now: float, tolerance: float = 300.0
) -> bool:
    """True if ``signature`` is ours for ``timestamp.body`` and the timestamp is within ``tolerance``."""
    try:
        ts = float(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def request_body(n: Notification) -> dict[str, Any]:
    """The versioned JSON document for a notification (retraining request or alert group)."""
    if n.type == "retrain" and n.retrain is not None:
        r = n.retrain
        return {
            "version": 1,
            "model": r.model,
            "model_version": r.model_version,
            "reason": r.reason,
            "evidence": r.evidence,
            "idempotency_key": n.idempotency_key,
            "group_key": n.group_key,
            "sent_at": n.sent_at,
        }
    return {
        "version": 1,
        "type": "alerts",
        "status": "firing" if n.firing_alerts() else "resolved",
        "reason": n.reason,
        "receiver": n.receiver,
        "group_key": n.group_key,
        "group_labels": n.group_labels,
        "idempotency_key": n.idempotency_key,
        "alerts": [a.to_dict() for a in n.alerts],
        "lead": n.alerts[0].instance if n.alerts else None,  # the most likely cause (alerts/cause.py)
        "sent_at": n.sent_at,
    }


class WebhookNotifier:
    """POST to ``url`` with preset ``generic`` (JSON), ``github`` (repository_dispatch) or
    ``gitlab`` (pipeline trigger: form fields ``token``, ``ref``, ``variables[...]``)."""

    def __init__(
        self,
        url: str,
        preset: str = "generic",
        secret: str | None = None,
        token: str | None = None,
        ref: str = "main",
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        send_resolved: bool = True,
    ):
        if preset not in ("generic", "github", "gitlab"):
            raise ValueError(f"unknown webhook preset {preset!r}: use generic, github or gitlab")
        self.url, self.preset, self.ref, self.timeout = url, preset, ref, timeout
        self._secret, self._token = secret, token
        self.headers = dict(headers or {})
        self.send_resolved = send_resolved

    def build(self, n: Notification) -> tuple[bytes, dict[str, str]]:
        """(body bytes, headers) exactly as sent."""
        doc = request_body(n)
        headers = {"User-Agent": "driftwarden", "Idempotency-Key": n.idempotency_key, **self.headers}
        if self.preset == "gitlab":
            body = urllib.parse.urlencode(
                {
                    "token": self._token or "",
                    "ref": self.ref,
                    "variables[DRIFTWARDEN_PAYLOAD]": json.dumps(doc, sort_keys=True),
                    "variables[DRIFTWARDEN_MODEL]": str(doc.get("model", n.group_labels.get("model", ""))),
                    "variables[DRIFTWARDEN_IDEMPOTENCY_KEY]": n.idempotency_key,
                }
            ).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            if self.preset == "github":
                event = GITHUB_EVENT if n.type == "retrain" else "driftwarden-alert"
                doc = {"event_type": event, "client_payload": doc}
                headers.update(
                    {
                        "Accept": "application/vnd.github+json",
                        "X-GitHub-Api-Version": "2022-11-28",
                        "Authorization": f"Bearer {self._token}",
                    }
                )
            body = json.dumps(doc, sort_keys=True).encode()
            headers["Content-Type"] = "application/json"
        timestamp = str(int(n.sent_at))
        headers["X-Driftwarden-Timestamp"] = timestamp
        if self._secret:
            headers["X-Driftwarden-Signature"] = sign(self._secret, timestamp, body)
        return body, headers

    def notify(self, n: Notification) -> DeliveryResult:
        if n.type == "alerts" and not n.firing_alerts() and not self.send_resolved:
            return DeliveryResult(ok=True, detail="resolved notifications disabled")
        body, headers = self.build(n)
        return http_post(self.url, body, headers, self.timeout, n.sent_at)

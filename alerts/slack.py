"""Slack receivers: a bot (Web API, threaded) and an incoming webhook (flat).

:class:`SlackNotifier` posts a group's first notification with ``chat.postMessage``; later
notifications of the same group are thread replies (``thread_ts`` = the recorded ``ts`` of
the first message, kept in the outbox so it survives restarts); when the whole group
resolves, the original message is rewritten with ``chat.update`` and a reply says so.

Exactly-once as seen in the channel, and where it stops (the honest version):

- every message carries Slack message metadata ``{"event_type": "driftwarden_notification",
  "event_payload": {"idempotency_key": ...}}``;
- the outbox commits "attempt started" before the request; if the process dies between
  Slack's 200 and our record, the entry is retried after restart with ``possibly_sent``;
- on such a retry we first search the channel (``conversations.history``, or
  ``conversations.replies`` for thread replies) for a message with that idempotency key
  and, if found, record its ``ts`` instead of posting again.

That search needs the ``channels:history`` (``groups:history`` for private channels) scope
and a channel *ID* for root messages (``C0123ABCD``; a ``#name`` cannot be searched, so
with a name the guarantee degrades to at-least-once). Messages older than ``created_at``
minus 2 minutes are not searched. Without the scope the lookup fails with a permanent error
and we post anyway (at-least-once, never lost).

Retries: 429 honours ``Retry-After`` (at most 300 s: :func:`alerts.notify.parse_retry_after`);
5xx, timeouts and connection errors are retryable; slack-sdk's own (sleeping) retry handlers
are disabled, the outbox schedules retries.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from driftwarden.alerts.notify import DeliveryResult, Notification, error_result, http_result, parse_retry_after
from driftwarden.alerts.slack_blocks import render, root_resolved

EVENT_TYPE = "driftwarden_notification"
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{6,}")


class SlackNotifier:
    def __init__(
        self,
        channel: str,
        token: str,
        base_url: str | None = None,
        timeout: float = 10.0,
        send_resolved: bool = True,
        client: WebClient | None = None,
    ):
        self.channel = channel
        self.send_resolved = send_resolved
        self.client = client or WebClient(
            token=token,
            base_url=base_url or WebClient.BASE_URL,
            timeout=timeout,  # type: ignore[arg-type]
            retry_handlers=[],
        )

    def notify(self, n: Notification) -> DeliveryResult:
        channel, thread_ts = self.channel, None
        if n.thread_ref:
            channel, _, thread_ts = n.thread_ref.partition(":")
        if n.reason == "resolved" and not n.firing_alerts() and not self.send_resolved:
            return DeliveryResult(ok=True, detail="resolved notifications disabled")
        try:
            if n.possibly_sent:
                found = self._find_existing(n, channel, thread_ts)
                if found is not None:
                    return DeliveryResult(
                        ok=True, detail="already posted (found by idempotency key)", remote_id=f"{channel}:{found}"
                    )
            if thread_ts and not n.firing_alerts() and n.type == "alerts":
                text, blocks = root_resolved(n, n.sent_at)
                self.client.chat_update(channel=channel, ts=thread_ts, text=text, blocks=blocks)
            text, blocks = render(n, n.sent_at)
            resp = self.client.chat_postMessage(
                channel=channel,
                text=text,
                blocks=blocks,
                thread_ts=thread_ts,
                unfurl_links=False,
                metadata={
                    "event_type": EVENT_TYPE,
                    "event_payload": {"idempotency_key": n.idempotency_key, "group_key": n.group_key},
                },
            )
        except SlackApiError as exc:
            return _api_error(exc, n.sent_at)
        except Exception as exc:  # timeouts, refused connections: classified, not raised
            return error_result(exc)
        return DeliveryResult(ok=True, detail="posted", remote_id=f"{resp['channel']}:{resp['ts']}")

    def _find_existing(self, n: Notification, channel: str, thread_ts: str | None) -> str | None:
        """``ts`` of a message we already posted for ``n`` (see the module docstring), or None."""
        if not _CHANNEL_ID.fullmatch(channel):
            return None
        oldest = f"{max(0.0, n.created_at - 120):.6f}"
        cursor: str | None = None
        for _ in range(10):  # at most 10 pages of 200 messages
            if thread_ts:
                resp = self.client.conversations_replies(
                    channel=channel, ts=thread_ts, oldest=oldest, include_all_metadata=True, limit=200, cursor=cursor
                )
            else:
                resp = self.client.conversations_history(
                    channel=channel, oldest=oldest, include_all_metadata=True, limit=200, cursor=cursor
                )
            for message in resp.get("messages") or []:
                meta: dict[str, Any] = message.get("metadata") or {}
                payload = meta.get("event_payload") or {}
                if meta.get("event_type") == EVENT_TYPE and payload.get("idempotency_key") == n.idempotency_key:
                    return str(message["ts"])
            cursor = (resp.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return None


def _api_error(exc: SlackApiError, now: float) -> DeliveryResult:
    resp = exc.response
    status = int(resp.status_code)
    error = resp.data.get("error", "") if isinstance(resp.data, dict) else ""
    retry_after = parse_retry_after(resp.headers.get("Retry-After") or resp.headers.get("retry-after"), now)
    if status == 200:  # {"ok": false}: Slack's own errors; only a few are worth retrying
        status = 503 if error in ("ratelimited", "internal_error", "fatal_error", "service_unavailable") else 400
    return http_result(status, error or "Slack API error", retry_after=retry_after)


class SlackWebhookNotifier:
    """Incoming webhook: one standalone message per notification (webhooks cannot thread)."""

    def __init__(self, url: str, timeout: float = 10.0, send_resolved: bool = True):
        self.client = WebhookClient(url=url, timeout=int(max(1, timeout)), retry_handlers=[])
        self.send_resolved = send_resolved

    def notify(self, n: Notification) -> DeliveryResult:
        if not n.firing_alerts() and not self.send_resolved:
            return DeliveryResult(ok=True, detail="resolved notifications disabled")
        # no threads: every message shows the group's whole current state
        view = msgspec.structs.replace(n, thread_role="root") if n.firing_alerts() else n
        text, blocks = render(view, n.sent_at)
        try:
            resp = self.client.send_dict({"text": text, "blocks": blocks})
        except Exception as exc:
            return error_result(exc)
        headers = {k.lower(): v for k, v in (resp.headers or {}).items()}
        retry_after = headers.get("retry-after")
        return http_result(
            resp.status_code,
            str(resp.body)[:200],
            retry_after=parse_retry_after(retry_after[0] if isinstance(retry_after, list) else retry_after, n.sent_at),
        )

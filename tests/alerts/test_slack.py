"""The real slack_sdk WebClient against a local stand-in for Slack's API host."""

from __future__ import annotations

import json
from typing import Any

from driftwarden.alerts.outbox import Outbox
from driftwarden.alerts.pipeline import AlertPipeline
from driftwarden.alerts.receivers import build_notifiers
from driftwarden.alerts.settings import AlertingSettings
from tests.alerts.conftest import T0, finding, settings
from tests.alerts.servers import TOKEN, SlackState

CHANNEL = "C0ALERTS1"


def slack_pipeline(base_url: str, box: Outbox, timeout: float = 2.0, **overrides: object) -> AlertPipeline:
    cfg: AlertingSettings = settings(
        **{
            "receivers": {"oncall": {"type": "slack", "channel": CHANNEL, "base_url": base_url, "timeout": timeout}},
            "route": {"receiver": "oncall"},
            **overrides,
        }
    )
    return AlertPipeline(cfg, box, build_notifiers(cfg, environ={"SLACK_BOT_TOKEN": TOKEN}))


def fire(pipe: AlertPipeline, model: str, subjects: list[str], t: float, bad: bool = True) -> None:
    for dt in (0.0, 60.0):  # for_windows = 2
        pipe.ingest(model, {"model_version": "3.2.0", "team": "ml"}, [finding(s, bad, t + dt) for s in subjects], now=t + dt)


def test_root_message_thread_reply_and_resolution_update(slack: tuple[str, SlackState]) -> None:
    base_url, server = slack
    box = Outbox()
    try:
        pipe = slack_pipeline(base_url, box)
        server.now = T0
        fire(pipe, "churn", ["age", "plan"], T0)
        pipe.flush(T0 + 60)
        pipe.flush(T0 + 90)  # group_wait over
        assert pipe.deliver(T0 + 90) == 1
        (root,) = server.messages
        assert root["thread_ts"] is None and root["channel"] == CHANNEL
        header = root["blocks"][0]["text"]["text"]
        assert "[FIRING:2] churn 3.2.0" in header and "warning" in header
        body = json.dumps(root["blocks"])
        assert "psi 0.31 over 5,000 events (threshold 0.2)" in body and "Top suspects: plan=pro" in body
        assert "since 2025-11-30 05:00 UTC" in body
        assert root["metadata"]["event_type"] == "driftwarden_notification"
        assert box.entries()[0].result == f"{CHANNEL}:{root['ts']}"
        # the condition clears: resolution goes into the thread and rewrites the original
        for t in (T0 + 120, T0 + 180):
            pipe.ingest("churn", {"model_version": "3.2.0"}, [finding(s, False, t) for s in ("age", "plan")], now=t)
        pipe.flush(T0 + 390)
        assert pipe.deliver(T0 + 390) == 1
        assert len(server.messages) == 2
        reply = server.messages[1]
        assert reply["thread_ts"] == root["ts"]
        assert "RESOLVED" in reply["blocks"][0]["text"]["text"]
        assert server.updates and server.updates[0]["ts"] == root["ts"]
        assert "RESOLVED" in root["blocks"][0]["text"]["text"]  # chat.update rewrote it
    finally:
        box.close()


def test_429_honours_retry_after_and_500_backs_off(slack: tuple[str, SlackState]) -> None:
    base_url, server = slack
    box = Outbox()
    try:
        pipe = slack_pipeline(base_url, box, group_wait=0)
        fire(pipe, "churn", ["age"], T0)
        pipe.flush(T0 + 60)
        server.script = ["429:30"]
        assert pipe.deliver(T0 + 60) == 0
        (entry,) = box.entries()
        assert entry.next_attempt_at == T0 + 90 and "429" in (entry.last_error or "")
        assert pipe.deliver(T0 + 89) == 0 and len(server.calls) == 1  # not due yet: no request
        server.script = ["500"]
        assert pipe.deliver(T0 + 90) == 0
        assert "500" in (box.entries()[0].last_error or "")
        assert box.entries()[0].next_attempt_at == T0 + 90 + 10  # second failure: 2 x 5 s
        assert pipe.deliver(T0 + 100) == 1
        assert len(server.messages) == 1 and box.pending_count() == 0
    finally:
        box.close()


def test_timeout_after_slack_processed_does_not_duplicate(slack: tuple[str, SlackState]) -> None:
    """Slack posts the message but the answer never arrives in time (the ambiguous case)."""
    base_url, server = slack
    box = Outbox()
    try:
        pipe = slack_pipeline(base_url, box, timeout=0.3, group_wait=0)
        server.now = T0
        fire(pipe, "churn", ["age"], T0)
        pipe.flush(T0 + 60)
        server.script = ["slow_ok"]
        assert pipe.deliver(T0 + 60) == 0
        assert "Timeout" in (box.entries()[0].last_error or "") or "timed out" in (box.entries()[0].last_error or "")
        assert len(server.messages) == 1  # Slack did post it
        assert pipe.deliver(T0 + 65) == 1  # retry finds it by idempotency key
        assert len(server.messages) == 1 and len(server.posts()) == 1
        assert box.entries()[0].result == f"{CHANNEL}:{server.messages[0]['ts']}"
    finally:
        box.close()


def test_timeout_without_answer_is_retried(slack: tuple[str, SlackState]) -> None:
    base_url, server = slack
    box = Outbox()
    try:
        pipe = slack_pipeline(base_url, box, timeout=0.3, group_wait=0)
        fire(pipe, "churn", ["age"], T0)
        pipe.flush(T0 + 60)
        server.script = ["timeout"]
        assert pipe.deliver(T0 + 60) == 0
        assert box.entries()[0].attempts == 1 and box.pending_count() == 1
        assert pipe.deliver(T0 + 65) == 1 and len(server.messages) == 1
    finally:
        box.close()


def test_permanent_error_is_recorded_not_retried(slack: tuple[str, SlackState]) -> None:
    base_url, server = slack
    box = Outbox()
    try:
        cfg: AlertingSettings = settings(
            receivers={"oncall": {"type": "slack", "channel": CHANNEL, "base_url": base_url}},
            route={"receiver": "oncall"},
            group_wait=0,
        )
        pipe = AlertPipeline(cfg, box, build_notifiers(cfg, environ={"SLACK_BOT_TOKEN": "xoxb-revoked"}))
        fire(pipe, "churn", ["age"], T0)
        pipe.flush(T0 + 60)
        assert pipe.deliver(T0 + 60) == 0
        (entry,) = box.entries()
        assert entry.failed_at == T0 + 60 and "invalid_auth" in (entry.last_error or "")
        assert pipe.deliver(T0 + 4000) == 0 and len(server.calls) == 1
    finally:
        box.close()


def test_ten_minute_outage_delivers_everything_once_in_order(slack: tuple[str, SlackState]) -> None:
    base_url, server = slack
    box = Outbox()
    try:
        pipe = slack_pipeline(base_url, box)
        server.now = T0
        fire(pipe, "churn", ["age"], T0)  # first alert, delivered before the outage
        t = T0 + 60
        events = {
            T0 + 200: ("fraud", ["amount"], True),
            T0 + 300: ("churn", ["plan"], True),
            T0 + 500: ("fraud", ["amount"], False),
            T0 + 700: ("ltv", ["tenure"], True),
        }
        outage = (T0 + 120, T0 + 720)
        while t <= T0 + 1800:
            server.now = t
            server.down = outage[0] <= t < outage[1]
            if t in events:
                model, subjects, bad = events[t]
                fire(pipe, model, subjects, t, bad)
            pipe.flush(t)
            pipe.deliver(t)
            t += 10
        assert box.pending_count() == 0
        entries = box.entries()
        assert all(e.delivered_at is not None for e in entries)
        assert sum(1 for _ in server.calls if _[1].get("channel")) > len(entries)  # failures happened
        keys = [m["metadata"]["event_payload"]["idempotency_key"] for m in server.messages]
        assert keys == [e.key for e in entries]  # each once, in outbox order
        assert max(e.attempts for e in entries) > 3
        by_group: dict[str, dict[str, Any]] = {}
        for m, e in zip(server.messages, entries, strict=True):
            root = by_group.setdefault(e.payload["group_key"], m)
            assert m["thread_ts"] == (None if m is root else root["ts"])  # replies thread under their root
        heads = [m["blocks"][0]["text"]["text"] for m in server.messages]
        assert heads[0].startswith(":large_orange_circle: [FIRING:1] churn")
        assert any("RESOLVED" in h for h in heads) and any("new alert" in h for h in heads)
    finally:
        box.close()


def test_incoming_webhook_receiver(slack: tuple[str, SlackState]) -> None:
    base_url, server = slack
    box = Outbox()
    try:
        cfg: AlertingSettings = settings(
            receivers={"hook": {"type": "slack_webhook", "url_env": "HOOK"}}, route={"receiver": "hook"}, group_wait=0
        )
        notifiers = build_notifiers(cfg, environ={"HOOK": base_url + "hooks/T0/B0/x"})
        pipe = AlertPipeline(cfg, box, notifiers)
        fire(pipe, "churn", ["age"], T0)
        pipe.flush(T0 + 60)
        server.script = ["500"]
        assert pipe.deliver(T0 + 60) == 0 and box.pending_count() == 1
        server.script = ["ok"]
        assert pipe.deliver(T0 + 70) == 1
        method, params = server.calls[-1]
        assert method == "x" and "[FIRING:1] churn" in params["text"]
    finally:
        box.close()

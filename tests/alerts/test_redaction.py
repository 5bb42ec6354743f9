"""Secrets (webhook URLs, tokens) never reach a log line, the outbox file or ``driftwarden status``."""

from __future__ import annotations

import io
import logging
import sqlite3
from pathlib import Path

import pytest
import yaml

from driftwarden.alerts.outbox import Outbox
from driftwarden.alerts.pipeline import AlertPipeline
from driftwarden.alerts.receivers import build_notifiers
from driftwarden.alerts.redact import MASK, RedactingFilter, redact, register_secret
from tests.alerts.conftest import T0
from tests.alerts.test_slack import fire
from tests.broker.kafka import free_port

# the reported case: a pasted URL with a leading space; slack-sdk refuses it and quotes it whole
WEBHOOK_URL = " https://hooks.slack.com/services/T0SECRET1/B0SECRET2/WebhookSecretXYZ123"
BOT_TOKEN = "xoxb-1111-2222-BotTokenSecret"
SIGNING_SECRET = "plain-hmac-secret-42"  # no recognizable shape: only the registered value finds it
ENV = {"ALERTS_WEBHOOK": WEBHOOK_URL, "SLACK_BOT_TOKEN": BOT_TOKEN, "CI_SECRET": SIGNING_SECRET}
SECRETS = ["WebhookSecretXYZ123", "T0SECRET1/B0SECRET2", "BotTokenSecret", SIGNING_SECRET]


def write_config(tmp_path: Path) -> Path:
    from driftwarden.daemon.simulate import Scenario, write_reference

    write_reference(tmp_path / "ref.parquet", Scenario(), rows=300)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "state": {"path": str(tmp_path / "state" / "driftwarden.db")},
        "models": [{"id": "churn", "task": "binary", "reference": "ref.parquet", "features": {"age": {"type": "numeric"}}}],
        "alerting": {
            "group_wait": 0,
            "receivers": {
                "hook": {"type": "slack_webhook", "url_env": "ALERTS_WEBHOOK"},
                "bot": {"type": "slack", "channel": "C0ALERTS1", "base_url": f"http://127.0.0.1:{free_port()}/api/",
                        "timeout": 1},
                "ci": {"type": "webhook", "url": f"http://127.0.0.1:{free_port()}/hook", "secret_env": "CI_SECRET"},
            },
            "route": {"receiver": "hook", "routes": [{"receiver": "hook", "continue": True},
                                                     {"receiver": "bot", "continue": True}, {"receiver": "ci"}]},
        },
    }))
    return config


def status_text(config: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    from driftwarden.daemon.checkpoint import Checkpoint
    from driftwarden.daemon.config import load_config
    from driftwarden.daemon.status_cmd import run_status

    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    Checkpoint(load_config(str(config)).resolve("state/driftwarden.db")).close()
    table, js = io.StringIO(), io.StringIO()
    run_status(str(config), "table", table)
    run_status(str(config), "json", js)
    return table.getvalue() + js.getvalue()


def test_failing_deliveries_leak_no_secret(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from driftwarden.daemon.app import outbox_path
    from driftwarden.daemon.config import load_config

    caplog.set_level(logging.DEBUG)  # slack-sdk logs the webhook URL at debug level
    config = write_config(tmp_path)
    loaded = load_config(str(config))
    db = outbox_path(loaded)
    box = Outbox(str(db))
    try:
        pipe = AlertPipeline(loaded.alerting, box, build_notifiers(loaded.alerting, environ=ENV))
        fire(pipe, "churn", ["age"], T0)
        pipe.flush(T0 + 60)
        assert pipe.deliver(T0 + 60) == 0
        entries = {e.receiver: e for e in box.entries()}
        assert entries["hook"].failed_at == T0 + 60  # a bad URL is permanent
        assert "SlackRequestError: Invalid URL detected:" in (entries["hook"].last_error or "")
        assert MASK in (entries["hook"].last_error or "")
        assert entries["bot"].failed_at is None and entries["bot"].last_error  # refused: retried later
        logging.getLogger("driftwarden.alerts").warning("token in a message %s, signed with %s", BOT_TOKEN, SIGNING_SECRET)
        try:
            raise RuntimeError(f"cannot post to {WEBHOOK_URL}")
        except RuntimeError:
            logging.getLogger("slack_sdk.webhook.client").exception("a library's traceback")
    finally:
        box.close()
    assert any("failed permanently" in r.getMessage() for r in caplog.records)
    assert any(r.name.startswith("slack_sdk") and r.exc_text for r in caplog.records)
    logged = caplog.text + "".join(f"{r.getMessage()}{r.exc_text}{r.exc_info}{r.args}" for r in caplog.records)
    stored = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    printed = status_text(config, monkeypatch)
    assert "Invalid URL detected" in printed and "not yet delivered: 2" in printed
    for secret in SECRETS:
        assert secret not in logged
        assert secret.encode() not in stored
        assert secret not in printed


def test_status_redacts_errors_stored_before_redaction_existed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from driftwarden.daemon.app import outbox_path
    from driftwarden.daemon.config import load_config

    config = write_config(tmp_path)
    db = outbox_path(load_config(str(config)))
    Outbox(str(db)).close()
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO outbox (key, receiver, payload, created_at, next_attempt_at, failed_at, last_error)"
                     " VALUES ('k', 'ci', '{}', 0, 0, 1, ?)", (f"HTTP 401: bad signature {SIGNING_SECRET} via{WEBHOOK_URL}",))
    conn.close()
    printed = status_text(config, monkeypatch)
    assert "HTTP 401: bad signature [REDACTED]" in printed
    for secret in SECRETS:
        assert secret not in printed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Invalid URL detected: https://hooks.slack.com/services/T000/B000/XXXX",
         "Invalid URL detected: https://hooks.slack.com/[REDACTED]"),
        ("unknown url type: 'hooks.slack.com/services/T1/B2/c3'", "unknown url type: 'hooks.slack.com/[REDACTED]'"),
        ("not_authed for xoxb-123-456-abc and xoxp-9-8 and xapp-1-A0-xyz", "not_authed for xoxb-[REDACTED] and "
         "xoxp-[REDACTED] and xapp-[REDACTED]"),
        ("POST https://bot:pa55word@ci.example/hook failed", "POST https://[REDACTED]@ci.example/hook failed"),
        ("GET https://ci.example/t?ref=main&private_token=glpat-abcdefgh12345&x=1",
         "GET https://ci.example/t?ref=main&private_token=[REDACTED]&x=1"),
        ("https://api.example/v1?key=AIzaSy123&q=1", "https://api.example/v1?key=[REDACTED]&q=1"),
        ("{'Authorization': 'Bearer ghp_abcdefghijklmnop1234'}", "{'Authorization': '[REDACTED]'}"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: [REDACTED]"),
        ("sent with Bearer eyJhbGciOi.x.y", "sent with Bearer [REDACTED]"),
        ('{"token": "abc", "password": "p", "ref": "main"}', '{"token": "[REDACTED]", "password": "[REDACTED]", "ref": "main"}'),
        ("SASL_PASSWORD=hunter22 user=bob", "SASL_PASSWORD=[REDACTED] user=bob"),
        ("token=glptt-abc&ref=main", "token=[REDACTED]&ref=main"),
        # nothing secret: unchanged
        ("receivers.ops.token_env: environment variable SLACK_BOT_TOKEN is not set", None),
        ("HTTP 404: channel_not_found", None),
        ("URLError: <urlopen error [Errno 111] Connection refused>", None),
        ("see https://ci.example/a/b?ref=main#frag, idempotency_key: 5f3a", None),
        ("3 alerts: password reset flow degraded, max_tokens=5", None),
    ],
)
def test_secret_shapes(text: str, expected: str | None) -> None:
    assert redact(text) == (text if expected is None else expected)
    assert redact(redact(text)) == redact(text)


def test_registered_values_are_redacted_also_percent_encoded() -> None:
    register_secret("s3cr3t/with spaces+plus", "abc")  # "abc": too short to register (would blank words)
    assert redact("form token=x&s=s3cr3t%2Fwith%20spaces%2Bplus and s3cr3t/with spaces+plus") == \
        "form token=[REDACTED]&s=[REDACTED] and [REDACTED]"
    assert redact("abc") == "abc"
    assert redact("key material 7Hq-secret-ZZ", secrets=["7Hq-secret-ZZ"]) == "key material [REDACTED]"


def test_filter_rewrites_message_args_and_traceback() -> None:
    record = logging.LogRecord("driftwarden", logging.ERROR, __file__, 1, "posting to %s failed", ("hooks.slack.com/s/T/B/x",),
                               None)
    try:
        raise ValueError("bad url hooks.slack.com/s/T/B/x")
    except ValueError as exc:
        record.exc_info = (ValueError, exc, exc.__traceback__)
    assert RedactingFilter().filter(record) is True
    assert record.getMessage() == "posting to hooks.slack.com/[REDACTED] failed"
    assert record.exc_info is None and record.exc_text and "hooks.slack.com/[REDACTED]" in record.exc_text
    assert "s/T/B/x" not in logging.Formatter().format(record)
    plain = logging.LogRecord("driftwarden", logging.INFO, __file__, 1, "%d%% done", (50,), None)
    assert RedactingFilter().filter(plain) and plain.getMessage() == "50% done" and plain.args == (50,)


"""kill -9 between a successful send and its record: after restart, no duplicate at the receiver."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import msgspec
import pytest

from driftwarden.alerts.outbox import Outbox
from driftwarden.alerts.pipeline import AlertPipeline
from driftwarden.alerts.receivers import build_notifiers
from driftwarden.alerts.settings import AlertingSettings
from tests.alerts.conftest import SECRET, T0, finding
from tests.alerts.servers import TOKEN, CiState, SlackState

CONFIG = """{
  "group_wait": 0,
  "receivers": {"oncall": {"type": "slack", "channel": "C0ALERTS1", "base_url": "%(slack)s"},
                "ci": {"type": "webhook", "url": "%(ci)s/retrain", "secret_env": "CI_SECRET"}},
  "route": {"receiver": "oncall"},
  "retraining": {"churn": {"receiver": "ci", "min_new_labels": 0}}
}"""

# The "daemon" run: ingest, flush, checkpoint state, then deliver with a notifier that
# SIGKILLs the process right after the real notifier returned (before the outbox records it).
SCRIPT = textwrap.dedent("""
    import json, os, signal, sys
    import msgspec
    from driftwarden.alerts.outbox import Outbox
    from driftwarden.alerts.pipeline import AlertPipeline
    from driftwarden.alerts.receivers import build_notifiers
    from driftwarden.alerts.settings import AlertingSettings
    from tests.alerts.conftest import T0, finding

    config, db, state_path, victim = sys.argv[1:5]
    cfg = msgspec.json.decode(config.encode(), type=AlertingSettings)
    notifiers = build_notifiers(cfg, environ={"SLACK_BOT_TOKEN": %(token)r, "CI_SECRET": %(secret)r})

    class KillAfterSend:
        def __init__(self, inner):
            self.inner = inner
        def notify(self, n):
            result = self.inner.notify(n)
            assert result.ok, result
            os.kill(os.getpid(), signal.SIGKILL)

    notifiers[victim] = KillAfterSend(notifiers[victim])
    pipe = AlertPipeline(cfg, Outbox(db), notifiers)
    pipe.note_labels("churn", 5000, "3.2.0", now=T0)
    for t in (T0, T0 + 60):
        pipe.ingest("churn", {"model_version": "3.2.0"}, [finding("age", True, t)], now=t)
    pipe.flush(T0 + 60)
    with open(state_path, "w") as f:
        json.dump(pipe.state(), f)  # the daemon's checkpoint
    pipe.deliver(T0 + 60)
    sys.exit(3)  # not reached
""") % {"token": TOKEN, "secret": SECRET}


@pytest.mark.parametrize("victim", ["oncall", "ci"])
def test_kill_between_send_and_record(
    victim: str, tmp_path: Path, slack: tuple[str, SlackState], ci: tuple[str, CiState]
) -> None:
    (slack_url, slack_state), (ci_url, ci_state) = slack, ci
    slack_state.now = T0 + 60
    ci_state.now = T0 + 60
    config = CONFIG % {"slack": slack_url, "ci": ci_url}
    db, state_path = str(tmp_path / "alerts.sqlite"), tmp_path / "state.json"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, config, db, str(state_path), victim],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        timeout=30,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]

    box = Outbox(db)
    try:
        by_receiver = {e.receiver: e for e in box.entries()}
        assert by_receiver[victim].attempts == 1 and by_receiver[victim].delivered_at is None
        assert len(slack_state.posts()) == (1 if victim == "oncall" else 0)  # the kill came after the send
        # restart: a fresh pipeline on the same SQLite file and the last checkpoint
        cfg = msgspec.json.decode(config.encode(), type=AlertingSettings)
        pipe = AlertPipeline(cfg, box, build_notifiers(cfg, environ={"SLACK_BOT_TOKEN": TOKEN, "CI_SECRET": SECRET}))
        pipe.load_state(json.loads(state_path.read_text()))
        pipe.deliver(T0 + 70)
        assert box.pending_count() == 0
        # Slack: exactly one root message, found again by its idempotency key
        assert len(slack_state.posts()) == 1 and len(slack_state.messages) == 1
        root = slack_state.messages[0]
        assert box.thread_result(box.entries("oncall")[0].thread_key or "") == f"C0ALERTS1:{root['ts']}"
        # CI: at-least-once on the wire, once after the receiver's idempotency-key dedup
        assert len(ci_state.requests) == (2 if victim == "ci" else 1)
        assert len(ci_state.accepted) == 1
        # the thread survives the restart: the resolution replies under the recorded ts
        for t in (T0 + 120, T0 + 180):
            pipe.ingest("churn", {"model_version": "3.2.0"}, [finding("age", False, t)], now=t)
        pipe.flush(T0 + 400)
        slack_state.now = T0 + 400
        pipe.deliver(T0 + 400)
        assert [m["thread_ts"] for m in slack_state.messages] == [None, root["ts"]]
    finally:
        box.close()

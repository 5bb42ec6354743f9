"""``driftwarden status -c CONFIG``: what the daemon's state says, for the on-call person.

Reads the checkpoint and the alert database (no Kafka, no running daemon needed): per model
its version, labelled events, reference; consumer offsets; waiting outcome joins; the alerts
that are pending or firing; notifications not yet delivered, with their last error.
Errors are printed redacted (:mod:`alerts.redact`): the configured secrets, read from the
same environment variables the daemon reads, and anything shaped like a secret.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from kafka.errors import KafkaError

from driftwarden.alerts.outbox import Outbox
from driftwarden.alerts.receivers import secret_values
from driftwarden.alerts.redact import redact
from driftwarden.daemon.app import outbox_path
from driftwarden.daemon.checkpoint import Checkpoint
from driftwarden.daemon.config import Config, load_config


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):  # a time no calendar holds: say it as it is
        return f"{ts!r} (epoch s)"


def group(config: Config, cached: Any) -> dict[str, Any]:
    """With ``state.backend: kafka``: each partition's owner, epoch, generation and its models' state
    versions and offsets, read from the changelog (this instance's last view if Kafka does not answer)."""
    from driftwarden.daemon.changelog import ChangelogError, group_status

    topic = config.state.changelog(config.kafka.group_id)
    try:
        return {"changelog": topic, "partitions": group_status(config.kafka, topic)}
    except (KafkaError, ChangelogError, OSError) as exc:
        return {"changelog": topic, "error": f"cannot read the changelog: {exc}", "this_instance": cached}


def collect(config_path: str) -> dict[str, Any]:
    config = load_config(config_path, check_files=False)  # status never reads the references
    state_path = config.resolve(config.state.path)
    if not state_path.exists():
        out: dict[str, Any] = {"state": str(state_path), "checkpointed": False}
        if config.state.backend == "kafka":
            out["group"] = group(config, None)
        return out
    checkpoint = Checkpoint(state_path)
    try:
        ownership = checkpoint.meta("ownership")
        offsets = checkpoint.offsets()
        meta = checkpoint.meta("models") or {}
        alert_state = checkpoint.meta("alerts") or {}
        clocks = checkpoint.meta("clocks") or {}
        pending = checkpoint.pending_counts()
    finally:
        checkpoint.close()
    # one line per check: a critical alert holds the warning of the same check
    rank = {"firing": 2, "pending": 1}
    best: dict[str, dict[str, Any]] = {}
    for a in alert_state.get("lifecycle", {}).get("alerts", []):
        if a.get("state") not in rank:
            continue
        order = (rank[a["state"]], a.get("severity") == "critical")
        held = best.get(a["fingerprint"])
        if held is None or order > (rank[held["state"]], held.get("severity") == "critical"):
            best[a["fingerprint"]] = a
    alerts = list(best.values())
    secrets = secret_values(config.alerting, os.environ)
    if config.kafka.sasl_password_env and os.environ.get(config.kafka.sasl_password_env):
        secrets.append(os.environ[config.kafka.sasl_password_env])

    def clean(error: str | None) -> str | None:  # rows written before redaction existed, too
        return None if error is None else redact(error, secrets)

    outbox = Outbox(str(outbox_path(config)))
    try:
        undelivered = [e for e in outbox.entries() if e.delivered_at is None and e.failed_at is None]
        failed = [e for e in outbox.entries() if e.failed_at is not None]
    finally:
        outbox.close()
    return {
        "state": str(state_path),
        "checkpointed": True,
        **({"group": group(config, ownership)} if config.state.backend == "kafka" else {}),
        # event time per model and source (watermarks: the latest event time read)
        "event_time": {m: (c or {}).get("watermarks", {}) for m, c in sorted(clocks.items())},
        "offsets": {f"{t}[{p}]": o for (t, p), o in sorted(offsets.items())},
        "models": {
            m.id: {**meta.get(m.id, {}), "pending_joins": pending.get(m.id, 0),
                   "reference": meta.get(m.id, {}).get("reference_path") or str(config.resolve(m.reference))}
            for m in config.models
        },
        "alerts": [{"state": a["state"], "severity": a.get("severity"), "starts_at": a.get("starts_at"),
                    **{k: a.get("labels", {}).get(k) for k in ("model", "kind", "detector", "subject")},
                    "summary": a.get("annotations", {}).get("summary", "")} for a in alerts],
        "undelivered": [{"receiver": e.receiver, "attempts": e.attempts, "next_attempt_at": e.next_attempt_at,
                         "last_error": clean(e.last_error)} for e in undelivered],
        "failed": [{"receiver": e.receiver, "failed_at": e.failed_at, "last_error": clean(e.last_error)} for e in failed],
    }


def run_status(config_path: str, output_format: str = "table", out: TextIO | None = None) -> int:
    out = out or sys.stdout  # the current one, not the one at import time
    status = collect(config_path)
    if output_format == "json":
        json.dump(status, out, indent=2, default=str)
        out.write("\n")
        return 0
    if "group" in status:
        _print_group(status["group"], out)
    if not status["checkpointed"]:
        print(f"no checkpoint yet at {status['state']} (the daemon has not run with this config)", file=out)
        return 0
    print(f"state {status['state']}; now {_when(time.time())} (wall clock)", file=out)
    print("offsets: " + (", ".join(f"{k}={v}" for k, v in status["offsets"].items()) or "none"), file=out)
    for model_id, m in status["models"].items():
        marks = status["event_time"].get(model_id, {})
        print(f"model {model_id}: version {m.get('model_version') or '-'}, {m.get('labelled_samples', 0):,} labelled, "
              f"{m['pending_joins']:,} waiting for outcomes; reference {m['reference']}", file=out)
        print("  event time read up to: " + ", ".join(f"{src} {_when(t)}" for src, t in sorted(marks.items())), file=out)
    print(f"alerts ({len(status['alerts'])} pending or firing):", file=out)
    for a in sorted(status["alerts"], key=lambda a: (a["state"] != "firing", a["starts_at"] or 0)):
        print(f"  {a['state']:8} {a['severity'] or '':8} since {_when(a['starts_at'])}  {a['model']} "
              f"{a['kind']}/{a['detector']} on {a['subject']}: {a['summary']}", file=out)
    print(f"notifications not yet delivered: {len(status['undelivered'])}", file=out)
    for e in status["undelivered"]:
        print(f"  to {e['receiver']}: {e['attempts']} attempt(s), next at {_when(e['next_attempt_at'])}; "
              f"last error: {e['last_error'] or '-'}", file=out)
    if status["failed"]:
        print(f"notifications failed permanently: {len(status['failed'])}", file=out)
        for e in status["failed"]:
            print(f"  to {e['receiver']} at {_when(e['failed_at'])}: {e['last_error']}", file=out)
    return 0


def _print_group(group: dict[str, Any], out: TextIO) -> None:
    print(f"state changelog {group['changelog']}:", file=out)
    if "error" in group:
        print(f"  {group['error']}", file=out)
        mine = group.get("this_instance") or {}
        if mine:
            print(f"  this instance ({mine.get('member')}, generation {mine.get('generation')}) owned partitions "
                  f"{sorted(mine.get('partitions', {}))}: models {sorted(mine.get('models', {}))}", file=out)
        return
    for p, part in group["partitions"].items():
        state = "handed over" if part["released"] else "owned"
        print(f"  partition {p}: {state} by {part['owner'] or '-'} (epoch {part['epoch']}, group generation "
              f"{part['generation']}), offsets " + (", ".join(f"{k}={v}" for k, v in part["offsets"].items()) or "-"),
              file=out)
        for m, r in part["models"].items():
            print(f"    model {m}: state version {r['version']} (epoch {r['epoch']}, written {_when(r['written_at'])}), "
                  "offsets " + ", ".join(f"{k}={v}" for k, v in r["offsets"].items()), file=out)

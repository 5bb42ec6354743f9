"""The alert pipeline, assembled in one place.

    ingest(findings)  -> lifecycle (pending -> firing -> resolved)
    flush(now)        -> route into groups (one per route group and fault: ``incident_span``)
                      -> [per due group] inhibit -> supersede -> silence -> dedup
                         -> outbox.put (durable, before any send) -> notification log
                      -> retraining planner (after inhibit + silence) -> outbox.put
A notification lists its alerts most likely cause first (``alerts/cause.py``); once a group has
notified, a new alert makes another notification only if it is news (``alerts/news.py``: a
topic not told yet; an escalation to critical is not), else it joins the group's list quietly.
    deliver(now)      -> outbox due entries, in order per receiver -> notifier -> record
                         (retryable failures back off from the outbox; permanent ones are recorded)

Commit order for the daemon (nothing lost, nothing twice):
1. ``flush(now)``: notifications are committed to the outbox (SQLite) with deterministic
   idempotency keys;
2. the daemon checkpoints ``state()`` together with the Kafka offsets;
3. ``deliver(now)``, any time, also concurrently with ingest/flush (the outbox is locked).
A crash between 1 and 2 replays the same events; the lifecycle reproduces the same alerts
(``starts_at`` is event time), the keys repeat and ``Outbox.put`` ignores them. (If a replay
groups alerts differently, a differently-batched notification can be added: never a lost one.)
Delivery is at-least-once per endpoint with an idempotency key; Slack is exactly-once in the
channel when the history lookup is possible (see ``alerts/slack.py``).

``ingest``, ``flush``, ``note_labels``, ``attach_report`` and ``state`` must be called from one
thread (the daemon's per-model pipeline thread).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from driftwarden.alerts.cause import by_cause
from driftwarden.alerts.dedup import LastNotification, Reason, decide
from driftwarden.alerts.grouping import Group, Groups, NotificationLog, NotificationLogEntry
from driftwarden.alerts.inhibit import Inhibitor
from driftwarden.alerts.lifecycle import AlertLifecycle
from driftwarden.alerts.log_receiver import LogNotifier
from driftwarden.alerts.model import Alert
from driftwarden.alerts.news import is_news, told_topics
from driftwarden.alerts.notify import DeliveryResult, Notification, Notifier, error_result, retry_delay
from driftwarden.alerts.outbox import Outbox, OutboxEntry
from driftwarden.alerts.retrain import RetrainPlanner
from driftwarden.alerts.routing import RouteNode, build_route_tree
from driftwarden.alerts.settings import AlertingSettings, seconds
from driftwarden.alerts.silences import Silencer, SilenceStore
from driftwarden.alerts.stage import Stage
from driftwarden.alerts.supersede import Superseder
from driftwarden.detectors.findings import Finding

LOG = logging.getLogger("driftwarden.alerts")
STATE_VERSION = 1


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


class AlertPipeline:
    def __init__(
        self, settings: AlertingSettings, outbox: Outbox, notifiers: Mapping[str, Notifier], silences: SilenceStore | None = None
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.notifiers: dict[str, Notifier] = {"log": LogNotifier(), **notifiers}
        self.lifecycle = AlertLifecycle(
            settings.for_windows,
            seconds(settings.for_seconds) if settings.for_seconds is not None else None,
            seconds(settings.resolve_after),
            seconds(settings.resolve_timeout) if settings.resolve_timeout is not None else None,
        )
        self.routes = build_route_tree(
            settings.route,
            settings.group_by,
            seconds(settings.group_wait),
            seconds(settings.group_interval),
            seconds(settings.repeat_interval),
        )
        self._route_by_id = {r.id: r for r in _walk(self.routes)}
        self.groups = Groups(seconds(settings.incident_span))
        self.nflog = NotificationLog()
        self.silences = silences or SilenceStore(":memory:")
        self.stages: list[Stage] = [
            Inhibitor(settings.inhibit_rules, sources=self.lifecycle.active),
            Superseder(sources=self.lifecycle.active),
            Silencer(self.silences, settings.silences, settings.mute_windows),
        ]
        self.retrain = RetrainPlanner(settings.retraining)

    # -- input ---------------------------------------------------------------------------------
    def ingest(self, model_id: str, labels: Mapping[str, str], findings: Sequence[Finding], now: float) -> list[Alert]:
        """Feed one evaluation's findings; returns (copies of) alerts whose state changed."""
        return self.lifecycle.update(model_id, labels, findings, now)

    def expire(self, event_now: float | Mapping[str, float]) -> list[Alert]:
        """Resolve firing alerts whose checks stopped being evaluated (see ``resolve_timeout``)."""
        return self.lifecycle.expire(event_now)

    def note_labels(self, model_id: str, labelled_samples: int, model_version: str | None, now: float) -> None:
        """Cumulative labelled samples and current version: feeds retraining; a new version
        resolves the alerts raised on the old one."""
        self.retrain.note_labels(model_id, labelled_samples, model_version, now)
        if model_version:
            self.lifecycle.new_version(model_id, model_version, now)

    def attach_report(self, fingerprint: str, link: str, summary_markdown: str, announce: bool = True) -> None:
        """Annotate the alert(s) of ``fingerprint``; groups that already notified send a reply
        (unless ``announce`` is false: an update of a report the group already linked)."""
        notes = {"report_link": link, "report_summary": summary_markdown}
        self.lifecycle.annotate(fingerprint, notes)
        for group in self.groups.groups.values():
            for alert in group.alerts.values():
                if alert.fingerprint == fingerprint:
                    alert.annotations.update(notes)
                    group.report_pending = group.report_pending or announce

    def incident_of(self, fingerprint: str, now: float) -> str | None:
        """The key of the notification group (the incident) that the firing alert of
        ``fingerprint`` belongs to, routing the alerts now if the last flush did not; None when
        no alert of it fires. Reports use it: one report per incident."""
        self._route(self.lifecycle.active(), now)
        firing = {a.key for a in self.lifecycle.active() if a.fingerprint == fingerprint and a.state == "firing"}
        for group in self.groups.groups.values():
            if any(a.key in firing and a.state == "firing" for a in group.alerts.values()):
                return group.key
        return None

    # -- grouping, dedup, outbox ---------------------------------------------------------------
    def run_stages(self, alerts: Sequence[Alert], now: float) -> list[Alert]:
        out = list(alerts)
        for stage in self.stages:
            out = stage(out, now)
        return out

    def flush(self, now: float) -> None:
        """Route alerts into groups, notify due groups (written to the outbox), plan retraining."""
        active = self.lifecycle.active()
        self.groups.sweep(self._route(active, now))
        self.lifecycle.drop_resolved()
        self._plan_retraining(active, now)
        for group in self.groups.due(now):
            self._flush_group(group, now)

    def _route(self, active: list[Alert], now: float) -> set[tuple[str, str]]:
        """Put ``active`` alerts into their groups; the (group key, instance) pairs routed."""
        touched: set[tuple[str, str]] = set()
        for alert in sorted(active, key=lambda a: (a.starts_at, a.key)):  # a fault's first alert opens its group
            for route in self.routes.match(alert.labels):
                touched.add((self.groups.insert(route, alert, now).key, alert.instance))
        return touched

    def _plan_retraining(self, active: list[Alert], now: float) -> None:
        passed = self.run_stages([a for a in active if a.state == "firing"], now)
        for model in sorted({a.model for a in active} | set(self.retrain.models)):
            alive = {a.instance for a in active if a.model == model}
            n = self.retrain.plan(model, [a for a in passed if a.model == model], now, alive)
            if n is not None:
                self.outbox.put(n.idempotency_key, n.receiver, n.payload(), now)
                LOG.info("retraining requested for %s via %s: %s", model, n.receiver, n.reason)

    def _flush_group(self, group: Group, now: float) -> None:
        route = self._route_by_id.get(group.route_id, self.routes)
        everything = list(group.alerts.values())
        shown = self.run_stages(everything, now)
        firing = frozenset(a.instance for a in shown if a.state == "firing")
        resolved = frozenset(a.instance for a in shown if a.state == "resolved")
        entry = self.nflog.get(group.key)
        quiet: frozenset[str] = frozenset()
        if entry is not None and entry.firing:  # an open thread: only news makes another notification
            quiet = frozenset(a.instance for a in shown if a.state == "firing" and a.instance not in entry.firing
                              and not is_news(a, entry.topics))
        last = LastNotification(entry.firing | quiet, entry.resolved | entry.quiet | quiet, entry.sent_at) \
            if entry else None
        reason = decide(last, firing, resolved, now, route.repeat_interval, self._send_resolved(group.receiver))
        reason_text = reason.value
        if reason is Reason.NOTHING and group.report_pending and entry is not None and entry.firing:
            reason_text = "report_attached"
        if reason_text != Reason.NOTHING.value:
            self._enqueue(group, entry, reason_text, shown, firing, resolved, now, quiet)
        elif entry is not None and quiet:  # said nothing new: recorded as told, their resolution is no news either
            self.nflog.record(group.key, msgspec.structs.replace(entry, firing=entry.firing | quiet,
                                                                 quiet=entry.quiet | quiet))
        group.report_pending = False
        self.groups.flushed(group, now, route.group_interval, [a.instance for a in everything if a.state == "resolved"])

    def _enqueue(
        self,
        group: Group,
        entry: NotificationLogEntry | None,
        reason: str,
        shown: list[Alert],
        firing: frozenset[str],
        resolved: frozenset[str],
        now: float,
        quiet: frozenset[str] = frozenset(),
    ) -> None:
        new_thread = entry is None or not entry.firing
        seq = 0 if entry is None or new_thread else entry.seq + 1
        if new_thread:
            first = min((a.starts_at for a in shown if a.state == "firing"), default=now)
            thread_key = _digest(group.key, f"{first:.17g}")
        else:
            assert entry is not None
            thread_key = entry.thread_key
        told = entry.firing if entry is not None and not new_thread else frozenset()
        resolved_news = resolved & told
        alerts = by_cause(a for a in shown if a.state == "firing" or a.instance in resolved_news)
        key = _digest(group.key, reason, thread_key, str(seq), *sorted(firing), "|", *sorted(resolved_news))
        n = Notification(
            type="alerts",
            receiver=group.receiver,
            group_key=group.key,
            idempotency_key=key,
            reason=reason,
            status="firing" if firing else "resolved",
            created_at=now,
            group_labels=dict(group.labels),
            alerts=alerts,
            new=sorted(firing - told),
            resolved=sorted(resolved_news),
            thread_key=thread_key,
            thread_role="root" if new_thread else "reply",
        )
        self.outbox.put(key, group.receiver, n.payload(), now, thread_key=thread_key if new_thread else None)
        if firing:
            before = entry if entry is not None and not new_thread else None
            topics = told_topics((a for a in shown if a.state == "firing"), before.topics if before else None)
            self.nflog.record(
                group.key, NotificationLogEntry(firing=firing, resolved=resolved, sent_at=now, thread_key=thread_key,
                                                seq=seq, topics=topics,
                                                quiet=(before.quiet & firing if before else frozenset()) | quiet)
            )
        else:
            self.nflog.entries.pop(group.key, None)  # all resolved: the next firing starts a new thread

    def _send_resolved(self, receiver: str) -> bool:
        spec = self.settings.receivers.get(receiver)
        return spec.send_resolved if spec is not None else True

    # -- delivery ------------------------------------------------------------------------------
    def deliver(self, now: float, limit: int = 100) -> int:
        """Send due outbox entries, oldest first per receiver; returns how many were delivered."""
        delivered, blocked = 0, set()
        for entry in self.outbox.due(now, limit):
            if entry.receiver in blocked:
                continue
            result = self._send(entry, now)
            if result.ok:
                self.outbox.mark_delivered(entry.id, now, result.remote_id)
                delivered += 1
            elif result.retryable:
                wait = retry_delay(entry.attempts + 1, result.retry_after)
                self.outbox.mark_retry(entry.id, now + wait, result.detail)
                blocked.add(entry.receiver)
                LOG.warning(
                    "delivery to %s failed (attempt %d), retry in %.0fs: %s",
                    entry.receiver,
                    entry.attempts + 1,
                    wait,
                    result.detail,
                )
            else:
                self.outbox.mark_failed(entry.id, now, result.detail)
                LOG.error("delivery to %s failed permanently: %s", entry.receiver, result.detail)
        return delivered

    def _send(self, entry: OutboxEntry, now: float) -> DeliveryResult:
        notifier = self.notifiers.get(entry.receiver)
        if notifier is None:
            return DeliveryResult(ok=False, retryable=True, detail=f"no notifier for receiver {entry.receiver!r}")
        n = msgspec.convert(entry.payload, Notification)
        n.possibly_sent, n.sent_at = entry.attempts > 0, now
        if n.thread_role == "reply" and n.thread_key:
            n.thread_ref = self.outbox.thread_result(n.thread_key)
        self.outbox.begin_attempt(entry.id, now)
        try:
            return notifier.notify(n)
        except Exception as exc:  # a notifier bug must not stop the loop; classified like I/O errors
            return error_result(exc)

    # -- state ---------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """JSON-safe lifecycle, groups, notification log and retraining state."""
        return {
            "version": STATE_VERSION,
            "lifecycle": self.lifecycle.state(),
            "groups": self.groups.state(),
            "nflog": self.nflog.state(),
            "retrain": self.retrain.state(),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"alert state version {state.get('version')!r} is not {STATE_VERSION}")
        self.lifecycle.load_state(state["lifecycle"])
        self.groups.load_state(state["groups"])
        self.nflog.load_state(state["nflog"])
        self.retrain.load_state(state["retrain"])


def _walk(node: RouteNode) -> list[RouteNode]:
    return [node, *(n for child in node.children for n in _walk(child))]

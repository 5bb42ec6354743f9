"""Retraining requests: at most one per real degradation, never one per window.

A request is planned when a firing (not inhibited, not silenced) alert matching the model's
policy ``triggers`` is not yet covered by an earlier request, and the policy allows it:
at least ``min_new_labels`` labelled samples since the last request (or since the current
model version appeared), ``cooldown`` since the last request, fewer than ``max_per_day``
requests in the last 24 h. A blocked degradation is re-checked at every flush while it
fires, so it is requested once the labels arrive or the cooldown ends.

>>> from driftwarden.alerts.settings import RetrainPolicy
>>> from driftwarden.alerts.model import Alert
>>> planner = RetrainPlanner({"churn": RetrainPolicy(receiver="ci", min_new_labels=100)})
>>> a = Alert(fingerprint="f", severity="warning", state="firing", starts_at=0,
...           labels={"model": "churn", "kind": "data_drift", "model_version": "3"})
>>> planner.plan("churn", [a], now=10) is None, planner.why_not("churn")
(True, 'waiting for labels: 0 of 100 new labelled samples')
>>> planner.note_labels("churn", 150, "3", now=20)
>>> planner.plan("churn", [a], now=30).receiver, planner.plan("churn", [a], now=40)
('ci', None)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import msgspec

from driftwarden.alerts.matchers import matches, parse_matchers
from driftwarden.alerts.model import Alert
from driftwarden.alerts.notify import Notification, RetrainRequest
from driftwarden.alerts.settings import RetrainPolicy, seconds

DAY = 86400.0


class ModelRetrainState(msgspec.Struct, kw_only=True):
    labels_seen: int = 0
    labels_at_last: int = 0
    version: str = ""
    requests: list[float] = msgspec.field(default_factory=list)
    covered: list[str] = msgspec.field(default_factory=list)


class RetrainPlanner:
    def __init__(self, policies: Mapping[str, RetrainPolicy]):
        self.policies = dict(policies)
        self.models: dict[str, ModelRetrainState] = {}
        self._why: dict[str, str] = {}

    def policy(self, model: str) -> RetrainPolicy | None:
        return self.policies.get(model) or self.policies.get("*")

    def note_labels(self, model: str, labelled_samples: int, model_version: str | None, now: float) -> None:
        """``labelled_samples`` is the model's cumulative count of labelled samples."""
        st = self.models.setdefault(model, ModelRetrainState())
        st.labels_seen = labelled_samples
        if model_version and model_version != st.version:
            if st.version:  # a new version counts as a retrain: labels and coverage start over
                st.labels_at_last = labelled_samples
                st.covered = []
            st.version = model_version

    def why_not(self, model: str) -> str:
        """Why the last plan() for ``model`` sent nothing (for logs and the CLI)."""
        return self._why.get(model, "")

    def plan(self, model: str, firing: Sequence[Alert], now: float, alive: set[str] | None = None) -> Notification | None:
        """A retraining request for ``model`` if one is due, else None. ``alive``: instances of
        the model's current alerts (coverage of alerts that ended is forgotten)."""
        policy = self.policy(model)
        if policy is None:
            return None
        st = self.models.setdefault(model, ModelRetrainState())
        if alive is not None:
            st.covered = [c for c in st.covered if c in alive]
        triggers = parse_matchers(policy.triggers)
        hits = [a for a in firing if a.state == "firing" and a.model == model and matches(triggers, a.labels)]
        new = [a for a in hits if a.instance not in st.covered]
        if not new:
            self._why[model] = "no new triggering alert"
            return None
        st.requests = [t for t in st.requests if now - t < DAY]
        gained = st.labels_seen - st.labels_at_last
        if gained < policy.min_new_labels:
            self._why[model] = f"waiting for labels: {gained} of {policy.min_new_labels} new labelled samples"
            return None
        if st.requests and now - st.requests[-1] < seconds(policy.cooldown):
            self._why[model] = f"cooldown: last request {now - st.requests[-1]:.0f}s ago"
            return None
        if len(st.requests) >= policy.max_per_day:
            self._why[model] = f"max_per_day reached ({policy.max_per_day})"
            return None
        st.requests.append(now)
        st.labels_at_last = st.labels_seen
        st.covered = sorted({*st.covered, *(a.instance for a in hits)})
        self._why[model] = ""
        version = new[0].labels.get("model_version", "") or st.version
        key = hashlib.sha256("\x1f".join(["retrain", model, version, *sorted(a.instance for a in new)]).encode()).hexdigest()[:32]
        reason = "; ".join(a.annotations.get("summary", a.key) for a in new)
        evidence = [_evidence(a) for a in hits]
        return Notification(
            type="retrain",
            receiver=policy.receiver,
            group_key=f"retrain:{model}",
            idempotency_key=key,
            reason=reason,
            status="firing",
            created_at=now,
            group_labels={"model": model},
            alerts=hits,
            retrain=RetrainRequest(model=model, model_version=version, reason=reason, evidence=evidence),
        )

    def state(self) -> dict[str, object]:
        return {m: msgspec.to_builtins(s) for m, s in self.models.items()}

    def load_state(self, state: Mapping[str, object]) -> None:
        self.models = {m: msgspec.convert(s, ModelRetrainState) for m, s in state.items()}


def _evidence(a: Alert) -> dict[str, object]:
    return {
        "fingerprint": a.fingerprint,
        "kind": a.labels.get("kind", ""),
        "detector": a.labels.get("detector", ""),
        "subject": a.labels.get("subject", ""),
        "severity": a.severity,
        "statistic": a.values.get("statistic"),
        "threshold": a.values.get("threshold"),
        "p_value": a.values.get("p_value"),
        "window_size": a.values.get("window_size"),
        "starts_at": a.starts_at,
    }

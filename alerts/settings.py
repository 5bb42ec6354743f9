"""The ``alerting:`` block: strict msgspec Structs whose defaults are the documented defaults.

Durations are numbers of seconds or strings such as ``"30s"``, ``"5m"``, ``"4h"``, ``"2d"``
or ``"1h30m"``; they are checked when the config is loaded and read with :func:`seconds`.

>>> seconds("1h30m"), seconds(90), seconds("500ms")
(5400.0, 90.0, 0.5)
>>> s = msgspec.convert({"group_wait": "10s", "route": {"receiver": "log"}}, AlertingSettings)
>>> seconds(s.group_wait), seconds(s.repeat_interval), s.for_windows
(10.0, 14400.0, 2)
>>> msgspec.convert({"route": {"receiver": "nowhere"}}, AlertingSettings)
Traceback (most recent call last):
...
msgspec.ValidationError: route.receiver 'nowhere' is not a configured receiver (known: log)
"""

from __future__ import annotations

import re
import urllib.parse
from functools import cache
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

import msgspec

from driftwarden.alerts.matchers import parse_matchers

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")

class _IsDuration:
    """The mark of a :data:`Duration` field: :func:`duration_fields` finds them, no list to keep."""


Duration = Annotated[float | str, _IsDuration]  # seconds, or a string like "30s", "5m", "4h", "2d"
DRIFT_KINDS = "data_drift|prediction_drift|multivariate_drift|concept_drift"


def seconds(value: Duration) -> float:
    """A duration in seconds: a number, or a string like ``"30s"``, ``"5m"``, ``"4h"``, ``"2d"``."""
    if isinstance(value, bool):
        raise ValueError(f"duration must be a number of seconds or a string like '5m', got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"duration must not be negative, got {value!r}")
        return float(value)
    text = value.strip().replace(" ", "")
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {value!r}: use seconds or a string like '30s', '5m', '4h', '2d'")
    return total


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


@cache
def duration_fields(struct: type[msgspec.Struct]) -> tuple[str, ...]:
    """The fields of ``struct`` declared :data:`Duration` (or ``Duration | None``), in order.

    >>> duration_fields(RetrainPolicy)
    ('cooldown',)
    """
    hints = get_type_hints(struct, include_extras=True)

    def marked(hint: Any) -> bool:
        if _IsDuration in getattr(hint, "__metadata__", ()):
            return True
        return get_origin(hint) in (Union, UnionType) and any(map(marked, get_args(hint)))

    return tuple(name for name in struct.__struct_fields__ if marked(hints[name]))


def check_durations(obj: msgspec.Struct) -> None:
    """Each :data:`Duration` field of ``obj`` parses (``ValueError`` naming the first that does not)."""
    for name in duration_fields(type(obj)):
        value = getattr(obj, name)
        if value is not None:
            try:
                seconds(value)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None


class SlackReceiver(_Strict, tag="slack", frozen=True):
    """Slack Web API bot: ``chat.postMessage`` into ``channel`` (an ID like C0123 is best: see slack.py)."""

    channel: str
    token_env: str = "SLACK_BOT_TOKEN"
    base_url: str | None = None
    timeout: Duration = 10.0
    send_resolved: bool = True

    def __post_init__(self) -> None:
        check_durations(self)


class SlackWebhookReceiver(_Strict, tag="slack_webhook", frozen=True):
    """Slack incoming webhook; the URL is a secret, so it is read from the env var ``url_env``."""

    url_env: str
    timeout: Duration = 10.0
    send_resolved: bool = True

    def __post_init__(self) -> None:
        check_durations(self)


class WebhookReceiver(_Strict, tag="webhook", frozen=True):
    """HTTP POST of a versioned, HMAC-signed JSON body; presets for GitHub and GitLab CI."""

    url: str
    preset: Literal["generic", "github", "gitlab"] = "generic"
    secret_env: str | None = None
    token_env: str | None = None
    ref: str = "main"
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    timeout: Duration = 10.0
    send_resolved: bool = True

    def __post_init__(self) -> None:
        check_durations(self)
        if self.preset in ("github", "gitlab") and not self.token_env:
            raise ValueError(f"webhook preset {self.preset!r} needs token_env (the env var holding the token)")


class KafkaTopicReceiver(_Strict, tag="kafka", frozen=True):
    """Notifications as JSON records on a Kafka topic (keyed by idempotency key)."""

    topic: str
    send_resolved: bool = True


class AlertmanagerReceiver(_Strict, tag="alertmanager", frozen=True):
    """A Prometheus Alertmanager's API v2 (``POST {url}/api/v2/alerts``): see alerts/alertmanager.py.

    ``ends_after``: the lease (``endsAt`` - now) of a firing alert; it must exceed the
    ``repeat_interval + group_interval`` of every route that reaches this receiver (the default
    is three times the longest). Auth: ``username`` + ``password_env`` (basic), or
    ``bearer_token_env``; secrets are read from those environment variables only.
    ``reports_url``: the daemon's public reports prefix, for ``generatorURL`` before a report exists.
    """

    url: str
    ends_after: Duration | None = None
    reports_url: str | None = None
    username: str | None = None
    password_env: str | None = None
    bearer_token_env: str | None = None
    timeout: Duration = 10.0
    send_resolved: bool = True

    def __post_init__(self) -> None:
        check_durations(self)
        for name in ("url", "reports_url"):
            value = getattr(self, name)
            if value is not None:
                parts = urllib.parse.urlsplit(value)
                if parts.scheme not in ("http", "https") or not parts.netloc:
                    raise ValueError(f"{name}: {value!r} is not an http(s) URL (e.g. http://alertmanager:9093)")
        if self.ends_after is not None and seconds(self.ends_after) <= 0:
            raise ValueError("ends_after must be positive")
        if (self.username is None) != (self.password_env is None):
            raise ValueError("basic auth needs both username and password_env")
        if self.username is not None and self.bearer_token_env is not None:
            raise ValueError("use basic auth (username, password_env) or bearer_token_env, not both")


class LogReceiver(_Strict, tag="log", frozen=True):
    """Notifications as one JSON log line each (logger ``driftwarden.alerts``)."""

    level: Literal["info", "warning", "error"] = "warning"
    send_resolved: bool = True


Receiver = SlackReceiver | SlackWebhookReceiver | WebhookReceiver | KafkaTopicReceiver | AlertmanagerReceiver | LogReceiver


class Route(_Strict, frozen=True):
    """A node of the route tree; unset timing/grouping fields inherit from the parent."""

    receiver: str | None = None
    matchers: list[str] = msgspec.field(default_factory=list)
    group_by: list[str] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    continue_: bool = msgspec.field(default=False, name="continue")
    routes: list[Route] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        parse_matchers(self.matchers)
        check_durations(self)


class InhibitRule(_Strict, frozen=True):
    """While a firing alert matches ``source_matchers``, alerts matching ``target_matchers`` that
    have equal values for every label in ``equal`` are held."""

    source_matchers: list[str]
    target_matchers: list[str]
    equal: list[str] = msgspec.field(default_factory=lambda: ["model"])

    def __post_init__(self) -> None:
        parse_matchers(self.source_matchers)
        parse_matchers(self.target_matchers)


def _default_inhibit_rules() -> list[InhibitRule]:
    return [
        # staleness / consumer lag (traffic) or schema / data quality broken: drift numbers are noise
        InhibitRule(source_matchers=['kind=~"quality|traffic"'], target_matchers=[f'kind=~"{DRIFT_KINDS}"']),
        # a critical alert holds the warning of the same check
        InhibitRule(
            source_matchers=['severity="critical"'],
            target_matchers=['severity="warning"'],
            equal=["model", "kind", "detector", "subject"],
        ),
    ]


class StaticSilence(_Strict, frozen=True):
    """A silence from config: epoch seconds or RFC 3339 strings for starts_at / ends_at."""

    matchers: list[str]
    starts_at: float | str
    ends_at: float | str
    comment: str = ""
    created_by: str = "config"

    def __post_init__(self) -> None:
        from driftwarden.alerts.mute import parse_time

        parse_matchers(self.matchers)
        if parse_time(self.ends_at) <= parse_time(self.starts_at):
            raise ValueError("silence ends_at must be after starts_at")


class MuteWindow(_Strict, frozen=True):
    """A recurring mute (maintenance) window in UTC, e.g. weekdays ``["sat", "sun"]`` or
    ``["mon-fri"]`` with ``start: "22:00"``, ``end: "02:00"`` (an end before the start wraps midnight)."""

    name: str
    matchers: list[str] = msgspec.field(default_factory=list)
    weekdays: list[str] = msgspec.field(default_factory=lambda: ["mon-sun"])
    start: str = "00:00"
    end: str = "24:00"

    def __post_init__(self) -> None:
        from driftwarden.alerts.mute import parse_clock, parse_weekdays

        parse_matchers(self.matchers)
        parse_weekdays(self.weekdays)
        parse_clock(self.start)
        parse_clock(self.end)


class RetrainPolicy(_Strict, frozen=True):
    """When firing alerts of a model may request retraining, and how often."""

    receiver: str
    triggers: list[str] = msgspec.field(default_factory=lambda: [f'kind=~"{DRIFT_KINDS}|performance|estimated_performance"'])
    min_new_labels: int = 1000
    cooldown: Duration = "24h"
    max_per_day: int = 1

    def __post_init__(self) -> None:
        parse_matchers(self.triggers)
        check_durations(self)
        if self.min_new_labels < 0 or self.max_per_day < 1:
            raise ValueError("min_new_labels must be >= 0 and max_per_day >= 1")


class AlertingSettings(_Strict, frozen=True):
    """The ``alerting:`` block. ``retraining`` maps a model id (or ``"*"`` for all) to a policy."""

    group_by: list[str] = msgspec.field(default_factory=lambda: ["model"])
    group_wait: Duration = "30s"
    group_interval: Duration = "5m"
    repeat_interval: Duration = "4h"
    incident_span: Duration = "10m"  # alerts of a group starting this close (event time) are one fault
    for_windows: int = 2
    for_seconds: Duration | None = None
    resolve_after: Duration = 0.0
    resolve_timeout: Duration | None = "24h"  # a firing check not evaluated this long resolves (None: never)
    receivers: dict[str, Receiver] = msgspec.field(default_factory=dict)
    route: Route = msgspec.field(default_factory=lambda: Route(receiver="log"))
    inhibit_rules: list[InhibitRule] = msgspec.field(default_factory=_default_inhibit_rules)
    silences: list[StaticSilence] = msgspec.field(default_factory=list)
    mute_windows: list[MuteWindow] = msgspec.field(default_factory=list)
    retraining: dict[str, RetrainPolicy] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        check_durations(self)
        if self.for_windows < 1:
            raise ValueError("for_windows must be >= 1")
        if self.route.receiver is None:
            raise ValueError("route.receiver is required on the root route")
        if self.route.matchers:
            raise ValueError("the root route matches every alert: remove route.matchers")
        known = self.receiver_names()
        for path, name in _route_receivers(self.route, "route"):
            if name not in known:
                raise ValueError(f"{path}.receiver {name!r} is not a configured receiver (known: {', '.join(sorted(known))})")
        for model, policy in self.retraining.items():
            if policy.receiver not in known:
                raise ValueError(f"retraining.{model}.receiver {policy.receiver!r} is not a configured receiver")
            if isinstance(self.receivers.get(policy.receiver), AlertmanagerReceiver):
                raise ValueError(f"retraining.{model}.receiver {policy.receiver!r} is an alertmanager: it takes alerts, "
                                 "not retraining requests (use a webhook)")
        self._check_alertmanager_leases()

    def _check_alertmanager_leases(self) -> None:
        for path, name, repeat, interval in self.route_timings():
            spec = self.receivers.get(name)
            lease = spec.ends_after if isinstance(spec, AlertmanagerReceiver) else None
            if lease is not None and seconds(lease) <= repeat + interval:
                raise ValueError(
                    f"receivers.{name}.ends_after {lease} must exceed {path}'s repeat_interval + group_interval "
                    f"({repeat:g}s + {interval:g}s): Alertmanager resolves a firing alert at its endsAt unless it is "
                    "re-sent first; lower the route's repeat_interval (e.g. 5m) or raise ends_after"
                )

    def route_timings(self) -> list[tuple[str, str, float, float]]:
        """(YAML path, receiver, effective repeat_interval, effective group_interval) of every route."""
        return _route_timings(self.route, "route", "log", seconds(self.repeat_interval), seconds(self.group_interval))

    def alertmanager_lease(self, name: str) -> float:
        """Seconds from a send to a firing alert's ``endsAt`` for the alertmanager receiver ``name``:
        its ``ends_after``, else three times the longest repeat_interval + group_interval of the
        routes that reach it (Prometheus leases four evaluation intervals; we tolerate two lost re-sends).

        >>> s = msgspec.convert({"receivers": {"am": {"type": "alertmanager", "url": "http://am:9093"}},
        ...                      "route": {"receiver": "log", "routes": [{"receiver": "am", "repeat_interval": "5m",
        ...                                                               "group_interval": "1m"}]}}, AlertingSettings)
        >>> s.alertmanager_lease("am")
        1080.0
        """
        spec = self.receivers[name]
        if isinstance(spec, AlertmanagerReceiver) and spec.ends_after is not None:
            return seconds(spec.ends_after)
        spans = [repeat + interval for _, receiver, repeat, interval in self.route_timings() if receiver == name]
        return 3.0 * max(spans, default=seconds(self.repeat_interval) + seconds(self.group_interval))

    def receiver_names(self) -> set[str]:
        """Configured receivers plus the built-in ``log`` receiver."""
        return {*self.receivers, "log"}


def _route_timings(route: Route, path: str, receiver: str, repeat: float, interval: float) -> list[tuple[str, str, float, float]]:
    receiver = route.receiver or receiver
    repeat = seconds(route.repeat_interval) if route.repeat_interval is not None else repeat
    interval = seconds(route.group_interval) if route.group_interval is not None else interval
    found = [(path, receiver, repeat, interval)]
    for i, child in enumerate(route.routes):
        found += _route_timings(child, f"{path}.routes[{i}]", receiver, repeat, interval)
    return found


def _route_receivers(route: Route, path: str) -> list[tuple[str, str]]:
    found = [(path, route.receiver)] if route.receiver is not None else []
    for i, child in enumerate(route.routes):
        found += _route_receivers(child, f"{path}.routes[{i}]")
    return found

"""Build notifiers from the ``receivers:`` config, reading secrets from the environment.

Every secret read is registered with :mod:`alerts.redact` (and the log filter installed), so
it never appears in a delivery error, a log line or ``driftwarden status``.

>>> from driftwarden.alerts.settings import AlertingSettings
>>> import msgspec
>>> s = msgspec.convert({"receivers": {"ops": {"type": "slack", "channel": "C0123ABCD"}}}, AlertingSettings)
>>> sorted(build_notifiers(s, environ={"SLACK_BOT_TOKEN": "xoxb-test"}))
['log', 'ops']
>>> build_notifiers(s, environ={})
Traceback (most recent call last):
...
ValueError: receivers.ops.token_env: environment variable SLACK_BOT_TOKEN is not set
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from driftwarden.alerts.alertmanager import AlertmanagerNotifier
from driftwarden.alerts.kafka_topic import KafkaTopicNotifier, Producer
from driftwarden.alerts.log_receiver import LogNotifier
from driftwarden.alerts.notify import Notifier
from driftwarden.alerts.redact import install_log_filter, register_secret
from driftwarden.alerts.settings import (
    AlertingSettings,
    AlertmanagerReceiver,
    KafkaTopicReceiver,
    LogReceiver,
    SlackReceiver,
    SlackWebhookReceiver,
    WebhookReceiver,
    seconds,
)
from driftwarden.alerts.slack import SlackNotifier, SlackWebhookNotifier
from driftwarden.alerts.webhook import WebhookNotifier


def build_notifiers(
    settings: AlertingSettings,
    environ: Mapping[str, str] | None = None,
    producer: Producer | None = None,
    reports_url: str | None = None,
) -> dict[str, Notifier]:
    """One notifier per receiver (plus ``log``). ValueError names the missing env var or producer.

    ``reports_url``: the daemon's public reports prefix, the default of an alertmanager
    receiver's ``reports_url`` (its ``generatorURL`` before a report is attached).
    """
    env = os.environ if environ is None else environ
    install_log_filter()
    register_secret(*secret_values(settings, env))

    def secret(name: str, field: str, var: str | None) -> str | None:
        if var is None:
            return None
        value = env.get(var)
        if not value:
            raise ValueError(f"receivers.{name}.{field}: environment variable {var} is not set")
        return value

    out: dict[str, Notifier] = {"log": LogNotifier()}
    for name, spec in settings.receivers.items():
        if isinstance(spec, SlackReceiver):
            out[name] = SlackNotifier(
                spec.channel,
                secret(name, "token_env", spec.token_env) or "",
                base_url=spec.base_url,
                timeout=seconds(spec.timeout),
                send_resolved=spec.send_resolved,
            )
        elif isinstance(spec, SlackWebhookReceiver):
            out[name] = SlackWebhookNotifier(
                secret(name, "url_env", spec.url_env) or "", timeout=seconds(spec.timeout), send_resolved=spec.send_resolved
            )
        elif isinstance(spec, WebhookReceiver):
            out[name] = WebhookNotifier(
                spec.url,
                spec.preset,
                secret(name, "secret_env", spec.secret_env),
                secret(name, "token_env", spec.token_env),
                spec.ref,
                spec.headers,
                seconds(spec.timeout),
                spec.send_resolved,
            )
        elif isinstance(spec, KafkaTopicReceiver):
            if producer is None:
                raise ValueError(f"receivers.{name}: a kafka receiver needs the daemon's producer")
            out[name] = KafkaTopicNotifier(producer, spec.topic)
        elif isinstance(spec, AlertmanagerReceiver):
            out[name] = AlertmanagerNotifier(
                spec.url,
                settings.alertmanager_lease(name),
                reports_url=spec.reports_url or reports_url,
                username=spec.username,
                password=secret(name, "password_env", spec.password_env),
                bearer_token=secret(name, "bearer_token_env", spec.bearer_token_env),
                timeout=seconds(spec.timeout),
                send_resolved=spec.send_resolved,
            )
        elif isinstance(spec, LogReceiver):
            out[name] = LogNotifier(spec.level)
    return out


_SENSITIVE_HEADER = re.compile(r"(?i)authorization|token|secret|key|password|cookie")


def secret_values(settings: AlertingSettings, environ: Mapping[str, str]) -> list[str]:
    """The secret values the receivers would use (env vars that are set, sensitive header values)."""
    out: list[str] = []
    for spec in settings.receivers.values():
        names: list[str | None] = []
        if isinstance(spec, SlackReceiver):
            names = [spec.token_env]
        elif isinstance(spec, SlackWebhookReceiver):
            names = [spec.url_env]
        elif isinstance(spec, WebhookReceiver):
            names = [spec.secret_env, spec.token_env]
            out += [v for k, v in spec.headers.items() if _SENSITIVE_HEADER.search(k)]
        elif isinstance(spec, AlertmanagerReceiver):
            names = [spec.password_env, spec.bearer_token_env]
        out += [environ[n] for n in names if n and environ.get(n)]
    return out

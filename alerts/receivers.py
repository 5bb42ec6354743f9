"""Build notifiers from the ``receivers:`` config, reading secrets from the environment.

>>> from alerts.settings import AlertingSettings
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
from collections.abc import Mapping

from alerts.kafka_topic import KafkaTopicNotifier, Producer
from alerts.log_receiver import LogNotifier
from alerts.notify import Notifier
from alerts.settings import (
    AlertingSettings,
    KafkaTopicReceiver,
    LogReceiver,
    SlackReceiver,
    SlackWebhookReceiver,
    WebhookReceiver,
    seconds,
)
from alerts.slack import SlackNotifier, SlackWebhookNotifier
from alerts.webhook import WebhookNotifier


def build_notifiers(
    settings: AlertingSettings, environ: Mapping[str, str] | None = None, producer: Producer | None = None
) -> dict[str, Notifier]:
    """One notifier per receiver (plus ``log``). ValueError names the missing env var or producer."""
    env = os.environ if environ is None else environ

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
        elif isinstance(spec, LogReceiver):
            out[name] = LogNotifier(spec.level)
    return out

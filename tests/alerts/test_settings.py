from __future__ import annotations

import msgspec
import pytest
import yaml

from driftwarden.alerts.settings import AlertingSettings, SlackReceiver, WebhookReceiver, seconds

EXAMPLE = """
alerting:
  group_by: [model]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  for_windows: 2
  resolve_after: 10m
  receivers:
    ml-oncall: {type: slack, channel: C0123ABCD, token_env: SLACK_BOT_TOKEN}
    risk-hook: {type: slack_webhook, url_env: RISK_SLACK_WEBHOOK_URL}
    ci: {type: webhook, preset: github, url: "https://api.github.com/repos/acme/models/dispatches",
         token_env: GITHUB_TOKEN, secret_env: DRIFTWARDEN_WEBHOOK_SECRET}
    audit: {type: kafka, topic: driftwarden-alerts}
  route:
    receiver: ml-oncall
    routes:
      - matchers: ['team="risk"']
        receiver: risk-hook
        continue: true
      - matchers: ['severity="critical"']
        receiver: ml-oncall
        group_wait: 10s
  inhibit_rules:
    - source_matchers: ['kind=~"quality|traffic"']
      target_matchers: ['kind=~"data_drift|prediction_drift|multivariate_drift|concept_drift"']
      equal: [model]
  silences:
    - matchers: ['model="fraud"']
      starts_at: "2026-12-01T00:00:00Z"
      ends_at: "2026-12-02T00:00:00Z"
      comment: fraud v4 rollout
  mute_windows:
    - name: nightly-etl
      matchers: ['kind="quality"']
      weekdays: [mon-fri]
      start: "22:00"
      end: "02:00"
  retraining:
    churn: {receiver: ci, min_new_labels: 5000, cooldown: 24h, max_per_day: 1}
"""


def test_example_yaml_loads() -> None:
    s = msgspec.convert(yaml.safe_load(EXAMPLE)["alerting"], AlertingSettings)
    assert isinstance(s.receivers["ml-oncall"], SlackReceiver)
    assert isinstance(s.receivers["ci"], WebhookReceiver) and s.receivers["ci"].preset == "github"
    assert seconds(s.resolve_after) == 600 and s.route.routes[0].continue_ is True


def test_defaults_are_alertmanagers() -> None:
    s = AlertingSettings()
    assert (seconds(s.group_wait), seconds(s.group_interval), seconds(s.repeat_interval)) == (30, 300, 14400)
    assert s.group_by == ["model"] and s.for_windows == 2 and s.route.receiver == "log"


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"group_wait": "30 sec"}, "invalid duration '30 sec'"),  # a duration the parser does not know
        ({"group_wait": -1}, "must not be negative"),
        ({"for_windows": 0}, "for_windows must be >= 1"),
        ({"receivers": {"x": {"type": "email", "to": "a@b"}}}, "Invalid value 'email' - at `\\$.receivers"),
        ({"receivers": {"x": {"type": "slack"}}}, "missing required field `channel`"),
        ({"receivers": {"x": {"type": "webhook", "url": "u", "preset": "github"}}}, "needs token_env"),
        ({"retraining": {"churn": {"receiver": "nope"}}}, "retraining.churn.receiver 'nope'"),
        ({"mute_windows": [{"name": "w", "weekdays": ["someday"]}]}, "invalid weekday"),
        ({"mute_windows": [{"name": "w", "start": "25:00"}]}, "invalid time of day"),
        (
            {"silences": [{"matchers": ['a="b"'], "starts_at": "2026-12-02T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z"}]},
            "ends_at must be after",
        ),
        ({"unknown": 1}, "unknown field `unknown`"),
    ],
)
def test_config_errors_say_where_and_why(patch: dict[str, object], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        msgspec.convert(patch, AlertingSettings)

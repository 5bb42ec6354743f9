"""``Retry-After``: both header forms, capped, garbage ignored (one 429 must not park a receiver for a day)."""

from __future__ import annotations

import pytest

from driftwarden.alerts.notify import RETRY_AFTER_MAX, parse_retry_after, retry_delay
from driftwarden.alerts.outbox import Outbox
from tests.alerts.conftest import T0
from tests.alerts.servers import SlackState
from tests.alerts.test_slack import fire, slack_pipeline

NOW = 1_445_412_480.0  # Wed, 21 Oct 2015 07:28:00 GMT


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("0", 0.0),
        ("30", 30.0),
        (" 120 ", 120.0),
        ("1.5", 1.5),
        ("300", 300.0),
        ("301", 300.0),
        ("86400", 300.0),  # the reported case: one day becomes the backoff maximum
        ("99999999999999999999999", 300.0),
        ("-5", None),
        ("", None),
        ("soon", None),
        ("30s", None),
        ("nan", None),
        ("inf", None),
        ("1e3", None),
        ("Wed, 21 Oct 2015 07:28:45 GMT", 45.0),  # IMF-fixdate, 45 s after NOW
        ("Wednesday, 21-Oct-15 07:29:00 GMT", 60.0),  # obsolete RFC 850 form
        ("Wed Oct 21 07:28:10 2015", 10.0),  # obsolete asctime form: GMT
        ("Wed, 21 Oct 2015 09:28:00 +0200", 0.0),  # same instant as NOW
        ("Wed, 21 Oct 2015 07:00:00 GMT", 0.0),  # in the past: retry now (the backoff still applies)
        ("Thu, 22 Oct 2015 07:28:00 GMT", 300.0),  # a day ahead: capped
        ("Fri, 31 Dec 9999 23:59:59 GMT", 300.0),
        ("Wed, 32 Oct 2015 07:28:00 GMT", None),
        ("Foo, 21 Bar 2015 07:28:00 GMT", None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


@pytest.mark.parametrize(
    ("attempts", "retry_after", "delay"),
    [(1, None, 5.0), (1, 0.0, 5.0), (1, 30.0, 30.0), (3, 10.0, 20.0), (1, 86400.0, RETRY_AFTER_MAX), (20, None, 300.0),
     (1, -10.0, 5.0)],
)
def test_retry_delay_is_the_backoff_or_the_servers_wish_capped(attempts: int, retry_after: float | None, delay: float) -> None:
    assert retry_delay(attempts, retry_after) == delay


def test_a_day_long_retry_after_holds_the_receiver_for_300_s_only(slack: tuple[str, SlackState]) -> None:
    base_url, server = slack
    box = Outbox()
    try:
        pipe = slack_pipeline(base_url, box, group_wait=0)
        fire(pipe, "churn", ["age"], T0)
        pipe.flush(T0 + 60)
        server.script = ["429:86400"]
        assert pipe.deliver(T0 + 60) == 0
        (entry,) = box.entries()
        assert entry.next_attempt_at == T0 + 60 + 300
        assert pipe.deliver(T0 + 359) == 0 and len(server.calls) == 1
        assert pipe.deliver(T0 + 360) == 1 and len(server.messages) == 1
    finally:
        box.close()

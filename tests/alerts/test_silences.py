from __future__ import annotations

import pytest

from driftwarden.alerts.mute import parse_time
from driftwarden.alerts.settings import MuteWindow, StaticSilence
from driftwarden.alerts.silences import Silencer, SilenceStore

MON_2300 = parse_time("2026-11-30T23:00:00Z")  # a Monday
store = SilenceStore(":memory:")
RUNTIME_ID = store.add(
    ['model="fraud"', 'kind=~".*drift"'],
    starts=MON_2300 - 3600,
    ends=MON_2300 + 3600,
    comment="fraud retraining in progress",
    created_by="ana",
)
SILENCER = Silencer(
    store,
    static=[
        StaticSilence(
            matchers=['team="growth"'], starts_at="2026-11-30T00:00:00Z", ends_at="2026-12-01T00:00:00Z", comment="offsite"
        )
    ],
    mute_windows=[
        MuteWindow(name="nightly-etl", matchers=['kind="quality"'], weekdays=["mon-fri"], start="22:00", end="02:00"),
        MuteWindow(name="weekend", matchers=['env="staging"'], weekdays=["sat", "sun"]),
    ],
)

CASES = [
    # (labels, now, silenced?)
    # run-time silence: fraud drift while retraining
    ({"model": "fraud", "kind": "data_drift"}, MON_2300, True),
    # same silence does not cover fraud's performance alerts
    ({"model": "fraud", "kind": "performance"}, MON_2300, False),
    # run-time silence over: 1 h after its end
    ({"model": "fraud", "kind": "data_drift"}, MON_2300 + 7200, False),
    # static silence from config: growth team on Monday
    ({"model": "ltv", "team": "growth"}, MON_2300, True),
    # static silence ended at midnight
    ({"model": "ltv", "team": "growth"}, MON_2300 + 3600 + 1, False),
    # mute window: quality alerts during the nightly ETL, Monday 23:00
    ({"model": "churn", "kind": "quality"}, MON_2300, True),
    # mute window wraps midnight: Tuesday 01:30 still muted
    ({"model": "churn", "kind": "quality"}, MON_2300 + 2.5 * 3600, True),
    # Tuesday 02:00: window closed (end is exclusive)
    ({"model": "churn", "kind": "quality"}, MON_2300 + 3 * 3600, False),
    # Saturday 23:00 -> the nightly window is mon-fri only (Friday's window ended Sat 02:00)
    ({"model": "churn", "kind": "quality"}, MON_2300 + 5 * 86400, False),
    # all-day weekend window for staging
    ({"model": "churn", "env": "staging"}, MON_2300 + 5 * 86400, True),
    # ...not on a Monday
    ({"model": "churn", "env": "staging"}, MON_2300, False),
]


@pytest.mark.parametrize(("labels", "now", "silenced"), CASES)
def test_silencer(labels: dict[str, str], now: float, silenced: bool) -> None:
    assert SILENCER.silenced(labels, now, store.list(now)) is silenced


def test_store_persists_lists_and_expires(tmp_path: object) -> None:
    path = f"{tmp_path}/alerts.sqlite"
    first = SilenceStore(path)
    try:
        sid = first.add(['model="churn"'], starts=100, ends=500, comment="deploy", created_by="bo")
        future = first.add(['model="x"'], starts=1000, ends=2000, comment="later", created_by="bo")
    finally:
        first.close()
    again = SilenceStore(path)
    try:
        assert [s.id for s in again.list(now=200)] == [sid, future]  # active and not yet started
        assert again.silenced_by({"model": "churn"}, now=200) == [sid]
        assert again.silenced_by({"model": "x"}, now=200) == []  # not started yet
        assert again.expire(sid, now=250) is True
        assert again.expire(sid, now=260) is False  # already over
        assert [s.id for s in again.list(now=260)] == [future]
        assert again.expire(future, now=260) is True  # expiring a future silence ends it now
        assert again.list(now=260) == []
    finally:
        again.close()


@pytest.mark.parametrize(
    ("matchers", "starts", "ends", "message"),
    [
        ([], 0, 10, "at least one matcher"),  # would silence everything
        (['model="a"'], 10, 10, "must end after"),  # empty range
        (["model=~'('"], 0, 10, "invalid regex"),  # bad regex
    ],
)
def test_store_rejects(matchers: list[str], starts: float, ends: float, message: str) -> None:
    s = SilenceStore()
    try:
        with pytest.raises(ValueError, match=message):
            s.add(matchers, starts, ends, "", "t")
    finally:
        s.close()


def teardown_module() -> None:
    store.close()

"""The changelog's pure parts: which record wins a restore, the catch-up after it, a model's alert share."""

from __future__ import annotations

import json
import math
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from driftwarden.alerts.outbox import Outbox
from driftwarden.daemon.changelog import StateRecord, decode, encode, resolve
from driftwarden.daemon.model_state import (
    alert_share,
    alert_shares,
    merge_alert_share,
    merge_alert_shares,
    without_model,
    without_models,
)
from driftwarden.daemon.ownership import CatchUp, Ownership, PredictionId, Resume
from driftwarden.daemon.pipeline import Message


def model(epoch: int, version: int, name: str = "churn") -> StateRecord:
    return StateRecord(kind="model", partition=0, epoch=epoch, model_id=name, version=version, state={"v": version})


def marker(epoch: int, released: bool = False) -> StateRecord:
    return StateRecord(kind="partition", partition=0, epoch=epoch, offsets={"p[0]": 10 * epoch},
                       state={"released": released})


def log(*records: StateRecord | tuple[str, None]) -> list[tuple[str, bytes | None]]:
    return [r if isinstance(r, tuple) else (r.key(), encode(r)) for r in records]


def test_the_newest_epoch_wins_and_a_late_write_of_an_older_owner_is_ignored() -> None:
    got = resolve(0, log(model(1, 1), marker(1), model(1, 2), marker(2), model(2, 3), model(1, 9), marker(1)))
    assert got.models["churn"].version == 3
    assert got.marker is not None and got.marker.epoch == 2 and got.marker.offsets == {"p[0]": 20}
    assert (got.epoch, got.stale) == (2, 2)


def test_a_model_only_the_old_owner_wrote_before_the_claim_is_kept() -> None:
    got = resolve(0, log(model(1, 4, "a"), model(1, 5, "b"), marker(1, released=True), marker(2), model(2, 6, "a")))
    assert {m: r.version for m, r in got.models.items()} == {"a": 6, "b": 5}
    assert got.stale == 0


def test_a_stale_write_of_a_model_the_new_owner_has_not_written_is_ignored() -> None:
    # compaction kept only the stale owner's latest record of "b" under its epoch, after the newer claim
    got = resolve(0, log(marker(2), model(1, 7, "b")))
    assert got.models == {}
    assert got.stale == 1


def test_tombstones_remove_keys() -> None:
    got = resolve(0, log(model(1, 1), marker(1), (model(1, 1).key(), None), (marker(1).key(), None)))
    assert got.models == {} and got.marker is None and got.keys == set()


def test_records_are_messagepack_and_the_json_records_of_earlier_versions_still_resolve() -> None:
    state = {"monitor": {"nan": math.nan, "inf": [math.inf, -math.inf], "empty": []}, "meta": {"labelled_samples": 3}}
    new = StateRecord(kind="model", partition=0, epoch=2, model_id="churn", version=5, offsets={"p[0]": 7}, state=state)
    # what the earlier version's encode wrote (stdlib json with NaN literals), compaction may keep it for long
    old = json.dumps(msgspec.to_builtins(StateRecord(kind="model", partition=0, epoch=1, model_id="old", version=2,
                                                     state=state)), separators=(",", ":"), allow_nan=True).encode()
    assert encode(new)[:1] != b"{" and old[:1] == b"{"
    for record in (decode(encode(new)), decode(old)):
        assert record.state is not None and math.isnan(record.state["monitor"]["nan"])
        assert record.state["monitor"]["inf"] == [math.inf, -math.inf] and record.state["monitor"]["empty"] == []
    assert msgspec.structs.replace(decode(encode(new)), state=None) == msgspec.structs.replace(new, state=None)
    got = resolve(0, [("model/old@1", old), (new.key(), encode(new))])
    assert {m: (r.epoch, r.version) for m, r in got.models.items()} == {"old": (1, 2), "churn": (2, 5)}


def messages(topic: str, partition: int, rows: list[tuple[int, str, str]]) -> list[Message]:
    return [Message(topic, partition, offset, model_id.encode(),
                    json.dumps({"model_id": model_id, "prediction_id": pid}).encode()) for offset, model_id, pid in rows]


def test_catch_up_puts_back_waiting_predictions_skips_the_rest_and_processes_from_each_models_offset() -> None:
    catch_up = CatchUp("p")
    catch_up.start(("p", 0), Resume(floor=6, models={"a": 4, "b": 6}, waiting={"a": {"a1"}, "b": {"b0", "b2"}}))
    batch = messages("p", 0, [(0, "b", "b0"), (1, "a", "a1"), (2, "b", "b1"), (3, "a", "a2"), (4, "a", "a3"),
                              (5, "b", "b2"), (6, "b", "b3"), (7, "x", "x1")])
    rejoin, live = catch_up.split(batch, PredictionId())
    assert [m.offset for m in rejoin] == [0, 1, 5]  # waiting predictions below their model's offset
    assert [m.offset for m in live] == [4, 6, 7]  # a from 4, b from 6, a model without state from the floor
    assert catch_up.resume == {}  # caught up: from here on, nothing is sorted
    assert catch_up.split(batch[:1], PredictionId()) == ([], batch[:1])


def test_catch_up_goes_on_over_several_batches() -> None:
    catch_up = CatchUp("p")
    catch_up.start(("o", 0), Resume(floor=5))
    first = messages("o", 0, [(2, "a", "a"), (3, "a", "b")])
    assert catch_up.split(first, PredictionId()) == ([], [])
    assert ("o", 0) in catch_up.resume
    second = messages("o", 0, [(4, "a", "c"), (5, "a", "d")])
    assert catch_up.split(second, PredictionId()) == ([], second[1:])
    assert catch_up.resume == {}


def test_prediction_id_reads_only_the_id() -> None:
    read = PredictionId()
    assert read(b'{"model_id": "m", "prediction_id": 17, "features": {"x": [1, 2]}}') == "17"
    assert read(b"{broken") is None and read(None) is None


def test_ownership_restores_only_new_partitions_and_names_the_models_that_leave() -> None:
    own = Ownership()
    own.assigned([0, 1], generation=3)
    assert own.take_assigned() == {0, 1} and not own.restoring
    own.partitions |= {0, 1}
    assert own.note("a", 0) and own.note("b", 1) and not own.note("a", 1)
    own.assigned([0, 1, 2], generation=4)
    assert own.take_assigned() == {2}
    assert own.revoked([1]) == {"b"}
    assert own.owned_models() == {"a"} and own.owns("a") and not own.owns("b")


alert = st.fixed_dictionaries({"labels": st.fixed_dictionaries({"model": st.sampled_from(["a", "b", "c"])}),
                               "n": st.integers(0, 5)})


@given(st.lists(alert, max_size=8), st.lists(alert, max_size=4), st.sets(st.sampled_from(["a", "b", "c"])))
def test_a_models_share_taken_out_and_put_back_gives_the_whole(
    alerts: list[dict[str, Any]], ended: list[dict[str, Any]], retrained: set[str]
) -> None:
    groups = [{"key": f"g-{m}", "labels": {"model": m}} for m in sorted({a["labels"]["model"] for a in alerts})]
    whole = {"version": 1,
             "lifecycle": {"alerts": alerts, "versions": {m: "1" for m in retrained}, "ended": ended},
             "groups": groups, "nflog": {g["key"]: {"seq": 1} for g in groups}, "retrain": {m: {} for m in retrained}}
    for m in ("a", "b", "c"):
        share = alert_share(whole, m)
        rest = without_model(whole, m)
        assert not alert_share(rest, m)["lifecycle"]["alerts"]
        back = merge_alert_share(rest, m, share)

        def canon(state: dict[str, Any]) -> Any:
            life = state["lifecycle"]
            return (sorted(map(repr, life["alerts"])), life["versions"], sorted(map(repr, life["ended"])),
                    sorted(map(repr, state["groups"])), state["nflog"], state["retrain"])

        assert canon(back) == canon(whole)
    # many models at once (a checkpoint, a rebalance): each share is what filtering by its label gives
    moving = retrained | {"a"}
    shares = alert_shares(whole, moving)
    for m in moving:
        by_label = [a for a in alerts if a["labels"]["model"] == m]
        assert shares[m]["lifecycle"]["alerts"] == by_label and shares[m] == alert_share(whole, m)
        assert shares[m]["nflog"] == {k: v for k, v in whole["nflog"].items() if k == f"g-{m}"}
    rest = without_models(whole, moving)
    assert not any(a["labels"]["model"] in moving for a in rest["lifecycle"]["alerts"] + rest["lifecycle"]["ended"])
    assert canon(merge_alert_shares(rest, shares)) == canon(whole)


def test_a_models_outbox_entries_are_found_by_index_also_in_an_outbox_of_an_earlier_version(tmp_path: Any) -> None:
    """With state.backend kafka every checkpoint reads each owned model's open entries: by the model's index,
    not a scan of every entry kept (1,000 models, 50,000 entries: 3.5 s -> 0.03 s a checkpoint)."""
    import sqlite3

    path = str(tmp_path / "outbox.db")
    db = sqlite3.connect(path)  # an outbox written before entries knew their model (no such column, no index)
    db.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, receiver TEXT "
               "NOT NULL, payload TEXT NOT NULL, thread_key TEXT, created_at REAL NOT NULL, attempts INTEGER NOT NULL "
               "DEFAULT 0, next_attempt_at REAL NOT NULL, delivered_at REAL, failed_at REAL, result TEXT, last_error TEXT)")
    db.commit()
    db.close()
    outbox = Outbox(path)
    outbox.put("k1", "hook", {"group_labels": {"model": "a"}}, now=1.0)
    plan = " ".join(str(row) for row in outbox._db.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM outbox WHERE model = ? AND ((delivered_at IS NULL AND failed_at IS NULL)"
        " OR (thread_key IS NOT NULL AND result IS NOT NULL)) ORDER BY id", ("a",)))
    assert "outbox_model" in plan, plan
    assert [e["key"] for e in outbox.open_entries("a")] == ["k1"]


def test_the_outbox_entries_of_a_model_move_once_and_a_crash_marks_them_possibly_sent() -> None:
    old, new = Outbox(":memory:"), Outbox(":memory:")
    old.put("k1", "hook", {"group_labels": {"model": "a"}}, now=1.0)
    old.put("k2", "hook", {"retrain": {"model": "a"}}, now=1.0)
    old.put("k3", "hook", {"group_labels": {"model": "b"}}, now=1.0)
    old.begin_attempt(1, now=2.0)
    old.mark_delivered(1, now=2.0, result="ok")
    moved = old.hand_over("a")
    assert [e["key"] for e in moved] == ["k2"]  # k1 is delivered (and no thread root): it stays here
    assert [e.key for e in old.due(now=3.0)] == ["k3"]
    new.take_over("a", moved, clean=True)
    assert [(e.key, e.attempts) for e in new.due(now=3.0)] == [("k2", 0)]
    crashed = Outbox(":memory:")
    crashed.take_over("a", moved, clean=False)  # the old owner may have sent it after its last record
    assert [(e.key, e.attempts) for e in crashed.due(now=3.0)] == [("k2", 1)]
    for box in (old, new, crashed):
        box.close()

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from driftwarden.daemon.events import OutcomeEvent, PredictionEvent
from driftwarden.daemon.join import OutcomeJoin


def p(pid: str, ts: float) -> PredictionEvent:
    return PredictionEvent("m", pid, ts, {"x": 1.0}, 1)


def o(pid: str, ts: float) -> OutcomeEvent:
    return OutcomeEvent("m", pid, ts, 0)


def test_outcome_before_prediction_is_matched_when_the_prediction_comes() -> None:
    join = OutcomeJoin(ttl=100, max_pending=10)
    assert join.add_outcomes("m", [o("a", 5)]) == []
    pairs = join.add_predictions("m", [p("a", 1)])
    assert [(x.prediction_id, y.prediction_id) for x, y in pairs] == [("a", "a")]
    assert join.pending_count == 0 and join.early_outcome_count == 0


def test_ttl_expires_old_predictions_per_model() -> None:
    join = OutcomeJoin(ttl=100, max_pending=10)
    join.add_predictions("m", [p("a", 0), p("b", 50), p("c", 120)])
    assert join.expire("m", now=160) == 2
    assert join.pending_count == 1
    assert join.add_outcomes("m", [o("a", 161)]) == []  # too late: held as an early outcome, then expires
    assert join.expire("m", now=400) == 1
    assert join.early_outcome_count == 0


def test_max_pending_evicts_oldest_and_changes_are_recorded() -> None:
    join = OutcomeJoin(ttl=1000, max_pending=2)
    join.add_predictions("m", [p("a", 0), p("b", 1)])
    assert set(join.take_changes().predictions) == {("m", "a"), ("m", "b")}  # checkpointed
    join.add_predictions("m", [p("c", 2)])
    assert join.counters.evicted == 1
    changes = join.take_changes()
    assert changes.predictions[("m", "a")] is None  # a checkpoint holds it: deleted
    assert changes.predictions[("m", "c")] is not None
    assert join.take_changes().predictions == {}


def test_an_event_that_came_and_went_between_two_checkpoints_leaves_no_change() -> None:
    join = OutcomeJoin(ttl=1000, max_pending=10)
    join.add_predictions("m", [p("a", 0), p("b", 1)])
    join.add_outcomes("m", [o("a", 2), o("z", 3)])  # "z" waits for its prediction
    join.add_predictions("m", [p("z", 2.5)])
    changes = join.take_changes()
    assert changes.predictions == {("m", "b"): p("b", 1)} and changes.outcomes == {}


def test_duplicate_prediction_keeps_newest() -> None:
    join = OutcomeJoin(ttl=1000, max_pending=10)
    join.add_predictions("m", [p("a", 0)])
    join.add_predictions("m", [PredictionEvent("m", "a", 5.0, {"x": 2.0}, 0)])
    (pred, _), = join.add_outcomes("m", [o("a", 9)])
    assert pred.prediction == 0 and join.counters.duplicate_predictions == 1


def test_each_model_expires_on_its_own_clock() -> None:
    """A model whose events ran days ahead does not expire another model's waiting predictions."""
    join = OutcomeJoin(ttl=100, max_pending=10)
    join.add_predictions("m", [p("a", 0)])
    join.add_predictions("n", [PredictionEvent("n", "z", 10_000.0, {"x": 1.0}, 1)])
    assert join.expire("n", now=10_050) == 0
    assert join.pending_of("m") == 1 and join.pending_of("n") == 1
    assert join.expire("m", now=50) == 0 and join.expire("m", now=150) == 1


def test_the_bound_evicts_from_the_model_holding_the_most() -> None:
    join = OutcomeJoin(ttl=1000, max_pending=4)
    join.add_predictions("n", [PredictionEvent("n", "z", 0.0, {"x": 1.0}, 1)])
    join.add_predictions("m", [p("a", 1), p("b", 2), p("c", 3), p("d", 4)])
    assert join.pending_count == 4 and join.pending_of("n") == 1
    changes = join.take_changes().predictions
    assert ("m", "a") not in changes and changes[("n", "z")] is not None  # "a" came and went: no change


def test_a_future_dated_outcome_without_its_prediction_holds_no_one() -> None:
    """An outcome dated in year 9999 whose prediction never comes: no predictions watermark would
    pass it, so it must not hold the outcomes behind it (found by the chaos suite)."""
    join = OutcomeJoin(ttl=1000, max_pending=100)
    join.add_predictions("m", [p("b", 1)], release_before=1.0)
    far = OutcomeEvent("m", "lost", 253402300799.0, 0)
    assert join.add_outcomes("m", [far], release_before=1.0, future_after=10_000.0) == []
    pairs = join.add_outcomes("m", [o("b", 5)], release_before=1.0, future_after=10_000.0)
    assert [x.prediction_id for x, _ in pairs] == ["b"] and join.waiting_in_order("m") == 0
    assert join.early_outcome_count == 1  # it still waits for its prediction, as an early outcome


@settings(max_examples=300, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["predict", "outcome", "expire", "checkpoint"]),
                              st.sampled_from("abcde"), st.integers(0, 40)), max_size=60))
def test_the_changes_applied_to_the_checkpoint_give_the_join_as_it_is(ops: list[tuple[str, str, int]]) -> None:
    """Whatever happens between checkpoints (duplicates, early outcomes, matches, expiry, eviction),
    the rows the checkpoint holds after applying each delta are the events the join holds."""
    join = OutcomeJoin(ttl=15, max_pending=3)
    stored: dict[str, dict[tuple[str, str], object]] = {"predictions": {}, "outcomes": {}}
    for op, pid, t in ops:
        if op == "predict":
            join.add_predictions("m", [p(pid, t)], release_before=t)
        elif op == "outcome":
            join.add_outcomes("m", [o(pid, t)], release_before=t)
        elif op == "expire":
            join.expire("m", now=t)
        else:
            changes = join.take_changes()
            for table, rows in (("predictions", changes.predictions), ("outcomes", changes.outcomes)):
                for key, event in rows.items():
                    if event is None:
                        stored[table].pop(key, None)
                    else:
                        stored[table][key] = event
            assert stored["predictions"] == {("m", k): v for k, v in join._predictions.get("m", {}).items()}
            assert stored["outcomes"] == {("m", k): v for k, v in join._outcomes.get("m", {}).items()}


def _apply(stored: dict[str, dict[tuple[str, str], object]], join: OutcomeJoin) -> None:
    """A checkpoint: the delta applied to its rows; a delete names a row it holds (no needless DELETE)."""
    changes = join.take_changes()
    for table, rows in (("predictions", changes.predictions), ("outcomes", changes.outcomes)):
        for key, event in rows.items():
            if event is None:
                assert key in stored[table], f"a delete of {key}, which no checkpoint holds"
                del stored[table][key]
            else:
                stored[table][key] = event


@settings(max_examples=400, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["predict", "outcome", "expire", "checkpoint"]),
                              st.lists(st.sampled_from("abcdef"), min_size=1, max_size=5),
                              st.integers(0, 40), st.booleans()), max_size=40))
def test_batches_read_in_any_order_leave_the_checkpoint_equal_to_the_join(
        ops: list[tuple[str, list[str], int, bool]]) -> None:
    """As above with batches: duplicates within one, outcomes read ahead and released by the batch
    that brings their predictions (or queued behind a waiting one and released by their own batch),
    with and without a watermark. The checkpoint's rows after each delta are the join's, and no
    delta deletes a row the checkpoint never held."""
    join = OutcomeJoin(ttl=15, max_pending=4)
    stored: dict[str, dict[tuple[str, str], object]] = {"predictions": {}, "outcomes": {}}
    for op, pids, t, watermark in ops:
        before = t if watermark else None
        if op == "predict":
            join.add_predictions("m", [p(pid, t) for pid in pids], release_before=before)
        elif op == "outcome":
            join.add_outcomes("m", [o(pid, t) for pid in pids], release_before=before)
        elif op == "expire":
            join.expire("m", now=t)
        else:
            _apply(stored, join)
            assert stored["predictions"] == {("m", k): v for k, v in join._predictions.get("m", {}).items()}
            assert stored["outcomes"] == {("m", k): v for k, v in join._outcomes.get("m", {}).items()}

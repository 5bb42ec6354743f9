"""Event contract v1: typed decoding of prediction and outcome events.

A poll's messages are decoded with one typed msgspec decoder (every contract
rule is a type, checked in C); only when that fails is the poll walked again
to find the bad messages, which become :class:`Rejected` with a reason for the
dead-letter topic. Every message becomes exactly one of the two, whatever its
bytes; nothing a producer sends raises out of a decoder.

What the contract makes of hostile input:

- Not JSON (truncated, ``NaN``/``Infinity`` tokens, invalid UTF-8 or a lone
  surrogate in a field that is read, an empty value or a Kafka tombstone):
  dead-lettered, "not valid JSON" / "empty message value". A top level that is
  not an object, a missing field, a wrong type (``true`` as a timestamp, score
  or KPI): "contract violation" with the JSON path.
- Nesting deeper than the interpreter's recursion limit, even in an ignored
  field: "not valid JSON: nested too deeply" (msgspec walks ignored values too).
- Numbers: every number the daemon reads becomes a float64. A float literal
  beyond float64 (``1e400``) is a contract violation ("Number out of range"),
  and so is an integer literal beyond float64 (309 digits and more) wherever it
  is read (a feature, ``prediction``, ``outcome``): "feature 'age': number out of
  float64 range". It is no number a model could have used, and RFC 8259 warns
  that such numbers do not interoperate. Integers beyond int64 but inside
  float64 (``10**30``) are accepted as they are. The C decoders bound integers
  to int64, so only a message with a larger integer pays for the second, Python
  look at its numbers (:func:`_decode_one`).
- ``timestamp``: an RFC 3339 string with an offset, or epoch seconds from
  0001-01-01T00:00:00Z up to (not including) 10000-01-01T00:00:00Z, negative
  ones too: the instants an RFC 3339 timestamp can write. Others are dead-lettered
  at ``$.timestamp``. An RFC 3339 timestamp whose offset moves its instant out of
  those years (``0001-01-01T00:00:00+01:00``) is read as the nearest instant in
  them (:func:`event_time`): checking it while decoding would cost every event a
  Python step. So every accepted timestamp is a finite float that converts back
  to a ``datetime``.
- Ids and ``model_version``: at most 256 characters (a version becomes an alert
  label and part of a file name); other strings are bounded by the message size.
- A duplicated key: the last one counts (as in Python's json), in both the
  contract and the typed decoder. Ignored fields are skipped: checked for their
  JSON structure, not their UTF-8.

Decoded events are :class:`PredictionEvent` / :class:`OutcomeEvent` (subclasses
carrying the contract's bounds in their field types); the base classes are
what the outcome join holds and a checkpoint restores, lenient so that a
restore accepts whatever an earlier version stored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import msgspec

MAX_ID_LENGTH = 256
EARLIEST = -62135596800.0  # 0001-01-01T00:00:00Z in epoch seconds
END = 253402300800.0  # 10000-01-01T00:00:00Z, the first instant RFC 3339 cannot write
LATEST = math.nextafter(END, 0.0)  # the last float64 before END (9999-12-31T23:59:59.99997Z)
INT64 = (-(2**63), 2**63 - 1)
TOO_DEEP = "not valid JSON: nested too deeply"

# What the join holds and a checkpoint restores (lenient: see the module doc).
FeatureValue = float | int | str | bool | None
Label = float | int | str | bool
Timestamp = Annotated[datetime, msgspec.Meta(tz=True)] | float
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
Probability = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class PredictionEvent(msgspec.Struct, frozen=True):
    model_id: Id
    prediction_id: Id
    timestamp: Timestamp
    features: dict[str, FeatureValue]
    prediction: Label
    score: Probability | dict[str, Probability] | None = None
    model_version: str | None = None


class OutcomeEvent(msgspec.Struct, frozen=True):
    model_id: Id
    prediction_id: Id
    timestamp: Timestamp
    outcome: Label
    kpis: dict[str, float] | None = None


# Every rule of the contract is a type, checked by msgspec in C while decoding.
EpochSeconds = Annotated[float, msgspec.Meta(ge=EARLIEST, lt=END)]
ContractTimestamp = Annotated[datetime, msgspec.Meta(tz=True)] | EpochSeconds
Version = Annotated[str, msgspec.Meta(max_length=MAX_ID_LENGTH)]
Int64 = Annotated[int, msgspec.Meta(ge=INT64[0], le=INT64[1])]  # a larger one: decoded again, see _decode_one
ContractFeatureValue = float | Int64 | str | bool | None
ContractLabel = float | Int64 | str | bool


class WidePrediction(PredictionEvent, frozen=True):
    """The contract with integers of any size (a message that holds one beyond int64)."""

    timestamp: ContractTimestamp
    model_version: Version | None = None


class ContractPrediction(WidePrediction, frozen=True):
    """A prediction event as the contract decoder reads it."""

    features: dict[str, ContractFeatureValue]
    prediction: ContractLabel


class WideOutcome(OutcomeEvent, frozen=True):
    timestamp: ContractTimestamp


class ContractOutcome(WideOutcome, frozen=True):
    outcome: ContractLabel


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message that failed the contract, with what to tell the producer."""

    index: int  # position in the decoded batch
    reason: str


_prediction_one = msgspec.json.Decoder(ContractPrediction)
_prediction_wide = msgspec.json.Decoder(WidePrediction)
_outcome_one = msgspec.json.Decoder(ContractOutcome)
_outcome_wide = msgspec.json.Decoder(WideOutcome)


def decode_predictions(values: Sequence[bytes | None]) -> tuple[list[tuple[int, PredictionEvent]], list[Rejected]]:
    """Decode message values; return ``(index, event)`` pairs and the rejects."""
    return _decode(values, _prediction_one, _prediction_wide)  # type: ignore[return-value]


def decode_outcomes(values: Sequence[bytes | None]) -> tuple[list[tuple[int, OutcomeEvent]], list[Rejected]]:
    return _decode(values, _outcome_one, _outcome_wide)  # type: ignore[return-value]


def event_time(ts: datetime | float) -> float:
    """Epoch seconds of an event's ``timestamp``, inside years 1..9999 UTC (see the module doc).

    >>> from datetime import timedelta, timezone
    >>> event_time(datetime(2026, 11, 30, 5, tzinfo=timezone.utc)), event_time(-1.5)
    (1796014800.0, -1.5)
    >>> event_time(datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))) == LATEST
    True
    """
    t = ts.timestamp() if isinstance(ts, datetime) else float(ts)
    return t if EARLIEST <= t < END else min(max(t, EARLIEST), LATEST)


def _decode(
    values: Sequence[bytes | None],
    one: msgspec.json.Decoder,
    wide: msgspec.json.Decoder,
) -> tuple[list[tuple[int, PredictionEvent | OutcomeEvent]], list[Rejected]]:
    events: list[tuple[int, PredictionEvent | OutcomeEvent]] = []
    rejected: list[Rejected] = []
    if not values:
        return events, rejected
    if all(values):
        try:  # fast path: the whole poll is valid (one decoder call per message is C-speed)
            decoded = list(map(one.decode, values))  # type: ignore[arg-type]
            return list(enumerate(decoded)), rejected
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            pass
    for i, value in enumerate(values):
        event = _decode_one(value, one, wide)
        if isinstance(event, str):
            rejected.append(Rejected(i, event))
        else:
            events.append((i, event))
    return events, rejected


def _decode_one(value: bytes | None, one: msgspec.json.Decoder, wide: msgspec.json.Decoder,
                ) -> PredictionEvent | OutcomeEvent | str:
    """One message's event, or why it is rejected.

    A contract violation may be only an integer beyond int64: the message is
    decoded again with integers of any size, and accepted if every number it
    reads fits a float64.
    """
    if not value:
        return "empty message value"
    try:
        return one.decode(value)
    except msgspec.ValidationError:
        pass  # perhaps only an integer beyond int64
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        return f"not valid JSON: {exc}"
    except RecursionError:
        return TOO_DEEP
    try:
        event = wide.decode(value)
    except msgspec.ValidationError as exc:
        return f"contract violation: {exc}"
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # after the first violation, more of the message is read
        return f"not valid JSON: {exc}"
    except RecursionError:
        return TOO_DEEP
    where = _beyond_float64(event)
    return event if where is None else f"contract violation: {where}: number out of float64 range"


def _beyond_float64(event: PredictionEvent | OutcomeEvent) -> str | None:
    """Where the event reads an integer no float64 can hold (the first one), or None."""
    if isinstance(event, PredictionEvent):
        for name, value in event.features.items():
            if _overflows(value):
                return f"feature {name!r}"
        return "prediction" if _overflows(event.prediction) else None
    return "outcome" if _overflows(event.outcome) else None


def _overflows(value: object) -> bool:
    if type(value) is not int:
        return False
    try:
        float(value)
    except OverflowError:
        return True
    return False

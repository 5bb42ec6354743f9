"""Event contract v1: typed decoding of prediction and outcome events.

A poll's messages are decoded in one msgspec call (the values joined into one
JSON array); only when that fails are they decoded one by one to find the bad
ones, which become :class:`Rejected` with a reason for the dead-letter topic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import msgspec

FeatureValue = float | int | str | bool | None
MAX_ID_LENGTH = 256


class PredictionEvent(msgspec.Struct, frozen=True):
    model_id: str
    prediction_id: str
    timestamp: datetime | float
    features: dict[str, FeatureValue]
    prediction: float | int | str | bool
    score: float | dict[str, float] | None = None
    model_version: str | None = None


class OutcomeEvent(msgspec.Struct, frozen=True):
    model_id: str
    prediction_id: str
    timestamp: datetime | float
    outcome: float | int | str | bool
    kpis: dict[str, float] | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message that failed the contract, with what to tell the producer."""

    index: int  # position in the decoded batch
    reason: str


_prediction_list = msgspec.json.Decoder(list[PredictionEvent])
_prediction_one = msgspec.json.Decoder(PredictionEvent)
_outcome_list = msgspec.json.Decoder(list[OutcomeEvent])
_outcome_one = msgspec.json.Decoder(OutcomeEvent)


def decode_predictions(values: Sequence[bytes | None]) -> tuple[list[tuple[int, PredictionEvent]], list[Rejected]]:
    """Decode message values; return ``(index, event)`` pairs and the rejects."""
    return _decode(values, _prediction_list, _prediction_one)  # type: ignore[return-value]


def decode_outcomes(values: Sequence[bytes | None]) -> tuple[list[tuple[int, OutcomeEvent]], list[Rejected]]:
    return _decode(values, _outcome_list, _outcome_one)  # type: ignore[return-value]


def event_time(ts: datetime | float) -> float:
    """Epoch seconds of an event's ``timestamp`` (already validated)."""
    return ts.timestamp() if isinstance(ts, datetime) else float(ts)


def _decode(
    values: Sequence[bytes | None],
    many: msgspec.json.Decoder,
    one: msgspec.json.Decoder,
) -> tuple[list[tuple[int, PredictionEvent | OutcomeEvent]], list[Rejected]]:
    events: list[tuple[int, PredictionEvent | OutcomeEvent]] = []
    rejected: list[Rejected] = []
    if not values:
        return events, rejected
    if all(values):
        try:
            decoded = many.decode(b"[" + b",".join(values) + b"]")  # type: ignore[arg-type]
        except (msgspec.DecodeError, UnicodeDecodeError):
            decoded = None
        if decoded is not None and len(decoded) == len(values):
            for i, event in enumerate(decoded):
                reason = _check(event)
                if reason is None:
                    events.append((i, event))
                else:
                    rejected.append(Rejected(i, reason))
            return events, rejected
    for i, value in enumerate(values):
        if not value:
            rejected.append(Rejected(i, "empty message value"))
            continue
        try:
            event = one.decode(value)
        except msgspec.ValidationError as exc:
            rejected.append(Rejected(i, f"contract violation: {exc}"))
            continue
        except msgspec.DecodeError as exc:
            rejected.append(Rejected(i, f"not valid JSON: {exc}"))
            continue
        reason = _check(event)
        if reason is None:
            events.append((i, event))
        else:
            rejected.append(Rejected(i, reason))
    return events, rejected


def _check(event: PredictionEvent | OutcomeEvent) -> str | None:
    """Contract rules msgspec's types cannot express."""
    if not event.model_id or len(event.model_id) > MAX_ID_LENGTH:
        return f"model_id must be 1-{MAX_ID_LENGTH} characters"
    if not event.prediction_id or len(event.prediction_id) > MAX_ID_LENGTH:
        return f"prediction_id must be 1-{MAX_ID_LENGTH} characters"
    ts = event.timestamp
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            return "timestamp has no UTC offset (RFC 3339 needs one, e.g. 2026-11-30T05:00:00Z)"
    elif not math.isfinite(ts) or ts < 0:
        return f"timestamp must be finite epoch seconds >= 0, got {ts}"
    if isinstance(event, PredictionEvent):
        score = event.score
        if isinstance(score, float) and not math.isfinite(score):
            return "score must be a finite number"
        pred = event.prediction
        if isinstance(pred, float) and not math.isfinite(pred):
            return "prediction must be a finite number"
    return None

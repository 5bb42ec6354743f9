"""Event contract v1: typed decoding of prediction and outcome events.

A poll's messages are decoded with one typed msgspec decoder (every contract
rule is a type, checked in C); only when that fails is the poll walked again
to find the bad messages, which become :class:`Rejected` with a reason for the
dead-letter topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import msgspec

FeatureValue = float | int | str | bool | None
MAX_ID_LENGTH = 256
# Every rule of the contract is a type, checked by msgspec in C while decoding.
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
Timestamp = Annotated[datetime, msgspec.Meta(tz=True)] | Annotated[float, msgspec.Meta(ge=0)]
Probability = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class PredictionEvent(msgspec.Struct, frozen=True):
    model_id: Id
    prediction_id: Id
    timestamp: Timestamp
    features: dict[str, FeatureValue]
    prediction: float | int | str | bool
    score: Probability | dict[str, Probability] | None = None
    model_version: str | None = None


class OutcomeEvent(msgspec.Struct, frozen=True):
    model_id: Id
    prediction_id: Id
    timestamp: Timestamp
    outcome: float | int | str | bool
    kpis: dict[str, float] | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message that failed the contract, with what to tell the producer."""

    index: int  # position in the decoded batch
    reason: str


_prediction_one = msgspec.json.Decoder(PredictionEvent)
_outcome_one = msgspec.json.Decoder(OutcomeEvent)


def decode_predictions(values: Sequence[bytes | None]) -> tuple[list[tuple[int, PredictionEvent]], list[Rejected]]:
    """Decode message values; return ``(index, event)`` pairs and the rejects."""
    return _decode(values, _prediction_one)  # type: ignore[return-value]


def decode_outcomes(values: Sequence[bytes | None]) -> tuple[list[tuple[int, OutcomeEvent]], list[Rejected]]:
    return _decode(values, _outcome_one)  # type: ignore[return-value]


def event_time(ts: datetime | float) -> float:
    """Epoch seconds of an event's ``timestamp`` (already validated)."""
    return ts.timestamp() if isinstance(ts, datetime) else float(ts)


def _decode(
    values: Sequence[bytes | None],
    one: msgspec.json.Decoder,
) -> tuple[list[tuple[int, PredictionEvent | OutcomeEvent]], list[Rejected]]:
    events: list[tuple[int, PredictionEvent | OutcomeEvent]] = []
    rejected: list[Rejected] = []
    if not values:
        return events, rejected
    if all(values):
        try:  # fast path: the whole poll is valid (one decoder call per message is C-speed)
            decoded = [one.decode(v) for v in values]  # type: ignore[arg-type]
            return list(enumerate(decoded)), rejected
        except (msgspec.DecodeError, UnicodeDecodeError):
            pass
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
        events.append((i, event))
    return events, rejected


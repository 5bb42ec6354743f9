"""What the outcome join holds of a typed prediction: the values its columns need, compactly.

A prediction waits for its outcome for hours or days, so the join's memory is
the daemon's largest. A decoded typed event keeps each numeric feature as a
Python float in a Struct (909 bytes for the bench's 20 features); the held
form keeps them as one ``bytes`` of float64 in declared order, NaN for null,
as the prediction side already packed them for its columns (394 bytes). The
outcome side then builds the joined batch's feature columns from one buffer
per event instead of twenty floats scattered over the heap.

Each model has its own subclass (made by :class:`daemon.typed_events.ModelEvents`)
that knows the feature names, so a held prediction turns back into the typed
event it came from (:meth:`HeldPrediction.to_event`) when a checkpoint writes
it: what is persisted stays contract JSON, readable whatever the configuration
becomes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, cast

import msgspec

from driftwarden.daemon.events import PredictionEvent


class HeldPrediction(msgspec.Struct, frozen=True, gc=False):
    """A typed prediction waiting for its outcome (see the module doc)."""

    model_id: str
    prediction_id: str
    timestamp: float  # event time, epoch seconds
    prediction: float | int | str | bool
    score: float | dict[str, float] | None
    model_version: str | None
    numeric: bytes  # the declared numeric features as float64, declared order, NaN for null
    categorical: tuple[Any, ...]  # the declared categorical features' values, declared order

    numeric_names: ClassVar[tuple[str, ...]] = ()
    categorical_names: ClassVar[tuple[str, ...]] = ()
    rebuild: ClassVar[Callable[[HeldPrediction], PredictionEvent]]  # set per model by held_type

    def to_event(self) -> PredictionEvent:
        """The typed event this was decoded from (timestamp as epoch seconds, a null feature reads NaN).

        A checkpoint writes every prediction still waiting this way: the typed event encodes
        fastest, and as contract JSON (NaN is written as null).

        >>> import struct
        >>> from driftwarden.daemon.typed_events import ModelEvents
        >>> from driftwarden.detectors.spec import FeatureSpec, ModelSpec
        >>> spec = ModelSpec("binary", {"age": FeatureSpec("numeric"), "plan": FeatureSpec("categorical"),
        ...                             "spend": FeatureSpec("numeric")})
        >>> model = ModelEvents("m", spec)
        >>> h = model.held_type("m", "a1", 5.0, 1, 0.8, None, struct.pack("=2d", 41.0, float("nan")), ("pro",))
        >>> msgspec.json.encode(h.to_event().features)
        b'{"age":41.0,"plan":"pro","spend":null}'
        """
        return type(self).rebuild(self)


Held = PredictionEvent | HeldPrediction  # what the outcome join holds of a prediction


def held_type(suffix: str, numeric: tuple[str, ...], categorical: tuple[str, ...],
              rebuild: Callable[[HeldPrediction], PredictionEvent]) -> type[HeldPrediction]:
    """The held-prediction class of one model's feature layout; ``rebuild`` makes its typed event."""
    kind = msgspec.defstruct(f"HeldPrediction_{suffix}", [], bases=(HeldPrediction,), frozen=True, gc=False,
                             namespace={"numeric_names": numeric, "categorical_names": categorical,
                                        "rebuild": staticmethod(rebuild)})
    return cast(type[HeldPrediction], kind)

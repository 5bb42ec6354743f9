"""Turn decoded events of one model into the detectors' columnar batches.

This is the only per-event Python on the hot path besides decoding. Events
decoded typed (:mod:`daemon.typed_events`) give their feature rows with one
``attrgetter`` per event, packed as doubles and viewed as one float64 matrix; other
events go through their feature dicts, counting what data quality needs
(wrong types, missing and undeclared keys).
"""

from __future__ import annotations

import math
import operator
import struct
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from itertools import repeat, starmap
from typing import Any

import numpy as np

from driftwarden.daemon.events import EARLIEST, LATEST, PredictionEvent, event_time
from driftwarden.daemon.held import Held, HeldPrediction
from driftwarden.daemon.typed_events import ModelEvents, TypedDecoders
from driftwarden.detectors.batch import PredictionBatch
from driftwarden.detectors.spec import ModelSpec

_NUMERIC = (int, float)
_MISSING = object()


def label_text(value: Any) -> str | None:
    """Categorical value / class label as text: ``1`` -> ``"1"``, ``True`` -> ``"true"``.

    >>> [label_text(v) for v in (1, 1.0, 2.5, True, "pro", None)]
    ['1', '1', '2.5', 'true', 'pro', None]
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def numeric_column(values: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, int]:
    """float64 column with NaN for missing values; also the count of wrong-typed values.

    An integer beyond float64 counts as wrong-typed: the decoders dead-letter it,
    but a checkpoint written by an earlier version may still hold one.

    >>> col, bad = numeric_column([1, 2.5, None, "x", True, 10**400])
    >>> col.tolist(), bad
    ([1.0, 2.5, nan, nan, nan, nan], 3)
    """
    types = set(map(type, values))
    if types <= {int, float, type(None)}:
        try:
            return np.array(values, dtype=np.float64), 0
        except OverflowError:
            pass
    out = np.full(len(values), np.nan)
    bad = 0
    for i, v in enumerate(values):
        if v is None or v is _MISSING:
            continue
        if isinstance(v, _NUMERIC) and not isinstance(v, bool):
            try:
                out[i] = v
                continue
            except OverflowError:
                pass
        bad += 1
    return out, bad


def categorical_column(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """object column of text labels (see :func:`label_text`); ``None`` for missing.

    >>> categorical_column([1, 0, 1]).tolist(), categorical_column(["a", None, True]).tolist()
    (['1', '0', '1'], ['a', None, 'true'])
    """
    out = np.empty(len(values), dtype=object)
    types = set(map(type, values))
    if types <= {str}:
        out[:] = values
    elif types == {int}:  # integer class labels, the common case: text made once per distinct label
        return _int_labels(values)
    else:
        out[:] = [None if v is _MISSING else label_text(v) for v in values]
    return out


def _int_labels(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Text of integer labels, each distinct one made once: looked up in one numpy take where they
    span few values (0.64x the time of a dict lookup per label), else through a dict.

    >>> _int_labels([1, -2, 1]).tolist(), _int_labels([0, 2**70]).tolist()
    (['1', '-2', '1'], ['0', '1180591620717411303424'])
    """
    try:
        keys = np.fromiter(values, dtype=np.int64, count=len(values))
    except OverflowError:
        keys = None
    if keys is not None and len(keys):
        low, high = int(keys.min()), int(keys.max())
        if high - low < 256:  # class labels: a table of their span is cheap
            return np.array([str(v) for v in range(low, high + 1)], dtype=object)[keys - low]
    out = np.empty(len(values), dtype=object)
    texts = {v: str(v) for v in set(values)}
    out[:] = list(map(texts.__getitem__, values))
    return out


def label_column(values: Sequence[Any], spec: ModelSpec) -> np.ndarray:
    if spec.is_classification:
        return categorical_column(values)
    column, _ = numeric_column(values)
    return column


def score_column(scores: Sequence[Any], spec: ModelSpec) -> np.ndarray | None:
    """P(positive) for binary models; ``None`` when no event of the batch has a score.

    Multiclass probabilities go to :func:`class_score_columns` instead.
    """
    if spec.task == "multiclass":
        return None
    types = set(map(type, scores))
    if types == {type(None)}:
        return None
    if types <= {float, type(None)}:  # the common case: P(positive) as a number, in bulk
        return np.array(scores, dtype=np.float64)
    out = np.full(len(scores), np.nan)
    for i, s in enumerate(scores):
        if isinstance(s, dict):
            s = s.get(spec.positive_label)
        if isinstance(s, _NUMERIC) and not isinstance(s, bool):
            out[i] = s
    return out


def class_score_columns(scores: Sequence[Any], spec: ModelSpec) -> dict[str, np.ndarray] | None:
    """Multiclass ``{"class": probability}`` scores as one float64 column per class seen.

    >>> from driftwarden.detectors.spec import ModelSpec
    >>> cols = class_score_columns([{"a": 0.7, "b": 0.3}, None, {"b": 1.0}], ModelSpec("multiclass", {}))
    >>> {k: v.tolist() for k, v in cols.items()}
    {'a': [0.7, nan, nan], 'b': [0.3, nan, 1.0]}
    """
    if spec.task != "multiclass":
        return None
    dicts = [(i, s) for i, s in enumerate(scores) if isinstance(s, dict)]
    if not dicts:
        return None
    classes = sorted({str(k) for _, s in dicts for k in s})
    out = {c: np.full(len(scores), np.nan) for c in classes}
    for i, s in dicts:
        for k, v in s.items():
            out[str(k)][i] = v
    return out


def prediction_batch(events: Sequence[PredictionEvent], spec: ModelSpec,
                     typed: TypedDecoders | None = None) -> PredictionBatch:
    """Columns of one model's events; ``typed`` knows the typed events' feature layout."""
    return _columns(events, spec, typed, hold=False)[0]


def prediction_columns(events: Sequence[PredictionEvent], spec: ModelSpec,
                       typed: TypedDecoders | None = None) -> tuple[PredictionBatch, list[Held]]:
    """Columns of one model's events, and what the outcome join should hold of each.

    Typed events are held as their model's :class:`~daemon.held.HeldPrediction`, made
    from the rows and columns just built; other events are held as they are.
    """
    return _columns(events, spec, typed, hold=True)


def _columns(events: Sequence[PredictionEvent], spec: ModelSpec, typed: TypedDecoders | None,
             hold: bool) -> tuple[PredictionBatch, list[Held]]:
    if typed is not None:
        model, feature_dicts = typed.features_of(events)
    else:
        model, feature_dicts = None, [e.features for e in events]
    names = list(spec.features)
    features: dict[str, np.ndarray] = {}
    type_errors: dict[str, int] = {}
    missing_keys: dict[str, int] = {}
    undeclared: Counter[str] = Counter()
    rows = None if model is not None else _complete_rows(feature_dicts, names)
    packed: list[bytes] = []
    categorical_rows: list[tuple[Any, ...]] = []
    if model is not None:
        features, packed, categorical_rows = _typed_columns(model, feature_dicts)
    elif rows is not None:  # fast path: every event has exactly the declared keys
        table = np.array(rows, dtype=object).reshape(len(rows), len(names))
        for j, name in enumerate(names):
            column = table[:, j]
            if spec.features[name].type == "numeric":
                features[name], bad = numeric_column(column)
                if bad:
                    type_errors[name] = bad
            else:
                features[name] = categorical_column(column)
    else:
        for name, fspec in spec.features.items():
            raw = [f.get(name, _MISSING) for f in feature_dicts]
            absent = sum(1 for v in raw if v is _MISSING)
            if absent:
                missing_keys[name] = absent
                raw = [None if v is _MISSING else v for v in raw]
            if fspec.type == "numeric":
                features[name], bad = numeric_column(raw)
                if bad:
                    type_errors[name] = bad
            else:
                features[name] = categorical_column(raw)
        declared = spec.features.keys()
        for f in feature_dicts:
            extra = f.keys() - declared
            if extra:
                undeclared.update(extra)
    versions = list(map(_VERSION, events))
    predictions = list(map(_PREDICTION, events))
    scores = list(map(_SCORE, events))
    batch = _batch(timestamps(list(map(_TIMESTAMP, events))), features, predictions, scores, versions, spec,
                   type_errors=type_errors, missing_keys=missing_keys, undeclared_keys=dict(undeclared))
    if not hold:
        return batch, []
    if model is None or not events:
        return batch, list(events)
    held: list[Held] = list(map(model.held_type, repeat(events[0].model_id), list(map(_PREDICTION_ID, events)),
                                batch.timestamps.tolist(), predictions, scores, model.shared_versions(versions),
                                packed,  # one per event, b"" when the model has no numeric feature
                                categorical_rows if model.categorical else repeat(())))
    assert len(held) == len(events)
    return batch, held


def held_predictions(events: Sequence[PredictionEvent], model: ModelEvents) -> list[HeldPrediction]:
    """Typed events of one model in held form, as they arrive: what :func:`prediction_columns` holds of them.

    The coalescing buffer (:mod:`daemon.coalesce`) keeps a model's waiting predictions this way
    (394 instead of 909 bytes an event, one ``bytes`` instead of twenty floats); at its turn
    :func:`held_batch` makes the same columns of them and the join takes the same objects.
    Timestamps are epoch seconds clamped to years 1..9999 as :func:`timestamps` does, a null
    numeric feature is NaN as in :func:`_float_matrix`: for these events ``held_batch`` of
    this equals ``prediction_columns``' batch (``tests/daemon/test_columns.py`` checks it).

    >>> from driftwarden.detectors.spec import FeatureSpec
    >>> from driftwarden.daemon.typed_events import TypedDecoders
    >>> spec = ModelSpec("binary", {"age": FeatureSpec("numeric"), "plan": FeatureSpec("categorical")})
    >>> typed = TypedDecoders({"m": spec})
    >>> msg = (b'{"model_id": "m", "prediction_id": "a", "timestamp": "2026-01-01T00:00:00Z", '
    ...        b'"features": {"age": null, "plan": 2}, "prediction": 1}')
    >>> events = [e for _, e in typed.decode_predictions([b"m"], [msg])[0]]
    >>> [h] = held_predictions(events, typed.models["m"])
    >>> h.timestamp, struct.unpack("=d", h.numeric), h.categorical
    (1767225600.0, (nan,), (2,))
    """
    numeric_rows, categorical_rows = model.rows(list(map(_FEATURES, events)))
    raw_times = list(map(_TIMESTAMP, events))
    # decoded epoch seconds are inside years 1..9999 already (EpochSeconds); datetimes are clamped as timestamps()
    times = raw_times if set(map(type, raw_times)) <= {float} else timestamps(raw_times).tolist()
    return list(map(model.held_type, repeat(events[0].model_id), map(_PREDICTION_ID, events), times,
                    map(_PREDICTION, events), map(_SCORE, events), model.shared_versions(list(map(_VERSION, events))),
                    _packed_rows(numeric_rows, len(model.numeric)),
                    categorical_rows if model.categorical else repeat(())))


def held_batch(held: Sequence[HeldPrediction], spec: ModelSpec) -> PredictionBatch:
    """Columns of held predictions of one model layout (the outcome side of a join).

    >>> from driftwarden.detectors.spec import FeatureSpec
    >>> spec = ModelSpec("binary", {"plan": FeatureSpec("categorical"), "age": FeatureSpec("numeric")})
    >>> Held = ModelEvents("m", spec).held_type
    >>> rows = [Held("m", "a", 1.0, 1, 0.9, None, struct.pack("=d", 41.0), ("pro",)),
    ...         Held("m", "b", 2.0, 0, 0.2, None, struct.pack("=d", float("nan")), (None,))]
    >>> batch = held_batch(rows, spec)
    >>> {k: v.tolist() for k, v in batch.features.items()}, batch.prediction.tolist()
    ({'plan': ['pro', None], 'age': [41.0, nan]}, ['1', '0'])
    """
    kind = type(held[0])
    width = len(kind.numeric_names)
    matrix = np.frombuffer(b"".join(map(_HELD_NUMERIC, held)), dtype=np.float64).reshape(len(held), width)
    features = _feature_columns(kind.numeric_names, matrix, kind.categorical_names, list(map(_HELD_CATEGORICAL, held)),
                                spec.features)
    # a map per field: 0.75x the time of zip(*) over each event's tuple of them
    times = np.fromiter(map(_TIMESTAMP, held), dtype=np.float64, count=len(held))
    predictions, scores, versions = list(map(_PREDICTION, held)), list(map(_SCORE, held)), list(map(_VERSION, held))
    return _batch(times, features, predictions, scores, versions, spec)


def _batch(times: np.ndarray, features: dict[str, np.ndarray], predictions: list[Any], scores: list[Any],
           versions: list[str | None], spec: ModelSpec, **quality: dict[str, int]) -> PredictionBatch:
    """A batch from its feature columns and the events' scalar fields (``quality``: data-quality counters)."""
    return PredictionBatch(
        timestamps=times,
        features=features,
        prediction=label_column(predictions, spec),
        score=score_column(scores, spec),
        class_scores=class_score_columns(scores, spec),
        model_version=None if versions.count(None) == len(versions) else _objects(versions),  # count: in C
        **quality,
    )


def _feature_columns(numeric: Sequence[str], matrix: np.ndarray, categorical: Sequence[str],
                     categorical_rows: Sequence[tuple[Any, ...]], order: Iterable[str]) -> dict[str, np.ndarray]:
    """Columns from an n x len(numeric) float64 matrix and per-event categorical rows, in ``order``."""
    out: dict[str, np.ndarray] = {}
    if numeric:
        out.update(zip(numeric, np.array(matrix.T, order="C"), strict=True))  # a writable copy per column
    if categorical:
        by_column = list(zip(*categorical_rows, strict=True)) or [() for _ in categorical]
        out.update((name, categorical_column(column)) for name, column in zip(categorical, by_column, strict=True))
    return {name: out[name] for name in order if name in out}


_VERSION, _PREDICTION, _SCORE = (operator.attrgetter(a) for a in ("model_version", "prediction", "score"))
_TIMESTAMP, _PREDICTION_ID = operator.attrgetter("timestamp"), operator.attrgetter("prediction_id")
_FEATURES = operator.attrgetter("features")
_HELD_NUMERIC = operator.attrgetter("numeric")
_HELD_CATEGORICAL = operator.attrgetter("categorical")


def _typed_columns(model: ModelEvents, feature_structs: Sequence[Any],
                   ) -> tuple[dict[str, np.ndarray], list[bytes], list[tuple[Any, ...]]]:
    """Columns of typed features (null -> NaN), with each event's numeric values packed and its categorical ones."""
    numeric_rows, categorical_rows = model.rows(feature_structs)
    matrix, packed = _float_matrix(numeric_rows, len(model.numeric))
    features = _feature_columns(model.numeric, matrix, model.categorical, categorical_rows, model.names)
    return features, packed, categorical_rows


@cache
def _row_packer(width: int) -> Any:
    return struct.Struct(f"={width}d").pack


def _float_matrix(rows: Sequence[tuple[Any, ...]], width: int) -> tuple[np.ndarray, list[bytes]]:
    """Rows of floats (or None) as an n x width float64 matrix (None -> NaN), and each row's bytes.

    Packing each row's doubles with :mod:`struct` costs less than half of numpy's
    conversion of a list of tuples (0.25 vs 0.61 us per 20-value row, measured);
    a row with a null takes numpy's path.

    >>> matrix, packed = _float_matrix([(1.0, 2.5), (3.0, None)], 2)
    >>> matrix.tolist(), [len(p) for p in packed]
    ([[1.0, 2.5], [3.0, nan]], [16, 16])
    """
    try:
        packed = list(starmap(_row_packer(width), rows))
    except struct.error:  # a null feature value
        matrix = np.array(rows, dtype=np.float64).reshape(len(rows), width)
        flat, size = matrix.tobytes(), 8 * width
        return matrix, [flat[i : i + size] for i in range(0, len(flat), size)]
    return np.frombuffer(b"".join(packed), dtype=np.float64).reshape(len(rows), width), packed


def _packed_rows(rows: Sequence[tuple[float | None, ...]], width: int) -> list[bytes]:
    """Each row's doubles as :func:`_float_matrix` packs them (None -> NaN), without the matrix.

    >>> [p.hex() for p in _packed_rows([(1.0,), (None,)], 1)]
    ['000000000000f03f', '000000000000f87f']
    """
    pack = _row_packer(width)
    try:
        return list(starmap(pack, rows))
    except struct.error:  # a null feature value: NaN, as numpy makes of None
        return [pack(*[math.nan if v is None else v for v in row]) if None in row else pack(*row) for row in rows]


def _complete_rows(dicts: Sequence[dict[str, Any]], names: list[str]) -> list[tuple[Any, ...]] | None:
    """Feature values as rows when every dict has exactly the keys ``names``, else None."""
    if not names or any(len(f) != len(names) for f in dicts):
        return None
    getter = operator.itemgetter(*names)
    try:
        rows = list(map(getter, dicts))
    except KeyError:
        return None
    return rows if len(names) > 1 else [(v,) for v in rows]


def timestamps(values: Sequence[datetime | float]) -> np.ndarray:
    """Epoch seconds of event timestamps (RFC 3339 datetimes or numbers), as :func:`~daemon.events.event_time`.

    Decoded numbers are inside years 1..9999 already; one restored from an older checkpoint is clamped.

    >>> timestamps([1.5, 1e18]).tolist() == [1.5, LATEST]
    True
    """
    kinds = set(map(type, values))
    if kinds <= {float, int}:
        return np.clip(np.array(values, dtype=np.float64), EARLIEST, LATEST)
    if kinds == {datetime}:  # the decoders' RFC 3339 times: one C call each, clamped at once (as event_time)
        seconds = map(datetime.timestamp, values)  # type: ignore[arg-type]  # all of them datetimes
        return np.clip(np.fromiter(seconds, np.float64, len(values)), EARLIEST, LATEST)
    return np.array([event_time(v) for v in values], dtype=np.float64)


def _objects(values: Iterable[Any]) -> np.ndarray:
    items = list(values)
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


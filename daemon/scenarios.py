"""Detection scenarios: a credit model's traffic with one known fault each, or none.

The churn generator of :mod:`driftwarden.daemon.simulate` drives the demo and the tests;
this one measures detection (``bench/scenarios.py``): how soon each fault is caught, what
the first alert names, and how often a no-drift stream raises an alert. Seeded: the same
:class:`Stream` gives the same bytes, however it is cut into chunks.

The model has 11 features a user would have:

* ``age`` (normal, clipped), ``income`` (log-normal: skewed), ``credit_limit`` and
  ``balance`` (normal, correlated :data:`PAIR_CORRELATION`), ``tenure_months`` and
  ``days_since_login`` (exponential: skewed; the latter 3 % null), ``sessions_7d`` (a
  Poisson count), ``session_minutes`` (gamma; follows the day when ``daily_cycle``),
  ``utilization`` (beta, in [0, 1]);
* ``region`` (north/south/east/west, :data:`REGION_MIX`) and ``plan`` (basic/pro/enterprise).

``score = sigmoid(model logit)`` of a fixed model (version 1.0.0), ``prediction = score > 0.5``,
``outcome`` drawn from the true probability (the model is calibrated until a fault changes the
concept). Event time runs at ``rate`` predictions per second from :data:`START` (a midnight),
or, with ``daily_cycle``, at ``rate x (1 + 0.6 sin)`` peaking at 14:00 UTC while
``session_minutes`` moves by +-:data:`CYCLE_FEATURE_SD` sd with the same phase. An outcome
comes ``label_delay`` seconds after its prediction.

Faults (:data:`FAULTS`), from prediction index ``onset`` on:

=================  ==============================================================================
``shift``          ``age`` jumps by +0.5 sd
``new_category``   a new ``region`` "central" takes 12 % of the traffic
``new_version``    model 2.0.0 (other weights: a different score distribution) replaces 1.0.0
``nulls``          35 % of ``tenure_months`` are null
``concept``        the true dependence on balance, tenure and utilization reverses (inputs the same)
``segment_concept`` the same, for ``plan = pro`` only
``region_mix``     ``region`` .40/.30/.20/.10 -> .25/.30/.25/.20 (PSI 0.151)
``decorrelate``    the correlation of ``credit_limit`` and ``balance`` drops 0.8 -> 0 (marginals kept)
``gradual``        ``income`` moves up linearly, reaching +0.5 sd after 50,000 predictions
``session_shift``  ``session_minutes`` jumps by +0.5 sd (on the daily-cycle stream: the feature that cycles)
=================  ==============================================================================

Two faults also run on the daily-cycle stream (``cycle_session_shift``, ``cycle_region_mix``):
judging a cycling feature against its reference's same hours must not blind the detectors.
The reference of a daily-cycle stream carries its ``timestamp`` column (whole days: what lets
the detectors see the cycle); the others' references have none, as many users' have.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

Fault = Literal["shift", "new_category", "new_version", "nulls", "concept", "segment_concept", "region_mix",
                "decorrelate", "gradual", "session_shift"]
FAULTS: tuple[Fault, ...] = ("shift", "new_category", "new_version", "nulls", "concept", "segment_concept",
                             "region_mix", "decorrelate", "gradual", "session_shift")
PERFORMANCE_FAULTS = frozenset({"concept", "segment_concept"})

MODEL_ID = "credit"
START = datetime(2026, 11, 2, tzinfo=UTC).timestamp()  # a midnight: the daily cycle's phase is the hour
DAY = 86_400.0
FEATURES: dict[str, Literal["numeric", "categorical"]] = {
    "age": "numeric",
    "income": "numeric",
    "credit_limit": "numeric",
    "balance": "numeric",
    "tenure_months": "numeric",
    "sessions_7d": "numeric",
    "session_minutes": "numeric",
    "utilization": "numeric",
    "days_since_login": "numeric",
    "region": "categorical",
    "plan": "categorical",
}
#: declared bounds a user would write (data-quality checks)
BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "age": (18, 120), "income": (0, None), "credit_limit": (0, None), "balance": (0, None),
    "tenure_months": (0, None), "sessions_7d": (0, None), "session_minutes": (0, None),
    "utilization": (0, 1), "days_since_login": (0, None),
}
REGIONS = np.array(["north", "south", "east", "west"], dtype=object)
REGION_MIX = (0.40, 0.30, 0.20, 0.10)
REGION_MIX_SHIFTED = (0.25, 0.30, 0.25, 0.20)
NEW_REGION = "central"
NEW_CATEGORY_SHARE = 0.12
PLANS = np.array(["basic", "pro", "enterprise"], dtype=object)
PLAN_MIX = (0.60, 0.30, 0.10)

AGE_MEAN, AGE_SD = 45.0, 12.0
INCOME_MU, INCOME_SIGMA = 10.6, 0.5
INCOME_SD = float(np.exp(INCOME_MU + INCOME_SIGMA**2 / 2) * np.sqrt(np.expm1(INCOME_SIGMA**2)))
PAIR_CORRELATION = 0.8
SHIFT_SD = 0.5  # the jump (shift) and the end of the ramp (gradual), in the feature's sd
GRADUAL_OVER = 50_000  # predictions
NULL_FRACTION = 0.35
BASE_NULL_DAYS_SINCE_LOGIN = 0.03
CYCLE_RATE_AMPLITUDE = 0.6  # the event rate swings between 0.4x and 1.6x its mean
CYCLE_FEATURE = "session_minutes"
CYCLE_FEATURE_SD = 0.3  # its mean swings +-0.3 of its sd with the hour
SESSION_SHAPE, SESSION_SCALE = 4.0, 3.0  # gamma: mean 12, sd 6
CYCLE_PHASE = -2 * np.pi * 8 / 24  # sin peaks at 14:00, bottoms at 02:00

_REGION_EFFECT = {"north": 0.0, "south": 0.2, "east": -0.3, "west": 0.4}
_PLAN_EFFECT = {"basic": 0.3, "pro": 0.0, "enterprise": -0.6}


@dataclass(frozen=True)
class Stream:
    """One scenario's traffic: ``events`` predictions, ``fault`` from prediction ``onset`` on."""

    name: str
    events: int
    fault: Fault | None = None
    onset: int | None = None
    rate: float = 10.0  # mean predictions per second of event time
    daily_cycle: bool = False
    label_delay: float = 600.0  # seconds from a prediction to its outcome
    seed: int = 11
    model_id: str = MODEL_ID
    model_version: str = "1.0.0"
    new_version: str = "2.0.0"

    def __post_init__(self) -> None:
        if (self.fault is None) != (self.onset is None):
            raise ValueError(f"{self.name}: a fault needs an onset and an onset a fault")
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"{self.name}: unknown fault {self.fault!r} (known: {', '.join(FAULTS)})")

    def reference(self, rows: int = 50_000) -> Stream:
        """The no-fault stream the reference is drawn from (another seed); whole days for the cycle."""
        rate = rows / DAY if self.daily_cycle else self.rate
        return Stream(f"{self.name}-reference", rows, rate=rate, daily_cycle=self.daily_cycle,
                      label_delay=self.label_delay, seed=self.seed + 1000, model_id=self.model_id,
                      model_version=self.model_version)


def catalogue(quick: bool = False) -> dict[str, Stream]:
    """The suite: one stream per fault and two no-drift streams of >= 1M predictions.

    A fault starts after 52,345 predictions and runs for 97,655 (the gradual shift reaches its end
    50,000 after the onset). ``quick`` shortens every stream (onset after 22,345, 37,655 after it:
    the gradual shift stops at 0.38 sd; no-drift streams of 200,000) for a run of a minute or two.
    """
    # the onset falls inside a window of any round size: the fault's first window is partly clean
    events, onset, clean = (60_000, 22_345, 200_000) if quick else (150_000, 52_345, 1_000_000)
    suite: dict[str, Stream] = {f: Stream(f, events, fault=f, onset=onset, seed=100 + i)
                                for i, f in enumerate(FAULTS) if f != "session_shift"}
    suite["stationary"] = Stream("stationary", clean, seed=201)
    # whole days at a mean 6/s: 2 days = 1,036,800 predictions (quick: 200,000 in 0.39 days)
    cycle_events = clean if quick else int(2 * DAY * 6.0)
    suite["daily_cycle"] = Stream("daily_cycle", cycle_events, rate=6.0, daily_cycle=True, seed=202)
    on_cycle: tuple[Fault, ...] = ("session_shift", "region_mix")
    for i, fault in enumerate(on_cycle):
        suite[f"cycle_{fault}"] = Stream(f"cycle_{fault}", events, fault=fault, onset=onset, rate=6.0,
                                         daily_cycle=True, seed=300 + i)
    return suite


# -- event time ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _day_grid(rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative expected predictions over one day (1 s steps) of the cycling rate."""
    s = np.arange(0.0, DAY + 1.0)
    a, w = CYCLE_RATE_AMPLITUDE, 2 * np.pi / DAY
    cumulative = rate * (s + a / w * (np.cos(CYCLE_PHASE) - np.cos(w * s + CYCLE_PHASE)))
    return cumulative, s


def event_times(stream: Stream, index: np.ndarray) -> np.ndarray:
    """Event time (epoch seconds) of predictions ``index``: evenly spaced in the expected count."""
    if not stream.daily_cycle:
        return START + index / stream.rate
    per_day = stream.rate * DAY
    days, within = np.divmod(index.astype(np.float64), per_day)
    cumulative, s = _day_grid(stream.rate)
    return START + days * DAY + np.interp(within, cumulative, s)


def _hour_wave(t: np.ndarray) -> np.ndarray:
    return np.sin(2 * np.pi * (t - START) / DAY + CYCLE_PHASE)


# -- columns -------------------------------------------------------------------------------------
BLOCK = 10_000  # predictions drawn from one seed
def generate(stream: Stream, start: int = 0, n: int | None = None) -> dict[str, np.ndarray]:
    """Columns of predictions ``start .. start+n``: the features (NaN for null), ``score``,
    ``prediction``, ``outcome``, ``model_version``, ``timestamp`` and ``index``.

    Drawn in blocks of :data:`BLOCK` predictions, each from its own seed: a prediction's
    values do not depend on how the stream is cut into chunks.
    """
    n = stream.events - start if n is None else n
    if n <= 0:
        return _block(stream, 0, 0)
    first, last = start // BLOCK, (start + n - 1) // BLOCK
    blocks = [_block(stream, b * BLOCK, BLOCK) for b in range(first, last + 1)]
    lo = start - first * BLOCK
    return {k: np.concatenate([b[k] for b in blocks])[lo:lo + n] for k in blocks[0]}


def _block(stream: Stream, start: int, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([stream.seed, start])
    index = np.arange(start, start + n)
    t = event_times(stream, index)
    after = index >= stream.onset if stream.onset is not None else np.zeros(n, dtype=bool)
    fault = stream.fault

    x: dict[str, np.ndarray] = {}
    age = rng.normal(AGE_MEAN, AGE_SD, n)
    if fault == "shift":
        age = age + np.where(after, SHIFT_SD * AGE_SD, 0.0)
    x["age"] = age.clip(18, 95).round(0)
    income = rng.lognormal(INCOME_MU, INCOME_SIGMA, n)
    if fault == "gradual":
        assert stream.onset is not None
        ramp = np.clip((index - stream.onset) / GRADUAL_OVER, 0.0, 1.0)
        income = income + SHIFT_SD * INCOME_SD * ramp
    x["income"] = income.round(0)
    z1, noise = rng.standard_normal(n), rng.standard_normal(n)
    z2 = PAIR_CORRELATION * z1 + np.sqrt(1 - PAIR_CORRELATION**2) * noise
    if fault == "decorrelate":
        z2 = np.where(after, noise, z2)  # still standard normal: the marginal is unchanged
    x["credit_limit"] = (8000 + 2500 * z1).clip(0).round(0)
    x["balance"] = (3000 + 1000 * z2).clip(0).round(2)
    tenure = rng.exponential(30, n).round(0)
    if fault == "nulls":
        tenure = np.where(after & (rng.random(n) < NULL_FRACTION), np.nan, tenure)
    x["tenure_months"] = tenure
    x["sessions_7d"] = rng.poisson(4.0, n).astype(np.float64)
    minutes = rng.gamma(SESSION_SHAPE, SESSION_SCALE, n)
    if stream.daily_cycle:
        minutes = minutes + CYCLE_FEATURE_SD * np.sqrt(SESSION_SHAPE) * SESSION_SCALE * _hour_wave(t)
    if fault == "session_shift":
        minutes = minutes + np.where(after, SHIFT_SD * np.sqrt(SESSION_SHAPE) * SESSION_SCALE, 0.0)
    x["session_minutes"] = minutes.clip(0).round(1)
    x["utilization"] = rng.beta(2, 5, n).round(3)
    days = rng.exponential(6, n).round(1)
    x["days_since_login"] = np.where(rng.random(n) < BASE_NULL_DAYS_SINCE_LOGIN, np.nan, days)
    u = rng.random(n)
    region = _choose(u, REGIONS, REGION_MIX)
    if fault == "region_mix":
        region = np.where(after, _choose(u, REGIONS, REGION_MIX_SHIFTED), region)
    elif fault == "new_category":
        region = np.where(after & (rng.random(n) < NEW_CATEGORY_SHARE), NEW_REGION, region)
    x["region"] = region
    x["plan"] = _choose(rng.random(n), PLANS, PLAN_MIX)

    reversed_concept = np.zeros(n, dtype=bool)
    if fault == "concept":
        reversed_concept = after
    elif fault == "segment_concept":
        reversed_concept = after & (x["plan"] == "pro")
    new_model = after if fault == "new_version" else np.zeros(n, dtype=bool)
    true_logit = _logit(x, reversed_concept)
    model_logit = np.where(new_model, _logit_v2(x), _logit(x, np.zeros(n, dtype=bool)))
    score = 1.0 / (1.0 + np.exp(-model_logit))
    outcome = rng.random(n) < 1.0 / (1.0 + np.exp(-true_logit))
    version = np.where(new_model, stream.new_version, stream.model_version).astype(object)
    return {**x, "score": score.round(4), "prediction": (score > 0.5).astype(np.int64),
            "outcome": outcome.astype(np.int64), "model_version": version, "timestamp": t, "index": index}


def _choose(u: np.ndarray, values: np.ndarray, mix: tuple[float, ...]) -> np.ndarray:
    """``values`` by ``mix`` from uniforms ``u``: the same ``u`` under two mixes moves the fewest rows."""
    edges = np.cumsum(mix)
    edges[-1] = 1.0
    out: np.ndarray = values[np.searchsorted(edges, u, side="right").clip(0, len(values) - 1)]
    return out


def _standardized(x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    with np.errstate(invalid="ignore"):
        return {
            "age": (x["age"] - AGE_MEAN) / AGE_SD,
            "income": (np.log(np.maximum(x["income"], 1.0)) - INCOME_MU) / INCOME_SIGMA,
            "credit_limit": (x["credit_limit"] - 8000) / 2500,
            "balance": (x["balance"] - 3000) / 1000,
            "tenure_months": np.nan_to_num((x["tenure_months"] - 30) / 30),  # null -> the mean
            "sessions_7d": (x["sessions_7d"] - 4) / 2,
            "session_minutes": (x["session_minutes"] - 12) / 6,
            "utilization": (x["utilization"] - 2 / 7) / 0.16,
            "days_since_login": np.nan_to_num((x["days_since_login"] - 6) / 6),
        }


def _effects(x: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The region and plan terms (a region the model never saw counts 0)."""
    region = np.select([x["region"] == k for k in _REGION_EFFECT], list(_REGION_EFFECT.values()), 0.0)
    plan = np.select([x["plan"] == k for k in _PLAN_EFFECT], list(_PLAN_EFFECT.values()), 0.0)
    return region, plan


def _logit(x: dict[str, np.ndarray], reversed_concept: np.ndarray) -> np.ndarray:
    """The true log-odds (and model 1.0.0's): a reversed concept flips three of its terms."""
    z = _standardized(x)
    region, plan = _effects(x)
    sign = np.where(reversed_concept, -1.0, 1.0)
    return (-1.0 + 0.3 * z["age"] - 0.5 * z["income"] - 0.3 * z["credit_limit"] + sign * 0.6 * z["balance"]
            - sign * 0.7 * z["tenure_months"] - 0.4 * z["sessions_7d"] - 0.2 * z["session_minutes"]
            + sign * 0.8 * z["utilization"] + 0.5 * z["days_since_login"] + region + plan)


def _logit_v2(x: dict[str, np.ndarray]) -> np.ndarray:
    """Model 2.0.0: retrained with other weights, sharper and shifted up: another score distribution."""
    z = _standardized(x)
    region, plan = _effects(x)
    return (0.2 + 0.6 * z["age"] - 0.9 * z["income"] + 1.2 * z["balance"] - 1.2 * z["tenure_months"]
            - 0.6 * z["sessions_7d"] + 1.5 * z["utilization"] + 0.8 * z["days_since_login"] + 2 * region + plan)


# -- files and messages --------------------------------------------------------------------------
def reference_table(stream: Stream, rows: int = 50_000) -> pa.Table:
    """The reference data set: ``rows`` no-fault predictions with their outcomes."""
    ref = stream.reference(rows)
    cols = generate(ref, 0, rows)
    arrays = {}
    for name, kind in FEATURES.items():
        values = cols[name]
        arrays[name] = pa.array(values, mask=np.isnan(values)) if kind == "numeric" else pa.array(values.tolist())
    for name in ("prediction", "score", "outcome"):
        arrays[name] = pa.array(cols[name])
    if ref.daily_cycle:
        arrays["timestamp"] = pa.array(cols["timestamp"])  # epoch seconds
    return pa.table(arrays)


def write_reference(path: str | Path, stream: Stream, rows: int = 50_000) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(reference_table(stream, rows), p)
    return p


_encode = msgspec.json.Encoder().encode


def _iso(ts: np.ndarray) -> list[str]:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-11-02T00:00:00.100Z`` (vectorized: 2x ``isoformat``)."""
    ms = np.round(ts * 1e6).astype(np.int64) // 1000
    out: list[str] = np.char.add(np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms"), "Z").tolist()
    return out


def messages(stream: Stream, chunk: int = BLOCK) -> Iterator[tuple[str, bytes, int]]:
    """``(topic, value, prediction index)`` in production order: every prediction, and its
    outcome once the predictions have reached the outcome's event time."""
    waiting: deque[tuple[float, int, bytes]] = deque()  # constant delay: already in time order
    names = list(FEATURES)
    for start in range(0, stream.events, chunk):
        cols = generate(stream, start, min(chunk, stream.events - start))
        rows = zip(*(_json_column(cols[f]) for f in names), strict=True)
        times, dues = cols["timestamp"].tolist(), (cols["timestamp"] + stream.label_delay).tolist()
        stamps, due_stamps = _iso(cols["timestamp"]), _iso(cols["timestamp"] + stream.label_delay)
        versions, predictions = cols["model_version"].tolist(), cols["prediction"].tolist()
        scores, outcomes = cols["score"].tolist(), cols["outcome"].tolist()
        for i, values in enumerate(rows):
            idx, ts = start + i, times[i]
            while waiting and waiting[0][0] <= ts:
                _, j, value = waiting.popleft()
                yield "outcomes", value, j
            pid = f"{stream.model_id}-{stream.seed}-{idx}"
            yield "predictions", _encode({
                "model_id": stream.model_id, "prediction_id": pid, "timestamp": stamps[i],
                "model_version": versions[i], "features": dict(zip(names, values, strict=True)),
                "prediction": predictions[i], "score": scores[i],
            }), idx
            waiting.append((dues[i], idx, _encode({
                "model_id": stream.model_id, "prediction_id": pid, "timestamp": due_stamps[i],
                "outcome": outcomes[i],
            })))
    for _, j, value in waiting:
        yield "outcomes", value, j


def _json_column(values: np.ndarray) -> list[object]:
    if values.dtype == object:
        return list(values)
    return [None if v != v else v for v in values.tolist()]  # NaN -> null

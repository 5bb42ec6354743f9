"""A synthetic churn model's traffic, with faults injected on purpose.

Used by ``driftwarden demo`` (in-process), ``driftwarden simulate`` (to Kafka),
the integration tests and the benchmarks. Seeded: the same arguments give the
same bytes.

The model: ``P(churn) = sigmoid(w . x)``; the model predicts ``score > 0.5``;
the outcome is drawn from the *true* probability. Faults:

* ``covariate_shift_at``: from that event on, ``age`` shifts by +12 years and
  ``monthly_spend`` is multiplied by 1.8 (the inputs move, the concept not);
* ``concept_drift_at``: from that event on, the true dependence on
  ``tenure_days`` and ``plan`` reverses, so the model's accuracy falls while the
  inputs look the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

MODEL_ID = "churn"
PLANS = np.array(["basic", "pro", "enterprise"], dtype=object)
COUNTRIES = np.array(["DE", "FR", "US", "GB", "ES"], dtype=object)
FEATURES = {
    "age": "numeric",
    "tenure_days": "numeric",
    "monthly_spend": "numeric",
    "support_tickets": "numeric",
    "plan": "categorical",
    "country": "categorical",
}
START = datetime(2026, 11, 1, tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class Scenario:
    model_id: str = MODEL_ID
    events: int = 60_000
    rate: float = 20.0  # prediction events per second of event time
    label_delay: int = 500  # an outcome follows its prediction this many events later
    label_fraction: float = 1.0
    covariate_shift_at: int | None = None
    concept_drift_at: int | None = None
    malformed_every: int | None = None  # emit a broken message every N events
    model_version: str = "1.0.0"
    seed: int = 7


def _features(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "age": rng.normal(42, 11, n).clip(18, 95).round(0),
        "tenure_days": rng.exponential(400, n).round(1),
        "monthly_spend": rng.lognormal(3.3, 0.5, n).round(2),
        "support_tickets": rng.poisson(1.2, n).astype(np.float64),
        "plan": rng.choice(PLANS, n, p=[0.55, 0.35, 0.10]),
        "country": rng.choice(COUNTRIES, n, p=[0.3, 0.2, 0.3, 0.1, 0.1]),
    }


def _true_logit(x: dict[str, np.ndarray], reversed_concept: np.ndarray) -> np.ndarray:
    pro = (x["plan"] == "pro").astype(np.float64)
    ent = (x["plan"] == "enterprise").astype(np.float64)
    tenure = (x["tenure_days"] - 400) / 400
    sign = np.where(reversed_concept, -1.0, 1.0)
    return (
        -0.2
        + 0.03 * (x["age"] - 42)
        - 1.6 * sign * tenure
        + 0.015 * (x["monthly_spend"] - 30)
        + 0.45 * x["support_tickets"]
        - 0.9 * sign * pro
        - 1.4 * sign * ent
    )


def _model_logit(x: dict[str, np.ndarray]) -> np.ndarray:
    return _true_logit(x, np.zeros(len(x["age"]), dtype=bool))  # the model learned the original concept


def generate(scenario: Scenario, start: int = 0, n: int | None = None) -> dict[str, np.ndarray]:
    """Columns of events ``start .. start+n`` (features, score, prediction, outcome, timestamp)."""
    n = scenario.events - start if n is None else n
    rng = np.random.default_rng([scenario.seed, start])
    x = _features(rng, n)
    index = np.arange(start, start + n)
    if scenario.covariate_shift_at is not None:
        shifted = index >= scenario.covariate_shift_at
        x["age"] = np.where(shifted, (x["age"] + 12).clip(18, 95), x["age"])
        x["monthly_spend"] = np.where(shifted, (x["monthly_spend"] * 1.8).round(2), x["monthly_spend"])
    reversed_concept = (
        index >= scenario.concept_drift_at if scenario.concept_drift_at is not None else np.zeros(n, dtype=bool)
    )
    score = 1.0 / (1.0 + np.exp(-_model_logit(x)))
    true_p = 1.0 / (1.0 + np.exp(-_true_logit(x, reversed_concept)))
    return {
        **x,
        "score": score.round(4),
        "prediction": (score > 0.5).astype(np.int64),
        "outcome": (rng.random(n) < true_p).astype(np.int64),
        "labelled": rng.random(n) < scenario.label_fraction,
        "timestamp": START + index / scenario.rate,
        "index": index,
    }


def write_reference(path: str | Path, scenario: Scenario, rows: int = 20_000) -> Path:
    """A clean reference set (no faults) from the same generator, by file extension."""
    clean = Scenario(model_id=scenario.model_id, seed=scenario.seed + 1000, events=rows)
    cols = generate(clean, 0, rows)
    table = pa.table({k: cols[k] for k in (*FEATURES, "prediction", "score", "outcome")})
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix == ".csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, p)
    else:
        pq.write_table(table, p)
    return p


_encode = msgspec.json.Encoder().encode


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def messages(scenario: Scenario, chunk: int = 5000) -> Iterator[tuple[str, bytes, bytes]]:
    """``(topic, key, value)`` in production order: predictions, and each outcome
    ``label_delay`` events after its prediction; ``topic`` is "predictions" or "outcomes"."""
    key = scenario.model_id.encode()
    backlog: list[tuple[int, bytes]] = []
    for start in range(0, scenario.events, chunk):
        cols = generate(scenario, start, min(chunk, scenario.events - start))
        for i in range(len(cols["index"])):
            idx = int(cols["index"][i])
            pid = f"{scenario.model_id}-{scenario.seed}-{idx}"
            ts = float(cols["timestamp"][i])
            if scenario.malformed_every and idx % scenario.malformed_every == scenario.malformed_every - 1:
                yield "predictions", key, b'{"model_id": "' + key + b'", "prediction_id": 17, "broken": '
                continue
            event = {
                "model_id": scenario.model_id,
                "prediction_id": pid,
                "timestamp": _iso(ts),
                "model_version": scenario.model_version,
                "features": {f: _py(cols[f][i]) for f in FEATURES},
                "prediction": int(cols["prediction"][i]),
                "score": float(cols["score"][i]),
            }
            yield "predictions", key, _encode(event)
            if cols["labelled"][i]:
                outcome = {
                    "model_id": scenario.model_id,
                    "prediction_id": pid,
                    "timestamp": ts + scenario.label_delay / scenario.rate,
                    "outcome": int(cols["outcome"][i]),
                    "kpis": {"revenue": round(float(cols["monthly_spend"][i]) * (1 - int(cols["outcome"][i])), 2)},
                }
                backlog.append((idx + scenario.label_delay, _encode(outcome)))
            while backlog and backlog[0][0] <= idx:
                yield "outcomes", key, backlog.pop(0)[1]
    for _, value in backlog:
        yield "outcomes", key, value


def _py(value: object) -> object:
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value

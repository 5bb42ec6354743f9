"""Benchmark of the default detector set, and the 10M-event no-drift false-alarm measurement.

    python bench/detectors.py              # throughput: decode + all default detectors vs naive ADWIN
    python bench/detectors.py --no-drift   # false alarms on 10M no-drift events (2000 windows of 5000)

Throughput model: 20 numeric features, binary classifier with a score, default
settings (window 5000; drift KS/PSI + BH; PCA; CBPE; quality; performance
accuracy/f1/roc_auc; ADWIN on the error stream). Every event is one JSON
message decoded with msgspec into a typed Struct, turned into columns per
micro-batch of 1000, then fed to ``ModelMonitor.observe_predictions`` and (its
outcome) to ``observe_outcomes``. The naive baseline is one river ADWIN per
feature, updated per event. Medians of several repeats are printed.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import msgspec
import numpy as np
from river import drift

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors.batch import OutcomeBatch, PredictionBatch
from detectors.monitor import ModelMonitor
from detectors.settings import MonitorSettings
from detectors.spec import FeatureSpec, ModelSpec

N_FEATURES = 20
NAMES = [f"f{i:02d}" for i in range(N_FEATURES)]
BATCH = 1000


# The model's declared features as a typed Struct: absent keys decode to None, undeclared ones are skipped.
Features = msgspec.defstruct("Features", [(n, float | None, None) for n in NAMES])


class Event(msgspec.Struct):
    model_id: str
    prediction_id: str
    timestamp: float
    features: Features  # type: ignore[valid-type]
    prediction: int
    score: float | None = None


def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features (n x 20, mixed shapes), score and true label; no drift."""
    cols = []
    for i in range(N_FEATURES):
        kind = i % 4
        if kind == 0:
            cols.append(rng.normal(50, 10, n))
        elif kind == 1:
            cols.append(rng.lognormal(3, 0.7, n))
        elif kind == 2:
            cols.append(rng.integers(0, 12, n).astype(np.float64))  # discrete: tied quantiles
        else:
            cols.append(rng.exponential(2.0, n))
    x = np.column_stack(cols)
    logit = (x[:, 0] - 50) / 10 + (x[:, 3] - 2) / 2
    score = 1 / (1 + np.exp(-logit))
    y = (rng.random(n) < score).astype(np.int64)
    return x, score, y


def spec() -> ModelSpec:
    return ModelSpec(task="binary", features={n: FeatureSpec("numeric") for n in NAMES},
                     monitoring=MonitorSettings())


def reference(rng: np.random.Generator, n: int = 50_000) -> OutcomeBatch:
    x, score, y = draw(rng, n)
    labels = np.array(["0", "1"], dtype=object)
    return OutcomeBatch(timestamps=np.arange(n, dtype=np.float64), prediction_timestamps=np.arange(n, dtype=np.float64),
                        y_true=labels[y], y_pred=labels[(score > 0.5).astype(np.int64)], score=score,
                        features={name: x[:, i] for i, name in enumerate(NAMES)})


def encode_events(rng: np.random.Generator, n: int) -> tuple[list[bytes], np.ndarray]:
    x, score, y = draw(rng, n)
    enc = msgspec.json.Encoder()
    msgs = [enc.encode({"model_id": "bench", "prediction_id": str(i), "timestamp": 1.7e9 + i,
                        "features": dict(zip(NAMES, np.round(x[i], 3).tolist(), strict=True)),
                        "prediction": int(score[i] > 0.5), "score": round(float(score[i]), 4)})
            for i in range(n)]
    return msgs, y


DECODER = msgspec.json.Decoder(Event)
LABELS = np.array(["0", "1"], dtype=object)


def decode(msgs: list[bytes]) -> PredictionBatch:
    """The tiny bench decoder: typed decode per message, then columns in one numpy call."""
    events = [DECODER.decode(m) for m in msgs]
    astuple = msgspec.structs.astuple
    matrix = np.array([astuple(e.features) for e in events], dtype=np.float64)  # None -> NaN
    return PredictionBatch(
        timestamps=np.fromiter((e.timestamp for e in events), np.float64, len(events)),
        features={k: matrix[:, i] for i, k in enumerate(NAMES)},
        prediction=LABELS[np.fromiter((e.prediction for e in events), np.int64, len(events))],
        score=np.array([e.score for e in events], dtype=np.float64),
    )


def run_pipeline(msgs: list[bytes], y: np.ndarray, ref: OutcomeBatch) -> tuple[float, float, int]:
    mon = ModelMonitor("bench", spec(), ref)
    findings = 0
    t0 = time.perf_counter()
    for i in range(0, len(msgs), BATCH):
        batch = decode(msgs[i : i + BATCH])
        findings += len(mon.observe_predictions(batch))
    t1 = time.perf_counter()
    # outcomes: the same rows joined with their labels
    for i in range(0, len(msgs), BATCH):
        batch = decode(msgs[i : i + BATCH])
        n = len(batch)
        outcome = OutcomeBatch(timestamps=batch.timestamps + 60, prediction_timestamps=batch.timestamps,
                               y_true=LABELS[y[i : i + n]], y_pred=batch.prediction, score=batch.score)
        findings += len(mon.observe_outcomes(outcome))
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, findings


def run_daemon_path(msgs: list[bytes], outcome_msgs: list[bytes], ref: OutcomeBatch) -> float:
    """The daemon's own path: contract decode, columns, outcome join, every default detector."""
    from daemon.columns import prediction_batch
    from daemon.events import decode_outcomes, decode_predictions
    from daemon.join import OutcomeJoin
    from daemon.pipeline import outcome_batch

    model = spec()
    mon = ModelMonitor("bench", model, ref)  # built before the clock starts, as in run_pipeline
    join = OutcomeJoin(ttl=7 * 86400, max_pending=1_000_000)
    t0 = time.perf_counter()
    for i in range(0, len(msgs), BATCH):
        events = [e for _, e in decode_predictions(msgs[i : i + BATCH])[0]]
        mon.observe_predictions(prediction_batch(events, model))
        join.add_predictions("bench", events)
        outcomes = [o for _, o in decode_outcomes(outcome_msgs[i : i + BATCH])[0]]
        pairs = join.add_outcomes("bench", outcomes)
        mon.observe_outcomes(outcome_batch(pairs, model))
    return time.perf_counter() - t0


def encode_outcomes(y: np.ndarray) -> list[bytes]:
    enc = msgspec.json.Encoder()
    return [enc.encode({"model_id": "bench", "prediction_id": str(i), "timestamp": 1.7e9 + i + 60,
                        "outcome": int(y[i])}) for i in range(y.size)]


def run_contract_decode(msgs: list[bytes]) -> tuple[float, float]:
    """Seconds spent in daemon.events' typed decode and in daemon.columns, per batch of BATCH."""
    from daemon.columns import prediction_batch
    from daemon.events import decode_predictions

    model = spec()
    decode_s = columns_s = 0.0
    for i in range(0, len(msgs), BATCH):
        t0 = time.perf_counter()
        events = [e for _, e in decode_predictions(msgs[i : i + BATCH])[0]]
        t1 = time.perf_counter()
        prediction_batch(events, model)
        decode_s, columns_s = decode_s + t1 - t0, columns_s + time.perf_counter() - t1
    return decode_s, columns_s


def run_naive(msgs: list[bytes]) -> float:
    detectors = {k: drift.ADWIN() for k in NAMES}
    t0 = time.perf_counter()
    for m in msgs:
        e = DECODER.decode(m)
        for k, det in detectors.items():
            v = getattr(e.features, k)
            if v is not None:
                det.update(v)
    return time.perf_counter() - t0


def throughput(repeats: int, n: int) -> None:
    rng = np.random.default_rng(0)
    ref = reference(rng)
    msgs, y = encode_events(rng, n)
    t_dec, t_contract = [], []
    t_pred, t_out, t_naive, t_daemon = [], [], [], []
    outcome_msgs = encode_outcomes(y)
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(0, n, BATCH):
            decode(msgs[i : i + BATCH])
        t_dec.append(time.perf_counter() - t0)
        t_contract.append(run_contract_decode(msgs))
        p, o, _ = run_pipeline(msgs, y, ref)
        t_pred.append(p)
        t_out.append(o)
        t_naive.append(run_naive(msgs[: n // 5]) * 5)
        t_daemon.append(run_daemon_path(msgs, outcome_msgs, ref))
    dec, pred, out, naive = (statistics.median(t) for t in (t_dec, t_pred, t_out, t_naive))
    daemon = statistics.median(t_daemon)
    per = lambda s: s / n * 1e6  # noqa: E731
    print(f"events per repeat: {n}, repeats: {repeats}, batch: {BATCH}, features: {N_FEATURES}")
    print(f"decode only (msgspec + columns):          {per(dec):6.3f} us/event")
    decode_us, columns_us = (per(statistics.median(t)) for t in zip(*t_contract, strict=True))
    print(f"the daemon's contract decode: {decode_us:6.3f} us/event, + columns: {columns_us:6.3f} us/event")
    print(f"predictions: decode + drift/PCA/CBPE/quality: {per(pred):6.3f} us/event  {n / pred:>10,.0f} events/s")
    print(f"outcomes: decode + perf(3 metrics) + ADWIN: {per(out):6.3f} us/event  {n / out:>10,.0f} events/s")
    print(f"detectors only (predictions, minus decode): {per(pred - dec):6.3f} us/event")
    print(f"naive: decode + 20 river ADWIN per event:   {per(naive):6.3f} us/event  {n / naive:>10,.0f} events/s")
    print(f"ratio naive / ours (prediction path):       {naive / pred:6.2f}x")
    print(f"daemon path (contract decode + columns + join + all detectors), per prediction with its outcome: "
          f"{per(daemon):6.3f} us  {n / daemon:>10,.0f} predictions/s  ({2 * n / daemon:,.0f} messages/s)")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


def no_drift(total: int, window: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    mon = ModelMonitor("bench", spec(), reference(rng))
    assert mon.settings.window_size == window
    counts: dict[str, int] = {}
    windows = total // window
    t0 = time.perf_counter()
    for w in range(windows):
        x, score, y = draw(rng, window)
        t = w * window + np.arange(window, dtype=np.float64)
        batch = PredictionBatch(timestamps=t, features={k: x[:, i] for i, k in enumerate(NAMES)},
                                prediction=LABELS[(score > 0.5).astype(np.int64)], score=score)
        # every prediction labelled (no drift in the concept either): performance and realized CBPE too
        outcomes = OutcomeBatch(timestamps=t + 60, prediction_timestamps=t, y_true=LABELS[y],
                                y_pred=batch.prediction, score=score, features=batch.features)
        for f in mon.observe_predictions(batch) + mon.observe_outcomes(outcomes):
            if f.degraded:
                counts[f"{f.kind}/{f.detector}"] = counts.get(f"{f.kind}/{f.detector}", 0) + 1
    print(f"{windows} windows x {window} = {windows * window:,} no-drift events in {time.perf_counter() - t0:.1f} s")
    print(f"degraded findings by kind/detector: {counts or 'none'}")
    print(f"feature-drift (data_drift) findings: {sum(v for k, v in counts.items() if k.startswith('data_drift'))}")
    perf = sum(v for k, v in counts.items() if k.startswith(("performance/", "estimated_performance/")))
    print(f"performance findings (labelled, realized and estimated): {perf} of {windows} windows x metrics")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-drift", action="store_true")
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--total", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.no_drift:
        no_drift(args.total, 5000, args.seed)
    else:
        throughput(args.repeats, args.events)

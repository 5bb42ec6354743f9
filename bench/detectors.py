"""Benchmark of the default detector set, and the 10M-event no-drift false-alarm measurement.

    python bench/detectors.py              # throughput: decode + all default detectors vs naive ADWIN
    python bench/detectors.py --no-drift   # false alarms on 10M no-drift events (2000 windows of 5000)
    python bench/detectors.py --json figures.json   # also write the figures and their baselines (bench/run_all.py)

Throughput model: 20 numeric features, binary classifier with a score, default
settings (window 5000; drift KS/PSI + BH; PCA; CBPE; quality; performance
accuracy/f1/roc_auc; ADWIN on the error stream). The path is the daemon's own
(what ``Pipeline.process`` does per poll, minus alerting): every event is one
keyed JSON message, decoded by the model's typed decoder, turned into columns
per micro-batch of 1000, fed to ``ModelMonitor.observe_predictions`` and held
in the outcome join (in its compact held form, ``daemon.held``); its outcome message is decoded, joined and fed to
``observe_outcomes``. Also measured: the contract decoder's dict path (events
that fail the typed one), and the naive design of one river ADWIN per feature
updated per event. Every design runs in every repeat; medians are printed.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import msgspec
import numpy as np
from river import drift

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.figures import figure
from driftwarden.daemon.app import prepare_loop
from driftwarden.daemon.cli import single_threaded_numerics
from driftwarden.detectors.batch import OutcomeBatch, PredictionBatch
from driftwarden.detectors.monitor import ModelMonitor
from driftwarden.detectors.settings import MonitorSettings
from driftwarden.detectors.spec import FeatureSpec, ModelSpec

single_threaded_numerics()  # as `driftwarden run` does

N_FEATURES = 20
NAMES = [f"f{i:02d}" for i in range(N_FEATURES)]
BATCH = 1000


# The naive baseline's decoder: the declared features as a typed Struct.
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


DECODER = msgspec.json.Decoder(Event)  # the naive baseline's decoder
LABELS = np.array(["0", "1"], dtype=object)
KEY = b"bench"  # contract v1: messages are keyed by model id


def run_daemon_path(msgs: list[bytes], outcome_msgs: list[bytes], ref: OutcomeBatch) -> tuple[float, float]:
    """The daemon's own path (as Pipeline.process): typed decode by key, columns, join, every default detector.

    Returns the seconds of the prediction side and of the outcome side.
    """
    from driftwarden.daemon.columns import prediction_columns
    from driftwarden.daemon.events import decode_outcomes
    from driftwarden.daemon.join import OutcomeJoin
    from driftwarden.daemon.pipeline import outcome_batch
    from driftwarden.daemon.typed_events import TypedDecoders

    model = spec()
    mon = ModelMonitor("bench", model, ref)  # built before the clock starts
    typed = TypedDecoders({"bench": model})
    join = OutcomeJoin(ttl=7 * 86400, max_pending=1_000_000)
    keys = [KEY] * BATCH
    t_pred = t_out = 0.0
    for i in range(0, len(msgs), BATCH):
        t0 = time.perf_counter()
        chunk = msgs[i : i + BATCH]
        events = [e for _, e in typed.decode_predictions(keys[: len(chunk)], chunk)[0]]
        batch, held = prediction_columns(events, model, typed)
        mon.observe_predictions(batch)
        join.add_predictions("bench", held)
        t1 = time.perf_counter()
        outcomes = [o for _, o in decode_outcomes(outcome_msgs[i : i + BATCH])[0]]
        pairs = join.add_outcomes("bench", outcomes)
        mon.observe_outcomes(outcome_batch(pairs, model, typed))
        t_pred, t_out = t_pred + t1 - t0, t_out + time.perf_counter() - t1
    return t_pred, t_out


def encode_outcomes(y: np.ndarray) -> list[bytes]:
    enc = msgspec.json.Encoder()
    return [enc.encode({"model_id": "bench", "prediction_id": str(i), "timestamp": 1.7e9 + i + 60,
                        "outcome": int(y[i])}) for i in range(y.size)]


def run_decode(msgs: list[bytes], typed_path: bool) -> tuple[float, float]:
    """Seconds in decoding and in building columns (and what the join holds): the typed path by key,
    or the contract decoder (dict features)."""
    from driftwarden.daemon.columns import prediction_columns
    from driftwarden.daemon.events import decode_predictions
    from driftwarden.daemon.typed_events import TypedDecoders

    model = spec()
    typed = TypedDecoders({"bench": model}) if typed_path else None
    keys = [KEY] * BATCH
    decode_s = columns_s = 0.0
    for i in range(0, len(msgs), BATCH):
        chunk = msgs[i : i + BATCH]
        t0 = time.perf_counter()
        decoded = typed.decode_predictions(keys[: len(chunk)], chunk) if typed else decode_predictions(chunk)
        events = [e for _, e in decoded[0]]
        t1 = time.perf_counter()
        prediction_columns(events, model, typed)
        decode_s, columns_s = decode_s + t1 - t0, columns_s + time.perf_counter() - t1
    return decode_s, columns_s


def run_app(events: int) -> float:
    """Messages/s through the whole in-process daemon: App.handle (alerts and metrics too) + housekeeping.

    The demo's churn model (6 features, categorical ones too), no drift, polls of 500 messages.
    """
    import tempfile

    from driftwarden.daemon.demo import demo_app
    from driftwarden.daemon.pipeline import Message
    from driftwarden.daemon.simulate import Scenario, messages

    with tempfile.TemporaryDirectory() as tmp:
        app = demo_app(Path(tmp))
        stream = [Message(t, 0, i, k, v) for i, (t, k, v) in enumerate(messages(Scenario(events=events, label_delay=500)))]
        t0 = time.perf_counter()
        for i in range(0, len(stream), 500):
            app.handle(stream[i : i + 500])
            app.housekeeping(None)
        elapsed = time.perf_counter() - t0
        app.close()
    return len(stream) / elapsed


def run_ks(repeats: int) -> tuple[float, float]:
    """Seconds of one subject's exact KS statistic on a 5000-event window against a 50k reference:
    the compiled branch and bound the daemon uses vs numpy's search of every window value (both exact)."""
    from driftwarden.detectors.numeric import NumericReference, ks_bounded, ks_statistic

    rng = np.random.default_rng(3)
    ref = NumericReference(rng.normal(size=50_000))
    window = np.sort(rng.normal(size=5000))
    bounded, full = [], []
    for _ in range(repeats * 20):
        t0 = time.perf_counter()
        ks_bounded(ref, window)
        t1 = time.perf_counter()
        ks_statistic(ref.sorted, window)
        bounded.append(t1 - t0)
        full.append(time.perf_counter() - t1)
    return statistics.median(bounded), statistics.median(full)


def held_bytes(msgs: list[bytes]) -> tuple[float, float, float]:
    """Bytes per prediction the outcome join holds: the held form of a typed event (what the daemon
    keeps), the typed event itself, and an event of the contract decoder (dict features)."""
    import tracemalloc

    from driftwarden.daemon.columns import prediction_columns
    from driftwarden.daemon.events import decode_predictions
    from driftwarden.daemon.typed_events import TypedDecoders

    model = spec()
    typed = TypedDecoders({"bench": model})
    keys = [KEY] * len(msgs)

    def held() -> list[object]:
        return prediction_columns([e for _, e in typed.decode_predictions(keys, msgs)[0]], model, typed)[1]

    out = []
    for make in (held, lambda: typed.decode_predictions(keys, msgs)[0], lambda: decode_predictions(msgs)[0]):
        tracemalloc.start()
        kept = make()
        size = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        out.append(size / len(kept))
    return out[0], out[1], out[2]


KERNEL_COST = """
import sys, time
def rss():  # peak RSS of this process's memory map (getrusage's maxrss survives the parent's fork + exec)
    line = next(x for x in open("/proc/self/status") if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024
import numpy, scipy.stats
before = rss()
import numba
imported = rss()
sys.path.insert(0, sys.argv[1])
from driftwarden.detectors.ks_exact import warm_up
t0 = time.perf_counter()
warm_up()
print(imported - before, rss() - imported, time.perf_counter() - t0)
"""


def kernel_cost() -> tuple[float, float, float]:
    """What the compiled KS kernel costs a process (a fresh one): MiB of peak RSS for importing
    numba and for compiling the kernel, and the compile's seconds."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", KERNEL_COST, str(Path(__file__).resolve().parents[1])],
                         check=True, capture_output=True, text=True).stdout.split()
    imported, compiled, seconds = map(float, out)
    return imported, compiled, seconds


def run_pvalues(repeats: int) -> tuple[float, float]:
    """Seconds for the 22 KS p-values of a window where every subject drifted (D in [0.03, 0.2], en = 4545):
    detectors.numeric.ks_pvalue vs scipy.stats.kstwo.sf (what ks_2samp's asymptotic method calls)."""
    from scipy.stats import kstwo

    from driftwarden.detectors.numeric import ks_pvalue

    d = np.linspace(0.03, 0.2, 22)
    ours, theirs = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ks_pvalue(d, 50_000, 5000)
        t1 = time.perf_counter()
        kstwo.sf(d, 4545)
        ours.append(t1 - t0)
        theirs.append(time.perf_counter() - t1)
    return statistics.median(ours), statistics.median(theirs)


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



def throughput(repeats: int, n: int, json_path: Path | None = None) -> None:
    rng = np.random.default_rng(0)
    ref = reference(rng)
    msgs, y = encode_events(rng, n)
    outcome_msgs = encode_outcomes(y)
    prepare_loop()  # as App.run does before its loop
    typed, contract, pred, out, naive = [], [], [], [], []
    for _ in range(repeats):  # every design in every repeat: ratios come from the same moments of a noisy machine
        typed.append(run_decode(msgs, True))
        contract.append(run_decode(msgs, False))
        p, o = run_daemon_path(msgs, outcome_msgs, ref)
        pred.append(p)
        out.append(o)
        naive.append(run_naive(msgs[: n // 5]) * 5)
    med = statistics.median
    per = lambda s: s / n * 1e6  # noqa: E731
    print(f"events per repeat: {n}, repeats: {repeats} (medians), batch: {BATCH}, numeric features: {N_FEATURES}")
    for label, runs in (("typed decode by key", typed), ("contract decode (dict features)", contract)):
        d, c = (med(x) for x in zip(*runs, strict=True))
        print(f"{label + ':':34s} {per(d):6.3f} us/event, + columns (and held form) {per(c):6.3f} us/event")
    p, o, nv = med(pred), med(out), med(naive)
    ratios = [nv_ / p_ for nv_, p_ in zip(naive, pred, strict=True)]
    print(f"predictions (decode, columns, drift, PCA, CBPE, quality, join): {per(p):6.3f} us/event  {n / p:>10,.0f} events/s")
    print(f"outcomes (decode, join, columns, performance x3, ADWIN, realized CBPE): {per(o):6.3f} us/event  "
          f"{n / o:>10,.0f} events/s")
    print(f"daemon path, a prediction and its outcome: {per(p + o):6.3f} us  {2 * n / (p + o):>10,.0f} messages/s")
    print(f"naive: decode + 20 river ADWIN per event: {per(nv):6.3f} us/event  {n / nv:>10,.0f} events/s")
    bounded, full = run_ks(repeats)
    print(f"exact KS of one subject, 5000-event window vs 50k reference: {bounded * 1e6:.0f} us by compiled branch "
          f"and bound ({full * 1e6:.0f} us for numpy's search of every window value)")
    held, typed_bytes, contract_bytes = held_bytes(msgs[:10_000])
    print(f"a prediction waiting in the join: {held:,.0f} bytes held (the typed event: {typed_bytes:,.0f}; "
          f"an event of the contract decoder: {contract_bytes:,.0f})")
    ours_p, scipy_p = run_pvalues(repeats)
    print(f"KS p-values of a window where all 22 subjects drifted: {ours_p * 1e3:.2f} ms (scipy's kstwo.sf: "
          f"{scipy_p * 1e3:.1f} ms)")
    rates = [run_app(n) for _ in range(repeats)]
    print(f"App.handle + housekeeping (demo churn model, 6 features, alerts and metrics): {med(rates):,.0f} messages/s")
    print(f"ours / naive, prediction events per second (median of per-repeat ratios): {med(ratios):5.2f}x")
    imported, compiled, seconds = kernel_cost()
    print(f"the compiled KS kernel's cost to a process: numba import +{imported:.0f} MiB peak RSS, "
          f"compiling +{compiled:.0f} MiB in {seconds:.2f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MiB")
    if json_path is None:
        return
    command = f"bench/detectors.py --repeats {repeats} --events {n}"
    decode_alone = med([d for d, _ in typed])
    typed_total = med([d + c for d, c in typed])
    contract_total = med([d + c for d, c in contract])
    figures = [
        figure(f"the daemon's path, prediction events: typed decode, columns, every default detector, join "
               f"({command}, 20 numeric features)", n / p, "events/s",
               "naive: decode + one river ADWIN per feature per event", n / nv),
        figure("the daemon's path, prediction events", n / p, "events/s", "typed decode alone, same events",
               n / decode_alone),
        figure("the daemon's path, outcome events: decode, join, columns, 3 metrics, ADWIN, realized CBPE", n / o,
               "events/s", "typed decode alone of the predictions", n / decode_alone),
        figure("typed decode by key + columns and held form", per(typed_total), "us/event",
               "contract decoder (dict features) + columns", per(contract_total)),
        figure("exact KS of one subject, 5000-event window vs 50k reference", bounded * 1e6, "us",
               "numpy's search of every window value", full * 1e6),
        figure("KS p-values of a window where all 22 subjects drifted", ours_p * 1e3, "ms", "scipy's kstwo.sf",
               scipy_p * 1e3),
        figure("a prediction waiting in the outcome join (tracemalloc, 10k events)", held, "bytes",
               "the typed event it came from", typed_bytes),
        figure("App.handle + housekeeping (demo churn model: alerts, metrics)", med(rates), "messages/s"),
        figure("compiling the KS kernel (once, before the loop)", compiled, "MiB peak RSS"),
        figure("peak RSS of the detectors bench", peak, "MiB"),
    ]
    json_path.write_text(json.dumps({"bench": "detectors", "command": command, "figures": figures}, indent=1))


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
    ap.add_argument("--json", type=Path, help="write the figures and their baselines here (bench/run_all.py)")
    args = ap.parse_args()
    if args.no_drift:
        no_drift(args.total, 5000, args.seed)
    else:
        throughput(args.repeats, args.events, args.json)

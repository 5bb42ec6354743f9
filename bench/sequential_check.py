"""Detection delay and false alarms of the drift checks, sequential (default) against ``method: window``.

    python bench/sequential_check.py [--no-drift-events 1000000] [--methods sequential,window]

In process (no broker): ``daemon.simulate``'s churn traffic plus a feature
``balance`` correlated 0.8 with ``monthly_spend``, fed to ``ModelMonitor`` in
micro-batches of 1000 with default monitoring, findings through the alert
lifecycle with the default ``for_windows: 2``. A fault starts at prediction
20,000 of a 60,000-prediction stream; its delay is the predictions from the
fault to the first firing alert of the checks it should trip. False alarms:
firing drift/multivariate/missing-rate alerts on the no-drift streams (constant
rate, and a daily cycle of the event rate and of ``age``'s mean against a
reference drawn over whole days), per 1M predictions. The scenario suite
(bench/scenarios.py, branch wt-s) is the measurement of record; this is the
quick check of the sequential drift tests.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from driftwarden.alerts.lifecycle import AlertLifecycle
from driftwarden.daemon.simulate import START, Scenario, generate
from driftwarden.detectors.batch import OutcomeBatch, PredictionBatch
from driftwarden.detectors.monitor import ModelMonitor
from driftwarden.detectors.settings import DriftSettings, MonitorSettings
from driftwarden.detectors.spec import FeatureSpec, ModelSpec

FEATURES = {"age": "numeric", "tenure_days": "numeric", "monthly_spend": "numeric", "support_tickets": "numeric",
            "balance": "numeric", "plan": "categorical", "country": "categorical"}
RATE = 20.0
DAY = 86_400.0
FAULT_AT = 20_000
WATCHED = {"data_drift", "prediction_drift", "multivariate_drift"}

Columns = dict[str, np.ndarray]


def with_balance(cols: Columns, rng: np.random.Generator, correlated: bool = True) -> Columns:
    spend = np.log(cols["monthly_spend"])
    z = (spend - 3.3) / 0.5
    if not correlated:
        z = rng.permutation(z)
    return {**cols, "balance": 0.8 * z + 0.6 * rng.normal(size=z.size)}


def stream(n: int, seed: int, cycle: float = 0.0, t0: float = START) -> Columns:
    """``n`` predictions at ``RATE``; ``cycle`` > 0: the rate varies x(1 +/- 0.8) over a day and
    age's mean by +/- ``cycle`` standard deviations (11 years)."""
    cols = generate(Scenario(events=n, seed=seed), 0, n)
    rng = np.random.default_rng(seed + 99)
    if cycle:
        # event times from a rate that follows the day: invert the cumulative intensity on a fine grid
        grid = np.linspace(0, n / RATE * 1.2, 200_000)
        intensity = RATE * (1 + 0.8 * np.sin(2 * math.pi * grid / DAY))
        cum = np.concatenate(([0.0], np.cumsum(np.diff(grid) * intensity[1:])))
        t = t0 + np.interp(np.arange(n) + 0.5, cum, grid)
        cols["age"] = cols["age"] + cycle * 11 * np.sin(2 * math.pi * (t - START) / DAY)
        cols["timestamp"] = t
    else:
        cols["timestamp"] = t0 + np.arange(n) / RATE
    return with_balance(cols, rng)


def reference(cycle: float, rows: int = 20_000) -> OutcomeBatch:
    cols = generate(Scenario(events=rows, seed=1007), 0, rows)
    rng = np.random.default_rng(5)
    if cycle:  # drawn over whole days
        t = rng.uniform(0, DAY, rows)
        cols["age"] = cols["age"] + cycle * 11 * np.sin(2 * math.pi * t / DAY)
    cols = with_balance(cols, rng)
    return OutcomeBatch(timestamps=np.zeros(rows), prediction_timestamps=np.zeros(rows),
                        y_true=cols["outcome"].astype(str).astype(object),
                        y_pred=cols["prediction"].astype(str).astype(object), score=cols["score"],
                        features={f: cols[f] for f in FEATURES})


def spec(method: str) -> ModelSpec:
    return ModelSpec(task="binary", features={f: FeatureSpec(t) for f, t in FEATURES.items()},  # type: ignore[arg-type]
                     monitoring=MonitorSettings(drift=DriftSettings(method=method)), positive_label="1")  # type: ignore[arg-type]


def run(method: str, ref: OutcomeBatch, cols: Columns) -> list[tuple[float, str]]:
    """(window_end, alert key) of every alert that went firing."""
    mon = ModelMonitor("bench", spec(method), ref)
    lc = AlertLifecycle(for_windows=2)
    fired = []
    n = len(cols["timestamp"])
    for i in range(0, n, 1000):
        sl = slice(i, min(i + 1000, n))
        batch = PredictionBatch(timestamps=cols["timestamp"][sl], features={f: cols[f][sl] for f in FEATURES},
                                prediction=cols["prediction"][sl].astype(str).astype(object), score=cols["score"][sl])
        findings = [f for f in mon.observe_predictions(batch)
                    if f.kind in WATCHED or (f.kind == "quality" and f.detector == "missing_rate")]
        now = float(cols["timestamp"][sl][-1])
        for a in lc.update("bench", {}, findings, now):
            if a.state == "firing":
                fired.append((a.last_degraded_at or now, f"{a.labels['kind']}/{a.labels['detector']}/{a.labels['subject']}"))
    return fired


def fault(name: str, change: Callable[[Columns, np.ndarray, np.random.Generator], None]) -> tuple[str, Columns]:
    cols = stream(60_000, 11)
    after = np.arange(60_000) >= FAULT_AT
    change(cols, after, np.random.default_rng(3))
    return name, cols


def _jump(c: Columns, a: np.ndarray, r: np.random.Generator) -> None:
    c["age"] = np.where(a, c["age"] + 5.5, c["age"])


def _new_category(c: Columns, a: np.ndarray, r: np.random.Generator) -> None:
    c["country"] = np.where(a & (r.random(a.size) < 0.1), "BR", c["country"]).astype(object)


def _new_version(c: Columns, a: np.ndarray, r: np.random.Generator) -> None:
    s = np.clip(c["score"], 1e-4, 1 - 1e-4)  # scores are rounded to 4 digits: 0 and 1 occur
    logit = np.log(s / (1 - s))
    new = 1 / (1 + np.exp(-(0.6 * logit + 0.4)))
    c["score"] = np.where(a, new.round(4), c["score"])
    c["prediction"] = np.where(a, (c["score"] > 0.5).astype(np.int64), c["prediction"])


def _nulls(c: Columns, a: np.ndarray, r: np.random.Generator) -> None:
    c["monthly_spend"] = np.where(a & (r.random(a.size) < 0.3), np.nan, c["monthly_spend"])


def _mix(c: Columns, a: np.ndarray, r: np.random.Generator) -> None:
    # plan .55/.35/.10 -> .40/.38/.22: PSI 0.145
    moved = r.choice(np.array(["basic", "pro", "enterprise"], dtype=object), a.size, p=[0.40, 0.38, 0.22])
    c["plan"] = np.where(a, moved, c["plan"]).astype(object)


def _decorrelate(c: Columns, a: np.ndarray, r: np.random.Generator) -> None:
    loose = with_balance(c, r, correlated=False)["balance"]
    c["balance"] = np.where(a, loose, c["balance"])


FAULTS = [("jump 0.5 sd (age)", _jump), ("new category 10% (country)", _new_category),
          ("new version's scores", _new_version), ("30% nulls (monthly_spend)", _nulls),
          ("plan mix PSI 0.145", _mix), ("correlation 0.8 -> 0", _decorrelate)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-drift-events", type=int, default=1_000_000)
    ap.add_argument("--methods", default="sequential,window")
    ap.add_argument("--cycle", type=float, default=0.25, help="daily cycle of age's mean, in sd")
    args = ap.parse_args()
    methods = args.methods.split(",")
    plain_ref = reference(0.0)
    print(f"{'scenario':<30}" + "".join(f"{m:>42}" for m in methods))
    for name, change in FAULTS:
        _, cols = fault(name, change)
        row = f"{name:<30}"
        for m in methods:
            fired = run(m, plain_ref, cols)
            t_fault = float(cols["timestamp"][FAULT_AT])
            early = [k for t, k in fired if t < t_fault]
            late = [(t, k) for t, k in fired if t >= t_fault]
            delay = f"{round((late[0][0] - t_fault) * RATE) + 1} {late[0][1].split('/', 1)[1]}" if late else "missed"
            row += f"{delay + (f' +{len(early)} early' if early else ''):>42}"
        print(row, flush=True)
    for label, cycle in (("no drift", 0.0), (f"daily cycle {args.cycle} sd", args.cycle)):
        cols = stream(args.no_drift_events, 21, cycle)
        ref = reference(cycle)
        row = f"{label:<30}"
        for m in methods:
            t0 = time.perf_counter()
            fired = run(m, ref, cols)
            per_m = len(fired) / args.no_drift_events * 1e6
            row += f"{f'{per_m:.2f} per 1M ({len(fired)}: {sorted({k for _, k in fired})[:2]})':>42}"
            print(f"  [{m}: {time.perf_counter() - t0:.0f} s]", file=sys.stderr, flush=True)
        print(row, flush=True)


if __name__ == "__main__":
    main()

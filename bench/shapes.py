"""False alarms on no-drift streams of column shapes the scenario suite does not have.

    python bench/shapes.py [--events 1000000] [--reference-rows 50000,3000] [--tasks binary,regression,multiclass]

The scenario suite (bench/scenarios.py) has one credit model. This feeds other shapes a
user's model has, drawn from one fixed distribution (no drift), straight through
``ModelMonitor`` with default monitoring, in blocks of 500 predictions with their outcomes:

* ``merchant``: 20,000 categories, Zipf(1.05) (a long tail the reference cannot hold);
* ``zipcode``: 300 categories, Zipf(1.1); ``device``: two categories, one 3 %;
* ``n_items``: Poisson(0.3) (mostly zeros); ``amount``: Pareto(1.5) (infinite variance);
* ``const``: one value; ``flag``: 0/1 at 2 %; ``half_missing``: normal, half null;
* ``bimodal``: a two-normal mixture; ``rounded``: a normal rounded to tens.

Prints, per task and reference size, every subject that alarmed (degraded findings) and
false alarms per 1M predictions. Every alarm here is false.
"""

from __future__ import annotations

import argparse
import collections
import time

import numpy as np

from driftwarden.detectors.batch import OutcomeBatch, PredictionBatch
from driftwarden.detectors.monitor import ModelMonitor
from driftwarden.detectors.spec import FeatureSpec, ModelSpec

BLOCK = 500
TYPES = {"merchant": "categorical", "zipcode": "categorical", "device": "categorical", "n_items": "numeric",
         "amount": "numeric", "const": "numeric", "flag": "numeric", "half_missing": "numeric",
         "bimodal": "numeric", "rounded": "numeric"}
CLASSES = np.array(["a", "b", "c"], dtype=object)


def _zipf(categories: int, exponent: float) -> tuple[np.ndarray, np.ndarray]:
    p = 1.0 / np.arange(1, categories + 1) ** exponent
    return np.array([f"c{i}" for i in range(categories)], dtype=object), p / p.sum()


MERCHANTS, ZIPCODES = _zipf(20_000, 1.05), _zipf(300, 1.1)


def draw(rng: np.random.Generator, n: int, task: str, t0: float) -> tuple[PredictionBatch, OutcomeBatch]:
    f: dict[str, np.ndarray] = {}
    for name, (names, p) in (("merchant", MERCHANTS), ("zipcode", ZIPCODES)):
        f[name] = names[rng.choice(names.size, n, p=p)]
    f["device"] = np.where(rng.random(n) < 0.03, "tablet", "phone").astype(object)
    f["n_items"] = rng.poisson(0.3, n).astype(np.float64)
    f["amount"] = (rng.pareto(1.5, n) * 20).round(2)
    f["const"] = np.ones(n)
    f["flag"] = (rng.random(n) < 0.02).astype(np.float64)
    f["half_missing"] = np.where(rng.random(n) < 0.5, np.nan, rng.normal(0, 1, n))
    f["bimodal"] = np.where(rng.random(n) < 0.3, rng.normal(-2, 0.3, n), rng.normal(1, 0.5, n)).round(3)
    f["rounded"] = rng.normal(50, 10, n).round(-1)
    logit = (-1 + 0.8 * f["n_items"] - 0.01 * np.minimum(f["amount"], 200) + 0.5 * (f["device"] == "tablet")
             + 0.3 * f["bimodal"])
    p = 1 / (1 + np.exp(-logit))
    ts = t0 + np.arange(n) * 0.1
    score: np.ndarray | None = None
    class_scores: dict[str, np.ndarray] | None = None
    if task == "binary":
        score = p.round(4)
        y = np.where(rng.random(n) < p, "1", "0").astype(object)
        pred = np.where(score > 0.5, "1", "0").astype(object)
    elif task == "regression":
        pred = (30 * p).round(2)
        y = (pred + rng.normal(0, 3, n)).round(2)
    else:
        e = np.exp(np.stack([np.zeros(n), logit, 0.5 * f["bimodal"] - 0.2 * f["n_items"]], axis=1))
        probs = e / e.sum(axis=1, keepdims=True)
        y = CLASSES[(rng.random(n)[:, None] > probs.cumsum(axis=1)).sum(axis=1).clip(0, 2)]
        pred = CLASSES[probs.argmax(axis=1)]
        class_scores = {str(c): probs[:, i].round(4) for i, c in enumerate(CLASSES)}
    return (PredictionBatch(ts, f, pred, score, class_scores=class_scores),
            OutcomeBatch(ts + 1.0, ts, y, pred, score, f, class_scores=class_scores))


def run(task: str, reference_rows: int, events: int, seed: int) -> tuple[collections.Counter[str], float]:
    spec = ModelSpec(task=task, features={k: FeatureSpec(type=v) for k, v in TYPES.items()})  # type: ignore[arg-type]
    rng = np.random.default_rng(seed)
    _, reference = draw(rng, reference_rows, task, 0.0)
    started = time.perf_counter()
    monitor = ModelMonitor("shapes", spec, reference)
    alarms: collections.Counter[str] = collections.Counter()
    t = 1e6
    for _ in range(0, events, BLOCK):
        predictions, outcomes = draw(rng, BLOCK, task, t)
        t += BLOCK * 0.1
        found = monitor.observe_predictions(predictions) + monitor.observe_outcomes(outcomes) + monitor.tick(t)
        alarms.update(f"{f.kind}/{f.detector} {f.subject}" for f in found if f.degraded)
    return alarms, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--reference-rows", default="50000,3000")
    parser.add_argument("--tasks", default="binary,regression,multiclass")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    print(f"{'task':<11}{'reference':>10}{'alarms':>8}{'per 1M':>8}{'s':>7}  subjects")
    for task in args.tasks.split(","):
        for rows in (int(r) for r in args.reference_rows.split(",")):
            alarms, seconds = run(task, rows, args.events, args.seed)
            total = sum(alarms.values())
            subjects = ", ".join(f"{k} ({v})" for k, v in alarms.most_common()) or "-"
            print(f"{task:<11}{rows:>10,}{total:>8}{total / args.events * 1e6:>8.1f}{seconds:>7.0f}  {subjects}",
                  flush=True)


if __name__ == "__main__":
    main()

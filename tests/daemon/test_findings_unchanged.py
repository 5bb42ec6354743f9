"""What a model finds on two quick scenario streams (a shift, a decorrelation) is what it found
before the memory and start-up work on detector construction (float32 references, shared
calibration, vectorised reference subsampling, the PCA from a covariance matrix).

The recorded findings (``data/findings_quick.json.gz``: every finding's subject, time, verdict,
statistic and threshold, in order) were written by this file's ``record`` from the code before that
work. A change of detection shows here first; if one is meant (a new threshold, a new test), rewrite
the record and say why in the commit::

    .venv/bin/python tests/daemon/test_findings_unchanged.py
"""

from __future__ import annotations

import gzip
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from driftwarden.daemon.app import App
from driftwarden.daemon.config import parse_config
from driftwarden.daemon.demo import DeadLetterFile
from driftwarden.daemon.pipeline import Message
from driftwarden.daemon.scenarios import FEATURES, Stream, event_times, messages, write_reference

RECORD = Path(__file__).with_name("data") / "findings_quick.json.gz"
STREAMS = [Stream("shift", 30_000, fault="shift", onset=12_345, seed=100),
           Stream("decorrelate", 30_000, fault="decorrelate", onset=12_345, seed=107)]
REL = 1e-6  # statistics (recorded to 10 digits): float summation order may differ, nothing more


def findings_of(stream: Stream, directory: Path) -> list[list[Any]]:
    """Every finding the daemon hands to alerting for ``stream`` (one model, default settings)."""
    write_reference(directory / "reference.parquet", stream, rows=20_000)
    config = parse_config({
        "models": [{"id": stream.model_id, "task": "binary", "reference": "reference.parquet",
                    "features": {name: {"type": kind} for name, kind in FEATURES.items()}}],
        "state": {"path": "state/driftwarden.db", "checkpoint_interval": "1h"},
        "alerting": {"receivers": {"oncall": {"type": "log"}}, "route": {"receiver": "oncall"}}},
        base_dir=str(directory))
    now = [float(event_times(stream, np.array([0]))[0])]
    app = App(config, DeadLetterFile(directory / "dead-letters.jsonl"), clock=lambda: now[0], notifiers={})
    app.pipeline.on_degraded = None
    seen: list[list[Any]] = []
    inner = app.alerts.ingest

    def ingest(model_id: str, labels: Any, findings: list[Any], at: float) -> Any:
        seen.extend([f.kind, f.detector, f.subject, f.degraded, f.window_end, f.statistic, f.threshold]
                    for f in findings)
        return inner(model_id, labels, findings, at)

    setattr(app.alerts, "ingest", ingest)  # noqa: B010 (observe, change nothing)
    key, offsets, batch = stream.model_id.encode(), {"predictions": 0, "outcomes": 0}, []
    for topic, value, index in messages(stream):
        batch.append(Message(topic, 0, offsets[topic], key, value))
        offsets[topic] += 1
        if topic == "predictions":
            now[0] = float(event_times(stream, np.array([index]))[0])
        if len(batch) >= 500:
            app.handle(batch)
            batch.clear()
    app.handle(batch)
    app.close()
    return seen


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=REL, abs_tol=1e-9)
    return bool(a == b)


@pytest.mark.parametrize("stream", STREAMS, ids=[s.name for s in STREAMS])
def test_findings_on_a_scenario_stream_are_the_recorded_ones(stream: Stream, tmp_path: Path) -> None:
    expected = json.loads(gzip.decompress(RECORD.read_bytes()))[stream.name]
    got = json.loads(json.dumps(findings_of(stream, tmp_path)))  # the record's floats: JSON round trip
    assert len(got) == len(expected)
    assert sum(f[3] for f in got) > 0  # the fault is found: the record is not one of silence
    for g, e in zip(got, expected, strict=True):
        assert all(_same(x, y) for x, y in zip(g, e, strict=True)), (g, e)


def record() -> None:
    """Write ``data/findings_quick.json.gz`` from the code as it is."""
    out = {}
    for stream in STREAMS:
        with tempfile.TemporaryDirectory() as tmp:
            out[stream.name] = findings_of(stream, Path(tmp))
        print(stream.name, len(out[stream.name]), "findings,", sum(f[3] for f in out[stream.name]), "degraded")
    RECORD.parent.mkdir(exist_ok=True)
    rounded = {k: [[float(f"{x:.10g}") if isinstance(x, float) else x for x in f] for f in v] for k, v in out.items()}
    RECORD.write_bytes(gzip.compress(json.dumps(rounded, separators=(",", ":")).encode(), mtime=0))


if __name__ == "__main__":
    record()

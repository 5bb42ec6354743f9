"""Speed work changes how findings are computed, never what they are.

Two scenario streams (:mod:`daemon.scenarios`: an ``age`` shift and a concept change) go
through ``App.handle`` and ``housekeeping`` in poll-sized batches, on the events' own clock;
every finding that reaches the alert lifecycle (kind, detector, subject, statistic, threshold,
verdict, times, p-value, severity, and a digest of its summary and details) is compared with the
findings recorded in ``tests/daemon/golden/`` before the hot path was rewritten.

A change that is *meant* to change detection (another statistic, another threshold) rewrites
the files with ``DRIFTWARDEN_WRITE_GOLDEN=1 pytest tests/daemon/test_golden_findings.py``; say
so in its commit.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from driftwarden.daemon.app import App
from driftwarden.daemon.config import parse_config
from driftwarden.daemon.pipeline import Message
from driftwarden.daemon.scenarios import FEATURES, Stream, event_times, messages, write_reference
from driftwarden.detectors.findings import Finding

GOLDEN = Path(__file__).with_name("golden")
STREAMS = {
    "shift": Stream("shift", 9_000, fault="shift", onset=3_000, seed=5),
    "concept": Stream("concept", 9_000, fault="concept", onset=3_000, seed=6),
}
BATCH = 700  # messages a poll: not a multiple of the block (500), so blocks straddle polls


class _Discard:
    def send(self, message: Message, reason: str) -> None:
        raise AssertionError(f"no dead letter expected: {reason}")


DIGITS = 8  # significant digits of the floats in a finding's text (its summary and details) when digested
REL = 1e-9  # relative difference allowed between a finding's numbers and the recorded ones


def _shown(x: Any) -> Any:
    """``x`` with every float to :data:`DIGITS` significant digits: BLAS's sums (the PCA's) differ in
    their last bits between CPUs (AVX-512 or not), and the files were not written on every machine."""
    if isinstance(x, float):
        return float(f"{x:.{DIGITS}g}")
    if isinstance(x, dict):
        return {k: _shown(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_shown(v) for v in x]
    return x


def _row(f: Finding) -> dict[str, Any]:
    text = json.dumps(_shown([f.summary, f.details]), sort_keys=True, default=str)
    return {"kind": f.kind, "detector": f.detector, "subject": f.subject, "statistic": repr(f.statistic),
            "threshold": repr(f.threshold), "degraded": f.degraded, "window_end": repr(f.window_end),
            "window_size": f.window_size, "p_value": repr(f.p_value), "severity": f.severity,
            "known_at": repr(f.known_at), "text": hashlib.sha256(text.encode()).hexdigest()[:16]}


def findings_of(stream: Stream, directory: Path) -> list[dict[str, Any]]:
    """Every finding the alert lifecycle received for ``stream``, in order."""
    write_reference(directory / "reference.parquet", stream, rows=20_000)
    config = parse_config({
        "models": [{"id": stream.model_id, "task": "binary", "reference": "reference.parquet",
                    "features": {name: {"type": kind} for name, kind in FEATURES.items()}}],
        "state": {"path": "state/driftwarden.db", "checkpoint_interval": "1h"},
        "alerting": {"receivers": {"oncall": {"type": "log"}}, "route": {"receiver": "oncall"}},
    }, base_dir=str(directory))
    now = [float(event_times(stream, np.array([0]))[0])]
    app = App(config, _Discard(), clock=lambda: now[0])
    app.pipeline.on_degraded = None  # no reports: what is compared is the findings
    seen: list[dict[str, Any]] = []
    inner = app.alerts.ingest

    def ingest(model_id: str, labels: Any, findings: list[Finding], at: float) -> Any:
        seen.extend(map(_row, findings))
        return inner(model_id, labels, findings, at)

    setattr(app.alerts, "ingest", ingest)  # noqa: B010 (observe, change nothing)
    offsets = {"predictions": 0, "outcomes": 0}
    batch: list[Message] = []
    predicted = 0
    key = stream.model_id.encode()
    for topic, value, index in messages(stream):
        batch.append(Message(topic, 0, offsets[topic], key, value))
        offsets[topic] += 1
        predicted = max(predicted, index + 1) if topic == "predictions" else predicted
        if len(batch) == BATCH:
            now[0] = float(event_times(stream, np.array([predicted - 1]))[0])
            app.handle(batch)
            app.housekeeping()
            batch = []
    app.handle(batch)
    app.pipeline.finish(now[0] + 900)
    app.close()
    return seen


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_findings_are_the_recorded_ones(name: str, tmp_path: Path) -> None:
    found = findings_of(STREAMS[name], tmp_path)
    path = GOLDEN / f"{name}.json"
    if os.environ.get("DRIFTWARDEN_WRITE_GOLDEN"):
        path.write_text("[\n" + ",\n".join(json.dumps(r, sort_keys=True) for r in found) + "\n]\n")
    expected = json.loads(path.read_text())
    assert len(found) == len(expected)
    assert any(r["degraded"] for r in expected)  # the fault was found: the comparison covers verdicts that fire
    for i, (got, want) in enumerate(zip(found, expected, strict=True)):
        assert _close(got) == _close(want), f"finding {i} differs"
        for k in NUMBERS:
            assert (got[k] == want[k] or math.isclose(float(got[k]), float(want[k]), rel_tol=REL)), f"finding {i}: {k}"


NUMBERS = ("statistic", "threshold", "p_value")  # compared within REL (the rest exactly)


def _close(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in NUMBERS}

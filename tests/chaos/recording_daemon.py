"""``driftwarden run`` that also appends every finding it hands to the alerts to a JSON-lines file.

``python -m tests.chaos.recording_daemon run -c CONFIG`` is the real CLI (``driftwarden.daemon.cli``)
with one addition: ``AlertPipeline.ingest`` first writes each finding (but staleness, which states
the age at the tick) as ``[model, kind, detector, subject, window_end, window_size, statistic, degraded]`` to
the file named by ``DRIFTWARDEN_TEST_FINDINGS`` (what ``tests/test_kafka_models.py`` compares, and the
window's size).
Each batch of findings is one ``os.write`` to an ``O_APPEND`` file: a kill -9 loses no line the
daemon has acted on. A restarted daemon processes again what its last checkpoint did not cover,
so a window can be written twice: readers compare sets (and refuse two values for one window).
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from driftwarden.alerts.pipeline import AlertPipeline
from driftwarden.daemon.cli import main
from driftwarden.detectors.findings import Finding

ENV = "DRIFTWARDEN_TEST_FINDINGS"
Row = tuple[str, str, str, str, float, int, float | None, bool]


def row(model_id: str, f: Finding) -> Row:
    statistic = None if math.isnan(f.statistic) else round(f.statistic, 9)
    return (model_id, f.kind, f.detector, f.subject, f.window_end, f.window_size, statistic, bool(f.degraded))


def install(path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    ingest = AlertPipeline.ingest

    def recording(self: AlertPipeline, model_id: str, labels: Any, findings: Sequence[Finding], now: float) -> Any:
        lines = [json.dumps(row(model_id, f)) for f in findings if f.detector != "staleness"]
        if lines:
            os.write(fd, ("\n".join(lines) + "\n").encode())
        return ingest(self, model_id, labels, findings, now)

    AlertPipeline.ingest = recording  # type: ignore[method-assign,assignment]


def read_findings(path: Path) -> dict[str, set[Row]]:
    """Per model, the distinct findings written to ``path`` (a torn last line is not a finding)."""
    out: dict[str, set[Row]] = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        out.setdefault(r[0], set()).add(tuple(r))  # type: ignore[arg-type]
    return out


if __name__ == "__main__":
    install(os.environ[ENV])
    sys.exit(main(sys.argv[1:]))

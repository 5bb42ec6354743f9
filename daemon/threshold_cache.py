"""CUSUM thresholds solved by earlier runs, kept beside the state: a restart does not solve them again.

The accuracy CUSUMs' thresholds (:func:`detectors.cusum.threshold_for`) are a pure function of
(p0, p1, target), ~9 sparse solves each (~10-20 ms a model); a restart of the same models asks for
the same ones. They are kept in one JSON file next to the state database, under the name of the
chain that solved them (:data:`detectors.cusum.CHAIN`): a file from another chain, or one that
cannot be read, is ignored (every threshold is solved again). Floats round-trip JSON exactly.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from driftwarden.detectors import cusum

log = logging.getLogger(__name__)


def threshold_file(state_path: Path) -> Path:
    """The thresholds file that goes with the state database ``state_path``."""
    return state_path.with_name(state_path.name + ".thresholds.json")


def load_thresholds(path: Path) -> int:
    """Remember the thresholds saved at ``path`` (if it holds this chain's); how many."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("chain") != cusum.CHAIN:
            return 0
        rows = [(float(a), float(b), float(c), float(h)) for a, b, c, h in data["thresholds"]]
    except FileNotFoundError:
        return 0
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("%s: cannot read the saved CUSUM thresholds (%s); they are solved again", path, exc)
        return 0
    cusum.remember_thresholds(rows)
    return len(rows)


def save_thresholds(path: Path) -> None:
    """Write every threshold solved or remembered so far (atomically: a temporary file renamed)."""
    rows = cusum.solved_thresholds()
    if not rows:
        return
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"chain": cusum.CHAIN, "thresholds": rows}), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:  # a cache: the daemon runs without it
        log.warning("%s: cannot save the CUSUM thresholds (%s)", path, exc)

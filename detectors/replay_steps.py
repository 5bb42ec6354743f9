"""What a replay needs to recompute a sequential finding: a block's rows and the CUSUM state before it.

A sequential check (the drift, PCA and estimated-performance CUSUMs of prediction blocks,
the realized-performance CUSUMs of outcome blocks, accuracy's CUSUMs per outcome) is a
function of the state its detectors held before a block and of that block's rows. A window of rows alone cannot give it: the
CUSUM's sum carries every earlier block. :class:`ReplayStep` is that pair. A monitor keeps
the last block (or batch) of each kind that had a degraded finding (capturing the state of every block
costs a few microseconds, its rows are the block's own arrays); a report's replay bundle
carries them, and ``ModelMonitor.replay`` recomputes the block's findings exactly.

>>> step = ReplayStep("prediction_block", 12.5, {"drift": {}}, {"t": np.array([1.0, 2.0]),
...                   "f:plan": np.array(["a", None], dtype=object)})
>>> again = ReplayStep.from_json(step.to_json())
>>> again.kind, again.end, again.rows["t"].tolist(), again.rows["f:plan"].tolist()
('prediction_block', 12.5, [1.0, 2.0], ['a', None])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from driftwarden.detectors.window import decode_column, encode_column

BlockKind = Literal["prediction_block", "outcome_block"]  # kept in a monitor's last-windows store
StepKind = Literal[BlockKind, "accuracy_batch"]
STEP_KINDS: tuple[StepKind, ...] = get_args(StepKind)


@dataclass(frozen=True, eq=False)  # equal when the same step: its rows are arrays
class ReplayStep:
    """One block's rows (as its detectors saw them) and the sequential state before it.

    ``kind``: ``prediction_block`` (rows ``t``, ``prediction``, ``score``, ``f:<feature>``),
    ``outcome_block`` (``t``, ``y_true``, ``y_pred``, ``score``, ``p:<class>``) or
    ``accuracy_batch`` (a batch of outcomes as accuracy's per-outcome CUSUMs saw it: ``t``,
    ``prediction_t``, ``y_true``, ``y_pred``, ``f:<feature>``, and ``recent:<column>``, the
    recent outcomes before it that a verdict's "since the change" reads); ``end``: the
    ``window_end`` of its (last) findings.
    """

    kind: StepKind
    end: float
    state: dict[str, Any]
    rows: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(next(iter(self.rows.values()))) if self.rows else 0

    def to_json(self) -> dict[str, Any]:
        """JSON-safe (numeric columns exact, as base64)."""
        return {"kind": self.kind, "end": self.end, "state": self.state,
                "rows": {k: encode_column(v) for k, v in self.rows.items()}}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ReplayStep:
        if d.get("kind") not in STEP_KINDS:
            raise ValueError(f"replay step kind {d.get('kind')!r} is not one of {', '.join(STEP_KINDS)}")
        return cls(d["kind"], float(d["end"]), dict(d["state"]), {k: decode_column(v) for k, v in d["rows"].items()})

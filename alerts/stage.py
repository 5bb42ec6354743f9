"""The one interface every filtering stage implements: alerts in, alerts out, ``now`` passed in.

The pipeline (``alerts/pipeline.py``) chains them: inhibit -> silence, then per group
wait -> dedup -> outbox (record before send) -> deliver (retry).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from driftwarden.alerts.model import Alert


class Stage(Protocol):
    def __call__(self, alerts: Sequence[Alert], now: float) -> list[Alert]:
        """Return the alerts that pass this stage."""
        ...

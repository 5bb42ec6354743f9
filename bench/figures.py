"""The figures a benchmark writes with ``--json`` for bench/run_all.py (one shape for every script)."""

from __future__ import annotations

from typing import Any


def figure(what: str, value: float, unit: str, baseline: str | None = None,
           baseline_value: float | None = None) -> dict[str, Any]:
    """One figure for bench/run_all.py: a median, and the baseline it is compared with in the same run."""
    return {"what": what, "value": value, "unit": unit, "baseline": baseline, "baseline_value": baseline_value}

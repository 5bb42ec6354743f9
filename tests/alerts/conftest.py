from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from driftwarden.alerts.notify import DeliveryResult, Notification
from driftwarden.alerts.settings import AlertingSettings
from driftwarden.detectors.findings import Finding
from tests.alerts.servers import CiHandler, CiState, SlackHandler, SlackState, serve

T0 = 1_764_478_800.0  # 2025-11-30T05:00:00Z, a Sunday
SECRET = "ci-shared-secret"


def finding(
    subject: str = "age",
    degraded: bool = True,
    t: float = T0,
    *,
    kind: str = "data_drift",
    detector: str = "psi",
    severity: str = "warning",
    statistic: float | None = None,
) -> Finding:
    stat = statistic if statistic is not None else (0.31 if degraded else 0.02)
    return Finding(
        kind,  # type: ignore[arg-type]
        detector,
        subject,
        stat,
        0.2,
        degraded,
        t,
        5000,
        severity=severity,  # type: ignore[arg-type]
        details={"top_suspects": "plan=pro (+18%), country=DE (+9%)"} if degraded else {},
    )


def settings(**raw: Any) -> AlertingSettings:
    return msgspec.convert(raw, AlertingSettings)


class Recorder:
    """A notifier that records what it was asked to send (for pipeline-logic tests)."""

    def __init__(self, results: list[DeliveryResult] | None = None) -> None:
        self.sent: list[Notification] = []
        self.results = results or []

    def notify(self, n: Notification) -> DeliveryResult:
        self.sent.append(n)
        return self.results.pop(0) if self.results else DeliveryResult(ok=True, remote_id=f"C1:{len(self.sent)}")


@pytest.fixture
def slack() -> Iterator[tuple[str, SlackState]]:
    state = SlackState()
    with serve(SlackHandler, state) as url:
        yield url + "/api/", state


@pytest.fixture
def ci() -> Iterator[tuple[str, CiState]]:
    state = CiState(SECRET, now=T0)
    with serve(CiHandler, state) as url:
        yield url, state

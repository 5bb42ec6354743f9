"""The daemon's HTTP port: health, Prometheus metrics, reports (and nothing outside them)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from driftwarden.daemon.http_server import HttpServer
from driftwarden.daemon.metrics import Metrics


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read()


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    reports = tmp_path / "reports"
    (reports / "churn" / "r1").mkdir(parents=True)
    (reports / "churn" / "r1" / "report.html").write_text("<html>report</html>")
    (tmp_path / "secret.txt").write_text("not for the web")
    metrics = Metrics()
    metrics.events.labels(topic="predictions", model="churn").inc(1)
    healthy = {"ok": True}
    waiting = [2]  # events a model holds until /metrics is read (the daemon's App.run_waiting)

    def run_waiting() -> None:
        metrics.events.labels(topic="predictions", model="churn").inc(waiting.pop() if waiting else 0)

    srv = HttpServer("127.0.0.1", 0, metrics, reports, lambda: dict(healthy), before_metrics=run_waiting)
    srv.start()
    try:
        yield f"http://127.0.0.1:{srv.address[1]}", healthy
    finally:
        srv.stop()


def test_health_metrics_and_reports(server) -> None:  # type: ignore[no-untyped-def]
    base, healthy = server
    status, _, body = get(base + "/healthz")
    assert status == 200 and json.loads(body)["ok"] is True
    healthy["ok"] = False
    assert get(base + "/healthz")[0] == 503
    status, kind, body = get(base + "/metrics")
    assert status == 200 and 'driftwarden_events_total{model="churn",topic="predictions"} 3.0' in body.decode()
    status, kind, body = get(base + "/reports/churn/r1/report.html")
    assert status == 200 and kind.startswith("text/html") and body == b"<html>report</html>"


@pytest.mark.parametrize("path", ["/reports/../secret.txt", "/reports/%2e%2e/secret.txt", "/reports/churn", "/nope"])
def test_nothing_outside_the_reports_directory_is_served(server, path: str) -> None:  # type: ignore[no-untyped-def]
    base, _ = server
    status, _, body = get(base + path)
    assert status == 404 and b"not for the web" not in body


def test_health_command_exits_0_when_healthy_and_1_otherwise(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import yaml

    from driftwarden.daemon.cli import main
    from driftwarden.daemon.simulate import Scenario, write_reference

    base, healthy = server
    write_reference(tmp_path / "ref.parquet", Scenario(), rows=300)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "http": {"host": "127.0.0.1", "port": int(base.rsplit(":", 1)[1])},
        "models": [{"id": "m", "task": "binary", "reference": "ref.parquet", "features": {"age": {"type": "numeric"}}}],
    }))
    assert main(["health", "-c", str(config)]) == 0
    healthy["ok"] = False
    assert main(["health", "-c", str(config)]) == 1
    from tests.broker.kafka import free_port

    config.write_text(config.read_text().replace(base.rsplit(":", 1)[1], str(free_port())))
    assert main(["health", "-c", str(config), "--timeout", "1"]) == 1  # nothing listening

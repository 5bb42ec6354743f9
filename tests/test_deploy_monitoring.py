"""The Grafana dashboard queries only what the daemon serves; compose provisions Prometheus and Grafana.

The daemon runs in process on the demo scenario (drift, concept drift, malformed messages,
late labels) so that findings, alerts, joins, dead letters and lag all reach /metrics; every
PromQL expression of the dashboard is parsed (promql-parser: a syntax error fails too) and
each metric it selects, and each label it matches or groups by, must be in that exposition.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import promql_parser as pq
import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from driftwarden.daemon.demo import DEMO_CONFIG, demo_app
from driftwarden.daemon.pipeline import Message
from driftwarden.daemon.simulate import START, Scenario, messages

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "driftwarden.json"
SCRAPE_LABELS = {"job", "instance"}  # added by Prometheus to every scraped series
GRAFANA_RANGES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "6h"}


class ReplaySource:
    """The scenario's messages in poll-sized batches, with the lag a Kafka consumer would report."""

    def __init__(self, batch: list[Message], size: int) -> None:
        self.pending = batch
        self.size = size
        self.committed: dict[tuple[str, int], int] = {}

    def poll(self) -> list[Message]:
        out, self.pending = self.pending[:self.size], self.pending[self.size:]
        return out

    def lag(self) -> dict[tuple[str, int], int]:
        behind: dict[tuple[str, int], int] = defaultdict(int)
        for m in self.pending:
            behind[(m.topic, m.partition)] += 1
        return dict(behind)

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        self.committed.update(offsets)

    def close(self) -> None:
        pass


class DeadLetterList:
    def __init__(self) -> None:
        self.sent: list[tuple[Message, str]] = []

    def send(self, message: Message, reason: str) -> None:
        self.sent.append((message, reason))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Metric name -> label names of the samples the daemon serves after the demo scenario."""
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    data["alerting"]["for_windows"] = 1
    data["models"][0]["monitoring"]["traffic"] = {
        "label_delay_seconds": 60, "min_label_coverage": 0.5, "max_label_lag_seconds": 3600}
    scenario = Scenario(events=12_000, covariate_shift_at=4000, concept_drift_at=8000, malformed_every=997)
    fed = {"predictions": 0, "outcomes": 0}
    app = demo_app(tmp_path_factory.mktemp("dashboard"), data, clock=lambda: START + fed["predictions"] / scenario.rate)
    dead = DeadLetterList()
    app.pipeline.dead_letters = dead
    offsets = {"predictions": 0, "outcomes": 0}
    stream = []
    for topic, key, value in messages(scenario):
        stream.append(Message(topic, 0, offsets[topic], key, value))
        offsets[topic] += 1
    source = ReplaySource(stream, 1000)
    try:
        while batch := source.poll():
            fed["predictions"] += sum(m.topic == "predictions" for m in batch)
            app.handle(batch)
            app.housekeeping(source)
    finally:
        app.close()
    assert dead.sent and app.alerts.lifecycle.alerts  # the scenario reached what the dashboard shows
    names: dict[str, set[str]] = defaultdict(set)
    for family in text_string_to_metric_families(generate_latest(app.metrics.registry).decode()):
        for sample in family.samples:
            names[sample.name] |= set(sample.labels)
    assert app.metrics.registry.get_sample_value("driftwarden_pending_joins", {"model": "churn"}) == \
        app.join.pending_of("churn")
    return dict(names)


def dashboard_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target and every query variable (``label_values(expr, label)``)."""
    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for p in items:
            yield p
            yield from panels(p.get("panels", []))

    for p in panels(dashboard["panels"]):
        for t in p.get("targets", []):
            yield f"panel {p['title']!r} {t['refId']}", t["expr"]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
            assert match, f"variable {var['name']}: {query}"
            yield f"variable {var['name']}", f"group by ({match[2]}) ({match[1]})"


def for_parser(expr: str) -> str:
    for variable, value in GRAFANA_RANGES.items():
        expr = expr.replace(variable, value)
    assert "$" not in re.sub(r'"[^"]*"', "", expr), f"a Grafana variable outside a label value: {expr}"
    return expr


def selectors(expr: pq.Expr) -> tuple[list[pq.VectorSelector], set[str]]:
    """The vector selectors of ``expr`` and the label names it groups or matches on."""
    found: list[pq.VectorSelector] = []
    grouping: set[str] = set()

    def visit(node: pq.Expr) -> bool:
        if isinstance(node, pq.VectorSelector):
            found.append(node)
        elif isinstance(node, pq.AggregateExpr) and node.modifier is not None:
            grouping.update(node.modifier.labels)
        elif isinstance(node, pq.BinaryExpr) and node.modifier is not None:
            if node.modifier.matching is not None:
                grouping.update(node.modifier.matching.labels)
            grouping.update(node.modifier.group_labels or [])
        return True

    pq.walk(expr, visit)
    return found, grouping


def test_the_promql_helpers_see_through_functions_ranges_and_modifiers() -> None:
    expr = pq.parse('sum by (model) (rate(a_total{model=~"$m"}[5m])) / on (model) group_left (kind) b > bool 0')
    found, grouping = selectors(expr)
    assert [s.name for s in found] == ["a_total", "b"]
    assert [m.name for m in found[0].matchers.matchers] == ["model"]
    assert grouping == {"model", "kind"}
    with pytest.raises(ValueError):
        pq.parse(for_parser("sum(rate(a_total[$__rate_interval])"))


def test_every_dashboard_query_names_metrics_and_labels_the_daemon_serves(served: dict[str, set[str]]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = list(dashboard_queries(dashboard))
    assert len(queries) >= 20
    used: set[str] = set()
    for where, expr in queries:
        try:
            tree = pq.parse(for_parser(expr))
        except ValueError as exc:
            raise AssertionError(f"{where}: {exc}: {expr}") from exc
        found, grouping = selectors(tree)
        assert found, f"{where} selects no metric: {expr}"
        labels = set(SCRAPE_LABELS)
        for sel in found:
            assert sel.name in served, f"{where}: {sel.name} is not served (expr: {expr})"
            used.add(sel.name)
            labels |= served[sel.name]
            matched = {m.name for m in sel.matchers.matchers}
            assert matched <= served[sel.name] | SCRAPE_LABELS, f"{where}: {sel.name} has no label {matched}"
        assert grouping <= labels | {"le"}, f"{where}: groups by {grouping - labels} (expr: {expr})"
    # the overview the issue asks for
    for name in ("driftwarden_alert_firing", "driftwarden_check_degraded", "driftwarden_check_statistic",
                 "driftwarden_check_threshold", "driftwarden_performance", "driftwarden_events_total",
                 "driftwarden_consumer_lag", "driftwarden_dead_letters_total", "driftwarden_pending_joins",
                 "driftwarden_label_coverage_ratio", "driftwarden_label_lag_seconds"):
        assert name in used, name


def test_every_per_model_selector_follows_the_model_variable(served: dict[str, set[str]]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["model"]["multi"] and variables["model"]["includeAll"]
    assert variables["datasource"]["type"] == "datasource"
    checked = 0
    for where, expr in dashboard_queries(dashboard):
        if where == "variable model":
            continue  # the variable's own query lists every model
        for sel in selectors(pq.parse(for_parser(expr)))[0]:
            if "model" in served.get(sel.name or "", ()):
                assert 'model=~"$model"' in str(sel.matchers), f"{where}: {sel} ignores $model"
                checked += 1
    assert checked >= 20


def test_compose_runs_prometheus_scraping_the_daemon_and_grafana_with_the_dashboard() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert all(s.get("restart") for s in services.values()), {n: s.get("restart") for n, s in services.items()}
    mounts = {name: {v.split(":")[1]: v.split(":")[0] for v in s.get("volumes", [])} for name, s in services.items()}

    prometheus_yml = mounts["prometheus"]["/etc/prometheus/prometheus.yml"]
    scrape = yaml.safe_load((ROOT / prometheus_yml).read_text())["scrape_configs"]
    targets = [t for job in scrape for sc in job["static_configs"] for t in sc["targets"]]
    daemon_config = yaml.safe_load((ROOT / "config" / "compose.yaml").read_text())
    assert targets == [f"driftwarden:{daemon_config['http']['port']}"]
    assert daemon_config["http"]["host"] == "0.0.0.0"  # reachable from the prometheus container
    assert scrape[0]["metrics_path"] == "/metrics"

    grafana = mounts["grafana"]
    provisioning = ROOT / grafana["/etc/grafana/provisioning"]
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert [(s["type"], s["url"], s["uid"]) for s in sources] == [("prometheus", "http://prometheus:9090", "prometheus")]
    providers = yaml.safe_load((provisioning / "dashboards" / "driftwarden.yml").read_text())["providers"]
    dashboards_dir = ROOT / grafana[providers[0]["options"]["path"]]
    assert (dashboards_dir / DASHBOARD.name).resolve() == DASHBOARD.resolve()
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{providers[0]['options']['path']}/{DASHBOARD.name}"
    variables = {v["name"]: v for v in json.loads(DASHBOARD.read_text())["templating"]["list"]}
    assert variables["datasource"]["current"]["value"] == sources[0]["uid"]

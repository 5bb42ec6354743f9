"""deploy/kubernetes: the manifests parse, agree with each other and with the daemon, and their
probes, shutdown and scrape target work against a real `driftwarden run` on the test broker.

The daemon is driven as a user would (the ``driftwarden`` console script, HTTP), and each probe
is executed exactly as the StatefulSet defines it, its port mapped to the test's free port.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kafka.admin import KafkaAdminClient, NewTopic

from driftwarden.daemon.simulate import Scenario, write_reference
from tests.broker.kafka import free_port

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "kubernetes"
CONFIG_FILE = K8S / "driftwarden.yaml"  # the ConfigMap's content (kustomization.yaml's configMapGenerator)
SECRET_TEMPLATE = K8S / "secret.template.yaml"
KINDS = {"Namespace", "ServiceAccount", "StatefulSet", "Service", "ServiceMonitor"}
NOT_SECRET_ENV = {"HOME", "MPLCONFIGDIR", "PYTHONDONTWRITEBYTECODE"}


# ------------------------------------------------------------------ the manifests as kustomize sees them
def load_yaml(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def kustomization() -> dict[str, Any]:
    (doc,) = load_yaml(K8S / "kustomization.yaml")
    return doc


def resources() -> dict[str, dict[str, Any]]:
    """Kind -> the one resource of that kind listed in kustomization.yaml."""
    docs = [d for name in kustomization()["resources"] for d in load_yaml(K8S / name)]
    by_kind = {d["kind"]: d for d in docs}
    assert len(by_kind) == len(docs), "one resource per kind"
    return by_kind


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = resources()["StatefulSet"]["spec"]["template"]["spec"]
    return spec


def container() -> dict[str, Any]:
    (main,) = pod_spec()["containers"]
    return dict(main)


def config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(CONFIG_FILE.read_text())
    return data


def config_mount_path() -> str:
    """The path `run -c` reads: the config volume's mount path + the generated ConfigMap's key."""
    args = container()["args"]
    path = args[args.index("-c") + 1]
    mounts = {m["name"]: m["mountPath"] for m in container()["volumeMounts"]}
    assert path == f"{mounts['config']}/{CONFIG_FILE.name}"
    return str(path)


def memory_bytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return int(number) << (20 if unit == "Mi" else 30)


def test_every_manifest_parses_and_the_kustomization_lists_them() -> None:
    files = {p.name for p in K8S.glob("*.yaml")}
    for name in sorted(files):
        assert load_yaml(K8S / name), name
    k = kustomization()
    (generator,) = k["configMapGenerator"]
    assert generator == {"name": "driftwarden-config", "files": [CONFIG_FILE.name]}
    # every manifest is applied except the secret template (apply -k must not overwrite real secrets)
    assert files - set(k["resources"]) == {"kustomization.yaml", CONFIG_FILE.name, SECRET_TEMPLATE.name}
    assert set(resources()) == KINDS
    assert {d["kind"] for d in load_yaml(SECRET_TEMPLATE)} == {"Secret"}
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    assert volumes["config"]["configMap"]["name"] == generator["name"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with its built-in kustomize) is not installed")
def test_kubectl_kustomize_renders_the_configmap_and_rewrites_its_name() -> None:
    out = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=True)
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    by_kind = {d["kind"]: d for d in docs}
    assert set(by_kind) == KINDS | {"ConfigMap"}
    assert all(d["metadata"].get("namespace") == "driftwarden" for d in docs if d["kind"] != "Namespace")
    configmap = by_kind["ConfigMap"]
    assert yaml.safe_load(configmap["data"][CONFIG_FILE.name]) == config()
    assert re.fullmatch(r"driftwarden-config-[a-z0-9]{10}", configmap["metadata"]["name"])  # content hash: rolls the pod
    spec = by_kind["StatefulSet"]["spec"]["template"]["spec"]
    assert {v["name"]: v for v in spec["volumes"]}["config"]["configMap"]["name"] == configmap["metadata"]["name"]
    assert {c["image"] for c in spec["containers"] + spec["initContainers"]} == {"driftwarden:0.1.0"}


def test_secrets_are_only_referenced() -> None:
    env = container()["env"]
    named_in_config = set(re.findall(r"_env:\s*([A-Z_][A-Z0-9_]*)", CONFIG_FILE.read_text()))  # commented SASL too
    assert named_in_config == {"SLACK_BOT_TOKEN", "DRIFTWARDEN_CI_SECRET", "KAFKA_PASSWORD"}
    refs = {}
    for var in env:
        if var["name"] in NOT_SECRET_ENV:
            assert set(var) == {"name", "value"}
            continue
        assert set(var) == {"name", "valueFrom"}, f"{var['name']}: a secret must come from valueFrom"
        ref = var["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "driftwarden-secrets"
        refs[var["name"]] = ref
    assert set(refs) == named_in_config
    assert [name for name, ref in refs.items() if ref.get("optional")] == ["KAFKA_PASSWORD"]  # SASL is commented out
    (template,) = load_yaml(SECRET_TEMPLATE)
    assert template["metadata"]["name"] == "driftwarden-secrets"
    assert template["stringData"] == {ref["key"]: "" for ref in refs.values()}  # keys only, no values
    text = "\n".join(p.read_text() for p in K8S.glob("*.yaml"))
    assert not re.search(r"xox[abpr]-[0-9A-Za-z]|kind:\s*Secret[\s\S]*\bdata:", text)


def test_resources_security_and_volumes() -> None:
    spec = pod_spec()
    assert spec["securityContext"]["runAsNonRoot"] is True
    uid = re.search(r"useradd --uid (\d+)", (ROOT / "Dockerfile").read_text())
    assert uid and spec["securityContext"]["runAsUser"] == spec["securityContext"]["fsGroup"] == int(uid.group(1))
    for c in spec["containers"] + spec["initContainers"]:
        limits, requests = c["resources"]["limits"], c["resources"]["requests"]
        assert set(limits) == set(requests) == {"cpu", "memory"}, c["name"]
        assert memory_bytes(requests["memory"]) <= memory_bytes(limits["memory"])
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"]: m for m in container()["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert mounts["/tmp"]["name"] in volumes and "emptyDir" in volumes[mounts["/tmp"]["name"]]
    claims = {c["metadata"]["name"] for c in resources()["StatefulSet"]["spec"]["volumeClaimTemplates"]}
    assert mounts["/data"]["name"] in claims
    writable = [path for path, m in mounts.items() if not m.get("readOnly")]
    assert sorted(writable) == ["/data", "/tmp"]
    data = config()  # everything the daemon writes is on the volume
    assert data["state"]["path"].startswith("/data/") and data["reports"]["directory"].startswith("/data/")
    assert all(m["reference"].startswith("/data/") for m in data["models"])
    config_mount_path()


def test_service_and_servicemonitor_match_the_pod_and_the_daemon() -> None:
    r = resources()
    pod_labels = r["StatefulSet"]["spec"]["template"]["metadata"]["labels"]
    service = r["Service"]
    assert r["StatefulSet"]["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    (container_port,) = container()["ports"]
    assert port["targetPort"] == container_port["name"] == port["name"] == "http"
    assert container_port["containerPort"] == port["port"] == config()["http"]["port"]
    assert config()["http"]["host"] == "0.0.0.0"  # the kubelet and Prometheus reach the pod's IP
    monitor = r["ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == (port["name"], "/metrics")


# ------------------------------------------------------------------ the daemon, for real
def driftwarden_command() -> list[str]:
    """The installed console script next to this Python (as in the image), else the module."""
    script = Path(sys.executable).with_name("driftwarden")
    return [str(script)] if script.exists() else [sys.executable, "-m", "driftwarden.daemon.cli"]


def local_config(tmp_path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """The manifest's config for this machine: /data under tmp_path; nothing else is changed."""
    def move(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        if isinstance(value, list):
            return [move(v) for v in value]
        if isinstance(value, str) and value.startswith("/data/"):
            return str(tmp_path / value.lstrip("/"))
        return value

    moved: dict[str, Any] = move(data)
    for model in moved["models"]:
        write_reference(model["reference"], Scenario(model_id=model["id"]))
    return moved


def secret_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "SLACK_BOT_TOKEN": "xoxb-dummy", "DRIFTWARDEN_CI_SECRET": "dummy"}


def test_the_configmaps_config_passes_check_config(tmp_path: Path) -> None:
    data = local_config(tmp_path, config())
    # the manifest's broker name resolves only in its cluster; its form is what we can check here
    assert all(re.fullmatch(r"[a-z0-9.-]+:\d+", s) for s in data["kafka"]["bootstrap_servers"].split(","))
    data["kafka"]["bootstrap_servers"] = "127.0.0.1:9092"
    path = tmp_path / CONFIG_FILE.name
    path.write_text(yaml.safe_dump(data))
    done = subprocess.run([*driftwarden_command(), "check-config", "-c", str(path)], env=secret_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{path}: ok (1 model(s): churn)"


def test_the_init_container_waits_for_exactly_the_configs_references(tmp_path: Path) -> None:
    (init,) = pod_spec()["initContainers"]
    command = init["command"]
    assert command[:2] == ["sh", "-c"]
    script, _name, *paths = command[2:]
    assert paths == [m["reference"] for m in config()["models"]]
    data = local_config(tmp_path, config())  # writes the references: it must return at once
    local = [m["reference"] for m in data["models"]]
    done = subprocess.run(["sh", "-c", script, "await-references", *local], capture_output=True, timeout=30)
    assert done.returncode == 0 and done.stdout == b""


def probe_ok(probe: dict[str, Any], port: int) -> bool:
    """One probe, as the kubelet runs it, against the pod's `http` port mapped to ``port``."""
    timeout = probe.get("timeoutSeconds", 1)
    if "httpGet" in probe:
        assert probe["httpGet"]["port"] == "http"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{probe['httpGet']['path']}", timeout=timeout) as resp:
                return 200 <= resp.status < 400
        except urllib.error.HTTPError as err:
            err.close()
            return 200 <= err.code < 400
        except OSError:
            return False
    if "tcpSocket" in probe:
        assert probe["tcpSocket"]["port"] == "http"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=timeout).close()
        except OSError:
            return False
        return True
    raise AssertionError(f"unexpected probe handler: {probe}")


def docker_healthcheck(port: int) -> list[str]:
    """The Dockerfile's HEALTHCHECK command, its port 9108 mapped to ``port``."""
    match = re.search(r"^HEALTHCHECK [^\n]*\\\n\s*CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.M)
    assert match
    command: list[str] = json.loads(match.group(1))
    assert command[0] == "python" and sum("127.0.0.1:9108/healthz" in part for part in command) == 1
    return [sys.executable, *(part.replace(":9108/", f":{port}/") for part in command[1:])]


def vm_hwm_bytes(pid: int) -> int:
    """Peak resident set size of a live process (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def metric(text: str, name: str, **labels: str) -> float | None:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        if series == f"{name}{{{want}}}":
            return float(value)
    return None


@pytest.fixture()
def daemon(tmp_path: Path, kafka_bootstrap: str) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """`driftwarden run` on the manifest's config, adapted: broker, fresh topics and group, /data
    under tmp_path, HTTP on 127.0.0.1 and a free port, receivers on a closed local port."""
    data = local_config(tmp_path, config())
    suffix = uuid.uuid4().hex[:8]
    kafka = data["kafka"]
    kafka.update(bootstrap_servers=kafka_bootstrap, group_id=f"k8s-{suffix}", predictions_topic=f"predictions-{suffix}",
                 outcomes_topic=f"outcomes-{suffix}", dead_letter_topic=f"dlq-{suffix}")
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(kafka[k], 1, 1) for k in ("predictions_topic", "outcomes_topic", "dead_letter_topic")])
    finally:
        admin.close()
    port = free_port()
    data["http"].update(host="127.0.0.1", port=port)
    receivers = data["alerting"]["receivers"]
    receivers["oncall-slack"]["base_url"] = "http://127.0.0.1:1/api/"
    receivers["ci-retrain"]["url"] = "http://127.0.0.1:1/hooks/driftwarden"
    path = tmp_path / CONFIG_FILE.name
    path.write_text(yaml.safe_dump(data))
    produced = subprocess.run([*driftwarden_command(), "simulate", "-c", str(path), "--events", "3000",
                               "--label-delay", "100"], env=secret_env(), capture_output=True, text=True, timeout=120)
    assert produced.returncode == 0, produced.stderr
    log = (tmp_path / "daemon.log").open("wb")
    proc = subprocess.Popen([*driftwarden_command(), "run", "-c", str(path)], env=secret_env(), cwd=tmp_path,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc, port, tmp_path / "daemon.log"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        log.close()


def test_probes_scrape_and_graceful_shutdown_on_a_running_daemon(
    daemon: tuple[subprocess.Popen[bytes], int, Path],
) -> None:
    proc, port, log = daemon
    main = container()

    def wait_for(what: str, ok: Any, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not ok():
            assert proc.poll() is None, f"daemon exited ({proc.returncode}) before {what}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no {what} within {seconds} s:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)

    startup = main["startupProbe"]
    wait_for("startupProbe success", lambda: probe_ok(startup, port), startup["periodSeconds"] * startup["failureThreshold"])
    for name in ("readinessProbe", "livenessProbe"):
        wait_for(f"{name} success", lambda name=name: probe_ok(main[name], port), 60)
    health = subprocess.run(docker_healthcheck(port), capture_output=True, timeout=30)
    assert health.returncode == 0, health.stderr

    # the ServiceMonitor's target: the daemon's own metrics, the monitored model's among them
    (endpoint,) = resources()["ServiceMonitor"]["spec"]["endpoints"]
    scraped: dict[str, str] = {}

    def scrape_all_predictions() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{endpoint['path']}", timeout=10) as resp:
            scraped["text"] = resp.read().decode()
        seen = metric(scraped["text"], "driftwarden_events_total", model="churn", topic="predictions")
        return seen == 3000

    wait_for("3000 predictions on /metrics", scrape_all_predictions, 90)
    rss = vm_hwm_bytes(proc.pid)
    print(f"driftwarden run peak RSS: {rss / 2**20:.0f} MiB")
    assert memory_bytes(main["resources"]["requests"]["memory"]) > rss  # the request holds the measured peak

    grace = pod_spec()["terminationGracePeriodSeconds"]
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=grace) == 0
    print(f"SIGTERM to exit: {time.monotonic() - started:.1f} s (grace {grace} s)")
    assert "signal 15" in log.read_text()
    assert not probe_ok(main["readinessProbe"], port)
    assert subprocess.run(docker_healthcheck(port), capture_output=True, timeout=30).returncode == 1

"""A real single-node Apache Kafka broker (KRaft, combined mode) for the tests.

The broker runs from its Maven Central jars with the machine's Java 17; no
Docker. ``python -m tests.broker.kafka fetch`` downloads the jars into the
git-ignored cache (``.cache/kafka-<version>/libs``); ``start`` runs a broker
in the foreground for manual use. The pytest fixture in ``tests/conftest.py``
starts one per test session and stops it by PID, also when tests fail.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

KAFKA_VERSION = "4.1.1"  # keep in step with docker-compose.yml (apache/kafka image)
ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / f"kafka-{KAFKA_VERSION}"
POM = Path(__file__).with_name("pom.xml")

_LOG4J = """status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
logger.raft.name = kafka.server.KafkaRaftServer
logger.raft.level = INFO
"""


def fetch_jars() -> Path:
    """The broker's jars (cached); runs Maven once."""
    libs = CACHE / "libs"
    marker = CACHE / ".complete"
    if marker.exists():
        return libs
    if shutil.which("mvn") is None:
        raise RuntimeError("Maven (mvn) is needed once to fetch Apache Kafka's jars from Maven Central")
    tmp = CACHE.with_name(CACHE.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(
        [
            "mvn", "-q", "-B", "-f", str(POM), f"-Dkafka.version={KAFKA_VERSION}",
            "dependency:copy-dependencies", f"-DoutputDirectory={tmp / 'libs'}",
        ],
        check=True,
    )
    shutil.rmtree(CACHE, ignore_errors=True)
    tmp.rename(CACHE)
    marker.touch()
    return libs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class KafkaBroker:
    """One broker process on 127.0.0.1; ``start()`` blocks until it serves."""

    def __init__(self, workdir: Path | None = None) -> None:
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="driftwarden-kafka-"))
        self.port = free_port()
        self.controller_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "broker.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(data),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.cleaner.dedupe.buffer.size": str(4 * 1024 * 1024),
            "auto.create.topics.enable": "true",
        }
        path = self.workdir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.workdir / "log4j2.properties").write_text(_LOG4J)
        return path

    def _java(self, *args: str) -> list[str]:
        libs = fetch_jars()
        return [
            "java", "-Xms256m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
            "-cp", f"{libs}/*", *args,
        ]

    def start(self, timeout: float = 90.0) -> None:
        """Format the data directory (first start only) and run the broker until it serves."""
        config = self._write_config()
        if not (self.workdir / "data" / "meta.properties").exists():
            cluster_id = "-"
            while cluster_id.startswith("-"):  # as Kafka's Uuid does: a leading '-' reads as an option
                cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            subprocess.run(
                self._java("kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(config)),
                check=True, stdout=subprocess.DEVNULL,
            )
        started_at = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                self._java("kafka.Kafka", str(config)), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Kafka broker exited with {self.process.returncode}:\n{self.tail()}")
            with self.log_path.open("rb") as log:
                log.seek(started_at)
                if b"Kafka Server started" in log.read():
                    return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"Kafka broker not ready after {timeout}s:\n{self.tail()}")

    def kill(self) -> None:
        """An outage: SIGKILL the broker by its PID, keeping its ports and data for ``start()`` again."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the broker by its PID (TERM, then KILL after 15 s) and remove its files."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextmanager
def kafka_broker() -> Iterator[tuple[str, KafkaBroker | None]]:
    """(bootstrap, broker): ``DRIFTWARDEN_TEST_BOOTSTRAP``'s broker (None: not ours), or one started
    here from the jars and stopped by its PID on the way out, whatever happened."""
    existing = os.environ.get("DRIFTWARDEN_TEST_BOOTSTRAP")
    if existing:
        yield existing, None
        return
    broker = KafkaBroker()
    try:
        broker.start()
        yield broker.bootstrap, broker
    finally:
        broker.stop()


def main(argv: list[str]) -> int:
    if argv[:1] == ["fetch"]:
        print(fetch_jars())
        return 0
    if argv[:1] == ["start"]:
        broker = KafkaBroker()
        broker.start()
        print(f"Kafka {KAFKA_VERSION} serving at {broker.bootstrap} (Ctrl-C stops it)", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
        finally:
            broker.stop()
        return 0
    print("usage: python -m tests.broker.kafka fetch|start", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

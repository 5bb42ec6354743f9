"""A real Prometheus Alertmanager for the tests, built from its Go module.

``python -m tests.broker.alertmanager fetch`` builds ``alertmanager`` once with the machine's
Go toolchain into the git-ignored cache (``.cache/alertmanager-<version>/alertmanager``);
``start`` runs one in the foreground for manual use. The pytest fixture in
``tests/alerts/test_alertmanager.py`` starts one and stops it by PID, also when tests fail.

The module as the Go proxy serves it lacks the web UI's compiled assets (``ui/app/dist``, a
``go:embed`` target built by npm in Alertmanager's release process), so ``go install`` of it
fails. We build the same source with a one-page placeholder there: the API, dispatcher and
storage are untouched; only the browser UI is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ALERTMANAGER_VERSION = "0.35.0"
MODULE = "github.com/prometheus/alertmanager"
ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / f"alertmanager-{ALERTMANAGER_VERSION}"
BINARY = CACHE / "alertmanager"

_CONFIG = """route:
  receiver: "null"
  group_wait: 1h
receivers:
  - name: "null"
"""


def fetch_binary() -> Path:
    """The ``alertmanager`` binary (cached); builds it once with ``go`` (a few minutes)."""
    if BINARY.exists():
        return BINARY
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        raise RuntimeError(
            f"Go (the `go` command) is needed once to build Alertmanager {ALERTMANAGER_VERSION} for the tests; "
            "install Go 1.24+ or put an alertmanager binary at " + str(BINARY)
        )
    env = {**os.environ, "GOFLAGS": "-mod=mod"}
    info = subprocess.run(
        [go, "mod", "download", "-json", f"{MODULE}@v{ALERTMANAGER_VERSION}"],
        check=True, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir(),
    )
    module_dir = Path(json.loads(info.stdout)["Dir"])
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="driftwarden-am-src-") as tmp:
        src = Path(tmp) / "alertmanager"
        shutil.copytree(module_dir, src)
        for folder, _, _ in os.walk(src):  # the module cache is read-only
            os.chmod(folder, 0o755)
        for part in ("elm", "mantine"):  # the UI's compiled assets (see the module docstring)
            dist = src / "ui" / "app" / "dist" / part
            dist.mkdir(parents=True, exist_ok=True)
            (dist / "index.html").write_text("<!doctype html><p>Alertmanager UI not built (driftwarden tests)</p>\n")
        partial = CACHE / f"alertmanager.partial-{os.getpid()}"  # a concurrent build never leaves half a binary
        ldflags = f"-X github.com/prometheus/common/version.Version={ALERTMANAGER_VERSION}"
        try:
            subprocess.run([go, "build", "-o", str(partial), "-ldflags", ldflags, "./cmd/alertmanager"],
                           check=True, cwd=src, env=env)
            os.replace(partial, BINARY)
        finally:
            partial.unlink(missing_ok=True)
    return BINARY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Alertmanager:
    """One Alertmanager on 127.0.0.1 (no clustering, one ``null`` receiver); ``start()`` blocks until ready.

    ``stop()`` then ``start()`` restarts it on the same port (alerts are not persisted across).
    """

    def __init__(self, workdir: Path | None = None) -> None:
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="driftwarden-alertmanager-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "alertmanager.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        binary = fetch_binary()
        config = self.workdir / "alertmanager.yml"
        config.write_text(_CONFIG)
        (self.workdir / "data").mkdir(exist_ok=True)
        args = [
            str(binary), f"--config.file={config}", f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=", "--log.level=warn",
        ]
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Alertmanager exited with {self.process.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Alertmanager not ready after {timeout}s:\n{self.tail()}")

    def get(self, path: str) -> object:
        with urllib.request.urlopen(self.url + path, timeout=5) as resp:
            return json.loads(resp.read())

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the process by its PID (TERM, then KILL after 10 s); files stay for a restart."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def close(self) -> None:
        """Stop and remove its files."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["fetch"]:
        print(fetch_binary())
        return 0
    if argv[:1] == ["start"]:
        am = Alertmanager()
        am.start()
        print(f"Alertmanager {ALERTMANAGER_VERSION} serving at {am.url} (Ctrl-C stops it)", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
        finally:
            am.close()
        return 0
    print("usage: python -m tests.broker.alertmanager fetch|start", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

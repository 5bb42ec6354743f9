"""``driftwarden run`` as a child process: started, kill -9'd, stopped with SIGTERM, watched.

Every exit is accounted for: one we caused (kill -9, SIGTERM) or an exit of its own, which
the chaos suite treats as a failure (with the tail of the daemon's log).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families


class ExitedOnItsOwn(AssertionError):
    pass


class DaemonProcess:
    def __init__(self, config: Path, port: int, log: Path, env: dict[str, str],
                 module: str = "driftwarden.daemon.cli", name: str = "driftwarden") -> None:
        """``module``: what ``python -m`` runs with ``run -c CONFIG`` (the CLI, or a wrapper of it)."""
        self.config = config
        self.module = module
        self.name = name
        self.port = port
        self.log = log
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills: list[float] = []  # monotonic times of our kill -9s
        self.deaths: list[float] = []  # wall times each start ended (kill -9, SIGTERM, stop), in order

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        with self.log.open("ab") as out:  # the child keeps its own descriptor
            out.write(f"\n===== start {self.starts + 1} =====\n".encode())
            out.flush()
            self.proc = subprocess.Popen([sys.executable, "-m", self.module, "run", "-c", str(self.config)],
                                         stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        self.starts += 1

    def check(self) -> None:
        """Raise if the daemon exited without our signal."""
        if self.proc is not None and self.proc.poll() is not None:
            code = self.proc.returncode
            raise ExitedOnItsOwn(f"{self.name}: driftwarden run exited on its own with {code}:\n{self.tail()}")

    def kill9(self) -> None:
        self.check()
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.kills.append(time.monotonic())
        self.deaths.append(time.time())

    def terminate(self, timeout: float = 120.0) -> int:
        """SIGTERM, and the exit code (the process is killed if it does not exit in time)."""
        self.check()
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
            self.deaths.append(time.time())
            return code
        finally:
            self.stop()

    def stop(self) -> None:
        """Whatever happened: no daemon left behind (by PID)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
            self.deaths.append(time.time())

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        """Samples of GET /metrics (name, sorted labels) -> value; None while it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as resp:
                text = resp.read().decode()
        except OSError:
            return None
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def metric_sum(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """Sum of ``name`` over the samples whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))

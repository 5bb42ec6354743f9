"""Real local HTTP servers standing in for Slack's Web API host and a CI webhook receiver.

Both bind 127.0.0.1 on a free port, run in a thread, record every request and
are stopped by the fixtures that start them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        if self.headers.get("content-type", "").startswith("application/json"):
            return dict(self.json())
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


Responder = Callable[[Request], tuple[int, dict[str, str], bytes]]


@dataclass
class RecordingServer:
    """An HTTP server that answers with ``responder`` and records requests."""

    responder: Responder
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                req = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                with owner._lock:
                    owner.requests.append(req)
                status, headers, body = owner.responder(req)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, predicate: Callable[[list[Request]], bool], timeout: float = 30.0) -> list[Request]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                snapshot = list(self.requests)
            if predicate(snapshot):
                return snapshot
            time.sleep(0.05)
        seen = "\n".join(f"  {r.path}: {r.body[:600]!r}" for r in self.requests)
        raise AssertionError(f"condition not met in {timeout}s; got {len(self.requests)} request(s):\n{seen}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def slack_api() -> RecordingServer:
    """Slack Web API stand-in: every method answers ``ok`` with a fresh message ``ts``."""
    counter = iter(range(1, 1_000_000))

    def respond(req: Request) -> tuple[int, dict[str, str], bytes]:
        ts = f"1700000000.{next(counter):06d}"
        form = req.form()
        body = {"ok": True, "channel": form.get("channel", "C1"), "ts": ts}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    return RecordingServer(respond)


def webhook_receiver() -> RecordingServer:
    return RecordingServer(lambda req: (202, {"Content-Type": "application/json"}, b'{"accepted": true}'))

"""Local stand-ins for Slack's Web API host and a CI webhook receiver (127.0.0.1 only).

The fake Slack implements what driftwarden calls, with Slack's wire format: chat.postMessage,
chat.update, conversations.history, conversations.replies. ``script`` is a queue of behaviours
for the next requests: ``"500"``, ``"429:<seconds>"``, ``"timeout"`` (stall, answer 500 late)
or ``"slow_ok"`` (process the request, then stall past the client's timeout).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from driftwarden.alerts.webhook import verify_signature

TOKEN = "xoxb-test-token"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler], state: Any) -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), handler)
    server.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


class SlackState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[dict[str, Any]] = []  # every message as Slack stores it
        self.calls: list[tuple[str, dict[str, Any]]] = []  # (method, params) of every request
        self.updates: list[dict[str, Any]] = []
        self.script: list[str] = []
        self.down = False  # answer 500 to everything while True
        self.now: float | None = None  # Slack's clock for new ts (tests pass simulated time)
        self.stall = 1.0
        self.release = threading.Event()
        self._n = 0

    def posts(self) -> list[dict[str, Any]]:
        return [p for m, p in self.calls if m == "chat.postMessage"]

    def new_ts(self) -> str:
        self._n += 1
        base = self.now if self.now is not None else time.time()
        return f"{int(base)}.{self._n:06d}"


class SlackHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        st: SlackState = self.server.state  # type: ignore[attr-defined]
        method = self.path.rsplit("/", 1)[-1]
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        if "json" in (self.headers.get("Content-Type") or ""):
            params = json.loads(raw or "{}")
        else:
            params = {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
        with st.lock:
            st.calls.append((method, params))
            action = st.script.pop(0) if st.script else ("500" if st.down else "ok")
        if action == "500":
            return self._send(500, b"<html>internal error</html>", "text/html")
        if action.startswith("429"):
            return self._send(429, b'{"ok": false, "error": "ratelimited"}', headers={"Retry-After": action[4:]})
        if action == "timeout":
            st.release.wait(st.stall)
            return self._send(500, b"late")
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._json({"ok": False, "error": "invalid_auth"})
        with st.lock:
            body = self._handle(st, method, params)
        if action == "slow_ok":
            st.release.wait(st.stall)
        self._json(body)

    def _handle(self, st: SlackState, method: str, p: dict[str, Any]) -> dict[str, Any]:
        if method == "chat.postMessage":
            channel = p["channel"] if p["channel"].startswith("C") else "C0NAMED00"
            msg = {
                "type": "message",
                "channel": channel,
                "ts": st.new_ts(),
                "text": p.get("text", ""),
                "blocks": p.get("blocks"),
                "thread_ts": p.get("thread_ts"),
                "metadata": p.get("metadata"),
            }
            st.messages.append(msg)
            return {"ok": True, "channel": channel, "ts": msg["ts"], "message": msg}
        if method == "chat.update":
            for msg in st.messages:
                if msg["channel"] == p["channel"] and msg["ts"] == p["ts"]:
                    msg.update(text=p.get("text"), blocks=p.get("blocks"))
                    st.updates.append(p)
                    return {"ok": True, "channel": p["channel"], "ts": p["ts"]}
            return {"ok": False, "error": "message_not_found"}
        if method in ("conversations.history", "conversations.replies"):
            oldest = float(p.get("oldest") or 0)
            found = [m for m in st.messages if m["channel"] == p["channel"] and float(m["ts"]) >= oldest]
            if method == "conversations.history":
                found = [m for m in found if not m["thread_ts"]]
            else:
                found = [m for m in found if p["ts"] in (m["ts"], m["thread_ts"])]
            with_meta = str(p.get("include_all_metadata")).lower() in ("1", "true")
            out = [{k: v for k, v in m.items() if k != "metadata" or with_meta} for m in found]
            return {"ok": True, "messages": out, "has_more": False}
        return {"ok": False, "error": "unknown_method"}

    def _json(self, body: dict[str, Any]) -> None:
        self._send(200, json.dumps(body).encode())

    def _send(self, status: int, body: bytes, ctype: str = "application/json", headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and left


class CiState:
    """A CI endpoint that verifies signatures and drops repeated idempotency keys."""

    def __init__(self, secret: str, now: float | None = None) -> None:
        self.secret = secret
        self.now = now  # the receiver's clock (simulated in tests)
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []  # every request, accepted or not
        self.accepted: list[dict[str, Any]] = []  # verified, first time seen
        self.script: list[str] = []
        self.release = threading.Event()


class CiHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        st: CiState = self.server.state  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        with st.lock:
            st.requests.append({"path": self.path, "headers": headers, "body": raw})
            action = st.script.pop(0) if st.script else "ok"
        if action != "ok":
            return self._send(int(action), b"try later")
        now = st.now if st.now is not None else time.time()
        ok = verify_signature(
            st.secret, headers.get("x-driftwarden-timestamp", ""), raw, headers.get("x-driftwarden-signature", ""), now=now
        )
        if not ok:
            return self._send(401, b"bad signature")
        key = headers.get("idempotency-key", "")
        with st.lock:
            if key not in {a["key"] for a in st.accepted}:
                st.accepted.append({"key": key, "path": self.path, "headers": headers, "body": raw})
        self._send(204 if self.path.endswith("/dispatches") else 200, b"")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

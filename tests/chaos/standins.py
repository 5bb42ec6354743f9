"""Slack and CI stand-ins that can be taken down: every request answered 500 or 429 (with
``Retry-After``) in turn while down, served normally once up again. 127.0.0.1 only.

Each request is also noted with its arrival time and its sender: the first segment of its
path when several daemons share the stand-ins, each given its own URL (``/a/api/``, ``/a/retrain``).
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from driftwarden.alerts.webhook import verify_signature
from tests.alerts.servers import SlackHandler, SlackState, serve


def sender(path: str) -> str:
    """``/a/api/chat.postMessage``, ``/a/retrain`` -> ``a``; the paths of one daemon alone (``/api/...``,
    ``/retrain``) -> ``""``."""
    parts = path.split("/")
    return parts[1] if len(parts) > 2 and parts[1] not in ("api", "retrain") else ""

RETRY_AFTER = "7"


@dataclass
class Outage:
    """Shared by both stand-ins: down or up, and what each answered while down."""

    down: bool = False
    answered: Counter[str] = field(default_factory=Counter)  # "slack 500", "ci 429", ...
    first_failure: float | None = None
    last_failure: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def failure(self, who: str) -> str | None:
        """The failure to answer now ("500" or "429"), or None when up."""
        with self.lock:
            if not self.down:
                return None
            n = sum(v for k, v in self.answered.items() if k.startswith(who))
            status = "500" if n % 2 == 0 else "429"
            self.answered[f"{who} {status}"] += 1
            now = time.monotonic()
            self.first_failure = self.first_failure if self.first_failure is not None else now
            self.last_failure = now
            return status

    @property
    def failing_seconds(self) -> float:
        if self.first_failure is None or self.last_failure is None:
            return 0.0
        return self.last_failure - self.first_failure


class _OutageScript(list[str]):
    """SlackState.script that yields "500" / "429:<s>" while the outage lasts (SlackHandler pops it)."""

    def __init__(self, outage: Outage) -> None:
        super().__init__()
        self.outage = outage
        self._next: str | None = None

    def __bool__(self) -> bool:
        self._next = self.outage.failure("slack")
        return self._next is not None

    def pop(self, index: Any = -1) -> str:
        status, self._next = self._next, None
        assert status is not None
        return "500" if status == "500" else f"429:{RETRY_AFTER}"


def _metadata(params: dict[str, Any]) -> dict[str, Any]:
    meta = params.get("metadata") or {}
    return json.loads(meta) if isinstance(meta, str) else meta


@dataclass(frozen=True)
class SlackCall:
    sender: str
    method: str
    key: str | None  # the idempotency key in the message metadata
    group_key: str | None
    at: float  # wall clock of arrival


class TracedSlackState(SlackState):
    def __init__(self) -> None:
        super().__init__()
        self.traces: list[SlackCall] = []


class TracedSlackHandler(SlackHandler):
    """SlackHandler that first notes who called which method with which key, and when."""

    def do_POST(self) -> None:
        st: TracedSlackState = self.server.state  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.rfile = io.BytesIO(raw)  # SlackHandler reads the body again
        try:
            params = json.loads(raw or b"{}") if "json" in (self.headers.get("Content-Type") or "") else \
                {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        except ValueError:
            params = {}
        payload = _metadata(params).get("event_payload") or {}
        with st.lock:
            st.traces.append(SlackCall(sender(self.path), self.path.rsplit("/", 1)[-1], payload.get("idempotency_key"),
                                       payload.get("group_key"), time.time()))
        super().do_POST()


class FlakySlack:
    def __init__(self, outage: Outage) -> None:
        self.state = TracedSlackState()
        self.state.script = _OutageScript(outage)
        self.url = ""

    def posted_keys(self) -> Counter[str]:
        """Messages Slack stored (answered ok), per idempotency key."""
        with self.state.lock:
            return Counter(_metadata(m)["event_payload"]["idempotency_key"] for m in self.state.messages
                           if _metadata(m).get("event_payload"))

    def attempted_keys(self) -> Counter[str]:
        with self.state.lock:
            return Counter(_metadata(p)["event_payload"]["idempotency_key"] for method, p in self.state.calls
                           if method == "chat.postMessage" and _metadata(p).get("event_payload"))

    def texts(self) -> list[str]:
        with self.state.lock:
            return [json.dumps({"text": m.get("text"), "blocks": m.get("blocks")}) for m in self.state.messages]


@dataclass
class CiRequest:
    key: str
    status: int
    body: bytes
    path: str = ""
    at: float = 0.0  # wall clock of arrival

    @property
    def sender(self) -> str:
        return sender(self.path)


class CiState:
    def __init__(self, secret: str, outage: Outage) -> None:
        self.secret = secret
        self.outage = outage
        self.lock = threading.Lock()
        self.requests: list[CiRequest] = []
        self.release = threading.Event()  # serve() sets it on shutdown

    def ok_keys(self) -> Counter[str]:
        with self.lock:
            return Counter(r.key for r in self.requests if 200 <= r.status < 300)

    def attempted_keys(self) -> Counter[str]:
        with self.lock:
            return Counter(r.key for r in self.requests)


class CiHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        st: CiState = self.server.state  # type: ignore[attr-defined]
        arrived = time.time()
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        key = self.headers.get("Idempotency-Key", "")
        failure = st.outage.failure("ci")
        if failure == "500":
            status, headers = 500, {}
        elif failure == "429":
            status, headers = 429, {"Retry-After": RETRY_AFTER}
        elif verify_signature(st.secret, self.headers.get("X-Driftwarden-Timestamp", ""), raw,
                              self.headers.get("X-Driftwarden-Signature", ""), now=time.time()):
            status, headers = 200, {}
        else:
            status, headers = 401, {}
        with st.lock:
            st.requests.append(CiRequest(key, status, raw, self.path, arrived))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextmanager
def flaky_standins(ci_secret: str) -> Iterator[tuple[Outage, FlakySlack, CiState, str, str]]:
    """(outage switch, Slack state, CI state, Slack base URL, CI URL), stopped on exit."""
    outage = Outage()
    slack = FlakySlack(outage)
    ci = CiState(ci_secret, outage)
    with serve(TracedSlackHandler, slack.state) as slack_url, serve(CiHandler, ci) as ci_url:
        slack.url = slack_url
        yield outage, slack, ci, slack_url + "/api/", ci_url + "/retrain"

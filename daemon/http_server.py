"""The daemon's HTTP port (127.0.0.1 by default): health, Prometheus metrics, reports.

* ``GET /healthz``: 200 while the consume loop has made progress recently, else 503;
* ``GET /metrics``: Prometheus text format, gzip-compressed when the scraper accepts it (Prometheus
  does: with a thousand models the page is ~50 MB of text, ~2 MB compressed);
* ``GET /reports/``: an index of the models (with reports, or configured: ``models``) and
  their latest report; ``GET /reports/<model folder>/``: the model's reports, newest first,
  archived ones included (``alerts/reports/pages.py``); ``GET /reports`` redirects to ``reports/``;
* ``GET /reports/<path>``: files under the reports directory (HTML, JSON, bundles).

Limits, so that a scanner or a stuck client cannot exhaust the daemon:

* every connection has a socket timeout (``timeout``, 10 s): a client that sends nothing,
  or stops reading, is disconnected when it runs out;
* at most ``max_connections`` (64) connections are served at once, one thread each; a
  connection beyond that is answered ``503`` with ``Retry-After: 1`` at once and closed
  (it never gets a thread);
* a path that is not valid percent-encoded UTF-8, holds a control character (NUL ...) or
  is longer than 1,024 characters is answered ``400``; anything outside the reports
  directory ``404``. None of this logs more than a debug line, nor does a client that
  hangs up early.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import mimetypes
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from prometheus_client import CONTENT_TYPE_LATEST

from driftwarden.alerts.reports import catalog
from driftwarden.alerts.reports.layout import slug
from driftwarden.alerts.reports.pages import render_history, render_index
from driftwarden.daemon.metrics import Metrics

log = logging.getLogger("driftwarden.http")

MAX_PATH = 1024
DISCONNECTS = (ConnectionError, TimeoutError)  # BrokenPipe, ConnectionReset/Aborted, socket timeouts
_BUSY = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
         b"Retry-After: 1\r\nConnection: close\r\n\r\nbusy\n")



def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` header allows gzip (and does not refuse it with ``q=0``).

    >>> accepts_gzip("gzip"), accepts_gzip("deflate, gzip;q=1.0, *;q=0.5"), accepts_gzip("gzip;q=0"), accepts_gzip("")
    (True, True, False, False)
    """
    for part in accept_encoding.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() == "gzip":
            q = params.strip().lower().removeprefix("q=")
            try:
                return not params.strip() or float(q) > 0
            except ValueError:
                return False
    return False

class BadPath(ValueError):
    """The request path cannot name a file (answered 400)."""


def request_path(raw: str) -> str:
    """The decoded path of a request target (query dropped); :class:`BadPath` if unusable.

    >>> request_path("/reports/churn%2Fr1/report.html?x=1")
    '/reports/churn/r1/report.html'
    >>> for bad in ("/reports/x%00", "/reports/%ff", "/" + "a" * 2000):
    ...     try:
    ...         request_path(bad)
    ...     except BadPath as exc:
    ...         print(exc)
    control character in path
    path is not UTF-8
    path longer than 1024 characters
    """
    target = raw.split("?", 1)[0]
    if len(target) > MAX_PATH:
        raise BadPath(f"path longer than {MAX_PATH} characters")
    try:
        path = unquote(target, errors="strict")
    except UnicodeDecodeError:
        raise BadPath("path is not UTF-8") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        raise BadPath("control character in path")
    return path


class _BoundedServer(ThreadingHTTPServer):
    """A thread per connection, at most ``max_connections`` of them; the rest get a quick 503."""

    daemon_threads = True
    request_queue_size = 128  # the listen backlog: connections wait there while the accept loop catches up

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], max_connections: int) -> None:
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._refuse(request, client_address)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse(self, request: socket.socket, client_address: Any) -> None:
        """Answer 503 without blocking the accepting thread, then close."""
        log.debug("http: %s refused, all connection slots busy", client_address)
        try:
            request.setblocking(False)
            with contextlib.suppress(BlockingIOError, InterruptedError):
                request.recv(65536)  # read what already arrived, so closing does not reset the answer
            request.send(_BUSY)
        except OSError:
            pass
        self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """An exception escaped a handler: a hang-up is a debug line, anything else an error with its traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, DISCONNECTS):
            log.debug("http: %s went away: %s", client_address, exc)
        else:
            log.error("http: request from %s failed", client_address, exc_info=True)


class HttpServer:
    def __init__(
        self,
        host: str,
        port: int,
        metrics: Metrics,
        reports_dir: Path,
        health: Callable[[], dict[str, Any]],
        *,
        timeout: float = 10.0,
        max_connections: int = 64,
        models: Iterable[str] = (),
        before_metrics: Callable[[], None] | None = None,
    ) -> None:
        """``models``: ids of the configured models, listed on ``/reports/`` before they have a report;
        ``before_metrics``: called before ``/metrics`` is read (the daemon runs its waiting events)."""
        reports_root = reports_dir.resolve()
        configured = tuple(models)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                try:
                    self._route()
                except DISCONNECTS as exc:
                    log.debug("http: %s went away during %s: %s", self.client_address, self.command, exc)
                    self.close_connection = True

            def _route(self) -> None:
                try:
                    path = request_path(self.path)
                except BadPath as exc:
                    log.debug("http: 400 for %.80r: %s", self.path, exc)
                    self._send(400, "text/plain", f"bad request: {exc}\n".encode())
                    return
                if path == "/healthz":
                    status = health()
                    self._send(200 if status.get("ok") else 503, "application/json", json.dumps(status).encode())
                elif path == "/metrics":
                    if before_metrics is not None:
                        before_metrics()
                    text = metrics.exposition()
                    if accepts_gzip(self.headers.get("Accept-Encoding", "")):  # Prometheus asks for it
                        self._send(200, CONTENT_TYPE_LATEST, gzip.compress(text, compresslevel=1), encoding="gzip")
                    else:
                        self._send(200, CONTENT_TYPE_LATEST, text)
                elif path == "/reports":
                    self._send(301, "text/plain", b"moved to reports/\n", location="reports/")
                elif path == "/reports/" or (path.startswith("/reports/") and self._history_folder(path)):
                    self._send(200, "text/html; charset=utf-8", self._page(path[len("/reports/"):-1]).encode())
                elif path.startswith("/reports/"):
                    body = self._report_file(path[len("/reports/"):])
                    if body is None:
                        self._send(404, "text/plain", b"not found\n")
                    else:
                        self._send(200, body[0], body[1])
                else:
                    self._send(404, "text/plain", b"not found\n")

            @staticmethod
            def _history_folder(path: str) -> bool:
                """``/reports/<folder>/`` where the folder is a model's (``catalog.is_model``)."""
                folder = path[len("/reports/"):]
                if not folder.endswith("/") or folder.count("/") != 1 or folder in ("./", "../"):
                    return False
                return catalog.is_model(reports_root, folder[:-1], configured)

            @staticmethod
            def _page(folder: str) -> str:
                """The index (``folder`` empty) or the history page of a model's folder."""
                if not folder:
                    return render_index(catalog.models(reports_root, configured))
                entries = catalog.history(reports_root, folder)
                by_config = {slug(m): m for m in configured}
                named = [e.summary.model_id for e in entries if e.summary.model_id]
                return render_history(by_config.get(folder) or (named[0] if named else folder), entries)

            def _report_file(self, relative: str) -> tuple[str, bytes] | None:
                """(content type, bytes) of a file under the reports directory, or None."""
                try:
                    target = (reports_root / relative).resolve()
                    if not target.is_relative_to(reports_root) or not target.is_file():
                        return None
                    return mimetypes.guess_type(target.name)[0] or "application/octet-stream", target.read_bytes()
                except (OSError, ValueError) as exc:  # name too long, vanished, unreadable
                    log.debug("http: 404 for %.80r: %s", relative, exc)
                    return None

            def _send(self, status: int, content_type: str, body: bytes, location: str | None = None,
                      encoding: str | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                if encoding is not None:
                    self.send_header("Content-Encoding", encoding)
                if location is not None:
                    self.send_header("Location", location)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Content-Type-Options", "nosniff")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("http: %s " + format, self.address_string(), *args)

        Handler.timeout = timeout  # StreamRequestHandler: the connection's socket timeout
        self.server = _BoundedServer((host, port), Handler, max_connections)
        self.thread = threading.Thread(target=self.server.serve_forever, name="driftwarden-http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

"""The daemon's HTTP port (127.0.0.1 by default): health, Prometheus metrics, reports.

* ``GET /healthz``: 200 while the consume loop has made progress recently, else 503;
* ``GET /metrics``: Prometheus text format;
* ``GET /reports/<path>``: files under the reports directory (HTML, JSON, bundles).
"""

from __future__ import annotations

import json
import mimetypes
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from daemon.metrics import Metrics


class HttpServer:
    def __init__(
        self, host: str, port: int, metrics: Metrics, reports_dir: Path, health: Callable[[], dict[str, Any]]
    ) -> None:
        reports_root = reports_dir.resolve()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = unquote(self.path.split("?", 1)[0])
                if path == "/healthz":
                    status = health()
                    self._send(200 if status.get("ok") else 503, "application/json", json.dumps(status).encode())
                elif path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry))
                elif path.startswith("/reports/"):
                    target = (reports_root / path[len("/reports/"):]).resolve()
                    if not target.is_relative_to(reports_root) or not target.is_file():
                        self._send(404, "text/plain", b"not found\n")
                        return
                    kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
                    self._send(200, kind, target.read_bytes())
                else:
                    self._send(404, "text/plain", b"not found\n")

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Content-Type-Options", "nosniff")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
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

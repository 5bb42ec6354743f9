"""The HTTP port under abuse, with real sockets: idle connections, a connection flood, odd paths, hang-ups."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftwarden.daemon.http_server import HttpServer
from driftwarden.daemon.metrics import Metrics

TIMEOUT = 0.5
SLOTS = 8


def start(tmp_path: Path, timeout: float) -> HttpServer:
    reports = tmp_path / "reports"
    (reports / "churn" / "r1").mkdir(parents=True, exist_ok=True)
    (reports / "churn" / "r1" / "report.html").write_text("<html>report</html>")
    srv = HttpServer("127.0.0.1", 0, Metrics(), reports, lambda: {"ok": True}, timeout=timeout, max_connections=SLOTS)
    srv.start()
    return srv


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, int]]:
    srv = start(tmp_path, TIMEOUT)
    try:
        yield srv.address
    finally:
        srv.stop()


def request(address: tuple[str, int], target: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """(status, whole answer) of one GET on a fresh connection."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """True if the server closes ``sock`` (EOF or reset) within ``within`` seconds (what it says first is skipped)."""
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_idle_connections_are_closed_after_the_timeout_and_health_still_answers(server: tuple[str, int]) -> None:
    idle = [socket.create_connection(server, timeout=5) for _ in range(SLOTS)]
    try:
        start = time.monotonic()
        status, answer = request(server, "/healthz")  # every slot held by an idle client: refused at once
        assert status == 503 and b"Retry-After: 1" in answer and time.monotonic() - start < TIMEOUT
        assert all(closed_by_server(s, within=TIMEOUT + 2) for s in idle)
        assert time.monotonic() - start >= TIMEOUT * 0.9  # held until the timeout, then closed
        status, answer = request(server, "/healthz")
        assert status == 200 and answer.endswith(b'{"ok": true}')
    finally:
        for s in idle:
            s.close()


def test_a_connection_flood_holds_at_most_the_bounded_number_of_threads(tmp_path: Path) -> None:
    srv = start(tmp_path, timeout=30.0)  # nobody times out during the test
    before = threading.active_count()
    idle: list[socket.socket] = []
    try:
        idle = [socket.create_connection(srv.address, timeout=5) for _ in range(100)]
        assert all(closed_by_server(s, within=2.0) for s in idle[SLOTS:])  # refused at once
        assert not any(closed_by_server(s, within=0.1) for s in idle[:SLOTS])  # first come, first served
        assert threading.active_count() - before == SLOTS
        for s in idle[:SLOTS]:
            s.close()  # the held clients go away: their slots come back
        deadline = time.monotonic() + 5
        while request(srv.address, "/healthz")[0] != 200:
            assert time.monotonic() < deadline
    finally:
        for s in idle:
            s.close()
        srv.stop()


@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("/reports/x%00", 400),
        ("/reports/%00/../../etc/passwd", 400),
        ("/reports/" + "a" * 5000, 400),
        ("/" + "%41" * 2000, 400),
        ("/reports/%ff%fe", 400),
        ("/reports/%0d%0aSet-Cookie:x", 400),
        ("/reports/../../etc/passwd", 404),
        ("/reports/%2e%2e/%2e%2e/etc/passwd", 404),
        ("/reports/" + "b" * 300 + "/" + "c" * 300, 404),  # a file name too long for the file system
        ("/reports/churn/r1/report.html", 200),
    ],
)
def test_odd_paths_get_a_4xx_and_no_traceback(server: tuple[str, int], caplog: pytest.LogCaptureFixture,
                                               target: str, status: int) -> None:
    caplog.set_level(logging.DEBUG)
    assert request(server, target)[0] == status
    assert request(server, "/healthz")[0] == 200
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert "Traceback" not in caplog.text


def test_clients_that_hang_up_are_silent(server: tuple[str, int], caplog: pytest.LogCaptureFixture,
                                         capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(20):
        sock = socket.create_connection(server, timeout=5)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # close = RST
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.close()
    half = socket.create_connection(server, timeout=5)
    half.sendall(b"GET /healthz HT")  # a request cut short, then the client goes away
    half.close()
    assert request(server, "/healthz")[0] == 200
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert "Traceback" not in capfd.readouterr().err

"""Headless Chromium driven over the Chrome DevTools protocol, standard library only.

The browser is Debian's ``chromium`` (``apt-get install -y chromium``); nothing is downloaded.
It talks CDP over ``--remote-debugging-pipe`` (fd 3: commands in, fd 4: replies and events
out, each a JSON message ended by NUL), so no port is opened and no websocket client is
needed. One page (target) is opened; :meth:`Chromium.open` navigates it and waits for the
load event; everything the page logs is collected in :attr:`Chromium.problems`: console
errors and assertions, uncaught exceptions, and browser log entries of level error (a
blocked resource, a CSP violation, a failed load).

The browser runs in its own process group, ended by that group's id (the browser's pid)
when the context manager exits, whatever happened.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
         "--enable-logging=stderr", "--v=0", "--remote-debugging-pipe"]


class BrowserError(RuntimeError):
    """The browser did not answer, or answered a command with an error."""


class Chromium:
    def __init__(self, profile: Path, timeout: float = 30.0, width: int = 1280, height: int = 900) -> None:
        self.profile = profile
        self.timeout = timeout
        self.size = (width, height)
        self.problems: list[str] = []
        self.events: list[dict[str, Any]] = []
        self._replies: dict[int, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._next_id = 0
        self._closed = False
        self.proc: subprocess.Popen[bytes] | None = None
        self.session = ""

    # -- process --------------------------------------------------------------------------------
    def __enter__(self) -> Chromium:
        """Start the browser and open a page; a start whose first answers do not come is tried once more,
        with a fresh profile (a clean CI machine's first Chromium once gave no answer to
        ``Target.createTarget`` in 30 s; run again alone, the same tests passed in 21 s)."""
        try:
            return self._start()
        except BrowserError as exc:
            first = str(exc)
        self._closed, self._replies, self.events, self.problems = False, {}, [], []
        self.profile = self.profile.with_name(self.profile.name + "-again")
        try:
            return self._start()
        except BrowserError as exc:
            raise BrowserError(f"{exc} (and at the first start: {first})") from None

    def _start(self) -> Chromium:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # the browser's ends above fd 4, so that moving them to 3 and 4 cannot overwrite one with the other
        to_browser_r, from_browser_w = (_above(to_browser_r, 10), _above(from_browser_w, 10))
        log = (self.profile.parent / (self.profile.name + ".stderr")).open("wb")
        self.stderr_path = Path(log.name)
        args = [*FLAGS, f"--user-data-dir={self.profile}", f"--window-size={self.size[0]},{self.size[1]}",
                "about:blank"]
        try:
            # bash (dash refuses fds above 9) moves the two pipe ends to fds 3 and 4, then becomes chromium
            self.proc = subprocess.Popen(
                ["/bin/bash", "-c", f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w}', CHROMIUM, *args],
                pass_fds=(to_browser_r, from_browser_w), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                process_group=0)
        finally:
            os.close(to_browser_r)
            os.close(from_browser_w)
            log.close()
        self._reader = threading.Thread(target=self._read, name="cdp-reader", daemon=True)
        self._reader.start()
        try:
            target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
            self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                     session=False)["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                self.send(f"{domain}.enable")
            self.send("Emulation.setDeviceMetricsOverride",
                      {"width": self.size[0], "height": self.size[1], "deviceScaleFactor": 1, "mobile": False})
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop()

    def _stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(BrowserError, OSError):
            self.send("Browser.close", session=False, timeout=5)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # helpers (renderer, zygote) share the group
        self.proc.wait(timeout=10)
        os.close(self._to_browser)
        self._reader.join(timeout=10)
        os.close(self._from_browser)
        self.proc = None

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    # -- protocol -------------------------------------------------------------------------------
    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_browser, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._closed = True
                    self._cond.notify_all()
                return
            buf += chunk
            *messages, buf = buf.split(b"\0")
            for raw in messages:
                self._dispatch(json.loads(raw))

    def _dispatch(self, msg: dict[str, Any]) -> None:
        with self._cond:
            if "id" in msg:
                self._replies[msg["id"]] = msg
            else:
                self.events.append(msg)
                problem = _problem(msg)
                if problem is not None:
                    self.problems.append(problem)
            self._cond.notify_all()

    def send(self, method: str, params: dict[str, Any] | None = None, *, session: bool = True,
             timeout: float | None = None) -> dict[str, Any]:
        with self._cond:
            self._next_id += 1
            ident = self._next_id
        msg: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        try:
            os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        except BrokenPipeError:
            raise BrowserError(f"{method}: the browser is gone; its stderr ends: {self.stderr()[-1500:]}") from None
        with self._cond:
            if not self._cond.wait_for(lambda: ident in self._replies or self._closed, timeout or self.timeout):
                raise BrowserError(f"{method}: no answer in {timeout or self.timeout} s")
            if ident not in self._replies:
                raise BrowserError(f"{method}: the browser closed the pipe")
            reply = self._replies.pop(ident)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def wait_event(self, method: str, after: int) -> dict[str, Any]:
        """The first event ``method`` of the page's session among events ``after`` onwards."""
        def found() -> dict[str, Any] | None:
            return next((e for e in self.events[after:]
                         if e.get("method") == method and e.get("sessionId") == self.session), None)

        with self._cond:
            if not self._cond.wait_for(lambda: found() is not None or self._closed, self.timeout):
                raise BrowserError(f"no {method} in {self.timeout} s")
            event = found()
        if event is None:
            raise BrowserError(f"the browser closed the pipe before {method}")
        return event

    # -- page -----------------------------------------------------------------------------------
    def open(self, url: str) -> None:
        """Navigate and wait for the load event; :class:`BrowserError` if the navigation failed."""
        with self._cond:
            mark = len(self.events)
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"{url}: {result['errorText']}")
        self.wait_event("Page.loadEventFired", mark)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (DevTools evaluation, not page script)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})["data"]
        path.write_bytes(base64.b64decode(data))


def _above(fd: int, low: int) -> int:
    """``fd`` moved to the lowest free descriptor >= ``low``."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, low)
    os.close(fd)
    return moved


def _problem(event: dict[str, Any]) -> str | None:
    """A readable line for an event that means the page has a problem, else None."""
    method, params = event.get("method"), event.get("params", {})
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
        return f"console.{params['type']}: {args}"
    if method == "Runtime.exceptionThrown":
        details = params.get("exceptionDetails", {})
        return f"exception: {details.get('exception', {}).get('description') or details.get('text')}"
    if method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
        entry = params["entry"]
        return f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip()
    return None

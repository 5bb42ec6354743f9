"""kafka-python's consumer in a process of its own: the records parsed on a second core.

kafka-python makes every record in Python on the thread that polls (~4 us a record here; ~1.5 us
with aiokafka's record reader, daemon/kafka_records.py): in one process the client and the
daemon's own work share one core, and the loop ran at 1 / (1/client + 1/daemon), 0.55-0.59x the
client's rate alone (bench/kafka_run.py; 0.69-0.81x of kafka-python's own rate with the reader).
Here the consumer (``KafkaSource``, its record queues included) runs in a child process, which
reads the next polls while the daemon handles this one (1.31-1.41x the loop in one process);
what crosses is each poll's offsets, keys and values as three lists per partition (one pickle,
~1 ms a poll of 5,000), not record objects.

The semantics stay those of the in-process source. The child sends one ordered stream: batches,
and the rebalance callbacks (``stored_offsets``, ``on_revoke``, ``on_assign``, ``on_revoked``)
as calls the daemon answers; ``poll`` takes them in that order, so a batch polled before a
revocation is handled before the revocation's checkpoint. ``commit``, ``seek`` and ``lag`` are
calls the child answers between two polls. While the daemon waits for one of them, a callback is
answered at once, one that came before it included: kafka-python calls the callbacks on its IO
thread, and the child's poll waits for that thread, so the child answers nothing until its
callback is answered (in one process the callback ran on that thread while the loop waited; a
batch of a revoked partition handled after the revocation is dropped by the kafka backend's
ownership, and re-read from the revocation's checkpoint by its next owner). An assignment drops
what waits here of partitions sought anew or no longer held, as a seek does of its partitions
(``SourceBase`` drops the same from its record queues). The child's log records
go to the daemon's loggers. It ignores SIGINT and SIGTERM, exits when closed (leaving the group)
or when the daemon is gone, and is killed by its PID if it does not exit when closed.

kafka-python sends the heartbeats from the same event loop that runs the rebalance callbacks. The
child's callbacks wait for the daemon as coroutines on it (``AsyncConsumerRebalanceListener``), so
a revocation that checkpoints many models does not stop the heartbeats and get the member expelled
from the group (a callback that blocks the loop past ``kafka.session_timeout`` does).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from multiprocessing.connection import Connection
from typing import Any

from driftwarden.daemon.kafka_outage import StoppedWaiting
from driftwarden.daemon.kafka_settings import KafkaSettings, parse_duration
from driftwarden.daemon.polled import Polled, RecordReader, Run

log = logging.getLogger(__name__)

Offsets = dict[tuple[str, int], int]
# one partition's records of a poll: topic, partition, offsets, keys, values
Columns = tuple[str, int, list[int], list[bytes | None], list[bytes | None]]
CALLS = ("commit", "seek", "lag")  # what the daemon may ask of the child's source
CALL_SECONDS = 120.0  # a call the child does not answer in this long: it is stuck (its calls time out in 30 s)
CLOSE_SECONDS = 40.0


class ConsumerProcessFailed(RuntimeError):
    """The consumer process raised (the message names its error) or died."""


def _log_levels() -> dict[str, int]:
    """The daemon's log levels of the loggers the consumer logs to (kafka-python's are quieter, daemon/logs.py)."""
    levels = {"": logging.getLogger("driftwarden").getEffectiveLevel()}
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and logger.level and name.split(".")[0] in ("kafka", "driftwarden"):
            levels[name] = logger.level
    return levels


def _run_of(columns: Columns) -> Run:
    """A run over the columns themselves: record ``i`` is the index, read from each column."""
    topic, partition, offsets, keys, values = columns
    reader = RecordReader(offsets.__getitem__, keys.__getitem__, values.__getitem__, lambda i: 0)
    return Run(topic, partition, range(len(offsets)), reader)


class ProcessSource:
    """The ``Source`` protocol over a kafka-python ``KafkaSource`` running in a child process."""

    def __init__(
        self,
        settings: KafkaSettings,
        stored_offsets: Callable[[], Offsets],
        on_revoke: Callable[[], None],
        stop_event: threading.Event | None = None,
        on_assign: Callable[..., None] | None = None,
        on_revoked: Callable[..., None] | None = None,
    ) -> None:
        self._hooks: dict[str, Callable[..., Any]] = {"stored_offsets": stored_offsets, "on_revoke": on_revoke}
        if on_assign is not None:
            self._hooks["on_assign"] = on_assign
        if on_revoked is not None:
            self._hooks["on_revoked"] = on_revoked
        self._timeout = parse_duration(settings.poll_timeout)
        self._inbox: collections.deque[tuple[str, Any]] = collections.deque()  # ("batch", Polled) | ("call", ...)
        self._problem: str | None = None
        self._uncommitted: Offsets = {}
        self._assignment: frozenset[tuple[str, int]] = frozenset()
        self._calls = 0
        self._closed = False
        # the thread reading the child's pipe now, and how deep (a callback it serves may commit): one at a time
        self._guard = threading.Lock()
        self._user: int | None = None
        self._depth = 0
        # a fresh interpreter (``python -m``), not multiprocessing's fork (the daemon has threads) or spawn
        # (which runs the parent's __main__ again): three pipes, handed over by their descriptors
        data_r, data_w = os.pipe()  # child -> daemon: batches, callbacks, answers, logs
        control_r, control_w = os.pipe()  # daemon -> child: commit, seek, lag, close
        replies_r, replies_w = os.pipe()  # daemon -> child: answers to its callbacks
        ends = (data_w, control_r, replies_r)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "driftwarden.daemon.consumer_process", *map(str, ends)],
                pass_fds=ends, stdin=subprocess.DEVNULL,
            )
        finally:
            for end in ends:
                os.close(end)
        self._data = Connection(data_r, writable=False)
        self._control = Connection(control_w, readable=False)
        self._replies = Connection(replies_w, readable=False)
        self._control.send((settings, sorted(self._hooks), _log_levels()))
        try:
            self._wait_ready(stop_event)
        except ConsumerProcessFailed as exc:
            self._kill(wait=0)
            raise ConsumerProcessFailed(f"{exc} (kafka.consumer_process: false consumes in the daemon's "
                                        "process instead)") from exc
        except BaseException:
            self._kill(wait=0)  # it has not joined the group: nothing to leave
            raise

    def _wait_ready(self, stop_event: threading.Event | None) -> None:
        """Until the child's consumer is connected and subscribed (it waits for a broker as the source does)."""
        while True:
            if stop_event is not None and stop_event.is_set():
                raise StoppedWaiting("consumer")
            if not self._data.poll(0.2):
                continue
            kind, value = self._receive()
            if kind == "ready":
                return
            if kind in ("batch", "call"):  # kafka-python's IO thread may join the group before "ready"
                self._inbox.append((kind, value))

    # what the child sends
    def _receive(self) -> tuple[str, Any]:
        """The child's next message. Logs and status are taken here (returned as "taken"); batches, callbacks
        and answers are returned; a failure of the child is raised."""
        try:
            message = self._data.recv()
        except (EOFError, OSError) as exc:
            raise ConsumerProcessFailed(
                f"the kafka consumer process (pid {self.process.pid}) exited (code {self.process.poll()})"
            ) from exc
        kind = message[0]
        if kind == "log":
            record = logging.makeLogRecord(message[1])
            logger = logging.getLogger(record.name)
            if logger.isEnabledFor(record.levelno):
                logger.handle(record)
            return "taken", None
        if kind == "status":
            self._problem, self._uncommitted, self._assignment = message[1], message[2], message[3]
            return "taken", None
        if kind == "failed":
            error, trace = message[1], message[2]
            raise ConsumerProcessFailed(f"the kafka consumer process failed: {error}\n{trace}")
        if kind == "batch":
            self._problem = message[2]
            return "batch", Polled(map(_run_of, message[1]))
        if kind == "moved":
            self._moved(message[1], message[2])
            return "taken", None
        return kind, message[1]

    @contextlib.contextmanager
    def _reading(self, what: str) -> Iterator[None]:
        """Mark the pipe in use by this thread while ``what`` runs: a second thread gets a clear error.

        The data pipe takes one reader: two threads reading it split a message (``UnpicklingError``),
        and a lock would deadlock (the loop serves an ``on_revoke`` that takes the App's lock while
        another thread holding it would wait for the pipe). A source is its loop's alone; only
        :meth:`assigned` is for any thread. The thread that uses it may call it again from a
        callback it serves (``on_revoke`` checkpoints and commits).
        """
        me = threading.get_ident()
        with self._guard:
            if self._user not in (None, me):
                raise RuntimeError(f"ProcessSource.{what} called from thread {threading.current_thread().name} "
                                   f"while another thread ({self._user}) uses the source: it is its loop's alone "
                                   "(only assigned() is safe from any thread)")
            self._user, self._depth = me, self._depth + 1
        try:
            yield
        finally:
            with self._guard:
                self._depth -= 1
                if not self._depth:
                    self._user = None

    def _serve(self, call: Any) -> None:
        """Answer one callback of the child (it waits)."""
        name, args = call
        try:
            result = self._hooks[name](*args)
        except BaseException as exc:
            self._replies.send(("error", f"{type(exc).__name__}: {exc}"))
            raise
        self._replies.send(("ok", result))

    def _call(self, name: str, *args: Any) -> Any:
        """Ask the child (between two of its polls); batches it sends before the answer wait in order.

        Callbacks are answered at once, those waiting here first: the child's loop answers between
        two polls, and its poll waits for kafka-python's IO thread, which waits in the callback (a
        seek needs no broker, but the child cannot read it before the callback returns)."""
        if self._closed:
            raise ConsumerProcessFailed("the kafka consumer process is closed")
        with self._reading(name):
            return self._ask(name, args)

    def _ask(self, name: str, args: tuple[Any, ...]) -> Any:
        self._calls += 1
        number = self._calls
        self._control.send(("call", number, name, args))
        self._serve_waiting()
        deadline = time.monotonic() + CALL_SECONDS
        while time.monotonic() < deadline:
            if not self._data.poll(min(1.0, max(0.0, deadline - time.monotonic()))):
                if self.process.poll() is not None:
                    self._receive()  # raises with its exit code
                continue
            kind, value = self._receive()
            if kind == "reply" and value[0] == number:
                result, self._problem, self._uncommitted = value[1], value[2], value[3]
                return result
            if kind == "call":
                self._serve(value)
            elif kind == "batch":
                self._inbox.append((kind, value))
        raise ConsumerProcessFailed(f"the kafka consumer process did not answer {name} in {CALL_SECONDS:.0f} s")

    def _serve_waiting(self) -> None:
        """Answer the callbacks waiting here behind batches (the child waits in the first of them)."""
        waiting = [value for kind, value in self._inbox if kind == "call"]
        if waiting:
            self._inbox = collections.deque(entry for entry in self._inbox if entry[0] == "batch")
            for value in waiting:
                self._serve(value)

    def _moved(self, sought: list[tuple[str, int]], assigned: list[tuple[str, int]]) -> None:
        """An assignment: what waits here of partitions sought anew (to the checkpoint) or no longer held
        was read before it, and goes (as the child's record queues drop theirs)."""
        keep = set(assigned) - set(sought)
        self._assignment = frozenset(assigned)
        self._drop(lambda key: key not in keep)

    def _drop(self, stale: Callable[[tuple[str, int]], bool]) -> None:
        for i, (kind, value) in enumerate(self._inbox):
            if kind == "batch":
                self._inbox[i] = (kind, Polled(r for r in value.runs if not stale((r.topic, r.partition))))

    # the Source protocol
    @property
    def problem(self) -> str | None:
        return self._problem

    @property
    def uncommitted(self) -> Offsets:
        return dict(self._uncommitted)

    def poll(self) -> Polled:
        """The child's next batch (callbacks that came before it answered first); empty after ``poll_timeout``."""
        with self._reading("poll"):
            return self._next_batch()

    def _next_batch(self) -> Polled:
        deadline = time.monotonic() + self._timeout
        while True:
            while self._inbox:
                kind, value = self._inbox.popleft()
                if kind == "batch":
                    return value
                self._serve(value)
            # read at least once: with ``poll_timeout: 0`` the child's callbacks are still answered
            if not self._data.poll(max(0.0, deadline - time.monotonic())):
                if self.process.poll() is not None and not self._data.poll(0):
                    self._receive()  # raises with its exit code
                return Polled()
            kind, value = self._receive()
            if kind in ("batch", "call"):
                self._inbox.append((kind, value))

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        self._call("commit", dict(offsets))

    def seek(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Read these partitions from these offsets next; what was read of them before is dropped."""
        self._call("seek", dict(offsets))
        self._drop(set(offsets).__contains__)

    def assigned(self) -> set[tuple[str, int]]:
        """The partitions this member held at the child's last poll (any thread: no call to the child)."""
        return set(self._assignment)

    def lag(self) -> dict[tuple[str, int], int]:
        behind: dict[tuple[str, int], int] = self._call("lag")
        if behind:  # what waits here was fetched, not handled
            for kind, value in self._inbox:
                if kind == "batch":
                    for run in value.runs:
                        key = (run.topic, run.partition)
                        if key in behind:
                            behind[key] += len(run.records)
        return behind

    def close(self) -> None:
        """Leave the group (the child's callbacks are answered meanwhile), then stop the child by its PID."""
        if self._closed:
            return
        with self._reading("close"):
            self._close()

    def _close(self) -> None:
        self._closed = True
        try:
            self._control.send(("close",))
            self._serve_waiting()  # the child leaves the group once its callback is answered
            deadline = time.monotonic() + CLOSE_SECONDS
            while time.monotonic() < deadline and self._data.poll(max(0.0, deadline - time.monotonic())):
                kind, value = self._receive()
                if kind == "closed":
                    break
                if kind == "call":
                    self._serve(value)
        except (ConsumerProcessFailed, OSError) as exc:
            log.warning("kafka consumer process: %s", exc)
        finally:
            self._kill()

    def _kill(self, wait: float = 5.0) -> None:
        """Stop the child by its PID if it has not exited within ``wait`` seconds; close the pipes."""
        try:
            self.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        for end in (self._data, self._control, self._replies):
            end.close()


# the child
class _Channel:
    """The child's one stream to the daemon, in order: the poll loop, kafka-python's IO thread (callbacks)
    and logging put messages here; one thread sends them. Up to ``AHEAD`` wait, so that polls run ahead of
    the daemon by more than one (its batches take 10-100 ms each: a poll of outcomes alone is quick)."""

    AHEAD = 4

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(maxsize=self.AHEAD)
        self.broken = threading.Event()
        self.thread = threading.Thread(target=self._send_all, name="driftwarden-consumer-send", daemon=True)
        self.thread.start()

    def send(self, message: tuple[Any, ...]) -> None:
        while not self.broken.is_set():
            try:
                self.queue.put(message, timeout=0.5)
                return
            except queue.Full:
                continue
        raise BrokenPipeError("the daemon is gone")

    def _send_all(self) -> None:
        while (message := self.queue.get()) is not None:
            try:
                self.connection.send(message)
            except OSError:  # BrokenPipeError: the daemon is gone
                self.broken.set()
                return

    def close(self) -> None:
        """Send what waits, then stop the sending thread (idempotent)."""
        if not self.broken.is_set() and self.thread.is_alive():
            try:
                self.queue.put(None, timeout=10)
            except queue.Full:
                return
            self.thread.join(timeout=10)


class _LogToDaemon(logging.Handler):
    def __init__(self, channel: _Channel) -> None:
        super().__init__()
        self.channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = dict(record.__dict__)
            fields["msg"], fields["args"] = record.getMessage(), None
            fields["exc_info"], fields["exc_text"] = None, self.format(record) if record.exc_info else None
            self.channel.send(("log", fields))
        except Exception:  # the daemon is gone: nowhere to log to
            pass


class _Hook:
    """A callback of the daemon's, called from kafka-python's IO thread: it waits for the daemon's answer,
    either blocking that thread (``__call__``) or as a coroutine on its event loop (``wait``)."""

    def __init__(self, name: str, channel: _Channel, replies: Connection, gone: threading.Event,
                 lock: threading.Lock) -> None:
        self.name, self.channel, self.replies, self.gone = name, channel, replies, gone
        self.lock = lock  # the hooks': one callback at a time waits for its answer

    def __call__(self, *args: Any) -> Any:
        with self.lock:
            self._ask(args)
            return self._answer()

    async def wait(self, net: Any, *args: Any) -> Any:
        """The same on kafka-python's event loop: it waits for the answer on the pipe's descriptor, so its
        other tasks (the heartbeats) go on while the daemon answers (checkpointing many models)."""
        if not self.lock.acquire(blocking=False):
            raise RuntimeError(f"{self.name} called while another callback waits for the daemon")
        try:
            self._ask(args)
            while not self.replies.poll(0):
                await net.wait_read(self.replies)
            return self._answer()
        finally:
            self.lock.release()

    def _ask(self, args: tuple[Any, ...]) -> None:
        try:
            self.channel.send(("call", (self.name, args)))
        except OSError as exc:
            self.gone.set()
            raise RuntimeError(f"no daemon to answer {self.name}") from exc

    def _answer(self) -> Any:
        try:
            kind, value = self.replies.recv()
        except (OSError, EOFError) as exc:
            self.gone.set()
            raise RuntimeError(f"no daemon to answer {self.name}") from exc
        if kind != "ok":
            raise RuntimeError(f"the daemon's {self.name} failed: {value}")
        return value


def _hook(hook: Callable[..., Any]) -> _Hook:
    """The child's sources are given its hooks (``child_main``)."""
    assert isinstance(hook, _Hook), hook
    return hook


def _child_source(channel: _Channel) -> type:
    from driftwarden.daemon.kafka_io import KafkaSource

    class ChildSource(KafkaSource):
        """The consumer, telling the daemon of each assignment (from kafka-python's IO thread, in order)."""

        def _awaiting(self, net: Any) -> Any:
            # the hooks wait for the daemon's answer on the reply pipe, as coroutines on kafka-python's loop
            return lambda hook, *args: _hook(hook).wait(net, *args)

        def _assignment_changed(self, moved: Iterable[tuple[str, int]]) -> None:
            sought = sorted(moved)
            super()._assignment_changed(sought)
            channel.send(("moved", sought, sorted(self._assigned())))

    return ChildSource


def _columns(polled: Polled) -> list[Columns]:
    out = []
    for run in polled.runs:
        assert run.partition is not None
        out.append((run.topic, run.partition, list(map(run.reader.offset, run.records)),
                    run.key_column(), run.value_column()))
    return out


def _exit_with(parent: int) -> Callable[[], None]:
    """A watchdog for where the pipes are not read (waiting for a broker before the first poll): when the
    daemon is gone (killed: this process is handed to another parent), exit."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)
    return watch


def child_main(data: Connection, control: Connection, replies: Connection) -> None:
    """The consumer process: connect, then poll and send until told to close or the daemon is gone."""
    # its life is the daemon's: Ctrl-C in a terminal (the process group) or systemd's SIGTERM to every
    # process of the unit must not end it before the daemon closes it; when the daemon is gone, it goes
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with(os.getppid()), name="driftwarden-consumer-watchdog", daemon=True).start()
    settings, hooks, levels = control.recv()
    channel = _Channel(data)
    root = logging.getLogger()
    root.handlers[:] = [_LogToDaemon(channel)]
    for name, level in levels.items():
        logging.getLogger(name or None).setLevel(level)
    gone = threading.Event()  # the daemon's pipes closed: it exited or was killed
    answering = threading.Lock()

    def call(name: str) -> _Hook:
        return _Hook(name, channel, replies, gone, answering)

    try:
        source = _child_source(channel)(settings, call("stored_offsets"), call("on_revoke"),
                             on_assign=call("on_assign") if "on_assign" in hooks else None,
                             on_revoked=call("on_revoked") if "on_revoked" in hooks else None)
    except BaseException as exc:
        _fail(channel, exc)
        return
    try:
        _serve(source, channel, control)
    except (OSError, EOFError):  # the daemon is gone
        gone.set()
    except BaseException as exc:
        if not (gone.is_set() or channel.broken.is_set()):
            _fail(channel, exc)
    finally:
        try:
            source.close()  # leaves the group (its revoke callback, with the daemon gone, fails at once)
        except Exception as exc:  # closing what is left; nobody to tell but the log
            if not gone.is_set():
                log.warning("closing the consumer: %s", exc)
        channel.close()


def _serve(source: Any, channel: _Channel, control: Connection) -> None:
    """Poll and send; between two polls, answer the daemon's calls; return when told to close."""
    reported = None  # what the daemon last heard of the consumer: its problem and assignment
    channel.send(("ready", None))
    while True:
        while control.poll(0):
            command = control.recv()  # EOFError: the daemon is gone
            if command[0] == "close":
                source.close()
                channel.send(("closed", None))
                return
            _, number, name, args = command
            assert name in CALLS, name
            result = getattr(source, name)(*args)
            channel.send(("reply", (number, result, source.problem, source.uncommitted)))
        polled = source.poll()
        state = (source.problem, frozenset(source.assigned()))
        if state != reported:
            channel.send(("status", state[0], source.uncommitted, state[1]))
            reported = state
        if polled:
            channel.send(("batch", _columns(polled), source.problem))


def _fail(channel: _Channel, exc: BaseException) -> None:
    """Tell the daemon why this process ends (its poll raises it)."""
    with contextlib.suppress(OSError):  # the daemon is gone too
        channel.send(("failed", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    channel.close()

if __name__ == "__main__":
    data_fd, control_fd, replies_fd = map(int, sys.argv[1:4])
    child_main(Connection(data_fd, readable=False), Connection(control_fd, writable=False),
               Connection(replies_fd, writable=False))

"""How a CLI verb fails: one line ``driftwarden VERB: what (what to do)`` and an exit code.

Commands raise :class:`CommandError` for problems the user can fix; :func:`describe_failure`
also knows the library errors a verb is expected to meet (a config, a data file, a bundle,
a broker) and calls everything else a bug.

>>> describe_failure("compare", CommandError("no such file: a.csv", "check the path"))
(2, 'driftwarden compare: no such file: a.csv (check the path)')
>>> describe_failure("status", FileNotFoundError(2, "No such file or directory", "var/x.db"))
(2, 'driftwarden status: var/x.db: No such file or directory (check the path and its permissions)')
>>> describe_failure("report", ZeroDivisionError("division by zero"))[1]
'driftwarden report: unexpected ZeroDivisionError: division by zero (a bug: rerun with -v for the traceback and report it)'
"""

from __future__ import annotations

import sys

EXIT_OK = 0
EXIT_FINDING = 1
EXIT_INPUT = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """A problem the user can fix: bad input, a missing file, a wrong option combination."""

    def __init__(self, what: str, advice: str = "", exit_code: int = EXIT_INPUT) -> None:
        super().__init__(what)
        self.what = what
        self.advice = advice
        self.exit_code = exit_code

    def line(self) -> str:
        return f"{self.what} ({self.advice})" if self.advice else self.what


def one_line(text: str) -> str:
    """A library's message on one line: its lines joined with ``; ``."""
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _known(exc: BaseException) -> tuple[str, str] | None:
    """(what, what to do) for the errors a verb is expected to meet; None for anything else.

    Imported here, on the error path only: a verb that fails need not be fast, ``--help`` should.
    """
    from driftwarden.alerts.reports.bundle import BundleError
    from driftwarden.daemon.reference import ReferenceError

    if isinstance(exc, ReferenceError):
        return one_line(str(exc)), "check the file's path, format (.csv, .parquet, .jsonl) and columns"
    if isinstance(exc, BundleError):
        return one_line(str(exc)), "give the .replay.tar.gz a report wrote, unchanged"
    kafka_errors = sys.modules.get("kafka.errors")  # loaded only by the verbs that talk to Kafka
    if kafka_errors is not None and isinstance(exc, kafka_errors.KafkaError):
        return (f"Kafka: {one_line(str(exc)) or type(exc).__name__}",
                "check kafka.bootstrap_servers (or --bootstrap-servers) and that the broker is up")
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or one_line(str(exc))}", "check the path and its permissions"
    return None


def describe_failure(verb: str, exc: BaseException) -> tuple[int, str]:
    """(exit code, the message for stderr) for an exception that ended ``verb``."""
    from driftwarden.daemon.config import ConfigError

    if isinstance(exc, CommandError):
        return exc.exit_code, f"driftwarden {verb}: {one_line(exc.line())}"
    if isinstance(exc, ConfigError):  # also PreflightError: a header line, then one line per problem
        return EXIT_INPUT, f"driftwarden {verb}: {exc}"
    known = _known(exc)
    if known is not None:
        return EXIT_INPUT, f"driftwarden {verb}: {known[0]} ({known[1]})"
    return EXIT_BUG, (f"driftwarden {verb}: unexpected {type(exc).__name__}: {one_line(str(exc))} "
                      "(a bug: rerun with -v for the traceback and report it)")

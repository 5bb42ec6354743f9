"""The daemon's log lines: plain text for people, or one JSON object per line for log shippers.

A JSON line holds ``ts`` (RFC 3339, UTC, milliseconds), ``level``, ``logger`` and ``message``,
then every field a call site passed with ``extra=`` (``model``, ``topic``, ``partition``,
``offset``...), then ``exception`` when there is one: the traceback as one JSON string.

>>> import logging
>>> record = logging.LogRecord("driftwarden", logging.WARNING, __file__, 1, "model %s: %d", ("churn", 3), None)
>>> record.created = 1796000000.25
>>> record.model = "churn"
>>> print(JsonFormatter().format(record))
{"ts": "2026-11-30T00:53:20.250Z", "level": "warning", "logger": "driftwarden", "message": "model churn: 3", "model": "churn"}
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

#: attributes every LogRecord has: anything else on a record came from ``extra=``
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
#: libraries whose INFO lines are noise next to ours
_QUIET = {"kafka": logging.WARNING, "kafka.net.selector": logging.ERROR, "apscheduler": logging.WARNING,
          "numba": logging.WARNING, "matplotlib": logging.WARNING, "PIL": logging.WARNING}


def rfc3339(ts: float) -> str:
    """``1796000000.25`` -> ``'2026-11-30T00:53:20.250Z'``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (a traceback is one escaped string field)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {"ts": rfc3339(record.created), "level": record.levelname.lower(),
                               "logger": record.name, "message": record.getMessage()}
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_") and name not in doc:
                doc[name] = _plain(value)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exception"] = record.exc_text
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (as redirected by a caller)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(log_format: LogFormat = "text", level: str = "info", *, verbose: bool = False) -> None:
    """(Re)configure the root logger: our stderr handler in ``log_format`` at ``level`` (``verbose``: debug).

    Calling it again (once the config's ``logging`` section is read) replaces our handler only;
    handlers someone else installed stay.
    """
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, StderrHandler):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else LEVELS[level])
    for name, quiet in _QUIET.items():
        logging.getLogger(name).setLevel(quiet)

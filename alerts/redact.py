"""Secrets out of everything we write down: delivery errors, log lines, ``status`` output.

Two nets, applied together by :func:`redact`:

* the secret values actually configured (Slack token, webhook URL, signing secret, CI token,
  ...), registered with :func:`register_secret` when the notifiers are built from the
  environment, also in their percent-encoded forms;
* secret *shapes*, for values we were never told about: Slack tokens (``xoxb-...``,
  ``xapp-...``), the path of a ``hooks.slack.com`` URL, GitHub/GitLab tokens, the userinfo
  of a URL, token-like query parameters and ``key: value`` pairs (``token``, ``secret``,
  ``password``, ``api_key`` ...), ``Authorization`` header values and ``Bearer`` tokens.

>>> redact("SlackRequestError: Invalid URL detected: https://hooks.slack.com/services/T000/B000/XXXX")
'SlackRequestError: Invalid URL detected: https://hooks.slack.com/[REDACTED]'
>>> redact("token xoxb-1234-5678-abcdef refused; retry https://ci:hunter2@ci.example/hook?ref=main&token=abc123")
'token xoxb-[REDACTED] refused; retry https://[REDACTED]@ci.example/hook?ref=main&token=[REDACTED]'
>>> redact("headers {'Authorization': 'Bearer ghp_0123456789abcdefghij'}")
"headers {'Authorization': '[REDACTED]'}"
>>> redact("receivers.ops.token_env: environment variable SLACK_BOT_TOKEN is not set")
'receivers.ops.token_env: environment variable SLACK_BOT_TOKEN is not set'
>>> redact("HTTP 403: the key s3cr3t-value is wrong", secrets=["s3cr3t-value"])
'HTTP 403: the key [REDACTED] is wrong'

:class:`RedactingFilter` does the same to log records; :func:`install_log_filter` puts it on
the driftwarden loggers, the libraries that log our requests and the root handlers.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "[REDACTED]"
MIN_SECRET_LENGTH = 4  # shorter values would blank out ordinary words; they are only caught by shape

_KEYS = r"(?:[a-z0-9_-]*token|[a-z0-9_-]*secret|[a-z0-9_-]*password|passwd|pwd|api[_-]?key|private[_-]?key)"
_SHAPES: list[tuple[re.Pattern[str], str]] = [
    # Authorization / Proxy-Authorization header values, whatever the scheme
    (re.compile(r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|token|bot)\s+)?[^\s\"',;}]+"),
     rf"\1{MASK}"),
    (re.compile(r"\b(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE), rf"\1{MASK}"),
    (re.compile(r"\b(xox[a-z]|xapp)-[A-Za-z0-9-]+"), rf"\1-{MASK}"),
    (re.compile(r"\b(gh[pousr]_|github_pat_|glpat-)[A-Za-z0-9_-]{8,}"), rf"\1{MASK}"),
    (re.compile(r"(?i)(hooks\.slack\.com/)[^\s\"'<>]+"), rf"\1{MASK}"),
    # userinfo of a URL: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#\"']+@"), rf"\1{MASK}@"),
    # query or form parameters
    (re.compile(rf"(?i)([?&;]{_KEYS}=|[?&;](?:key|sig|signature|code|auth)=)[^&\s#\"']+"), rf"\1{MASK}"),
    # key: value, key=value, "key": "value" (a dict or JSON repr, an env dump)
    (re.compile(rf"(?i)([\"']?\b{_KEYS}[\"']?\s*[:=]\s*[\"']?)(?!{re.escape(MASK)})[^\s\"',;}}&]+"), rf"\1{MASK}"),
]

_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()


def register_secret(*values: str | None) -> None:
    """Remember configured secret values (and their percent-encoded forms) for :func:`redact`."""
    global _secrets
    forms = {f for v in values if v and len(v) >= MIN_SECRET_LENGTH for f in (v, quote(v, safe=""), quote_plus(v))}
    if forms:
        with _lock:
            _secrets = _secrets | forms


def known_secrets() -> frozenset[str]:
    return _secrets


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` without configured secrets (the registered ones plus ``secrets``) and secret shapes."""
    values = set(_secrets)
    values.update(s for s in secrets or () if s and len(s) >= MIN_SECRET_LENGTH)
    for value in sorted(values, key=len, reverse=True):  # longest first: a URL before the token inside it
        if value in text:
            text = text.replace(value, MASK)
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, traceback and stack text through :func:`redact`.

    A record is never dropped; an exception whose text holds a secret is kept as its redacted
    traceback text (``exc_text``) only, without the exception object.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler's error reporting
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            text = record.exc_text or _FORMATTER.formatException(record.exc_info)
            record.exc_text = redact(text)  # formatters print exc_text when it is set
            if record.exc_text != text:  # the exception object itself holds a secret: drop it
                record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FORMATTER = logging.Formatter()
FILTER = RedactingFilter()
LOGGERS = ("driftwarden", "alerts", "daemon", "detectors", "slack_sdk", "urllib3", "kafka", "apscheduler")


def install_log_filter() -> None:
    """Put :data:`FILTER` on the driftwarden loggers (and their existing children), on the
    loggers of the libraries that see our requests, and on the root logger's handlers
    (which also covers loggers created later). Idempotent."""
    names = set(LOGGERS)
    names.update(n for n in list(logging.root.manager.loggerDict) if n.split(".", 1)[0] in LOGGERS)
    targets: list[logging.Filterer] = [logging.getLogger(n) for n in sorted(names)]
    targets += logging.getLogger().handlers
    for target in targets:
        if FILTER not in target.filters:
            target.addFilter(FILTER)

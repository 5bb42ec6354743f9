"""``driftwarden silence add|list|expire``: run-time silences in the daemon's alert database.

The running daemon reads the same SQLite file, so a silence takes effect at its next evaluation.
The config is read for ``state.path`` only: its reference files need not exist here.
Exit codes: 0 done, 2 bad input (a matcher, a duration, an unknown silence id).
"""

from __future__ import annotations

import argparse
import getpass
import time
from datetime import UTC, datetime

from driftwarden.alerts.silences import SilenceStore
from driftwarden.daemon.app import outbox_path
from driftwarden.daemon.command_errors import CommandError
from driftwarden.daemon.config import load_config, parse_duration


def _store(args: argparse.Namespace) -> SilenceStore:
    if not args.config:
        raise CommandError("no config given", "driftwarden silence -c CONFIG ACTION")
    return SilenceStore(str(outbox_path(load_config(args.config, check_files=False))))


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def add(args: argparse.Namespace) -> int:
    matchers = list(args.matcher or [])
    if args.model:
        matchers.append(f'model="{args.model}"')
    if not matchers:
        raise CommandError("nothing to silence", "give --model or at least one --matcher, e.g. 'kind=\"data_drift\"'")
    now = time.time()
    try:
        ends = now + parse_duration(args.duration)
    except ValueError as exc:
        raise CommandError(f"--duration: {exc}") from exc
    store = _store(args)
    try:
        silence_id = store.add(matchers, now, ends, args.comment, args.created_by or getpass.getuser())
    except ValueError as exc:  # a bad matcher (the message says how to write one): store nothing
        raise CommandError(str(exc)) from exc
    finally:
        store.close()
    print(f"silence {silence_id}: {', '.join(matchers)} until {_when(ends)}")
    return 0


def list_(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        silences = store.list(time.time())
    finally:
        store.close()
    if not silences:
        print("no active silences")
    for s in silences:
        print(f"{s.id}  {', '.join(s.matchers)}  {_when(s.starts_at)} -> {_when(s.ends_at)}  "
              f"by {s.created_by}: {s.comment}")
    return 0


def expire(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        ok = store.expire(args.id, time.time())
    finally:
        store.close()
    if not ok:
        raise CommandError(f"no active silence {args.id}", "see the active ones with: driftwarden silence -c CONFIG list")
    print(f"silence {args.id}: expired")
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser,
             formatter: type[argparse.HelpFormatter]) -> None:
    """``silence`` with its own verbs; ``common``: the options every verb takes (-v, --log-format)."""
    p = sub.add_parser("silence", help="add, list or expire run-time silences", parents=[common],
                       formatter_class=formatter)
    p.add_argument("-c", "--config", metavar="CONFIG", help="the daemon's YAML configuration (before or after ACTION)")
    ss = p.add_subparsers(dest="silence_command", required=True, metavar="ACTION")
    a = ss.add_parser("add", help="mute matching alerts for a while", parents=[common], formatter_class=formatter)
    a.add_argument("-c", "--config", default=argparse.SUPPRESS, metavar="CONFIG", help="the same as before the action")
    a.add_argument("--model", help='silence this model\'s alerts (the matcher model="ID")')
    a.add_argument("--matcher", action="append", help='label matcher, e.g. kind="data_drift" (repeatable)')
    a.add_argument("--duration", required=True, help="how long, e.g. 30m, 2h, 1d")
    a.add_argument("--comment", required=True, help="why (shown with the silence)")
    a.add_argument("--created-by", help="who (default: the login name)")
    a.set_defaults(func=add)
    ls = ss.add_parser("list", help="active and upcoming silences", parents=[common], formatter_class=formatter)
    ls.add_argument("-c", "--config", default=argparse.SUPPRESS, metavar="CONFIG", help="the same as before the action")
    ls.set_defaults(func=list_)
    e = ss.add_parser("expire", help="end a silence now", parents=[common], formatter_class=formatter)
    e.add_argument("-c", "--config", default=argparse.SUPPRESS, metavar="CONFIG", help="the same as before the action")
    e.add_argument("id", help="the silence's id (from add or list)")
    e.set_defaults(func=expire)

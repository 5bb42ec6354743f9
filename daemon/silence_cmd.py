"""``driftwarden silence add|list|expire``: run-time silences in the daemon's alert database.

The running daemon reads the same SQLite file, so a silence takes effect at its next evaluation.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from datetime import UTC, datetime

from alerts.silences import SilenceStore
from daemon.app import outbox_path
from daemon.config import load_config, parse_duration


def _store(args: argparse.Namespace) -> SilenceStore:
    return SilenceStore(str(outbox_path(load_config(args.config))))


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def add(args: argparse.Namespace) -> int:
    matchers = list(args.matcher or [])
    if args.model:
        matchers.append(f'model="{args.model}"')
    if not matchers:
        raise SystemExit("silence add: give --model or at least one --matcher (e.g. 'kind=\"data_drift\"')")
    now = time.time()
    store = _store(args)
    try:
        ends = now + parse_duration(args.duration)
        silence_id = store.add(matchers, now, ends, args.comment, args.created_by or getpass.getuser())
    except ValueError as exc:  # a bad matcher or duration: say which, store nothing
        print(f"silence add: {exc}", file=sys.stderr)
        return 2
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
    print(f"silence {args.id}: {'expired' if ok else 'not found or already expired'}")
    return 0 if ok else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("silence", help="add, list or expire run-time silences")
    p.add_argument("-c", "--config", required=True)
    ss = p.add_subparsers(dest="silence_command", required=True)
    a = ss.add_parser("add", help="mute matching alerts for a while")
    a.add_argument("--model")
    a.add_argument("--matcher", action="append", help='label matcher, e.g. kind="data_drift" (repeatable)')
    a.add_argument("--duration", required=True, help="e.g. 2h")
    a.add_argument("--comment", required=True)
    a.add_argument("--created-by")
    a.set_defaults(func=add)
    ss.add_parser("list", help="active and upcoming silences").set_defaults(func=list_)
    e = ss.add_parser("expire", help="end a silence now")
    e.add_argument("id")
    e.set_defaults(func=expire)

"""``driftwarden`` command line: a thin layer over the daemon's modules."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from threadpoolctl import threadpool_limits

from daemon.config import ConfigError, load_config


def _run(args: argparse.Namespace) -> int:
    from daemon.app import App
    from daemon.http_server import HttpServer
    from daemon.kafka_io import open_dead_letters, open_source
    from daemon.kafka_outage import StoppedWaiting
    from daemon.preflight import preflight

    config = load_config(args.config)
    if args.bootstrap_servers:
        import msgspec

        config = msgspec.structs.replace(
            config, kafka=msgspec.structs.replace(config.kafka, bootstrap_servers=args.bootstrap_servers)
        )
    preflight(config, args.config, bind_http=True)  # before Kafka: config and environment problems exit 2
    log = logging.getLogger("driftwarden")
    stopping = threading.Event()  # set by SIGTERM/SIGINT, also while we wait for a broker that is not up yet

    def stop(signum: int, _frame: object) -> None:
        log.info("signal %d: finishing the batch in hand, then exiting", signum)
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        dead_letters = open_dead_letters(config.kafka, stop_event=stopping, compression_type=config.kafka.compression_type)
    except StoppedWaiting:
        log.info("stopped before Kafka was reachable")
        return 0
    app = App(config, dead_letters, producer=dead_letters.producer)
    app.stop_event = stopping
    try:
        source = open_source(config.kafka, stored_offsets=lambda: app.checkpoint.offsets(), on_revoke=app.save,
                             stop_event=stopping)
    except StoppedWaiting:
        log.info("stopped before Kafka was reachable")
        app.close()
        dead_letters.close()
        return 0
    server = None
    if config.http.enabled:
        server = HttpServer(config.http.host, config.http.port, app.metrics, app.reports_dir, app.health)
        server.start()
        logging.getLogger("driftwarden").info("http on %s:%d", *server.address)
    from daemon.scheduler import Maintenance

    maintenance = Maintenance(config, app.outbox)
    maintenance.start()
    try:
        app.run(source)
    finally:
        maintenance.stop()
        if server is not None:
            server.stop()
        dead_letters.close()
    return 0


def _check_config(args: argparse.Namespace) -> int:
    """Every check `run` makes before Kafka (no broker needed; the HTTP port may be in use by a daemon)."""
    from daemon.preflight import preflight

    try:
        config = load_config(args.file)
        preflight(config, args.file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{args.file}: ok ({len(config.models)} model(s): {', '.join(m.id for m in config.models)})")
    return 0


def _health(args: argparse.Namespace) -> int:
    """Exit 0 when the running daemon's /healthz says ok, 1 otherwise (for exec probes)."""
    import json
    import urllib.error
    import urllib.request

    url = load_config(args.config).http.local_url("/healthz")
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as err:
        body = json.loads(err.read() or b"{}")
    except (OSError, ValueError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    ok = bool(body.get("ok"))
    print(("healthy: " if ok else "unhealthy: ") + json.dumps(body), file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def _simulate(args: argparse.Namespace) -> int:
    from daemon.simulate_kafka import produce

    return produce(args)


def _demo(args: argparse.Namespace) -> int:
    from daemon.demo import run_demo

    return run_demo(args.config, args.workdir, events=args.events)


def _lazy(module: str, name: str) -> Any:
    """Import command implementations only when used (keeps `driftwarden --help` fast)."""
    import importlib

    return getattr(importlib.import_module(module), name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="driftwarden", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the daemon against Kafka")
    p.add_argument("-c", "--config", required=True, help="YAML configuration")
    p.add_argument("--bootstrap-servers", help="override kafka.bootstrap_servers")
    p.set_defaults(func=_run)

    p = sub.add_parser("health", help="probe a running daemon's /healthz (exit 0 healthy, 1 not)")
    p.add_argument("-c", "--config", required=True)
    p.add_argument("--timeout", type=float, default=5.0)
    p.set_defaults(func=_health)

    p = sub.add_parser("check-config", help="validate a configuration file (exit 0 ok, 1 invalid)")
    p.add_argument("file")
    p.set_defaults(func=_check_config)

    p = sub.add_parser("simulate", help="produce synthetic prediction and outcome traffic to Kafka")
    p.add_argument("--bootstrap-servers", required=True)
    p.add_argument("--model-id", default="churn")
    p.add_argument("--events", type=int, default=50_000)
    p.add_argument("--covariate-shift-at", type=int, help="shift age and monthly_spend from this event on")
    p.add_argument("--concept-drift-at", type=int, help="reverse the true concept from this event on")
    p.add_argument("--malformed-every", type=int, help="emit a malformed message every N events")
    p.add_argument("--label-delay", type=int, default=500, help="outcome follows its prediction N events later")
    p.add_argument("--model-version", default="1.0.0")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--predictions-topic", default="predictions")
    p.add_argument("--outcomes-topic", default="outcomes")
    p.add_argument("--write-reference", metavar="PATH", help="also write a clean reference data set")
    p.set_defaults(func=_simulate)

    p = sub.add_parser("demo", help="the daemon's pipeline on an embedded default: no Kafka, no Slack")
    p.add_argument("-c", "--config", default=None, help="demo config (default: the packaged config/demo.yaml)")
    p.add_argument("--workdir", default="var/demo", help="where state, alerts and reports go")
    p.add_argument("--events", type=int, default=60_000)
    p.set_defaults(func=_demo)

    p = sub.add_parser("compare", help="run the daemon's detectors on a reference and a current data file")
    p.add_argument("--reference", required=True, help="CSV, Parquet or JSONL")
    p.add_argument("--current", required=True, help="CSV, Parquet or JSONL with the same columns")
    p.add_argument("-c", "--config", help="use this config's model declaration and monitoring settings")
    p.add_argument("--model", help="model id in the config")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=lambda a: _lazy("daemon.compare_cmd", "run_compare")(
        a.reference, a.current, a.config, a.model, a.format))

    p = sub.add_parser("report", help="write a root-cause report for a model from its checkpointed windows")
    p.add_argument("-c", "--config", required=True)
    p.add_argument("--model", required=True)
    p.set_defaults(func=lambda a: _lazy("daemon.report_cmd", "report_command")(a.config, a.model))

    p = sub.add_parser("replay", help="recompute a replay bundle's findings and check they match")
    p.add_argument("bundle")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=lambda a: _lazy("daemon.replay", "run_replay")(a.bundle, a.format))

    p = sub.add_parser("status", help="models, offsets, firing alerts and undelivered notifications from the state")
    p.add_argument("-c", "--config", required=True)
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=lambda a: _lazy("daemon.status_cmd", "run_status")(a.config, a.format))

    from daemon import silence_cmd

    silence_cmd.register(sub)
    return parser


def single_threaded_numerics() -> None:
    """One BLAS thread: the daemon is one core's worth of work by design (scale out by partitions).

    OpenBLAS otherwise spreads each small matrix product (PCA's 5000 x 20 window)
    over every core and spin-waits for them: on a busy 2-core host that was 17x
    slower (16 ms instead of 0.9 ms per window, measured).
    """
    threadpool_limits(limits=1, user_api="blas")


def main(argv: Sequence[str] | None = None) -> int:
    single_threaded_numerics()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)  # kafka-python's own slow-task notes
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    try:
        return int(args.func(args))
    except ConfigError as exc:  # also PreflightError: one line per problem, no traceback
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

"""``driftwarden`` command line: a thin layer over the daemon's modules.

Every verb takes ``-c CONFIG`` (``replay`` reads only its bundle), ``-v`` and ``--log-format``
before or after the verb. Exit codes, the same for every verb:

  0  done; nothing to report
  1  a finding the command reports: drift (``compare``), a replay mismatch, an invalid
     config (``check-config``), an unhealthy daemon (``health``)
  2  a usage, config or input problem: one line ``driftwarden VERB: what (what to do)``
     (a config lists one problem per line), no traceback
  3  an unexpected error, a bug: one line; ``-v`` prints the traceback
  130 interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from threadpoolctl import threadpool_limits

from driftwarden.daemon.command_errors import EXIT_BUG, EXIT_INPUT, EXIT_INTERRUPTED, CommandError, describe_failure
from driftwarden.daemon.config import Config, ConfigError, load_config
from driftwarden.daemon.logs import configure_logging


def _run(args: argparse.Namespace) -> int:
    from driftwarden.daemon.app import App, ModelBuildError
    from driftwarden.daemon.http_server import HttpServer
    from driftwarden.daemon.kafka_io import open_dead_letters, open_source
    from driftwarden.daemon.kafka_outage import StoppedWaiting
    from driftwarden.daemon.preflight import PreflightError, preflight
    from driftwarden.daemon.startup import start_workers

    config = load_config(args.config)
    apply_logging(args, config)
    if args.bootstrap_servers:
        import msgspec

        config = msgspec.structs.replace(
            config, kafka=msgspec.structs.replace(config.kafka, bootstrap_servers=args.bootstrap_servers)
        )
    # before Kafka: config and environment problems exit 2 (with start-up workers, the detectors' own
    # refusals come from App, once they are built: not built twice)
    workers = start_workers(len(config.models), config.state.startup_workers)
    preflight(config, args.config, bind_http=True, build_detectors=not workers)
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
    try:
        app = App(config, dead_letters, producer=dead_letters.producer, stop_event=stopping)
    except ModelBuildError as exc:
        dead_letters.close()
        raise PreflightError(args.config, [str(exc)]) from None
    except StoppedWaiting:  # the kafka state backend waited for its changelog topic
        log.info("stopped before Kafka was reachable")
        dead_letters.close()
        return 0
    try:
        source = open_source(config.kafka, stored_offsets=app.stored_offsets, on_revoke=app.save,
                             stop_event=stopping, on_assign=app.assigned, on_revoked=app.revoked)
    except StoppedWaiting:
        log.info("stopped before Kafka was reachable")
        app.close()
        dead_letters.close()
        return 0
    server = None
    if config.http.enabled:
        server = HttpServer(config.http.host, config.http.port, app.metrics, app.reports_dir, app.health,
                            models=[m.id for m in config.models], before_metrics=app.run_waiting)
        server.start()
        logging.getLogger("driftwarden").info("http on %s:%d", *server.address)
    from driftwarden.daemon.scheduler import Maintenance

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


def apply_logging(args: argparse.Namespace, config: Config) -> None:
    """The config's ``logging`` section, under ``--log-format`` and ``-v`` when given."""
    configure_logging(args.log_format or config.logging.format, config.logging.level, verbose=args.verbose)


def _check_config(args: argparse.Namespace) -> int:
    """Every check `run` makes before Kafka (no broker needed; the HTTP port may be in use by a daemon).

    The verdict is what this verb reports: exit 0 valid, 1 invalid (one line per problem).
    """
    from driftwarden.daemon.preflight import preflight

    if args.file and args.config and args.file != args.config:
        raise CommandError(f"two configs given: {args.file} and -c {args.config}", "give one")
    path = args.config or args.file
    if not path:
        raise CommandError("no config given", "driftwarden check-config -c CONFIG")
    try:
        config = load_config(path)
        preflight(config, path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{path}: ok ({len(config.models)} model(s): {', '.join(m.id for m in config.models)})")
    return 0


def _health(args: argparse.Namespace) -> int:
    """Exit 0 when the running daemon's /healthz says ok, 1 otherwise (for exec probes)."""
    import json
    import urllib.error
    import urllib.request

    url = load_config(args.config, check_files=False).http.local_url("/healthz")
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
    from driftwarden.daemon.simulate_kafka import produce

    if args.config:  # the broker and topics the daemon with this config reads
        kafka = load_config(args.config, check_files=False).kafka
        args.bootstrap_servers = args.bootstrap_servers or kafka.bootstrap_servers
        args.predictions_topic = args.predictions_topic or kafka.predictions_topic
        args.outcomes_topic = args.outcomes_topic or kafka.outcomes_topic
    if not args.bootstrap_servers:
        raise CommandError("no Kafka broker given", "give -c CONFIG or --bootstrap-servers HOST:PORT")
    args.predictions_topic = args.predictions_topic or "predictions"
    args.outcomes_topic = args.outcomes_topic or "outcomes"
    return produce(args)


def _demo(args: argparse.Namespace) -> int:
    from driftwarden.daemon.demo import run_demo

    return run_demo(args.config, args.workdir, events=args.events)


def _lazy(module: str, name: str) -> Any:
    """Import command implementations only when used (keeps `driftwarden --help` fast)."""
    import importlib

    return getattr(importlib.import_module(module), name)


def package_version() -> str:
    """The installed distribution's version; the source tree's when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("driftwarden")
    except PackageNotFoundError:
        return "0+unknown (not installed)"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` for options that have a default; not for required ones or ``None``."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.required or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def common_options(verbose_default: Any, log_format_default: Any) -> argparse.ArgumentParser:
    """-v and --log-format: accepted before the verb (the defaults) and after it (SUPPRESS: no override)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("-v", "--verbose", action="store_true", default=verbose_default,
                   help="debug logging, and a traceback for an unexpected error")
    p.add_argument("--log-format", choices=["text", "json"], default=log_format_default,
                   help="log lines as text or one JSON object per line "
                        "(default: the config's logging.format, else text)")
    return p


def config_option(p: argparse.ArgumentParser, required: bool = True, help: str = "YAML configuration") -> None:
    p.add_argument("-c", "--config", required=required, metavar="CONFIG", help=help)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="driftwarden", description=(__doc__ or "").replace("``", ""),
                                     parents=[common_options(False, None)],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"driftwarden {package_version()}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="VERB")
    common = common_options(argparse.SUPPRESS, argparse.SUPPRESS)

    def verb(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, parents=[common], formatter_class=HelpFormatter)

    p = verb("run", "run the daemon against Kafka")
    config_option(p)
    p.add_argument("--bootstrap-servers", metavar="HOST:PORT[,...]", help="override kafka.bootstrap_servers")
    p.set_defaults(func=_run)

    p = verb("health", "probe a running daemon's /healthz (exit 0 healthy, 1 not)")
    config_option(p, help="the daemon's YAML configuration (its http section)")
    p.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS", help="give up after this long")
    p.set_defaults(func=_health)

    p = verb("check-config", "validate a configuration and its environment (exit 0 ok, 1 invalid)")
    config_option(p, required=False, help="YAML configuration to check")
    p.add_argument("file", nargs="?", metavar="FILE", help="the same as -c FILE")
    p.set_defaults(func=_check_config)

    p = verb("simulate", "produce synthetic prediction and outcome traffic to Kafka")
    config_option(p, required=False, help="take the broker and topics from this config's kafka section")
    p.add_argument("--bootstrap-servers", metavar="HOST:PORT[,...]",
                   help="Kafka broker(s) (default: kafka.bootstrap_servers of -c CONFIG)")
    p.add_argument("--model-id", default="churn", help="model_id of the events")
    p.add_argument("--events", type=int, default=50_000, help="prediction events to produce")
    p.add_argument("--covariate-shift-at", type=int, metavar="N", help="shift age and monthly_spend from this event on")
    p.add_argument("--concept-drift-at", type=int, metavar="N", help="reverse the true concept from this event on")
    p.add_argument("--malformed-every", type=int, metavar="N", help="emit a malformed message every N events")
    p.add_argument("--label-delay", type=int, default=500, metavar="N", help="outcome follows its prediction N events later")
    p.add_argument("--model-version", default="1.0.0", help="model_version of the events")
    p.add_argument("--seed", type=int, default=7, help="random seed (same seed, same events)")
    p.add_argument("--predictions-topic",
                   help="topic for prediction events (default: kafka.predictions_topic of -c CONFIG, else predictions)")
    p.add_argument("--outcomes-topic",
                   help="topic for outcome events (default: kafka.outcomes_topic of -c CONFIG, else outcomes)")
    p.add_argument("--write-reference", metavar="PATH", help="also write a clean reference data set")
    p.set_defaults(func=_simulate)

    p = verb("demo", "the daemon's pipeline on an embedded default: no Kafka, no Slack")
    config_option(p, required=False, help="demo config (default: the packaged config/demo.yaml)")
    p.add_argument("--workdir", default="var/demo", help="where state, alerts and reports go")
    p.add_argument("--events", type=int, default=60_000, help="prediction events to replay")
    p.set_defaults(func=_demo)

    p = verb("compare", "run the daemon's detectors on a reference and a current data file "
                        "(exit 1 when the model-level verdict is drifted)")
    p.add_argument("--reference", required=True, metavar="FILE", help="CSV, Parquet or JSONL with a prediction column")
    p.add_argument("--current", required=True, metavar="FILE", help="CSV, Parquet or JSONL with the same columns")
    config_option(p, required=False, help="use this config's model declaration and monitoring settings "
                                          "(default: infer features and task from the reference's columns)")
    p.add_argument("--model", help="model id in the config (default: its only model)")
    p.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    p.add_argument("--fail-on-drift", action=argparse.BooleanOptionalAction, default=True,
                   help="exit 1 when the model-level verdict is drifted (for CI); --no-fail-on-drift: exit 0")
    p.set_defaults(func=lambda a: _lazy("driftwarden.daemon.compare_cmd", "run_compare")(
        a.reference, a.current, a.config, a.model, a.format, fail_on_drift=a.fail_on_drift))

    p = verb("report", "write a root-cause report for a model from its checkpointed windows")
    config_option(p)
    p.add_argument("--model", required=True, help="model id in the config")
    p.set_defaults(func=lambda a: _lazy("driftwarden.daemon.report_cmd", "report_command")(a.config, a.model))

    p = verb("replay", "recompute a replay bundle's findings and check they match (exit 1 on a mismatch)")
    p.add_argument("bundle", metavar="BUNDLE", help="a report's .replay.tar.gz (self-contained: no config needed)")
    p.add_argument("--format", choices=["table", "json"], default="table",
                   help="output format (json keeps every number at full precision)")
    p.set_defaults(func=lambda a: _lazy("driftwarden.daemon.replay", "run_replay")(a.bundle, a.format))

    p = verb("status", "models, offsets, firing alerts and undelivered notifications from the state")
    config_option(p)
    p.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    p.set_defaults(func=lambda a: _lazy("driftwarden.daemon.status_cmd", "run_status")(a.config, a.format))

    from driftwarden.daemon import silence_cmd

    silence_cmd.register(sub, common, HelpFormatter)
    return parser


def single_threaded_numerics() -> None:
    """One BLAS thread: the daemon is one core's worth of work by design (scale out by partitions).

    OpenBLAS otherwise spreads each small matrix product (PCA's 5000 x 20 window)
    over every core and spin-waits for them: on a busy 2-core host that was 17x
    slower (16 ms instead of 0.9 ms per window, measured).
    """
    threadpool_limits(limits=1, user_api="blas")


def verb_name(args: argparse.Namespace) -> str:
    sub = getattr(args, "silence_command", None)
    return f"{args.command} {sub}" if sub else str(args.command)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run the verb, turn its failure into one line and an exit code (see the module doc)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a usage error argparse printed (2)
        return exc.code if isinstance(exc.code, int) else EXIT_INPUT
    configure_logging(args.log_format or "text", verbose=args.verbose)
    single_threaded_numerics()
    verb = verb_name(args)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print(f"driftwarden {verb}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        code, message = describe_failure(verb, exc)
        if code == EXIT_BUG and args.verbose:
            logging.getLogger("driftwarden").error("%s failed", verb, exc_info=exc)
        print(message, file=sys.stderr)
        return code


if __name__ == "__main__":
    raise SystemExit(main())

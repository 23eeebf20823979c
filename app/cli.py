"""``qsuite``: run the platform, one of its processes, or send it commands.

Exit codes: 0 ok; 1 unhealthy (``ctl health --check``); 2 bad settings or arguments;
3 engine unreachable; 4 command refused.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from app import __version__, backfill_cli, ctl
from app.logs import quiet_logging
from app.settings import ENGINE_PROCESSES, load_settings
from engine.errors import CommandError, ConfigError, EngineUnreachable, OperationalError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qsuite", description="QSuite algorithmic-trading platform"
    )
    parser.add_argument("--config", help="TOML file overriding config/default.toml")
    parser.add_argument("--actor", default=getpass.getuser(), help="who is acting (audited)")
    parser.add_argument(
        "--role",
        default="admin",
        choices=["viewer", "operator", "admin"],
        help="role for control commands (local automation acts as admin by default)",
    )
    parser.add_argument("--version", action="version", version=f"qsuite {__version__}")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="start every process under the supervisor")
    run.add_argument("--headless", action="store_true", help="everything but the console")
    run.add_argument("--native", action="store_true", help="open the console in a desktop window")
    sub.add_parser("bus", help="run the bus proxy process")
    eng = sub.add_parser("engine", help="run one engine process")
    eng.add_argument("name", choices=[p for p in ENGINE_PROCESSES if p != "bus"])
    ui = sub.add_parser("ui", help="run the operator console")
    ui.add_argument("--native", action="store_true", help="desktop window instead of a browser tab")
    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade", "current"])
    sub.add_parser(
        "health",
        help="container HEALTHCHECK: exit 0 while every process is up or degraded (a source "
        "may be down, the engine still serves), 1 when one is down",
    )
    ctl.add_parser(sub)
    backfill_cli.add_parser(sub)
    return parser


def _dispatch(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if args.cmd == "run":
        from app.supervisor import run_supervisor

        return run_supervisor(settings, args.config, headless=args.headless, native=args.native)
    if args.cmd in ("bus", "engine"):
        from app.processes import build_service
        from app.runtime import run_process

        name = "bus" if args.cmd == "bus" else args.name
        proc = settings.process(name)
        return run_process(
            name,
            settings,
            lambda: build_service(name, settings),  # type: ignore[arg-type,return-value]
            control_endpoint=proc.control,
            metrics_port=proc.metrics_port,
        )
    if args.cmd == "ui":
        from ui.main import run_ui

        return run_ui(settings, native=args.native or settings.ui.native)
    if args.cmd == "db":
        from app import database

        if args.action == "upgrade":
            database.upgrade(settings)
        print(database.current_revision(settings))
        return 0
    quiet_logging()  # the commands below print their own results and errors
    if args.cmd == "backfill":
        return backfill_cli.run(args, settings)
    if args.cmd == "health":
        from app.client import QSuiteClient

        with QSuiteClient(settings, actor=args.actor, role="viewer") as client:
            overall = client.health().overall
        print(overall.upper())
        return 0 if overall in ("up", "degraded") else 1
    return ctl.run(args, settings)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except ConfigError as exc:
        print(f"qsuite: {exc}", file=sys.stderr)
        return 2
    except EngineUnreachable as exc:
        print(f"qsuite: {exc}", file=sys.stderr)
        return 3
    except CommandError as exc:
        print(f"qsuite: command refused ({exc.code}): {exc.message}", file=sys.stderr)
        return 4
    except OperationalError as exc:
        print(f"qsuite: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `qsuite ctl … | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
        return 0

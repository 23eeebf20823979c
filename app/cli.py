"""``qsuite``: run the platform, one of its processes, or send it commands.

Exit codes: 0 ok; 1 unhealthy (``ctl health --check``); 2 bad settings or arguments;
3 engine unreachable; 4 command refused.

``qsuite users add|list|passwd|disable|enable`` manages the console's users in the
database named by the settings (migrated first, like every process does); each change is
audited with the actor ``cli:<--actor>``.

``qsuite backtest`` and ``qsuite report`` (:mod:`app.backtest_cli`) run backtests and
parameter sweeps from this shell and write their reports.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import Any

from app import __version__, backfill_cli, backtest_cli, ctl
from app.logs import quiet_logging
from app.settings import ENGINE_PROCESSES, Settings, load_settings
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
    backtest_cli.add_parsers(sub)
    _add_users_parser(sub)
    return parser


def _add_users_parser(sub: Any) -> None:
    users = sub.add_parser(
        "users", help="console users: add, list, change a password, disable or enable"
    ).add_subparsers(dest="users_cmd", required=True)
    add = users.add_parser("add", help="create a user (password asked twice, or from stdin)")
    add.add_argument("name", help="1-32 lower-case letters, digits, _ . -")
    add.add_argument("--role", required=True, choices=["viewer", "operator", "admin"])
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin (automation)"
    )
    listing = users.add_parser("list", help="every user, role, state and last login")
    listing.add_argument("--json", action="store_true", help="print the users as JSON")
    passwd = users.add_parser("passwd", help="set a new password")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true", help="read it from stdin")
    for verb, text in (("disable", "refuse their logins"), ("enable", "allow them again")):
        users.add_parser(verb, help=text).add_argument("name")


def _new_password(args: argparse.Namespace) -> str | None:
    """The new password, or None when the two typed differ."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass(f"Password for {args.name}: ")
    if getpass.getpass("Repeat it: ") != password:
        return None
    return password


def _users(args: argparse.Namespace, settings: Settings) -> int:
    """``qsuite users …``: 0 done, 2 refused (bad name, role or password, taken or unknown
    name) with the reason on stderr."""
    from app.database import open_database
    from app.users import UserError, UserStore, audit, check_name  # SQLAlchemy and argon2 only here

    password = None
    if args.users_cmd in ("add", "passwd"):
        try:
            check_name(args.name)  # before asking for a password
        except UserError as exc:
            print(f"qsuite users: {exc}", file=sys.stderr)
            return 2
        password = _new_password(args)
        if password is None:
            print("qsuite users: the two passwords differ; nothing changed", file=sys.stderr)
            return 2
    engine = open_database(settings)
    try:
        store = UserStore(engine)
        if args.users_cmd == "list":
            users = store.list()
            if args.json:
                print(json.dumps([u.to_json() for u in users]))
                return 0
            print(f"{'NAME':<32} {'ROLE':<8} {'STATE':<8} {'CREATED':<20} LAST LOGIN")
            for u in users:
                last = f"{u.last_login_at:%Y-%m-%d %H:%M:%S}" if u.last_login_at else "never"
                state = "disabled" if u.disabled else "enabled"
                created = f"{u.created_at:%Y-%m-%d %H:%M:%S}"
                print(f"{u.name:<32} {u.role:<8} {state:<8} {created:<20} {last}")
            if not users:
                print("no users yet; create the first admin: qsuite users add admin --role admin")
            return 0
        actor, action = f"cli:{args.actor}", f"users.{args.users_cmd}"
        try:
            if args.users_cmd == "add":
                user = store.add(args.name, args.role, password or "")
                done = f"added {user.name} ({user.role})"
            elif args.users_cmd == "passwd":
                store.set_password(args.name, password or "")
                done = f"password of {args.name} changed"
            else:
                user = store.set_disabled(args.name, args.users_cmd == "disable")
                done = f"{user.name} {args.users_cmd}d"
        except UserError as exc:
            audit(engine, actor, action, args.name, "denied", str(exc))
            print(f"qsuite users: {exc}", file=sys.stderr)
            return 2
        audit(engine, actor, action, args.name, "ok", done)
        print(done)
        return 0
    finally:
        engine.dispose()


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
    if args.cmd in ("backtest", "report"):
        return backtest_cli.run(args, settings)
    if args.cmd == "users":
        return _users(args, settings)
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

"""``qsuite ctl …``: every control command from the shell, as a table or ``--json``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import msgspec

from app.client import QSuiteClient
from app.settings import ENGINE_PROCESSES, Settings
from engine.bus.commands import HealthReport, Result

LEVELS = ["TRACE", "DEBUG", "INFO", "WARNING", "ERROR"]
PROCESSES = ["supervisor", *ENGINE_PROCESSES]


def add_parser(sub: Any) -> None:
    ctl = sub.add_parser("ctl", help="send a control command to the running engine")
    verbs = ctl.add_subparsers(dest="verb", required=True)

    def verb(name: str, help: str) -> argparse.ArgumentParser:
        p = verbs.add_parser(name, help=help)
        p.add_argument("--json", action="store_true", help="print the reply as JSON")
        return p

    health = verb("health", "health of every process")
    health.add_argument("--check", action="store_true", help="exit 1 unless every process is up")
    verb("ping", "is a process there").add_argument("process", choices=PROCESSES)
    verb("status", "version, uptime, commands and counters of a process").add_argument(
        "process", choices=PROCESSES
    )
    lvl = verb("loglevel", "change a process's log level")
    lvl.add_argument("process", choices=PROCESSES)
    lvl.add_argument("level", choices=LEVELS)
    lvl.add_argument("--command-id", default="", help="idempotency key (default: a new one)")
    rst = verb("restart", "restart a supervised process")
    rst.add_argument("process", choices=[p for p in ENGINE_PROCESSES] + ["ui"])
    rst.add_argument("--command-id", default="", help="idempotency key (default: a new one)")


def _print_health(report: HealthReport) -> None:
    rows = [("PROCESS", "STATE", "PID", "BEAT AGE", "RESTARTS", "VERSION", "DETAIL")]
    for p in report.processes:
        age = "-" if p.heartbeat_age_s is None else f"{p.heartbeat_age_s:.1f}s"
        rows.append(
            (
                p.process,
                p.state.upper(),
                str(p.pid or "-"),
                age,
                str(p.restarts),
                p.version or "-",
                p.detail,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
    print(f"overall: {report.overall.upper()}")


def _print(result: Result, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    elif isinstance(result, HealthReport):
        _print_health(result)
    else:
        for key, value in msgspec.to_builtins(result).items():
            if isinstance(value, dict):
                print(f"{key}:")
                for k, v in value.items():
                    print(f"  {k} = {v}")
            else:
                print(f"{key}: {value}")


def run(args: argparse.Namespace, settings: Settings) -> int:
    with QSuiteClient(settings, actor=args.actor, role=args.role) as client:
        result: Result
        if args.verb == "health":
            result = client.health()
            _print(result, args.json)
            return 0 if (not args.check or result.overall == "up") else 1
        if args.verb == "ping":
            result = client.ping(args.process)
        elif args.verb == "status":
            result = client.status(args.process)
        elif args.verb == "loglevel":
            result = client.set_log_level(args.process, args.level, args.command_id)
        elif args.verb == "restart":
            result = client.restart(args.process, args.command_id)
        else:  # pragma: no cover - argparse rejects unknown verbs
            raise SystemExit(2)
        _print(result, args.json)
    return 0

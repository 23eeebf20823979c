"""``qsuite ctl …``: every control command from the shell, as a table or ``--json``.

Each verb is one row of :data:`VERBS`: its arguments and how they become a command.
The reply is printed as JSON (``--json``, for automation) or as a table.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from app.client import QSuiteClient
from app.settings import ENGINE_PROCESSES, Settings
from engine.bus.commands import (
    Command,
    GetHealth,
    GetStatus,
    HealthReport,
    Ping,
    RestartProcess,
    Result,
    SetLogLevel,
)
from engine.bus.commands.analysis import (
    AnalysisCatalog,
    GetIndicators,
    GetSignals,
    IndicatorSnapshot,
    ListAnalysis,
    SetRuleEnabled,
)
from engine.bus.commands.jobs import ListJobs, RequestBackfill, RunJob
from engine.bus.commands.market import (
    GetBars,
    GetFeedStatus,
    GetFundamentals,
    GetIngestionLog,
    GetQuotes,
    ListInstruments,
    SetScenario,
)
from engine.bus.commands.orders import (
    GetPositions,
    ListOrders,
    OrderList,
    PositionList,
    RequestCancel,
    RequestReplace,
    SubmitOrder,
)
from engine.intervals import INTERVAL_SECONDS

LEVELS = ["TRACE", "DEBUG", "INFO", "WARNING", "ERROR"]
PROCESSES = ["supervisor", *ENGINE_PROCESSES]
SCENARIOS = [
    "calm",
    "volatile",
    "trending_up",
    "trending_down",
    "flash_crash",
    "illiquid",
    "gap_open",
]
Arg = tuple[tuple[str, ...], dict[str, Any]]


def utc_ns(text: str) -> int:
    """``2024-01-31`` or ``2024-01-31T14:30[:00][+00:00]`` (UTC unless an offset is given)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date like 2024-01-31 or 2024-01-31T14:30"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000_000)


def decimal(text: str) -> Decimal:
    """A quantity or price as typed (exact; the engine checks its range)."""
    try:
        return Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number like 100 or 12.5") from None


def _arg(*names: str, **kwargs: Any) -> Arg:
    return names, kwargs


INTERVAL = _arg("--interval", default="1d", choices=list(INTERVAL_SECONDS), help="bar interval")
COMMAND_ID = _arg("--command-id", default="", help="idempotency key (default: a new one)")


@dataclass(frozen=True)
class Verb:
    help: str
    build: Callable[[argparse.Namespace], tuple[Command, str | None]]
    """The command and, for commands every process serves, which process."""
    args: list[Arg] = field(default_factory=list)
    actions: dict[str, Verb] = field(default_factory=dict)
    """Sub-verbs (``ctl order submit …``), each with its own arguments and command."""


def _group(help: str, actions: dict[str, Verb]) -> Verb:
    """A verb whose sub-verb (``args.action``) builds the command."""
    return Verb(help, lambda a: actions[a.action].build(a), actions=actions)


ORDER_ACTIONS: dict[str, Verb] = {
    "submit": Verb(
        "send a new order to the venue (operator)",
        lambda a: (
            SubmitOrder(
                account=a.account,
                symbol=a.symbol,
                side=a.side,
                qty=a.qty,
                price=a.price,
                order_type=a.type,
                tif=a.tif,
                client_order_id=a.id,
                command_id=a.command_id,
            ),
            None,
        ),
        [
            _arg("account"),
            _arg("symbol"),
            _arg("side", choices=["buy", "sell"]),
            _arg("qty", type=decimal),
            _arg("--price", type=decimal, help="limit price (required for a limit order)"),
            _arg("--type", choices=["limit", "market"], default="limit"),
            _arg("--tif", choices=["day", "gtc", "ioc", "fok"], default="day"),
            _arg("--id", default="", help="client_order_id (default: man-<command id>)"),
            COMMAND_ID,
        ],
    ),
    "cancel": Verb(
        "cancel an open order (operator)",
        lambda a: (RequestCancel(client_order_id=a.client_order_id, command_id=a.command_id), None),
        [_arg("client_order_id"), COMMAND_ID],
    ),
    "replace": Verb(
        "change an open order's quantity and/or price (operator)",
        lambda a: (
            RequestReplace(
                client_order_id=a.client_order_id,
                qty=a.qty,
                price=a.price,
                command_id=a.command_id,
            ),
            None,
        ),
        [
            _arg("client_order_id"),
            _arg("--qty", type=decimal, required=True, help="new total quantity"),
            _arg("--price", type=decimal, help="new limit price (default: unchanged)"),
            COMMAND_ID,
        ],
    ),
    "list": Verb(
        "orders of the order manager, newest first",
        lambda a: (ListOrders(account=a.account, open_only=not a.all, limit=a.limit), None),
        [
            _arg("--account"),
            _arg("--all", action="store_true", help="ended orders too (default: open ones)"),
            _arg("--limit", type=int, default=50),
        ],
    ),
}


VERBS: dict[str, Verb] = {
    "health": Verb(
        "health of every process",
        lambda a: (GetHealth(), None),
        [_arg("--check", action="store_true", help="exit 1 unless every process is up")],
    ),
    "ping": Verb(
        "is a process there", lambda a: (Ping(), a.process), [_arg("process", choices=PROCESSES)]
    ),
    "status": Verb(
        "version, uptime, commands and counters of a process",
        lambda a: (GetStatus(), a.process),
        [_arg("process", choices=PROCESSES)],
    ),
    "loglevel": Verb(
        "change a process's log level (admin)",
        lambda a: (SetLogLevel(level=a.level, command_id=a.command_id), a.process),
        [_arg("process", choices=PROCESSES), _arg("level", choices=LEVELS), COMMAND_ID],
    ),
    "restart": Verb(
        "restart a supervised process (admin)",
        lambda a: (RestartProcess(process=a.process, command_id=a.command_id), None),
        [_arg("process", choices=[*ENGINE_PROCESSES, "ui"]), COMMAND_ID],
    ),
    "feed": Verb(
        "feed mode (LIVE / SIMULATED / CACHED), breaker and why", lambda a: (GetFeedStatus(), None)
    ),
    "bars": Verb(
        "stored bars of a symbol",
        lambda a: (
            GetBars(symbol=a.symbol, interval=a.interval, start=a.start, end=a.end, limit=a.limit),
            None,
        ),
        [
            _arg("symbol"),
            INTERVAL,
            _arg("--start", type=utc_ns, help="first bar time (UTC date or datetime)"),
            _arg("--end", type=utc_ns, help="end of the range (exclusive)"),
            _arg("--limit", type=int, default=50, help="at most this many (the newest)"),
        ],
    ),
    "quotes": Verb(
        "latest quotes from the price cache",
        lambda a: (GetQuotes(symbols=a.symbols), None),
        [_arg("symbols", nargs="*", help="symbols (default: every cached one)")],
    ),
    "fundamentals": Verb(
        "stored fundamentals of a symbol",
        lambda a: (GetFundamentals(symbol=a.symbol), None),
        [_arg("symbol")],
    ),
    "instruments": Verb(
        "the instrument master",
        lambda a: (
            ListInstruments(exchange=a.exchange, sector=a.sector, industry=a.industry),
            None,
        ),
        [_arg("--exchange"), _arg("--sector"), _arg("--industry")],
    ),
    "ingestion": Verb(
        "the ingestion log (newest first)",
        lambda a: (GetIngestionLog(job=a.job, limit=a.limit), None),
        [_arg("--job"), _arg("--limit", type=int, default=20)],
    ),
    "scenario": Verb(
        "switch the simulated market's scenario (operator)",
        lambda a: (SetScenario(scenario=a.scenario, command_id=a.command_id), None),
        [_arg("scenario", choices=SCENARIOS), COMMAND_ID],
    ),
    "jobs": Verb(
        "background jobs: list, or run one now (operator)",
        lambda a: (
            (RunJob(job=a.job, command_id=a.command_id), None)
            if a.action == "run"
            else (ListJobs(), None)
        ),
        [
            _arg("action", choices=["list", "run"], nargs="?", default="list"),
            _arg("job", nargs="?"),
            COMMAND_ID,
        ],
    ),
    "backfill": Verb(
        "queue a backfill in the scheduler (operator); `qsuite backfill` runs one here",
        lambda a: (
            RequestBackfill(
                symbols=a.symbols,
                interval=a.interval,
                start=a.start,
                end=a.end,
                source=a.source,
                command_id=a.command_id,
            ),
            None,
        ),
        [
            _arg("symbols", nargs="+"),
            INTERVAL,
            _arg("--start", type=utc_ns, required=True),
            _arg("--end", type=utc_ns),
            _arg("--source", choices=["yahoo", "replay", "synthetic"], default="yahoo"),
            COMMAND_ID,
        ],
    ),
    "indicators": Verb(
        "latest indicator values of a symbol (the late joiner's snapshot)",
        lambda a: (GetIndicators(symbol=a.symbol, interval=a.interval, last=a.last), None),
        [
            _arg("symbol"),
            _arg("--interval", default="1m", choices=list(INTERVAL_SECONDS)),
            _arg("--last", type=int, default=5),
        ],
    ),
    "signals": Verb(
        "stored signals, newest first",
        lambda a: (
            GetSignals(symbol=a.symbol, interval=a.interval, since=a.since, limit=a.limit),
            None,
        ),
        [
            _arg("symbol", nargs="?"),
            _arg("--interval", choices=list(INTERVAL_SECONDS)),
            _arg("--since", type=utc_ns, help="UTC date or datetime"),
            _arg("--limit", type=int, default=20),
        ],
    ),
    "analysis": Verb(
        "available indicators and signal rules, with parameters", lambda a: (ListAnalysis(), None)
    ),
    "rule": Verb(
        "enable or disable a signal rule for a symbol (operator)",
        lambda a: (
            SetRuleEnabled(
                symbol=a.symbol, rule=a.rule, enabled=a.state == "on", command_id=a.command_id
            ),
            None,
        ),
        [_arg("symbol"), _arg("rule"), _arg("state", choices=["on", "off"]), COMMAND_ID],
    ),
    "order": _group("orders: submit, cancel, replace, list", ORDER_ACTIONS),
    "positions": Verb(
        "positions with realized and unrealized P&L",
        lambda a: (GetPositions(account=a.account), None),
        [_arg("--account")],
    ),
}


def add_parser(sub: Any) -> None:
    ctl = sub.add_parser("ctl", help="send a control command to the running engine")
    verbs = ctl.add_subparsers(dest="verb", required=True)
    for name, verb in VERBS.items():
        _add_verb(verbs, name, verb)


def _add_verb(sub: Any, name: str, verb: Verb) -> None:
    parser = sub.add_parser(name, help=verb.help)
    if verb.actions:
        actions = parser.add_subparsers(dest="action", required=True)
        for action, sub_verb in verb.actions.items():
            _add_verb(actions, action, sub_verb)
        return
    parser.add_argument("--json", action="store_true", help="print the reply as JSON")
    for names, kwargs in verb.args:
        parser.add_argument(*names, **kwargs)


def _table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        print("(none)")
        return
    headers = list(rows[0])
    cells = [[_cell(row.get(h)) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _stamp(row: dict[str, Any]) -> dict[str, Any]:
    """Nanosecond times (``ts``, ``as_of``, ``last_live_at`` …) shown as UTC times."""
    return {
        k: _time(v)
        if k in ("ts", "as_of", "run_at", "next_run", "last_run") and isinstance(v, int)
        else v
        for k, v in row.items()
    }


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def _time(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M")


def render(result: Result) -> None:
    """A reply as a table: list fields as rows, columnar series as rows, the rest as key: value."""
    if isinstance(result, IndicatorSnapshot):
        when = "-" if result.as_of is None else _time(result.as_of)
        print(f"{result.symbol} {result.interval} as of {when}")
        _table(
            [
                {
                    "indicator": s.indicator,
                    "values": " ".join(f"{o}={v[-1]:.6g}" for o, v in s.values.items() if v),
                }
                for s in result.series
            ]
        )
        return
    if isinstance(result, AnalysisCatalog):
        for title, entries in (("indicators", result.indicators), ("rules", result.rules)):
            print(f"{title}:")
            _table(
                [
                    {
                        "name": e.name,
                        "params": " ".join(f"{p.name}={p.default}" for p in e.params),
                        "outputs": ",".join(e.outputs),
                        "source": e.source,
                    }
                    for e in entries
                ]
            )
        for key, why in result.disabled.items():
            print(f"disabled {key}: {why}")
        return
    if isinstance(result, OrderList):
        _table(
            [
                {
                    "id": o.client_order_id,
                    "account": o.account,
                    "symbol": o.symbol,
                    "side": o.side,
                    "type": o.order_type,
                    "tif": o.tif,
                    "qty": o.qty,
                    "price": o.price,
                    "filled": o.filled_qty,
                    "avg": o.avg_price,
                    "status": o.status.upper(),
                    "reason": o.reason or None,
                    "updated": _time(o.ts_updated),
                }
                for o in result.orders
            ]
        )
        return
    if isinstance(result, PositionList):
        _table(
            [
                {
                    "account": p.account,
                    "symbol": p.symbol,
                    "qty": p.qty,
                    "avg price": p.avg_price,
                    "mark": p.mark_price,
                    "unrealized": p.unrealized_pnl,
                    "realized": p.realized_pnl,
                }
                for p in result.positions
            ]
        )
        return
    data = msgspec.to_builtins(result)
    data.pop("type", None)
    if isinstance(result, HealthReport):
        _table(
            [
                {
                    "process": p.process,
                    "state": p.state.upper(),
                    "pid": p.pid or None,
                    "beat age": None if p.heartbeat_age_s is None else f"{p.heartbeat_age_s:.1f}s",
                    "restarts": p.restarts,
                    "version": p.version or None,
                    "detail": p.detail,
                }
                for p in result.processes
            ]
        )
        print(f"overall: {result.overall.upper()}")
        return
    columns = {
        k: v for k, v in data.items() if isinstance(v, list) and v and not isinstance(v[0], dict)
    }
    if "ts" in columns:  # a column-wise series (bars)
        length = len(columns["ts"])
        rows = [{k: v[i] for k, v in columns.items()} for i in range(length)]
        for row in rows:
            row["ts"] = _time(row["ts"])
        print(" ".join(f"{k}: {v}" for k, v in data.items() if k not in columns))
        _table(rows)
        return
    tables = {k: v for k, v in data.items() if isinstance(v, list) and v and isinstance(v[0], dict)}
    for key, value in data.items():
        if key in tables:
            continue
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k} = {_cell(v)}")
        elif not (isinstance(value, list) and not value):
            print(f"{key}: {_cell(value)}")
    for rows in tables.values():
        _table([_stamp(r) for r in rows])


def run(args: argparse.Namespace, settings: Settings) -> int:
    verb = VERBS[args.verb]
    if args.verb == "jobs" and args.action == "run" and not args.job:
        raise SystemExit("qsuite ctl jobs run: name the job (see `qsuite ctl jobs`)")
    command, process = verb.build(args)
    with QSuiteClient(settings, actor=args.actor, role=args.role) as client:
        result = client.send(command, process)
    if args.json:
        sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    else:
        render(result)
    if args.verb == "health" and args.check and isinstance(result, HealthReport):
        return 0 if result.overall == "up" else 1
    return 0

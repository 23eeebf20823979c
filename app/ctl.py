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
from app.render import render
from app.settings import ENGINE_PROCESSES, Settings
from engine.bus.commands import (
    Command,
    GetHealth,
    GetStatus,
    HealthReport,
    Ping,
    RestartProcess,
    SetLogLevel,
)
from engine.bus.commands.analysis import (
    GetIndicators,
    GetSignals,
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
    RequestCancel,
    RequestReplace,
    SubmitOrder,
)
from engine.bus.commands.venue import GetBook, GetVenueStatus, SetHalt, SetInstrument
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
    "book": Verb(
        "the simulated venue's order book of a symbol (L2 ladder)",
        lambda a: (GetBook(symbol=a.symbol, depth=a.depth), None),
        [_arg("symbol"), _arg("--depth", type=int, default=10)],
    ),
    "venue": Verb(
        "the simulated venue: books, sessions, scenario", lambda a: (GetVenueStatus(), None)
    ),
    "instrument": Verb(
        "change how the venue trades a symbol: tick, lot, liquidity, volatility (operator)",
        lambda a: (
            SetInstrument(
                symbol=a.symbol,
                tick_size=a.tick,
                lot_size=a.lot,
                base_liquidity=a.liquidity,
                volatility=a.volatility,
                command_id=a.command_id,
            ),
            None,
        ),
        [
            _arg("symbol"),
            _arg("--tick", type=decimal, help="tick size"),
            _arg("--lot", type=decimal, help="lot size"),
            _arg("--liquidity", type=float, help="market-maker quantity per price level"),
            _arg("--volatility", type=float, help="annualized volatility (0.2 is 20%%)"),
            COMMAND_ID,
        ],
    ),
    "halt": Verb(
        "halt trading on the venue (one symbol, or every book), or resume it (operator)",
        lambda a: (
            SetHalt(
                symbol=a.symbol or "",
                halted=not a.resume,
                reason=a.reason,
                cancel_open=a.cancel_open,
                command_id=a.command_id,
            ),
            None,
        ),
        [
            _arg("symbol", nargs="?", help="one book (default: every book)"),
            _arg("--resume", action="store_true", help="resume trading instead"),
            _arg("--cancel-open", action="store_true", help="also cancel resting orders"),
            _arg("--reason", default=""),
            COMMAND_ID,
        ],
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

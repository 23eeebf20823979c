"""``qsuite ctl …``: every control command from the shell, as a table or ``--json``.

Each verb is one row of :data:`VERBS`: its arguments and how they become a command
(declared with :mod:`app.ctl_verbs`; the algorithm and strategy verbs live in
:mod:`app.ctl_algos`).
The reply is printed as JSON (``--json``, for automation) or as a table.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import msgspec

from app.client import QSuiteClient
from app.ctl_algos import ALGO_ACTIONS, STRATEGY_ACTIONS
from app.ctl_verbs import COMMAND_ID, Verb, arg, assignment, decimal, group, utc_ns
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
from engine.bus.commands.analytics import DEFAULT_CAPITAL, GetPerformance
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
    OrderAck,
    RequestCancel,
    RequestReplace,
    SubmitOrder,
)
from engine.bus.commands.risk import (
    AcknowledgeAlert,
    EnableComplianceRule,
    GetRiskProfile,
    GetRiskStatus,
    HaltTrading,
    ListAlerts,
    ListComplianceRules,
    ResumeTrading,
    SetComplianceRule,
    SetRiskProfile,
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
INTERVAL = arg("--interval", default="1d", choices=list(INTERVAL_SECONDS), help="bar interval")


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
            arg("account"),
            arg("symbol"),
            arg("side", choices=["buy", "sell"]),
            arg("qty", type=decimal),
            arg("--price", type=decimal, help="limit price (required for a limit order)"),
            arg("--type", choices=["limit", "market"], default="limit"),
            arg("--tif", choices=["day", "gtc", "ioc", "fok"], default="day"),
            arg("--id", default="", help="client_order_id (default: man-<command id>)"),
            arg(
                "--wait",
                type=float,
                default=2.0,
                help="seconds to wait for the venue's answer, shown after the ack (0: none)",
            ),
            COMMAND_ID,
        ],
    ),
    "cancel": Verb(
        "cancel an open order (operator)",
        lambda a: (RequestCancel(client_order_id=a.client_order_id, command_id=a.command_id), None),
        [arg("client_order_id"), COMMAND_ID],
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
            arg("client_order_id"),
            arg("--qty", type=decimal, required=True, help="new total quantity"),
            arg("--price", type=decimal, help="new limit price (default: unchanged)"),
            COMMAND_ID,
        ],
    ),
    "list": Verb(
        "orders of the order manager, newest first",
        lambda a: (ListOrders(account=a.account, open_only=not a.all, limit=a.limit), None),
        [
            arg("--account"),
            arg("--all", action="store_true", help="ended orders too (default: open ones)"),
            arg("--limit", type=int, default=50),
        ],
    ),
}


def _profile(a: argparse.Namespace) -> Command:
    if not a.set:
        return GetRiskProfile(account=a.account)
    return SetRiskProfile(
        account=a.account,
        changes=dict(a.set),
        expected_version=a.expected_version,
        command_id=a.command_id,
    )


def _rule(a: argparse.Namespace) -> Command:
    if a.kind:
        return SetComplianceRule(
            name=a.name,
            kind=a.kind,
            params=a.params,
            enabled=not a.disable,
            command_id=a.command_id,
        )
    if a.enable == a.disable:
        raise SystemExit(
            "qsuite ctl risk rule: give --kind (and --params) to set the rule, or one of "
            "--enable / --disable"
        )
    return EnableComplianceRule(name=a.name, enabled=a.enable, command_id=a.command_id)


SCOPE = arg(
    "scope",
    nargs="?",
    default="global",
    choices=["global", "account", "symbol", "algo"],
    help="what to halt (default: all trading)",
)
SCOPE_KEY = arg("key", nargs="?", default="", help="the account, symbol or algorithm id")
RISK_ACTIONS: dict[str, Verb] = {
    "halt": Verb(
        "kill switch: cancel the scope's working orders, deny new risk-increasing ones (operator)",
        lambda a: (
            HaltTrading(scope=a.scope, key=a.key, reason=a.reason, command_id=a.command_id),
            None,
        ),
        [SCOPE, SCOPE_KEY, arg("--reason", required=True), COMMAND_ID],
    ),
    "resume": Verb(
        "lift a halt or a runaway disable (admin: --role admin; audited)",
        lambda a: (
            ResumeTrading(scope=a.scope, key=a.key, reason=a.reason, command_id=a.command_id),
            None,
        ),
        [SCOPE, SCOPE_KEY, arg("--reason", required=True), COMMAND_ID],
    ),
    "status": Verb(
        "trading states, P&L, usage of every limit, halts and open alerts",
        lambda a: (GetRiskStatus(account=a.account), None),
        [arg("--account")],
    ),
    "alerts": Verb(
        "stored alerts, newest first (default: the unacknowledged ones)",
        lambda a: (ListAlerts(open_only=not a.all, account=a.account, limit=a.limit), None),
        [
            arg("--all", action="store_true", help="acknowledged ones too"),
            arg("--account"),
            arg("--limit", type=int, default=50),
        ],
    ),
    "ack": Verb(
        "acknowledge an alert (operator)",
        lambda a: (AcknowledgeAlert(alert_id=a.alert_id, command_id=a.command_id), None),
        [arg("alert_id", type=int), COMMAND_ID],
    ),
    "profile": Verb(
        "an account's risk limits; --set field=value changes them (admin; audited)",
        lambda a: (_profile(a), None),
        [
            arg("account"),
            arg(
                "--set",
                type=assignment,
                action="append",
                default=[],
                help="a limit to change, e.g. max_order_qty=500 (none: no limit); repeatable",
            ),
            arg("--expected-version", type=int, help="refuse unless the profile is at it"),
            COMMAND_ID,
        ],
    ),
    "rules": Verb(
        "compliance rules in force and every rule kind with its parameters",
        lambda a: (ListComplianceRules(), None),
    ),
    "rule": Verb(
        "set, enable or disable a compliance rule (admin; audited)",
        lambda a: (_rule(a), None),
        [
            arg("name", help="the rule's name, e.g. restricted"),
            arg("--kind", help="restricted_list, wash_trade, short_sale, trading_window, …"),
            arg("--params", default="{}", help='JSON, e.g. \'{"symbols": ["XYZ"]}\''),
            arg("--enable", action="store_true"),
            arg("--disable", action="store_true"),
            COMMAND_ID,
        ],
    ),
}


VERBS: dict[str, Verb] = {
    "health": Verb(
        "health of every process",
        lambda a: (GetHealth(), None),
        [arg("--check", action="store_true", help="exit 1 unless every process is up")],
    ),
    "ping": Verb(
        "is a process there", lambda a: (Ping(), a.process), [arg("process", choices=PROCESSES)]
    ),
    "status": Verb(
        "version, uptime, commands and counters of a process",
        lambda a: (GetStatus(), a.process),
        [arg("process", choices=PROCESSES)],
    ),
    "loglevel": Verb(
        "change a process's log level (admin)",
        lambda a: (SetLogLevel(level=a.level, command_id=a.command_id), a.process),
        [arg("process", choices=PROCESSES), arg("level", choices=LEVELS), COMMAND_ID],
    ),
    "restart": Verb(
        "restart a supervised process (admin)",
        lambda a: (RestartProcess(process=a.process, command_id=a.command_id), None),
        [arg("process", choices=[*ENGINE_PROCESSES, "ui"]), COMMAND_ID],
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
            arg("symbol"),
            INTERVAL,
            arg("--start", type=utc_ns, help="first bar time (UTC date or datetime)"),
            arg("--end", type=utc_ns, help="end of the range (exclusive)"),
            arg("--limit", type=int, default=50, help="at most this many (the newest)"),
        ],
    ),
    "quotes": Verb(
        "latest quotes from the price cache",
        lambda a: (GetQuotes(symbols=a.symbols), None),
        [arg("symbols", nargs="*", help="symbols (default: every cached one)")],
    ),
    "fundamentals": Verb(
        "stored fundamentals of a symbol",
        lambda a: (GetFundamentals(symbol=a.symbol), None),
        [arg("symbol")],
    ),
    "instruments": Verb(
        "the instrument master",
        lambda a: (
            ListInstruments(exchange=a.exchange, sector=a.sector, industry=a.industry),
            None,
        ),
        [arg("--exchange"), arg("--sector"), arg("--industry")],
    ),
    "ingestion": Verb(
        "the ingestion log (newest first)",
        lambda a: (GetIngestionLog(job=a.job, limit=a.limit), None),
        [arg("--job"), arg("--limit", type=int, default=20)],
    ),
    "scenario": Verb(
        "switch the simulated market's scenario (operator)",
        lambda a: (SetScenario(scenario=a.scenario, command_id=a.command_id), None),
        [arg("scenario", choices=SCENARIOS), COMMAND_ID],
    ),
    "jobs": Verb(
        "background jobs: list, or run one now (operator)",
        lambda a: (
            (RunJob(job=a.job, command_id=a.command_id), None)
            if a.action == "run"
            else (ListJobs(), None)
        ),
        [
            arg("action", choices=["list", "run"], nargs="?", default="list"),
            arg("job", nargs="?"),
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
            arg("symbols", nargs="+"),
            INTERVAL,
            arg("--start", type=utc_ns, required=True),
            arg("--end", type=utc_ns),
            arg("--source", choices=["yahoo", "replay", "synthetic"], default="yahoo"),
            COMMAND_ID,
        ],
    ),
    "indicators": Verb(
        "latest indicator values of a symbol (the late joiner's snapshot)",
        lambda a: (GetIndicators(symbol=a.symbol, interval=a.interval, last=a.last), None),
        [
            arg("symbol"),
            arg("--interval", default="1m", choices=list(INTERVAL_SECONDS)),
            arg("--last", type=int, default=5),
        ],
    ),
    "signals": Verb(
        "stored signals, newest first",
        lambda a: (
            GetSignals(symbol=a.symbol, interval=a.interval, since=a.since, limit=a.limit),
            None,
        ),
        [
            arg("symbol", nargs="?"),
            arg("--interval", choices=list(INTERVAL_SECONDS)),
            arg("--since", type=utc_ns, help="UTC date or datetime"),
            arg("--limit", type=int, default=20),
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
        [arg("symbol"), arg("rule"), arg("state", choices=["on", "off"]), COMMAND_ID],
    ),
    "order": group("orders: submit, cancel, replace, list", ORDER_ACTIONS),
    "risk": group("pre-trade risk: halt, resume, status, alerts, ack, profile", RISK_ACTIONS),
    "algo": group(
        "execution algorithms: start, pause, resume, modify, cancel, list, show, tca, kinds",
        ALGO_ACTIONS,
    ),
    "strategy": group(
        "custom strategies (a signal starts an algorithm): set, enable, disable, delete, list",
        STRATEGY_ACTIONS,
    ),
    "positions": Verb(
        "positions with realized and unrealized P&L",
        lambda a: (GetPositions(account=a.account), None),
        [arg("--account")],
    ),
    "performance": Verb(
        "an account's P&L snapshots and performance (Sharpe, drawdown …) over them",
        lambda a: (GetPerformance(account=a.account, since_ns=a.since, capital=a.capital), None),
        [
            arg("account"),
            arg("--since", type=utc_ns, help="first snapshot (UTC date or datetime)"),
            arg("--capital", type=decimal, default=DEFAULT_CAPITAL, help="equity base"),
        ],
    ),
    "book": Verb(
        "the simulated venue's order book of a symbol (L2 ladder)",
        lambda a: (GetBook(symbol=a.symbol, depth=a.depth), None),
        [arg("symbol"), arg("--depth", type=int, default=10)],
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
            arg("symbol"),
            arg("--tick", type=decimal, help="tick size"),
            arg("--lot", type=decimal, help="lot size"),
            arg("--liquidity", type=float, help="market-maker quantity per price level"),
            arg("--volatility", type=float, help="annualized volatility (0.2 is 20%%)"),
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
            arg("symbol", nargs="?", help="one book (default: every book)"),
            arg("--resume", action="store_true", help="resume trading instead"),
            arg("--cancel-open", action="store_true", help="also cancel resting orders"),
            arg("--reason", default=""),
            COMMAND_ID,
        ],
    ),
}


def venue_answer(
    client: Any,
    account: str,
    client_order_id: str,
    wait_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """What the venue made of a new order, asked of the order manager until it is no
    longer ``pending_new`` or ``wait_s`` has passed: one line for the operator."""
    deadline = clock() + wait_s
    while True:
        listed = client.send(ListOrders(account=account, open_only=False, limit=50))
        row = next((o for o in listed.orders if o.client_order_id == client_order_id), None)
        if row is not None and row.status != "pending_new":
            done = f" {row.filled_qty} @ {row.avg_price}" if row.filled_qty else ""
            why = f" ({row.reason})" if row.reason else ""
            return f"venue: {row.status.upper()}{done}{why}"
        if clock() >= deadline:
            return (
                f"venue: no answer within {wait_s:g} s; "
                f"`qsuite ctl order list --all` shows it when it comes"
            )
        sleep(0.1)


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
            wait = getattr(args, "wait", 0.0)
            if isinstance(result, OrderAck) and result.status == "pending_new" and wait > 0:
                print(venue_answer(client, args.account, result.client_order_id, wait))
    if args.verb == "health" and args.check and isinstance(result, HealthReport):
        return 0 if result.overall == "up" else 1
    return 0

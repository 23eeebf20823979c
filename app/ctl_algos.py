"""``qsuite ctl algo …`` and ``qsuite ctl strategy …``: execution algorithms and the
custom strategies that start them, as verb tables for :mod:`app.ctl`.

Parameters are a JSON object: ``--params`` gives one whole, each ``--set name=value``
sets one entry over it (the value as JSON when it parses, else as a string).
"""

from __future__ import annotations

import argparse
from functools import partial
from typing import get_args

from app.ctl_verbs import (
    COMMAND_ID,
    Arg,
    Verb,
    arg,
    assignment,
    decimal,
    json_object,
    json_params,
    json_text,
    utc_ns,
)
from engine.bus.commands import Command
from engine.bus.commands.algos import (
    CancelAlgo,
    DeleteStrategy,
    EnableStrategy,
    GetAlgoTca,
    ListAlgoKinds,
    ListAlgos,
    ListStrategies,
    ModifyAlgo,
    PauseAlgo,
    ResumeAlgo,
    SetStrategy,
    ShowAlgo,
    StartAlgo,
)
from engine.bus.events import AlgoState

SIDE = arg("side", choices=["buy", "sell"])
ALGO_ID = arg("algo_id", metavar="ID", help="the parent's id (see `qsuite ctl algo list`)")
REASON = arg("--reason", default="", help="why (audited)")


def _set(help: str) -> Arg:
    return arg(
        "--set",
        type=partial(assignment, example="duration_s=600"),
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"{help}; the value as JSON when it parses (600, true, null), else a string; "
        "repeatable",
    )


def _params(what: str) -> Arg:
    return arg(
        "--params",
        type=json_object,
        default={},
        metavar="JSON",
        help=f"{what} as a JSON object, e.g. '{{\"duration_s\": 600}}'; --set entries win",
    )


def _modify(a: argparse.Namespace) -> Command:
    if a.qty is None and not a.set and not a.params:
        raise SystemExit("qsuite ctl algo modify: give --qty and/or --set name=value")
    return ModifyAlgo(
        algo_id=a.algo_id,
        qty=a.qty,
        params=json_params(a.set, a.params),
        command_id=a.command_id,
    )


ALGO_ACTIONS: dict[str, Verb] = {
    "start": Verb(
        "work a parent order with an algorithm (operator; checked by the risk gate)",
        lambda a: (
            StartAlgo(
                algo_type=a.algo_type,
                account=a.account,
                symbol=a.symbol,
                side=a.side,
                qty=a.qty,
                params=json_params(a.set, a.params),
                start_at_ns=a.start_at,
                command_id=a.command_id,
            ),
            None,
        ),
        [
            arg("algo_type", metavar="TYPE", help="twap, vwap, iceberg, sniper, pov or a plugin"),
            arg("account"),
            arg("symbol"),
            SIDE,
            arg("qty", type=decimal, help="the parent's total quantity"),
            _set("a parameter, e.g. duration_s=600 or aggressiveness=passive"),
            _params("the parameters"),
            arg(
                "--start-at", type=utc_ns, metavar="UTC", help="start later (UTC date or datetime)"
            ),
            COMMAND_ID,
        ],
    ),
    "pause": Verb(
        "stop sending children and cancel the working ones until resumed (operator)",
        lambda a: (PauseAlgo(algo_id=a.algo_id, reason=a.reason, command_id=a.command_id), None),
        [ALGO_ID, REASON, COMMAND_ID],
    ),
    "resume": Verb(
        "resume a paused parent (operator)",
        lambda a: (ResumeAlgo(algo_id=a.algo_id, command_id=a.command_id), None),
        [ALGO_ID, COMMAND_ID],
    ),
    "modify": Verb(
        "change a live parent's quantity or parameters (operator)",
        lambda a: (_modify(a), None),
        [
            ALGO_ID,
            arg("--qty", type=decimal, help="new total quantity"),
            _set("a parameter to change, e.g. limit_price=101.5 (null clears it)"),
            _params("the parameters to change"),
            COMMAND_ID,
        ],
    ),
    "cancel": Verb(
        "stop a parent for good; its working children are cancelled (operator)",
        lambda a: (CancelAlgo(algo_id=a.algo_id, reason=a.reason, command_id=a.command_id), None),
        [ALGO_ID, REASON, COMMAND_ID],
    ),
    "list": Verb(
        "parent orders, newest first",
        lambda a: (ListAlgos(state=a.state, active_only=a.active, limit=a.limit), None),
        [
            arg("--state", choices=list(get_args(AlgoState))),
            arg("--active", action="store_true", help="only pending, running and paused ones"),
            arg("--limit", type=int, default=50),
        ],
    ),
    "show": Verb(
        "a parent and its child orders",
        lambda a: (ShowAlgo(algo_id=a.algo_id), None),
        [ALGO_ID],
    ),
    "tca": Verb(
        "transaction cost analysis of a parent (live while it runs)",
        lambda a: (GetAlgoTca(algo_id=a.algo_id), None),
        [ALGO_ID],
    ),
    "kinds": Verb(
        "algorithm kinds (--json: with their parameter schemas)",
        lambda a: (ListAlgoKinds(), None),
    ),
}


def _strategy(a: argparse.Namespace) -> Command:
    return SetStrategy(
        name=a.name,
        signal_rule=a.rule,
        symbol=a.symbol,
        condition=json_text(a.when),
        algo_type=a.algo,
        algo_params=json_params(a.set, a.params),
        account=a.account,
        side=a.side,
        qty=a.qty,
        cooldown_s=a.cooldown,
        max_triggers_per_day=a.max_per_day,
        enabled=not a.disabled,
        command_id=a.command_id,
    )


STRATEGY_NAME = arg("name", help="the strategy's name (see `qsuite ctl strategy list`)")
STRATEGY_ACTIONS: dict[str, Verb] = {
    "set": Verb(
        "create or replace a strategy: when RULE fires, start an algorithm (operator; audited)",
        lambda a: (_strategy(a), None),
        [
            arg("name", help="lower case, digits and _, e.g. rsi_dip"),
            arg("--rule", required=True, help="the signal rule that triggers it"),
            arg("--symbol", help="only this symbol (default: every symbol the rule fires on)"),
            arg(
                "--when",
                type=json_object,
                default={},
                metavar="JSON",
                help='a condition as JSON, e.g. \'{"indicator": "rsi_14", "below": 30}\'',
            ),
            arg("--algo", required=True, metavar="TYPE", help="the algorithm to start"),
            _set("an algorithm parameter, e.g. duration_s=600"),
            _params("the algorithm's parameters"),
            arg("--account", required=True),
            arg("--side", required=True, choices=["buy", "sell"]),
            arg("--qty", required=True, type=decimal),
            arg("--cooldown", type=int, default=0, metavar="S", help="seconds between triggers"),
            arg("--max-per-day", type=int, default=1, metavar="N", help="triggers per day"),
            arg("--disabled", action="store_true", help="store it switched off"),
            COMMAND_ID,
        ],
    ),
    "enable": Verb(
        "switch a strategy on (operator)",
        lambda a: (EnableStrategy(name=a.name, enabled=True, command_id=a.command_id), None),
        [STRATEGY_NAME, COMMAND_ID],
    ),
    "disable": Verb(
        "switch a strategy off (operator)",
        lambda a: (EnableStrategy(name=a.name, enabled=False, command_id=a.command_id), None),
        [STRATEGY_NAME, COMMAND_ID],
    ),
    "delete": Verb(
        "delete a strategy (operator; audited)",
        lambda a: (DeleteStrategy(name=a.name, command_id=a.command_id), None),
        [STRATEGY_NAME, COMMAND_ID],
    ),
    "list": Verb("custom strategies and today's triggers", lambda a: (ListStrategies(), None)),
}

"""Control-plane commands and their replies, defined once.

Wire format (see also docs/wire.md)
-----------------------------------
A client (REQ, or DEALER with an empty delimiter) sends one frame: ``msgpack(command)``.
The ROUTER server answers one frame: ``msgpack(Reply)``. Commands are tagged structs
(``"type": "Ping.v1"``) carrying a ``command_id`` chosen by the client; a repeated id
returns the first reply without acting again (for state-changing commands this survives
a restart of the serving process). Frames over ``control.max_message_bytes`` are refused.

Each command class declares:

``target``    which process serves it (``"any"``: every engine process does)
``mutating``  whether it changes state (its reply is journaled durably)
``min_role``  the least role allowed to send it (viewer < operator < admin)

Commands are imperatives; replies carry a typed ``result`` or an ``error`` with a
stable code from :class:`engine.errors.ErrorCode`.
"""

from __future__ import annotations

from typing import Any, Union

import msgspec

from engine.bus.commands import algos, analysis, analytics, jobs, market, orders, risk, venue
from engine.bus.commands.base import ROLE_RANK, Command, Result, Role
from engine.bus.commands.system import (
    GetHealth,
    GetStatus,
    HealthReport,
    LogLevelSet,
    Ping,
    Pong,
    ProcessHealth,
    ProcessRestarted,
    ProcessStatus,
    RestartProcess,
    SetLogLevel,
)

RESULT_TYPES: tuple[type[Result], ...] = (
    Pong,
    ProcessStatus,
    LogLevelSet,
    HealthReport,
    ProcessRestarted,
    *market.RESULTS,
    *jobs.RESULTS,
    *analysis.RESULTS,
    *venue.RESULTS,
    *orders.RESULTS,
    *risk.RESULTS,
    *algos.RESULTS,
    *analytics.RESULTS,
)
AnyResult = Union[RESULT_TYPES]  # type: ignore[valid-type]  # noqa: UP007


class ErrorBody(msgspec.Struct, frozen=True):
    code: str
    message: str


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    """The one reply frame of the control plane."""

    command_id: str
    ok: bool
    process: str
    result: AnyResult | None = None
    error: ErrorBody | None = None
    replayed: bool = False
    """True when this is the journaled reply of an earlier command with the same id."""


COMMAND_TYPES: tuple[type[Command], ...] = (
    Ping,
    GetStatus,
    SetLogLevel,
    GetHealth,
    RestartProcess,
    *market.COMMANDS,
    *jobs.COMMANDS,
    *analysis.COMMANDS,
    *venue.COMMANDS,
    *orders.COMMANDS,
    *risk.COMMANDS,
    *algos.COMMANDS,
    *analytics.COMMANDS,
)
AnyCommand = Union[COMMAND_TYPES]  # type: ignore[valid-type]  # noqa: UP007


def tag_of(cls: type[msgspec.Struct]) -> str:
    return str(cls.__struct_config__.tag)


def command_by_tag() -> dict[str, type[Command]]:
    return {tag_of(c): c for c in COMMAND_TYPES}


def result_as_builtins(result: Any) -> Any:
    """A result as plain JSON-able data (for ``--json`` output)."""
    return msgspec.to_builtins(result)


__all__ = [
    "COMMAND_TYPES",
    "RESULT_TYPES",
    "ROLE_RANK",
    "AnyCommand",
    "AnyResult",
    "Command",
    "ErrorBody",
    "GetHealth",
    "GetStatus",
    "HealthReport",
    "LogLevelSet",
    "Ping",
    "Pong",
    "ProcessHealth",
    "ProcessRestarted",
    "ProcessStatus",
    "Reply",
    "RestartProcess",
    "Result",
    "Role",
    "SetLogLevel",
    "command_by_tag",
    "result_as_builtins",
    "tag_of",
]

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

from typing import Any, ClassVar, Literal, Union

import msgspec

Role = Literal["viewer", "operator", "admin"]
ROLE_RANK: dict[str, int] = {"viewer": 0, "operator": 1, "admin": 2}


class Command(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Common fields of every command."""

    command_id: str = ""
    actor: str = ""
    """Who asked (user name or ``automation``); audited by the serving process."""
    role: Role = "viewer"
    """The role the caller acts with; checked against the command's ``min_role``.
    Defaults to the least privilege: a command that wants more must say so."""

    target: ClassVar[str] = "any"
    mutating: ClassVar[bool] = False
    min_role: ClassVar[Role] = "viewer"


# --- results -------------------------------------------------------------------------


class Result(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of typed command results."""


class Pong(Result, frozen=True, kw_only=True, tag="Pong.v1"):
    process: str
    pid: int
    version: str
    uptime_s: float


class ProcessStatus(Result, frozen=True, kw_only=True, tag="ProcessStatus.v1"):
    process: str
    pid: int
    version: str
    started_at: int
    log_level: str
    commands: list[str]
    counters: dict[str, float]


class LogLevelSet(Result, frozen=True, kw_only=True, tag="LogLevelSet.v1"):
    process: str
    previous: str
    current: str
    applied_at: int


class ProcessHealth(msgspec.Struct, frozen=True, kw_only=True):
    process: str
    state: Literal["up", "degraded", "down", "starting", "stopped"]
    pid: int = 0
    version: str = ""
    heartbeat_age_s: float | None = None
    restarts: int = 0
    detail: str = ""
    counters: dict[str, float] = {}


class HealthReport(Result, frozen=True, kw_only=True, tag="HealthReport.v1"):
    overall: Literal["up", "degraded", "down"]
    processes: list[ProcessHealth]
    generated_at: int


class ProcessRestarted(Result, frozen=True, kw_only=True, tag="ProcessRestarted.v1"):
    process: str
    old_pid: int
    new_pid: int


RESULT_TYPES: tuple[type[Result], ...] = (
    Pong,
    ProcessStatus,
    LogLevelSet,
    HealthReport,
    ProcessRestarted,
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


# --- commands ------------------------------------------------------------------------


class Ping(Command, frozen=True, kw_only=True, tag="Ping.v1"):
    """Is the process there? Served by every process."""


class GetStatus(Command, frozen=True, kw_only=True, tag="GetStatus.v1"):
    """Version, uptime, log level, commands served and live counters of one process."""


class SetLogLevel(Command, frozen=True, kw_only=True, tag="SetLogLevel.v1"):
    """Change a process's log level at runtime."""

    level: Literal["TRACE", "DEBUG", "INFO", "WARNING", "ERROR"]

    mutating: ClassVar[bool] = True
    min_role: ClassVar[Role] = "admin"


class GetHealth(Command, frozen=True, kw_only=True, tag="GetHealth.v1"):
    """Health of every process (up / degraded / down), from the supervisor's monitor."""

    target: ClassVar[str] = "supervisor"


class RestartProcess(Command, frozen=True, kw_only=True, tag="RestartProcess.v1"):
    """Stop and start one supervised process."""

    process: str

    target: ClassVar[str] = "supervisor"
    mutating: ClassVar[bool] = True
    min_role: ClassVar[Role] = "admin"


COMMAND_TYPES: tuple[type[Command], ...] = (Ping, GetStatus, SetLogLevel, GetHealth, RestartProcess)
AnyCommand = Union[COMMAND_TYPES]  # type: ignore[valid-type]  # noqa: UP007


def tag_of(cls: type[msgspec.Struct]) -> str:
    return str(cls.__struct_config__.tag)


def command_by_tag() -> dict[str, type[Command]]:
    return {tag_of(c): c for c in COMMAND_TYPES}


def result_as_builtins(result: Any) -> Any:
    """A result as plain JSON-able data (for ``--json`` output)."""
    return msgspec.to_builtins(result)

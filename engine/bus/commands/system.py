"""System commands: served by every process (``any``) or by the supervisor."""

from __future__ import annotations

from typing import ClassVar, Literal

import msgspec

from engine.bus.commands.base import Command, Result, Role


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

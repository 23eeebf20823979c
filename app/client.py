"""The automation client: every control command of QSuite from Python.

``QSuiteClient`` (blocking) is what the CLI uses; ``AsyncQSuiteClient`` is what the
NiceGUI console uses. Both route a command to the process that serves it (its class's
``target``; ``"any"`` commands name the process) and stamp who is asking::

    with QSuiteClient(load_settings(), actor="nightly-job", role="operator") as client:
        print(client.health().overall)
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
import zmq
import zmq.asyncio

from app.settings import Settings
from engine.bus.commands import (
    Command,
    GetHealth,
    GetStatus,
    HealthReport,
    LogLevelSet,
    Ping,
    Pong,
    ProcessRestarted,
    ProcessStatus,
    RestartProcess,
    Result,
    Role,
    SetLogLevel,
)
from engine.bus.control import AsyncControlClient, ControlClient
from engine.errors import CommandError, ErrorCode

R = TypeVar("R", bound=Result)
C = TypeVar("C", ControlClient, AsyncControlClient)


class _Routing:
    def __init__(self, settings: Settings, actor: str, role: Role) -> None:
        self.settings = settings
        self.actor = actor
        self.role = role

    def endpoint_for(self, command: Command, process: str | None) -> str:
        target = type(command).target
        if target == "any":
            if not process:
                raise CommandError(
                    ErrorCode.INVALID, f"{type(command).__name__} needs a process name"
                )
            target = process
        if target == "supervisor":
            return self.settings.supervisor.control
        if target not in self.settings.processes:
            known = ", ".join(["supervisor", *self.settings.processes])
            raise CommandError(ErrorCode.NOT_FOUND, f"unknown process {target!r}; known: {known}")
        return self.settings.processes[target].control

    def client_for(
        self, cache: dict[str, C], kind: type[C], ctx: Any, command: Command, process: str | None
    ) -> C:
        """The Lazy Pirate client of the endpoint serving ``command`` (one per endpoint)."""
        endpoint = self.endpoint_for(command, process)
        client = cache.get(endpoint)
        if client is None:
            c = self.settings.control
            client = cache[endpoint] = kind(
                endpoint,
                timeout_ms=c.timeout_ms,
                retries=c.retries,
                ctx=ctx,
                max_message_bytes=c.max_message_bytes,
            )
        return client

    def stamp(self, command: Command) -> Command:
        return msgspec.structs.replace(command, actor=command.actor or self.actor, role=self.role)

    @staticmethod
    def expect(result: Result, kind: type[R]) -> R:
        if not isinstance(result, kind):
            raise CommandError(
                ErrorCode.INTERNAL, f"expected {kind.__name__}, got {type(result).__name__}"
            )
        return result


class QSuiteClient(_Routing):
    """Blocking client (Lazy Pirate per endpoint)."""

    def __init__(
        self, settings: Settings, *, actor: str = "automation", role: Role = "operator"
    ) -> None:
        super().__init__(settings, actor, role)
        self._ctx = zmq.Context()
        self._clients: dict[str, ControlClient] = {}

    def send(self, command: Command, process: str | None = None) -> Result:
        """Send one command; returns its result or raises CommandError / EngineUnreachable."""
        client = self.client_for(self._clients, ControlClient, self._ctx, command, process)
        return client.call(self.stamp(command))

    def ping(self, process: str) -> Pong:
        return self.expect(self.send(Ping(), process), Pong)

    def status(self, process: str) -> ProcessStatus:
        return self.expect(self.send(GetStatus(), process), ProcessStatus)

    def set_log_level(self, process: str, level: Any, command_id: str = "") -> LogLevelSet:
        return self.expect(
            self.send(SetLogLevel(level=level, command_id=command_id), process), LogLevelSet
        )

    def health(self) -> HealthReport:
        return self.expect(self.send(GetHealth()), HealthReport)

    def restart(self, process: str, command_id: str = "") -> ProcessRestarted:
        return self.expect(
            self.send(RestartProcess(process=process, command_id=command_id)), ProcessRestarted
        )

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        self._ctx.term()

    def __enter__(self) -> QSuiteClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class AsyncQSuiteClient(_Routing):
    """The same commands as coroutines (for the console)."""

    def __init__(self, settings: Settings, *, actor: str, role: Role) -> None:
        super().__init__(settings, actor, role)
        self._ctx = zmq.asyncio.Context()
        self._clients: dict[str, AsyncControlClient] = {}

    async def send(
        self,
        command: Command,
        process: str | None = None,
        *,
        actor: str = "",
        role: Role | None = None,
    ) -> Result:
        """Send one command; ``actor``/``role`` override the client's (the console acts
        per logged-in user)."""
        client = self.client_for(self._clients, AsyncControlClient, self._ctx, command, process)
        stamped = self.stamp(command)
        if actor or role:
            stamped = msgspec.structs.replace(
                stamped, actor=actor or stamped.actor, role=role or stamped.role
            )
        return await client.call(stamped)

    async def health(self) -> HealthReport:
        return self.expect(await self.send(GetHealth()), HealthReport)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        self._ctx.term()

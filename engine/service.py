"""What an engine service gets from its process, and what it gives back.

A service is built once per process by :mod:`app.processes` and handed a
:class:`ServiceContext` (bus publisher, control registration, subscriptions, timers,
clock, stats). It never opens sockets of the platform itself, so the same service runs
under the live runtime, in tests and in a backtest.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Literal, Protocol, TypeVar

from engine.bus.channel import Channel, ChannelRole, MessageHandler
from engine.bus.commands import Command, Result
from engine.bus.events import Event
from engine.clock import Clock
from engine.stats import StatsRegistry

T = TypeVar("T")
HealthStatus = Literal["up", "degraded"]
CommandHandler = Callable[[Any], Result]
EventHandler = Callable[[str, Any], None]


class ServiceContext(Protocol):
    process: str
    clock: Clock
    stats: StatsRegistry

    def publish(self, topic: str, event: Event) -> Event:
        """Stamp and publish an event on the bus."""

    def register_command(self, command_type: type[Command], handler: CommandHandler) -> None:
        """Serve a control command in this process."""

    def subscribe(self, prefix: str, handler: EventHandler) -> None:
        """Receive bus events whose topic starts with ``prefix`` (cut at dots)."""

    def call_every(self, interval_s: float, fn: Callable[[], object], name: str) -> None:
        """Run ``fn`` every ``interval_s`` seconds on the process loop."""

    def call_soon_threadsafe(self, fn: Callable[[], object]) -> None:
        """From any thread: run ``fn`` on the process loop soon (e.g. to publish)."""

    def run_in_worker(self, fn: Callable[[], T], on_done: Callable[[Future[T]], object]) -> None:
        """Run blocking ``fn`` in a worker thread; ``on_done(future)`` runs on the loop."""

    def open_channel(
        self, name: str, role: ChannelRole, endpoint: str, on_message: MessageHandler, setting: str
    ) -> Channel:
        """A point-to-point channel polled on the process loop (see
        :mod:`engine.bus.channel`); ``setting`` names the endpoint's key for errors."""


class Service(Protocol):
    """An engine service hosted by one process."""

    def start(self, ctx: ServiceContext) -> None:
        """Register commands, subscriptions and timers; start owned resources."""

    def health(self) -> tuple[HealthStatus, str]:
        """("up", "") or ("degraded", why in words for the operator)."""

    def stop(self) -> None:
        """Release owned resources. Called once, on the process loop."""

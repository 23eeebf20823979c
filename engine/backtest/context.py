"""The service context of a backtest: a simulated clock and an in-process bus.

:class:`SimContext` is the :class:`engine.service.ServiceContext` the live services run
on in a backtest. Nothing sleeps and nothing reads the wall clock: the runner moves the
clock to each bar's close (:meth:`SimContext.advance_to`), which runs the timers that
fell due; ``publish`` hands the event to every subscriber of its topic at once, in
subscription order; work "in a worker" runs inline. The same inputs therefore give the
same events in the same order, every run.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from engine.bus.channel import Channel, ChannelRole, MessageHandler
from engine.bus.commands import Command, Result
from engine.bus.events import Event
from engine.clock import Clock
from engine.stats import StatsRegistry

T = TypeVar("T")
NS = 1_000_000_000


class SimClock:
    """A clock that only moves forward when the backtest says so."""

    def __init__(self, start_ns: int) -> None:
        self._ns = start_ns

    def time_ns(self) -> int:
        return self._ns

    def monotonic(self) -> float:
        return self._ns / NS

    def set(self, ns: int) -> None:
        if ns > self._ns:
            self._ns = ns


class SimContext:
    """:class:`engine.service.ServiceContext` of a backtest (see the module docstring)."""

    def __init__(self, start_ns: int, process: str = "backtest") -> None:
        self.process = process
        self._sim = SimClock(start_ns)
        self.clock: Clock = self._sim
        self.stats = StatsRegistry()
        self.commands: dict[type[Command], Callable[[Any], Result]] = {}
        self._subscriptions: list[tuple[str, Callable[[str, Any], None]]] = []
        self._routes: dict[str, list[Callable[[str, Any], None]]] = {}
        self._timers: list[list[Any]] = []  # [due ns, interval ns, fn]

    def publish(self, topic: str, event: Event) -> Event:
        handlers = self._routes.get(topic)
        if handlers is None:
            handlers = self._routes[topic] = [
                handler
                for prefix, handler in self._subscriptions
                if not prefix or topic == prefix or topic.startswith(prefix + ".")
            ]
        for handler in handlers:
            handler(topic, event)
        return event

    def register_command(
        self, command_type: type[Command], handler: Callable[[Any], Result]
    ) -> None:
        self.commands[command_type] = handler

    def subscribe(self, prefix: str, handler: Callable[[str, Any], None]) -> None:
        self._subscriptions.append((prefix, handler))
        self._routes.clear()

    def call_every(self, interval_s: float, fn: Callable[[], object], name: str) -> None:
        step = max(int(interval_s * NS), 1)
        self._timers.append([self.clock.time_ns() + step, step, fn])

    def call_soon_threadsafe(self, fn: Callable[[], object]) -> None:
        fn()

    def run_in_worker(self, fn: Callable[[], T], on_done: Callable[[Future[T]], object]) -> None:
        future: Future[T] = Future()
        try:
            future.set_result(fn())
        except Exception as exc:
            future.set_exception(exc)
        on_done(future)

    def open_channel(
        self, name: str, role: ChannelRole, endpoint: str, on_message: MessageHandler, setting: str
    ) -> Channel:
        raise NotImplementedError("a backtest has no point-to-point channels")

    # --- driving ---------------------------------------------------------------------------

    def advance_to(self, ns: int) -> None:
        """Move the clock to ``ns`` and run every timer due by then (each at most once)."""
        self._sim.set(ns)
        now = self._sim.time_ns()
        for timer in self._timers:
            if timer[0] <= now:
                timer[0] = now + timer[1]
                timer[2]()

    def send(self, command: Command) -> Result:
        return self.commands[type(command)](command)

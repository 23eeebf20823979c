"""Test doubles shared by unit tests: a service context with no sockets and no threads."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import msgspec

from engine.bus.commands import Command, Result
from engine.bus.events import Event
from engine.clock import FakeClock
from engine.stats import StatsRegistry

T = TypeVar("T")


class FakeContext:
    """:class:`engine.service.ServiceContext` for unit tests.

    Published events are recorded (stamped with a per-topic seq like the real publisher),
    commands are called directly with :meth:`send`, timers run when :meth:`advance`
    moves the fake clock past them, and worker jobs run synchronously (or are held with
    ``hold_workers`` so a test can complete them later with :meth:`finish_workers`).
    """

    def __init__(
        self,
        process: str = "test",
        clock: FakeClock | None = None,
        network: FakeNetwork | None = None,
    ) -> None:
        self.process = process
        self.network = network or FakeNetwork()
        """Where this context's channels meet others' (share one between contexts)."""
        self.clock = clock or FakeClock()
        self.stats = StatsRegistry()
        self.published: list[tuple[str, Event]] = []
        self.commands: dict[type[Command], Callable[[Any], Result]] = {}
        self.subscriptions: list[tuple[str, Callable[[str, Any], None]]] = []
        self.timers: list[list[Any]] = []  # [due, interval, fn, name]
        self.hold_workers = False
        self.held: list[tuple[Callable[[], Any], Callable[[Future[Any]], object]]] = []
        self._seq: dict[str, int] = {}

    def publish(self, topic: str, event: Event) -> Event:
        seq = self._seq[topic] = self._seq.get(topic, 0) + 1
        stamped = msgspec.structs.replace(
            event,
            source=self.process,
            seq=seq,
            ts_init=event.ts_init or self.clock.time_ns(),
            event_id=f"{self.process}:fake:{len(self.published) + 1}",
        )
        self.published.append((topic, stamped))
        return stamped

    def register_command(
        self, command_type: type[Command], handler: Callable[[Any], Result]
    ) -> None:
        self.commands[command_type] = handler

    def subscribe(self, prefix: str, handler: Callable[[str, Any], None]) -> None:
        self.subscriptions.append((prefix, handler))

    def call_every(self, interval_s: float, fn: Callable[[], object], name: str) -> None:
        self.timers.append([self.clock.monotonic() + interval_s, interval_s, fn, name])

    def call_soon_threadsafe(self, fn: Callable[[], object]) -> None:
        fn()

    def run_in_worker(self, fn: Callable[[], T], on_done: Callable[[Future[T]], object]) -> None:
        if self.hold_workers:
            self.held.append((fn, on_done))
            return
        on_done(_run(fn))

    def open_channel(
        self,
        name: str,
        role: str,
        endpoint: str,
        on_message: Callable[[bytes, list[bytes]], None],
        setting: str,
    ) -> FakeChannel:
        return self.network.open(self.process, role, endpoint, on_message)

    # --- driving -----------------------------------------------------------------------
    def send(self, command: Command) -> Result:
        return self.commands[type(command)](command)

    def deliver(self, topic: str, event: Event) -> None:
        for prefix, handler in self.subscriptions:
            if not prefix or topic == prefix or topic.startswith(prefix + "."):
                handler(topic, event)

    def finish_workers(self) -> None:
        held, self.held = self.held, []
        for fn, on_done in held:
            on_done(_run(fn))

    def advance(self, seconds: float, step: float = 0.1) -> None:
        """Move the clock forward, running every timer that falls due on the way."""
        remaining = seconds
        while remaining > 1e-12:
            dt = min(step, remaining)
            self.clock.advance(dt)
            remaining -= dt
            self.run_due()

    def run_due(self) -> None:
        """Run the timers that are due now (contexts sharing one clock: move it once,
        then let each run its timers)."""
        for timer in self.timers:
            if timer[0] <= self.clock.monotonic():
                timer[0] += timer[1]
                timer[2]()

    def events(self, kind: type[Event]) -> list[Any]:
        return [e for _, e in self.published if isinstance(e, kind)]


class FakeChannel:
    """One end of an in-memory channel; messages wait in the network until it runs."""

    def __init__(
        self,
        network: FakeNetwork,
        peer_id: bytes,
        role: str,
        endpoint: str,
        on_message: Callable[[bytes, list[bytes]], None],
    ) -> None:
        self.network = network
        self.peer_id = peer_id
        self.role = role
        self.endpoint = endpoint
        self.on_message = on_message
        self.closed = False

    def send(self, frames: list[bytes], peer: bytes = b"") -> bool:
        return self.network.send(self, list(frames), peer)


class FakeNetwork:
    """Links the channels of fake contexts: ``serve`` ends by endpoint, ``connect`` ends
    by a peer id. :meth:`run` delivers what was sent, in order, until quiet; a channel
    marked ``closed`` (a dead process) receives nothing and its sends are dropped."""

    def __init__(self) -> None:
        self.servers: dict[str, FakeChannel] = {}
        self.clients: dict[bytes, FakeChannel] = {}
        self.pending: deque[tuple[FakeChannel, bytes, list[bytes]]] = deque()

    def open(
        self,
        process: str,
        role: str,
        endpoint: str,
        on_message: Callable[[bytes, list[bytes]], None],
    ) -> FakeChannel:
        peer_id = f"{process}-{len(self.clients) + len(self.servers)}".encode()
        channel = FakeChannel(self, peer_id, role, endpoint, on_message)
        if role == "serve":
            self.servers[endpoint] = channel
        else:
            self.clients[peer_id] = channel
        return channel

    def send(self, sender: FakeChannel, frames: list[bytes], peer: bytes) -> bool:
        if sender.closed:
            return False
        if sender.role == "serve":
            target = self.clients.get(peer)
            if target is None or target.closed:
                return False
            self.pending.append((target, b"", frames))
            return True
        server = self.servers.get(sender.endpoint)
        if server is None or server.closed:
            return False
        self.pending.append((server, sender.peer_id, frames))
        return True

    def run(self, limit: int = 100_000) -> int:
        """Deliver until nothing is pending; returns how many messages were delivered."""
        delivered = 0
        while self.pending and delivered < limit:
            target, peer, frames = self.pending.popleft()
            if not target.closed:
                target.on_message(peer, frames)
                delivered += 1
        return delivered


def _run(fn: Callable[[], T]) -> Future[T]:
    future: Future[T] = Future()
    try:
        future.set_result(fn())
    except Exception as exc:  # handed to on_done, like a real worker
        future.set_exception(exc)
    return future

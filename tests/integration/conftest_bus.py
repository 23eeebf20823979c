"""Shared pieces of the bus tests: a tracked ZeroMQ context, raw sockets, helpers.

Imported explicitly by the bus test modules (each wraps :class:`Bus` in its own ``bus``
fixture). Closing a ``Bus`` closes every tracked socket or component (linger 0), then
asserts that ``ctx.term()`` returns within a deadline: a socket left open anywhere,
including inside QSuite components, makes ``term`` hang, so the test fails instead of
leaking.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zmq

from engine.bus import codec, topics
from engine.bus.events import Event, Heartbeat
from engine.bus.proxy import BusProxy
from engine.bus.subscriber import Subscriber
from engine.stats import StatsRegistry

TERM_DEADLINE_S = 5.0
LOOPBACK = "tcp://127.0.0.1:*"


class Bus:
    """A context plus everything a test opened on it, closed in reverse order."""

    def __init__(self) -> None:
        self.ctx: zmq.Context[Any] = zmq.Context()
        self.stats = StatsRegistry()
        self._open: list[Callable[[], object]] = []

    def track(self, thing: Any, close: Callable[[], object] | None = None) -> Any:
        self._open.append(close or thing.close)
        return thing

    def socket(self, kind: int, *, hwm: int = 1000) -> zmq.Socket[bytes]:
        sock = self.ctx.socket(kind)
        sock.linger = 0
        sock.sndhwm = sock.rcvhwm = hwm
        self._open.append(lambda: sock.close(linger=0))
        return sock

    def proxy(self, *, capture: bool = False, hwm: int = 100_000) -> BusProxy:
        proxy = BusProxy(self.ctx, LOOPBACK, LOOPBACK, LOOPBACK if capture else "", hwm=hwm)
        return self.track(proxy.start(), proxy.stop)

    def __enter__(self) -> Bus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        while self._open:
            self._open.pop()()
        done = threading.Thread(target=self.ctx.term, name="ctx-term", daemon=True)
        done.start()
        done.join(TERM_DEADLINE_S)
        assert not done.is_alive(), "zmq context did not terminate: a socket was left open"


def child_pids() -> set[int]:
    """Live child processes of this process (Linux ``/proc``)."""
    pids: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        pids.update(int(pid) for pid in (task / "children").read_text().split())
    return pids


def heartbeat(i: int = 0, **header: Any) -> Heartbeat:
    """A realistic event; ``header`` sets event_id/source/seq for hand-made streams."""
    return Heartbeat(ts_event=i, process="test", pid=1, version="0", started_at=0, **header)


def raw_frames(topic: str, event: Event) -> list[bytes]:
    return [topics.to_wire(topic), codec.encode(event)]


def recv_until(
    sub: Subscriber, done: Callable[[list[tuple[str, Event]]], bool], timeout_s: float = 5.0
) -> list[tuple[str, Event]]:
    """Receive until ``done(received)`` holds or the deadline passes (then fail)."""
    got: list[tuple[str, Event]] = []
    deadline = time.monotonic() + timeout_s
    while not done(got):
        left_ms = int((deadline - time.monotonic()) * 1000)
        message = sub.recv(timeout_ms=left_ms) if left_ms > 0 else None
        if message is None:
            pytest.fail(f"timed out after {timeout_s} s with {len(got)} message(s): {got[-3:]}")
        got.append(message)
    return got


def recv_quiet(sub: Subscriber, quiet_ms: int = 200) -> list[tuple[str, Event]]:
    """Receive until nothing arrives for ``quiet_ms``."""
    got = []
    while (message := sub.recv(timeout_ms=quiet_ms)) is not None:
        got.append(message)
    return got

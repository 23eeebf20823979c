"""Point-to-point channels beside the bus: a ROUTER that serves peers, a DEALER that
talks to one server (the venue's order-entry channel is one).

The process runtime owns the sockets and polls them on its one loop; a service sees a
:class:`Channel` and a callback, never a socket, so the same service runs under the
live runtime and in tests (:class:`tests.fakes.FakeContext` links channels in memory).

Frames: a served channel receives ``(peer, frames)`` — ``peer`` is the ROUTER identity
of the sender, to answer with ``send(frames, peer)`` — and a connected channel receives
``(b"", frames)``. A message over ``max_message_bytes`` never arrives (libzmq drops the
peer that sent it). Sends never block: a peer that is gone or too slow loses the
message (counted in ``qsuite_channel_dropped_total{channel}``) — protocols on channels
carry sequence numbers and are reconciled, never trusted to be lossless.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

import zmq

from engine.bus.endpoints import ensure_ipc_free, remove_ipc_file
from engine.errors import OperationalError
from engine.stats import STATS, StatsRegistry

ChannelRole = Literal["serve", "connect"]
MessageHandler = Callable[[bytes, list[bytes]], None]


class Channel(Protocol):
    endpoint: str
    """The bound or connected address (with the real port when bound to ``:*``)."""

    def send(self, frames: list[bytes], peer: bytes = b"") -> bool:
        """Send a message (to ``peer`` on a served channel); False if it was dropped."""


class ZmqChannel:
    """A ROUTER (``serve``) or DEALER (``connect``) socket with its handler."""

    def __init__(
        self,
        ctx: zmq.Context[Any],
        name: str,
        role: ChannelRole,
        endpoint: str,
        on_message: MessageHandler,
        *,
        setting: str,
        max_message_bytes: int,
        hwm: int = 10_000,
        stats: StatsRegistry = STATS,
    ) -> None:
        self.name = name
        self.role = role
        self.on_message = on_message
        self._dropped = stats.counter(
            "qsuite_channel_dropped_total", "Channel messages dropped on send", channel=name
        )
        self._bound = role == "serve"
        if self._bound:
            ensure_ipc_free(endpoint, f"the {name} channel", setting)
        sock = ctx.socket(zmq.ROUTER if self._bound else zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
        sock.setsockopt(zmq.SNDHWM, hwm)
        sock.setsockopt(zmq.RCVHWM, hwm)
        if self._bound:
            sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # an unknown peer raises, not vanishes
        try:
            (sock.bind if self._bound else sock.connect)(endpoint)
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            verb = "bind" if self._bound else "connect"
            raise OperationalError(
                f"Cannot {verb} the {name} channel to {endpoint}: {exc}. Check `{setting}`."
            ) from None
        self.socket: zmq.Socket[bytes] = sock
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT) if self._bound else endpoint

    def send(self, frames: list[bytes], peer: bytes = b"") -> bool:
        try:
            self.socket.send_multipart([peer, *frames] if self._bound else frames, zmq.NOBLOCK)
            return True
        except zmq.ZMQError:  # EAGAIN (peer slow) or EHOSTUNREACH (peer gone)
            self._dropped.inc()
            return False

    def handle_ready(self, limit: int = 1000) -> None:
        """Deliver the waiting messages (at most ``limit``, so one busy peer cannot starve
        the loop)."""
        for _ in range(limit):
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if self._bound:
                self.on_message(frames[0], frames[1:])
            else:
                self.on_message(b"", frames)

    def close(self) -> None:
        self.socket.close(linger=0)
        if self._bound:
            remove_ipc_file(self.endpoint)

"""Publishing on the bus: a PUB socket connected to the proxy's XSUB (``bus.xsub``).

A message is the two frames documented in :mod:`engine.bus.events`:
``[topic + b".", msgpack(event)]``; ``bind=True`` pairs a publisher with a subscriber
without a proxy (tests, benchmarks).

The PUB socket sets ``ZMQ_XPUB_NODROP`` (libzmq honours it on PUB as well as XPUB), so a
non-blocking send into a full pipe raises ``zmq.Again`` instead of vanishing:
:meth:`Publisher.publish` counts it in ``qsuite_bus_dropped_total{source}``; its ``seq``
stays used, so subscribers see the hole as a gap too. See :mod:`engine.bus.subscriber`
for every other place a message can be lost and who counts it.

Sockets are not thread-safe: use each publisher from one thread.
"""

from __future__ import annotations

import secrets
from typing import Any, TypeVar

import msgspec
import zmq

from engine.bus import codec
from engine.bus import topics as bus_topics
from engine.bus.endpoints import open_socket
from engine.bus.events import Event
from engine.clock import Clock, LiveClock
from engine.stats import STATS, StatsRegistry

E = TypeVar("E", bound=Event)

# Plain ints: combining zmq's IntFlag members costs about a microsecond per call.
_NOBLOCK = int(zmq.NOBLOCK)
_NOBLOCK_MORE = int(zmq.NOBLOCK | zmq.SNDMORE)


class _Topic:
    __slots__ = ("seq", "wire")

    def __init__(self, wire: bytes) -> None:
        self.wire = wire
        self.seq = 0


class Publisher:
    """Publishes events of one ``source`` (a process name); not thread-safe."""

    def __init__(
        self,
        ctx: zmq.Context[Any],
        endpoint: str,
        source: str,
        *,
        hwm: int,
        clock: Clock | None = None,
        stats: StatsRegistry = STATS,
        bind: bool = False,
    ) -> None:
        self.source = source
        self.clock: Clock = clock or LiveClock()
        self.session = secrets.token_hex(4)
        self._id_prefix = f"{source}:{self.session}:"
        self._count = 0
        self._topics: dict[str, _Topic] = {}
        self._published = stats.counter(
            "qsuite_bus_published_total", "Events queued to the bus", source=source
        )
        self._dropped = stats.counter(
            "qsuite_bus_dropped_total", "Events refused by a full publisher pipe", source=source
        )
        self.socket = open_socket(ctx, zmq.PUB, endpoint, hwm, bind, {zmq.XPUB_NODROP: 1})
        self._send = self.socket.send

    @property
    def address(self) -> str:
        """The endpoint bound or connected (resolves ``tcp://host:*``)."""
        return str(self.socket.getsockopt_string(zmq.LAST_ENDPOINT))

    def publish(self, topic: str, event: E) -> E:
        """Stamp the header (source, seq, event_id, ts_init if 0), send, return the event.

        Never blocks: a full pipe counts a drop instead. A bad topic raises
        :class:`~engine.bus.topics.TopicError` (a programming error) on its first use.
        """
        state = self._topics.get(topic)
        if state is None:
            bus_topics.parse(topic)
            state = self._topics[topic] = _Topic(bus_topics.to_wire(topic))
        state.seq += 1
        self._count += 1
        stamped = msgspec.structs.replace(
            event,
            source=self.source,
            seq=state.seq,
            event_id=f"{self._id_prefix}{self._count}",
            ts_init=event.ts_init or self.clock.time_ns(),
        )
        try:
            # With NODROP the pipe is checked per whole message: if the first frame is
            # accepted, the second is too, so a refused message leaves nothing behind.
            self._send(state.wire, _NOBLOCK_MORE)
            self._send(codec.encode(stamped), _NOBLOCK)
        except zmq.Again:
            self._dropped.value += 1
            return stamped
        self._published.value += 1
        return stamped

    def close(self, linger_ms: int = 0) -> None:
        """Close the socket; ``linger_ms`` > 0 gives queued events time to leave."""
        self.socket.close(linger=linger_ms)

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

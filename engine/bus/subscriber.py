"""Subscribing on the bus: a SUB socket connected to the proxy's XPUB (``bus.xpub``).

A message is the two frames documented in :mod:`engine.bus.events`:
``[topic + b".", msgpack(event)]``. Publishers connect to the proxy's XSUB
(``bus.xsub``), subscribers to its XPUB (``bus.xpub``); ``bind=True`` pairs two sockets
without a proxy (tests, benchmarks).

Where a message can be lost, and who counts it
----------------------------------------------
- **Publisher pipe full.** The PUB socket sets ``ZMQ_XPUB_NODROP`` (libzmq honours it on
  PUB as well as XPUB), so a non-blocking send into a full pipe raises ``zmq.Again``
  instead of vanishing. :meth:`Publisher.publish` counts it in
  ``qsuite_bus_dropped_total{source}``; its ``seq`` stays used, so subscribers see the
  hole as a gap too. With several peers (``bind=True``) one full pipe drops the event
  for all of them; through the proxy there is one peer.
- **Proxy to a slow subscriber.** The proxy's XPUB drops silently (a slow consumer must
  not stall the bus); no socket can count this, the subscriber sees a gap.
- **Slow joiner / no subscriber.** Until a subscription has travelled to the publisher,
  ZeroMQ discards matching messages without error and neither side can tell.
  :func:`wait_for_subscription` closes that window at start-up.

A subscriber checks ``seq`` per (source, topic): a jump is a gap (``on_gap`` and
``qsuite_bus_gaps_total`` / ``qsuite_bus_missed_total`` by source); an older number is a
duplicate and dropped; ``seq == 1`` or a new session in ``event_id`` is a publisher
restart (``qsuite_bus_restarts_total``), not a gap. A subscriber checks from the first
event it sees of each stream, so joining late is not a gap. Malformed messages are
counted in ``qsuite_bus_malformed_total{reason}`` (``frames``, ``topic``, ``payload``,
``unknown_tag``, ``invalid``), logged at most once a second per reason, and dropped.

Sockets are not thread-safe: use each subscriber from one thread.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Self

import msgspec
import zmq
import zmq.asyncio
from loguru import logger

from engine.bus import codec
from engine.bus import topics as bus_topics
from engine.bus.endpoints import open_socket
from engine.bus.events import EVENT_TYPES, Event, Probe
from engine.bus.publisher import Publisher
from engine.clock import LiveClock
from engine.errors import TransientError
from engine.stats import STATS, Cell, StatsRegistry

Handler = Callable[[str, Event], object]
Message = tuple[str, Event]

# Plain ints: combining zmq's IntFlag members costs about a microsecond per call.
_NOBLOCK = int(zmq.NOBLOCK)
_KNOWN_TAGS = frozenset(t.__struct_config__.tag for t in EVENT_TYPES)
_LOG_EVERY_S = 1.0
_TOPIC_CACHE_SIZE = 10_000
_COUNTERS = {  # subscriber counters: name -> (help, label)
    "qsuite_bus_malformed_total": ("Malformed bus messages dropped", "reason"),
    "qsuite_bus_restarts_total": ("Publisher restarts seen by subscribers", "source"),
    "qsuite_bus_duplicates_total": ("Duplicate (old seq) events dropped", "source"),
    "qsuite_bus_gaps_total": ("Sequence gaps seen by subscribers", "source"),
    "qsuite_bus_missed_total": ("Events lost in sequence gaps", "source"),
    "qsuite_bus_gap_handler_errors_total": ("on_gap callbacks that raised", "source"),
}


@dataclass(frozen=True, slots=True)
class Gap:
    """Events ``expected`` … ``got - 1`` of ``source`` on ``topic`` never arrived."""

    source: str
    topic: str
    expected: int
    got: int

    @property
    def missed(self) -> int:
        return self.got - self.expected


class _Stream:
    __slots__ = ("last", "session")

    def __init__(self, session: str, last: int) -> None:
        self.session = session
        self.last = last


def _session_of(event_id: str) -> str:
    return event_id[: event_id.rfind(":") + 1]  # "<source>:<session>:" or ""


def _malformed_reason(payload: bytes) -> str:
    try:
        body = msgspec.msgpack.decode(payload)
    except msgspec.DecodeError:
        return "payload"
    tag = body.get("type") if isinstance(body, dict) else None
    return "unknown_tag" if isinstance(tag, str) and tag not in _KNOWN_TAGS else "invalid"


def _wait_ms(deadline: float | None) -> int | None:
    """Milliseconds left until ``deadline`` (None: forever; 0 or less: time is up)."""
    return None if deadline is None else math.ceil((deadline - time.monotonic()) * 1000)


class _SubscriberCore:
    """Socket set-up, decoding, sequence checks and accounting of both subscribers.

    ``ctx`` is a ``zmq.Context`` for :class:`Subscriber`, a ``zmq.asyncio.Context`` for
    :class:`AsyncSubscriber`. ``topics`` are prefixes cut at ``.`` ("" = everything).
    """

    socket: Any

    def __init__(
        self,
        ctx: Any,
        endpoint: str,
        topics: Iterable[str] = ("",),
        *,
        hwm: int,
        on_gap: Callable[[Gap], object] | None = None,
        stats: StatsRegistry = STATS,
        bind: bool = False,
    ) -> None:
        self._stats = stats
        self._on_gap = on_gap
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._topic_names: dict[bytes, str] = {}  # topic frame -> topic, saves a decode
        self._cells: dict[tuple[str, str], Cell] = {}
        self._warned: dict[str, tuple[float, int]] = {}
        self._log = logger.bind(component="bus.subscriber", endpoint=endpoint)
        self._received = stats.counter(
            "qsuite_bus_received_total", "Well-formed events received (duplicates too)"
        )
        self.socket = open_socket(ctx, zmq.SUB, endpoint, hwm, bind, {})
        for prefix in [topics] if isinstance(topics, str) else topics:
            self.subscribe(prefix)

    @property
    def address(self) -> str:
        """The endpoint bound or connected (resolves ``tcp://host:*``)."""
        return str(self.socket.getsockopt_string(zmq.LAST_ENDPOINT))

    def subscribe(self, prefix: str) -> None:
        """Receive topics equal to ``prefix`` or below it ("" = everything)."""
        self.socket.setsockopt(zmq.SUBSCRIBE, bus_topics.subscription(prefix))

    def unsubscribe(self, prefix: str) -> None:
        """Undo one :meth:`subscribe`; forgets the sequence state of those topics."""
        self.socket.setsockopt(zmq.UNSUBSCRIBE, bus_topics.subscription(prefix))
        cut = bus_topics.subscription(prefix).decode()
        for key in [key for key in self._streams if f"{key[1]}.".startswith(cut)]:
            del self._streams[key]

    def close(self) -> None:
        self.socket.close(linger=0)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _count(self, name: str, label: str, amount: int = 1) -> None:
        cell = self._cells.get((name, label))
        if cell is None:
            help, key = _COUNTERS[name]
            cell = self._cells[name, label] = self._stats.counter(name, help, **{key: label})
        cell.value += amount

    def _warn(self, key: str, message: str) -> None:
        now = time.monotonic()
        last, suppressed = self._warned.get(key, (-math.inf, 0))
        if now - last < _LOG_EVERY_S:
            self._warned[key] = (last, suppressed + 1)
            return
        self._warned[key] = (now, 0)
        more = f" ({suppressed} more since the last report)" if suppressed else ""
        self._log.warning("{}{}", message, more)

    def _malformed(self, reason: str, detail: str) -> None:
        self._count("qsuite_bus_malformed_total", reason)
        self._warn(reason, f"Cannot decode bus message ({reason}): {detail[:200]}")

    def _accept(self, frames: list[bytes]) -> Message | None:
        if len(frames) != 2:
            self._malformed("frames", f"{len(frames)} frame(s), expected 2")
            return None
        topic = self._topic_names.get(frames[0])
        if topic is None:
            try:
                topic = bus_topics.from_wire(frames[0])
            except ValueError as exc:  # TopicError, or a frame that is not UTF-8
                self._malformed("topic", str(exc))
                return None
            if len(self._topic_names) < _TOPIC_CACHE_SIZE:
                self._topic_names[frames[0]] = topic
        try:
            event: Event = codec.decode_event(frames[1])
        except codec.DecodeError as exc:
            self._malformed(_malformed_reason(frames[1]), f"{exc} on {topic!r}")
            return None
        self._received.value += 1
        seq = event.seq
        if seq <= 0:  # not stamped by a Publisher: nothing to check
            return topic, event
        stream = self._streams.get((event.source, topic))
        if stream is None:
            self._streams[event.source, topic] = _Stream(_session_of(event.event_id), seq)
            return topic, event
        last = stream.last
        if seq == last + 1 and event.event_id.startswith(stream.session):
            stream.last = seq
            return topic, event
        return self._out_of_order(topic, event, stream)

    def _out_of_order(self, topic: str, event: Event, stream: _Stream) -> Message | None:
        seq, source, session = event.seq, event.source, _session_of(event.event_id)
        if session != stream.session or seq == 1:
            self._count("qsuite_bus_restarts_total", source)
            self._log.debug("Publisher {} restarted (topic {}, seq {})", source, topic, seq)
            stream.session, stream.last = session, seq
            return topic, event
        if seq <= stream.last:
            self._count("qsuite_bus_duplicates_total", source)
            return None
        gap = Gap(source, topic, stream.last + 1, seq)
        stream.last = seq
        self._count("qsuite_bus_gaps_total", source)
        self._count("qsuite_bus_missed_total", source, gap.missed)
        self._warn("gap", f"Missed {gap.missed} event(s) from {source} on {topic} before {seq}")
        if self._on_gap is not None:
            try:
                self._on_gap(gap)
            except Exception as exc:
                self._count("qsuite_bus_gap_handler_errors_total", source)
                self._warn("on_gap", f"Cannot handle a bus gap: on_gap raised {exc!r}")
        return topic, event


class Subscriber(_SubscriberCore):
    """Receives events of the given topic prefixes; not thread-safe.

    ``recv`` for simple loops; ``socket`` plus :meth:`handle_ready` for a ``zmq.Poller``
    loop. ``on_gap`` is called (and its exceptions counted) for every sequence gap.
    """

    def recv(self, timeout_ms: int | None = None) -> Message | None:
        """The next well-formed ``(topic, event)``, or None after ``timeout_ms``."""
        socket = self.socket
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        while True:
            try:
                frames = socket.recv_multipart(_NOBLOCK)
            except zmq.Again:
                wait = _wait_ms(deadline)
                if (wait is not None and wait <= 0) or not socket.poll(wait):
                    return None
                continue
            message = self._accept(frames)
            if message is not None:
                return message

    def handle_ready(self, handler: Handler, max_messages: int = 1000) -> int:
        """Pass up to ``max_messages`` queued events to ``handler`` without blocking.

        Returns how many were handled. Exceptions of ``handler`` propagate.
        """
        socket, handled = self.socket, 0
        for _ in range(max_messages):
            try:
                frames = socket.recv_multipart(_NOBLOCK)
            except zmq.Again:
                break
            message = self._accept(frames)
            if message is not None:
                handler(*message)
                handled += 1
        return handled

    def poll_batch(self, handler: Handler, max_messages: int = 1000, timeout_ms: int = 100) -> int:
        """Wait up to ``timeout_ms`` for events, then :meth:`handle_ready`."""
        if not self.socket.poll(timeout_ms):
            return 0
        return self.handle_ready(handler, max_messages)


class AsyncSubscriber(_SubscriberCore):
    """:class:`Subscriber` for asyncio (the NiceGUI console), on a ``zmq.asyncio`` context."""

    socket: zmq.asyncio.Socket

    async def recv(self, timeout_ms: int | None = None) -> Message | None:
        """The next well-formed ``(topic, event)``, or None after ``timeout_ms``."""
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        while True:
            try:
                frames = await self.socket.recv_multipart(_NOBLOCK)
            except zmq.Again:
                wait = _wait_ms(deadline)
                if (wait is not None and wait <= 0) or not await self.socket.poll(wait):
                    return None
                continue
            message = self._accept(frames)
            if message is not None:
                return message
            await asyncio.sleep(0)  # a flood of bad messages must not starve the loop


def wait_for_subscription(
    publisher: Publisher | Callable[[str, Probe], object],
    subscriber: Subscriber,
    *,
    timeout_s: float = 5.0,
    interval_ms: int = 10,
    on_other: Handler | None = None,
) -> int:
    """Block until events from ``publisher`` reach ``subscriber`` (the slow joiner).

    ZeroMQ discards a publisher's messages until the subscriber's subscription has
    reached it (through the proxy, when there is one). This subscribes ``subscriber``
    to a fresh ``sys.probe.<token>`` topic and publishes a numbered :class:`Probe` there
    every ``interval_ms`` until one arrives; then it sends no more and waits for the
    last one sent, so no probe of this call is left in flight; then it unsubscribes.
    Subscriptions travel in order on one connection, so every earlier subscription of
    ``subscriber`` is live too.

    ``publisher`` may instead be a callable ``send(topic, probe)`` (raw sockets in
    tests). Other events that arrive meanwhile go to ``on_other`` (default: dropped).
    Returns the number of probes sent; raises :class:`TransientError` if none arrived.
    """
    token = secrets.token_hex(6)
    topic = bus_topics.probe(token)
    send = publisher.publish if isinstance(publisher, Publisher) else publisher
    clock = publisher.clock if isinstance(publisher, Publisher) else LiveClock()
    subscriber.subscribe(topic)
    try:
        now = time.monotonic()
        deadline, next_send, sent, seen = now + timeout_s, now, 0, False
        while now < deadline:
            if not seen and now >= next_send:
                send(topic, Probe(token=f"{token}/{sent}", ts_event=clock.time_ns()))
                sent, next_send = sent + 1, now + interval_ms / 1000
            wait_s = (deadline if seen else min(deadline, next_send)) - now
            message = subscriber.recv(timeout_ms=max(1, math.ceil(wait_s * 1000)))
            now = time.monotonic()
            if message is None:
                continue
            topic_of, event = message
            if topic_of != topic or not isinstance(event, Probe):
                if on_other is not None:
                    on_other(topic_of, event)
                continue
            seen = True
            if event.token == f"{token}/{sent - 1}":
                return sent
        if seen:  # live, but the last probe was lost on the way: still a success
            return sent
        raise TransientError(
            f"Cannot confirm a bus subscription at {subscriber.address}: none of {sent} "
            f"probe(s) arrived within {timeout_s} s. Is the bus proxy running?"
        )
    finally:
        subscriber.unsubscribe(topic)

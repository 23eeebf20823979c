"""The control-plane server: a ROUTER socket that answers each command once.

Wire frames (the payloads and their fields are the contract in the docstring of
:mod:`engine.bus.commands`)::

    REQ client sends     [msgpack(Command)]
    ROUTER receives      [identity, b"", msgpack(Command)]
    ROUTER sends         [identity, b"", msgpack(Reply)]
    REQ client receives  [msgpack(Reply)]

A DEALER client sends ``[b"", payload]`` itself and receives ``[b"", reply]``. Several
identity frames (a ROUTER/DEALER broker in between) are answered along the same
envelope. Any other shape (no empty delimiter, no payload, more than one payload frame)
is counted in ``qsuite_control_rejected_frames_total{reason}`` and answered with
``bad_request``. A frame over ``max_message_bytes`` never reaches the server: libzmq
drops the connection of the peer that sent it (``ZMQ_MAXMSGSIZE``); the client's
check before sending is what reports it (:mod:`engine.bus.pirate`).

Serving one command; every step may end it with an error reply whose code comes from
:class:`engine.errors.ErrorCode`:

1. decode → ``bad_request`` (``unknown_command`` for an unknown tag, ``invalid`` for a
   known command whose fields have the wrong type or are out of range), with the
   ``command_id`` echoed best-effort from the raw map;
2. empty ``command_id`` → ``invalid``;
3. no handler in this process → ``unknown_command``, naming what it serves;
4. the caller's role is below the command's ``min_role`` → ``forbidden``;
5. ``command_id`` already journaled → the journaled reply with ``replayed=True``, the
   handler is not called; the same id with a different frame (another command, or
   other field values) → ``conflict``;
6. the handler runs: a :class:`CommandError` → its code; any other exception →
   ``internal`` (traceback logged, the loop goes on);
7. the reply is journaled — durably for mutating commands — and then sent. ``internal``
   replies are not journaled: nothing was applied, so a retry may succeed.

Crash window: a process killed after a mutating handler acted but before its reply was
journaled acts again on the retry. A handler whose effect must happen exactly once keeps
its own record keyed by ``command_id`` in the same transaction as the effect.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
import zmq
from loguru import logger

from engine.bus.codec import DecodeError, decode_command, decode_reply, encode
from engine.bus.commands import (
    RESULT_TYPES,
    ROLE_RANK,
    Command,
    ErrorBody,
    Reply,
    Result,
    command_by_tag,
    tag_of,
)
from engine.bus.endpoints import ensure_ipc_free, remove_ipc_file
from engine.bus.journal import DIGEST_SIZE, CommandJournal
from engine.bus.pirate import AsyncControlClient, ControlClient
from engine.clock import Clock, LiveClock
from engine.errors import CommandError, ErrorCode, OperationalError
from engine.stats import STATS, Cell, StatsRegistry

__all__ = ["AsyncControlClient", "CommandJournal", "ControlClient", "ControlServer", "Handler"]

C = TypeVar("C", bound=Command)
Handler = Callable[[Any], Result]
"""A command handler: takes the decoded command, returns a result or raises
:class:`CommandError`."""

COMMANDS_TOTAL = "qsuite_control_commands_total"
REJECTED_FRAMES_TOTAL = "qsuite_control_rejected_frames_total"
LATENCY_SECONDS_TOTAL = "qsuite_control_latency_seconds_total"
REPLAYED_TOTAL = "qsuite_control_replayed_total"
_HELP = {
    COMMANDS_TOTAL: "Control commands served, by command and outcome.",
    REJECTED_FRAMES_TOTAL: "Control frames that were not a command, by reason.",
    LATENCY_SECONDS_TOTAL: "Seconds spent serving control commands (sum).",
    REPLAYED_TOTAL: "Control commands answered from the idempotency journal.",
}

_KNOWN_TAGS = frozenset(command_by_tag())
_RESULT_CLASSES = frozenset(RESULT_TYPES)
_SNDMORE_NOBLOCK = zmq.SNDMORE | zmq.NOBLOCK


@dataclass(slots=True)
class _Route:
    """Everything the hot path needs about one command type, looked up once."""

    tag: str
    mutating: bool
    min_rank: int
    handler: Handler | None
    ok: Cell
    error: Cell
    seconds: Cell
    replayed: Cell


class ControlServer:
    """Serves control commands on a ROUTER socket bound at ``endpoint``.

    The owner polls :attr:`socket` (alone or with other sockets in a ``zmq.Poller``) and
    calls :meth:`handle_ready` when it is readable; :meth:`serve` is that loop for a
    process (or test) with nothing else to poll. The journal is the caller's to close.

    :param ctx: the process's ZeroMQ context (synchronous).
    :param endpoint: where to bind; ``tcp://127.0.0.1:*`` picks a free port, see
        :attr:`endpoint` for the bound address.
    :param process: this process's name, stamped on every reply.
    :param journal: idempotency journal (see :mod:`engine.bus.journal`).
    :param max_message_bytes: the largest frame accepted (``control.max_message_bytes``).
    :param clock: injected time (latencies use ``monotonic``).
    :param stats: the registry of this process's counters.
    :param reservoir_size: recent latencies kept for :meth:`latency_percentiles`.
    """

    def __init__(
        self,
        ctx: zmq.Context[Any],
        endpoint: str,
        process: str,
        *,
        journal: CommandJournal,
        max_message_bytes: int,
        clock: Clock | None = None,
        stats: StatsRegistry = STATS,
        reservoir_size: int = 1024,
    ) -> None:
        self.process = process
        self.max_message_bytes = max_message_bytes
        self._journal = journal
        self._clock: Clock = clock if clock is not None else LiveClock()
        self._stats = stats
        self._routes: dict[type[Command], _Route] = {}
        self._rejected: dict[str, Cell] = {}
        self._latencies: deque[float] = deque(maxlen=reservoir_size)
        self._log = logger.bind(process=process)
        ensure_ipc_free(
            endpoint, f"the control socket of {process}", f"processes.{process}.control"
        )
        sock = ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
        try:
            sock.bind(endpoint)
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            raise OperationalError(
                f"Cannot bind the control socket of {process} at {endpoint}: {exc}. "
                "Is another process bound there? Check its control endpoint setting."
            ) from exc
        self.socket: zmq.Socket[bytes] = sock
        self.endpoint: str = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        """The bound address (with the real port when bound to ``*``)."""

    # --- registration --------------------------------------------------------------

    def register(self, command_type: type[C], handler: Callable[[C], Result]) -> None:
        """Serve ``command_type`` with ``handler``; one handler per command type."""
        tag = tag_of(command_type)
        if tag not in _KNOWN_TAGS:
            raise ValueError(f"{command_type.__name__} is not in COMMAND_TYPES")
        route = self._route(command_type)
        if route.handler is not None:
            raise ValueError(f"{self.process} already has a handler for {tag}")
        route.handler = handler

    @property
    def served(self) -> list[str]:
        """Tags of the commands this server has handlers for, sorted."""
        return sorted(r.tag for r in self._routes.values() if r.handler is not None)

    # --- serving -------------------------------------------------------------------

    def handle_ready(self, max_messages: int = 100) -> int:
        """Answer up to ``max_messages`` waiting requests without blocking.

        Returns how many requests were read (0 when none was waiting).
        """
        sock = self.socket
        handled = 0
        while handled < max_messages:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            handled += 1
            self._reply_to(frames)
        return handled

    def serve(self, stop: threading.Event, *, poll_ms: int = 100) -> None:
        """Answer requests until ``stop`` is set (checked at least every ``poll_ms``).

        For a process with nothing else to poll: it blocks in ``recv`` (``RCVTIMEO``)
        instead of polling first, one call less per request.
        """
        sock = self.socket
        sock.setsockopt(zmq.RCVTIMEO, poll_ms)
        while not stop.is_set():
            try:
                frames = sock.recv_multipart()
            except zmq.Again:
                continue
            self._reply_to(frames)

    def dispatch(self, payload: bytes) -> bytes:
        """Serve one request payload and return the encoded reply (steps 1-7 above)."""
        started = self._clock.monotonic()
        try:
            command = decode_command(payload)
        except DecodeError as exc:
            return self._undecodable(payload, str(exc))
        route = self._routes.get(type(command)) or self._route(type(command))
        ok, reply = self._serve(command, route, payload)
        elapsed = self._clock.monotonic() - started
        (route.ok if ok else route.error).value += 1
        route.seconds.value += elapsed
        self._latencies.append(elapsed)
        return reply

    def latency_percentiles(self) -> dict[str, float]:
        """p50 and p99 of recent handling times in seconds, and the sample count."""
        data = sorted(self._latencies)
        if not data:
            return {"p50": 0.0, "p99": 0.0, "samples": 0.0}
        return {"p50": _rank(data, 0.50), "p99": _rank(data, 0.99), "samples": float(len(data))}

    def close(self) -> None:
        self.socket.close(linger=0)
        remove_ipc_file(self.endpoint)

    def __enter__(self) -> ControlServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- one command ---------------------------------------------------------------

    def _serve(self, command: Command, route: _Route, payload: bytes) -> tuple[bool, bytes]:
        command_id, tag = command.command_id, route.tag
        if not command_id:
            return self._refuse(command, tag, ErrorCode.INVALID, "command_id is required")
        handler = route.handler
        if handler is None:
            message = f"{tag} is not served here; {self._serves()}"
            return self._refuse(command, tag, ErrorCode.UNKNOWN_COMMAND, message)
        if ROLE_RANK[command.role] < route.min_rank:
            message = f"{tag} needs role {command.min_role}; the caller acts as {command.role}"
            return self._refuse(command, tag, ErrorCode.FORBIDDEN, message)
        # the frame as sent: a Lazy Pirate resend repeats it byte for byte
        digest = hashlib.blake2b(payload, digest_size=DIGEST_SIZE).digest()
        try:
            entry = self._journal.get(command_id, durable=route.mutating)
        except Exception as exc:
            self._bound(command, tag).opt(exception=exc).error("Cannot read the journal")
            message = f"the command journal cannot be read ({exc}); the command was not applied"
            return self._refuse(command, tag, ErrorCode.UNAVAILABLE, message)
        if entry is not None:
            if entry.digest != digest:
                message = "command_id reused for a different command"
                return self._refuse(command, tag, ErrorCode.CONFLICT, message)
            route.replayed.value += 1
            return self._replay(command, tag, entry.reply)
        ok, reply, journal = self._apply(command, tag, handler)
        if journal:
            try:
                self._journal.put(command_id, digest, reply, durable=route.mutating)
            except Exception as exc:
                self._bound(command, tag).opt(exception=exc).error("Cannot journal the reply")
        return ok, reply

    def _apply(self, command: Command, tag: str, handler: Handler) -> tuple[bool, bytes, bool]:
        """Run the handler: (ok, encoded reply, whether to journal it)."""
        try:
            result = handler(command)
            if type(result) not in _RESULT_CLASSES:
                raise TypeError(f"the handler returned {type(result).__name__}, not a result type")
            reply = encode(
                Reply(command_id=command.command_id, ok=True, process=self.process, result=result)
            )
        except CommandError as exc:
            return *self._refuse(command, tag, exc.code, exc.message), True
        except Exception as exc:
            self._bound(command, tag).opt(exception=exc).error("Cannot apply {}: it raised", tag)
            message = f"{type(exc).__name__}: {exc}; the command was not applied"
            return *self._refuse(command, tag, ErrorCode.INTERNAL, message), False
        if command.mutating:
            self._bound(command, tag).info("Applied {}", tag)
        return True, reply, True

    def _refuse(self, command: Command, tag: str, code: str, message: str) -> tuple[bool, bytes]:
        log = self._bound(command, tag)
        (log.info if command.mutating else log.debug)("Cannot apply {}: {}: {}", tag, code, message)
        return False, self._error(command.command_id, code, message)

    def _error(self, command_id: str, code: str, message: str) -> bytes:
        error = ErrorBody(code, message)
        return encode(Reply(command_id=command_id, ok=False, process=self.process, error=error))

    def _replay(self, command: Command, tag: str, stored: bytes) -> tuple[bool, bytes]:
        try:
            reply = decode_reply(stored)
        except DecodeError:
            message = "the journaled reply of this command_id cannot be read; not applied again"
            return self._refuse(command, tag, ErrorCode.INTERNAL, message)
        if command.mutating:
            self._bound(command, tag).info("Replayed the reply of {}", tag)
        return reply.ok, encode(msgspec.structs.replace(reply, replayed=True))

    def _undecodable(self, payload: bytes, reason: str) -> bytes:
        """The reply to a payload that is not a valid command (step 1)."""
        try:
            raw = msgspec.msgpack.decode(payload)
        except (msgspec.DecodeError, RecursionError):
            raw = None
        fields = raw if isinstance(raw, dict) else {}
        command_id = fields.get("command_id")
        command_id = command_id if isinstance(command_id, str) else ""
        tag = fields.get("type")
        if isinstance(tag, str) and tag not in _KNOWN_TAGS:
            code, kind = ErrorCode.UNKNOWN_COMMAND, "unknown_type"
            message = f"unknown command type {tag[:80]!r}; {self._serves()}"
        elif isinstance(tag, str):  # a known command whose fields are wrong or out of range
            code, kind, message = ErrorCode.INVALID, "invalid_fields", f"invalid {tag}: {reason}"
        else:
            code, kind, message = ErrorCode.BAD_REQUEST, "undecodable", f"not a command: {reason}"
        self._count_rejected(kind)
        self._log.bind(command_id=command_id).warning("Cannot decode a control frame: {}", message)
        return self._error(command_id, code, message)

    def _reply_to(self, frames: list[bytes]) -> None:
        """Split the envelope off a ROUTER message, serve its payload, send the reply."""
        try:
            delimiter = frames.index(b"", 1)
        except ValueError:
            envelope, reply = [frames[0], b""], self._malformed("no_delimiter")
        else:
            envelope = frames[: delimiter + 1]
            payloads = len(frames) - delimiter - 1
            if payloads == 1:
                reply = self.dispatch(frames[-1])
            else:
                reply = self._malformed("no_payload" if payloads == 0 else "multipart")
        send = self.socket.send
        try:  # frame by frame: send_multipart's per-part checks cost more than the sends
            for frame in envelope:
                send(frame, _SNDMORE_NOBLOCK)
            send(reply, zmq.NOBLOCK)
        except zmq.ZMQError as exc:  # the peer vanished or is not reading
            self._log.warning("Cannot send a control reply: {}", exc)

    def _malformed(self, reason: str) -> bytes:
        self._count_rejected(reason)
        message = f"malformed request ({reason}): send [b'', msgpack(command)] via REQ or DEALER"
        self._log.warning("Cannot serve a control request: {}", message)
        return self._error("", ErrorCode.BAD_REQUEST, message)

    # --- bookkeeping ---------------------------------------------------------------

    def _serves(self) -> str:
        return f"{self.process} serves: {', '.join(self.served) or 'no commands'}"

    def _bound(self, command: Command, tag: str) -> Any:
        return self._log.bind(command_id=command.command_id, command=tag)

    def _route(self, command_type: type[Command]) -> _Route:
        route = self._routes.get(command_type)
        if route is None:
            tag, counter = tag_of(command_type), self._stats.counter
            route = self._routes[command_type] = _Route(
                tag=tag,
                mutating=command_type.mutating,
                min_rank=ROLE_RANK[command_type.min_role],
                handler=None,
                ok=counter(COMMANDS_TOTAL, _HELP[COMMANDS_TOTAL], command=tag, outcome="ok"),
                error=counter(COMMANDS_TOTAL, _HELP[COMMANDS_TOTAL], command=tag, outcome="error"),
                seconds=counter(LATENCY_SECONDS_TOTAL, _HELP[LATENCY_SECONDS_TOTAL], command=tag),
                replayed=counter(REPLAYED_TOTAL, _HELP[REPLAYED_TOTAL], command=tag),
            )
        return route

    def _count_rejected(self, reason: str) -> None:
        cell = self._rejected.get(reason)
        if cell is None:
            help_ = _HELP[REJECTED_FRAMES_TOTAL]
            cell = self._rejected[reason] = self._stats.counter(
                REJECTED_FRAMES_TOTAL, help_, reason=reason
            )
        cell.value += 1


def _rank(data: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted ``data``."""
    return data[min(len(data) - 1, max(0, math.ceil(q * len(data)) - 1))]

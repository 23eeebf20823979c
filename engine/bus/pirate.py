"""Control-plane clients: the ZeroMQ guide's Lazy Pirate over a REQ socket.

Wire frames: the client sends ``[msgpack(Command)]`` and receives ``[msgpack(Reply)]``;
the server side and the full contract are described in :mod:`engine.bus.control` and
:mod:`engine.bus.commands`.

One request: send, then wait up to ``timeout_ms`` for the reply. With no reply the REQ
socket is closed with linger 0 (dropping the unsent request and any late reply), a new
one connects, and the *same* command — same ``command_id`` — is sent again, up to
``retries`` attempts in all; then :class:`EngineUnreachable`. Resending is safe because
the server answers a repeated ``command_id`` from its journal instead of acting twice.

Errors, one meaning each:

- :class:`EngineUnreachable` (a ``TransientError``): no reply after every attempt.
- :class:`CommandError`: from :meth:`ControlClient.call` when the reply says ``ok=False``
  (its ``code`` is the server's), and from both ``request`` and ``call`` with code
  ``invalid`` when the encoded command exceeds ``max_message_bytes`` (the server would
  drop the connection instead of answering).
- :class:`OperationalError`: the reply could not be decoded, or was ``ok`` without a
  result. The peer is not a QSuite control server of a compatible version: retrying
  cannot help, an operator has to look at the endpoint and the versions.

A reply whose ``command_id`` names another command is ignored (REQ sockets make that
impossible; this is a guard): the attempt counts as failed and the command is resent.

A client is used by one thread (or one event loop) at a time; the async client
serializes its own coroutines. ``close`` terminates the context only when the client
created it.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import uuid
from typing import Any, TypeVar

import msgspec
import zmq
import zmq.asyncio
from loguru import logger

from engine.bus.codec import DecodeError, decode_reply, encode
from engine.bus.commands import Command, Reply, Result
from engine.errors import CommandError, EngineUnreachable, ErrorCode, OperationalError

C = TypeVar("C", bound=Command)

DEFAULT_MAX_MESSAGE_BYTES = 1_048_576
"""``control.max_message_bytes`` of the default settings."""


class _PirateCore:
    """What the sync and async clients share: settings, encoding, reply checks."""

    def __init__(
        self, endpoint: str, *, timeout_ms: int, retries: int, max_message_bytes: int
    ) -> None:
        if timeout_ms <= 0:
            raise ValueError("timeout_ms must be positive")
        if retries < 1:
            raise ValueError("retries must be at least 1")
        self.endpoint = endpoint
        self.timeout_ms = timeout_ms
        self.retries = retries
        self.max_message_bytes = max_message_bytes
        self._log = logger.bind(component="control_client", endpoint=endpoint)
        self._id_pid = 0
        self._id_prefix = ""
        self._id_seq = itertools.count(1)

    def _new_id(self) -> str:
        """32 hex digits: a random 64-bit prefix per client (and per process) + a counter.

        As unique as a uuid4 for the journal's purposes, without the ``getrandom`` system
        call a uuid4 makes per command (about 10 µs of a ~150 µs round trip here).
        """
        pid = os.getpid()
        if pid != self._id_pid:  # a new client, or a forked child: never reuse a prefix
            self._id_pid, self._id_prefix = pid, uuid.uuid4().hex[:16]
            self._id_seq = itertools.count(1)
        return f"{self._id_prefix}{next(self._id_seq):016x}"

    def _prepare(self, command: C) -> tuple[C, bytes]:
        """The command with an id (a fresh one when empty) and its frame."""
        if not command.command_id:
            command = msgspec.structs.replace(command, command_id=self._new_id())
        payload = encode(command)
        if len(payload) > self.max_message_bytes:
            raise CommandError(
                ErrorCode.INVALID,
                f"the command is {len(payload)} bytes; control frames are limited to "
                f"{self.max_message_bytes} bytes (control.max_message_bytes)",
            )
        return command, payload

    def _accept(self, raw: bytes, command_id: str) -> Reply | None:
        """The reply in ``raw``, or ``None`` when it answers another command."""
        try:
            reply = decode_reply(raw)
        except DecodeError as exc:
            raise OperationalError(
                f"Cannot read the control reply from {self.endpoint}: {exc}. Is it a QSuite "
                f"control endpoint of the same version?"
            ) from None
        # An empty id means the server could not read ours; REQ is lock-step, so it is
        # still the answer to our frame.
        if reply.command_id and reply.command_id != command_id:
            self._log.warning(
                "Ignoring a reply to command {} while waiting for {}", reply.command_id, command_id
            )
            return None
        return reply

    def _result_of(self, reply: Reply) -> Result:
        if not reply.ok:
            error = reply.error
            if error is None:
                raise CommandError(ErrorCode.INTERNAL, f"{reply.process} refused without a reason")
            raise CommandError(error.code, error.message)
        if reply.result is None:
            raise OperationalError(f"{reply.process} answered ok without a result")
        result: Result = reply.result
        return result

    def _give_up(self, command: Command) -> EngineUnreachable:
        self._log.bind(command_id=command.command_id).warning(
            "Cannot reach {} after {} attempt(s)", self.endpoint, self.retries
        )
        return EngineUnreachable(self.endpoint, self.retries, self.timeout_ms)

    def _retrying(self, command: Command, attempt: int) -> None:
        self._log.bind(command_id=command.command_id).debug(
            "No reply in {} ms, attempt {}/{}; reconnecting", self.timeout_ms, attempt, self.retries
        )

    def _new_socket(self, ctx: zmq.Context[Any]) -> Any:
        sock = ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDTIMEO, self.timeout_ms)
        sock.setsockopt(zmq.RCVTIMEO, self.timeout_ms)
        sock.connect(self.endpoint)
        return sock


class ControlClient(_PirateCore):
    """Blocking Lazy Pirate client of one control endpoint.

    :param endpoint: the server's ROUTER endpoint (``processes.<name>.control``).
    :param timeout_ms: how long to wait for one reply (``control.timeout_ms``).
    :param retries: attempts in all before :class:`EngineUnreachable` (``control.retries``).
    :param ctx: a shared ZeroMQ context; ``None`` creates one that ``close`` terminates.
    :param max_message_bytes: the largest command frame sent.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        timeout_ms: int,
        retries: int,
        ctx: zmq.Context[Any] | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        super().__init__(
            endpoint, timeout_ms=timeout_ms, retries=retries, max_message_bytes=max_message_bytes
        )
        self._own_ctx = ctx is None
        self._ctx: zmq.Context[Any] = zmq.Context() if ctx is None else ctx
        self._sock: zmq.Socket[bytes] | None = None

    def request(self, command: Command) -> Reply:
        """Send ``command`` (an empty ``command_id`` is filled in) and return the reply."""
        command, payload = self._prepare(command)
        for attempt in range(1, self.retries + 1):
            sock = self._socket()
            try:
                sock.send(payload)
                reply = self._accept(sock.recv(), command.command_id)  # RCVTIMEO: no poll
                if reply is not None:
                    return reply
            except zmq.Again:
                pass  # no reply (or no send) within timeout_ms
            except BaseException:
                self._reset()  # the REQ socket is mid-request: unusable
                raise
            self._reset()
            if attempt < self.retries:
                self._retrying(command, attempt)
        raise self._give_up(command)

    def call(self, command: Command) -> Result:
        """The result of ``command``; raises :class:`CommandError` when it was refused."""
        return self._result_of(self.request(command))

    def close(self) -> None:
        self._reset()
        if self._own_ctx and not self._ctx.closed:
            self._ctx.term()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _socket(self) -> zmq.Socket[bytes]:
        if self._sock is None:
            self._sock = self._new_socket(self._ctx)
        return self._sock

    def _reset(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None


class AsyncControlClient(_PirateCore):
    """The same client for asyncio code (the console), over ``zmq.asyncio``.

    Coroutines of one client take turns (a REQ socket carries one request at a time).
    Parameters as :class:`ControlClient`; ``ctx`` must be a ``zmq.asyncio.Context``.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        timeout_ms: int,
        retries: int,
        ctx: zmq.asyncio.Context | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        super().__init__(
            endpoint, timeout_ms=timeout_ms, retries=retries, max_message_bytes=max_message_bytes
        )
        self._own_ctx = ctx is None
        self._ctx = zmq.asyncio.Context() if ctx is None else ctx
        self._sock: zmq.asyncio.Socket | None = None
        self._lock = asyncio.Lock()

    async def request(self, command: Command) -> Reply:
        """Send ``command`` (an empty ``command_id`` is filled in) and return the reply."""
        command, payload = self._prepare(command)
        async with self._lock:
            for attempt in range(1, self.retries + 1):
                sock = self._socket()
                deadline = time.monotonic() + self.timeout_ms / 1000
                try:
                    await asyncio.wait_for(sock.send(payload), self.timeout_ms / 1000)
                    remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
                    if await sock.poll(remaining_ms):
                        reply = self._accept(await sock.recv(), command.command_id)
                        if reply is not None:
                            return reply
                except (TimeoutError, zmq.Again):
                    pass  # send timed out: handled as no reply
                except BaseException:
                    self._reset()  # cancelled or failed mid-request: the socket is unusable
                    raise
                self._reset()
                if attempt < self.retries:
                    self._retrying(command, attempt)
        raise self._give_up(command)

    async def call(self, command: Command) -> Result:
        """The result of ``command``; raises :class:`CommandError` when it was refused."""
        return self._result_of(await self.request(command))

    def close(self) -> None:
        self._reset()
        if self._own_ctx and not self._ctx.closed:
            self._ctx.term()

    async def __aenter__(self) -> AsyncControlClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def _socket(self) -> zmq.asyncio.Socket:
        if self._sock is None:
            self._sock = self._new_socket(self._ctx)
        return self._sock

    def _reset(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

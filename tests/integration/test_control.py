"""The control plane over real sockets: ControlServer, ControlClient, AsyncControlClient."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zmq
import zmq.asyncio
from conftest_control import (
    free_tcp_endpoint,
    pong_handler,
    raw_exchange,
    running_server,
    start_server_process,
    stop_process,
    term_with_deadline,
)
from loguru import logger

from engine.bus.codec import decode_reply, encode
from engine.bus.commands import (
    GetStatus,
    LogLevelSet,
    Ping,
    Pong,
    ProcessRestarted,
    RestartProcess,
    SetLogLevel,
)
from engine.bus.control import ControlServer
from engine.bus.journal import CommandJournal
from engine.bus.pirate import AsyncControlClient, ControlClient
from engine.errors import CommandError, EngineUnreachable, ErrorCode, OperationalError
from engine.stats import StatsRegistry

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def ctx() -> Iterator[zmq.Context[Any]]:
    context: zmq.Context[Any] = zmq.Context()
    yield context
    term_with_deadline(context)


@pytest.fixture
def stats() -> StatsRegistry:
    return StatsRegistry()


def client(ctx: zmq.Context[Any], endpoint: str, **kwargs: Any) -> ControlClient:
    options: dict[str, Any] = {"timeout_ms": 3000, "retries": 1, "ctx": ctx, **kwargs}
    return ControlClient(endpoint, **options)


def set_level_handler(calls: list[Any]) -> Any:
    def handle(command: SetLogLevel) -> LogLevelSet:
        calls.append(command)
        return LogLevelSet(process="test", previous="INFO", current=command.level, applied_at=1)

    return handle


def ask(ctx: zmq.Context[Any], endpoint: str, payload: bytes) -> Any:
    frames = raw_exchange(ctx, endpoint, [b"", payload])
    assert frames is not None and frames[0] == b""
    return decode_reply(frames[1])


# --- round trips ---------------------------------------------------------------------


def test_ping_when_handler_registered_then_pong(ctx: Any, stats: StatsRegistry) -> None:
    with (
        running_server(ctx, {Ping: pong_handler()}, stats=stats) as server,
        client(ctx, server.endpoint) as c,
    ):
        reply = c.request(Ping(command_id="p1"))
        result = c.call(Ping())

    assert reply.ok and reply.command_id == "p1" and not reply.replayed
    assert reply.process == "test" and isinstance(reply.result, Pong)
    assert isinstance(result, Pong)
    assert stats.snapshot()["qsuite_control_commands_total{command=Ping.v1,outcome=ok}"] == 2
    assert server.latency_percentiles()["samples"] == 2


def test_dealer_client_with_delimiter_is_served(ctx: Any) -> None:
    with running_server(ctx, {Ping: pong_handler()}) as server:
        reply = ask(ctx, server.endpoint, encode(Ping(command_id="d1")))

    assert reply.ok and reply.command_id == "d1"


def test_command_when_no_handler_then_unknown_command(ctx: Any) -> None:
    with running_server(ctx, {Ping: pong_handler()}) as server, client(ctx, server.endpoint) as c:
        reply = c.request(GetStatus(command_id="s1"))

    assert not reply.ok and reply.error is not None and reply.command_id == "s1"
    assert reply.error.code == ErrorCode.UNKNOWN_COMMAND
    assert "Ping.v1" in reply.error.message


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"type": "Launch.v1"}, ErrorCode.UNKNOWN_COMMAND),
        ({"type": "Ping.v1", "role": 3}, ErrorCode.INVALID),
        ({"type": "SetLogLevel.v1", "role": "admin"}, ErrorCode.INVALID),
    ],
    ids=["unknown-tag", "wrong-field-type", "missing-field"],
)
def test_request_when_not_a_valid_command_then_refused_with_its_command_id(
    ctx: Any, stats: StatsRegistry, fields: dict[str, Any], code: str
) -> None:
    with running_server(ctx, {Ping: pong_handler()}, stats=stats) as server:
        reply = ask(ctx, server.endpoint, encode({"command_id": "x1", **fields}))

    assert not reply.ok and reply.error is not None
    assert (reply.error.code, reply.command_id) == (code, "x1")
    assert stats.total("qsuite_control_rejected_frames_total") == 1


def test_request_when_garbage_bytes_then_bad_request(ctx: Any) -> None:
    with running_server(ctx, {Ping: pong_handler()}) as server:
        reply = ask(ctx, server.endpoint, b"\xc1\x00garbage")

    assert not reply.ok and reply.error is not None and reply.command_id == ""
    assert reply.error.code == ErrorCode.BAD_REQUEST


@pytest.mark.parametrize(
    ("frames", "reason"),
    [([b"no delimiter"], "no_delimiter"), ([b""], "no_payload"), ([b"", b"a", b"b"], "multipart")],
)
def test_request_when_malformed_envelope_then_counted_and_bad_request(
    ctx: Any, stats: StatsRegistry, frames: list[bytes], reason: str
) -> None:
    with running_server(ctx, {Ping: pong_handler()}, stats=stats) as server:
        answer = raw_exchange(ctx, server.endpoint, frames)

    assert answer is not None
    reply = decode_reply(answer[-1])
    assert reply.error is not None and reply.error.code == ErrorCode.BAD_REQUEST
    assert stats.snapshot()[f"qsuite_control_rejected_frames_total{{reason={reason}}}"] == 1


def test_request_when_frame_oversized_then_dropped_and_others_still_served(ctx: Any) -> None:
    with running_server(ctx, {Ping: pong_handler()}, max_message_bytes=2048) as server:
        big = ctx.socket(zmq.DEALER)
        big.setsockopt(zmq.LINGER, 0)
        try:
            big.connect(server.endpoint)
            big.send_multipart([b"", encode(Ping(command_id="big", actor="x" * 4096))])
            with client(ctx, server.endpoint) as c:
                assert c.request(Ping(command_id="small")).ok
                assert c.request(Ping(command_id="small-2")).ok
            assert big.poll(100, zmq.POLLIN) == 0  # disconnected by libzmq, never answered
        finally:
            big.close(linger=0)


def test_client_when_command_over_limit_then_invalid_without_sending(ctx: Any) -> None:
    with (
        client(ctx, free_tcp_endpoint(), max_message_bytes=1024) as c,
        pytest.raises(CommandError) as refused,
    ):
        c.request(Ping(actor="x" * 2048))

    assert refused.value.code == ErrorCode.INVALID


def test_request_when_command_id_empty_then_invalid(ctx: Any) -> None:
    calls: list[Any] = []
    with running_server(ctx, {SetLogLevel: set_level_handler(calls)}) as server:
        payload = encode(SetLogLevel(command_id="", level="DEBUG", role="admin"))
        reply = ask(ctx, server.endpoint, payload)

    assert reply.error is not None and reply.error.code == ErrorCode.INVALID
    assert reply.error.message == "command_id is required"
    assert calls == []


def test_request_when_role_too_low_then_forbidden_and_not_applied(ctx: Any) -> None:
    calls: list[Any] = []
    with (
        running_server(ctx, {SetLogLevel: set_level_handler(calls)}) as server,
        client(ctx, server.endpoint) as c,
    ):
        reply = c.request(SetLogLevel(level="DEBUG", role="operator"))

    assert reply.error is not None and reply.error.code == ErrorCode.FORBIDDEN
    assert "admin" in reply.error.message
    assert calls == []


# --- handler failures ----------------------------------------------------------------


def test_handler_when_it_raises_then_internal_and_server_keeps_serving(
    ctx: Any, stats: StatsRegistry
) -> None:
    attempts: list[Any] = []

    def flaky(command: RestartProcess) -> ProcessRestarted:
        attempts.append(command)
        if len(attempts) == 1:
            raise RuntimeError("boom")
        return ProcessRestarted(process=command.process, old_pid=1, new_pid=2)

    handlers = {RestartProcess: flaky, Ping: pong_handler()}
    with running_server(ctx, handlers, stats=stats) as server, client(ctx, server.endpoint) as c:
        command = RestartProcess(command_id="r1", process="feed", role="admin")
        first = c.request(command)
        assert c.request(Ping()).ok
        retried = c.request(command)

    assert first.error is not None and first.error.code == ErrorCode.INTERNAL
    assert first.error.message == "RuntimeError: boom; the command was not applied"
    assert retried.ok and not retried.replayed  # an internal failure is not journaled
    assert len(attempts) == 2


def test_handler_when_command_error_then_code_passed_through_and_journaled(ctx: Any) -> None:
    attempts: list[Any] = []

    def refuse(command: RestartProcess) -> ProcessRestarted:
        attempts.append(command)
        raise CommandError(ErrorCode.NOT_FOUND, f"no process {command.process!r}")

    with running_server(ctx, {RestartProcess: refuse}) as server, client(ctx, server.endpoint) as c:
        command = RestartProcess(command_id="r2", process="nope", role="admin")
        with pytest.raises(CommandError) as refused:
            c.call(command)
        again = c.request(command)

    assert (refused.value.code, refused.value.message) == (ErrorCode.NOT_FOUND, "no process 'nope'")
    assert again.replayed and again.error is not None and again.error.code == ErrorCode.NOT_FOUND
    assert len(attempts) == 1


# --- idempotency ---------------------------------------------------------------------


def test_request_when_command_id_repeated_then_first_reply_replayed(
    ctx: Any, stats: StatsRegistry
) -> None:
    calls: list[Any] = []
    handlers = {SetLogLevel: set_level_handler(calls)}
    with running_server(ctx, handlers, stats=stats) as server, client(ctx, server.endpoint) as c:
        command = SetLogLevel(command_id="same", level="DEBUG", role="admin")
        first = c.request(command)
        second = c.request(command)

    assert first.ok and not first.replayed
    assert second.replayed and second.result == first.result
    assert len(calls) == 1
    assert stats.total("qsuite_control_replayed_total") == 1


def test_request_when_command_id_reused_for_other_command_then_conflict(ctx: Any) -> None:
    calls: list[Any] = []
    handlers = {SetLogLevel: set_level_handler(calls), Ping: pong_handler()}
    with running_server(ctx, handlers) as server, client(ctx, server.endpoint) as c:
        first = c.request(SetLogLevel(command_id="id", level="DEBUG", role="admin"))
        other_payload = c.request(SetLogLevel(command_id="id", level="ERROR", role="admin"))
        other_type = c.request(Ping(command_id="id"))

    assert first.ok
    for reply in (other_payload, other_type):
        assert reply.error is not None and reply.error.code == ErrorCode.CONFLICT
        assert reply.error.message == "command_id reused for a different command"
    assert len(calls) == 1


def test_mutating_command_when_server_restarted_then_replayed_not_reapplied(
    ctx: Any, tmp_path: Path
) -> None:
    endpoint, journal, actions = free_tcp_endpoint(), tmp_path / "journal", tmp_path / "acts"
    command = SetLogLevel(command_id="restart-1", level="DEBUG", role="admin")
    proc = start_server_process(endpoint, journal, actions, tmp_path / "child.log")
    try:
        with client(ctx, endpoint) as c:
            first = c.request(command)
        stop_process(proc)  # kill -9 right after the reply
        proc = start_server_process(endpoint, journal, actions, tmp_path / "child.log")
        with client(ctx, endpoint) as c:
            again = c.request(command)
    finally:
        stop_process(proc)

    assert first.ok and not first.replayed
    assert again.replayed and again.result == first.result  # same applied_at: not re-run
    assert actions.read_text().splitlines() == ["restart-1 DEBUG"]


# --- Lazy Pirate ---------------------------------------------------------------------


def test_client_when_server_killed_then_unreachable_after_all_attempts(tmp_path: Path) -> None:
    endpoint = free_tcp_endpoint()
    proc = start_server_process(endpoint, tmp_path / "j", tmp_path / "acts", tmp_path / "log")
    own: zmq.Context[Any] = zmq.Context()
    try:
        with ControlClient(endpoint, timeout_ms=200, retries=3, ctx=own) as c:
            assert c.request(Ping()).ok
            stop_process(proc)
            started = time.monotonic()
            with pytest.raises(EngineUnreachable) as gave_up:
                c.request(Ping())
            elapsed = time.monotonic() - started
    finally:
        stop_process(proc)
        term_with_deadline(own)  # hangs if an attempt's socket leaked

    assert 0.55 <= elapsed <= 0.6 + 1.5
    assert "3 attempt(s) of 200 ms" in str(gave_up.value)


def test_client_when_server_comes_back_between_attempts_then_succeeds(ctx: Any) -> None:
    endpoint = free_tcp_endpoint()
    first_timeout = threading.Event()
    sink = logger.add(
        lambda _m: first_timeout.set(), level="DEBUG", filter=lambda r: "No reply" in r["message"]
    )
    calls: list[Any] = []
    try:
        with client(ctx, endpoint, timeout_ms=300, retries=10) as c, ThreadPoolExecutor(1) as pool:
            pending = pool.submit(c.request, SetLogLevel(level="WARNING", role="admin"))
            assert first_timeout.wait(10), "the client never retried"
            with running_server(ctx, {SetLogLevel: set_level_handler(calls)}, endpoint=endpoint):
                reply = pending.result(timeout=10)
    finally:
        logger.remove(sink)

    assert reply.ok and not reply.replayed
    assert len(calls) == 1  # the attempts sent before the server existed were dropped


def test_client_fills_empty_command_id_with_unique_32_hex_ids(ctx: Any) -> None:
    with (
        running_server(ctx, {Ping: pong_handler()}) as server,
        client(ctx, server.endpoint) as a,
        client(ctx, server.endpoint) as b,
    ):
        ids = [c.request(Ping()).command_id for c in (a, a, b, b)]
        kept = a.request(Ping(command_id="mine")).command_id

    assert len(set(ids)) == 4
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert ids[0][:16] == ids[1][:16] != ids[2][:16]  # one random prefix per client
    assert kept == "mine"


def test_client_when_reply_is_not_a_reply_then_operational_error(ctx: Any) -> None:
    rep = ctx.socket(zmq.REP)
    rep.setsockopt(zmq.LINGER, 0)
    try:
        port = rep.bind_to_random_port("tcp://127.0.0.1")
        with client(ctx, f"tcp://127.0.0.1:{port}") as c, ThreadPoolExecutor(1) as pool:
            pending = pool.submit(c.request, Ping())
            assert rep.poll(5000, zmq.POLLIN)
            rep.recv()
            rep.send(msgspec.msgpack.encode({"hello": "world"}))
            with pytest.raises(OperationalError, match="Cannot read the control reply"):
                pending.result(timeout=10)
    finally:
        rep.close(linger=0)


# --- async client --------------------------------------------------------------------


async def test_async_client_round_trip_and_refusal(ctx: Any) -> None:
    actx = zmq.asyncio.Context()
    try:
        with running_server(ctx, {Ping: pong_handler()}) as server:
            async with AsyncControlClient(
                server.endpoint, timeout_ms=3000, retries=1, ctx=actx
            ) as c:
                results = await asyncio.gather(*(c.call(Ping()) for _ in range(5)))
                with pytest.raises(CommandError) as refused:
                    await c.call(GetStatus())
    finally:
        term_with_deadline(actx)

    assert all(isinstance(r, Pong) for r in results)
    assert refused.value.code == ErrorCode.UNKNOWN_COMMAND


async def test_async_client_when_nothing_listens_then_unreachable() -> None:
    actx = zmq.asyncio.Context()
    try:
        async with AsyncControlClient(
            free_tcp_endpoint(), timeout_ms=150, retries=2, ctx=actx
        ) as c:
            started = time.monotonic()
            with pytest.raises(EngineUnreachable):
                await c.request(Ping())
            elapsed = time.monotonic() - started
    finally:
        term_with_deadline(actx)

    assert 0.25 <= elapsed <= 0.3 + 1.5


# --- construction --------------------------------------------------------------------


def test_server_when_endpoint_taken_then_operational_error_naming_it(ctx: Any) -> None:
    with (
        CommandJournal(None) as journal,
        running_server(ctx, {}) as first,
        pytest.raises(OperationalError, match=re.escape(first.endpoint)),
    ):
        ControlServer(ctx, first.endpoint, "second", journal=journal, max_message_bytes=4096)


def test_register_when_duplicate_then_value_error(ctx: Any) -> None:
    with running_server(ctx, {Ping: pong_handler()}) as server, pytest.raises(ValueError):
        server.register(Ping, pong_handler())

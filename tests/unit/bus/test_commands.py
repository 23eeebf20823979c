"""Round trips of every control-plane message, and what the decoders refuse.

Strategies are derived from ``msgspec.inspect`` so a field added to a command or result
is covered without touching this file; a field type the builder does not know fails
loudly instead of being skipped.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import all_subclasses, struct_strategy

from engine.bus.codec import DecodeError, decode_command, decode_reply, encode
from engine.bus.commands import (
    COMMAND_TYPES,
    RESULT_TYPES,
    AnyResult,
    Command,
    Ping,
    Reply,
    Result,
    SetLogLevel,
    command_by_tag,
    tag_of,
)


def strategy_for(cls: type[msgspec.Struct]) -> st.SearchStrategy[Any]:
    return struct_strategy(cls)


@pytest.mark.parametrize("cls", COMMAND_TYPES, ids=tag_of)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_command_round_trips_through_codec(cls: type[Command], data: st.DataObject) -> None:
    command = data.draw(strategy_for(cls))

    decoded = decode_command(encode(command))

    assert type(decoded) is cls
    assert decoded == command


@pytest.mark.parametrize("cls", RESULT_TYPES, ids=tag_of)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_result_round_trips_inside_reply(cls: type[Result], data: st.DataObject) -> None:
    result = data.draw(strategy_for(cls))
    reply = Reply(command_id="c1", ok=True, process="feed", result=result)

    decoded = decode_reply(encode(reply))

    assert type(decoded.result) is cls
    assert decoded == reply
    assert msgspec.msgpack.decode(encode(result), type=AnyResult) == result


@settings(max_examples=200, deadline=None)
@given(reply=strategy_for(Reply))
def test_reply_round_trips(reply: Reply) -> None:
    assert decode_reply(encode(reply)) == reply


def test_catalog_lists_every_defined_command_and_result() -> None:
    assert all_subclasses(Command) == set(COMMAND_TYPES)
    assert all_subclasses(Result) == set(RESULT_TYPES)
    assert len(command_by_tag()) == len(COMMAND_TYPES)  # tags are unique


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=64))
def test_decode_command_when_garbage_then_only_decode_error(payload: bytes) -> None:
    try:
        decoded = decode_command(payload)
    except DecodeError:
        return
    assert isinstance(decoded, COMMAND_TYPES)  # random bytes that happen to be a command


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=64))
def test_decode_reply_when_garbage_then_only_decode_error(payload: bytes) -> None:
    try:
        decoded = decode_reply(payload)
    except DecodeError:
        return
    assert isinstance(decoded, Reply)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xc1",  # a byte msgpack never uses
        b"not msgpack at all",
        encode([1, 2, 3]),
        encode({"command_id": "c1"}),  # no tag
        encode({"type": "Launch.v1", "command_id": "c1"}),  # unknown tag
        encode({"type": "Ping.v2", "command_id": "c1"}),  # unknown version
        encode({"type": "Pong.v1", "process": "p", "pid": 1, "version": "", "uptime_s": 0.0}),
        encode({"type": "Ping.v1", "command_id": 7}),  # wrong field type
        encode({"type": "SetLogLevel.v1", "command_id": "c1"}),  # missing field
        encode({"type": "SetLogLevel.v1", "command_id": "c1", "level": "LOUD"}),
        encode({"type": "Ping.v1", "command_id": "c1", "role": "root"}),
    ],
    ids=[
        "empty",
        "reserved-byte",
        "text",
        "array",
        "no-tag",
        "unknown-tag",
        "unknown-version",
        "result-not-command",
        "wrong-type",
        "missing-field",
        "bad-literal",
        "bad-role",
    ],
)
def test_decode_command_when_not_a_command_then_decode_error(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_command(payload)


def test_decode_reply_when_result_tag_unknown_then_decode_error() -> None:
    payload = encode(
        {"command_id": "c1", "ok": True, "process": "p", "result": {"type": "Gold.v1"}}
    )

    with pytest.raises(DecodeError):
        decode_reply(payload)


def test_command_defaults_to_least_privilege_and_classvars_stay_off_the_wire() -> None:
    raw = msgspec.msgpack.decode(encode(SetLogLevel(command_id="c1", level="INFO")))

    assert raw == {
        "type": "SetLogLevel.v1",
        "command_id": "c1",
        "actor": "",
        "role": "viewer",
        "level": "INFO",
    }
    assert Ping().role == "viewer"

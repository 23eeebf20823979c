"""Every event type survives the wire; anything else is a DecodeError.

Strategies are derived from each struct's msgspec type info and fed to ``st.builds``,
so a new event type is covered as soon as it is in ``EVENT_TYPES`` (and a field type
this file does not know fails loudly instead of being skipped).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import all_subclasses, struct_strategy

from engine.bus import codec
from engine.bus.events import EVENT_TYPES, Event

GOOD_HEARTBEAT = {
    "type": "Heartbeat.v1",
    "ts_event": 1,
    "process": "p",
    "pid": 1,
    "version": "v",
    "started_at": 0,
}


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.__name__)
@given(data=st.data())
def test_round_trip_when_any_event_then_equal(event_type: type[Event], data: st.DataObject) -> None:
    event = data.draw(struct_strategy(event_type))

    decoded = codec.decode_event(codec.encode(event))

    assert type(decoded) is event_type
    assert decoded == event


def test_catalog_when_event_subclass_defined_then_listed_with_versioned_tag() -> None:
    tagged = {cls for cls in all_subclasses(Event) if cls.__struct_config__.tag is not None}
    tags = [cls.__struct_config__.tag for cls in EVENT_TYPES]

    assert tagged == set(EVENT_TYPES)
    assert len(set(tags)) == len(tags)
    for tag in tags:
        assert isinstance(tag, str) and re.fullmatch(r"[A-Z][A-Za-z]+\.v[0-9]+", tag), tag


def test_decode_when_unknown_tag_then_decode_error() -> None:
    payload = msgspec.msgpack.encode({"type": "Nope.v1", "ts_event": 1})

    with pytest.raises(codec.DecodeError):
        codec.decode_event(payload)


def test_decode_when_valid_body_then_event() -> None:
    assert codec.decode_event(msgspec.msgpack.encode(GOOD_HEARTBEAT)).process == "p"


def test_decode_when_newer_version_of_known_event_then_decode_error() -> None:
    payload = msgspec.msgpack.encode({"type": "Heartbeat.v9", "ts_event": 1})

    with pytest.raises(codec.DecodeError):
        codec.decode_event(payload)


@pytest.mark.parametrize(
    "body",
    [
        {"type": "Heartbeat.v1", "ts_event": 1},  # required fields missing
        {**GOOD_HEARTBEAT, "ts_event": "x"},  # wrong type
        {**GOOD_HEARTBEAT, "status": "sleeping"},  # not one of the literals
        {"ts_event": 1},  # no tag
        [1, 2, 3],
        "Heartbeat.v1",
    ],
)
def test_decode_when_wrong_shape_then_decode_error(body: Any) -> None:
    with pytest.raises(codec.DecodeError):
        codec.decode_event(msgspec.msgpack.encode(body))


@pytest.mark.parametrize("payload", [b"", b"\xc1", b"\x92\x01", b"not msgpack at all"])
def test_decode_when_garbage_then_decode_error(payload: bytes) -> None:
    with pytest.raises(codec.DecodeError):
        codec.decode_event(payload)


@given(st.binary(max_size=200))
def test_decode_when_random_bytes_then_event_or_decode_error(payload: bytes) -> None:
    try:
        decoded = codec.decode_event(payload)
    except codec.DecodeError:
        return
    assert isinstance(decoded, EVENT_TYPES)


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.__name__)
@given(data=st.data())
def test_encode_when_event_then_versioned_tag_on_the_wire(
    event_type: type[Event], data: st.DataObject
) -> None:
    body = msgspec.msgpack.decode(codec.encode(data.draw(struct_strategy(event_type))))

    assert body["type"] == event_type.__struct_config__.tag

"""Every event type survives the wire; anything else is a DecodeError.

Strategies are derived from each struct's msgspec type info and fed to ``st.builds``,
so a new event type is covered as soon as it is in ``EVENT_TYPES`` (and a field type
this file does not know fails loudly instead of being skipped).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.bus import codec
from engine.bus.events import EVENT_TYPES, Event

INT64 = (-(2**63), 2**63 - 1)
GOOD_HEARTBEAT = {
    "type": "Heartbeat.v1",
    "ts_event": 1,
    "process": "p",
    "pid": 1,
    "version": "v",
    "started_at": 0,
}


def _bound(value: float | None, delta: int, default: int) -> int:
    return default if value is None else int(value) + delta


def strategy_for(t: mi.Type) -> st.SearchStrategy[Any]:
    """A strategy for values of one msgspec type that msgpack round-trips exactly."""
    if isinstance(t, mi.IntType):
        low = max(INT64[0], _bound(t.ge, 0, INT64[0]), _bound(t.gt, 1, INT64[0]))
        high = min(INT64[1], _bound(t.le, 0, INT64[1]), _bound(t.lt, -1, INT64[1]))
        return st.integers(low, high)
    if isinstance(t, mi.FloatType):  # NaN never equals itself, so it cannot round-trip
        return st.floats(
            min_value=t.ge if t.ge is not None else t.gt,
            max_value=t.le if t.le is not None else t.lt,
            exclude_min=t.gt is not None,
            exclude_max=t.lt is not None,
            allow_nan=False,
        )
    if isinstance(t, mi.StrType):
        if t.pattern is not None:
            return st.from_regex(t.pattern)
        return st.text(min_size=t.min_length or 0, max_size=t.max_length or 20)
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.NoneType):
        return st.none()
    if isinstance(t, mi.LiteralType):
        return st.sampled_from(t.values)
    if isinstance(t, mi.UnionType):
        return st.one_of([strategy_for(member) for member in t.types])
    if isinstance(t, mi.DictType):
        return st.dictionaries(strategy_for(t.key_type), strategy_for(t.value_type), max_size=4)
    if isinstance(t, (mi.ListType, mi.VarTupleType)):
        items = st.lists(strategy_for(t.item_type), max_size=4)
        return items if isinstance(t, mi.ListType) else items.map(tuple)
    if isinstance(t, (mi.SetType, mi.FrozenSetType)):
        return st.frozensets(strategy_for(t.item_type), max_size=4).map(
            frozenset if isinstance(t, mi.FrozenSetType) else set
        )
    if isinstance(t, mi.StructType):
        return struct_strategy(t.cls)
    raise NotImplementedError(f"tests/unit/bus/test_events.py has no strategy for {t!r}")


def struct_strategy(cls: type[Any]) -> st.SearchStrategy[Any]:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return st.builds(cls, **{f.name: strategy_for(f.type) for f in info.fields})


def _all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.__name__)
@given(data=st.data())
def test_round_trip_when_any_event_then_equal(event_type: type[Event], data: st.DataObject) -> None:
    event = data.draw(struct_strategy(event_type))

    decoded = codec.decode_event(codec.encode(event))

    assert type(decoded) is event_type
    assert decoded == event


def test_catalog_when_event_subclass_defined_then_listed_with_versioned_tag() -> None:
    tagged = {cls for cls in _all_subclasses(Event) if cls.__struct_config__.tag is not None}
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

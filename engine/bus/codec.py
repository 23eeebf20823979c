"""Encoding and decoding of bus events and control frames (msgpack via msgspec).

Decoders accept exactly the tagged types of :mod:`engine.bus.events` and
:mod:`engine.bus.commands`; anything else raises :class:`DecodeError`, which loops
count and drop.
"""

from __future__ import annotations

from typing import Any

import msgspec

from engine.bus.commands import AnyCommand, Reply
from engine.bus.events import AnyEvent


class DecodeError(ValueError):
    """A frame that is not a valid message of the expected kind."""


_event_encoder = msgspec.msgpack.Encoder()
_event_decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(AnyEvent)
_command_decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(AnyCommand)
_reply_decoder: msgspec.msgpack.Decoder[Reply] = msgspec.msgpack.Decoder(Reply)

encode = _event_encoder.encode


def decode_event(payload: bytes) -> Any:
    try:
        return _event_decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise DecodeError(str(exc)) from None


def decode_command(payload: bytes) -> Any:
    try:
        return _command_decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise DecodeError(str(exc)) from None


def decode_reply(payload: bytes) -> Reply:
    try:
        return _reply_decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise DecodeError(str(exc)) from None

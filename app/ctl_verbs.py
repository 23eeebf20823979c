"""How a ``qsuite ctl`` verb is declared, and the argument types verbs share.

A :class:`Verb` is one row of the ``ctl`` table: its help, its arguments (``arg``) and
how the parsed arguments become a command; ``group`` makes a verb of sub-verbs
(``ctl order submit …``). The verb tables themselves live in :mod:`app.ctl` and, per
domain, in modules such as :mod:`app.ctl_algos`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from engine.bus.commands import Command

Arg = tuple[tuple[str, ...], dict[str, Any]]

# Numbers keep the digits typed (101.50 stays 101.50, no float on the way to the engine).
_JSON_DECODER = msgspec.json.Decoder(float_hook=Decimal)
_JSON_ENCODER = msgspec.json.Encoder(decimal_format="number")


def utc_ns(text: str) -> int:
    """``2024-01-31`` or ``2024-01-31T14:30[:00][+00:00]`` (UTC unless an offset is given)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date like 2024-01-31 or 2024-01-31T14:30"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000_000)


def decimal(text: str) -> Decimal:
    """A quantity or price as typed (exact; the engine checks its range)."""
    try:
        return Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number like 100 or 12.5") from None


def assignment(text: str, example: str = "max_order_qty=500") -> tuple[str, str]:
    """``name=value`` of a ``--set`` (a risk-profile limit, an algorithm parameter …);
    ``example`` is what the error message shows."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not like {example}")
    return name.strip(), value.strip()


def json_object(text: str) -> dict[str, Any]:
    """A JSON object typed on the command line, like ``'{"duration_s": 600}'``."""
    try:
        value = _JSON_DECODER.decode(text)
    except msgspec.DecodeError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"{text!r} is not a JSON object like {{}}")
    return value


def json_params(assignments: list[tuple[str, str]], base: Mapping[str, Any] | None = None) -> str:
    """``--set name=value`` pairs over ``base`` as one JSON object.

    A value that parses as JSON is taken as such (``600``, ``101.5``, ``true``, ``null``,
    ``[1, 2]``, ``"600"``); anything else is a string (``passive``). Later pairs win.
    """
    params = dict(base or {})
    for name, text in assignments:
        try:
            params[name] = _JSON_DECODER.decode(text)
        except msgspec.DecodeError:
            params[name] = text
    return json_text(params)


def json_text(value: Any) -> str:
    """A value parsed by :func:`json_object` back to JSON, numbers as typed."""
    return _JSON_ENCODER.encode(value).decode()


def arg(*names: str, **kwargs: Any) -> Arg:
    return names, kwargs


COMMAND_ID = arg("--command-id", default="", help="idempotency key (default: a new one)")


@dataclass(frozen=True)
class Verb:
    help: str
    build: Callable[[argparse.Namespace], tuple[Command, str | None]]
    """The command and, for commands every process serves, which process."""
    args: list[Arg] = field(default_factory=list)
    actions: dict[str, Verb] = field(default_factory=dict)
    """Sub-verbs (``ctl order submit …``), each with its own arguments and command."""


def group(help: str, actions: dict[str, Verb]) -> Verb:
    """A verb whose sub-verb (``args.action``) builds the command."""
    return Verb(help, lambda a: actions[a.action].build(a), actions=actions)

"""Indicator parameters: msgspec schemas, validation that lists every problem, and the
canonical strings an instance is known by.

Parameters are a frozen ``msgspec.Struct`` per indicator (:class:`IndicatorParams`);
field constraints are ``msgspec.Meta`` annotations (``ge``/``gt``/``le``/``lt``),
cross-field rules are :meth:`IndicatorParams.check`. Field types are ``int``,
``float``, ``bool`` or ``str``.

Two canonical strings name an instance:

- the *key* (``rsi_14``, ``macd_12_26_9``, ``bbands_20_2p0_2p0``): the name, then
  every parameter value in field order, joined by ``_``. A topic part may not contain
  a dot, so a float's ``.`` is written ``p`` (``2.0`` → ``2p0``, ``0.5`` → ``0p5``) and
  an exponent's ``+`` is dropped (``1e+20`` → ``1e20``); booleans are ``true``/``false``;
  a ``str`` value may not contain ``_``. A key parses back (``registry.from_key``). It
  is the ``ind.<key>.<symbol>.<interval>`` topic part and
  :attr:`IndicatorUpdated.indicator`.
- the *params key* (``timeperiod=14``; ``nbdevdn=2.0,nbdevup=2.0,timeperiod=20``):
  sorted ``k=v`` joined by ``,`` — ``IndicatorValue.params_key`` in the database.
"""

from __future__ import annotations

import re
import typing
from typing import Annotated, Any

import msgspec

from engine.errors import QSuiteError

#: What a key may contain: exactly a topic part (:mod:`engine.bus.topics`).
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_\-=^~]+$")
_STR_VALUE = re.compile(r"^[A-Za-z0-9\-=^~]+$")  # no "_": it separates key parts

Period = Annotated[int, msgspec.Meta(ge=2, le=100_000, description="bars in the window")]
"""A window of at least two bars (TA-Lib's minimum for averages and deviations)."""
ShortPeriod = Annotated[int, msgspec.Meta(ge=1, le=100_000, description="bars")]
"""A window or lag of at least one bar."""
Deviations = Annotated[
    float, msgspec.Meta(gt=0.0, le=100.0, description="multiple of the standard deviation")
]


class IndicatorError(QSuiteError, ValueError):
    """An indicator cannot be created or loaded as asked: unknown name, bad parameters,
    a malformed plugin. ``problems`` lists every reason, each a full sentence such as
    ``macd: fastperiod (26) must be < slowperiod (12)``."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = (problems,) if isinstance(problems, str) else tuple(problems)
        super().__init__("; ".join(self.problems))


class IndicatorParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every indicator's parameter struct. Declare subclasses
    ``class Params(IndicatorParams, frozen=True, kw_only=True)`` (msgspec inherits
    ``frozen``, type checkers want it spelled); a field without a default is required."""

    def check(self) -> list[str]:
        """Cross-field problems, e.g. ``["fastperiod (26) must be < slowperiod (12)"]``;
        single-field constraints belong in the field's ``msgspec.Meta``."""
        return []


class NoParams(IndicatorParams, frozen=True, kw_only=True):
    """Parameters of an indicator that has none."""


def field_types(params_type: type[IndicatorParams]) -> dict[str, Any]:
    """Field name → annotated type, in declaration order."""
    hints = typing.get_type_hints(params_type, include_extras=True)
    return {f.name: hints[f.name] for f in msgspec.structs.fields(params_type)}


def base_type(annotated: Any) -> type:
    """``Annotated[int, Meta(...)]`` → ``int`` (nested ``Annotated`` too)."""
    while typing.get_origin(annotated) is Annotated:
        annotated = typing.get_args(annotated)[0]
    if annotated not in (int, float, bool, str):
        raise TypeError(f"parameter type {annotated!r} is not int, float, bool or str")
    return typing.cast(type, annotated)


def validate(name: str, params_type: type[IndicatorParams], given: dict[str, Any]) -> Any:
    """Build ``params_type`` from ``given``, or raise :class:`IndicatorError` listing
    every unknown, missing or out-of-range parameter and every failed cross-field rule."""
    problems: list[str] = []
    types = field_types(params_type)
    for unknown in sorted(set(given) - set(types)):
        known = ", ".join(types) or "none"
        problems.append(f"{name}: unknown parameter {unknown!r} (parameters: {known})")
    values: dict[str, Any] = {}
    defaults = {f.name: f.default for f in msgspec.structs.fields(params_type)}
    for field, annotated in types.items():
        if field not in given:
            if defaults[field] is msgspec.NODEFAULT:
                problems.append(f"{name}: parameter {field!r} is required")
            continue
        value = given[field]
        try:
            values[field] = msgspec.convert(value, annotated)
        except msgspec.ValidationError as exc:
            problems.append(f"{name}: {field} ({value!r}) is invalid: {_lower(str(exc))}")
            continue
        if base_type(annotated) is str and not _STR_VALUE.match(values[field]):
            problems.append(f"{name}: {field} ({value!r}) may only contain {_STR_VALUE.pattern}")
    if problems:
        raise IndicatorError(problems)
    params = params_type(**values)
    cross = params.check()
    if cross:
        raise IndicatorError([f"{name}: {problem}" for problem in cross])
    return params


def _lower(message: str) -> str:
    return message[:1].lower() + message[1:]


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value).replace(".", "p").replace("+", "")
    return str(value)


def instance_key(name: str, params: IndicatorParams) -> str:
    """``rsi_14``, ``bbands_20_2p0_2p0``, ``obv`` (see the module docstring)."""
    parts = [name, *(_format(getattr(params, f)) for f in params.__struct_fields__)]
    return "_".join(parts)


def params_key(params: IndicatorParams) -> str:
    """``nbdevdn=2.0,nbdevup=2.0,timeperiod=20`` (``""`` without parameters)."""
    fields = sorted(params.__struct_fields__)
    return ",".join(f"{f}={_db_format(getattr(params, f))}" for f in fields)


def _db_format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def parse_values(name: str, params_type: type[IndicatorParams], parts: list[str]) -> dict[str, Any]:
    """The parameter values written in a key (``["20", "2p0", "2p0"]``), by field."""
    types = field_types(params_type)
    if len(parts) != len(types):
        fields = "_".join(f"<{f}>" for f in types)
        spelled = f"{name}_{fields}" if fields else name
        raise IndicatorError(f"{name}: a key has {len(types)} parameter(s): {spelled}")
    values: dict[str, Any] = {}
    problems: list[str] = []
    for (field, annotated), text in zip(types.items(), parts, strict=True):
        kind = base_type(annotated)
        try:
            if kind is bool:
                if text not in ("true", "false"):
                    raise ValueError(text)
                values[field] = text == "true"
            elif kind is float:
                values[field] = float(text.replace("p", "."))
            elif kind is int:
                values[field] = int(text)
            else:
                values[field] = text
        except ValueError:
            problems.append(f"{name}: {field} ({text!r}) is not a {kind.__name__}")
    if problems:
        raise IndicatorError(problems)
    return values

"""The start and modify forms of the Algorithms page as pure functions: a parameter's
first value, the parameters a form gives (typed by the kind's schema fields), and the
commands of a filled-in form or what is wrong with it, in words.

What is wrong is said before anything is sent: the schema's types and required fields,
then — for the kinds this console knows — the engine's own parameter check
(:meth:`engine.algos.base.Algorithm.parse`), in the engine's words. What the engine still
refuses (lot size, risk limits …) comes back from ``bridge.act`` in words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from typing import Any

import msgspec

import engine.algos  # noqa: F401  (registers the built-in kinds the form checks locally)
from engine.algos.base import AlgoParamsError, ParentSpec
from engine.algos.registry import REGISTRY, UnknownAlgorithmError
from engine.bus.commands.algos import ModifyAlgo, StartAlgo
from ui.algo_state import KindView, ParamField, ParentView
from ui.components.format import EPOCH, num, parse_decimal, parse_float
from ui.components.ticket import order_problems


def initial_value(field: ParamField, params: Mapping[str, Any] | None = None) -> Any:
    """What a field shows first: the parent's current value (``params``), else empty —
    a choice or a switch at its default."""
    if params is not None and field.name in params:
        return _shown(field, params[field.name])
    if field.type in ("enum", "boolean") and field.has_default:
        return field.default
    return False if field.type == "boolean" else None if field.type == "enum" else ""


def read_params(
    fields: Sequence[ParamField],
    values: Mapping[str, Any],
    initial: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The parameters a form gives, or what is wrong with them (in words). Without
    ``initial`` (a new parent): the fields set, a choice or switch only when it is not the
    default. With ``initial`` (a modification): only the fields changed from it, a cleared
    optional one as ``None`` (the engine drops it)."""
    params: dict[str, Any] = {}
    problems: list[str] = []
    for f in fields:
        value = values.get(f.name)
        if initial is not None and value == initial.get(f.name):
            continue
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            if f.required:
                problems.append(f"{f.label} is required")
            elif initial is not None:
                params[f.name] = None
            continue
        if initial is None and f.type in ("enum", "boolean") and value == f.default:
            continue  # the default: the engine's own
        parsed, problem = _parse(f, value)
        if problem:
            problems.append(problem)
        else:
            params[f.name] = parsed
    return params, problems


def engine_check(kind: KindView, parent: ParentSpec, params: dict[str, Any]) -> str:
    """The engine's own verdict on ``params`` for ``parent`` ("" when they pass, or when
    this console does not have that kind at that version: the engine decides then)."""
    try:
        cls = REGISTRY.get(kind.kind)
    except UnknownAlgorithmError:
        return ""
    if cls.version != kind.version:
        return ""
    try:
        cls.parse(parent, params)
    except AlgoParamsError as exc:
        return f"{kind.kind} parameters: {exc}"
    return ""


def check_start(
    kind: KindView | None,
    *,
    account: str,
    symbol: str,
    side: str,
    qty: str,
    values: Mapping[str, Any],
    now_ns: int,
    start_at: str = "",
) -> StartAlgo | list[str]:
    """The command of a filled-in start form, or what is wrong with it (in words).
    ``start_at``: empty for now, else a UTC time as :func:`time_ns` reads it."""
    if kind is None:
        return ["Choose an algorithm"]
    problems = []
    start_at_ns = time_ns(start_at) if start_at.strip() else None
    if start_at.strip() and start_at_ns is None:
        problems.append("Start at must be a UTC time (14:30, 2025-01-31T14:30Z) or ns")
    wrong, quantity = order_problems(account, symbol, qty)
    params, invalid = read_params(kind.fields, values)
    problems += wrong + invalid
    if problems:
        return problems
    assert quantity is not None
    parent = ParentSpec(
        algo_id="check",
        account=account.strip(),
        symbol=symbol.strip(),
        side="sell" if side == "sell" else "buy",
        qty=quantity,
        start_ns=max(now_ns, start_at_ns or 0),  # as the engine starts it
    )
    problem = engine_check(kind, parent, params)
    if problem:
        return [problem]
    return StartAlgo(
        algo_type=kind.kind,
        account=parent.account,
        symbol=parent.symbol,
        side=parent.side,
        qty=quantity,
        params=msgspec.json.encode(params).decode(),
        start_at_ns=start_at_ns,
    )


def check_modify(
    p: ParentView,
    kind: KindView | None,
    *,
    qty: str,
    initial_qty: str,
    values: Mapping[str, Any],
    initial: Mapping[str, Any],
) -> ModifyAlgo | list[str]:
    """The command of a filled-in modify dialog (what changed), or what is wrong."""
    problems = []
    new_qty = None
    if qty.strip() != initial_qty:
        new_qty = parse_decimal(qty)
        if new_qty is None or new_qty <= 0:
            problems.append("Quantity must be a number greater than 0")
        elif new_qty <= p.filled:
            problems.append(f"Quantity must be above what it filled ({num(p.filled)})")
    changes, wrong = read_params(kind.fields if kind else (), values, initial)
    problems += wrong
    if not problems and new_qty is None and not changes:
        problems.append("Nothing to change: edit the quantity or a parameter")
    if problems:
        return problems
    if kind is not None and p.params is not None and p.ts_started is not None:
        parent = ParentSpec(
            algo_id=p.algo_id,
            account=p.account,
            symbol=p.symbol,
            side=p.side,
            qty=new_qty or p.qty,
            start_ns=p.ts_started,
        )
        problem = engine_check(kind, parent, _merged(kind.kind, p.params, changes))
        if problem:
            return [problem]
    return ModifyAlgo(algo_id=p.algo_id, qty=new_qty, params=msgspec.json.encode(changes).decode())


def _merged(kind: str, params: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """The parameters the engine will check after ``changes`` (as it merges them)."""
    merged = dict(params)
    try:
        prepared = REGISTRY.get(kind).prepared
    except UnknownAlgorithmError:
        prepared = ()
    if any(name not in prepared for name in changes):
        for name in prepared:  # the engine prepares them again
            merged.pop(name, None)
    for name, value in changes.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def _parse(f: ParamField, value: Any) -> tuple[Any, str]:
    text = str(value)
    if f.type == "boolean":
        return bool(value), ""
    if f.type == "enum":
        if text in f.options:
            return text, ""
        return None, f"{f.label} must be one of {', '.join(f.options)}"
    if f.type == "string":
        return text, ""
    if f.type == "number":
        number = parse_float(text)
        return (number, "") if number is not None else (None, f"{f.label} must be a number")
    if f.type == "integer":
        try:
            return int(text), ""
        except ValueError:
            return None, f"{f.label} must be a whole number"
    if f.type == "decimal":
        if parse_decimal(text) is None:
            return None, f"{f.label} must be a number"
        return text, ""
    if f.type == "time":
        ns = time_ns(text)
        if ns is None:
            return None, f"{f.label} must be a UTC time (14:30, 2025-01-31T14:30Z) or ns"
        return ns, ""
    if f.type == "numbers":
        numbers = [parse_float(part) for part in text.replace(",", " ").split()]
        if any(n is None for n in numbers):
            return None, f"{f.label} must be numbers separated by commas"
        return numbers, ""
    try:
        return msgspec.json.decode(text), ""
    except msgspec.DecodeError:
        return None, f"{f.label} must be JSON"


def time_ns(text: str) -> int | None:
    """UTC ns from nanoseconds, an ISO date-time (UTC unless it says otherwise) or a time
    of day today (UTC); None when it is none of them."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            today = datetime.now(UTC).date()
            moment = datetime.combine(today, clock_time.fromisoformat(text))
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(microseconds=1) * 1000


def _shown(f: ParamField, value: Any) -> Any:
    """A parameter's value as its field shows it."""
    if f.type == "boolean":
        return bool(value)
    if f.type == "enum":
        return None if value is None else str(value)
    if value is None:
        return ""
    if f.type == "time" and isinstance(value, int):
        moment = EPOCH + timedelta(microseconds=value // 1000)
        spec = "microseconds" if moment.microsecond else "seconds"
        return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"
    if f.type == "numbers" and isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if f.type == "json":
        return msgspec.json.encode(value).decode()
    return str(value)

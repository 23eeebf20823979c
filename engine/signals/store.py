"""Persisted signals: an idempotent insert and the read side of the ``signals`` table.

The unique key ``(symbol, interval, ts, rule, kind)`` makes every write idempotent:
:func:`save_signals` is ``INSERT … ON CONFLICT DO NOTHING`` (SQLite and PostgreSQL), so
saving a signal again, from a replay or a restarted process, changes nothing and counts
0. The analysis process is the one writer of this table.

``target`` is an engine (a write commits before returning) or a connection (the write
joins the caller's transaction), as in :mod:`engine.persistence.bars`. Non-finite floats
in ``details`` (JSON has no NaN) are stored as the strings ``"nan"``, ``"inf"``,
``"-inf"``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, Table, exists, select
from sqlalchemy.dialects import postgresql, sqlite

from engine.bus.events import SignalRaised
from engine.persistence.models import Signal
from engine.persistence.models.base import utcnow
from engine.signals.engine import SeenPredicate, SignalKey

_SIGNALS: Table = Signal.__table__  # type: ignore[assignment]
_KEY = ("symbol", "interval", "ts", "rule", "kind")
_ROWCOUNT = {"preserve_rowcount": True}


class StoredSignal(NamedTuple):
    """A row of the ``signals`` table."""

    id: int
    symbol: str
    interval: str
    ts: int
    rule: str
    kind: str
    indicator: str
    strength: float
    details: dict[str, Any]
    created_at: datetime
    simulated: bool

    @property
    def key(self) -> SignalKey:
        return SignalKey(self.symbol, self.interval, self.ts, self.rule, self.kind)


def save_signals(target: Engine | Connection, signals: Iterable[SignalRaised]) -> int:
    """Store ``signals``; returns how many were new (a stored key is left as it is)."""
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    now = utcnow()
    for s in signals:
        key = (s.symbol, s.interval, s.ts, s.rule, s.kind)
        rows.setdefault(
            key,
            {
                "symbol": s.symbol,
                "interval": s.interval,
                "ts": s.ts,
                "rule": s.rule,
                "kind": s.kind,
                "indicator": s.indicator,
                "strength": float(s.strength),
                "details": {k: _json_safe(v) for k, v in s.details.items()},
                "simulated": s.simulated,
                "created_at": now,
            },
        )
    if not rows:
        return 0
    with _connection(target, write=True) as conn:
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        statement = insert(_SIGNALS).on_conflict_do_nothing(
            index_elements=[_SIGNALS.c[name] for name in _KEY]
        )
        return conn.execute(statement, list(rows.values()), execution_options=_ROWCOUNT).rowcount


def load_signals(
    target: Engine | Connection,
    symbol: str | None = None,
    interval: str | None = None,
    since: int | None = None,
    limit: int | None = 100,
    *,
    rule: str | None = None,
) -> list[StoredSignal]:
    """Stored signals, newest bar first (then rule, kind), filtered by ``symbol``,
    ``interval``, ``rule`` and bar time ``ts >= since`` (UTC ns); at most ``limit``
    (``None``: all)."""
    t = _SIGNALS.c
    query = select(*(t[name] for name in StoredSignal._fields))
    if symbol is not None:
        query = query.where(t.symbol == symbol)
    if interval is not None:
        query = query.where(t.interval == interval)
    if rule is not None:
        query = query.where(t.rule == rule)
    if since is not None:
        query = query.where(t.ts >= since)
    query = query.order_by(t.ts.desc(), t.rule, t.kind, t.symbol, t.interval)
    if limit is not None:
        query = query.limit(limit)
    with _connection(target, write=False) as conn:
        return [StoredSignal(*row) for row in conn.execute(query)]


def signal_exists(
    target: Engine | Connection, symbol: str, interval: str, ts: int, rule: str, kind: str
) -> bool:
    """Whether the signal of that key is stored."""
    t = _SIGNALS.c
    query = select(
        exists().where(
            t.symbol == symbol,
            t.interval == interval,
            t.ts == ts,
            t.rule == rule,
            t.kind == kind,
        )
    )
    with _connection(target, write=False) as conn:
        return bool(conn.execute(query).scalar_one())


def seen_in(target: Engine) -> SeenPredicate:
    """A ``seen(key)`` predicate for :class:`~engine.signals.engine.SignalEngine` backed by
    this store (one indexed lookup per candidate signal, which is rare)."""

    def seen(key: SignalKey) -> bool:
        return signal_exists(target, *key)

    return seen


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


@contextmanager
def _connection(target: Engine | Connection, *, write: bool) -> Iterator[Connection]:
    if isinstance(target, Connection):
        yield target
    else:
        with target.begin() if write else target.connect() as conn:
            yield conn

"""Stored indicator values: bulk idempotent upsert and the read side.

Rows are ``(symbol, interval, ts, indicator, params_key, output, value)``; the whole row
but ``value`` is the key, so recomputing a symbol (after a backfill) rewrites values in
place and never duplicates them. NaN (warm-up) is stored as NULL.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Engine, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from engine.persistence.models import IndicatorValue

COLUMNS = ("symbol", "interval", "ts", "indicator", "params_key", "output", "value")
_KEY = COLUMNS[:-1]
_TABLE: Table = IndicatorValue.__table__  # type: ignore[assignment]
BATCH = 10_000


def upsert_indicator_values(
    engine: Engine, rows: Iterable[Sequence[Any]], *, batch_size: int = BATCH
) -> int:
    """Insert or update rows in :data:`COLUMNS` order; returns how many were sent."""
    dialect_insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    insert = dialect_insert(_TABLE)
    statement = insert.on_conflict_do_update(
        index_elements=[_TABLE.c[name] for name in _KEY], set_={"value": insert.excluded.value}
    )
    sent = 0
    batch: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for row in rows:
            value = row[6]
            record = dict(zip(_KEY, row[:6], strict=True))
            record["value"] = None if value is None or math.isnan(value) else float(value)
            batch.append(record)
            if len(batch) >= batch_size:
                conn.execute(statement, batch)
                sent, batch = sent + len(batch), []
        if batch:
            conn.execute(statement, batch)
            sent += len(batch)
    return sent


def load_indicator_values(
    engine: Engine,
    symbol: str,
    interval: str,
    indicator: str,
    *,
    since: int | None = None,
    limit: int = 1000,
) -> dict[str, list[tuple[int, float]]]:
    """Output → ``[(ts, value)]`` oldest first (NaN where NULL), at most ``limit`` bars."""
    c = _TABLE.c
    where = [c.symbol == symbol, c.interval == interval, c.indicator == indicator]
    if since is not None:
        where.append(c.ts >= since)
    with engine.connect() as conn:
        stamps = select(c.ts).where(*where).distinct().order_by(c.ts.desc()).limit(limit).subquery()
        first = conn.execute(select(stamps.c.ts).order_by(stamps.c.ts).limit(1)).scalar()
        if first is None:
            return {}
        rows = conn.execute(
            select(c.ts, c.output, c.value).where(*where, c.ts >= first).order_by(c.ts)
        )
        out: dict[str, list[tuple[int, float]]] = {}
        for ts, output, value in rows:
            out.setdefault(output, []).append(
                (int(ts), math.nan if value is None else float(value))
            )
    return out

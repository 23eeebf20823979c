"""Bulk bar storage: an idempotent upsert and the read side.

Input shape of :func:`upsert_bars` (the one to produce in hot paths): an iterable of
tuples in :data:`BAR_COLUMNS` order::

    (symbol, interval, ts, open, high, low, close, volume, source, flags)

``ts`` is the bar open time in UTC nanoseconds (``int``), prices and volume are floats,
``flags`` is an ``int`` of :class:`~engine.persistence.models.BarFlag` bits. A pandas
``DataFrame`` with those columns is accepted too (``ts`` may then also be a tz-aware
``datetime64`` column, or the index).

The key ``(symbol, interval, ts)`` makes every write idempotent: a bar that exists is
updated in place, never duplicated; a bar whose values did not change is not written
at all (so re-running a backfill writes 0 rows). Within one call, the last row of a
key wins.

PostgreSQL (psycopg 3) loads through ``COPY`` into a temporary staging table and one
``INSERT … SELECT … ON CONFLICT DO UPDATE``; other backends (SQLite) use an
``INSERT … ON CONFLICT DO UPDATE`` executed for many rows at once, in batches.

On PostgreSQL, a large load (:data:`PLAIN_INSERT_MIN_ROWS` rows or more) whose symbols
and intervals have no stored bar within its time span yet (a first backfill, or one
that extends the history) skips ``ON CONFLICT``, whose speculative insertion costs
about twice a plain insert: every staged row is new, so a plain ``INSERT … SELECT`` has
the same effect. It runs under a savepoint; if a key repeats within the call, or a
concurrent writer stored one of the keys in the meantime, the unique violation rolls
back to the savepoint and the load takes the ``ON CONFLICT`` path after all.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    and_,
    column,
    func,
    not_,
    or_,
    select,
    table,
    text,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite

from engine.persistence.models import Bar, BarFlag

BAR_COLUMNS: tuple[str, ...] = (
    "symbol",
    "interval",
    "ts",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "source",
    "flags",
)
KEY_COLUMNS: tuple[str, ...] = BAR_COLUMNS[:3]
BATCH_SIZE = 10_000
#: Staged loads at least this large try the plain-INSERT path (see the module docstring);
#: below it the extra range check costs more than ON CONFLICT does.
PLAIN_INSERT_MIN_ROWS = 5_000

_BARS: Table = Bar.__table__  # type: ignore[assignment]
_VALUE_COLUMNS = BAR_COLUMNS[3:]
_STAGE = "qsuite_bars_stage"
_DialectInsert = postgresql.Insert | sqlite.Insert
# SQLAlchemy reads an INSERT's rowcount only when asked to keep it.
_ROWCOUNT = {"preserve_rowcount": True}
_COPY_TYPES = ["text", "text", "int8", *["float8"] * 5, "text", "int2"]
_KEY = itemgetter(0, 1, 2)
_SYMBOL, _INTERVAL, _TS = itemgetter(0), itemgetter(1), itemgetter(2)
_UNIQUE_VIOLATION = "23505"


class BarRow(NamedTuple):
    """A stored bar, in :data:`BAR_COLUMNS` order (the input shape of ``upsert_bars``)."""

    symbol: str
    interval: str
    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    source: str
    flags: int


def upsert_bars(
    target: Engine | Connection,
    rows: Iterable[Sequence[Any]] | Any,
    *,
    batch_size: int = BATCH_SIZE,
) -> int:
    """Insert or update bars; returns how many rows were inserted or changed.

    ``target`` is an engine (the write commits before returning) or a connection (the
    write joins its transaction; the caller commits; not in AUTOCOMMIT mode). ``rows`` is
    described in the module docstring. Raises ``ValueError`` for rows of the wrong
    shape, before writing.
    """
    data = _as_tuples(rows)
    if not data:
        return 0
    with _connection(target, write=True) as conn:
        if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
            return _copy_upsert(conn, data)
        return _executemany_upsert(conn, _unique(data), batch_size)


def load_bars(
    target: Engine | Connection,
    symbol: str,
    interval: str,
    start_ns: int | None = None,
    end_ns: int | None = None,
    limit: int | None = None,
    *,
    newest: bool = False,
) -> list[BarRow]:
    """Bars of ``symbol``/``interval`` with ``start_ns <= ts < end_ns``, oldest first.

    ``limit`` keeps the first ``limit`` bars of the range, or the last ones when
    ``newest`` is true (e.g. the latest 500 bars for a chart); either way the result is
    in ascending time.
    """
    query = select(*(_BARS.c[name] for name in BAR_COLUMNS)).where(
        _BARS.c.symbol == symbol, _BARS.c.interval == interval
    )
    if start_ns is not None:
        query = query.where(_BARS.c.ts >= start_ns)
    if end_ns is not None:
        query = query.where(_BARS.c.ts < end_ns)
    query = query.order_by(_BARS.c.ts.desc() if newest else _BARS.c.ts).limit(limit)
    with _connection(target, write=False) as conn:
        bars = [BarRow(*row) for row in conn.execute(query)]
    return bars[::-1] if newest else bars


def count_bars(
    target: Engine | Connection, symbol: str | None = None, interval: str | None = None
) -> int:
    """Number of stored bars, optionally of one symbol and/or interval."""
    query = select(func.count()).select_from(_BARS)
    if symbol is not None:
        query = query.where(_BARS.c.symbol == symbol)
    if interval is not None:
        query = query.where(_BARS.c.interval == interval)
    with _connection(target, write=False) as conn:
        return int(conn.execute(query).scalar_one())


def latest_ts(target: Engine | Connection, symbol: str, interval: str) -> int | None:
    """Open time (UTC ns) of the newest stored bar, or ``None``: where a backfill resumes."""
    query = select(func.max(_BARS.c.ts)).where(
        _BARS.c.symbol == symbol, _BARS.c.interval == interval
    )
    with _connection(target, write=False) as conn:
        value = conn.execute(query).scalar_one()
    return None if value is None else int(value)


# -- input ---------------------------------------------------------------------------


def _as_tuples(rows: Iterable[Sequence[Any]] | Any) -> list[tuple[Any, ...]]:
    """Validated rows as tuples, in input order (keys may repeat: see :func:`_unique`)."""
    pandas = sys.modules.get("pandas")  # a DataFrame implies pandas is already imported
    if pandas is not None and isinstance(rows, pandas.DataFrame):
        rows = _frame_rows(rows, pandas)
    width = len(BAR_COLUMNS)
    # C-level passes (map, set): this runs over every row of every load.
    data = list(map(tuple, rows))
    if set(map(len, data)) - {width}:
        index, values = next((i, v) for i, v in enumerate(data) if len(v) != width)
        raise ValueError(
            f"bar row {index} has {len(values)} values; expected {width}: {', '.join(BAR_COLUMNS)}"
        )
    return data


def _unique(data: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """One row per key, the last row of a key winning (in the key's first position)."""
    unique = dict(zip(map(_KEY, data), data, strict=True))
    return data if len(unique) == len(data) else list(unique.values())


def _frame_rows(frame: Any, pandas: Any) -> Iterator[tuple[Any, ...]]:
    if "ts" not in frame.columns and frame.index.name == "ts":
        frame = frame.reset_index()
    missing = [name for name in BAR_COLUMNS if name not in frame.columns]
    if missing:
        raise ValueError(f"bar frame lacks column(s) {', '.join(missing)}")
    ts = frame["ts"]
    if pandas.api.types.is_datetime64_any_dtype(ts):
        if ts.dt.tz is None:
            raise ValueError("bar frame column ts is a naive datetime; localize it to UTC")
        ts = ts.dt.tz_convert("UTC").dt.as_unit("ns").astype("int64")
    # tolist() yields Python scalars, which every driver binds (numpy ints are not).
    columns = [ts.tolist() if name == "ts" else frame[name].tolist() for name in BAR_COLUMNS]
    return zip(*columns, strict=True)


# -- write paths ---------------------------------------------------------------------


def _upsert_statement(insert: _DialectInsert) -> _DialectInsert:
    """``insert`` plus the ON CONFLICT clause: update the values when any of them differ,
    except that a simulated bar never replaces a real one (the other way round is fine:
    real data coming back overwrites what the synthetic market filled in)."""
    excluded = insert.excluded
    simulated = int(BarFlag.SIMULATED)
    real_kept = and_(excluded.flags.op("&")(simulated) != 0, _BARS.c.flags.op("&")(simulated) == 0)
    return insert.on_conflict_do_update(
        index_elements=[_BARS.c[name] for name in KEY_COLUMNS],
        set_={name: excluded[name] for name in _VALUE_COLUMNS},
        where=and_(
            or_(*(_BARS.c[name].is_distinct_from(excluded[name]) for name in _VALUE_COLUMNS)),
            not_(real_kept),
        ),
    )


def _executemany_upsert(conn: Connection, data: list[tuple[Any, ...]], batch_size: int) -> int:
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = _upsert_statement(dialect_insert(_BARS))
    written = 0
    for start in range(0, len(data), batch_size):
        batch = [
            dict(zip(BAR_COLUMNS, row, strict=True)) for row in data[start : start + batch_size]
        ]
        written += conn.execute(statement, batch, execution_options=_ROWCOUNT).rowcount
    return written


def _copy_upsert(conn: Connection, data: list[tuple[Any, ...]]) -> int:
    # ON COMMIT DROP: the staging table lives as long as the transaction; a second call
    # in the same transaction reuses it (hence IF NOT EXISTS + TRUNCATE).
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} "
        f"(LIKE {_BARS.name} INCLUDING DEFAULTS) ON COMMIT DROP"
    )
    stage = table(_STAGE, *(column(name) for name in BAR_COLUMNS))
    insert = postgresql.insert(_BARS).from_select(list(BAR_COLUMNS), select(stage))
    if len(data) >= PLAIN_INSERT_MIN_ROWS and not _overlaps_store(conn, data):
        # Keys are not deduplicated first: a repeated key fails the plain insert like a
        # stored one does, and only then is worth the cost of finding.
        _stage(conn, data)
        try:
            with conn.begin_nested():
                return conn.execute(insert, execution_options=_ROWCOUNT).rowcount
        except sa_exc.IntegrityError as exc:
            if getattr(exc.orig, "sqlstate", None) != _UNIQUE_VIOLATION:
                raise
        # a key repeats in data, or another writer stored one since the check: upsert
        unique = _unique(data)
        if len(unique) != len(data):
            _stage(conn, unique)
    else:
        _stage(conn, _unique(data))
    return conn.execute(_upsert_statement(insert), execution_options=_ROWCOUNT).rowcount


def _stage(conn: Connection, data: list[tuple[Any, ...]]) -> None:
    """Replace the staging table's rows with ``data`` (binary COPY)."""
    conn.exec_driver_sql(f"TRUNCATE {_STAGE}")
    quoted = ", ".join(conn.dialect.identifier_preparer.quote(name) for name in BAR_COLUMNS)
    driver_connection: Any = conn.connection.driver_connection
    with (
        driver_connection.cursor() as cursor,
        cursor.copy(f"COPY {_STAGE} ({quoted}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types(_COPY_TYPES)
        for row in data:
            copy.write_row(row)


def _overlaps_store(conn: Connection, data: list[tuple[Any, ...]]) -> bool:
    """Whether a stored bar of one of the symbols and intervals of ``data`` lies within the
    time span of ``data``: one primary-key range probe per (symbol, interval). Cheap and
    conservative: true means "maybe", false means that none of the keys is stored."""
    # LATERAL … LIMIT 1 keeps the planner from turning the probes into a scan of bars.
    query = text(
        f"SELECT EXISTS (SELECT 1 FROM unnest(CAST(:symbols AS text[])) AS s(symbol) "
        f"CROSS JOIN unnest(CAST(:intervals AS text[])) AS i(interval) "
        f"CROSS JOIN LATERAL (SELECT 1 FROM {_BARS.name} AS b WHERE b.symbol = s.symbol "
        f"AND b.interval = i.interval AND b.ts BETWEEN CAST(:lo AS bigint) "
        f"AND CAST(:hi AS bigint) LIMIT 1) AS hit)"
    )
    params = {
        "symbols": list(set(map(_SYMBOL, data))),
        "intervals": list(set(map(_INTERVAL, data))),
        "lo": min(map(_TS, data)),
        "hi": max(map(_TS, data)),
    }
    return bool(conn.execute(query, params).scalar_one())


# -- connections ---------------------------------------------------------------------


@contextmanager
def _connection(target: Engine | Connection, *, write: bool) -> Iterator[Connection]:
    """The caller's connection as is (the caller owns the transaction), or a new one;
    a new one for ``write`` runs in a transaction committed on exit."""
    if isinstance(target, Connection):
        yield target
    else:
        with target.begin() if write else target.connect() as conn:
            yield conn

"""The instrument master: exchanges, industries, instruments and their fundamentals.

Write side (the feed's fundamentals refresh, operator tools): idempotent upserts that
never erase a known fact with an unknown one — a value of ``None`` keeps what is
stored. Read side: :func:`latest_fundamentals` and :func:`list_instruments`.

Conventions of the stored values:

- ``instruments.symbol`` is QSuite's symbol, which is Yahoo's spelling for listed
  instruments (``VOD.L``); ``yahoo_symbol`` is set when the source is Yahoo.
- ``instruments.currency`` is the ISO 4217 code of the *major* unit (Yahoo's ``GBp``
  is stored as ``GBP``: the normalizer scales minor-unit prices, see
  :mod:`feeds.exchanges`); ``""`` means unknown (the column is NOT NULL) and reads as
  ``None``.
- The exchange is the one named (a QSuite code such as ``NASDAQ``, or a code Yahoo
  reports such as ``NMS``), else the stored one, else the one of the symbol's suffix.
  A bare symbol's suffix names no venue (:data:`feeds.exchanges.US_LISTING` is not a
  table row), so it stays unknown until the fundamentals say which.
- Fundamentals are one row per instrument and UTC day (``as_of``); re-saving the same
  day updates that row in place (newer fetch wins, ``None`` keeps the stored value), a
  new day adds a row.

Writes run in one transaction whose first statement is a write, so SQLite takes its
write lock at once (waiting for a concurrent writer up to the busy timeout) instead of
failing to upgrade a read lock later.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, Table, func, or_, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite

from engine.persistence.models import Exchange, Fundamental, Industry, Instrument
from feeds.exchanges import (
    EXCHANGES,
    US_LISTING,
    ExchangeInfo,
    UnknownExchange,
    exchange,
    exchange_for,
    exchange_for_yahoo_code,
)
from feeds.schema import Fundamentals

_EXCHANGES: Table = Exchange.__table__  # type: ignore[assignment]
_INDUSTRIES: Table = Industry.__table__  # type: ignore[assignment]
_INSTRUMENTS: Table = Instrument.__table__  # type: ignore[assignment]
_FUNDAMENTALS: Table = Fundamental.__table__  # type: ignore[assignment]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_ROWCOUNT = {"preserve_rowcount": True}
#: Yahoo's spellings of minor currency units → the ISO 4217 major unit.
_MINOR_UNITS = {"GBp": "GBP", "GBX": "GBP", "ZAc": "ZAR", "ZAC": "ZAR", "ILA": "ILS"}
_FUNDAMENTAL_VALUES = (
    "market_cap",
    "pe_ratio",
    "eps",
    "dividend_yield",
    "beta",
    "week52_high",
    "week52_low",
    "sector",
    "industry",
)


class InstrumentRecord(NamedTuple):
    """One instrument of the master as the read side shows it (``None`` = unknown);
    the fields of :class:`engine.bus.commands.market.InstrumentRow`."""

    symbol: str
    name: str | None
    exchange: str | None
    sector: str | None
    industry: str | None
    currency: str | None
    active: bool


# -- write side ------------------------------------------------------------------------


def seed_exchanges(engine: Engine | Connection) -> int:
    """Upsert every exchange of :data:`feeds.exchanges.EXCHANGES` (by code); returns
    how many rows were inserted or changed (0 when the table is already up to date)."""
    with _transaction(engine) as conn:
        return _upsert_exchanges(conn, EXCHANGES)


def upsert_instrument(
    engine: Engine | Connection,
    symbol: str,
    *,
    name: str | None = None,
    exchange_code: str | None = None,
    currency: str | None = None,
    sector: str | None = None,
    industry: str | None = None,
    yahoo_symbol: str | None = None,
    active: bool | None = None,
) -> int:
    """Create or update the instrument ``symbol``; returns its id.

    ``None`` keeps the stored value (a new instrument is active unless ``active`` is
    false). ``exchange_code`` is a QSuite code (``LSE``) or a code Yahoo reports
    (``LSE``, ``NMS``); without it the exchange comes from the symbol's suffix.
    ``sector`` and ``industry`` are set together (an :class:`Industry` row is created
    as needed). Raises :class:`~feeds.exchanges.UnknownExchange` for an unknown
    ``exchange_code`` and ``ValueError`` when ``yahoo_symbol`` belongs to another
    instrument.
    """
    venue = _venue(exchange_code) if exchange_code else None
    if exchange_code and venue is None:
        raise UnknownExchange(
            f"unknown exchange code {exchange_code!r}; known: "
            f"{', '.join(x.code for x in EXCHANGES)}"
        )
    with _transaction(engine) as conn:
        return _upsert_instrument(
            conn,
            symbol,
            name=name,
            venue=venue,
            currency=currency,
            sector=sector,
            industry=industry,
            yahoo_symbol=yahoo_symbol,
            active=active,
        )


def save_fundamentals(engine: Engine | Connection, f: Fundamentals, *, source: str) -> None:
    """Store ``f``: the instrument's master facts and the fundamentals row of its UTC
    day (idempotent; see the module docstring). ``source`` is where ``f`` came from
    (``yahoo`` also records ``f.symbol`` as the Yahoo symbol). An exchange code the
    table does not know (the synthetic market's ``SIM``) leaves the exchange unknown."""
    fetched_at = _datetime(f.as_of)
    values: dict[str, Any] = {name: getattr(f, name) for name in _FUNDAMENTAL_VALUES}
    values["sector"] = f.sector and f.sector.strip()[:64]
    values["industry"] = f.industry and f.industry.strip()[:128]
    with _transaction(engine) as conn:
        instrument_id = _upsert_instrument(
            conn,
            f.symbol,
            name=f.name,
            venue=_venue(f.exchange) if f.exchange else None,
            currency=f.currency,
            sector=f.sector,
            industry=f.industry,
            yahoo_symbol=f.symbol if source == "yahoo" else None,
            active=None,
        )
        insert = _insert(conn, _FUNDAMENTALS).values(
            instrument_id=instrument_id,
            as_of=fetched_at.date(),
            source=source,
            fetched_at=fetched_at,
            **values,
        )
        table, excluded = _FUNDAMENTALS, insert.excluded
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=[table.c.instrument_id, table.c.as_of],
                set_={
                    **{n: func.coalesce(excluded[n], table.c[n]) for n in _FUNDAMENTAL_VALUES},
                    "source": excluded.source,
                    "fetched_at": excluded.fetched_at,
                },
                # an older fetch of the same day arriving late never replaces a newer one
                where=table.c.fetched_at <= excluded.fetched_at,
            )
        )


# -- read side -------------------------------------------------------------------------


def latest_fundamentals(engine: Engine | Connection, symbol: str) -> Fundamentals | None:
    """The newest stored fundamentals of ``symbol`` (``as_of`` is when they were
    fetched, UTC ns), or ``None`` when none are stored."""
    f, i = _FUNDAMENTALS, _INSTRUMENTS
    query = (
        select(
            *(f.c[name] for name in _FUNDAMENTAL_VALUES),
            f.c.fetched_at,
            i.c.name,
            i.c.currency,
            _EXCHANGES.c.code,
            _INDUSTRIES.c.sector.label("master_sector"),
            _INDUSTRIES.c.industry.label("master_industry"),
        )
        .select_from(
            f.join(i, f.c.instrument_id == i.c.id)
            .outerjoin(_EXCHANGES, i.c.exchange_id == _EXCHANGES.c.id)
            .outerjoin(_INDUSTRIES, i.c.industry_id == _INDUSTRIES.c.id)
        )
        .where(i.c.symbol == symbol)
        .order_by(f.c.as_of.desc())
        .limit(1)
    )
    with _reading(engine) as conn:
        row = conn.execute(query).mappings().first()
    if row is None:
        return None
    values = {name: row[name] for name in _FUNDAMENTAL_VALUES}
    values["sector"] = values["sector"] or row["master_sector"]
    values["industry"] = values["industry"] or row["master_industry"]
    return Fundamentals(
        symbol=symbol,
        as_of=_nanos(row["fetched_at"]),
        name=row["name"] or None,
        exchange=row["code"],
        currency=row["currency"] or None,
        **values,
    )


def list_instruments(
    engine: Engine | Connection,
    *,
    exchange: str | None = None,
    sector: str | None = None,
    industry: str | None = None,
    limit: int = 1000,
) -> list[InstrumentRecord]:
    """Instruments of the master by symbol, filtered by exchange code, sector and
    industry (each matched exactly but case-insensitively), at most ``limit``."""
    i, x, ind = _INSTRUMENTS, _EXCHANGES, _INDUSTRIES
    query = (
        select(
            i.c.symbol, i.c.name, x.c.code, ind.c.sector, ind.c.industry, i.c.currency, i.c.active
        )
        .select_from(
            i.outerjoin(x, i.c.exchange_id == x.c.id).outerjoin(ind, i.c.industry_id == ind.c.id)
        )
        .order_by(i.c.symbol)
        .limit(limit)
    )
    for col, wanted in ((x.c.code, exchange), (ind.c.sector, sector), (ind.c.industry, industry)):
        if wanted is not None:
            query = query.where(func.lower(col) == wanted.strip().lower())
    with _reading(engine) as conn:
        rows = conn.execute(query).all()
    return [
        InstrumentRecord(
            symbol=symbol,
            name=name or None,
            exchange=code,
            sector=sec,
            industry=ind_,
            currency=currency or None,
            active=bool(active),
        )
        for symbol, name, code, sec, ind_, currency, active in rows
    ]


# -- internals -------------------------------------------------------------------------


def _upsert_instrument(
    conn: Connection,
    symbol: str,
    *,
    name: str | None,
    venue: ExchangeInfo | None,
    currency: str | None,
    sector: str | None,
    industry: str | None,
    yahoo_symbol: str | None,
    active: bool | None,
) -> int:
    i = _INSTRUMENTS
    # Insert-if-missing first: it takes the write lock (see the module docstring).
    conn.execute(
        _insert(conn, i)
        .values(symbol=symbol, name="", currency="", active=True)
        .on_conflict_do_nothing(index_elements=[i.c.symbol])
    )
    query = select(i).where(i.c.symbol == symbol)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    stored = conn.execute(query).mappings().one()

    changes: dict[str, Any] = {}
    if name is not None and name.strip():
        changes["name"] = name.strip()[:256]
    if venue is None and stored["exchange_id"] is None:
        venue = _suffix_venue(symbol)
    if venue is not None and venue is not US_LISTING:
        changes["exchange_id"] = _exchange_id(conn, venue)
    iso = _currency(currency)
    if iso is None and not stored["currency"]:
        fallback = venue or _suffix_venue(symbol)
        iso = fallback.currency if fallback is not None else None
    if iso is not None:
        changes["currency"] = iso
    if sector and industry:
        changes["industry_id"] = _industry_id(conn, sector.strip(), industry.strip())
    if yahoo_symbol is not None:
        changes["yahoo_symbol"] = yahoo_symbol
    if active is not None:
        changes["active"] = active
    changes = {k: v for k, v in changes.items() if stored[k] != v}
    if changes:
        try:
            with conn.begin_nested():
                conn.execute(update(i).where(i.c.id == stored["id"]).values(**changes))
        except sa_exc.IntegrityError as exc:
            if "yahoo_symbol" not in changes:
                raise
            raise ValueError(
                f"Cannot store instrument {symbol}: Yahoo symbol {yahoo_symbol!r} already "
                f"belongs to another instrument"
            ) from exc
    return int(stored["id"])


def _upsert_exchanges(conn: Connection, venues: Iterable[ExchangeInfo]) -> int:
    rows = [venue.model_fields() for venue in venues]
    insert = _insert(conn, _EXCHANGES)
    excluded = insert.excluded
    values = [name for name in rows[0] if name != "code"]
    statement = insert.on_conflict_do_update(
        index_elements=[_EXCHANGES.c.code],
        set_={name: excluded[name] for name in values},
        where=or_(*(_EXCHANGES.c[name].is_distinct_from(excluded[name]) for name in values)),
    )
    return int(conn.execute(statement, rows, execution_options=_ROWCOUNT).rowcount)


def _exchange_id(conn: Connection, venue: ExchangeInfo) -> int:
    query = select(_EXCHANGES.c.id).where(_EXCHANGES.c.code == venue.code)
    found = conn.execute(query).scalar_one_or_none()
    if found is None:  # not seeded yet: seed this one
        _upsert_exchanges(conn, [venue])
        found = conn.execute(query).scalar_one()
    return int(found)


def _industry_id(conn: Connection, sector: str, industry: str) -> int:
    t = _INDUSTRIES
    sector, industry = sector[:64], industry[:128]
    conn.execute(
        _insert(conn, t)
        .values(sector=sector, industry=industry)
        .on_conflict_do_nothing(index_elements=[t.c.sector, t.c.industry])
    )
    query = select(t.c.id).where(t.c.sector == sector, t.c.industry == industry)
    return int(conn.execute(query).scalar_one())


def _venue(code: str) -> ExchangeInfo | None:
    """The exchange a QSuite code or a Yahoo code names; None when neither is known."""
    try:
        return exchange(code)
    except UnknownExchange:
        return exchange_for_yahoo_code(code)


def _suffix_venue(symbol: str) -> ExchangeInfo | None:
    try:
        return exchange_for(symbol)
    except UnknownExchange:  # "BRK.B" and the like: a symbol, not a listing we know
        return None


def _currency(code: str | None) -> str | None:
    """ISO 4217 major unit of a currency as a source spells it; None if not one."""
    if code is None:
        return None
    code = _MINOR_UNITS.get(code.strip(), code.strip()).upper()
    return code if len(code) == 3 and code.isalpha() else None


def _insert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    return postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)


def _datetime(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


def _nanos(value: datetime) -> int:
    return (value - _EPOCH) // _MICROSECOND * 1000


@contextmanager
def _transaction(target: Engine | Connection) -> Iterator[Connection]:
    """The caller's connection as is (the caller owns its transaction), or a new one
    whose transaction commits on exit."""
    if isinstance(target, Connection):
        yield target
    else:
        with target.begin() as conn:
            yield conn


@contextmanager
def _reading(target: Engine | Connection) -> Iterator[Connection]:
    if isinstance(target, Connection):
        yield target
    else:
        with target.connect() as conn:
            yield conn

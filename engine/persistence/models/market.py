"""Market data: the instrument master, bars, fundamentals and the ingestion log."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.persistence.models.base import (
    Base,
    BigPK,
    Interval,
    IntPK,
    Name,
    Nanos,
    Symbol,
    one_of,
    utcnow,
)


class Exchange(Base):
    """A listing venue and how Yahoo spells its symbols (``VOD`` on LSE is ``VOD.L``)."""

    __tablename__ = "exchanges"

    id: Mapped[IntPK]
    code: Mapped[str] = mapped_column(String(16), unique=True)
    """Short code, e.g. ``LSE``, ``NASDAQ``, ``TSX``."""
    name: Mapped[str] = mapped_column(String(128))
    yfinance_suffix: Mapped[str] = mapped_column(String(8), default="", server_default="")
    """Appended to the symbol for Yahoo (``.L``, ``.TO``); empty for US listings."""
    country: Mapped[str] = mapped_column(String(64))
    timezone: Mapped[str] = mapped_column(String(64))
    """IANA zone of the trading calendar, e.g. ``Europe/London``."""
    currency: Mapped[str] = mapped_column(String(3))


class Industry(Base):
    """A sector/industry pair, as Yahoo reports it."""

    __tablename__ = "industries"
    __table_args__ = (UniqueConstraint("sector", "industry"),)

    id: Mapped[IntPK]
    sector: Mapped[str] = mapped_column(String(64))
    industry: Mapped[str] = mapped_column(String(128))


class Instrument(Base):
    """A ticker of the instrument master."""

    __tablename__ = "instruments"

    id: Mapped[IntPK]
    symbol: Mapped[Symbol] = mapped_column(unique=True)
    """QSuite's symbol, the one in topics and events."""
    yahoo_symbol: Mapped[str | None] = mapped_column(String(32), unique=True)
    """Symbol at Yahoo (symbol + exchange suffix); ``None`` for simulated instruments."""
    name: Mapped[str] = mapped_column(String(256), default="", server_default="")
    exchange_id: Mapped[int | None] = mapped_column(ForeignKey("exchanges.id"), index=True)
    industry_id: Mapped[int | None] = mapped_column(
        ForeignKey("industries.id", ondelete="SET NULL"), index=True
    )
    currency: Mapped[str] = mapped_column(String(3))
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    exchange: Mapped[Exchange | None] = relationship()
    industry: Mapped[Industry | None] = relationship()


class BarFlag(enum.IntFlag):
    """Bits of ``bars.flags``."""

    SIMULATED = 1
    """Made by the synthetic market, not observed."""
    ADJUSTED = 2
    """Prices adjusted for splits and dividends."""
    GAP_FILLED = 4
    """Synthesized by the normalizer to fill a gap (carried forward, zero volume)."""
    CORPORATE_ACTION = 8
    """A split or cash dividend took effect on this bar (prices may jump for that reason)."""


class Bar(Base):
    """One OHLCV bar. The primary key ``(symbol, interval, ts)`` is the idempotency key
    of every ingestion and the index of range reads; write bars in bulk through
    :func:`engine.persistence.bars.upsert_bars`, not through the ORM.

    There is deliberately no foreign key to ``instruments``: a backfill may land before
    the instrument master knows the symbol, and bulk loads stay cheap.
    """

    __tablename__ = "bars"

    symbol: Mapped[Symbol] = mapped_column(primary_key=True)
    interval: Mapped[Interval] = mapped_column(primary_key=True)
    """Bar length as Yahoo spells it: ``1m``, ``5m``, ``1h``, ``1d`` …"""
    ts: Mapped[Nanos] = mapped_column(primary_key=True)
    """Bar open time, UTC ns."""
    open: Mapped[float]
    high: Mapped[float]
    low: Mapped[float]
    close: Mapped[float]
    volume: Mapped[float]
    source: Mapped[str] = mapped_column(String(16), default="", server_default="")
    """Where the bar came from: ``yahoo``, ``replay``, ``synthetic`` …"""
    flags: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    """:class:`BarFlag` bits."""


class Fundamental(Base):
    """Fundamentals of one instrument as of one date (a snapshot, never updated later)."""

    __tablename__ = "fundamentals"
    __table_args__ = (UniqueConstraint("instrument_id", "as_of"),)

    id: Mapped[IntPK]
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instruments.id", ondelete="CASCADE"))
    as_of: Mapped[date] = mapped_column(Date)
    market_cap: Mapped[float | None]
    pe_ratio: Mapped[float | None]
    eps: Mapped[float | None]
    dividend_yield: Mapped[float | None]
    """A fraction (0.012 is 1.2 %)."""
    beta: Mapped[float | None]
    week52_high: Mapped[float | None]
    week52_low: Mapped[float | None]
    sector: Mapped[str | None] = mapped_column(String(64))
    industry: Mapped[str | None] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(16), default="", server_default="")
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)

    instrument: Mapped[Instrument] = relationship()


class SimulatedInstrument(Base):
    """How the simulated venue trades a symbol."""

    __tablename__ = "simulated_instruments"
    __table_args__ = (
        CheckConstraint("tick_size > 0", name="tick_size_positive"),
        CheckConstraint("lot_size > 0", name="lot_size_positive"),
    )

    symbol: Mapped[Symbol] = mapped_column(primary_key=True)
    tick_size: Mapped[Decimal]
    lot_size: Mapped[Decimal]
    base_liquidity: Mapped[float]
    """Resting quantity per price level the venue seeds around the market."""
    volatility: Mapped[float]
    """Annualized volatility of the synthetic price path (0.2 is 20 %)."""
    reference_price: Mapped[Decimal | None]
    """Start price when no feed price is known."""


INGESTION_STATUSES = ("running", "ok", "partial", "failed", "skipped")


class IngestionRun(Base):
    """One run of an ingestion job (backfill, poll, fundamentals refresh)."""

    __tablename__ = "ingestion_log"
    __table_args__ = (
        one_of("status", INGESTION_STATUSES),
        Index(None, "job", "started_at"),
    )

    id: Mapped[BigPK]
    job: Mapped[Name]
    """Job name, e.g. ``backfill`` or ``poll``."""
    source: Mapped[str] = mapped_column(String(16))
    symbols: Mapped[list[str]]
    interval: Mapped[Interval | None]
    rows: Mapped[int] = mapped_column(default=0, server_default="0")
    """Bars (or records) written by the run."""
    status: Mapped[str] = mapped_column(String(16), default="running", server_default="running")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    duration_s: Mapped[float | None]
    error: Mapped[str | None] = mapped_column(Text)

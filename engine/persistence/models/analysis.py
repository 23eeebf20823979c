"""Technical analysis results: indicator values and signals."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from engine.persistence.models.base import Base, BigPK, Interval, Name, Nanos, Symbol, utcnow


class IndicatorValue(Base):
    """One output of one indicator at one bar. The primary key makes recomputation an
    idempotent upsert."""

    __tablename__ = "indicator_values"

    symbol: Mapped[Symbol] = mapped_column(primary_key=True)
    interval: Mapped[Interval] = mapped_column(primary_key=True)
    ts: Mapped[Nanos] = mapped_column(primary_key=True)
    """Open time of the bar the value belongs to, UTC ns."""
    indicator: Mapped[Name] = mapped_column(primary_key=True)
    """Instance key (registry name and parameters), e.g. ``rsi_14``, ``macd_12_26_9``:
    the same key as in ``ind.<key>.<symbol>.<interval>`` topics."""
    params_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    """Canonical parameters, e.g. ``timeperiod=14`` (sorted ``k=v`` joined by ``,``)."""
    output: Mapped[str] = mapped_column(String(32), primary_key=True)
    """Output name, e.g. ``macdsignal``; ``value`` for single-output indicators."""
    value: Mapped[float | None]
    """``None`` during the warm-up period."""


class Signal(Base):
    """A trading signal raised by a rule at a bar."""

    __tablename__ = "signals"
    __table_args__ = (UniqueConstraint("symbol", "interval", "ts", "rule", "kind"),)

    id: Mapped[BigPK]
    symbol: Mapped[Symbol]
    interval: Mapped[Interval]
    ts: Mapped[Nanos] = mapped_column(index=True)
    """Open time of the bar that raised the signal, UTC ns."""
    rule: Mapped[Name]
    """Signal rule, e.g. ``rsi_cross``, ``macd_cross``, ``bollinger_breakout``."""
    kind: Mapped[str] = mapped_column(String(32))
    """Direction or flavour, e.g. ``bullish``, ``bearish``, ``oversold``."""
    indicator: Mapped[Name]
    strength: Mapped[float]
    """0 to 1."""
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    simulated: Mapped[bool] = mapped_column(default=False, server_default=false())
    """Raised on bars the synthetic market made (never act on it as on a real one)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

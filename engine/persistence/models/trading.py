"""The order ledger: orders, fills and positions.

Quantities and prices are ``Decimal`` (``Numeric(28, 10)``); times are UTC ns from the
engine clock (the same values the order events carry).
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.persistence.models.base import Account, Base, BigPK, Nanos, Symbol, one_of

SIDES = ("buy", "sell")
ORDER_TYPES = ("market", "limit")
TIMES_IN_FORCE = ("day", "gtc", "ioc", "fok")
LIQUIDITY = ("maker", "taker")


class Order(Base):
    """An order sent (or refused) on behalf of an account or an algorithm.

    ``status`` follows the execution engine's lifecycle (``pending_new``, ``accepted``,
    ``partially_filled``, ``filled``, ``cancelled``, ``rejected``, ``expired`` …); it is
    not constrained here so the lifecycle can grow without a migration.
    """

    __tablename__ = "orders"
    __table_args__ = (
        one_of("side", SIDES),
        one_of("order_type", ORDER_TYPES),
        one_of("tif", TIMES_IN_FORCE),
        CheckConstraint("qty > 0", name="qty_positive"),
        CheckConstraint("filled_qty >= 0", name="filled_qty_not_negative"),
        Index(None, "account", "symbol"),
    )

    id: Mapped[BigPK]
    client_order_id: Mapped[str] = mapped_column(String(64), unique=True)
    """Deterministic id; the venue deduplicates on it, so a resend never doubles."""
    orig_client_order_id: Mapped[str | None] = mapped_column(String(64), index=True)
    """The id it had before its last replace (a replace gives an order a new id)."""
    venue_order_id: Mapped[str | None] = mapped_column(String(64), index=True)
    account: Mapped[Account]
    symbol: Mapped[Symbol]
    side: Mapped[str] = mapped_column(String(4))
    order_type: Mapped[str] = mapped_column(String(8))
    tif: Mapped[str] = mapped_column(String(4))
    qty: Mapped[Decimal]
    price: Mapped[Decimal | None]
    """Limit price; ``None`` for market orders."""
    status: Mapped[str] = mapped_column(String(24), index=True)
    filled_qty: Mapped[Decimal] = mapped_column(default=Decimal(0), server_default="0")
    avg_price: Mapped[Decimal | None]
    algo_id: Mapped[str | None] = mapped_column(ForeignKey("algo_orders.id"), index=True)
    """Parent algorithmic order, if a child slice."""
    reject_reason: Mapped[str | None] = mapped_column(String(256))
    ts_created: Mapped[Nanos]
    ts_updated: Mapped[Nanos]

    fills: Mapped[list[Fill]] = relationship(back_populates="order", order_by="Fill.ts")


class Fill(Base):
    """An execution of (part of) an order."""

    __tablename__ = "fills"
    __table_args__ = (
        one_of("liquidity", LIQUIDITY),
        CheckConstraint("qty > 0", name="qty_positive"),
    )

    id: Mapped[BigPK]
    fill_id: Mapped[str] = mapped_column(String(64), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    client_order_id: Mapped[str] = mapped_column(String(64), index=True)
    venue_exec_id: Mapped[str] = mapped_column(String(64), unique=True)
    """The venue's execution id; unique, so a replayed execution report is dropped."""
    qty: Mapped[Decimal]
    price: Mapped[Decimal]
    fee: Mapped[Decimal] = mapped_column(default=Decimal(0), server_default="0")
    realized_pnl: Mapped[Decimal] = mapped_column(default=Decimal(0), server_default="0")
    """What this fill realized (fee included) on its position; 0 for fills stored before
    the column existed."""
    liquidity: Mapped[str] = mapped_column(String(5))
    ts: Mapped[Nanos]

    order: Mapped[Order] = relationship(back_populates="fills")


class Position(Base):
    """The net position of an account in a symbol (``qty`` < 0 is short)."""

    __tablename__ = "positions"
    __table_args__ = (UniqueConstraint("account", "symbol"),)

    id: Mapped[BigPK]
    account: Mapped[Account]
    symbol: Mapped[Symbol]
    qty: Mapped[Decimal] = mapped_column(default=Decimal(0), server_default="0")
    avg_price: Mapped[Decimal] = mapped_column(default=Decimal(0), server_default="0")
    realized_pnl: Mapped[Decimal] = mapped_column(default=Decimal(0), server_default="0")
    cost_basis: Mapped[Decimal] = mapped_column(default=Decimal(0), server_default="0")
    """Exact signed cost of the open quantity (``avg_price`` is it divided by ``qty``,
    rounded)."""
    ts_updated: Mapped[Nanos]

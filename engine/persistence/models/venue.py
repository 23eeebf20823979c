"""The simulated venue's own records (written by the venue process only): the client
orders it holds and every execution it reported, so that a restarted venue restores its
books and answers status queries for reconciliation.

Market-maker and flow orders are not recorded: the liquidity model quotes again from
the market after a restart.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.persistence.models.base import Account, Base, Nanos, Symbol, one_of
from engine.persistence.models.trading import LIQUIDITY, ORDER_TYPES, SIDES, TIMES_IN_FORCE

VENUE_ORDER_STATUSES = ("accepted", "partially_filled", "filled", "cancelled")


class VenueOrder(Base):
    """A client order as the venue holds it (one row per venue order id)."""

    __tablename__ = "venue_orders"
    __table_args__ = (
        one_of("side", SIDES),
        one_of("order_type", ORDER_TYPES),
        one_of("tif", TIMES_IN_FORCE),
        one_of("status", VENUE_ORDER_STATUSES),
        Index(None, "status", "symbol"),
    )

    venue_order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    session: Mapped[str] = mapped_column(String(64))
    """The order-entry session that entered it (reports go there)."""
    account: Mapped[Account]
    client_order_id: Mapped[str] = mapped_column(String(64))
    """Its current id (a replace gives it a new one; every id is in venue_client_ids)."""
    symbol: Mapped[Symbol]
    side: Mapped[str] = mapped_column(String(4))
    order_type: Mapped[str] = mapped_column(String(8))
    tif: Mapped[str] = mapped_column(String(4))
    qty: Mapped[Decimal]
    price: Mapped[Decimal | None]
    cum_qty: Mapped[Decimal]
    leaves_qty: Mapped[Decimal]
    status: Mapped[str] = mapped_column(String(24))
    priority: Mapped[int] = mapped_column(BigInteger)
    """Time priority in its book: restored orders queue in this order."""
    ts_created: Mapped[Nanos]
    ts_updated: Mapped[Nanos]


class VenueClientId(Base):
    """Every client order id the venue has seen, per account: duplicates are refused
    across restarts, and any id of a replaced order finds it."""

    __tablename__ = "venue_client_ids"

    account: Mapped[Account] = mapped_column(primary_key=True)
    client_order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    venue_order_id: Mapped[str] = mapped_column(String(64), index=True)


class VenueExecution(Base):
    """An execution the venue reported to a client (the client's side of a trade)."""

    __tablename__ = "venue_executions"
    __table_args__ = (one_of("side", SIDES), one_of("liquidity", LIQUIDITY))

    exec_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    venue_order_id: Mapped[str] = mapped_column(String(64), index=True)
    client_order_id: Mapped[str] = mapped_column(String(64))
    account: Mapped[Account]
    symbol: Mapped[Symbol]
    side: Mapped[str] = mapped_column(String(4))
    trade_id: Mapped[str] = mapped_column(String(64))
    qty: Mapped[Decimal]
    price: Mapped[Decimal]
    liquidity: Mapped[str] = mapped_column(String(5))
    leaves_qty: Mapped[Decimal]
    cum_qty: Mapped[Decimal]
    ts: Mapped[Nanos]

"""The order manager's read side: ledger state as command results.

Quantities and prices come out of the ledger with the column's scale
(``100.0000000000``); results carry them plain (``100``, see
:mod:`engine.persistence.decimals`), which is how an operator typed them and how a
table shows them.
"""

from __future__ import annotations

from decimal import Decimal

from engine.bus.commands.orders import OrderAck, OrderRow, PositionRow
from engine.bus.events import RequestKind
from engine.orders.lifecycle import OrderState
from engine.orders.positions import ZERO, Position, quantize_price
from engine.persistence.decimals import plain_decimal


def order_ack(order: OrderState, request_id: str, request: RequestKind, message: str) -> OrderAck:
    return OrderAck(
        client_order_id=order.client_order_id,
        request_id=request_id,
        request=request,
        status=order.status,
        message=message,
    )


def order_row(order: OrderState) -> OrderRow:
    return OrderRow(
        client_order_id=order.client_order_id,
        orig_client_order_id=order.orig_client_order_id,
        venue_order_id=order.venue_order_id,
        account=order.account,
        symbol=order.symbol,
        side=order.side,
        order_type=order.order_type,
        tif=order.tif,
        qty=plain_decimal(order.qty),
        price=plain_decimal(order.price),
        status=order.status,
        filled_qty=plain_decimal(order.filled_qty),
        avg_price=plain_decimal(order.avg_price),
        reason=order.reject_reason or "",
        ts_created=order.ts_created,
        ts_updated=order.ts_updated,
    )


def position_row(position: Position, marks: dict[str, Decimal]) -> PositionRow:
    """A position valued at its symbol's mark in ``marks`` (unrealized P&L None while
    an open position has no mark; 0 when flat)."""
    mark = marks.get(position.symbol)
    unrealized = ZERO if position.is_flat else None
    if mark is not None and not position.is_flat:
        unrealized = quantize_price(position.unrealized(mark))
    return PositionRow(
        account=position.account,
        symbol=position.symbol,
        qty=plain_decimal(position.qty),
        avg_price=plain_decimal(position.avg_price),
        realized_pnl=plain_decimal(position.realized_pnl),
        unrealized_pnl=plain_decimal(unrealized),
        mark_price=plain_decimal(mark),
        ts_updated=position.ts_updated,
    )

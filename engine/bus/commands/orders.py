"""Order-manager commands, served by the ``execution`` process.

Orders go to the venue through the order manager only: it records each order before it
sends it (write-ahead intent), applies the venue's execution reports to its ledger and
reconciles with the venue after a restart. A command's reply says what was *sent*; the
venue's answer arrives later as an execution report (``venue.order.<account>``) and in
``ListOrders``.

Ids: an order's ``client_order_id`` defaults to ``man-<command_id>`` (so a retried
command never makes a second order); a cancel is sent as ``<id>-c<n>`` and a replace as
``<id>-r<n>`` — the order's id once the venue has replaced it (64 characters at most;
longer ids are shortened with a hash).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, ClassVar

import msgspec

from engine.bus.commands.base import Command, Result, Role
from engine.bus.events import OrderType, RequestKind, Side, TimeInForce

Count = Annotated[int, msgspec.Meta(ge=1, le=10_000)]


class OrderAck(Result, frozen=True, kw_only=True, tag="OrderAck.v1"):
    """A request was sent to the venue (its answer follows as an execution report)."""

    client_order_id: str
    """The order's id."""
    request_id: str
    """The id of the request sent: the order's id for a new order, else the cancel's or
    replace's own id."""
    request: RequestKind
    status: str
    """The order's status when the request left (``pending_new`` for a new order)."""
    message: str = ""


class OrderRow(msgspec.Struct, frozen=True, kw_only=True):
    """One order as the order manager's ledger holds it."""

    client_order_id: str
    orig_client_order_id: str = ""
    """The id it had before its last replace."""
    venue_order_id: str = ""
    account: str
    symbol: str
    side: Side
    order_type: OrderType
    tif: TimeInForce
    qty: Decimal
    price: Decimal | None
    status: str
    filled_qty: Decimal
    avg_price: Decimal | None
    reason: str = ""
    """Why it ended other than filled (rejection, cancel or expiry reason code)."""
    ts_created: int
    ts_updated: int


class OrderList(Result, frozen=True, kw_only=True, tag="OrderList.v1"):
    orders: list[OrderRow]
    """Newest first."""


class PositionRow(msgspec.Struct, frozen=True, kw_only=True):
    """The net position of an account in a symbol, valued at the last known mark."""

    account: str
    symbol: str
    qty: Decimal
    """Net quantity, negative when short."""
    avg_price: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal | None
    """At ``mark_price``; None while no mark is known (and the position is open)."""
    mark_price: Decimal | None
    """The last quote's mid (``md.quote``) or own fill price, whichever came last."""
    ts_updated: int


class PositionList(Result, frozen=True, kw_only=True, tag="PositionList.v1"):
    positions: list[PositionRow]
    """By account and symbol; flat positions included (their realized P&L)."""


class SubmitOrder(Command, frozen=True, kw_only=True, tag="SubmitOrder.v1"):
    """Send a new order to the venue (recorded first; the reply is ``pending_new``)."""

    account: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal | None = None
    """Limit price; required for a limit order, absent for a market order."""
    order_type: OrderType = "limit"
    tif: TimeInForce = "day"
    client_order_id: str = ""
    """The order's id (letters, digits, ``_ . : -``; at most 64); default
    ``man-<command_id>``."""

    target: ClassVar[str] = "execution"
    mutating: ClassVar[bool] = True
    min_role: ClassVar[Role] = "operator"


class RequestCancel(Command, frozen=True, kw_only=True, tag="RequestCancel.v1"):
    """Ask the venue to cancel an open order (by its current or previous id)."""

    client_order_id: str

    target: ClassVar[str] = "execution"
    mutating: ClassVar[bool] = True
    min_role: ClassVar[Role] = "operator"


class RequestReplace(Command, frozen=True, kw_only=True, tag="RequestReplace.v1"):
    """Ask the venue to change an open order's quantity and/or limit price."""

    client_order_id: str
    qty: Decimal
    """New total quantity (the filled part included)."""
    price: Decimal | None = None
    """New limit price; None keeps the current one."""

    target: ClassVar[str] = "execution"
    mutating: ClassVar[bool] = True
    min_role: ClassVar[Role] = "operator"


class ListOrders(Command, frozen=True, kw_only=True, tag="ListOrders.v1"):
    """Orders of the ledger, newest first."""

    account: str | None = None
    open_only: bool = True
    limit: Count = 100

    target: ClassVar[str] = "execution"


class GetPositions(Command, frozen=True, kw_only=True, tag="GetPositions.v1"):
    """Positions with realized and unrealized P&L (at the last mark)."""

    account: str | None = None

    target: ClassVar[str] = "execution"


RESULTS = (OrderAck, OrderList, PositionList)
COMMANDS = (SubmitOrder, RequestCancel, RequestReplace, ListOrders, GetPositions)

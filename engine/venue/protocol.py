"""The order-entry protocol between an order manager and a venue, defined once.

The simulated venue speaks it today; a broker adapter can speak it tomorrow, so the
order manager never reaches into a book. It runs on its own ZeroMQ channel, apart from
the bus: the client's DEALER connects to the venue's ROUTER (``venue.order_entry``).

Frames
------
client → venue: ``[msgpack(request)]`` — one of :data:`REQUEST_TYPES`, tagged like
events (``"NewOrder.v1"``).

venue → client: ``[msgpack(SessionReport)]`` — every report to a session carries that
session's next ``seq`` (1, 2, 3 … per venue run, ``venue_epoch`` naming the run), so a
client sees a gap or a venue restart at once and reconciles with :class:`StatusRequest`.

A session starts with :class:`Logon`; the venue answers :class:`LoggedOn` and from then
on sends that session the execution reports (:class:`~engine.bus.events.OrderAccepted`,
``OrderRejected``, ``OrderFilled``, ``OrderCancelled``, ``OrderReplaced``) of the orders
it entered. Requests before a logon are refused with ``OrderRejected(reason=
"not_logged_on")``.

Every request carries a ``client_order_id`` chosen by the client; the venue refuses a
new order whose id it has seen (``duplicate_client_order_id``), which makes resending
after a timeout safe.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Union

import msgspec

from engine.bus.events import (
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderType,
    Side,
    TimeInForce,
)


class Request(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Common fields of every order-entry request."""

    ts: int = 0
    """When the client sent it (UTC ns)."""


class Logon(Request, frozen=True, kw_only=True, tag="Logon.v1"):
    session: str
    """The client's stable name (e.g. ``execution``); reports of its orders go to it."""


class NewOrder(Request, frozen=True, kw_only=True, tag="NewOrder.v1"):
    account: str
    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType = "limit"
    tif: TimeInForce = "day"
    qty: Decimal
    price: Decimal | None = None
    """Required for a limit order, absent for a market order."""


class CancelOrder(Request, frozen=True, kw_only=True, tag="CancelOrder.v1"):
    account: str
    client_order_id: str
    """This request's own id."""
    orig_client_order_id: str
    symbol: str


class ReplaceOrder(Request, frozen=True, kw_only=True, tag="ReplaceOrder.v1"):
    account: str
    client_order_id: str
    """The new id of the order once replaced."""
    orig_client_order_id: str
    symbol: str
    qty: Decimal
    """New total quantity (filled part included)."""
    price: Decimal | None = None
    """New limit price; None keeps the current one."""


class StatusRequest(Request, frozen=True, kw_only=True, tag="StatusRequest.v1"):
    """Ask for the venue's view of orders, to reconcile after a restart."""

    request_id: str
    client_order_ids: list[str] = []
    """These orders, whatever their state…"""
    open_orders: bool = True
    """…and every open order of the session."""


REQUEST_TYPES: tuple[type[Request], ...] = (
    Logon,
    NewOrder,
    CancelOrder,
    ReplaceOrder,
    StatusRequest,
)
AnyRequest = Union[REQUEST_TYPES]  # type: ignore[valid-type]  # noqa: UP007


class OrderStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The venue's view of one order."""

    account: str
    client_order_id: str
    venue_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    tif: TimeInForce
    qty: Decimal
    price: Decimal | None
    cum_qty: Decimal
    leaves_qty: Decimal
    status: str
    """``accepted``, ``partially_filled``, ``filled``, ``cancelled``, or ``unknown``."""
    fills: list[OrderFilled] = []
    """Every fill of the order, oldest first."""


class LoggedOn(msgspec.Struct, frozen=True, kw_only=True, tag="LoggedOn.v1"):
    session: str
    venue: str


class StatusReport(msgspec.Struct, frozen=True, kw_only=True, tag="StatusReport.v1"):
    request_id: str
    orders: list[OrderStatus]


Report = Union[  # noqa: UP007
    LoggedOn,
    StatusReport,
    OrderAccepted,
    OrderRejected,
    OrderFilled,
    OrderCancelled,
    OrderReplaced,
]


class SessionReport(msgspec.Struct, frozen=True, kw_only=True):
    """What the venue sends a session: one report with the session's sequence number."""

    session: str
    venue_epoch: str
    """Random per venue run: a new one means the venue restarted (seq starts over)."""
    seq: int
    body: Report


REQUEST_DECODER = msgspec.msgpack.Decoder(AnyRequest)
REPORT_DECODER = msgspec.msgpack.Decoder(SessionReport)
ENCODER = msgspec.msgpack.Encoder()

"""The order entity and its lifecycle: an execution report in, the next state out.

State machine (``status``; the venue's confirmed facts only)::

    pending_new ──OrderAccepted──→ accepted ──OrderFilled──→ partially_filled ─┐
        │                             │                         │  OrderFilled   │
        │                             │                         ↓  (cum = qty)   │
        │                             └──────OrderFilled (cum = qty)──→ filled ←┘
        ├──OrderRejected(new)──→ rejected
        └─ accepted / partially_filled / pending_new ──OrderCancelled──→ cancelled
                                                     (reason expired,
                                                      unknown_at_venue) → expired

- ``OrderReplaced`` keeps the status open (``accepted``, or ``partially_filled`` when
  something traded; ``filled`` when the new quantity equals the filled one) and changes
  ``client_order_id`` to the replace request's id; ``orig_client_order_id`` keeps the
  previous id, and reports naming the old id (or the same ``venue_order_id``) still match.
- A fill on ``pending_new`` is taken (the acceptance report was missed; the fill proves
  it) and sets ``venue_order_id``. A fill on ``cancelled``/``expired`` is taken too and
  leaves the status (a *late fill*: the venue traded it, so the position must see it).
- ``pending_cancel`` / ``pending_replace`` are deliberately **not** statuses: the status
  is what the venue confirmed. A cancel or replace in flight is tracked by the sender by
  its request id; the venue answers with ``OrderCancelled``/``OrderReplaced`` or with
  ``OrderRejected(request="cancel"|"replace")``, which leaves the order as it was.
- ``OrderRejected(request="new", reason="duplicate_client_order_id")`` is ignored: the
  venue already has the order (a resend after a timeout), it is not refused.

Never an exception for a venue's report: every function returns a :class:`Transition`
whose ``result`` is ``applied`` (new state), ``ignored`` (a duplicate or a report that
does not change the order — e.g. a fill whose ``exec_id`` was applied: a no-op) or
``refused`` (illegal for the state: wrong order, illegal transition, mismatch, overfill);
``ignored`` and ``refused`` return the state unchanged, so a bad report never corrupts
it, and ``reason`` says why. ``applied`` may carry a hint in ``reason``
(``cum_qty_mismatch``, ``fills_missing``, ``late_fill``): the state moved, but the
service should reconcile.

``avg_price`` is ``notional / filled_qty`` from the exact ``notional`` (Σ qty * price),
quantized to 1e-10 like the ledger's column, so it never drifts however many fills.
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from typing import Literal, TypeAlias

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
from engine.orders.positions import DECIMAL_CONTEXT, PRICE_QUANTUM, ZERO
from engine.venue.protocol import NewOrder

OrderStatusName = Literal[
    "pending_new", "accepted", "partially_filled", "filled", "cancelled", "rejected", "expired"
]
OPEN_STATUSES: frozenset[str] = frozenset({"pending_new", "accepted", "partially_filled"})
TERMINAL_STATUSES: frozenset[str] = frozenset({"filled", "cancelled", "rejected", "expired"})
#: ``OrderCancelled`` reasons that end an order as ``expired`` rather than ``cancelled``.
EXPIRY_REASONS: frozenset[str] = frozenset({"expired", "unknown_at_venue"})
UNKNOWN_AT_VENUE = "unknown_at_venue"

ApplyResult = Literal["applied", "ignored", "refused"]
ExecutionReport: TypeAlias = (
    OrderAccepted | OrderRejected | OrderFilled | OrderCancelled | OrderReplaced
)


class OrderState(msgspec.Struct, frozen=True, kw_only=True):
    """One order as the order manager knows it; immutable (transitions return a new one)."""

    client_order_id: str
    """The order's id now (after a replace: the replace request's id)."""
    venue_order_id: str = ""
    """The venue's id, "" until accepted; stays the same across replaces."""
    account: str
    symbol: str
    side: Side
    order_type: OrderType = "limit"
    tif: TimeInForce = "day"
    qty: Decimal
    """Total quantity (filled part included)."""
    price: Decimal | None = None
    """Limit price; None for a market order."""
    status: OrderStatusName = "pending_new"
    filled_qty: Decimal = ZERO
    """Cumulative filled quantity."""
    avg_price: Decimal | None = None
    """Volume-weighted average fill price; None until the first fill."""
    notional: Decimal = ZERO
    """Σ qty * price of the applied fills (exact)."""
    reject_reason: str | None = None
    """Why it ended other than filled: the rejection's, cancel's or expiry's reason code."""
    algo_id: str | None = None
    """Parent algorithmic order, if a child slice."""
    orig_client_order_id: str = ""
    """The id before the last replace ("" if never replaced)."""
    exec_ids: frozenset[str] = frozenset()
    """Execution ids of the applied fills."""
    ts_created: int
    ts_updated: int

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def leaves_qty(self) -> Decimal:
        """Still to trade (0 once the order ended)."""
        return self.qty - self.filled_qty if self.is_open else ZERO

    def to_request(self, *, ts: int = 0) -> NewOrder:
        """The order-entry request that sends this order."""
        return NewOrder(
            ts=ts,
            account=self.account,
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            side=self.side,
            order_type=self.order_type,
            tif=self.tif,
            qty=self.qty,
            price=self.price,
        )


class Transition(msgspec.Struct, frozen=True):
    """The outcome of applying one report: the state after it, and what happened."""

    state: OrderState
    result: ApplyResult
    reason: str = ""

    @property
    def applied(self) -> bool:
        return self.result == "applied"


def new_order(
    client_order_id: str,
    *,
    account: str,
    symbol: str,
    side: Side,
    qty: Decimal,
    price: Decimal | None = None,
    order_type: OrderType = "limit",
    tif: TimeInForce = "day",
    algo_id: str | None = None,
    ts: int,
) -> OrderState:
    """A new order (``pending_new``), ready to be recorded as an intent and sent.

    Raises ``ValueError`` for a shape no venue accepts (qty ≤ 0, a limit order without a
    price, a market order with one): that is the caller's bug, not a rejection."""
    if qty <= 0:
        raise ValueError(f"an order's quantity must be positive, not {qty}")
    if (order_type == "limit") != (price is not None):
        raise ValueError(f"a {order_type} order {'needs' if price is None else 'has no'} price")
    return OrderState(
        client_order_id=client_order_id,
        account=account,
        symbol=symbol,
        side=side,
        order_type=order_type,
        tif=tif,
        qty=qty,
        price=price,
        algo_id=algo_id,
        ts_created=ts,
        ts_updated=ts,
    )


def order_from_request(request: NewOrder, *, ts: int, algo_id: str | None = None) -> OrderState:
    """The ``pending_new`` order of a :class:`~engine.venue.protocol.NewOrder`."""
    return new_order(
        request.client_order_id,
        account=request.account,
        symbol=request.symbol,
        side=request.side,
        qty=request.qty,
        price=request.price,
        order_type=request.order_type,
        tif=request.tif,
        algo_id=algo_id,
        ts=ts,
    )


def matches(state: OrderState, client_order_id: str, venue_order_id: str = "") -> bool:
    """Whether a report naming these ids is about ``state`` (its id, its id before the
    last replace, or the same venue order id)."""
    if client_order_id and client_order_id in (state.client_order_id, state.orig_client_order_id):
        return True
    return bool(venue_order_id) and venue_order_id == state.venue_order_id


def apply_report(state: OrderState, report: ExecutionReport) -> Transition:
    """Apply any execution report (dispatches on its type)."""
    if isinstance(report, OrderFilled):
        return on_filled(state, report)
    if isinstance(report, OrderAccepted):
        return on_accepted(state, report)
    if isinstance(report, OrderCancelled):
        return on_cancelled(state, report)
    if isinstance(report, OrderReplaced):
        return on_replaced(state, report)
    return on_rejected(state, report)


def on_accepted(state: OrderState, event: OrderAccepted) -> Transition:
    """``pending_new`` → ``accepted``; a repeat (same venue order id) is ignored."""
    if not matches(state, event.client_order_id, event.venue_order_id):
        return _refuse(state, "wrong_order")
    if (event.account, event.symbol, event.side) != (state.account, state.symbol, state.side):
        return _refuse(state, "mismatch")
    if state.status != "pending_new":
        if state.venue_order_id == event.venue_order_id:
            return _ignore(state, "duplicate_report")
        return _refuse(state, "illegal_transition")
    if event.client_order_id != state.client_order_id:
        return _refuse(state, "wrong_order")
    return _apply(state, status="accepted", venue_order_id=event.venue_order_id, ts=event)


def on_rejected(state: OrderState, event: OrderRejected) -> Transition:
    """A refused new order ends ``rejected``; a refused cancel or replace changes nothing."""
    if event.request != "new":
        if not matches(state, event.orig_client_order_id):
            return _refuse(state, "wrong_order")
        return _ignore(state, "request_rejected")
    if event.client_order_id != state.client_order_id:
        return _refuse(state, "wrong_order")
    if event.reason == "duplicate_client_order_id":  # our resend; the venue has the order
        return _ignore(state, "duplicate_client_order_id")
    if state.status == "rejected":
        return _ignore(state, "duplicate_report")
    if state.status != "pending_new":
        return _refuse(state, "illegal_transition")
    return _apply(state, status="rejected", reject_reason=event.reason, ts=event)


def on_filled(state: OrderState, event: OrderFilled) -> Transition:
    """Add a fill: cum quantity, exact average price, ``partially_filled``/``filled``.

    A seen ``exec_id`` is ignored; a fill beyond ``qty`` is refused (``overfill``)."""
    if not matches(state, event.client_order_id, event.venue_order_id):
        return _refuse(state, "wrong_order")
    if event.exec_id in state.exec_ids:
        return _ignore(state, "duplicate_exec_id")
    if (event.account, event.symbol, event.side) != (state.account, state.symbol, state.side):
        return _refuse(state, "mismatch")
    if state.status == "rejected":
        return _refuse(state, "illegal_transition")
    if event.qty <= 0:
        return _refuse(state, "invalid_qty")
    with localcontext(DECIMAL_CONTEXT):
        filled = state.filled_qty + event.qty
        if filled > state.qty:
            return _refuse(state, "overfill")
        notional = state.notional + event.qty * event.price
        avg_price = (notional / filled).quantize(PRICE_QUANTUM)
    hint = ""
    status: OrderStatusName
    if state.status in ("cancelled", "expired"):
        status, hint = state.status, "late_fill"
    else:
        status = "filled" if filled == state.qty else "partially_filled"
        if event.cum_qty != filled:
            hint = "cum_qty_mismatch"
    return _apply(
        state,
        hint,
        status=status,
        filled_qty=filled,
        notional=notional,
        avg_price=avg_price,
        venue_order_id=state.venue_order_id or event.venue_order_id,
        exec_ids=state.exec_ids | {event.exec_id},
        ts=event,
    )


def on_cancelled(state: OrderState, event: OrderCancelled) -> Transition:
    """An open order ends ``cancelled`` (``expired`` for :data:`EXPIRY_REASONS`)."""
    if not matches(state, event.client_order_id, event.venue_order_id):
        return _refuse(state, "wrong_order")
    if state.status in ("cancelled", "expired"):
        return _ignore(state, "duplicate_report")
    if not state.is_open:
        return _refuse(state, "illegal_transition")
    status: OrderStatusName = "expired" if event.reason in EXPIRY_REASONS else "cancelled"
    return _apply(
        state,
        "fills_missing" if event.cum_qty > state.filled_qty else "",
        status=status,
        reject_reason=event.reason,
        venue_order_id=state.venue_order_id or event.venue_order_id,
        ts=event,
    )


def on_replaced(state: OrderState, event: OrderReplaced) -> Transition:
    """New quantity/price; the order's id becomes the replace request's id."""
    if event.client_order_id == state.client_order_id:
        return _ignore(state, "duplicate_report")
    if event.orig_client_order_id != state.client_order_id:
        return _refuse(state, "wrong_order")
    if (event.account, event.symbol) != (state.account, state.symbol):
        return _refuse(state, "mismatch")
    if not state.is_open:
        return _refuse(state, "illegal_transition")
    if event.qty < state.filled_qty or event.qty <= 0:
        return _refuse(state, "overfill")
    status: OrderStatusName
    if event.qty == state.filled_qty:
        status = "filled"
    else:
        status = "partially_filled" if state.filled_qty else "accepted"
    return _apply(
        state,
        status=status,
        client_order_id=event.client_order_id,
        orig_client_order_id=state.client_order_id,
        venue_order_id=state.venue_order_id or event.venue_order_id,
        qty=event.qty,
        price=event.price if event.price is not None else state.price,
        ts=event,
    )


def _apply(
    state: OrderState, hint: str = "", *, ts: ExecutionReport, **changes: object
) -> Transition:
    new = msgspec.structs.replace(state, ts_updated=max(state.ts_updated, ts.ts_event), **changes)
    return Transition(new, "applied", hint)


def _ignore(state: OrderState, reason: str) -> Transition:
    return Transition(state, "ignored", reason)


def _refuse(state: OrderState, reason: str) -> Transition:
    return Transition(state, "refused", reason)

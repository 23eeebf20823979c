"""Reconciliation: the order manager's open orders against the venue's view of them.

After a restart, a gap in the session's ``seq`` or a new ``venue_epoch``, the service
sends a :class:`~engine.venue.protocol.StatusRequest` naming every open order (and
asking for the session's open orders) and passes the answer here with its own open
orders (each with the ``exec_ids`` it applied, as :meth:`OrderLedger.open_orders`
returns them). :func:`reconcile` is pure: it returns a :class:`ReconcilePlan` of
execution reports that bring the order manager to the venue's view, to be applied
through the ledger in :meth:`ReconcilePlan.reports` order.

Per venue order (matched by ``client_order_id``, else by ``venue_order_id``: a replace
the order manager missed shows as the same venue order under the new id):

- still ``pending_new`` here → an ``OrderAccepted`` built from the venue's status;
- another id at the venue → an ``OrderReplaced`` (the missed replace);
- every venue fill whose ``exec_id`` was not applied → that ``OrderFilled``, exactly once
  (the plan simulates each step with :mod:`engine.orders.lifecycle`, so a fill that
  would be a duplicate, or is refused, is not planned);
- ``cancelled`` at the venue, open here → ``OrderCancelled(reason="reconciled")``;
- ``filled`` is reached by applying the missing fills; the plan never forces ``filled``
  without the fills that make it so — if they do not add up, the order is listed in
  ``discrepancies`` (as are refused fills and a cum quantity that differs).

An open order the venue does not know (``status == "unknown"``, or absent from the
answer — so ask about every open order) never traded there:

- ``pending_new`` → ``OrderRejected(reason="unknown_at_venue")`` → ``rejected`` (the
  request never reached the venue; the service may resend it instead of applying this);
- ``accepted``/``partially_filled`` → ``OrderCancelled(reason="unknown_at_venue")`` →
  ``expired`` (the venue dropped it, e.g. a restarted simulated venue; its fills stand).

A venue order the order manager does not know is returned in ``unknown_orders`` for an
alert; nothing is planned for it.

Applying a plan is idempotent: every planned report becomes a duplicate once applied
(same ``exec_id``, same status, same id), so applying it again changes nothing, and
reconciling again afterwards plans nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from engine.bus.events import (
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
)
from engine.orders.lifecycle import (
    UNKNOWN_AT_VENUE,
    ExecutionReport,
    OrderState,
    apply_report,
)
from engine.venue.protocol import OrderStatus

#: ``OrderCancelled.reason`` of a cancel the venue reported only in a status report.
RECONCILED = "reconciled"
SOURCE = "reconcile"
_VENUE_OPEN = frozenset({"accepted", "partially_filled"})


class Discrepancy(msgspec.Struct, frozen=True):
    """Something the plan cannot fix by itself; for a log line and an alert."""

    client_order_id: str
    reason: str
    """``fills_missing``, ``cum_qty_mismatch``, ``venue_open_oms_closed``, or the
    lifecycle's refusal reason of a venue fact (``overfill``, ``mismatch`` …)."""
    detail: str = ""


class ReconcilePlan(msgspec.Struct, frozen=True, kw_only=True):
    """What to apply, what to alert on. Empty when both sides agree."""

    accepts: tuple[OrderAccepted, ...] = ()
    replaces: tuple[OrderReplaced, ...] = ()
    fills: tuple[OrderFilled, ...] = ()
    """Missing fills, each exactly once, oldest first per order."""
    closes: tuple[OrderCancelled | OrderRejected, ...] = ()
    """Orders to end because the venue says so (cancelled) or does not know them
    (expired / rejected with reason ``unknown_at_venue``)."""
    unknown_orders: tuple[OrderStatus, ...] = ()
    """Venue orders the order manager does not know."""
    discrepancies: tuple[Discrepancy, ...] = ()

    def reports(self) -> list[ExecutionReport]:
        """The planned reports in the order to apply them."""
        return [*self.accepts, *self.replaces, *self.fills, *self.closes]

    @property
    def is_empty(self) -> bool:
        return not (self.reports() or self.unknown_orders or self.discrepancies)


def reconcile(
    orders: Iterable[OrderState],
    venue_orders: Iterable[OrderStatus],
    *,
    ts: int,
    venue: str = "",
) -> ReconcilePlan:
    """The plan that brings ``orders`` (the order manager's, open ones at least) to the
    venue's ``venue_orders`` (a :class:`~engine.venue.protocol.StatusReport`'s orders).

    ``ts`` (UTC ns) stamps the reports the plan makes up; ``venue`` names the venue in
    them. Orders here that are closed are matched too (their late fills are planned)
    but never closed again."""
    current: dict[str, OrderState] = {}  # keyed by the id the order had on entry
    by_id: dict[str, str] = {}
    by_venue_id: dict[str, str] = {}
    for order in orders:
        current[order.client_order_id] = order
        by_id[order.client_order_id] = order.client_order_id
        if order.venue_order_id:
            by_venue_id[order.venue_order_id] = order.client_order_id
    plan = _Builder(ts=ts, venue=venue)
    seen: set[str] = set()
    for status in venue_orders:
        if status.status == "unknown":
            continue
        key = by_id.get(status.client_order_id) or by_venue_id.get(status.venue_order_id)
        if key is None:
            plan.unknown_orders.append(status)
            continue
        seen.add(key)
        current[key] = plan.converge(current[key], status)
    for key, order in current.items():
        if key not in seen and order.is_open:
            plan.close_unknown(order)
    return plan.build()


class _Builder:
    def __init__(self, *, ts: int, venue: str) -> None:
        self.ts, self.venue = ts, venue
        self.planned: list[ExecutionReport] = []
        self.unknown_orders: list[OrderStatus] = []
        self.discrepancies: list[Discrepancy] = []

    def build(self) -> ReconcilePlan:
        planned = self.planned
        return ReconcilePlan(
            accepts=tuple(r for r in planned if isinstance(r, OrderAccepted)),
            replaces=tuple(r for r in planned if isinstance(r, OrderReplaced)),
            fills=tuple(r for r in planned if isinstance(r, OrderFilled)),
            closes=tuple(r for r in planned if isinstance(r, (OrderCancelled, OrderRejected))),
            unknown_orders=tuple(self.unknown_orders),
            discrepancies=tuple(self.discrepancies),
        )

    def converge(self, order: OrderState, status: OrderStatus) -> OrderState:
        """Plan the reports that take ``order`` to ``status``; returns the simulated
        state after them."""
        venue = self.venue or next((f.venue for f in status.fills), "")
        if order.status == "pending_new" and status.venue_order_id:
            order = self._try(order, self._accepted(order, status, venue))
        if order.client_order_id != status.client_order_id:
            order = self._try(order, self._replaced(order, status, venue))
        for fill in status.fills:
            if fill.exec_id not in order.exec_ids:
                order = self._try(order, fill)
        if status.status == "cancelled" and order.is_open:
            cancel = OrderCancelled(
                ts_event=self.ts,
                source=SOURCE,
                venue=venue,
                account=order.account,
                client_order_id=order.client_order_id,
                venue_order_id=status.venue_order_id,
                symbol=order.symbol,
                cancelled_qty=status.qty - status.cum_qty,
                cum_qty=status.cum_qty,
                reason=RECONCILED,
            )
            order = self._try(order, cancel)
        if status.status == "filled" and order.status != "filled":
            self._flag(order, "fills_missing", f"venue filled {status.cum_qty}")
        elif status.status in _VENUE_OPEN and not order.is_open:
            self._flag(order, "venue_open_oms_closed", f"here {order.status}")
        elif order.filled_qty != status.cum_qty:
            detail = f"here {order.filled_qty}, venue {status.cum_qty}"
            self._flag(order, "cum_qty_mismatch", detail)
        return order

    def close_unknown(self, order: OrderState) -> None:
        close: OrderCancelled | OrderRejected
        if order.status == "pending_new":
            close = OrderRejected(
                ts_event=self.ts,
                source=SOURCE,
                venue=self.venue,
                account=order.account,
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                reason=UNKNOWN_AT_VENUE,
                message="the venue does not know this order",
            )
        else:
            close = OrderCancelled(
                ts_event=self.ts,
                source=SOURCE,
                venue=self.venue,
                account=order.account,
                client_order_id=order.client_order_id,
                venue_order_id=order.venue_order_id,
                symbol=order.symbol,
                cancelled_qty=order.leaves_qty,
                cum_qty=order.filled_qty,
                reason=UNKNOWN_AT_VENUE,
            )
        self._try(order, close)

    def _try(self, order: OrderState, report: ExecutionReport) -> OrderState:
        transition = apply_report(order, report)
        if transition.applied:
            self.planned.append(report)
        elif transition.result == "refused":
            self._flag(order, transition.reason, type(report).__name__)
        return transition.state

    def _flag(self, order: OrderState, reason: str, detail: str) -> None:
        self.discrepancies.append(Discrepancy(order.client_order_id, reason, detail))

    def _accepted(self, order: OrderState, status: OrderStatus, venue: str) -> OrderAccepted:
        return OrderAccepted(
            ts_event=self.ts,
            source=SOURCE,
            venue=venue,
            account=order.account,
            client_order_id=order.client_order_id,
            venue_order_id=status.venue_order_id,
            symbol=order.symbol,
            side=order.side,
            order_type=order.order_type,
            tif=order.tif,
            qty=order.qty,
            price=order.price,
        )

    def _replaced(self, order: OrderState, status: OrderStatus, venue: str) -> OrderReplaced:
        return OrderReplaced(
            ts_event=self.ts,
            source=SOURCE,
            venue=venue,
            account=order.account,
            client_order_id=status.client_order_id,
            orig_client_order_id=order.client_order_id,
            venue_order_id=status.venue_order_id,
            symbol=order.symbol,
            qty=status.qty,
            price=status.price,
            leaves_qty=status.leaves_qty,
            priority_kept=False,
        )

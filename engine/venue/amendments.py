"""Requests on resting orders: replace, mass cancel, and restore after a restart.

:class:`BookAmendments` is a base class of :class:`~engine.venue.book.OrderBook` (the
rules are in that module's docstring): none of these is a hot path, so they use the
methods of the sides, the index and the event builder rather than inlining them.
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.bus.events import Event, TimeInForce
from engine.venue.instrument import Reason, int_problem, restored_order_problem
from engine.venue.levels import BookOrder, OrderState
from engine.venue.queries import BookQueries


class BookAmendments(BookQueries):
    """Replace, cancel-all and restore of an :class:`~engine.venue.book.OrderBook`."""

    deltas: bool
    reports: bool
    halted: bool

    def cancel_all(
        self,
        account: str | None = None,
        *,
        reason: str = Reason.REQUESTED,
        tif: TimeInForce | None = None,
        ts: int,
    ) -> list[Event]:
        """Cancel every resting order (of ``account``; with time in force ``tif``), e.g.
        ``cancel_all(reason="halted")`` or ``cancel_all(tif="day", reason="expired")``."""
        events: list[Event] = []
        for order in self._bids.orders() + self._asks.orders():
            if (account is None or order.account == account) and (tif is None or order.tif == tif):
                (self._bids if order.side == "buy" else self._asks).withdraw(order, self.deltas)
                self._matcher.kill(order, reason, events, ts, self.reports)
        if self.deltas and (self._bids.touched or self._asks.touched):
            events.append(self._build.delta(ts))
        return events

    def replace(
        self,
        account: str,
        orig_client_order_id: str,
        client_order_id: str,
        qty: int,
        price: int | None = None,
        *,
        venue_order_id: str = "",
        ts: int,
    ) -> list[Event]:
        """Change the total quantity (``qty`` lots, filled part included) and/or the price
        (None keeps it) of a resting order named by ``orig_client_order_id`` (or
        ``venue_order_id``); ``client_order_id`` becomes its id.

        Refusals: ``halted``, ``client_order_id_required``, the quantity and price codes
        of :meth:`submit`, ``unknown_order``, ``order_done``,
        ``duplicate_client_order_id``, ``qty_below_filled`` (``qty`` ≤ filled)."""
        order = self._orders.find(account, orig_client_order_id, venue_order_id)
        if self.halted:
            problem = Reason.HALTED
        elif not client_order_id:
            problem = Reason.CLIENT_ORDER_ID_REQUIRED
        else:
            problem = int_problem(qty, "qty")
            if not problem and price is not None:
                problem = int_problem(price, "price")
        if not problem:
            if order is None or not order.leaves:
                problem = Reason.UNKNOWN_ORDER if order is None else Reason.ORDER_DONE
            elif client_order_id != order.client_order_id and self._orders.taken(
                account, client_order_id
            ):
                problem = Reason.DUPLICATE_CLIENT_ORDER_ID
            elif qty <= order.qty - order.leaves:
                problem = Reason.QTY_BELOW_FILLED
        if problem or order is None:
            target = orig_client_order_id or venue_order_id
            why = f"order {target!r}: {problem}"
            return [
                self._build.rejected(ts, account, client_order_id, "replace", target, problem, why)
            ]
        old_id = order.client_order_id
        if client_order_id != old_id:
            self._orders.alias(order, client_order_id)
        new_price = order.price if price is None else price
        assert new_price is not None  # only limit orders rest
        leaves = qty - (order.qty - order.leaves)
        keep = new_price == order.price and qty <= order.qty
        own, opposite = (
            (self._bids, self._asks) if order.side == "buy" else (self._asks, self._bids)
        )
        deltas, reports = self.deltas, self.reports
        if keep:
            if leaves != order.leaves:
                level = own.levels[new_price]
                level.qty += leaves - order.leaves
                if deltas:
                    own.touched[new_price] = level
        else:
            own.withdraw(order, deltas)
            order.price = new_price
            order.ts = ts
        order.qty = qty
        order.leaves = leaves
        events: list[Event] = [self._build.replaced(order, old_id, keep, ts)] if reports else []
        if not keep:
            self._matcher.execute(order, own, opposite, events, ts, deltas, reports)
        if deltas and (self._bids.touched or self._asks.touched):
            events.append(self._build.delta(ts))
        return events

    def restore(self, orders: Iterable[OrderState], *, ts: int = 0) -> list[Event]:
        """Put resting orders back after a venue restart, in the given order (their time
        priority within a level), without acknowledging them again. Returns an
        ``OrderRejected`` for each order left out (bad fields, a duplicate id, a price
        that would cross); emits no delta — send a :meth:`snapshot`."""
        events: list[Event] = []
        for state in orders:
            problem = self._restore_problem(state)
            if problem:
                why = f"restore of {state.venue_order_id!r}: {problem}"
                events.append(
                    self._build.rejected(
                        ts, state.account, state.client_order_id, "new", "", problem, why
                    )
                )
                continue
            qty = state.qty
            order = BookOrder(
                state.account,
                state.client_order_id,
                state.venue_order_id,
                state.side,
                "limit",
                state.tif,
                state.price,
                qty,
                qty - state.cum_qty,
                state.ts,
            )
            self._orders.add_restored(order)
            (self._bids if state.side == "buy" else self._asks).rest(order, False)
        return events

    def _restore_problem(self, state: OrderState) -> str:
        problem = restored_order_problem(state)
        if problem:
            return problem
        if self._orders.taken(state.account, state.client_order_id):
            return Reason.DUPLICATE_CLIENT_ORDER_ID
        if self._orders.by_vid(state.venue_order_id) is not None:
            return Reason.DUPLICATE_VENUE_ORDER_ID
        price = state.price
        assert price is not None
        best = self.best_ask() if state.side == "buy" else self.best_bid()
        if best is not None and (price >= best if state.side == "buy" else price <= best):
            return Reason.WOULD_CROSS
        return ""

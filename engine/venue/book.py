"""The price-time-priority matching core of the simulated venue: one book per instrument.

Contract
--------
Every operation takes its time ``ts`` (UTC ns, injected — the book never reads a clock)
and returns the ``list[Event]`` it caused, in order; it never raises on bad input. A
refused request gives one ``OrderRejected`` with a :class:`~engine.venue.instrument.Reason`
code and leaves the book untouched. Prices are integer ticks and quantities integer lots
(Python ``int``); :class:`~engine.venue.instrument.InstrumentSpec` converts protocol Decimals
with the same reason codes. Events carry Decimals and only ``ts_event``; the publisher
stamps the rest of the header.

- **New order** (:meth:`OrderBook.submit`): a valid order is always acknowledged first
  with ``OrderAccepted`` (market, IOC and FOK orders too), then come its fills, then at
  most one ``OrderCancelled`` for a remainder that may not rest, by precedence:
  ``self_match``, ``fok_unfilled`` (FOK is all or nothing: when the whole quantity cannot
  trade at once, nothing trades; market FOK too), ``no_liquidity`` (market, whatever its
  day/gtc/ioc), ``ioc_remainder`` (limit IOC). Limit day/gtc remainders rest; the book
  does not expire day orders by itself (``cancel_all(tif="day", reason="expired")``).
- **Fills** and **self-match prevention** per account (``self_match`` dict, default
  ``cancel_newest``): see :mod:`engine.venue.matching`.
- **Replace**: a lower (or equal) quantity at the same price keeps time priority
  (``priority_kept=True``); a new price or a higher quantity re-queues the order at the
  back, and a marketable new price trades at once (``OrderReplaced`` first, then fills).
  The order answers to every client_order_id it has had.
- **L2**: :meth:`OrderBook.depth`, :meth:`OrderBook.snapshot` (``snapshot=True`` with the
  current ``book_seq``) and, when ``deltas`` is on, one ``BookUpdated(snapshot=False)``
  last in every operation that changed a level: only those levels, quantity 0 when the
  level is gone, ``book_seq`` +1 each. Applying the deltas with a higher ``book_seq`` to
  a snapshot gives the current depth (the Clone pattern).
- ``reports=False`` leaves out the execution reports (accepted, filled, cancelled,
  replaced, trade prints) but not rejections or deltas: for market-data replays and
  shadow books read through queries, and to time the matching alone.

Ids (deterministic for the same sequence of operations; ``prefix`` defaults to the
symbol): the book assigns ``venue_order_id`` = ``<prefix>-O<n>``; a trade is
``<prefix>-T<n>`` and its two fills ``<prefix>-T<n>-t`` (taker) and ``<prefix>-T<n>-m``
(maker). The counters start at ``first_order_number``/``first_trade_number``; a venue
that restarts passes back ``next_order_number``/``next_trade_number`` or uses a per-run
``id_prefix``. :meth:`OrderBook.restore` moves the order counter past any restored
``<prefix>-O<n>``.

Memory: the ``keep_done`` (default 100,000) most recent done orders stay addressable by
:meth:`OrderBook.order`; older ones are forgotten in batches but their client_order_ids
stay taken (see :mod:`engine.venue.orders_index`). Resting orders are never forgotten.

Layout: :mod:`~engine.venue.levels` (orders, FIFO levels, sides),
:mod:`~engine.venue.orders_index` (lookups, retention) and :mod:`~engine.venue.ids`,
:mod:`~engine.venue.matching` (the match loop), :mod:`~engine.venue.reports` (events),
:mod:`~engine.venue.queries` and :mod:`~engine.venue.amendments` (replace, cancel-all,
restore: the base classes of :class:`OrderBook`). This module takes new orders and
cancels. Their hot paths — a limit order that rests without crossing, and a cancel —
check the happy case with one cheap condition, work on the fields of the sides, levels
and index directly and build their events inline; anything else takes the general path,
which gives the detailed reason of a refusal. ``scripts/bench_book.py`` measures all this.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.bus.events import (
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderType,
    Side,
    TimeInForce,
)
from engine.venue.amendments import BookAmendments
from engine.venue.ids import IdSequence
from engine.venue.instrument import (
    MAX_TICKS,
    TIFS,
    InstrumentSpec,
    Reason,
    new_order_problem,
)
from engine.venue.levels import BookOrder, BookSide, OrderState
from engine.venue.matching import SELF_MATCH_POLICIES, Matcher, SelfMatchPolicy
from engine.venue.orders_index import OrderIndex
from engine.venue.reports import ReportBuilder

__all__ = [
    "SELF_MATCH_POLICIES",
    "InstrumentSpec",
    "OrderBook",
    "OrderState",
    "Reason",
    "SelfMatchPolicy",
]
_FAST_MAX = (1 << 30) - 1
"""Prices and quantities up to this take the fast path of a new order (beyond it, up to
``MAX_TICKS``, the general path): CPython compares such ints fastest."""


class OrderBook(BookAmendments):
    """Price-time-priority limit order book of one instrument (see the module docstring).

    ``self_match`` maps an account to its :data:`SelfMatchPolicy`; other accounts get
    ``self_match_default``. ``deltas`` and ``reports`` are plain attributes (flip
    ``deltas`` on, then send a :meth:`snapshot`). ``halted`` refuses new orders and
    replaces with ``halted``; cancels still work. ``id_prefix``, ``first_order_number``,
    ``first_trade_number`` and ``book_seq`` continue a previous run's ids and sequence;
    ``keep_done`` bounds the done orders kept for lookups. Raises ``ConfigError`` for an
    unknown policy or a negative ``keep_done`` (the only exceptions it raises).
    """

    def __init__(
        self,
        spec: InstrumentSpec,
        *,
        venue: str = "SIM",
        self_match: Mapping[str, SelfMatchPolicy] | None = None,
        self_match_default: SelfMatchPolicy = "cancel_newest",
        deltas: bool = False,
        reports: bool = True,
        id_prefix: str | None = None,
        first_order_number: int = 1,
        first_trade_number: int = 1,
        book_seq: int = 0,
        keep_done: int | None = 100_000,
    ) -> None:
        prefix = spec.symbol if id_prefix is None else id_prefix
        self._orders = OrderIndex(IdSequence(f"{prefix}-O", first_order_number), keep_done)
        self._bids = BookSide(buy=True)
        self._asks = BookSide(buy=False)
        self._sides = {"buy": self._bids, "sell": self._asks}
        self._build = build = ReportBuilder(spec, venue, self._bids, self._asks, book_seq)
        trades = IdSequence(f"{prefix}-T", first_trade_number)
        self._matcher = Matcher(build, trades, self_match or {}, self_match_default)
        self.spec = spec
        self.symbol = spec.symbol
        self.tick_size = spec.tick_size
        self.lot_size = spec.lot_size
        self.venue = venue
        self.deltas = deltas
        self.reports = reports
        self.halted = False
        # the index's parts the hot paths use
        self._numbered = self._orders.numbered
        self._by_account = self._orders.by_account

    def __del__(self) -> None:
        # orders are invisible to the garbage collector: break the links of the resting
        # ones so that reference counting frees them with the book
        for side in (self.__dict__.get("_bids"), self.__dict__.get("_asks")):
            if side is not None:
                side.release()

    # --- requests --------------------------------------------------------------------

    def submit(
        self,
        account: str,
        client_order_id: str,
        side: Side,
        qty: int,
        price: int | None = None,
        *,
        order_type: OrderType = "limit",
        tif: TimeInForce = "day",
        ts: int,
    ) -> list[Event]:
        """Enter a new order of ``qty`` lots at ``price`` ticks (None for market).

        Refusals: ``halted``, ``account_required``, ``client_order_id_required``,
        ``side_invalid``, ``order_type_invalid``, ``tif_invalid``, ``qty_not_integer``,
        ``qty_not_finite``, ``qty_not_positive``, ``qty_out_of_range``,
        ``price_required``, ``price_not_allowed`` (market), ``price_not_integer``,
        ``price_not_finite``, ``price_not_positive``, ``price_out_of_range``,
        ``duplicate_client_order_id`` (among this account's orders in this book)."""
        # the fast path: a valid day/gtc limit order with a new id that does not cross
        # rests at once (most orders of a venue). Small ints compare fastest, plain
        # comparisons take fewer instructions than chained ones, and every exit is a
        # short jump: CPython 3.11 only specializes a comparison directly followed by
        # its jump (no EXTENDED_ARG)
        if not (
            order_type == "limit"
            and (tif == "day" or tif == "gtc")
            and type(price) is int
            and type(qty) is int
            and price > 0
            and qty > 0
            and price <= _FAST_MAX
            and qty <= _FAST_MAX
            and client_order_id
            and not self.halted
        ):
            return self._submit(account, client_order_id, side, qty, price, order_type, tif, ts)
        if side == "buy":
            own, keys, limit_key = self._bids, self._asks.keys, -price
        elif side == "sell":
            own, keys, limit_key = self._asks, self._bids.keys, price
        else:
            return self._submit(account, client_order_id, side, qty, price, order_type, tif, ts)
        try:
            ids = self._by_account[account]
        except KeyError:  # a new account (or "", which is never taken)
            return self._submit(account, client_order_id, side, qty, price, order_type, tif, ts)
        if client_order_id in ids:
            return self._submit(account, client_order_id, side, qty, price, order_type, tif, ts)
        if keys and keys[-1] >= limit_key:  # valid, but it crosses: match it
            return self._enter(account, client_order_id, side, qty, price, "limit", tif, ts, ids)
        try:
            n, vid = next(self._orders.vids)
        except StopIteration:
            n, vid = self._orders.roll()
        level = own.levels.get(price)
        if level is None:
            level = own.level(price)
        tail = level.tail
        order = BookOrder(
            account, client_order_id, vid, side, "limit", tif, price, qty, qty, ts, tail
        )
        if tail is None:
            level.head = order
        else:
            tail.next = order
        level.tail = order
        level.qty += qty
        ids[client_order_id] = order
        self._numbered[n] = order
        if self.reports:
            build = self._build
            try:
                dqty, dprice = build.qdec[qty], build.pdec[price]
            except KeyError:
                dqty, dprice = build.lots[qty], build.prices[price]
            events: list[Event] = [
                OrderAccepted(
                    ts_event=ts,
                    venue=build.venue,
                    account=account,
                    client_order_id=client_order_id,
                    venue_order_id=vid,
                    symbol=build.symbol,
                    side=side,
                    order_type="limit",
                    tif=tif,
                    qty=dqty,
                    price=dprice,
                )
            ]
            if self.deltas:
                own.touched[price] = level
                events.append(self._build.delta(ts))
            return events
        if self.deltas:
            own.touched[price] = level
            return [self._build.delta(ts)]
        return []

    def _submit(
        self,
        account: str,
        client_order_id: str,
        side: Side,
        qty: int,
        price: int | None,
        order_type: OrderType,
        tif: TimeInForce,
        ts: int,
    ) -> list[Event]:
        """:meth:`submit` of any order: the checks, with the reason of a refusal."""
        if order_type == "limit":
            fine = type(price) is int and 0 < price <= MAX_TICKS
        else:
            fine = order_type == "market" and price is None
        if not (
            fine
            and type(qty) is int
            and 0 < qty <= MAX_TICKS
            and (side == "buy" or side == "sell")
            and tif in TIFS
            and account
            and client_order_id
            and not self.halted
        ):
            reason, why = new_order_problem(
                account, client_order_id, side, order_type, tif, qty, price
            )
            if self.halted:
                reason, why = Reason.HALTED, "trading is halted"
            return [self._build.rejected(ts, account, client_order_id, "new", "", reason, why)]
        ids = self._by_account.get(account)
        if ids is None:
            ids = self._by_account[account] = {}
        elif client_order_id in ids:
            why = f"client_order_id {client_order_id!r} already used"
            return [
                self._build.rejected(
                    ts, account, client_order_id, "new", "", Reason.DUPLICATE_CLIENT_ORDER_ID, why
                )
            ]
        return self._enter(account, client_order_id, side, qty, price, order_type, tif, ts, ids)

    def _enter(
        self,
        account: str,
        client_order_id: str,
        side: Side,
        qty: int,
        price: int | None,
        order_type: OrderType,
        tif: TimeInForce,
        ts: int,
        ids: dict[str, BookOrder | None],
    ) -> list[Event]:
        """Accept a valid new order (``ids``: its account's), match it, then rest or
        cancel the remainder."""
        n, vid = self._orders.take()
        order = BookOrder(account, client_order_id, vid, side, order_type, tif, price, qty, qty, ts)
        ids[client_order_id] = order
        self._numbered[n] = order
        deltas, reports, matcher = self.deltas, self.reports, self._matcher
        events: list[Event] = [self._build.accepted(order, ts)] if reports else []
        if side == "buy":
            matcher.execute(order, self._bids, self._asks, events, ts, deltas, reports)
        else:
            matcher.execute(order, self._asks, self._bids, events, ts, deltas, reports)
        if deltas and (self._bids.touched or self._asks.touched):
            events.append(self._build.delta(ts))
        return events

    def cancel(
        self,
        account: str,
        orig_client_order_id: str = "",
        *,
        venue_order_id: str = "",
        client_order_id: str = "",
        reason: str = Reason.REQUESTED,
        ts: int,
    ) -> list[Event]:
        """Cancel the rest of an order of ``account``, named by any client_order_id it
        has had or by ``venue_order_id``. ``client_order_id`` is the cancel request's own
        id (echoed as ``cancel_client_order_id``). Refusals: ``unknown_order`` (also for
        another account's order), ``order_done``. Allowed while halted."""
        if venue_order_id:
            order = self._orders.find(account, orig_client_order_id, venue_order_id)
        else:
            try:
                order = self._by_account[account][orig_client_order_id]
            except KeyError:
                order = None
        if order is None or not (leaves := order.leaves):
            problem = Reason.UNKNOWN_ORDER if order is None else Reason.ORDER_DONE
            target = orig_client_order_id or venue_order_id
            why = f"order {target!r}: {problem}"
            return [
                self._build.rejected(ts, account, client_order_id, "cancel", target, problem, why)
            ]
        # BookSide.withdraw and PriceLevel.unlink, inline
        price = order.price
        assert price is not None
        own = self._sides[order.side]
        level = own.levels[price]
        prev, nxt = order.prev, order.next
        if prev is None:
            level.head = nxt
        else:
            prev.next = nxt
            order.prev = None
        if nxt is None:
            level.tail = prev
        else:
            nxt.prev = prev
            order.next = None
        level.qty -= leaves
        order.leaves = 0
        order.cancelled = leaves
        if level.head is None:
            own.drop(level)
        if self.reports:
            build = self._build
            try:
                dleaves, dcum = build.qdec[leaves], build.qdec[order.qty - leaves]
            except KeyError:
                dleaves, dcum = build.lots[leaves], build.lots[order.qty - leaves]
            events: list[Event] = [
                OrderCancelled(
                    ts_event=ts,
                    venue=build.venue,
                    account=account,
                    client_order_id=order.client_order_id,
                    venue_order_id=order.venue_order_id,
                    symbol=build.symbol,
                    cancelled_qty=dleaves,
                    cum_qty=dcum,
                    reason=reason,
                    cancel_client_order_id=client_order_id,
                )
            ]
            if self.deltas:
                own.touched[price] = level
                events.append(self._build.delta(ts))
            return events
        if self.deltas:
            own.touched[price] = level
            return [self._build.delta(ts)]
        return []

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
- **Fills**: each match gives ``OrderFilled`` for the taker, ``OrderFilled`` for the
  maker and one ``TradePrinted`` (``aggressor`` = taker side), in that order.
- **Self-match prevention** per account (``self_match`` dict, default
  ``cancel_newest``): ``cancel_newest`` cancels the incoming remainder; ``cancel_oldest``
  cancels the resting order and matching goes on; ``cancel_both`` cancels both. Fills
  before the self-match stand. A FOK order counts the policy in its all-or-nothing check
  and, when killed, cancels no resting order.
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
:meth:`OrderBook.order`; older done orders are forgotten in batches (lookups return None,
a cancel or replace of one is ``unknown_order``) but their client_order_ids stay taken,
so a duplicate is still refused. Resting orders are never forgotten. ``keep_done=None``
keeps everything.

Data structures: two :class:`~engine.venue.levels.BookSide` objects, each a dict price →
:class:`~engine.venue.levels.PriceLevel` (an intrusive FIFO: O(1) append, match and
cancel, no lazy garbage) and a sorted list of level keys with the best at the end (bids:
price, asks: -price), so the best level is ``keys[-1]``, a sweep pops from the end and a
new level near the touch inserts near the end. Orders are found by the number in their
venue_order_id (an int-keyed dict) and by account and client_order_id. The match loop
(``_take``) works on the sides' fields directly and builds its events inline: it is the
hot path. Orders and levels are not tracked by the garbage collector (see
:class:`~engine.venue.levels.BookOrder`). ``scripts/bench_book.py`` measures all this.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Literal

from engine.bus.events import (
    BookLevel,
    BookUpdated,
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderType,
    RequestKind,
    Side,
    TimeInForce,
    TradePrinted,
)
from engine.errors import ConfigError
from engine.venue.instrument import (
    MAX_TICKS,
    TIFS,
    DecimalCache,
    InstrumentSpec,
    Reason,
    int_problem,
    new_order_problem,
)
from engine.venue.levels import BookOrder, BookSide, OrderState
from engine.venue.protocol import OrderStatus

__all__ = [
    "SELF_MATCH_POLICIES",
    "InstrumentSpec",
    "OrderBook",
    "OrderState",
    "Reason",
    "SelfMatchPolicy",
]

SelfMatchPolicy = Literal["cancel_newest", "cancel_oldest", "cancel_both"]
SELF_MATCH_POLICIES: frozenset[str] = frozenset(("cancel_newest", "cancel_oldest", "cancel_both"))
_MIN_KEY = -(1 << 63)
"""Below every level key: the limit of a market order."""
_NEVER = 1 << 64


class OrderBook:
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
        if keep_done is not None and keep_done < 0:
            raise ConfigError("venue.keep_done", f"must be 0 or more, got {keep_done}")
        policies: dict[str, str] = {**(self_match or {})}
        for account, policy in [*policies.items(), ("<default>", self_match_default)]:
            if policy not in SELF_MATCH_POLICIES:
                raise ConfigError(
                    f"venue.self_match.{account}",
                    f"must be one of {sorted(SELF_MATCH_POLICIES)}, got {policy!r}",
                )
        self.spec = spec
        self.symbol = spec.symbol
        self.tick_size = spec.tick_size
        self.lot_size = spec.lot_size
        self.venue = venue
        self.deltas = deltas
        self.reports = reports
        self.halted = False
        self._smp = policies
        self._smp_default: str = self_match_default
        prefix = spec.symbol if id_prefix is None else id_prefix
        self._order_prefix = f"{prefix}-O"
        self._trade_prefix = f"{prefix}-T"
        self._next_order = first_order_number
        self._next_trade = first_trade_number
        self._book_seq = book_seq
        self._pdec = DecimalCache(spec.tick_size)
        self._qdec = DecimalCache(spec.lot_size)
        self._bids = BookSide(buy=True)
        self._asks = BookSide(buy=False)
        # every order by the number in its venue_order_id (restored ones with other ids
        # by id), and by account and client_order_id; a forgotten order's ids map to None
        self._numbered: dict[int, BookOrder] = {}
        self._foreign: dict[str, BookOrder] = {}
        self._by_account: dict[str, dict[str, BookOrder | None]] = {}
        self._keep_done = keep_done
        self._sweep_batch = max(1024, (keep_done or 0) // 8)
        self._swept = first_order_number  # numbers below it were looked at by _sweep
        self._sweep_at = _NEVER if keep_done is None else self._next_sweep()
        self._lingering: list[int] = []  # …except these, still resting then

    def __del__(self) -> None:
        # orders and levels are invisible to the garbage collector: break the links of
        # the resting ones so that reference counting frees them with the book
        for side in (self.__dict__.get("_bids"), self.__dict__.get("_asks")):
            if side is not None:
                side.release()

    @property
    def next_order_number(self) -> int:
        """The ``n`` of the next ``<prefix>-O<n>``; persist it to continue after a restart."""
        return self._next_order

    @property
    def next_trade_number(self) -> int:
        """The ``n`` of the next ``<prefix>-T<n>``."""
        return self._next_trade

    @property
    def book_seq(self) -> int:
        """Sequence number of the last emitted delta (a snapshot carries it too)."""
        return self._book_seq

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
            return [self._reject(ts, account, client_order_id, "new", "", reason, why)]
        ids = self._by_account.get(account)
        if ids is None:
            ids = self._by_account[account] = {}
        elif client_order_id in ids:
            why = f"client_order_id {client_order_id!r} already used"
            return [
                self._reject(
                    ts, account, client_order_id, "new", "", Reason.DUPLICATE_CLIENT_ORDER_ID, why
                )
            ]
        n = self._next_order
        self._next_order = n + 1
        vid = f"{self._order_prefix}{n}"
        order = BookOrder(account, client_order_id, vid, side, order_type, tif, price, qty, qty, ts)
        ids[client_order_id] = order
        self._numbered[n] = order
        if n >= self._sweep_at:
            self._sweep()
        events: list[Event] = (
            [
                OrderAccepted(
                    ts_event=ts,
                    venue=self.venue,
                    account=account,
                    client_order_id=client_order_id,
                    venue_order_id=vid,
                    symbol=self.symbol,
                    side=side,
                    order_type=order_type,
                    tif=tif,
                    qty=self._qdec[qty],
                    price=None if price is None else self._pdec[price],
                )
            ]
            if self.reports
            else []
        )
        buy = side == "buy"
        limit_key = _MIN_KEY if price is None else -price if buy else price
        opposite = (self._asks if buy else self._bids).keys
        stopped = False
        if (
            opposite
            and opposite[-1] >= limit_key
            and (tif != "fok" or self._fillable(order, limit_key))
        ):
            stopped = self._take(order, limit_key, events, ts)
        if order.leaves:
            if stopped:
                self._kill(order, Reason.SELF_MATCH, events, ts)
            elif tif == "fok":
                self._kill(order, Reason.FOK_UNFILLED, events, ts)
            elif price is None:
                self._kill(order, Reason.NO_LIQUIDITY, events, ts)
            elif tif == "ioc":
                self._kill(order, Reason.IOC_REMAINDER, events, ts)
            else:
                (self._bids if buy else self._asks).rest(order, self.deltas)
        if self.deltas and (self._bids.touched or self._asks.touched):
            events.append(self._delta(ts))
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
        ids = self._by_account.get(account)
        if venue_order_id or ids is None:
            order = self._find(account, orig_client_order_id, venue_order_id)
        else:
            order = ids.get(orig_client_order_id)
        if order is None or not order.leaves:
            problem = Reason.UNKNOWN_ORDER if order is None else Reason.ORDER_DONE
            target = orig_client_order_id or venue_order_id
            why = f"order {target!r}: {problem}"
            return [self._reject(ts, account, client_order_id, "cancel", target, problem, why)]
        leaves = order.leaves
        (self._bids if order.side == "buy" else self._asks).withdraw(order, self.deltas)
        order.leaves = 0
        order.cancelled += leaves
        events: list[Event] = []
        if self.reports:
            events.append(
                OrderCancelled(
                    ts_event=ts,
                    venue=self.venue,
                    account=account,
                    client_order_id=order.client_order_id,
                    venue_order_id=order.venue_order_id,
                    symbol=self.symbol,
                    cancelled_qty=self._qdec[leaves],
                    cum_qty=self._qdec[order.cum],
                    reason=reason,
                    cancel_client_order_id=client_order_id,
                )
            )
        if self.deltas:
            events.append(self._delta(ts))
        return events

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
                self._kill(order, reason, events, ts)
        if self.deltas and (self._bids.touched or self._asks.touched):
            events.append(self._delta(ts))
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
        order = self._find(account, orig_client_order_id, venue_order_id)
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
            elif (
                client_order_id != order.client_order_id
                and client_order_id in (self._by_account[account])
            ):
                problem = Reason.DUPLICATE_CLIENT_ORDER_ID
            elif qty <= order.cum:
                problem = Reason.QTY_BELOW_FILLED
        if problem or order is None:
            target = orig_client_order_id or venue_order_id
            why = f"order {target!r}: {problem}"
            return [self._reject(ts, account, client_order_id, "replace", target, problem, why)]
        old_id = order.client_order_id
        if client_order_id != old_id:
            self._by_account[account][client_order_id] = order
            order.client_order_id = client_order_id
            if order.aliases is None:
                order.aliases = [old_id]
            else:
                order.aliases.append(old_id)
        new_price = order.price if price is None else price
        assert new_price is not None  # only limit orders rest
        leaves = qty - order.cum
        keep = new_price == order.price and qty <= order.qty
        own, opposite = (
            (self._bids, self._asks) if order.side == "buy" else (self._asks, self._bids)
        )
        if keep:
            level = order.level
            assert level is not None
            if leaves != order.leaves:
                level.qty += leaves - order.leaves
                if self.deltas:
                    own.touched[new_price] = level
        else:
            own.withdraw(order, self.deltas)
            order.price = new_price
            order.ts = ts
        order.qty = qty
        order.leaves = leaves
        events: list[Event] = []
        if self.reports:
            events.append(
                OrderReplaced(
                    ts_event=ts,
                    venue=self.venue,
                    account=account,
                    client_order_id=client_order_id,
                    orig_client_order_id=old_id,
                    venue_order_id=order.venue_order_id,
                    symbol=self.symbol,
                    qty=self._qdec[qty],
                    price=self._pdec[new_price],
                    leaves_qty=self._qdec[leaves],
                    priority_kept=keep,
                )
            )
        if not keep:
            limit_key = new_price * opposite.sign
            keys = opposite.keys
            if keys and keys[-1] >= limit_key and self._take(order, limit_key, events, ts):
                self._kill(order, Reason.SELF_MATCH, events, ts)
            if order.leaves:
                own.rest(order, self.deltas)
        if self.deltas and (self._bids.touched or self._asks.touched):
            events.append(self._delta(ts))
        return events

    # --- queries ---------------------------------------------------------------------

    def best_bid(self) -> int | None:
        """Best bid in ticks, None when there is none."""
        return self._bids.best()

    def best_ask(self) -> int | None:
        """Best ask in ticks, None when there is none."""
        return self._asks.best()

    def best_bid_price(self) -> Decimal | None:
        best = self.best_bid()
        return None if best is None else self._pdec[best]

    def best_ask_price(self) -> Decimal | None:
        best = self.best_ask()
        return None if best is None else self._pdec[best]

    def depth_ticks(self, levels: int = 10) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The best ``levels`` levels of each side, best first, as (ticks, lots)."""
        if levels <= 0:
            return [], []
        return self._bids.depth(levels), self._asks.depth(levels)

    def depth(self, levels: int = 10) -> tuple[list[BookLevel], list[BookLevel]]:
        """The best ``levels`` levels of each side, best first, as (price, qty) Decimals."""
        bids, asks = self.depth_ticks(levels)
        p, q = self._pdec, self._qdec
        return [(p[t], q[n]) for t, n in bids], [(p[t], q[n]) for t, n in asks]

    def snapshot(self, ts: int) -> BookUpdated:
        """Every level, with the ``book_seq`` of the last delta (later deltas apply)."""
        bids, asks = self.depth(len(self._bids.keys) + len(self._asks.keys))
        return BookUpdated(
            ts_event=ts,
            venue=self.venue,
            symbol=self.symbol,
            book_seq=self._book_seq,
            snapshot=True,
            bids=bids,
            asks=asks,
        )

    def order(
        self, account: str = "", client_order_id: str = "", *, venue_order_id: str = ""
    ) -> OrderState | None:
        """One order by ``venue_order_id`` (``account`` checked when given) or by
        ``account`` and any client_order_id it has had; None when unknown."""
        if venue_order_id:
            found = self._by_vid(venue_order_id)
            if found is None or (account and found.account != account):
                return None
            return OrderState.of(found)
        found = self._find(account, client_order_id, "")
        return None if found is None else OrderState.of(found)

    def orders_of(self, account: str, *, open_only: bool = True) -> list[OrderState]:
        """The orders of ``account`` in the order they were entered (only resting ones
        unless ``open_only`` is False)."""
        seen: dict[int, BookOrder] = {}
        for found in self._by_account.get(account, {}).values():
            if found is not None and (not open_only or found.leaves):
                seen.setdefault(id(found), found)
        return [OrderState.of(o) for o in seen.values()]

    def open_orders(self) -> list[OrderState]:
        """Every resting order: bids best first, then asks best first, each level in
        time priority — what :meth:`restore` needs after a restart."""
        return [OrderState.of(o) for o in self._bids.orders() + self._asks.orders()]

    def status(self, state: OrderState) -> OrderStatus:
        """``state`` as the protocol's :class:`OrderStatus` (Decimals; ``fills`` empty:
        the book keeps no fills)."""
        q = self._qdec
        return OrderStatus(
            account=state.account,
            client_order_id=state.client_order_id,
            venue_order_id=state.venue_order_id,
            symbol=self.symbol,
            side=state.side,
            order_type=state.order_type,
            tif=state.tif,
            qty=q[state.qty],
            price=None if state.price is None else self._pdec[state.price],
            cum_qty=q[state.cum_qty],
            leaves_qty=q[state.leaves_qty],
            status=state.status,
        )

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
                    self._reject(ts, state.account, state.client_order_id, "new", "", problem, why)
                )
                continue
            vid, qty, cum = state.venue_order_id, state.qty, state.cum_qty
            order = BookOrder(
                state.account,
                state.client_order_id,
                vid,
                state.side,
                "limit",
                state.tif,
                state.price,
                qty,
                qty - cum,
                state.ts,
                cum=cum,
            )
            self._by_account.setdefault(state.account, {})[state.client_order_id] = order
            n = self._number(vid)
            if n is None or n in self._numbered:  # e.g. "-O01" beside "-O1"
                self._foreign[vid] = order
            else:
                self._numbered[n] = order
                if n >= self._next_order:  # sweep what came before, then go on after n
                    self._lingering += range(self._swept, self._next_order)
                    self._next_order = self._swept = n + 1
                self._lingering.append(n)
            (self._bids if state.side == "buy" else self._asks).rest(order, False)
        if self._keep_done is not None:
            self._sweep_at = self._next_sweep()
        return events

    def _restore_problem(self, state: OrderState) -> str:
        if not state.account:
            return Reason.ACCOUNT_REQUIRED
        if not state.client_order_id or not state.venue_order_id:
            return Reason.CLIENT_ORDER_ID_REQUIRED
        if state.side not in ("buy", "sell"):
            return Reason.SIDE_INVALID
        if state.order_type != "limit" or state.tif not in ("day", "gtc"):
            return Reason.TIF_INVALID
        problem = int_problem(state.qty, "qty") or int_problem(state.price, "price")
        if problem:
            return problem
        if type(state.cum_qty) is not int or not 0 <= state.cum_qty < state.qty:
            return Reason.QTY_BELOW_FILLED
        if state.client_order_id in self._by_account.get(state.account, {}):
            return Reason.DUPLICATE_CLIENT_ORDER_ID
        if self._by_vid(state.venue_order_id) is not None:
            return Reason.DUPLICATE_VENUE_ORDER_ID
        price = state.price
        assert price is not None
        best = self.best_ask() if state.side == "buy" else self.best_bid()
        if best is not None and (price >= best if state.side == "buy" else price <= best):
            return Reason.WOULD_CROSS
        return ""

    def integrity_problems(self) -> list[str]:
        """Walk every level and say what is inconsistent (empty when all is well): links,
        head and tail, level totals, the sorted keys, a crossed book. O(orders); for
        tests and for a venue's self-check after a restore."""
        problems = self._bids.problems() + self._asks.problems()
        bid, ask = self.best_bid(), self.best_ask()
        if bid is not None and ask is not None and bid >= ask:
            problems.append(f"crossed: bid {bid} >= ask {ask}")
        return problems

    # --- the core --------------------------------------------------------------------

    def _take(self, taker: BookOrder, limit_key: int, events: list[Event], ts: int) -> bool:
        """Match ``taker`` against the opposite side down to ``limit_key``; True when a
        self-match stopped it (its remainder must then be cancelled)."""
        opposite = self._asks if taker.side == "buy" else self._bids
        levels, keys, sign, touched = (
            opposite.levels,
            opposite.keys,
            opposite.sign,
            opposite.touched,
        )
        deltas, reports = self.deltas, self.reports
        pdec, qdec = self._pdec, self._qdec
        venue, symbol, prefix = self.venue, self.symbol, self._trade_prefix
        account, side = taker.account, taker.side
        maker_side: Side = "sell" if side == "buy" else "buy"
        remaining, cum = taker.leaves, taker.cum
        stopped = False
        while keys:
            key = keys[-1]
            if key < limit_key:
                break
            price = key * sign
            level = levels[price]
            if deltas:
                touched[price] = level
            px = pdec[price]
            maker = level.head
            while maker is not None:
                nxt = maker.next
                if maker.account == account:
                    policy = self._smp.get(account, self._smp_default)
                    if policy == "cancel_newest":
                        stopped = True
                        break
                    level.unlink(maker)
                    self._kill(maker, Reason.SELF_MATCH, events, ts)
                    if policy == "cancel_both":
                        stopped = True
                        break
                    maker = nxt
                    continue
                leaves = maker.leaves
                fill = leaves if leaves < remaining else remaining
                leaves -= fill
                remaining -= fill
                cum += fill
                maker.leaves = leaves
                maker.cum += fill
                level.qty -= fill
                n = self._next_trade
                self._next_trade = n + 1
                if reports:
                    trade_id = prefix + str(n)
                    qty = qdec[fill]
                    events += (
                        OrderFilled(
                            ts_event=ts,
                            venue=venue,
                            account=account,
                            client_order_id=taker.client_order_id,
                            venue_order_id=taker.venue_order_id,
                            symbol=symbol,
                            side=side,
                            exec_id=trade_id + "-t",
                            trade_id=trade_id,
                            qty=qty,
                            price=px,
                            liquidity="taker",
                            leaves_qty=qdec[remaining],
                            cum_qty=qdec[cum],
                        ),
                        OrderFilled(
                            ts_event=ts,
                            venue=venue,
                            account=maker.account,
                            client_order_id=maker.client_order_id,
                            venue_order_id=maker.venue_order_id,
                            symbol=symbol,
                            side=maker_side,
                            exec_id=trade_id + "-m",
                            trade_id=trade_id,
                            qty=qty,
                            price=px,
                            liquidity="maker",
                            leaves_qty=qdec[leaves],
                            cum_qty=qdec[maker.cum],
                        ),
                        TradePrinted(
                            ts_event=ts,
                            venue=venue,
                            symbol=symbol,
                            trade_id=trade_id,
                            price=px,
                            qty=qty,
                            aggressor=side,
                        ),
                    )
                if not leaves:  # the maker is the head: everything before it has gone
                    level.head = nxt
                    if nxt is None:
                        level.tail = None
                    else:
                        nxt.prev = None
                        maker.next = None
                    maker.level = None
                if not remaining:
                    break
                maker = nxt
            if level.head is None:
                keys.pop()
                del levels[price]
            if stopped or not remaining:
                break
        taker.leaves = remaining
        taker.cum = cum
        return stopped

    def _fillable(self, taker: BookOrder, limit_key: int) -> bool:
        """Could ``taker`` trade its whole quantity now (self-match policy included)?"""
        opposite = self._asks if taker.side == "buy" else self._bids
        levels, keys, sign = opposite.levels, opposite.keys, opposite.sign
        account = taker.account
        skip_own = self._smp.get(account, self._smp_default) == "cancel_oldest"
        need = taker.leaves
        for key in reversed(keys):
            if key < limit_key:
                return False
            maker = levels[key * sign].head
            while maker is not None:
                if maker.account != account:
                    need -= maker.leaves
                    if need <= 0:
                        return True
                elif not skip_own:
                    return False
                maker = maker.next
        return False

    def _kill(
        self, order: BookOrder, reason: str, events: list[Event], ts: int, request_id: str = ""
    ) -> None:
        """Cancel the leaves of an order that does not rest (any more)."""
        cancelled = order.leaves
        order.cancelled += cancelled
        order.leaves = 0
        if self.reports:
            events.append(
                OrderCancelled(
                    ts_event=ts,
                    venue=self.venue,
                    account=order.account,
                    client_order_id=order.client_order_id,
                    venue_order_id=order.venue_order_id,
                    symbol=self.symbol,
                    cancelled_qty=self._qdec[cancelled],
                    cum_qty=self._qdec[order.cum],
                    reason=reason,
                    cancel_client_order_id=request_id,
                )
            )

    def _delta(self, ts: int) -> BookUpdated:
        # runs after every operation: plain loops (no zip, no comprehensions), no sort
        # for the usual single level
        pdec, qdec = self._pdec, self._qdec
        bids: list[BookLevel] = []
        touched = self._bids.touched
        if touched:
            changed = sorted(touched.items(), reverse=True) if len(touched) > 1 else touched.items()
            for price, level in changed:
                bids.append((pdec[price], qdec[level.qty]))
            touched.clear()
        asks: list[BookLevel] = []
        touched = self._asks.touched
        if touched:
            changed = sorted(touched.items()) if len(touched) > 1 else touched.items()
            for price, level in changed:
                asks.append((pdec[price], qdec[level.qty]))
            touched.clear()
        self._book_seq += 1
        return BookUpdated(
            ts_event=ts,
            venue=self.venue,
            symbol=self.symbol,
            book_seq=self._book_seq,
            snapshot=False,
            bids=bids,
            asks=asks,
        )

    def _find(self, account: str, client_order_id: str, venue_order_id: str) -> BookOrder | None:
        if venue_order_id:
            found = self._by_vid(venue_order_id)
            return found if found is not None and found.account == account else None
        ids = self._by_account.get(account)
        return None if ids is None else ids.get(client_order_id)

    def _number(self, venue_order_id: str) -> int | None:
        """``n`` of ``<prefix>-O<n>``; None for another shape."""
        digits = venue_order_id[len(self._order_prefix) :]
        if venue_order_id.startswith(self._order_prefix) and digits.isascii() and digits.isdigit():
            return int(digits)
        return None

    def _by_vid(self, venue_order_id: str) -> BookOrder | None:
        n = self._number(venue_order_id)
        if n is not None:
            found = self._numbered.get(n)
            if found is not None and found.venue_order_id == venue_order_id:
                return found
        return self._foreign.get(venue_order_id)

    def _sweep(self) -> None:
        """Forget the done orders older than the ``keep_done`` newest: their lookups
        return None from now on, their client_order_ids stay taken (mapped to None)."""
        assert self._keep_done is not None
        numbered, by_account = self._numbered, self._by_account
        end = self._next_order - self._keep_done
        lingering: list[int] = []
        for n in [*self._lingering, *range(self._swept, end)]:
            order = numbered.get(n)
            if order is None:
                continue
            if order.leaves:
                lingering.append(n)
                continue
            del numbered[n]
            ids = by_account[order.account]
            ids[order.client_order_id] = None
            for alias in order.aliases or ():
                ids[alias] = None
        self._swept = max(self._swept, end)
        self._lingering = lingering
        self._sweep_at = self._next_sweep()

    def _next_sweep(self) -> int:
        assert self._keep_done is not None
        return self._swept + self._keep_done + self._sweep_batch

    def _reject(
        self,
        ts: int,
        account: str,
        client_order_id: str,
        request: RequestKind,
        orig_client_order_id: str,
        reason: str,
        why: str,
    ) -> OrderRejected:
        verb = {"new": "submit", "cancel": "cancel", "replace": "replace"}[request]
        return OrderRejected(
            ts_event=ts,
            venue=self.venue,
            account=account,
            client_order_id=client_order_id,
            symbol=self.symbol,
            request=request,
            orig_client_order_id=orig_client_order_id,
            reason=reason,
            message=f"Cannot {verb} order: {why}",
        )

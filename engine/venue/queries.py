"""The read side of a book: prices, depth, snapshots, order states and a self-check.

:class:`BookQueries` is the base class of :class:`~engine.venue.book.OrderBook`: the
queries read the state the requests change (the two sides, the order index, the
counters) and never change it. Best prices and depth are O(levels asked for); order
lookups O(1); :meth:`BookQueries.open_orders`, :meth:`BookQueries.orders_of` and
:meth:`BookQueries.integrity_problems` O(orders).
"""

from __future__ import annotations

from decimal import Decimal

from engine.bus.events import BookLevel, BookUpdated
from engine.venue.levels import BookOrder, BookSide, OrderState
from engine.venue.matching import Matcher
from engine.venue.orders_index import OrderIndex
from engine.venue.protocol import OrderStatus
from engine.venue.reports import ReportBuilder


class BookQueries:
    """What an :class:`~engine.venue.book.OrderBook` answers without changing."""

    _bids: BookSide
    _asks: BookSide
    _orders: OrderIndex
    _matcher: Matcher
    _build: ReportBuilder

    @property
    def next_order_number(self) -> int:
        """The ``n`` of the next ``<prefix>-O<n>``; persist it to continue after a restart."""
        return self._orders.next_number

    @property
    def next_trade_number(self) -> int:
        """The ``n`` of the next ``<prefix>-T<n>``."""
        return self._matcher.trades.next

    @property
    def book_seq(self) -> int:
        """Sequence number of the last emitted delta (a snapshot carries it too)."""
        return self._build.book_seq

    def best_bid(self) -> int | None:
        """Best bid in ticks, None when there is none."""
        return self._bids.best()

    def best_ask(self) -> int | None:
        """Best ask in ticks, None when there is none."""
        return self._asks.best()

    def best_bid_price(self) -> Decimal | None:
        best = self.best_bid()
        return None if best is None else self._build.prices[best]

    def best_ask_price(self) -> Decimal | None:
        best = self.best_ask()
        return None if best is None else self._build.prices[best]

    def depth_ticks(self, levels: int = 10) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The best ``levels`` levels of each side, best first, as (ticks, lots)."""
        if levels <= 0:
            return [], []
        return self._bids.depth(levels), self._asks.depth(levels)

    def depth(self, levels: int = 10) -> tuple[list[BookLevel], list[BookLevel]]:
        """The best ``levels`` levels of each side, best first, as (price, qty) Decimals."""
        bids, asks = self.depth_ticks(levels)
        return self._build.levels(bids), self._build.levels(asks)

    def snapshot(self, ts: int) -> BookUpdated:
        """Every level, with the ``book_seq`` of the last delta (later deltas apply)."""
        return self._build.snapshot(ts)

    def order(
        self, account: str = "", client_order_id: str = "", *, venue_order_id: str = ""
    ) -> OrderState | None:
        """One order by ``venue_order_id`` (``account`` checked when given) or by
        ``account`` and any client_order_id it has had; None when unknown."""
        if venue_order_id:
            found = self._orders.by_vid(venue_order_id)
            if found is None or (account and found.account != account):
                return None
            return OrderState.of(found)
        found = self._orders.find(account, client_order_id, "")
        return None if found is None else OrderState.of(found)

    def orders_of(self, account: str, *, open_only: bool = True) -> list[OrderState]:
        """The orders of ``account`` in the order they were entered (only resting ones
        unless ``open_only`` is False)."""
        seen: dict[int, BookOrder] = {}
        for found in self._orders.by_account.get(account, {}).values():
            if found is not None and (not open_only or found.leaves):
                seen.setdefault(id(found), found)
        return [OrderState.of(o) for o in seen.values()]

    def open_orders(self) -> list[OrderState]:
        """Every resting order: bids best first, then asks best first, each level in
        time priority — what ``restore`` needs after a restart."""
        return [OrderState.of(o) for o in self._bids.orders() + self._asks.orders()]

    def status(self, state: OrderState) -> OrderStatus:
        """``state`` as the protocol's :class:`OrderStatus` (Decimals; ``fills`` empty:
        the book keeps no fills)."""
        return self._build.status(state)

    def integrity_problems(self) -> list[str]:
        """Walk every level and say what is inconsistent (empty when all is well): links,
        head and tail, level totals, the sorted keys, a crossed book. O(orders); for
        tests and for a venue's self-check after a restore."""
        problems = self._bids.problems() + self._asks.problems()
        bid, ask = self.best_bid(), self.best_ask()
        if bid is not None and ask is not None and bid >= ask:
            problems.append(f"crossed: bid {bid} >= ask {ask}")
        return problems

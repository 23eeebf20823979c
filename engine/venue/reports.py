"""The events a book emits, built from its integer state.

:class:`ReportBuilder` turns ticks and lots into the Decimals of the wire events
(through :class:`~engine.venue.instrument.DecimalCache`, a dict lookup instead of a
Decimal multiplication) and stamps the book's venue and symbol. Events carry only
``ts_event``; the publisher stamps the rest of the header. It also builds the L2 deltas
and snapshots and keeps their ``book_seq``.

The hot paths build their most frequent events inline on the builder's fields — the
fills and prints in :mod:`engine.venue.matching`, the acknowledgement of a resting
order and the cancel in :mod:`engine.venue.book` — with the same fields as the methods
here, looking their Decimals up in ``pdec``/``qdec`` (plain dicts) and falling back to
``prices``/``lots`` on a miss; everything else goes through these methods.
"""

from __future__ import annotations

from engine.bus.events import (
    BookLevel,
    BookUpdated,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    OrderReplaced,
    RequestKind,
)
from engine.venue.instrument import DecimalCache, InstrumentSpec
from engine.venue.levels import BookOrder, BookSide, OrderState
from engine.venue.protocol import OrderStatus

_VERBS: dict[str, str] = {"new": "submit", "cancel": "cancel", "replace": "replace"}


class ReportBuilder:
    """Builds the events of one book (``venue``, ``symbol``; ``prices``/``lots`` turn
    ticks/lots into Decimals, ``pdec``/``qdec`` are their plain dicts) and numbers its
    L2 deltas (``book_seq``: the last one's)."""

    __slots__ = ("asks", "bids", "book_seq", "lots", "pdec", "prices", "qdec", "symbol", "venue")

    def __init__(
        self, spec: InstrumentSpec, venue: str, bids: BookSide, asks: BookSide, book_seq: int
    ) -> None:
        self.venue = venue
        self.symbol = spec.symbol
        self.bids = bids
        self.asks = asks
        self.book_seq = book_seq
        self.prices = DecimalCache(spec.tick_size)
        self.lots = DecimalCache(spec.lot_size)
        self.pdec = self.prices.values
        self.qdec = self.lots.values

    def accepted(self, order: BookOrder, ts: int) -> OrderAccepted:
        price = order.price
        return OrderAccepted(
            ts_event=ts,
            venue=self.venue,
            account=order.account,
            client_order_id=order.client_order_id,
            venue_order_id=order.venue_order_id,
            symbol=self.symbol,
            side=order.side,
            order_type=order.order_type,
            tif=order.tif,
            qty=self.lots[order.qty],
            price=None if price is None else self.prices[price],
        )

    def cancelled(
        self, order: BookOrder, cancelled: int, reason: str, request_id: str, ts: int
    ) -> OrderCancelled:
        """``order`` lost ``cancelled`` lots (already taken off its leaves)."""
        lots = self.lots
        return OrderCancelled(
            ts_event=ts,
            venue=self.venue,
            account=order.account,
            client_order_id=order.client_order_id,
            venue_order_id=order.venue_order_id,
            symbol=self.symbol,
            cancelled_qty=lots[cancelled],
            cum_qty=lots[order.qty - order.leaves - order.cancelled],
            reason=reason,
            cancel_client_order_id=request_id,
        )

    def replaced(
        self, order: BookOrder, orig_client_order_id: str, priority_kept: bool, ts: int
    ) -> OrderReplaced:
        price = order.price
        assert price is not None  # only limit orders rest
        return OrderReplaced(
            ts_event=ts,
            venue=self.venue,
            account=order.account,
            client_order_id=order.client_order_id,
            orig_client_order_id=orig_client_order_id,
            venue_order_id=order.venue_order_id,
            symbol=self.symbol,
            qty=self.lots[order.qty],
            price=self.prices[price],
            leaves_qty=self.lots[order.leaves],
            priority_kept=priority_kept,
        )

    def rejected(
        self,
        ts: int,
        account: str,
        client_order_id: str,
        request: RequestKind,
        orig_client_order_id: str,
        reason: str,
        why: str,
    ) -> OrderRejected:
        return OrderRejected(
            ts_event=ts,
            venue=self.venue,
            account=account,
            client_order_id=client_order_id,
            symbol=self.symbol,
            request=request,
            orig_client_order_id=orig_client_order_id,
            reason=reason,
            message=f"Cannot {_VERBS[request]} order: {why}",
        )

    def delta(self, ts: int) -> BookUpdated:
        """The next delta: the levels the sides touched since the last one (qty 0: gone),
        best first; clears ``touched``."""
        # runs after every operation: plain loops (no zip, no comprehensions), no sort
        # for the usual single level
        pdec, qdec = self.pdec, self.qdec
        bid_levels: list[BookLevel] = []
        touched = self.bids.touched
        if touched:
            changed = sorted(touched.items(), reverse=True) if len(touched) > 1 else touched.items()
            for price, level in changed:
                try:
                    bid_levels.append((pdec[price], qdec[level.qty]))
                except KeyError:
                    bid_levels.append((self.prices[price], self.lots[level.qty]))
            touched.clear()
        ask_levels: list[BookLevel] = []
        touched = self.asks.touched
        if touched:
            changed = sorted(touched.items()) if len(touched) > 1 else touched.items()
            for price, level in changed:
                try:
                    ask_levels.append((pdec[price], qdec[level.qty]))
                except KeyError:
                    ask_levels.append((self.prices[price], self.lots[level.qty]))
            touched.clear()
        self.book_seq += 1
        return BookUpdated(
            ts_event=ts,
            venue=self.venue,
            symbol=self.symbol,
            book_seq=self.book_seq,
            snapshot=False,
            bids=bid_levels,
            asks=ask_levels,
        )

    def snapshot(self, ts: int) -> BookUpdated:
        """Every level, with the ``book_seq`` of the last delta."""
        bids, asks = self.bids, self.asks
        return BookUpdated(
            ts_event=ts,
            venue=self.venue,
            symbol=self.symbol,
            book_seq=self.book_seq,
            snapshot=True,
            bids=self.levels(bids.depth(len(bids.keys))),
            asks=self.levels(asks.depth(len(asks.keys))),
        )

    def levels(self, levels: list[tuple[int, int]]) -> list[BookLevel]:
        """(ticks, lots) → (price, qty) Decimals."""
        p, q = self.prices, self.lots
        return [(p[t], q[n]) for t, n in levels]

    def status(self, state: OrderState) -> OrderStatus:
        q = self.lots
        return OrderStatus(
            account=state.account,
            client_order_id=state.client_order_id,
            venue_order_id=state.venue_order_id,
            symbol=self.symbol,
            side=state.side,
            order_type=state.order_type,
            tif=state.tif,
            qty=q[state.qty],
            price=None if state.price is None else self.prices[state.price],
            cum_qty=q[state.cum_qty],
            leaves_qty=q[state.leaves_qty],
            status=state.status,
        )

"""Random streams of adds, cancels, replaces and market orders keep the book consistent.

After every operation: the book is not crossed; every order's quantity is conserved
(filled + resting + cancelled = its quantity, as accepted or last replaced) and agrees
with the events; nothing is negative; depth is the sum of the resting orders per level;
the deltas, applied to the first snapshot, give the current depth; buy fills = sell
fills = printed volume; a rejection leaves the book as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.bus.events import (
    BookUpdated,
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    TradePrinted,
)
from engine.venue.book import OrderBook
from engine.venue.instrument import InstrumentSpec

SPEC = InstrumentSpec("PROP", Decimal("0.05"), Decimal("10"))
ACCOUNTS = ("a", "b", "c")
POLICIES = ("cancel_newest", "cancel_oldest", "cancel_both")

accounts = st.sampled_from(ACCOUNTS)
sides = st.sampled_from(("buy", "sell"))
prices = st.integers(98, 102)
lots = st.integers(1, 8)
ops = st.one_of(
    st.tuples(st.just("add"), accounts, sides, lots, prices, st.sampled_from(("day", "gtc"))),
    st.tuples(st.just("add"), accounts, sides, lots, prices, st.sampled_from(("ioc", "fok"))),
    st.tuples(st.just("market"), accounts, sides, lots, st.sampled_from(("day", "ioc", "fok"))),
    st.tuples(st.just("cancel"), st.integers(0, 999), st.booleans()),
    st.tuples(st.just("replace"), st.integers(0, 999), st.integers(0, 12), st.none() | prices),
    st.tuples(st.just("bad"), accounts, st.integers(-2, 0), st.none() | st.integers(-5, 0)),
)


class Ledger:
    """What the events say, checked against what the book says."""

    def __init__(self, book: OrderBook) -> None:
        self.book = book
        self.qty: dict[str, int] = {}
        self.filled: dict[str, int] = {}
        self.cancelled: dict[str, int] = {}
        self.side_filled = {"buy": 0, "sell": 0}
        self.printed = 0
        self.exec_ids: set[str] = set()
        snap = book.snapshot(0)
        self.seq = snap.book_seq
        self.l2: dict[str, dict[Decimal, Decimal]] = {
            "bids": dict(snap.bids),
            "asks": dict(snap.asks),
        }

    def lots(self, qty: Decimal) -> int:
        n, reason = SPEC.qty_lots(qty) if qty else (0, "")
        assert not reason, (qty, reason)
        return n

    def apply(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, OrderAccepted):
                self.qty[event.venue_order_id] = self.lots(event.qty)
                self.filled[event.venue_order_id] = 0
                self.cancelled[event.venue_order_id] = 0
            elif isinstance(event, OrderReplaced):
                vid = event.venue_order_id
                self.qty[vid] = self.lots(event.qty)
                assert self.lots(event.leaves_qty) == self.qty[vid] - self.filled[vid]
            elif isinstance(event, OrderFilled):
                vid = event.venue_order_id
                assert event.qty > 0
                self.filled[vid] += self.lots(event.qty)
                self.side_filled[event.side] += self.lots(event.qty)
                assert self.lots(event.cum_qty) == self.filled[vid]
                assert self.lots(event.leaves_qty) == self.qty[vid] - self.filled[vid]
                assert event.exec_id not in self.exec_ids
                self.exec_ids.add(event.exec_id)
            elif isinstance(event, OrderCancelled):
                vid = event.venue_order_id
                assert event.cancelled_qty > 0
                self.cancelled[vid] += self.lots(event.cancelled_qty)
                assert self.lots(event.cum_qty) == self.filled[vid]
            elif isinstance(event, TradePrinted):
                self.printed += self.lots(event.qty)
            elif isinstance(event, BookUpdated):
                assert not event.snapshot and event.book_seq == self.seq + 1
                self.seq = event.book_seq
                for name, levels in (("bids", event.bids), ("asks", event.asks)):
                    for price, qty in levels:
                        if qty:
                            self.l2[name][price] = qty
                        else:
                            self.l2[name].pop(price, None)
        if any(isinstance(e, BookUpdated) for e in events):
            assert isinstance(events[-1], BookUpdated)  # last, and only one
            assert sum(isinstance(e, BookUpdated) for e in events) == 1

    def check(self) -> None:
        book = self.book
        assert book.integrity_problems() == []
        bid, ask = book.best_bid(), book.best_ask()
        assert bid is None or ask is None or bid < ask, (bid, ask)
        resting: dict[tuple[str, int], int] = {}
        for state in book.open_orders():
            assert state.leaves_qty > 0 and state.price is not None
            key = (state.side, state.price)
            resting[key] = resting.get(key, 0) + state.leaves_qty
        bids, asks = book.depth_ticks(1 << 30)
        assert bids == sorted(((p, q) for (s, p), q in resting.items() if s == "buy"), reverse=True)
        assert asks == sorted((p, q) for (s, p), q in resting.items() if s == "sell")
        for vid, qty in self.qty.items():
            found = book.order(venue_order_id=vid)
            assert found is not None
            assert min(found.cum_qty, found.leaves_qty, found.cancelled_qty) >= 0
            assert found.qty == qty
            assert (found.cum_qty, found.cancelled_qty) == (self.filled[vid], self.cancelled[vid])
            assert found.cum_qty + found.leaves_qty + found.cancelled_qty == qty
            assert found.status in ("accepted", "partially_filled", "filled", "cancelled")
        if book.deltas:
            depth = book.depth(1 << 30)
            assert sorted(self.l2["bids"].items(), reverse=True) == depth[0]
            assert sorted(self.l2["asks"].items()) == depth[1]
        assert self.side_filled["buy"] == self.side_filled["sell"] == self.printed


Step = tuple[list[Event], Any]
"""The events of one operation and the book's state before it."""


def drive(book: OrderBook, stream: list[tuple[Any, ...]]) -> Iterator[Step]:
    """Apply ``stream`` to ``book``; cancels and replaces aim at orders seen so far."""
    known: list[tuple[str, str, str]] = []  # (account, client_order_id, venue_order_id)
    for i, op in enumerate(stream):
        ts, new_id = 1_000 + i, f"n{i}"
        before = (book.depth_ticks(1 << 30), book.open_orders(), book.book_seq)
        kind, account = op[0], ""
        if kind == "add":
            _, account, side, qty, price, tif = op
            events = book.submit(account, new_id, side, qty, price, tif=tif, ts=ts)
        elif kind == "market":
            _, account, side, qty, tif = op
            events = book.submit(account, new_id, side, qty, order_type="market", tif=tif, ts=ts)
        elif kind == "bad":
            _, account, qty, price = op
            events = book.submit(account, new_id, "buy", qty, price, ts=ts)
            assert isinstance(events[0], OrderRejected)
        elif known:
            account, coid, vid = known[op[1] % len(known)]
            if kind == "cancel" and op[2]:
                events = book.cancel(account, venue_order_id=vid, ts=ts)
            elif kind == "cancel":
                events = book.cancel(account, coid, ts=ts)
            else:
                new_id = f"r{i}"
                events = book.replace(account, coid, new_id, op[2], op[3], ts=ts)
        else:
            continue
        state = book.order(account, new_id)
        if state is not None:
            known.append((account, new_id, state.venue_order_id))
        yield events, before


@settings(max_examples=300, deadline=None)
@given(
    stream=st.lists(ops, min_size=5, max_size=80),
    policies=st.dictionaries(accounts, st.sampled_from(POLICIES)),
    default=st.sampled_from(POLICIES),
)
def test_book_when_random_operations_then_invariants_hold(
    stream: list[tuple[Any, ...]], policies: dict[str, Any], default: Any
) -> None:
    book = OrderBook(SPEC, self_match=policies, self_match_default=default, deltas=True)
    ledger = Ledger(book)

    for events, before in drive(book, stream):
        if len(events) == 1 and isinstance(events[0], OrderRejected):
            assert (book.depth_ticks(1 << 30), book.open_orders(), book.book_seq) == before
        ledger.apply(events)
        ledger.check()


@settings(max_examples=100, deadline=None)
@given(stream=st.lists(ops, max_size=60))
def test_book_when_reports_off_then_same_book_and_deltas(stream: list[tuple[Any, ...]]) -> None:
    loud = OrderBook(SPEC, deltas=True)
    quiet = OrderBook(SPEC, deltas=True, reports=False)

    loud_steps = [e for events, _ in drive(loud, stream) for e in events]
    quiet_steps = [e for events, _ in drive(quiet, stream) for e in events]

    assert quiet_steps == [e for e in loud_steps if isinstance(e, BookUpdated | OrderRejected)]
    assert quiet.open_orders() == loud.open_orders()
    assert quiet.next_trade_number == loud.next_trade_number

"""The integer side of a book: its orders and price levels.

:class:`~engine.venue.book.OrderBook` keeps prices as integer ticks and quantities as
integer lots (see :mod:`engine.venue.instrument`), so matching is exact and cheap;
Decimals appear only in the events it builds. This module holds:

- :class:`BookOrder` and :class:`PriceLevel` — one FIFO per price as an intrusive doubly
  linked list: append at the tail, match from the head, unlink from anywhere, all O(1)
  and with no lazy garbage to skip or compact;
- :class:`BookSide` — one side's levels by price, their keys sorted best last, and the
  levels an operation changed (for L2 deltas);
- :class:`OrderState` — the read-only view of an order the book hands out (and takes
  back in ``restore``).

The book's hot paths (:mod:`engine.venue.book`, :mod:`engine.venue.matching`) inline the
methods below on these fields; the methods serve the rarer paths and keep the rules in
one readable place.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import Literal

import msgspec

from engine.bus.events import OrderType, Side, TimeInForce

OrderStatusName = Literal["accepted", "partially_filled", "filled", "cancelled"]


class BookOrder(msgspec.Struct, eq=False, gc=False):
    """One order of a book, in ticks and lots; mutable, owned by the book.

    Invariant: ``cum + leaves + cancelled == qty`` — the filled quantity is not stored,
    it is :attr:`cum`. ``leaves > 0`` exactly while the order rests (a remainder that
    may not rest is cancelled within the same operation), and ``cancelled`` is 0 until
    the order leaves the book.

    A msgspec struct: creating one costs about a third of a ``__slots__`` class with an
    ``__init__`` (which would also be tracked by the garbage collector), though a field
    store costs ~4x more (msgspec's ``__setattr__`` keeps CPython from specializing it);
    with a ``__slots__`` class the bench's matching took ~20% more instructions. So the
    hot paths pass ``prev`` to the constructor and store as few fields as they can.
    Orders are not tracked by the garbage collector (``gc=False``: a book keeps up to
    ``keep_done`` + resting orders, and traversing them cost ~10% of the matching time).
    Their links form cycles only while an order rests; the book breaks those when it
    unlinks an order and when it is itself freed.
    """

    account: str
    client_order_id: str
    venue_order_id: str
    side: Side
    order_type: OrderType
    tif: TimeInForce
    price: int | None
    """Limit price in ticks; None for a market order."""
    qty: int
    """Total quantity in lots, filled part included (a replace changes it)."""
    leaves: int
    ts: int
    """When it was accepted, or re-queued by a replace (UTC ns)."""
    prev: BookOrder | None = None
    """The order before it in its level (None at the head or when it does not rest)."""
    next: BookOrder | None = None
    cancelled: int = 0
    aliases: list[str] | None = None
    """Its earlier client_order_ids, after replaces."""

    @property
    def cum(self) -> int:
        """Filled quantity in lots."""
        return self.qty - self.leaves - self.cancelled


class PriceLevel:
    """The orders resting at one price, oldest (first to trade) at ``head``; ``qty`` is
    the sum of their ``leaves``, kept up to date by every change.

    A ``__slots__`` class rather than a struct: levels are few and long-lived but their
    fields change on every operation, and a slot store is the cheapest store there is.
    """

    __slots__ = ("head", "price", "qty", "tail")

    def __init__(self, price: int) -> None:
        self.price = price
        self.qty = 0
        self.head: BookOrder | None = None
        self.tail: BookOrder | None = None

    def append(self, order: BookOrder) -> None:
        """Queue ``order`` at the back (it must not rest anywhere); adds its leaves."""
        tail = self.tail
        if tail is None:
            self.head = order
        else:
            tail.next = order
            order.prev = tail
        self.tail = order
        self.qty += order.leaves

    def unlink(self, order: BookOrder) -> None:
        """Take ``order`` out of the queue, wherever it is; subtracts its leaves."""
        prev, nxt = order.prev, order.next
        if prev is None:
            self.head = nxt
        else:
            prev.next = nxt
            order.prev = None
        if nxt is None:
            self.tail = prev
        else:
            nxt.prev = prev
            order.next = None
        self.qty -= order.leaves

    def orders(self) -> list[BookOrder]:
        """The orders in time priority."""
        out: list[BookOrder] = []
        order = self.head
        while order is not None:
            out.append(order)
            order = order.next
        return out


class BookSide:
    """One side of a book: its levels by price; their keys (``price`` for bids,
    ``-price`` for asks) sorted ascending, so the best level is ``keys[-1]``, a sweep pops
    from the end and a level near the touch inserts near the end; and ``touched``, the
    levels changed since the last delta (a gone level keeps qty 0)."""

    __slots__ = ("buy", "keys", "levels", "sign", "touched")

    def __init__(self, buy: bool) -> None:
        self.buy = buy
        self.sign = 1 if buy else -1
        self.levels: dict[int, PriceLevel] = {}
        self.keys: list[int] = []
        self.touched: dict[int, PriceLevel] = {}

    def best(self) -> int | None:
        """Best price in ticks, None when the side is empty."""
        return self.keys[-1] * self.sign if self.keys else None

    def level(self, price: int) -> PriceLevel:
        """The level at ``price``, made (empty) if there is none."""
        level = self.levels.get(price)
        if level is None:
            level = self.levels[price] = PriceLevel(price)
            insort(self.keys, price * self.sign)
        return level

    def rest(self, order: BookOrder, track: bool) -> None:
        """Queue ``order`` at the back of its price level (a new level if need be)."""
        price = order.price
        assert price is not None
        level = self.level(price)
        level.append(order)
        if track:
            self.touched[price] = level

    def withdraw(self, order: BookOrder, track: bool) -> None:
        """Take a resting order out of its level, dropping the level if it empties."""
        price = order.price
        assert price is not None
        level = self.levels[price]
        level.unlink(order)
        if level.head is None:
            self.drop(level)
        if track:
            self.touched[price] = level

    def drop(self, level: PriceLevel) -> None:
        """Forget an empty level."""
        del self.levels[level.price]
        keys, key = self.keys, level.price * self.sign
        if keys[-1] == key:
            keys.pop()
        else:
            del keys[bisect_left(keys, key)]

    def depth(self, levels: int) -> list[tuple[int, int]]:
        """(ticks, lots) of the best ``levels`` levels, best first."""
        sign, by_price = self.sign, self.levels
        return [(k * sign, by_price[k * sign].qty) for k in self.keys[: -levels - 1 : -1]]

    def orders(self) -> list[BookOrder]:
        """The resting orders, best level first, each level in time priority."""
        out: list[BookOrder] = []
        for key in reversed(self.keys):
            out += self.levels[key * self.sign].orders()
        return out

    def problems(self) -> list[str]:
        """What is inconsistent in this side (empty when all is well); O(orders)."""
        name, sign = ("bid", 1) if self.buy else ("ask", -1)
        out: list[str] = []
        if self.keys != sorted(self.keys) or sorted(k * sign for k in self.keys) != sorted(
            self.levels
        ):
            out.append(f"{name} keys {self.keys} do not match levels {sorted(self.levels)}")
        for price, level in self.levels.items():
            total, prev, order = 0, None, level.head
            while order is not None:
                if order.prev is not prev or order.leaves <= 0 or order.cancelled:
                    out.append(f"{name} {price}: bad links or leaves at {order.venue_order_id}")
                if order.price != price or (order.side == "buy") != self.buy:
                    out.append(f"{name} {price}: misplaced {order.venue_order_id}")
                total += order.leaves
                prev, order = order, order.next
            if level.tail is not prev or level.head is None or level.price != price:
                out.append(f"{name} {price}: head/tail out of step")
            if total != level.qty:
                out.append(f"{name} {price}: qty {level.qty} != orders {total}")
        return out

    def release(self) -> None:
        """Break every link (orders are invisible to the garbage collector)."""
        for level in self.levels.values():
            order = level.head
            while order is not None:
                nxt = order.next
                order.prev = order.next = None
                order = nxt
            level.head = level.tail = None


class OrderState(msgspec.Struct, frozen=True, kw_only=True):
    """A read-only view of one order, in ticks and lots (``OrderBook.order`` …).

    Also the input of ``OrderBook.restore``, which reads the identity, ``side``, ``tif``,
    ``price``, ``qty``, ``cum_qty`` and ``ts`` and derives the rest."""

    account: str
    client_order_id: str
    venue_order_id: str
    side: Side
    order_type: OrderType = "limit"
    tif: TimeInForce = "day"
    price: int | None
    qty: int
    cum_qty: int = 0
    leaves_qty: int = 0
    cancelled_qty: int = 0
    status: OrderStatusName = "accepted"
    ts: int = 0

    @classmethod
    def of(cls, order: BookOrder) -> OrderState:
        cum = order.qty - order.leaves - order.cancelled
        if order.leaves:
            status: OrderStatusName = "partially_filled" if cum else "accepted"
        else:
            status = "cancelled" if order.cancelled else "filled"
        return cls(
            account=order.account,
            client_order_id=order.client_order_id,
            venue_order_id=order.venue_order_id,
            side=order.side,
            order_type=order.order_type,
            tif=order.tif,
            price=order.price,
            qty=order.qty,
            cum_qty=cum,
            leaves_qty=order.leaves,
            cancelled_qty=order.cancelled,
            status=status,
            ts=order.ts,
        )

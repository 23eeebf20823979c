"""Bounded view state of the "Orders & book" page: books (Clone pattern over the
venue's snapshots and deltas), the blotter of orders and fills, positions.

Fed by the venue (venue.book, venue.trade, venue.order) and the order manager
(exec.position) through the bridge's one subscription, completed by its GetBook /
ListOrders / GetPositions replies. Everything is bounded (see the ``MAX_*`` limits).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

from engine.bus.commands.orders import OrderRow, PositionRow
from engine.bus.commands.venue import BookSnapshot
from engine.bus.events import (
    BookUpdated,
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    PositionChanged,
    QuoteUpdated,
    TradePrinted,
)
from engine.venue.mirror import BookMirror
from ui.state import MAX_SYMBOLS

MAX_TRADES = 50
"""Venue trades kept per symbol."""
MAX_ORDERS = 500
"""Orders in the blotter; beyond it the oldest ended order goes (else the oldest)."""
MAX_FILLS = 100
MAX_POSITIONS = 1_000
ZERO = Decimal(0)
OPEN_STATUSES = ("pending_new", "accepted", "partially_filled")
_RANK = {"pending_new": 0, "accepted": 1, "partially_filled": 2}  # ended orders rank 3
_REPORTS = (OrderAccepted, OrderRejected, OrderFilled, OrderCancelled, OrderReplaced)


@dataclass(slots=True)
class BookView(BookMirror):
    """One venue book on the page: the mirror (:mod:`engine.venue.mirror`), its tape and
    whether the venue halted it."""

    halted: bool | None = None
    """From the last ``GetBook`` (bus updates do not say); None while unknown."""
    trades: deque[TradePrinted] = field(default_factory=lambda: deque(maxlen=MAX_TRADES))
    tape_version: int = 0
    """Bumped when a trade prints."""

    def on_snapshot(self, snapshot: BookSnapshot) -> bool:
        self.halted = snapshot.halted
        return BookMirror.on_snapshot(self, snapshot)


@dataclass(slots=True)
class OrderView:
    """One blotter row. ``key`` is the first id this console saw for the order: it stays
    when a replace gives the order a new ``client_order_id``."""

    key: str
    client_order_id: str
    account: str
    symbol: str
    side: str
    order_type: str
    tif: str
    qty: Decimal
    price: Decimal | None
    status: str
    filled_qty: Decimal = ZERO
    avg_price: Decimal | None = None
    reason: str = ""
    ts_created: int = 0
    ts_updated: int = 0
    rev: int = 0
    """The blotter's version when this row last changed (pages send changed rows only)."""
    ids: list[str] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(slots=True)
class Blotter:
    """The latest orders by execution reports and ``ListOrders``; the latest own fills."""

    orders: dict[str, OrderView] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    """Every client_order_id an order had → its row key."""
    fills: deque[OrderFilled] = field(default_factory=lambda: deque(maxlen=MAX_FILLS))
    loaded: bool = False
    """True once a ``ListOrders`` reply was merged (a late joiner is complete)."""
    version: int = 0
    fills_version: int = 0
    _exec_ids: set[str] = field(default_factory=set)

    def find(self, client_order_id: str) -> OrderView | None:
        key = self.aliases.get(client_order_id)
        return None if key is None else self.orders.get(key)

    def on_report(self, r: Event) -> None:
        if isinstance(r, OrderRejected):
            self._rejected(r)
            return
        assert isinstance(r, OrderAccepted | OrderFilled | OrderCancelled | OrderReplaced)
        aimed = r.orig_client_order_id if isinstance(r, OrderReplaced) else r.client_order_id
        o = self.find(aimed) or self.find(r.client_order_id) or self._add(_unseen(r, aimed))
        if isinstance(r, OrderAccepted):
            if o.status == "pending_new":
                o.status = "accepted"
        elif isinstance(r, OrderFilled):
            self._filled(o, r)
        elif isinstance(r, OrderCancelled):
            o.filled_qty = max(o.filled_qty, r.cum_qty)
            if o.is_open:
                expired = r.reason in ("expired", "unknown_at_venue")
                o.status, o.reason = ("expired" if expired else "cancelled"), r.reason
        else:
            self._alias(o, r.client_order_id)
            o.client_order_id, o.qty, o.price = r.client_order_id, r.qty, r.price
            if o.is_open and r.leaves_qty == 0:
                o.status = "filled"
        self._touch(o, r.ts_event)

    def load(self, rows: list[OrderRow]) -> None:
        """Merge a ``ListOrders`` reply: a row the view knows is taken when it is at least
        as far along (filled quantity, then status) as what the live reports made of it."""
        for row in reversed(rows):  # oldest first
            o = self.find(row.client_order_id) or self.find(row.orig_client_order_id)
            if o is None:
                o = self._add(_row_view(row))
            elif (row.filled_qty, _RANK.get(row.status, 3)) < (o.filled_qty, _rank(o)):
                continue
            for cid in (row.orig_client_order_id, row.client_order_id):
                if cid:
                    self._alias(o, cid)
            o.client_order_id, o.side = row.client_order_id, row.side
            o.order_type, o.tif = row.order_type, row.tif
            o.qty, o.price, o.status, o.filled_qty = row.qty, row.price, row.status, row.filled_qty
            o.avg_price, o.reason, o.ts_created = row.avg_price, row.reason, row.ts_created
            self._touch(o, row.ts_updated)
        self.loaded = True
        self.version += 1

    def _rejected(self, r: OrderRejected) -> None:
        if r.request != "new":  # a refused cancel or replace leaves the order as it was
            o = self.find(r.orig_client_order_id)
            if o is not None:
                o.reason = f"{r.request} refused: {r.reason}"
                self._touch(o, r.ts_event)
            return
        if r.reason == "duplicate_client_order_id":
            return  # a resend: the venue has the order already
        o = self.find(r.client_order_id) or self._add(_unseen(r, r.client_order_id))
        if o.status == "pending_new":
            o.status, o.reason = "rejected", r.reason
        self._touch(o, r.ts_event)

    def _filled(self, o: OrderView, f: OrderFilled) -> None:
        if f.exec_id not in self._exec_ids:
            if len(self.fills) == self.fills.maxlen:
                self._exec_ids.discard(self.fills[0].exec_id)
            self.fills.append(f)
            self._exec_ids.add(f.exec_id)
            self.fills_version += 1
        if f.cum_qty <= o.filled_qty:
            return  # counted already (by ListOrders or an earlier copy)
        done = f.cum_qty - o.filled_qty
        o.avg_price = ((o.avg_price or ZERO) * o.filled_qty + done * f.price) / f.cum_qty
        o.filled_qty = f.cum_qty
        if o.is_open:
            o.status = "filled" if f.leaves_qty == 0 else "partially_filled"

    def _add(self, o: OrderView) -> OrderView:
        self.orders[o.key] = o
        self.aliases[o.key] = o.key
        if len(self.orders) > MAX_ORDERS:
            ended = (v for v in self.orders.values() if not v.is_open and v is not o)
            oldest = min(ended, key=lambda v: v.ts_created, default=None)
            gone = oldest or min(self.orders.values(), key=lambda v: v.ts_created)
            for alias in gone.ids:
                self.aliases.pop(alias, None)
            del self.orders[gone.key]
        return o

    def _alias(self, o: OrderView, cid: str) -> None:
        if self.aliases.get(cid) != o.key:
            self.aliases[cid] = o.key
            o.ids.append(cid)

    def _touch(self, o: OrderView, ts: int) -> None:
        self.version += 1
        o.rev, o.ts_updated = self.version, max(o.ts_updated, ts)


def _unseen(r: Event, cid: str) -> OrderView:
    """A row for an order first heard of by a report (its accept, or later ones)."""
    assert isinstance(r, _REPORTS)
    price = r.price if isinstance(r, OrderAccepted | OrderReplaced) else None
    if isinstance(r, OrderAccepted | OrderReplaced):
        qty = r.qty
    elif isinstance(r, OrderFilled):
        qty = r.cum_qty + r.leaves_qty
    elif isinstance(r, OrderCancelled):
        qty = r.cum_qty + r.cancelled_qty
    else:
        qty = ZERO
    return OrderView(
        key=cid,
        client_order_id=cid,
        account=r.account,
        symbol=r.symbol,
        side=getattr(r, "side", ""),
        order_type=getattr(r, "order_type", ""),
        tif=getattr(r, "tif", ""),
        qty=qty,
        price=price,
        status="pending_new",
        ts_created=r.ts_event,
        ids=[cid],
    )


def _row_view(row: OrderRow) -> OrderView:
    return OrderView(
        key=row.client_order_id,
        client_order_id=row.client_order_id,
        account=row.account,
        symbol=row.symbol,
        side=row.side,
        order_type=row.order_type,
        tif=row.tif,
        qty=row.qty,
        price=row.price,
        status=row.status,
        ts_created=row.ts_created,
        ids=[row.client_order_id],
    )


def _rank(o: OrderView) -> int:
    return _RANK.get(o.status, 3)


@dataclass(slots=True)
class PositionView:
    account: str
    symbol: str
    qty: Decimal
    avg_price: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal | None
    mark_price: Decimal | None
    ts_updated: int


@dataclass(slots=True)
class TradingView:
    """Books, the blotter and positions, bounded; ``apply`` takes any bus event."""

    books: dict[str, BookView] = field(default_factory=dict)
    blotter: Blotter = field(default_factory=Blotter)
    positions: dict[tuple[str, str], PositionView] = field(default_factory=dict)
    positions_loaded: bool = False
    positions_version: int = 0

    def apply(self, event: object) -> None:
        if isinstance(event, BookUpdated):
            book = self.book(event.symbol)
            if book is not None:
                book.on_update(event)
        elif isinstance(event, TradePrinted):
            book = self.book(event.symbol)
            if book is not None:
                book.trades.append(event)
                book.tape_version += 1
        elif isinstance(event, _REPORTS):
            self.blotter.on_report(event)
        elif isinstance(event, PositionChanged):
            self._position(event, event.unrealized_pnl, event.mark_price, event.ts_event)
        elif isinstance(event, QuoteUpdated):
            self._mark(event)

    def book(self, symbol: str) -> BookView | None:
        """The book of ``symbol``, made on first use (None beyond the symbol cap)."""
        book = self.books.get(symbol)
        if book is None and len(self.books) < MAX_SYMBOLS:
            book = self.books[symbol] = BookView(symbol)
        return book

    def load_book(self, snapshot: BookSnapshot) -> None:
        book = self.book(snapshot.symbol)
        if book is not None:
            book.on_snapshot(snapshot)

    def load_positions(self, rows: list[PositionRow]) -> None:
        for row in rows:
            self._position(row, row.unrealized_pnl, row.mark_price, row.ts_updated)
        self.positions_loaded = True
        self.positions_version += 1

    def _position(
        self,
        p: PositionChanged | PositionRow,
        unrealized: Decimal | None,
        mark: Decimal | None,
        ts: int,
    ) -> None:
        key = (p.account, p.symbol)
        known = self.positions.get(key)
        if known is not None and ts < known.ts_updated:
            return  # older than what the view has
        if known is None and len(self.positions) >= MAX_POSITIONS:
            return
        self.positions[key] = PositionView(
            p.account, p.symbol, p.qty, p.avg_price, p.realized_pnl, unrealized, mark, ts
        )
        self.positions_version += 1

    def _mark(self, q: QuoteUpdated) -> None:
        # the console values open positions at each quote's mid, as the order manager does
        if q.bid <= 0 or q.ask <= 0:
            return
        mid: Decimal | None = None
        for p in self.positions.values():
            if p.symbol == q.symbol and p.qty != 0:
                mid = mid or Decimal(repr((q.bid + q.ask) / 2)).quantize(Decimal("0.0001"))
                p.mark_price, p.unrealized_pnl = mid, (mid - p.avg_price) * p.qty
                self.positions_version += 1

"""The simulated venue of a trade-print backtest, and the broker that trades on it.

:class:`TapeVenue` keeps one :class:`~engine.venue.book.OrderBook` per symbol with the
venue's own liquidity (:mod:`engine.venue.liquidity`): for each print, the
:class:`~engine.venue.liquidity.Flow` first replays it as an IOC order against the book as
it stands (quoted around the previous print), then the
:class:`~engine.venue.liquidity.MarketMaker` re-quotes around the print, ``half_spread``
ticks either side — as the venue re-quotes on each quote of the feed.

:class:`TradeBroker` is the :class:`~engine.backtest.broker.Broker` of such a run: the
same sizing, risk gate, cash, commission and live position arithmetic, but its orders go
into the book as account ``backtest`` (market → market IOC, limit → day limit that rests
until it trades or is cancelled; the book never expires it here) and its fills are the
book's ``OrderFilled`` reports, at the book's prices — ``slippage_bps`` does not apply.
Quantities are whole lots (rounded down); a buy is cut at submission to what the cash
pays for at the ask side it would take (market) or at its limit, a sell without
``allow_short`` to the position. ``Fill.ts`` is the time of the trade (UTC ns).
"""

from __future__ import annotations

from collections import deque
from decimal import ROUND_FLOOR, Decimal
from typing import Literal, NamedTuple

from engine.backtest.broker import ACCOUNT, ZERO, Broker, Fill, FillModel, Order
from engine.bus.events import (
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    Side,
)
from engine.risk.gate import RiskGate
from engine.venue.book import InstrumentSpec, OrderBook
from engine.venue.liquidity import Flow, LiquidityParams, MarketMaker

Aggressor = Literal["buy", "sell", "unknown"]
DEFAULT_LIQUIDITY = LiquidityParams(levels=5, spacing_ticks=1, size_lots=500, refill_ns=10**9)
"""The venue's default settings (``config/default.toml`` ``[venue]``)."""


class TradePrint(NamedTuple):
    """One trade of the tape."""

    symbol: str
    ts: int
    """UTC ns."""
    price: float
    size: float
    aggressor: Aggressor = "unknown"


class TapeVenue:
    """Books, market makers and flows per symbol (see the module docstring)."""

    def __init__(
        self,
        spec: InstrumentSpec | None = None,
        liquidity: LiquidityParams = DEFAULT_LIQUIDITY,
        half_spread: int = 1,
    ) -> None:
        self.spec = spec or InstrumentSpec("", Decimal("0.01"), Decimal("1"))
        self.liquidity = liquidity
        self.half_spread = half_spread
        self.books: dict[str, OrderBook] = {}
        self.makers: dict[str, MarketMaker] = {}
        self.flows: dict[str, Flow] = {}

    def book(self, symbol: str) -> OrderBook:
        book = self.books.get(symbol)
        if book is None:
            spec = InstrumentSpec(symbol, self.spec.tick_size, self.spec.lot_size)
            book = self.books[symbol] = OrderBook(spec, venue="BACKTEST")
            self.makers[symbol] = MarketMaker(book, self.liquidity)
            self.flows[symbol] = Flow(book)
        return book

    def trade(self, tp: TradePrint) -> list[Event]:
        """Replay ``tp`` against the book, then re-quote around it."""
        self.book(tp.symbol)
        events = self.dispatch(
            tp.symbol, self.flows[tp.symbol].trade(tp.price, tp.size, tp.aggressor, tp.ts), tp.ts
        )
        away = self.half_spread * float(self.spec.tick_size)
        events += self.makers[tp.symbol].quote(tp.price - away, tp.price + away, tp.ts)
        return events

    def dispatch(self, symbol: str, events: list[Event], ts: int) -> list[Event]:
        """Let the market maker note what ``events`` did to its quotes."""
        self.makers[symbol].on_events(events, ts)
        return events


class TradeBroker(Broker):
    """The broker of a trade-print backtest (see the module docstring)."""

    def __init__(self, cash: Decimal, model: FillModel, gate: RiskGate, venue: TapeVenue) -> None:
        super().__init__(cash, model, gate)
        self.venue = venue
        self.unreported: deque[Fill] = deque()
        """Fills the strategy has not been told of yet (the runner drains it)."""

    def submit(
        self, symbol: str, side: Side, qty: Decimal | None = None, limit: Decimal | None = None
    ) -> str | None:
        """Send an order to the book at once; None when it was denied, refused by the
        book or there is nothing to trade."""
        price = self.last.get(symbol)
        if price is None:
            self._deny(symbol, side, "no_price", f"no trade of {symbol} yet")
            return None
        if qty is not None and qty <= 0:
            return None
        spec = self.venue.spec
        ticks: int | None = None
        if limit is not None:
            ticks, problem = spec.price_ticks(limit)
            if problem:
                self._deny(symbol, side, problem, f"limit {limit}: {problem}")
                return None
        wanted = qty if qty is not None else self._size(side, symbol, Decimal(repr(price)))
        lots = int(
            (self._cut(symbol, side, wanted, limit) / spec.lot_size).to_integral_value(
                rounding=ROUND_FLOOR
            )
        )
        if lots <= 0:
            return None
        order_id = f"bt-{next(self._ids)}"
        order_qty = spec.lot_size * lots
        if not self._admit(order_id, symbol, side, order_qty, limit):
            return None
        self.orders[order_id] = Order(
            order_id=order_id,
            symbol=symbol,
            side=side,
            qty=order_qty,
            limit=limit,
            placed_ns=self.now_ns,
            sizing_price=price,
        )
        book = self.venue.book(symbol)
        events = book.submit(
            ACCOUNT,
            order_id,
            side,
            lots,
            ticks,
            order_type="market" if ticks is None else "limit",
            tif="ioc" if ticks is None else "day",
            ts=self.now_ns,
        )
        self.on_events(self.venue.dispatch(symbol, events, self.now_ns))
        accepted = any(isinstance(e, OrderAccepted) for e in events)
        return order_id if accepted else None

    def cancel(self, order_id: str) -> bool:
        order = self.orders.get(order_id)
        if order is None:
            return False
        book = self.venue.book(order.symbol)
        events = book.cancel(ACCOUNT, order_id, ts=self.now_ns)
        self.on_events(self.venue.dispatch(order.symbol, events, self.now_ns))
        return any(isinstance(e, OrderCancelled) for e in events)

    def on_events(self, events: list[Event]) -> None:
        """Apply the book's reports of the ``backtest`` account."""
        for event in events:
            if getattr(event, "account", None) != ACCOUNT:
                continue
            if isinstance(event, OrderFilled):
                order = self.orders.get(event.client_order_id)
                if order is None:
                    continue
                if event.leaves_qty == 0:
                    del self.orders[order.order_id]
                self.unreported.append(self._fill(order, event.qty, event.price, event.ts_event))
            elif isinstance(event, OrderCancelled):
                self.orders.pop(event.client_order_id, None)
            elif isinstance(event, OrderRejected):
                order = self.orders.pop(event.client_order_id, None)
                if order is not None:
                    self._deny(order.symbol, order.side, event.reason, event.message)

    def _cut(self, symbol: str, side: Side, qty: Decimal, limit: Decimal | None) -> Decimal:
        held = self.position(symbol)
        if side == "sell":
            return qty if self.model.allow_short else min(qty, max(held, ZERO))
        cash = self.cash + (-held * Decimal(repr(self.last[symbol])) if held < 0 else ZERO)
        if limit is not None:
            return min(qty, self._affordable(cash, limit))
        _, asks = self.venue.book(symbol).depth(10_000)
        bought = ZERO
        for price, size in asks:
            take = min(size, qty - bought, self._affordable(cash, price))
            bought += take
            cash -= take * (price * (1 + self._rate) + self._per_share)
            if take < size or bought >= qty:
                break
        return bought

    def _affordable(self, cash: Decimal, price: Decimal) -> Decimal:
        unit_cost = price * (1 + self._rate) + self._per_share
        return max((cash / unit_cost).to_integral_value(rounding=ROUND_FLOOR), ZERO)

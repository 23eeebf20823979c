"""The venue's market as the algorithm engine sees it, per symbol: the book (mirrored
from ``venue.book``), the last trade, and running counters of traded volume and notional
(for participation, POV and the interval VWAP of TCA).

A trade is counted once whichever arrives first: its print on the bus
(``TradePrinted``) or the execution report of an own fill (``OrderFilled``) — both carry
the venue's ``trade_id``. Counting own fills at once keeps a parent's market volume at
least its own filled quantity even when the print comes later.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import Engine, select

from engine.errors import CommandError, ErrorCode
from engine.persistence.decimals import plain_decimal
from engine.persistence.models.market import SimulatedInstrument
from engine.venue.mirror import BookMirror

ZERO = Decimal(0)
RECENT_TRADES = 10_000
"""Trade ids remembered per symbol to count each trade once."""


@dataclass(slots=True)
class SymbolMarket:
    """One symbol's market on the venue."""

    book: BookMirror
    tick: Decimal = Decimal("0.01")
    lot: Decimal = Decimal(1)
    last: Decimal | None = None
    volume: Decimal = ZERO
    """Traded since this process started (every trade once)."""
    notional: Decimal = ZERO
    _ids: set[str] = field(default_factory=set)
    _order: deque[str] = field(default_factory=deque)

    def trade(self, trade_id: str, qty: Decimal, price: Decimal) -> bool:
        """Count a trade; False when it was counted already."""
        if trade_id:
            if trade_id in self._ids:
                return False
            self._ids.add(trade_id)
            self._order.append(trade_id)
            if len(self._order) > RECENT_TRADES:
                self._ids.discard(self._order.popleft())
        self.last = price
        self.volume += qty
        self.notional += qty * price
        return True

    def mid(self) -> Decimal | None:
        bid, ask = self.book.best_bid(), self.book.best_ask()
        if bid and ask:
            return (bid[0] + ask[0]) / 2
        return self.last


class MarketBoard:
    """Every symbol's :class:`SymbolMarket`; tick and lot from the venue's instruments."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.markets: dict[str, SymbolMarket] = {}

    def get(self, symbol: str) -> SymbolMarket:
        market = self.markets.get(symbol)
        if market is None:
            market = self.markets[symbol] = SymbolMarket(book=BookMirror(symbol))
            spec = self._instrument(symbol)
            if spec is not None:
                market.tick, market.lot = spec
        return market

    def known(self, symbol: str) -> SymbolMarket:
        """The symbol's market; ``CommandError(invalid)`` when the venue has no book."""
        if symbol not in self.markets and self._instrument(symbol) is None:
            raise CommandError(
                ErrorCode.INVALID,
                f"{symbol} has no book on the venue (`qsuite ctl venue` lists the books)",
            )
        return self.get(symbol)

    def spec(self, symbol: str) -> tuple[Decimal, Decimal] | None:
        """(tick, lot) of ``symbol`` as the venue's instruments say now, or None when the
        venue does not trade it (read from the database every time)."""
        return self._instrument(symbol)

    def _instrument(self, symbol: str) -> tuple[Decimal, Decimal] | None:
        t = SimulatedInstrument.__table__.c
        with self.engine.connect() as conn:
            row = conn.execute(select(t.tick_size, t.lot_size).where(t.symbol == symbol)).first()
        return None if row is None else (plain_decimal(row[0]), plain_decimal(row[1]))

"""Bounded view state of the console, fed by the bridge's one bus subscription.

Pages never read sockets: they render from here on their own timer, a few times a
second at most, so a fast market never floods a tab and a slow tab never slows the
engine. Everything here is bounded (one entry per symbol, capped; the blotter, fills
and tapes keep the latest N).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from engine.bus.events import (
    FeedStateChanged,
    QuoteUpdated,
)

MAX_SYMBOLS = 500


@dataclass(slots=True)
class QuoteView:
    symbol: str
    bid: float
    ask: float
    last: float
    first: float
    """The first price this console saw today (the change is measured from it)."""
    simulated: bool
    origin: str
    updated_at: float
    """Monotonic seconds of the last update (for the age column)."""
    updates: int = 0

    @property
    def change_pct(self) -> float:
        return (self.last / self.first - 1.0) * 100.0 if self.first else 0.0


@dataclass(slots=True)
class MarketView:
    quotes: dict[str, QuoteView] = field(default_factory=dict)
    feed_mode: str = "unknown"
    feed_reason: str = "no word from the feed yet"
    breaker: str = "unknown"
    version: int = 0
    """Bumped on every change: pages skip a redraw when nothing changed."""

    def apply(self, event: object) -> None:
        if isinstance(event, QuoteUpdated):
            self._quote(event)
        elif isinstance(event, FeedStateChanged):
            self.feed_mode, self.feed_reason, self.breaker = event.mode, event.reason, event.breaker
            self.version += 1

    def _quote(self, q: QuoteUpdated) -> None:
        view = self.quotes.get(q.symbol)
        now = time.monotonic()
        if view is None:
            if len(self.quotes) >= MAX_SYMBOLS:
                return
            self.quotes[q.symbol] = QuoteView(
                q.symbol, q.bid, q.ask, q.last, q.last, q.simulated, q.origin, now, 1
            )
        else:
            view.bid, view.ask, view.last = q.bid, q.ask, q.last
            view.simulated, view.origin, view.updated_at = q.simulated, q.origin, now
            view.updates += 1
        if q.simulated and self.feed_mode == "unknown":
            self.feed_mode = "simulated"
        self.version += 1

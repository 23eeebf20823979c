"""A venue book mirrored from the bus by the Clone pattern: a snapshot (``book_seq`` S),
then deltas S+1, S+2 … on top (``BookUpdated`` on ``venue.book.<symbol>``).

Deltas that arrive before the first snapshot wait (at most ``MAX_PENDING_DELTAS``). A jump
in ``book_seq`` makes the mirror ``stale`` (its levels stay, marked) until the next
snapshot — the venue publishes one every ``venue.snapshot_interval_s``, and a consumer
may ask for one (``GetBook``). Used by the console's ladder and the algorithm engine's
view of the market.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from engine.bus.commands.venue import BookSnapshot
from engine.bus.events import BookLevel, BookUpdated

MAX_LEVELS = 1_000
"""Price levels kept per side of one book."""
MAX_PENDING_DELTAS = 256
"""Deltas held while a book waits for its snapshot (older ones are dropped: a gap)."""

BookStatus = Literal["waiting", "live", "stale"]


@dataclass(slots=True)
class BookMirror:
    """One venue book (see the module docstring)."""

    symbol: str
    status: BookStatus = "waiting"
    book_seq: int = 0
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)
    pending: deque[BookUpdated] = field(default_factory=lambda: deque(maxlen=MAX_PENDING_DELTAS))
    gaps: int = 0
    version: int = 0
    """Bumped when the levels or the status change."""

    def on_update(self, event: BookUpdated) -> None:
        if event.snapshot:  # in order with the deltas: always the truth, even after a restart
            self._reset(event.book_seq, event.bids, event.asks)
        elif self.status != "live":
            self.pending.append(event)
        elif event.book_seq <= self.book_seq:
            return  # already in the snapshot
        elif event.book_seq != self.book_seq + 1:
            self._stale([event])
        else:
            self._apply(event)
            self.version += 1

    def on_snapshot(self, snapshot: BookSnapshot) -> bool:
        """A ``GetBook`` reply; ignored (False) when the live book is as new already."""
        if self.status == "live" and snapshot.book_seq <= self.book_seq:
            self.version += 1
            return False
        self._reset(snapshot.book_seq, snapshot.bids, snapshot.asks)
        return True

    def ladder(self, depth: int) -> tuple[list[BookLevel], list[BookLevel]]:
        """The best ``depth`` levels of each side, best first."""
        bids = sorted(self.bids.items(), reverse=True)[:depth]
        asks = sorted(self.asks.items())[:depth]
        return bids, asks

    def _reset(self, seq: int, bids: list[BookLevel], asks: list[BookLevel]) -> None:
        self.bids = {p: q for p, q in bids[:MAX_LEVELS] if q > 0}
        self.asks = {p: q for p, q in asks[:MAX_LEVELS] if q > 0}
        self.book_seq, self.status = seq, "live"
        held = sorted(self.pending, key=lambda d: d.book_seq)
        self.pending.clear()
        for i, delta in enumerate(held):
            if delta.book_seq <= self.book_seq:
                continue
            if delta.book_seq != self.book_seq + 1:
                self._stale(held[i:])
                return
            self._apply(delta)
        self.version += 1

    def _apply(self, delta: BookUpdated) -> None:
        for side, levels, worst in ((self.bids, delta.bids, min), (self.asks, delta.asks, max)):
            for price, qty in levels:
                if qty > 0:
                    side[price] = qty
                else:
                    side.pop(price, None)
            if len(side) > MAX_LEVELS:
                del side[worst(side)]
        self.book_seq = delta.book_seq

    def _stale(self, held: list[BookUpdated]) -> None:
        self.status = "stale"
        self.gaps += 1
        self.pending.extend(held)
        self.version += 1

    def best_bid(self) -> tuple[Decimal, Decimal] | None:
        """``(price, quantity)`` of the best bid; None when there is none."""
        if not self.bids:
            return None
        price = max(self.bids)
        return price, self.bids[price]

    def best_ask(self) -> tuple[Decimal, Decimal] | None:
        if not self.asks:
            return None
        price = min(self.asks)
        return price, self.asks[price]

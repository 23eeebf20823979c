"""The one bar/quote schema every source is normalized into.

Bars travel as a pandas ``DataFrame`` with exactly :data:`BAR_FRAME_COLUMNS`
(the column order of :data:`engine.persistence.bars.BAR_COLUMNS`, so a normalized frame
can be stored as is): ``ts`` int64 UTC nanoseconds of the bar's *open*, prices and
volume float64, ``flags`` int of :class:`engine.persistence.models.BarFlag` bits.
Quotes are :class:`Quote` structs. Intervals use Yahoo's spelling.
"""

from __future__ import annotations

from typing import Final

import msgspec

from engine.bus.events import Origin
from engine.intervals import INTERVAL_SECONDS, INTRADAY, NS, IntervalError, interval_ns
from engine.persistence.bars import BAR_COLUMNS

BAR_FRAME_COLUMNS: Final = BAR_COLUMNS
PRICE_COLUMNS: Final = ("open", "high", "low", "close")

__all__ = [
    "BAR_FRAME_COLUMNS",
    "INTERVAL_SECONDS",
    "INTRADAY",
    "NS",
    "PRICE_COLUMNS",
    "Fundamentals",
    "IntervalError",
    "Quote",
    "interval_ns",
]


class Quote(msgspec.Struct, frozen=True, kw_only=True):
    """Latest top of book and last trade of one symbol, normalized."""

    symbol: str
    ts: int
    """When the source says the quote was valid, UTC ns."""
    bid: float
    ask: float
    bid_size: float = 0.0
    ask_size: float = 0.0
    last: float
    volume: float = 0.0
    origin: Origin
    simulated: bool = False


class Fundamentals(msgspec.Struct, frozen=True, kw_only=True):
    """Instrument-master facts of one symbol as of ``as_of`` (UTC ns); None = unknown."""

    symbol: str
    as_of: int
    name: str | None = None
    exchange: str | None = None
    currency: str | None = None
    sector: str | None = None
    industry: str | None = None
    market_cap: float | None = None
    pe_ratio: float | None = None
    eps: float | None = None
    dividend_yield: float | None = None
    beta: float | None = None
    week52_high: float | None = None
    week52_low: float | None = None

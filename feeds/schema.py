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
from engine.persistence.bars import BAR_COLUMNS

BAR_FRAME_COLUMNS: Final = BAR_COLUMNS
PRICE_COLUMNS: Final = ("open", "high", "low", "close")

NS: Final = 1_000_000_000
#: Bar length of every supported interval, in seconds (Yahoo's names). Daily and longer
#: bars are stamped at the session's date, 00:00 UTC.
INTERVAL_SECONDS: Final[dict[str, int]] = {
    "1m": 60,
    "2m": 120,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "60m": 3600,
    "90m": 5400,
    "1h": 3600,
    "1d": 86400,
    "5d": 5 * 86400,
    "1wk": 7 * 86400,
    "1mo": 30 * 86400,
    "3mo": 91 * 86400,
}
INTRADAY: Final = frozenset(k for k, v in INTERVAL_SECONDS.items() if v < 86400)


class IntervalError(ValueError):
    """An interval QSuite does not know."""


def interval_ns(interval: str) -> int:
    """Length of one bar of ``interval`` in nanoseconds."""
    try:
        return INTERVAL_SECONDS[interval] * NS
    except KeyError:
        known = ", ".join(INTERVAL_SECONDS)
        raise IntervalError(f"unknown interval {interval!r}; use one of {known}") from None


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

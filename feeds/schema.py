"""The one bar/quote schema every source is normalized into.

Bars travel as a pandas ``DataFrame`` with exactly :data:`BAR_FRAME_COLUMNS`
(the column order of :data:`engine.persistence.bars.BAR_COLUMNS`, so a normalized frame
can be stored as is): ``ts`` int64 UTC nanoseconds of the bar's *open*, prices and
volume float64, ``flags`` int of :class:`engine.persistence.models.BarFlag` bits.
Quotes are :class:`Quote` structs (defined with the market commands that carry them,
re-exported here). Intervals use Yahoo's spelling.
"""

from __future__ import annotations

from typing import Final

from engine.bus.commands.market import Fundamentals, Quote
from engine.bus.events import QuoteUpdated
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
    "quote_event",
    "quote_of",
]


_QUOTE_FIELDS: Final = (
    "symbol",
    "bid",
    "ask",
    "bid_size",
    "ask_size",
    "last",
    "volume",
    "origin",
    "simulated",
)


def quote_of(event: QuoteUpdated) -> Quote:
    """The cached form of a quote event (its ``ts`` is the event's ``ts_event``)."""
    return Quote(ts=event.ts_event, **{f: getattr(event, f) for f in _QUOTE_FIELDS})


def quote_event(quote: Quote) -> QuoteUpdated:
    """The bus event of a normalized quote."""
    return QuoteUpdated(ts_event=quote.ts, **{f: getattr(quote, f) for f in _QUOTE_FIELDS})

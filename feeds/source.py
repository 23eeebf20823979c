"""The adapter interface every market-data source implements, and its errors.

A source only fetches; it never stores, publishes or caches. What it returns goes
through :mod:`feeds.normalizer` before anything else sees it. Errors, one meaning each:

- :class:`SourceUnavailable` (transient): timeout, connection refused, 5xx — counts as a
  failure for the source's circuit breaker; retry later.
- :class:`RateLimited` (transient): the source asked us to slow down (HTTP 429,
  ``YFRateLimitError``); back off at least ``retry_after_s``.
- :class:`SymbolNotFound`: typo, delisted, no data ever — the caller's input is wrong;
  not a source failure (the breaker stays closed) and retrying will not help.
- :class:`SourceDataError`: the source answered with something we cannot read
  (missing fields, wrong shape); counted, logged with a sample, not retried blindly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import pandas as pd

from engine.bus.events import Origin
from engine.errors import QSuiteError, TransientError
from feeds.schema import Fundamentals, Quote


class SourceUnavailable(TransientError):
    """The source could not be reached or failed on its side."""


class RateLimited(TransientError):
    """The source refused because we asked too often."""

    def __init__(self, message: str, retry_after_s: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class SymbolNotFound(QSuiteError):
    """The source does not know the symbol (typo, delisted, or never had data)."""

    def __init__(self, source: str, symbol: str, detail: str = "") -> None:
        self.source, self.symbol = source, symbol
        extra = f": {detail}" if detail else ""
        super().__init__(
            f"{source} has no data for {symbol!r}{extra}. Check the symbol and its exchange suffix."
        )


class SourceDataError(QSuiteError):
    """The source answered, but not in a shape we can read."""


class MarketSource(Protocol):
    """A source of bars (and, where it has them, quotes and fundamentals)."""

    name: Origin
    """``yahoo``, ``replay`` or ``synthetic`` (the ``origin`` of what it produces)."""

    def history(self, symbol: str, interval: str, start_ns: int, end_ns: int) -> pd.DataFrame:
        """Raw bars of ``[start_ns, end_ns)``: a frame with ``ts`` (UTC ns of the bar open)
        and ``open, high, low, close, volume``; may hold bad rows (the normalizer's job).
        Raises the errors above; an empty frame means no bars in that range."""

    def quotes(self, symbols: Sequence[str]) -> list[Quote]:
        """Latest quotes of ``symbols`` it knows (unknown ones are left out)."""

    def fundamentals(self, symbol: str) -> Fundamentals:
        """Instrument-master facts; raises :class:`SymbolNotFound` for unknown symbols."""

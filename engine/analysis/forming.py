"""Forming bars: the bar of each followed ``(symbol, interval)`` that has not closed
yet, built from the prices the feed streams (``md.trade`` sizes and prices, ``md.quote``
last prices), so indicators can be previewed on it without committing anything.

Prices at or before a closed bar are ignored (that bar is final); the first price of a
new interval opens a new forming bar. :meth:`FormingBars.changed` hands each bar that
moved since the last call once, so a periodic preview costs nothing for quiet symbols.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from engine.indicators.base import Bar
from engine.intervals import interval_ns


class _Forming:
    __slots__ = ("close", "dirty", "high", "low", "open", "ts", "volume")

    def __init__(self, ts: int, price: float) -> None:
        self.ts = ts
        self.open = self.high = self.low = self.close = price
        self.volume = 0.0
        self.dirty = True


class FormingBars:
    """The forming bars of every symbol that trades, in each of ``intervals``."""

    def __init__(self, intervals: list[str]) -> None:
        self._intervals = {interval: interval_ns(interval) for interval in intervals}
        self._bars: dict[tuple[str, str], _Forming] = {}
        self._closed: dict[tuple[str, str], int] = {}

    def closed(self, symbol: str, interval: str, ts: int) -> None:
        """The bar opening at ``ts`` closed: prices up to its end belong to it."""
        key = (symbol, interval)
        self._closed[key] = max(ts, self._closed.get(key, ts))
        bar = self._bars.get(key)
        if bar is not None and bar.ts <= ts:
            del self._bars[key]

    def price(self, symbol: str, ts_ns: int, price: float, size: float = 0.0) -> None:
        """A traded (or last) price at ``ts_ns``; ``size`` adds to the bar's volume."""
        if not math.isfinite(price) or price <= 0.0:
            return
        size = size if math.isfinite(size) and size > 0.0 else 0.0
        for interval, width in self._intervals.items():
            key = (symbol, interval)
            start = ts_ns - ts_ns % width
            if start <= self._closed.get(key, -1):
                continue
            bar = self._bars.get(key)
            if bar is None or start > bar.ts:
                bar = self._bars[key] = _Forming(start, price)
            elif start < bar.ts:
                continue  # a late price of a bar already replaced
            else:
                bar.high = max(bar.high, price)
                bar.low = min(bar.low, price)
                bar.close = price
                bar.dirty = True
            bar.volume += size

    def changed(self) -> Iterator[tuple[str, str, Bar]]:
        """Every forming bar that moved since the last call, once."""
        for (symbol, interval), bar in self._bars.items():
            if bar.dirty:
                bar.dirty = False
                yield (
                    symbol,
                    interval,
                    Bar(bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume),
                )

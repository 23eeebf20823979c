"""Stored bars as the history algorithms may use when they start (VWAP's profile)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Engine

from engine.persistence.bars import load_bars

INTRADAY_INTERVALS = ("1m", "5m", "15m", "30m", "1h")
"""Finest first: the first one with bars in the window is used."""
DAY_NS = 86_400 * 1_000_000_000


class BarHistory:
    """:class:`engine.algos.base.History` over the bar store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def intraday_volumes(self, symbol: str, *, days: int, now_ns: int) -> list[tuple[int, Decimal]]:
        start = now_ns - days * DAY_NS
        for interval in INTRADAY_INTERVALS:
            bars = load_bars(self.engine, symbol, interval, start, now_ns)
            if bars:
                return [(bar.ts, Decimal(repr(bar.volume))) for bar in bars]
        return []

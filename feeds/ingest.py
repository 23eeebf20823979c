"""One path for every bar that enters QSuite: normalize → log → store → cache → publish.

Whatever the source (Yahoo, a replay file, the synthetic market) and whoever calls
(the feed's live poll, a scheduled backfill, ``qsuite backfill``), bars go through
:class:`Ingestor`, so the rules are the same everywhere:

1. :func:`feeds.normalizer.normalize_bars` cleans the raw frame (rejections counted);
2. bars newer than the last one published become ``BarClosed`` events and are published
   when the caller has a bus (live); a backfill publishes nothing per bar;
3. every accepted bar is appended to the market-data log (the event-sourced record);
4. the bars are upserted into the bar store (idempotent on ``(symbol, interval, ts)``);
5. the latest bar goes to the shared price cache; gaps go to the repair queue (and, live,
   a ``GapDetected`` event says so).

The log is written before the store: after a crash between the two, replaying the log
(:func:`feeds.mdlog.rebuild_bars`) restores what the store missed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import pandas as pd
from sqlalchemy import Engine

from engine.bus import topics
from engine.bus.events import BarClosed, Event, GapDetected, Origin
from engine.clock import Clock, LiveClock
from engine.intervals import interval_ns
from engine.persistence.bars import upsert_bars
from engine.persistence.models import BarFlag
from feeds.cache import PriceCache
from feeds.gaps import GapQueue
from feeds.mdlog import MarketDataLog
from feeds.normalizer import normalize_bars

Publish = Callable[[str, Event], Event]


@dataclass(slots=True)
class IngestReport:
    """What one call of :meth:`Ingestor.ingest` did."""

    symbol: str
    interval: str
    origin: Origin
    received: int
    accepted: int
    written: int
    """Bars inserted or changed in the store (0 when it already had them)."""
    published: int
    rejected: dict[str, int] = field(default_factory=dict)
    repaired: dict[str, int] = field(default_factory=dict)
    gaps: int = 0
    first_ts: int | None = None
    last_ts: int | None = None


def bar_events(bars: pd.DataFrame, *, origin: Origin, ts_event: int) -> list[BarClosed]:
    """``BarClosed`` events for a normalized frame (``ts_event``: when they closed)."""
    columns = [
        bars[c].tolist()
        for c in ("symbol", "interval", "ts", "open", "high", "low", "close", "volume", "flags")
    ]
    return [
        BarClosed(
            ts_event=ts_event,
            symbol=symbol,
            interval=interval,
            ts=ts,
            open=o,
            high=h,
            low=lo,
            close=c,
            volume=v,
            origin=origin,
            simulated=bool(flags & BarFlag.SIMULATED),
            flags=flags,
        )
        for symbol, interval, ts, o, h, lo, c, v, flags in zip(*columns, strict=True)
    ]


class Ingestor:
    """Ingests raw bar frames for one writer process (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        log: MarketDataLog,
        *,
        cache: PriceCache | None = None,
        gaps: GapQueue | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.engine = engine
        self.log = log
        self.cache = cache
        self.gaps = gaps
        self.clock: Clock = clock or LiveClock()
        self._published_until: dict[tuple[str, str], int] = {}

    def ingest(
        self,
        raw: pd.DataFrame,
        *,
        symbol: str,
        interval: str,
        origin: Origin,
        simulated: bool = False,
        publish: Publish | None = None,
        **normalize: Any,
    ) -> IngestReport:
        """Ingest one symbol's raw bars; with ``publish``, closed bars newer than the last
        one published for ``(symbol, interval)`` go on the bus."""
        result = normalize_bars(
            raw, symbol=symbol, interval=interval, origin=origin, simulated=simulated, **normalize
        )
        bars = result.bars
        now = self.clock.time_ns()
        report = IngestReport(
            symbol=symbol,
            interval=interval,
            origin=origin,
            received=len(raw),
            accepted=len(bars),
            written=0,
            published=0,
            rejected=result.rejected,
            repaired=result.repaired,
            gaps=len(result.gaps),
        )
        if bars.empty:
            return report
        if simulated:
            bars["flags"] = bars["flags"] | int(BarFlag.SIMULATED)
        # a bar is closed once its interval has passed; the forming one waits for the next poll
        closed = bars[bars["ts"] + interval_ns(interval) <= now]
        events = bar_events(closed, origin=origin, ts_event=now)
        if publish is not None and events:
            key = (symbol, interval)
            after = self._published_until.get(key, 0)
            topic = topics.bar(symbol, interval)
            events = [cast(BarClosed, publish(topic, e)) if e.ts > after else e for e in events]
            report.published = sum(1 for e in events if e.ts > after)
            self._published_until[key] = max(after, events[-1].ts)
        self.log.append_many(events)
        report.written = upsert_bars(self.engine, closed)
        report.first_ts, report.last_ts = int(bars["ts"].iloc[0]), int(bars["ts"].iloc[-1])
        if self.cache is not None and events:
            self.cache.put_bar(symbol, interval, events[-1])
        if self.gaps is not None:
            for start, end, missing in result.gaps:
                queued = self.gaps.put(symbol, interval, start, end, missing)
                if queued and publish is not None:
                    publish(
                        topics.gap(symbol),
                        GapDetected(
                            ts_event=now,
                            symbol=symbol,
                            interval=interval,
                            start=start,
                            end=end,
                            missing=missing,
                        ),
                    )
        return report

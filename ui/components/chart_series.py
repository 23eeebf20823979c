"""One chart's data, bounded: the bars, indicator values and signals of a symbol at an
interval, by bar open time, oldest first.

- A series keeps the latest ``MAX_BARS`` bars and values per indicator (of at most
  ``MAX_INDICATORS`` indicators) and ``MAX_SIGNALS`` signals.
- Loaded history (``load_*``) fills in around what the bus delivered: the bus's value of
  a bar wins (it is at least as new).
- Forming previews (``IndicatorUpdated`` with ``forming``) are held apart, the latest
  one per indicator, and never merged into the closed values: a closed value of that bar
  or a later one replaces it, an older one is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from engine.bus.commands.analysis import IndicatorSnapshot, SignalList
from engine.bus.commands.market import BarSeries
from engine.persistence.models.market import BarFlag

MAX_BARS = 500
"""Bars (and values per indicator) kept per series."""
MAX_SIGNALS = 200
"""Signals kept per series (the oldest bar's go first)."""
MAX_INDICATORS = 32
"""Indicator instances kept per series (the analysis computes about a dozen)."""

K = TypeVar("K", int, tuple[int, str, str])
V = TypeVar("V")


@dataclass(slots=True, frozen=True)
class Candle:
    ts: int
    """Open time, UTC ns."""
    open: float
    high: float
    low: float
    close: float
    volume: float
    simulated: bool = False


@dataclass(slots=True, frozen=True)
class SignalMark:
    ts: int
    """Open time of the bar that raised it, UTC ns."""
    rule: str
    kind: str
    indicator: str
    strength: float
    simulated: bool = False


@dataclass(slots=True)
class Series:
    """One chart: bars, indicator values and signals of a symbol at an interval, all by
    bar open time, oldest first."""

    symbol: str
    interval: str
    bars: dict[int, Candle] = field(default_factory=dict)
    indicators: dict[str, dict[int, dict[str, float]]] = field(default_factory=dict)
    """Instance key (``rsi_14``, ``bbands_20_2p0_2p0``) → bar time → output → value."""
    previews: dict[str, tuple[int, dict[str, float]]] = field(default_factory=dict)
    """Instance key → (forming bar's time, values): the latest preview, not committed."""
    signals: dict[tuple[int, str, str], SignalMark] = field(default_factory=dict)
    loaded: set[str] = field(default_factory=set)
    """Which of ``bars``, ``indicators``, ``signals`` the control plane completed."""
    errors: dict[str, str] = field(default_factory=dict)
    version: int = 0
    """Bumped on every change: pages skip a redraw when nothing changed."""

    @property
    def error(self) -> str:
        """Why loading this series failed ("" when it worked or is under way)."""
        return "; ".join(self.errors.values())

    def add_bar(self, bar: Candle) -> None:
        put(self.bars, bar.ts, bar, MAX_BARS)
        self.version += 1

    def add_values(self, key: str, ts: int, values: dict[str, float], *, forming: bool) -> None:
        closed = self.indicators.get(key)
        if closed is None:
            if len(self.indicators) >= MAX_INDICATORS:
                return
            closed = self.indicators[key] = {}
        if forming:
            if closed and ts <= next(reversed(closed)):
                return  # a late preview of a bar that has closed since
            self.previews[key] = (ts, values)
        else:
            put(closed, ts, values, MAX_BARS)
            preview = self.previews.get(key)
            if preview is not None and preview[0] <= ts:
                del self.previews[key]
        self.version += 1

    def add_signal(self, mark: SignalMark) -> None:
        key = (mark.ts, mark.rule, mark.kind)
        if key not in self.signals:  # at most one per rule, kind and bar
            put(self.signals, key, mark, MAX_SIGNALS)
            self.version += 1

    def load_bars(self, reply: BarSeries) -> None:
        simulated = int(BarFlag.SIMULATED)
        rows = zip(
            reply.ts,
            reply.open,
            reply.high,
            reply.low,
            reply.close,
            reply.volume,
            reply.flags,
            strict=False,
        )
        merge(
            self.bars,
            ((t, Candle(t, o, h, lo, c, v, bool(f & simulated))) for t, o, h, lo, c, v, f in rows),
            MAX_BARS,
        )
        self.version += 1

    def load_indicators(self, reply: IndicatorSnapshot) -> None:
        for s in reply.series:
            closed = self.indicators.get(s.indicator)
            if closed is None:
                if len(self.indicators) >= MAX_INDICATORS:
                    continue
                closed = self.indicators[s.indicator] = {}
            rows = ((ts, {o: v[i] for o, v in s.values.items()}) for i, ts in enumerate(s.ts))
            merge(closed, rows, MAX_BARS)
            preview = self.previews.get(s.indicator)
            if preview is not None and closed and preview[0] <= next(reversed(closed)):
                del self.previews[s.indicator]
        self.version += 1

    def load_signals(self, reply: SignalList) -> None:
        marks = (
            SignalMark(r.ts, r.rule, r.kind, r.indicator, r.strength, r.simulated)
            for r in reply.signals
            if r.symbol == self.symbol and r.interval == self.interval
        )
        merge(self.signals, (((m.ts, m.rule, m.kind), m) for m in marks), MAX_SIGNALS)
        self.version += 1


def put(rows: dict[K, V], key: K, value: V, limit: int) -> None:
    """Insert keeping ``rows`` ordered by key and at most ``limit`` long (oldest go)."""
    newest = next(reversed(rows), None) if rows else None
    known = key in rows
    rows[key] = value
    if not known and newest is not None and key < newest:
        ordered = sorted(rows.items(), key=lambda kv: kv[0])
        rows.clear()
        rows.update(ordered)
    while len(rows) > limit:
        del rows[next(iter(rows))]


def merge(rows: dict[K, V], items: Iterable[tuple[K, V]], limit: int) -> None:
    """Add loaded ``items`` where ``rows`` has no value yet (the bus's are as new)."""
    for key, value in items:
        rows.setdefault(key, value)
    ordered = sorted(rows.items(), key=lambda kv: kv[0])
    rows.clear()
    rows.update(ordered[-limit:])

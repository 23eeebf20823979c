"""One followed ``(symbol, interval)``: its indicator bank, its signal engine, its recent
values — and how bars, warm-up and re-evaluation move them.

A track warms from stored bars the first time its pair trades, then takes every closed
bar in O(1) per indicator. Signals computed while warming (bars the store already had)
are persisted but not published: only bars that close while QSuite watches make live
events.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.bus.events import SignalRaised
from engine.indicators.bank import IndicatorBank, Values
from engine.indicators.base import Bar, Bars, Indicator
from engine.signals.base import IndicatorSpec
from engine.signals.engine import SignalEngine

Row = tuple[str, str, int, str, str, str, float]
"""An ``indicator_values`` row: symbol, interval, ts, indicator key, params key, output, value."""


@dataclass
class Track:
    symbol: str
    interval: str
    bank: IndicatorBank
    signals: SignalEngine
    specs: dict[IndicatorSpec, tuple[str, str]]
    """Rule input → (indicator key, output) in the bank."""
    recent: dict[str, deque[tuple[int, dict[str, float]]]] = field(default_factory=dict)
    snapshot_bars: int = 200
    params_keys: dict[str, str] = field(default_factory=dict)
    """Indicator key → its params key (the store's column), fixed at construction."""

    def __post_init__(self) -> None:
        self.params_keys = {k: i.params_key for k, i in self.bank.indicators.items()}

    def warm(self, history: Bars) -> tuple[list[Row], list[SignalRaised]]:
        """Open every indicator on ``history`` (oldest first); returns the values to store
        and the signals of those bars (to store, not to publish)."""
        series = self.bank.warm_and_fill(history)
        rows = list(self._rows(history.ts, series))
        self.recent = {key: deque(maxlen=self.snapshot_bars) for key in self.bank.keys}
        tail = max(0, len(history) - self.snapshot_bars)
        for key, outputs in series.items():
            for i in range(tail, len(history)):
                self.recent[key].append(
                    (int(history.ts[i]), {o: float(a[i]) for o, a in outputs.items()})
                )
        self.signals.reset()
        raised: list[SignalRaised] = []
        # these signals are only stored, and storing is idempotent: no store query per signal
        seen, self.signals.seen = self.signals.seen, None
        for i in range(len(history)):
            bar = Bar(
                int(history.ts[i]),
                *(
                    float(getattr(history, c)[i])
                    for c in ("open", "high", "low", "close", "volume")
                ),
            )
            values = {spec: _value(series, key, out, i) for spec, (key, out) in self.specs.items()}
            raised += self.signals.on_bar(bar, values)
        self.signals.seen = seen
        return rows, raised

    def update(self, bar: Bar, ts_event: int) -> tuple[Values, list[Row], list[SignalRaised]]:
        """A closed bar: its indicator values, the rows to store, the new signals."""
        values = self.bank.update(bar)
        if not values:
            return values, [], []
        for key, outputs in values.items():
            recent = self.recent.setdefault(key, deque(maxlen=self.snapshot_bars))
            recent.append((bar.ts, outputs))
        params = self.params_keys
        rows = [
            (self.symbol, self.interval, bar.ts, key, params[key], out, v)
            for key, outputs in values.items()
            if key in params
            for out, v in outputs.items()
        ]
        inputs = {
            spec: values.get(key, {}).get(out, math.nan) for spec, (key, out) in self.specs.items()
        }
        signals = self.signals.on_bar(bar, inputs, ts_event=ts_event)
        return values, rows, signals

    def _rows(self, ts: Any, series: dict[str, dict[str, Any]]) -> Iterable[Row]:
        stamps = ts.tolist()
        for key, outputs in series.items():
            params_key = self.bank.indicators[key].params_key
            for out, array in outputs.items():
                for t, v in zip(stamps, array.tolist(), strict=True):
                    yield (self.symbol, self.interval, t, key, params_key, out, v)


def _value(series: dict[str, dict[str, Any]], key: str, output: str, i: int) -> float:
    array = series.get(key, {}).get(output)
    return math.nan if array is None else float(array[i])


def bank_for(
    symbol: str,
    interval: str,
    indicators: Iterable[Indicator],
    on_failure: Callable[[str, str], None],
) -> IndicatorBank:
    unique: dict[str, Indicator] = {}
    for indicator in indicators:
        unique.setdefault(indicator.key, indicator)
    return IndicatorBank(symbol, interval, unique.values(), on_failure=on_failure)


def bars_of(rows: list[Any]) -> Bars:
    """Stored bars (``BarRow``) as the arrays a bank warms on."""
    if not rows:
        empty = np.zeros(0)
        return Bars.of(np.zeros(0, dtype=np.int64), empty, empty, empty, empty, empty)
    ts, o, h, lo, c, v = zip(
        *((r.ts, r.open, r.high, r.low, r.close, r.volume) for r in rows), strict=True
    )
    return Bars.of(np.asarray(ts, dtype=np.int64), o, h, lo, c, v)

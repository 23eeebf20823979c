"""Bounded view state of the Dashboard's charts, fed by the bridge's bus subscription
(``md.bar.*``, ``ind.*``, ``sig.*``) and completed from the control plane.

- Only the series (symbol, interval) a page asked for with :meth:`ChartBoard.watch` are
  kept, at most ``MAX_SERIES`` (the least recently watched goes first); each one is
  bounded itself (:class:`~ui.components.chart_series.Series`).
- Late joiners (the Clone pattern): :meth:`ChartBoard.sync` loads each watched series
  once with ``GetBars``, ``GetIndicators`` and ``GetSignals``; what the bus delivered
  meanwhile wins over the loaded value of the same bar (it is at least as new).
- Sparklines: the closes of the latest ``SPARK_POINTS`` bars at the feed's interval for
  every symbol (the watchlist's loaded once with ``GetBars``).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from loguru import logger

from app.settings import Settings
from engine.bus.commands import Command, Result
from engine.bus.commands.analysis import GetIndicators, GetSignals, IndicatorSnapshot, SignalList
from engine.bus.commands.market import BarSeries, GetBars
from engine.bus.events import BarClosed, IndicatorUpdated, SignalRaised
from engine.errors import CommandError, EngineUnreachable
from ui.components.chart_series import MAX_BARS, MAX_SIGNALS, Candle, Series, SignalMark, put
from ui.state import MAX_SYMBOLS

MAX_SERIES = 16
"""Series kept at once: what the open tabs show."""
SPARK_POINTS = 60
RETRY_S = 2.0
"""A failed fetch is tried again after this long."""

R = TypeVar("R", bound=Result)


class ControlClient(Protocol):
    async def send(self, command: Command) -> Result: ...

    def expect(self, result: Result, kind: type[R]) -> R: ...


class ChartSource(Protocol):
    """What :meth:`ChartBoard.sync` needs from the bridge (reads need no user)."""

    @property
    def client(self) -> ControlClient: ...

    @property
    def settings(self) -> Settings: ...


@dataclass(slots=True)
class ChartBoard:
    series: dict[tuple[str, str], Series] = field(default_factory=dict)
    """(symbol, interval) → its chart; the most recently watched last."""
    sparks: dict[str, dict[int, float]] = field(default_factory=dict)
    """Symbol → bar time → close at ``spark_interval`` (the latest ``SPARK_POINTS``)."""
    spark_interval: str = "1m"
    """The feed's bar interval (taken from the settings at the first sync)."""
    spark_version: int = 0
    sync_error: str = ""
    """Why loading sparklines failed ("" when it worked)."""
    version: int = 0
    """Bumped on every change of a watched series or a sparkline."""
    _sparks_loaded: set[str] = field(default_factory=set)
    _spark_errors: dict[str, str] = field(default_factory=dict)
    _next_try: dict[str, float] = field(default_factory=dict)

    def watch(self, symbol: str, interval: str) -> Series:
        """A page shows this series: keep it (and load it at the next sync). Pages call
        this on every redraw so what is on screen is never the one evicted."""
        key = (symbol, interval)
        series = self.series.pop(key, None) or Series(symbol, interval)
        self.series[key] = series
        while len(self.series) > MAX_SERIES:
            del self.series[next(iter(self.series))]
        return series

    def apply(self, event: object) -> None:
        """Take one bus event (others are ignored)."""
        if isinstance(event, BarClosed):
            if event.interval == self.spark_interval:
                self._spark(event.symbol, event.ts, event.close)
            series = self.series.get((event.symbol, event.interval))
            if series is not None:
                series.add_bar(
                    Candle(
                        event.ts,
                        event.open,
                        event.high,
                        event.low,
                        event.close,
                        event.volume,
                        event.simulated,
                    )
                )
                self.version += 1
        elif isinstance(event, IndicatorUpdated):
            series = self.series.get((event.symbol, event.interval))
            if series is not None:
                series.add_values(event.indicator, event.ts, event.values, forming=event.forming)
                self.version += 1
        elif isinstance(event, SignalRaised):
            series = self.series.get((event.symbol, event.interval))
            if series is not None:
                series.add_signal(
                    SignalMark(
                        event.ts,
                        event.rule,
                        event.kind,
                        event.indicator,
                        event.strength,
                        event.simulated,
                    )
                )
                self.version += 1

    async def sync(self, bridge: ChartSource) -> None:
        """Load what the bus alone cannot give a late joiner: the history of each watched
        series and the watchlist's sparklines, each once; a fetch that fails is retried
        after ``RETRY_S`` with its reason kept (``Series.error``, ``sync_error``). Never
        raises for a refusal or no answer."""
        client = bridge.client
        if self.spark_interval != bridge.settings.feed.interval:
            self.spark_interval = bridge.settings.feed.interval
            self.sparks.clear()
            self._sparks_loaded.clear()
        down: dict[str, str] = {}  # a process that did not answer is not asked again now
        for symbol in bridge.settings.feed.watchlist:
            if symbol in self._sparks_loaded:
                continue
            problem = await self._fetch(
                client,
                GetBars(symbol=symbol, interval=self.spark_interval, limit=SPARK_POINTS),
                functools.partial(self._load_spark, symbol, client),
                down,
                f"spark/{symbol}",
            )
            if problem is None:
                self._sparks_loaded.add(symbol)
                self._spark_errors.pop(symbol, None)
            elif problem:
                self._spark_errors[symbol] = f"Cannot load the sparkline of {symbol}: {problem}"
        self.sync_error = "; ".join(self._spark_errors.values())
        for series in list(self.series.values()):
            await self._sync_series(client, series, down)

    async def _sync_series(
        self, client: ControlClient, series: Series, down: dict[str, str]
    ) -> None:
        symbol, interval = series.symbol, series.interval
        expect = client.expect
        parts: list[tuple[str, Command, Callable[[Result], None]]] = [
            (
                "bars",
                GetBars(symbol=symbol, interval=interval, limit=MAX_BARS),
                lambda r: series.load_bars(expect(r, BarSeries)),
            ),
            (
                "indicators",
                GetIndicators(symbol=symbol, interval=interval, last=MAX_BARS),
                lambda r: series.load_indicators(expect(r, IndicatorSnapshot)),
            ),
            (
                "signals",
                GetSignals(symbol=symbol, interval=interval, limit=MAX_SIGNALS),
                lambda r: series.load_signals(expect(r, SignalList)),
            ),
        ]
        for part, command, load in parts:
            if part in series.loaded:
                continue
            problem = await self._fetch(client, command, load, down, f"{symbol}/{interval}/{part}")
            if problem == "":
                continue  # not due yet
            if problem is None:
                series.loaded.add(part)
                series.errors.pop(part, None)
            else:
                series.errors[part] = f"Cannot load the {part} of {symbol} {interval}: {problem}"
            self.version += 1
            series.version += 1

    async def _fetch(
        self,
        client: ControlClient,
        command: Command,
        load: Callable[[Result], None],
        down: dict[str, str],
        what: str,
    ) -> str | None:
        """None when loaded, "" when not due yet, else why it failed."""
        if not self._due(what):
            return ""
        target = type(command).target
        if target in down:
            return down[target]
        try:
            load(await client.send(command))
        except EngineUnreachable as exc:
            down[target] = str(exc)
            return str(exc)
        except CommandError as exc:
            return f"refused ({exc.code}): {exc.message}"
        except Exception as exc:  # a malformed reply must not stop the sync loop
            logger.opt(exception=exc).error("Cannot load {}: bad reply", what)
            return f"bad reply: {exc}"
        return None

    def _due(self, what: str) -> bool:
        now = time.monotonic()
        if self._next_try.get(what, 0.0) > now:
            return False
        self._next_try[what] = now + RETRY_S
        return True

    def _spark(self, symbol: str, ts: int, close: float) -> None:
        closes = self.sparks.get(symbol)
        if closes is None:
            if len(self.sparks) >= MAX_SYMBOLS:
                return
            closes = self.sparks[symbol] = {}
        if math.isfinite(close):
            put(closes, ts, close, SPARK_POINTS)
            self.spark_version += 1
            self.version += 1

    def _load_spark(self, symbol: str, client: ControlClient, result: Result) -> None:
        reply = client.expect(result, BarSeries)
        for ts, close in zip(reply.ts, reply.close, strict=False):
            if ts not in self.sparks.get(symbol, {}):
                self._spark(symbol, ts, close)
        self.spark_version += 1

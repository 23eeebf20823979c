"""Run a strategy over a tape of trade prints, its orders matched by the venue's book.

The same live code as :func:`engine.backtest.runner.run` (the analysis service on a
:class:`~engine.backtest.context.SimContext`, the strategy callbacks, the risk gate, the
position arithmetic), but orders are not filled by a bar fill model: they go into the
simulated venue's :class:`~engine.venue.book.OrderBook` (see :mod:`engine.backtest.tape`)
where the venue's market makers quote around the last print and every print is replayed
against the book. A market order therefore trades with the makers' quotes (a buy at the
ask, not at the print), and a resting limit fills only when the tape trades through it,
in the price-time priority the book gives it against the makers.

Per print, in order:

1. when it falls in a later interval than the bars forming, those bars close: the clock
   moves to their close, each (by symbol) is published as ``BarClosed`` (analysis, then
   ``on_signal``) and shown to ``on_bar``; orders placed meanwhile go into the book at
   once, at the close time; then equity (cash + positions at their last print) is
   recorded;
2. the print is replayed against the book (fills of resting strategy orders), then the
   market makers re-quote around it;
3. the strategy hears of each fill (``on_fill``) as soon as the callback that caused it
   (or the print) is done.

After the last print the last bars close the same way. Deterministic: the same inputs
give the same fills and equity, bit for bit.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from decimal import Decimal
from itertools import pairwise
from typing import Any

from engine.analysis.forming import FormingBars
from engine.backtest.broker import ACCOUNT
from engine.backtest.context import SimContext
from engine.backtest.runner import (
    BacktestConfig,
    BacktestError,
    BacktestResult,
    Progress,
    StrategyContext,
    _analysis,
    _interval,
    _strategy,
)
from engine.backtest.strategy import Strategy
from engine.backtest.tape import DEFAULT_LIQUIDITY, TapeVenue, TradeBroker, TradePrint
from engine.bus import topics
from engine.bus.events import BarClosed, SignalRaised
from engine.risk.gate import GateSettings, RiskGate
from engine.risk.profile import RiskProfile
from engine.venue.book import InstrumentSpec
from engine.venue.liquidity import LiquidityParams

__all__ = ["TradePrint", "run_trades"]


def run_trades(
    config: BacktestConfig,
    prints: Iterable[TradePrint],
    *,
    spec: InstrumentSpec | None = None,
    liquidity: LiquidityParams = DEFAULT_LIQUIDITY,
    half_spread: int = 1,
    progress: Progress | None = None,
) -> BacktestResult:
    """Run ``config`` over ``prints`` (sorted by ``ts``); bars of ``config.interval``.

    ``spec`` gives every symbol's tick and lot size (its symbol is ignored; default
    0.01 and 1), ``liquidity`` the market makers' ladder and ``half_spread`` the ticks
    between a print and the makers' best bid and ask. ``progress(prints done, all)``."""
    started = time.perf_counter()
    strategy = _strategy(config)
    step = _interval(config.interval)
    if config.cash <= 0 or not config.cash.is_finite():
        raise BacktestError(f"cash must be positive, not {config.cash}")
    if half_spread < 1:
        raise BacktestError(f"half_spread must be at least 1 tick, not {half_spread}")
    tape = list(prints)
    if not tape:
        raise BacktestError("no trade prints: check the file, the symbols and the range")
    for before, after in pairwise(tape):
        if after.ts < before.ts:
            raise BacktestError(f"prints must be sorted by ts: {after.ts} after {before.ts}")
    run = _TapeRun(config, strategy, step, TapeVenue(spec, liquidity, half_spread), tape[0].ts)
    run.symbols = sorted({tp.symbol for tp in tape})
    run.closes = {s: [] for s in run.symbols}
    total = len(tape)
    strategy.on_start(run.sctx)
    run.report_fills()
    for i, tp in enumerate(tape):
        run.on_print(tp)
        if progress is not None and (i % 10_000 == 0 or i + 1 == total):
            progress(i + 1, total)
    run.close_bars()
    strategy.on_end(run.sctx)
    run.report_fills()
    run.analysis.stop()
    broker = run.broker
    return BacktestResult(
        config=config,
        symbols=run.symbols,
        bars=run.bars,
        signals=run.signals,
        fills=broker.fills,
        denied=broker.denied,
        equity_ts=run.equity_ts,
        equity=run.equity,
        cash=broker.cash,
        positions={s: p.qty for s, p in broker.positions.items()},
        closes=run.closes,
        wall_s=time.perf_counter() - started,
    )


class _TapeRun:
    def __init__(
        self,
        config: BacktestConfig,
        strategy: Strategy[Any],
        step: int,
        venue: TapeVenue,
        start_ns: int,
    ) -> None:
        self.config = config
        self.strategy = strategy
        self.step = step
        self.ctx = SimContext(start_ns)
        gate = RiskGate(
            [config.risk or RiskProfile(account=ACCOUNT)],
            settings=GateSettings(max_orders_per_s=None),
        )
        self.broker = TradeBroker(config.cash, config.fills, gate, venue)
        self.venue = venue
        self.sctx = StrategyContext(self.broker)
        self.analysis = _analysis(config, strategy)
        self.analysis.start(self.ctx)
        self.ctx.subscribe(topics.INDICATORS, self.sctx._on_indicator)
        self.ctx.subscribe(topics.SIGNALS, self._on_signal)
        self.forming = FormingBars([config.interval])
        self.current: int | None = None
        """Open time of the bars forming."""
        self.symbols: list[str] = []
        self.closes: dict[str, list[float]] = {}
        self.last_close: dict[str, float] = {}
        self.equity_ts: list[int] = []
        self.equity: list[Decimal] = []
        self.bars = 0
        self.signals = 0

    def on_print(self, tp: TradePrint) -> None:
        start = tp.ts - tp.ts % self.step
        if self.current is not None and start > self.current:
            self.close_bars()
        self.current = start
        self.forming.price(tp.symbol, tp.ts, tp.price, tp.size)
        broker = self.broker
        broker.now_ns = max(broker.now_ns, tp.ts)
        broker.last[tp.symbol] = tp.price
        broker.on_events(self.venue.trade(tp))
        self.report_fills()

    def close_bars(self) -> None:
        if self.current is None:
            return
        close_ns = self.current + self.step
        interval = self.config.interval
        bars = sorted(self.forming.changed())
        self.ctx.advance_to(close_ns)
        broker = self.broker
        broker.now_ns = max(broker.now_ns, close_ns)
        for symbol, _, bar in bars:
            self.forming.closed(symbol, interval, bar.ts)
            event = BarClosed(
                ts_event=close_ns,
                symbol=symbol,
                interval=interval,
                ts=bar.ts,
                open=bar.open,
                high=bar.high,
                low=bar.low,
                close=bar.close,
                volume=bar.volume,
                origin="replay",
            )
            broker.gate.on_mark(symbol, bar.close, close_ns)
            broker.gate.drain()
            self.ctx.publish(topics.bar(symbol, interval), event)
            self.report_fills()
            self.strategy.on_bar(event, self.sctx)
            self.report_fills()
            self.last_close[symbol] = bar.close
            self.bars += 1
        self.equity_ts.append(close_ns)
        self.equity.append(broker.equity())
        for symbol in self.symbols:
            self.closes[symbol].append(self.last_close.get(symbol, float("nan")))
        self.current = None

    def report_fills(self) -> None:
        pending = self.broker.unreported
        while pending:
            self.strategy.on_fill(pending.popleft(), self.sctx)

    def _on_signal(self, _topic: str, event: Any) -> None:
        if isinstance(event, SignalRaised):
            self.signals += 1
            self.strategy.on_signal(event, self.sctx)
            self.report_fills()

"""Run a strategy over historical bars through the live code, on a simulated clock.

Per bar, in ``(ts, symbol)`` order (bars of one timestamp together):

1. the broker fills the orders placed on earlier bars that this bar trades (market at its
   open, limits when it trades through — :mod:`engine.backtest.broker`);
2. the clock moves to the bar's close and the bar is published as ``BarClosed`` on the
   in-process bus (:class:`~engine.backtest.context.SimContext`): the **live analysis
   service** (:class:`engine.analysis.service.AnalysisService`, not persisting) updates
   its indicators and evaluates the strategy's signal rules, publishing
   ``IndicatorUpdated`` and ``SignalRaised`` as it does live;
3. the strategy sees its signals (``on_signal``) and the bar (``on_bar``); its orders
   pass the live risk gate and wait for the next bar;
4. once every symbol of the timestamp is done, equity (cash + positions at their close)
   is recorded.

Deterministic: no wall clock, no threads, no unseeded randomness — the same inputs give
the same fills and equity, bit for bit. Bad input (no bars, a range without bars,
unknown strategy or parameter, negative cash, commission ≥ 1) raises
:class:`BacktestError` before the run starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import create_engine

from app.settings import AnalysisSettings
from engine.analysis.service import AnalysisService
from engine.backtest import custom as _custom  # noqa: F401  (registers it)
from engine.backtest import examples as _examples  # noqa: F401  (registers them)
from engine.backtest.broker import ACCOUNT, Broker, Denial, Fill, FillModel
from engine.backtest.context import SimContext
from engine.backtest.registry import get as get_strategy
from engine.backtest.strategy import Strategy, StrategyError
from engine.bus import topics
from engine.bus.events import BarClosed, IndicatorUpdated, SignalRaised
from engine.errors import QSuiteError
from engine.indicators.registry import default_registry
from engine.intervals import IntervalError, interval_ns
from engine.persistence.bars import BarRow
from engine.risk.gate import GateSettings, RiskGate
from engine.risk.profile import RiskProfile

Progress = Callable[[int, int], None]
"""``progress(bars done, bars in all)``."""


class BacktestError(QSuiteError, ValueError):
    """A backtest that cannot run; the message says what to change."""


class BacktestConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    strategy: str
    """A registered strategy name, or ``file.py:ClassName``."""
    params: dict[str, Any] = {}
    interval: str = "1d"
    cash: Decimal = Decimal(100_000)
    fills: FillModel = FillModel()
    risk: RiskProfile | None = None
    """Limits the gate applies (account ``backtest``); None: no limits."""
    analysis: AnalysisSettings | None = None
    """Settings of the analysis service (its indicators and warm-up); None: defaults with
    only what the strategy asks for."""


class BacktestResult(msgspec.Struct, kw_only=True):
    config: BacktestConfig
    symbols: list[str]
    bars: int
    signals: int
    fills: list[Fill]
    denied: list[Denial]
    equity_ts: list[int]
    """Close time of each timestamp's bars (UTC ns)."""
    equity: list[Decimal]
    cash: Decimal
    positions: dict[str, Decimal]
    closes: dict[str, list[float]]
    """Each symbol's closes at ``equity_ts`` (forward-filled; for buy and hold)."""
    wall_s: float


class StrategyContext:
    """What a strategy sees and does (see :mod:`engine.backtest.strategy`)."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._values: dict[tuple[str, str], dict[str, float]] = {}

    @property
    def now_ns(self) -> int:
        return self._broker.now_ns

    @property
    def cash(self) -> Decimal:
        return self._broker.cash

    def equity(self) -> Decimal:
        return self._broker.equity()

    def position(self, symbol: str) -> Decimal:
        return self._broker.position(symbol)

    def last(self, symbol: str) -> float | None:
        return self._broker.last.get(symbol)

    def indicator(self, symbol: str, key: str, output: str = "value") -> float | None:
        """The latest closed-bar value of indicator ``key`` (e.g. ``sma_20``)."""
        return self._values.get((symbol, key), {}).get(output)

    def buy(
        self, symbol: str, qty: Decimal | int | None = None, *, limit: Any = None
    ) -> str | None:
        return self._broker.submit(symbol, "buy", _dec(qty), _dec(limit))

    def sell(
        self, symbol: str, qty: Decimal | int | None = None, *, limit: Any = None
    ) -> str | None:
        return self._broker.submit(symbol, "sell", _dec(qty), _dec(limit))

    def close(self, symbol: str) -> str | None:
        """Flatten the position in ``symbol`` at the next bar's open."""
        held = self._broker.position(symbol)
        if held > 0:
            return self._broker.submit(symbol, "sell", held)
        if held < 0:
            return self._broker.submit(symbol, "buy", -held)
        return None

    def cancel(self, order_id: str) -> bool:
        return self._broker.cancel(order_id)

    def _on_indicator(self, _topic: str, event: Any) -> None:
        if isinstance(event, IndicatorUpdated) and not event.forming:
            self._values[(event.symbol, event.indicator)] = event.values


def run(
    config: BacktestConfig,
    bars: Iterable[BarRow],
    *,
    progress: Progress | None = None,
) -> BacktestResult:
    """Run ``config`` over ``bars`` (any order; of ``config.interval``)."""
    started = time.perf_counter()
    strategy = _strategy(config)
    step = _interval(config.interval)
    if config.cash <= 0 or not config.cash.is_finite():
        raise BacktestError(f"cash must be positive, not {config.cash}")
    ordered = sorted(
        (b for b in bars if b.interval == config.interval), key=lambda b: (b.ts, b.symbol)
    )
    if len(ordered) < 2:
        raise BacktestError(
            f"{len(ordered)} bar(s) of {config.interval}: a backtest needs at least 2 "
            "(check the file, the symbols, the interval and the date range)"
        )
    ctx = SimContext(ordered[0].ts)
    gate = RiskGate(
        [config.risk or RiskProfile(account=ACCOUNT)],
        settings=GateSettings(max_orders_per_s=None),
    )
    broker = Broker(config.cash, config.fills, gate)
    sctx = StrategyContext(broker)
    analysis = _analysis(config, strategy)
    analysis.start(ctx)
    signals = [0]

    def on_signal(_topic: str, event: Any) -> None:
        if isinstance(event, SignalRaised):
            signals[0] += 1
            strategy.on_signal(event, sctx)

    ctx.subscribe(topics.INDICATORS, sctx._on_indicator)
    ctx.subscribe(topics.SIGNALS, on_signal)
    symbols = sorted({b.symbol for b in ordered})
    closes: dict[str, list[float]] = {s: [] for s in symbols}
    last_close: dict[str, float] = {}
    equity_ts: list[int] = []
    equity: list[Decimal] = []
    strategy.on_start(sctx)
    total = len(ordered)
    for i, row in enumerate(ordered):
        close_ns = row.ts + step
        event = BarClosed(
            ts_event=close_ns,
            symbol=row.symbol,
            interval=row.interval,
            ts=row.ts,
            open=row.open,
            high=row.high,
            low=row.low,
            close=row.close,
            volume=row.volume,
            origin="replay",
            flags=row.flags,
        )
        for fill in broker.on_bar(event, close_ns):
            strategy.on_fill(fill, sctx)
        ctx.advance_to(close_ns)
        ctx.publish(topics.bar(row.symbol, row.interval), event)
        strategy.on_bar(event, sctx)
        last_close[row.symbol] = row.close
        if i + 1 == total or ordered[i + 1].ts != row.ts:
            equity_ts.append(close_ns)
            equity.append(broker.equity())
            for symbol in symbols:
                closes[symbol].append(last_close.get(symbol, float("nan")))
        if progress is not None and (i % 1000 == 0 or i + 1 == total):
            progress(i + 1, total)
    strategy.on_end(sctx)
    analysis.stop()
    return BacktestResult(
        config=config,
        symbols=symbols,
        bars=total,
        signals=signals[0],
        fills=broker.fills,
        denied=broker.denied,
        equity_ts=equity_ts,
        equity=equity,
        cash=broker.cash,
        positions={s: p.qty for s, p in broker.positions.items()},
        closes=closes,
        wall_s=time.perf_counter() - started,
    )


def _strategy(config: BacktestConfig) -> Strategy[Any]:
    try:
        cls = get_strategy(config.strategy)
        return cls(cls.parse(config.params))
    except StrategyError as exc:
        raise BacktestError(str(exc)) from None


def _interval(interval: str) -> int:
    try:
        return interval_ns(interval)
    except IntervalError as exc:
        raise BacktestError(str(exc)) from None


def _analysis(config: BacktestConfig, strategy: Strategy[Any]) -> AnalysisService:
    rules = strategy.rules()
    base = config.analysis or AnalysisSettings(
        intervals=[config.interval],
        indicators=[],
        rules=[],
        plugins=[],
        history_bars=10,
        snapshot_bars=1,
        flush_interval_s=3600.0,
        preview_interval_s=0.0,
    )
    settings = msgspec.structs.replace(
        base,
        intervals=[config.interval],
        indicators=[*base.indicators, *strategy.indicators()],
        rules=list(rules),
        preview_interval_s=0.0,
    )
    from engine.signals import registry as rules_registry

    def factory(name: str) -> Any:
        return rules_registry.create(name, **rules.get(name, {}))

    service = AnalysisService(
        settings,
        engine=create_engine("sqlite://"),
        registry=default_registry(),
        rule_factory=factory,
        persist=False,
    )
    try:
        service.check_configuration()
    except QSuiteError as exc:
        raise BacktestError(f"the strategy's analysis cannot run: {exc}") from None
    return service


def _dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))

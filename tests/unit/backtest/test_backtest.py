"""The backtest runner: deterministic, never fills inside the signal bar, refuses bad
input before running, and raises the same signals as the live analysis process."""

from __future__ import annotations

import math
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from fakes import FakeContext

from app import database
from app.settings import load_settings
from engine.analysis.service import AnalysisService
from engine.backtest.broker import FillModel
from engine.backtest.registry import register
from engine.backtest.runner import BacktestConfig, BacktestError, run
from engine.backtest.strategy import Strategy, StrategyParams
from engine.bus import topics
from engine.bus.events import BarClosed, SignalRaised
from engine.indicators.registry import default_registry
from engine.persistence.bars import BarRow
from engine.risk.profile import RiskProfile
from engine.signals import registry as rules_registry

D = Decimal
DAY = 86_400 * 10**9
T0 = 1_600_000_000 * 10**9


def walk(n: int, seed: int = 1, symbol: str = "AAA") -> list[BarRow]:
    rng, price, bars = random.Random(seed), 100.0, []
    for i in range(n):
        open_ = price
        price *= math.exp(rng.gauss(0, 0.015))
        high, low = max(open_, price) * 1.003, min(open_, price) * 0.997
        bars.append(BarRow(symbol, "1d", T0 + i * DAY, open_, high, low, price, 1e4, "replay", 0))
    return bars


class EveryBarParams(StrategyParams, frozen=True, kw_only=True):
    pass


@register
class BuyEveryTenth(Strategy[EveryBarParams]):
    """Buys 1 unit on every 10th bar and records what it saw."""

    name = "test_every_tenth"
    params_type = EveryBarParams

    def __init__(self, params: EveryBarParams) -> None:
        super().__init__(params)
        self.decided_on: list[int] = []

    def on_bar(self, bar: BarClosed, ctx: Any) -> None:
        if (bar.ts - T0) // DAY % 10 == 0:
            self.decided_on.append(bar.ts)
            ctx.buy(bar.symbol, 1)


def test_run_when_repeated_then_identical_fills_and_equity() -> None:
    bars = walk(600)
    config = BacktestConfig(strategy="ma_crossover", params={"fast": 10, "slow": 30})

    first, second = run(config, bars), run(config, list(reversed(bars)))

    assert first.fills == second.fills and first.fills
    assert first.equity == second.equity
    assert first.signals == second.signals > 0


def test_market_order_when_decided_on_a_bar_then_filled_at_the_next_open() -> None:
    bars = walk(50)
    by_ts = {b.ts: b for b in bars}

    result = run(BacktestConfig(strategy="test_every_tenth", fills=FillModel(sizing="fixed")), bars)

    assert [f.ts for f in result.fills] == [T0 + (10 * k + 1) * DAY for k in range(5)]
    for fill in result.fills:
        assert fill.price == Decimal(repr(by_ts[fill.ts].open))  # the next bar's open


def test_fills_when_commission_and_slippage_then_cost_charged() -> None:
    bars = walk(30)
    model = FillModel(sizing="fixed", commission=0.001, commission_per_share=0.01, slippage_bps=10)

    result = run(BacktestConfig(strategy="test_every_tenth", fills=model), bars)

    fill = result.fills[0]
    open_ = Decimal(repr(bars[1].open))
    assert fill.price == open_ + open_ * Decimal("0.001")  # 10 bps against the buyer
    assert fill.commission == fill.price * Decimal("0.001") + Decimal("0.01")
    assert result.cash == D(100_000) - sum(f.price + f.commission for f in result.fills)


def test_risk_gate_when_order_beyond_a_limit_then_denied_and_not_filled() -> None:
    profile = RiskProfile(account="backtest", max_order_qty=D(50))

    result = run(BacktestConfig(strategy="ma_crossover", risk=profile), walk(400))

    assert result.fills == []
    assert result.denied and all(d.reason == "order_qty" for d in result.denied)


@pytest.mark.parametrize(
    ("config", "bars", "expected"),
    [
        (BacktestConfig(strategy="nope"), walk(10), "unknown strategy 'nope'"),
        (
            BacktestConfig(strategy="ma_crossover", params={"fast": 30, "slow": 10}),
            walk(10),
            "fast < slow",
        ),
        (BacktestConfig(strategy="ma_crossover", params={"speed": 1}), walk(10), "speed"),
        (BacktestConfig(strategy="ma_crossover", cash=D(-5)), walk(10), "cash must be positive"),
        (BacktestConfig(strategy="ma_crossover"), [], "0 bar(s) of 1d"),
        (BacktestConfig(strategy="ma_crossover", interval="1h"), walk(10), "0 bar(s) of 1h"),
        (BacktestConfig(strategy="ma_crossover", interval="7m"), walk(10), "unknown interval"),
    ],
)
def test_run_when_input_bad_then_error_before_running(
    config: BacktestConfig, bars: list[BarRow], expected: str
) -> None:
    with pytest.raises(BacktestError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        run(config, bars)


def test_fill_model_when_commission_not_below_one_then_refused() -> None:
    with pytest.raises(ValueError, match="commission must be at least 0 and below 1"):
        FillModel(commission=1.0)


def test_signals_when_same_bars_then_backtest_raises_what_the_live_analysis_raises(
    tmp_path: Path,
) -> None:
    bars = walk(400, seed=5)
    rules = {"ma_cross": {"fast": 10, "slow": 30, "type": "sma"}}
    settings = load_settings(environ={"QSUITE__APP__DATA_DIR": str(tmp_path)})
    analysis = msgspec.structs.replace(
        settings.analysis, intervals=["1d"], indicators=[], rules=["ma_cross"]
    )
    live = AnalysisService(
        analysis,
        engine=database.open_database(settings),
        registry=default_registry(),
        rule_factory=lambda name: rules_registry.create(name, **rules[name]),
    )
    ctx = FakeContext("analysis")
    live.start(ctx)
    for b in bars:
        ctx.deliver(
            topics.bar(b.symbol, b.interval),
            BarClosed(
                ts_event=b.ts + DAY,
                symbol=b.symbol,
                interval=b.interval,
                ts=b.ts,
                open=b.open,
                high=b.high,
                low=b.low,
                close=b.close,
                volume=b.volume,
                origin="replay",
            ),
        )
    live.stop()
    live_signals = [(s.rule, s.kind, s.ts) for s in ctx.events(SignalRaised)]
    seen: list[tuple[str, str, int]] = []

    class Recorder(Strategy[EveryBarParams]):
        name = "test_recorder"
        params_type = EveryBarParams

        def rules(self) -> dict[str, dict[str, Any]]:
            return rules

        def on_signal(self, signal: SignalRaised, ctx: Any) -> None:
            seen.append((signal.rule, signal.kind, signal.ts))

    register(Recorder)
    run(BacktestConfig(strategy="test_recorder"), bars)

    assert live_signals and seen == live_signals

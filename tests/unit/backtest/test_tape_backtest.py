"""The trade-print backtest: orders trade in the venue's book against the market makers
and the replayed tape, deterministically."""

from __future__ import annotations

import math
import random
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from engine.backtest.registry import register
from engine.backtest.runner import BacktestConfig, BacktestError
from engine.backtest.strategy import Strategy, StrategyParams
from engine.backtest.tape import Aggressor
from engine.backtest.trades import TradePrint, run_trades
from engine.bus.events import BarClosed
from engine.venue.liquidity import LiquidityParams

D = Decimal
S = 10**9
MIN = 60 * S
T0 = 1_600_000_020 * S - (1_600_000_020 * S) % MIN


class OnceParams(StrategyParams, frozen=True, kw_only=True):
    qty: int = 10
    limit: str = ""


@register
class TradesOnFirstBar(Strategy[OnceParams]):
    """Places one order when the first bar closes and records what it heard."""

    name = "test_trades_first_bar"
    params_type = OnceParams

    def __init__(self, params: OnceParams) -> None:
        super().__init__(params)
        self.order_id: str | None = None
        self.fills: list[Any] = []

    def on_bar(self, bar: BarClosed, ctx: Any) -> None:
        if self.order_id is None:
            limit = D(self.params.limit) if self.params.limit else None
            self.order_id = ctx.buy(bar.symbol, self.params.qty, limit=limit)

    def on_fill(self, fill: Any, ctx: Any) -> None:
        self.fills.append(fill)


def prints(minute: int, *trades: tuple[float, float, Aggressor]) -> list[TradePrint]:
    return [
        TradePrint("AAA", T0 + minute * MIN + i * S, price, size, side)
        for i, (price, size, side) in enumerate(trades)
    ]


def test_run_trades_when_market_buy_on_first_bar_then_fills_at_makers_ask() -> None:
    tape = prints(0, (100.0, 5, "buy"), (100.0, 5, "sell")) + prints(1, (100.0, 5, "buy"))

    result = run_trades(BacktestConfig(strategy="test_trades_first_bar", interval="1m"), tape)

    assert len(result.fills) == 1
    fill = result.fills[0]
    assert (fill.side, fill.qty, fill.price) == ("buy", D(10), D("100.01"))  # not 100.00
    assert fill.ts == T0 + MIN  # the close of the first bar, before the next print
    assert result.positions == {"AAA": D(10)}
    assert result.cash == D(100_000) - D("1000.10")
    assert result.bars == 2
    assert result.equity_ts == [T0 + MIN, T0 + 2 * MIN]
    assert result.equity == [D(100_000) - D("0.10")] * 2


def test_run_trades_when_limit_rests_below_market_then_fills_only_when_tape_sells_through() -> None:
    thin = LiquidityParams(levels=2, spacing_ticks=1, size_lots=3, refill_ns=10 * MIN)
    tape = (
        prints(0, (100.0, 5, "buy"))
        + prints(1, (99.50, 5, "sell"), (99.20, 5, "sell"), (99.05, 5, "sell"))
        # through 99.00, but the makers' bids at 99.04 and 99.03 come first and absorb it
        + prints(2, (99.00, 4, "sell"))
        # the strategy's 99.00 is now the best bid: the next sell takes it first
        + prints(3, (98.98, 20, "sell"), (99.10, 5, "buy"))
    )
    config = BacktestConfig(
        strategy="test_trades_first_bar", params={"qty": 5, "limit": "99.00"}, interval="1m"
    )

    result = run_trades(config, tape, liquidity=thin)

    assert [(f.side, f.qty, f.price, f.ts) for f in result.fills] == [
        ("buy", D(5), D("99.00"), T0 + 3 * MIN)
    ]
    assert result.positions == {"AAA": D(5)}
    assert result.cash == D(100_000) - D("495.00")
    assert result.equity[:3] == [D(100_000)] * 3
    assert result.equity[-1] == result.cash + 5 * D("99.10")


def test_run_trades_when_limit_never_traded_through_then_no_fill() -> None:
    tape = prints(0, (100.0, 5, "buy")) + prints(1, (99.50, 500, "sell"), (99.01, 5, "sell"))
    config = BacktestConfig(
        strategy="test_trades_first_bar", params={"qty": 5, "limit": "99.00"}, interval="1m"
    )

    result = run_trades(config, tape)

    assert result.fills == []
    assert result.equity == [D(100_000)] * 2


def walk_prints(n_bars: int, seed: int = 7) -> list[TradePrint]:
    rng, price, out = random.Random(seed), 100.0, []
    for bar in range(n_bars):
        drift = 0.004 if (bar // 40) % 2 == 0 else -0.004
        for k in range(5):
            price *= math.exp(drift / 5 + rng.gauss(0, 0.002))
            side: Aggressor = "buy" if rng.random() < 0.5 else "sell"
            out.append(TradePrint("AAA", T0 + bar * MIN + k * 10 * S, round(price, 2), 50.0, side))
    return out


def ma_config() -> BacktestConfig:
    return BacktestConfig(
        strategy="ma_crossover", params={"fast": 3, "slow": 8}, interval="1m", cash=D(10_000)
    )


def test_run_trades_when_ma_crossover_over_synthetic_prints_then_fills_and_equity() -> None:
    tape = walk_prints(200)

    result = run_trades(ma_config(), tape)

    assert result.signals > 0
    assert len(result.fills) >= 2
    assert {f.side for f in result.fills} == {"buy", "sell"}
    assert result.bars == 200
    assert len(result.equity) == len(result.equity_ts) == 200
    assert result.equity_ts == sorted(result.equity_ts)
    assert all(e > 0 for e in result.equity)
    assert result.cash >= 0
    assert len(result.closes["AAA"]) == 200


def test_run_trades_when_run_twice_then_identical() -> None:
    tape = walk_prints(150, seed=3)

    first = msgspec.to_builtins(run_trades(ma_config(), tape))
    second = msgspec.to_builtins(run_trades(ma_config(), tape))

    first.pop("wall_s"), second.pop("wall_s")
    assert first == second


def test_run_trades_when_prints_unsorted_or_empty_then_refuses() -> None:
    tape = prints(0, (100.0, 5, "buy")) + prints(1, (100.0, 5, "buy"))
    with pytest.raises(BacktestError, match="sorted"):
        run_trades(ma_config(), list(reversed(tape)))
    with pytest.raises(BacktestError, match="no trade prints"):
        run_trades(ma_config(), [])

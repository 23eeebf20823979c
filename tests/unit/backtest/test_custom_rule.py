"""A custom strategy's rule, condition, cooldown and daily maximum in a backtest: the
live decision code on bars."""

from __future__ import annotations

import pytest
from test_backtest import DAY, walk

from engine.backtest.runner import BacktestConfig, BacktestError, run

RSI = {"signal_rule": "rsi_cross", "rule_params": {"period": 14, "lower": 30, "upper": 70}}


def test_custom_rule_when_it_mirrors_rsi_reversion_then_the_same_fills() -> None:
    bars = walk(800, seed=3)
    params = {
        **RSI,
        "condition": {"kind": "oversold_exit"},
        "close_on": ["overbought_entry"],
        "max_triggers_per_day": 10,
    }

    custom = run(BacktestConfig(strategy="custom_rule", params=params), bars)
    example = run(BacktestConfig(strategy="rsi_reversion"), bars)

    def trades(fills: list) -> list[tuple]:
        return [(f.side, f.qty, f.price, f.ts) for f in fills]

    assert custom.fills and trades(custom.fills) == trades(example.fills)


def test_custom_rule_when_in_cooldown_then_later_signals_do_not_trade() -> None:
    bars = walk(800, seed=3)
    base = {**RSI, "condition": {"kind": "oversold_exit"}, "qty": "1", "max_triggers_per_day": 5}

    free = run(BacktestConfig(strategy="custom_rule", params=base), bars)
    cooled = run(
        BacktestConfig(strategy="custom_rule", params={**base, "cooldown_s": 1000 * DAY // 10**9}),
        bars,
    )

    assert len(free.fills) > 1
    assert len(cooled.fills) == 1


def test_custom_rule_when_condition_unknown_then_refused_before_running() -> None:
    params = {**RSI, "condition": {"colour": "red"}}

    with pytest.raises(BacktestError, match="unknown condition key 'colour'"):
        run(BacktestConfig(strategy="custom_rule", params=params), walk(10))

"""The strategies QSuite ships as examples (both trade on the live signal rules)."""

from __future__ import annotations

from typing import Any, Literal

from engine.backtest.registry import register
from engine.backtest.strategy import Strategy, StrategyParams
from engine.bus.events import SignalRaised


class MaCrossParams(StrategyParams, frozen=True, kw_only=True):
    fast: int = 20
    """Fast moving-average period (bars)."""
    slow: int = 50
    """Slow moving-average period (bars), above ``fast``."""
    type: Literal["sma", "ema"] = "sma"

    def __post_init__(self) -> None:
        if not 1 < self.fast < self.slow:
            raise ValueError(f"need 1 < fast < slow, not fast={self.fast} slow={self.slow}")


@register
class MovingAverageCrossover(Strategy[MaCrossParams]):
    """Long on a golden cross (fast average above slow), flat on a death cross — the
    live ``ma_cross`` rule with these periods."""

    name = "ma_crossover"
    params_type = MaCrossParams
    description = "Long on a golden cross, flat on a death cross."

    def rules(self) -> dict[str, dict[str, Any]]:
        p = self.params
        return {"ma_cross": {"fast": p.fast, "slow": p.slow, "type": p.type}}

    def on_signal(self, signal: SignalRaised, ctx: Any) -> None:
        if signal.kind == "golden_cross" and ctx.position(signal.symbol) <= 0:
            ctx.buy(signal.symbol)
        elif signal.kind == "death_cross" and ctx.position(signal.symbol) > 0:
            ctx.close(signal.symbol)


class RsiParams(StrategyParams, frozen=True, kw_only=True):
    period: int = 14
    lower: float = 30.0
    """Oversold threshold: buy when RSI climbs back above it."""
    upper: float = 70.0
    """Overbought threshold: sell when RSI rises above it."""

    def __post_init__(self) -> None:
        if not 0 < self.lower < self.upper < 100:
            raise ValueError("need 0 < lower < upper < 100")
        if self.period < 2:
            raise ValueError("period must be at least 2")


@register
class RsiMeanReversion(Strategy[RsiParams]):
    """Buy when RSI leaves the oversold zone, sell when it enters the overbought zone —
    the live ``rsi_cross`` rule with these thresholds."""

    name = "rsi_reversion"
    params_type = RsiParams
    description = "Buy when RSI leaves oversold, sell when it enters overbought."

    def rules(self) -> dict[str, dict[str, Any]]:
        p = self.params
        return {"rsi_cross": {"period": p.period, "lower": p.lower, "upper": p.upper}}

    def on_signal(self, signal: SignalRaised, ctx: Any) -> None:
        if signal.kind == "oversold_exit" and ctx.position(signal.symbol) <= 0:
            ctx.buy(signal.symbol)
        elif signal.kind == "overbought_entry" and ctx.position(signal.symbol) > 0:
            ctx.close(signal.symbol)

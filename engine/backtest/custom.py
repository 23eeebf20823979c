"""A custom strategy of the execution process (:mod:`engine.algos.strategies`) in a
backtest: the same signal rule, the same condition (:class:`Condition`: kind, strength,
an indicator below/above) and the same cooldown and daily maximum decide when it
starts — the live code, not a copy.

What a start does differs, by design: live it starts an execution algorithm; on bar data
the parent becomes one market order of ``qty`` (sized by the fill model when None) that
fills at the next bar's open — a backtest of *when* the strategy trades, not of how an
algorithm works the order (that needs trade data and the venue). ``close_on`` adds exits
(signal kinds that flatten the position), which a live strategy leaves to the operator.

    qsuite backtest --strategy custom_rule --param signal_rule=rsi_cross \\
        --param 'condition={"kind": "oversold_exit"}' --param 'close_on=["overbought_entry"]' …
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.algos.strategy_store import Condition
from engine.algos.strategy_store import Strategy as LiveStrategy
from engine.backtest.registry import register
from engine.backtest.strategy import Strategy, StrategyError, StrategyParams
from engine.bus.events import Side, SignalRaised
from engine.errors import CommandError


class CustomRuleParams(StrategyParams, frozen=True, kw_only=True):
    signal_rule: str
    """The signal rule whose signals start it (``rsi_cross``, ``ma_cross`` …)."""
    rule_params: dict[str, Any] = {}
    """The rule's parameters over its defaults (as the analysis settings would give)."""
    symbol: str | None = None
    """Only this symbol (None: every symbol of the run)."""
    condition: dict[str, Any] = {}
    """A custom strategy's condition (kind, min_strength, indicator with below/above)."""
    side: Side = "buy"
    qty: Decimal | None = None
    cooldown_s: int = 0
    max_triggers_per_day: int = 1
    close_on: tuple[str, ...] = ()
    """Signal kinds that flatten the position (backtest only)."""


@register
class CustomRule(Strategy[CustomRuleParams]):
    """A custom strategy's rule, condition, cooldown and daily maximum on bars."""

    name = "custom_rule"
    params_type = CustomRuleParams
    description = "A custom strategy (signal + condition + cooldown) as market orders."

    def __init__(self, params: CustomRuleParams) -> None:
        super().__init__(params)
        try:
            condition = Condition.parse(params.condition)
        except CommandError as exc:
            raise StrategyError(f"custom_rule condition: {exc.message}") from None
        self.live = LiveStrategy(
            name="backtest",
            signal_rule=params.signal_rule,
            symbol=params.symbol,
            condition=condition,
            algo_type="market",
            algo_params={},
            account="backtest",
            side=params.side,
            qty=params.qty or Decimal(0),
            cooldown_s=params.cooldown_s,
            max_triggers_per_day=params.max_triggers_per_day,
            enabled=True,
        )

    def rules(self) -> dict[str, dict[str, Any]]:
        return {self.params.signal_rule: dict(self.params.rule_params)}

    def on_signal(self, signal: SignalRaised, ctx: Any) -> None:
        p, live = self.params, self.live
        if p.symbol is not None and signal.symbol != p.symbol:
            return
        if signal.kind in p.close_on:
            ctx.close(signal.symbol)
            return
        why = live.condition.refuses(signal, self._value(signal, ctx)) or live.waits(ctx.now_ns)
        if why:
            return
        order = ctx.buy if p.side == "buy" else ctx.sell
        if order(signal.symbol, p.qty) is not None:
            live.count(ctx.now_ns)

    def _value(self, signal: SignalRaised, ctx: Any) -> float | None:
        name = self.live.condition.indicator
        if name is None:
            return None
        key, _, output = name.partition(".")
        return ctx.indicator(signal.symbol, key, output or "value")

"""The strategy interface for quants (version :data:`INTERFACE_VERSION`).

A strategy is a class with a frozen parameter struct. It names the signal rules and
indicators it wants (:meth:`Strategy.rules`, :meth:`Strategy.indicators`) — the live
analysis code computes them, bar by bar, exactly as it does in production — and reacts
through callbacks:

- ``on_start(ctx)`` once, before the first bar;
- ``on_signal(signal, ctx)`` for each ``SignalRaised`` of its rules (after the bar that
  raised it closed);
- ``on_bar(bar, ctx)`` after each closed bar (indicators of that bar are available
  through ``ctx.indicator``);
- ``on_fill(fill, ctx)`` when one of its orders filled;
- ``on_end(ctx)`` after the last bar.

Orders go through ``ctx.buy`` / ``ctx.sell`` / ``ctx.close`` / ``ctx.cancel`` (see
:class:`~engine.backtest.broker.Broker`): they pass the pre-trade risk gate at once and
fill at the earliest on the *next* bar (market: its open, limit: when it trades
through) — never inside the bar whose close the strategy just saw. Callbacks must be
deterministic (no wall clock, no unseeded randomness) for runs to be reproducible.

Interface versions: 1 — this module.
"""

from __future__ import annotations

from abc import ABC
from typing import Any, ClassVar, Generic, TypeVar

import msgspec

from engine.bus.events import BarClosed, SignalRaised
from engine.errors import QSuiteError

INTERFACE_VERSION = 1


class StrategyError(QSuiteError, ValueError):
    """An unknown strategy or invalid parameters (the message names the field)."""


class StrategyParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every strategy's parameters."""


P = TypeVar("P", bound=StrategyParams)


class Strategy(ABC, Generic[P]):
    """Base of every backtest strategy (see the module docstring)."""

    INTERFACE_VERSION: ClassVar[int] = INTERFACE_VERSION
    name: ClassVar[str]
    version: ClassVar[int] = 1
    params_type: ClassVar[type[StrategyParams]] = StrategyParams
    description: ClassVar[str] = ""

    def __init__(self, params: P) -> None:
        self.params = params

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Any:
        """Validated parameters from JSON-able ``raw``; raises :class:`StrategyError`."""
        try:
            return msgspec.convert(raw, cls.params_type, strict=False)
        except (msgspec.ValidationError, ValueError) as exc:
            raise StrategyError(f"strategy {cls.name}: {exc}") from None

    def rules(self) -> dict[str, dict[str, Any]]:
        """Signal rules to evaluate (name → parameters over the rule's defaults)."""
        return {}

    def indicators(self) -> list[str]:
        """Indicators to compute besides the rules' (analysis indicator specs)."""
        return []

    def on_start(self, ctx: Any) -> None:
        """Before the first bar."""

    def on_signal(self, signal: SignalRaised, ctx: Any) -> None:
        """A signal of one of :meth:`rules`."""

    def on_bar(self, bar: BarClosed, ctx: Any) -> None:
        """A bar closed (after the analysis of it)."""

    def on_fill(self, fill: Any, ctx: Any) -> None:
        """One of its orders (partly) filled."""

    def on_end(self, ctx: Any) -> None:
        """After the last bar."""

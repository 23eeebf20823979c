"""What the Algorithms and Risk pages and their parts need from the bridge (tests pass
fakes): its view state and ``act``, which sends a command as the logged-in user and
answers with the reply or why there is none, in words."""

from __future__ import annotations

from typing import Protocol, TypeVar

from engine.bus.commands import Command, Result
from ui.algo_state import AlgoBoard
from ui.risk_state import RiskBoard
from ui.trading_state import TradingView

R = TypeVar("R", bound=Result)


class AlgoSource(Protocol):
    algos: AlgoBoard
    trading: TradingView

    def symbols(self) -> list[str]: ...

    async def act(self, command: Command, kind: type[R]) -> tuple[R | None, str]: ...


class RiskSource(Protocol):
    risk: RiskBoard

    async def act(self, command: Command, kind: type[R]) -> tuple[R | None, str]: ...

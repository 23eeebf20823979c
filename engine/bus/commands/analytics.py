"""Analytics commands: the live account's performance, served by the ``scheduler``
process from the snapshots its ``analytics_snapshot`` job stores
(:mod:`engine.analytics.snapshots`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, ClassVar

import msgspec

from engine.bus.commands.base import Command, Result

#: Snapshots one reply carries at most (a reply frame stays under ``control.max_message_bytes``).
MAX_SNAPSHOTS = 2000
SnapshotCount = Annotated[int, msgspec.Meta(ge=1, le=MAX_SNAPSHOTS)]
DEFAULT_CAPITAL = Decimal(1_000_000)


class SnapshotRow(msgspec.Struct, frozen=True, kw_only=True):
    """An account's P&L and exposure at one moment (one ``analytics_snapshot`` run)."""

    ts: int
    """When it was taken, UTC ns."""
    account: str
    realized_pnl: Decimal
    """Since inception, net of fees."""
    unrealized_pnl: Decimal
    """Of the open positions at the marks of the moment; a position without a mark adds 0."""
    total_pnl: Decimal
    """``realized_pnl + unrealized_pnl``."""
    gross_exposure: Decimal
    """``Σ |qty| * mark`` over the open positions with a mark."""
    net_exposure: Decimal
    """``Σ qty * mark`` over the open positions with a mark."""
    positions: int
    """Open (non-flat) positions."""
    fills: int
    """Fills of the account so far."""
    marks_missing: int
    """Open positions that had no mark (their P&L and exposure are left out)."""


class PerformanceFigures(msgspec.Struct, frozen=True, kw_only=True):
    """Key figures of the equity curve ``capital + total_pnl`` over the snapshots
    (formulas: :mod:`engine.analytics.performance`; annualized on calendar time, since
    snapshots are taken around the clock). Undefined ratios are None."""

    start_ts: int
    end_ts: int
    points: int
    """Snapshots in the curve."""
    periods_per_year: float | None
    initial_equity: float
    final_equity: float
    pnl: Decimal
    """Total P&L over the window: the last snapshot's ``total_pnl`` less the first's."""
    total_return: float
    annualized_return: float | None
    annualized_volatility: float | None
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    max_drawdown: float
    """Deepest drawdown, a fraction of the peak."""
    max_drawdown_start_ts: int
    max_drawdown_trough_ts: int
    max_drawdown_end_ts: int
    max_drawdown_duration_s: float
    max_drawdown_recovered: bool


class AccountPerformance(Result, frozen=True, kw_only=True, tag="AccountPerformance.v1"):
    """An account's stored snapshots and the performance of its equity over them."""

    account: str
    capital: Decimal
    """The equity base the curve starts from (``equity = capital + total_pnl``)."""
    snapshots: list[SnapshotRow]
    """Oldest first: the newest ``limit`` since ``since_ns``."""
    truncated: bool = False
    """More snapshots matched than ``limit``; the oldest were left out."""
    performance: PerformanceFigures | None = None
    """Over ``snapshots``; None with fewer than two."""


class GetPerformance(Command, frozen=True, kw_only=True, tag="GetPerformance.v1"):
    """An account's performance from its stored snapshots (``qsuite ctl performance``)."""

    account: str
    since_ns: int | None = None
    """First snapshot time, UTC ns; None: from the first one (within ``limit``)."""
    capital: Decimal = DEFAULT_CAPITAL
    """Equity base of the curve (> 0); returns are relative to ``capital + total_pnl``."""
    limit: SnapshotCount = MAX_SNAPSHOTS

    target: ClassVar[str] = "scheduler"


RESULTS = (AccountPerformance,)
COMMANDS = (GetPerformance,)

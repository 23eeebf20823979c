"""How ``qsuite ctl performance`` prints its reply: the key figures as ``key: value``
lines, then the newest snapshots as a table (``--json`` has them all)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.render_table import cell, table, utc_time
from engine.bus.commands import Result
from engine.bus.commands.analytics import AccountPerformance, PerformanceFigures

#: Snapshots the table shows (the newest).
SHOWN = 20


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86_400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86_400:.1f}d"


def _figures(p: PerformanceFigures) -> dict[str, Any]:
    drawdown = _percent(p.max_drawdown)
    if p.max_drawdown > 0:
        state = "recovered" if p.max_drawdown_recovered else "not recovered"
        drawdown += (
            f" (peak {utc_time(p.max_drawdown_start_ts)}, trough "
            f"{utc_time(p.max_drawdown_trough_ts)}, {_duration(p.max_drawdown_duration_s)}, "
            f"{state})"
        )
    return {
        "window": f"{utc_time(p.start_ts)} to {utc_time(p.end_ts)} ({p.points} snapshots)",
        "p&l": p.pnl,
        "equity": f"{p.initial_equity:,.2f} to {p.final_equity:,.2f}",
        "total return": _percent(p.total_return),
        "annualized return": _percent(p.annualized_return),
        "annualized volatility": _percent(p.annualized_volatility),
        "sharpe": _ratio(p.sharpe),
        "sortino": _ratio(p.sortino),
        "calmar": _ratio(p.calmar),
        "max drawdown": drawdown,
    }


def _account_performance(result: AccountPerformance) -> None:
    print(f"{result.account} (capital {result.capital})")
    if result.performance is None:
        print("performance: - (fewer than two snapshots; see `qsuite ctl jobs`)")
    else:
        for key, value in _figures(result.performance).items():
            print(f"{key}: {cell(value)}")
    shown = result.snapshots[-SHOWN:]
    left_out = len(result.snapshots) - len(shown)
    if result.truncated or left_out:
        more = " and more before them" if result.truncated else ""
        print(f"(the newest {len(shown)} of {len(result.snapshots)} snapshots{more}; --json)")
    table(
        [
            {
                "time": utc_time(s.ts),
                "realized": s.realized_pnl,
                "unrealized": s.unrealized_pnl,
                "total": s.total_pnl,
                "gross": s.gross_exposure,
                "net": s.net_exposure,
                "positions": s.positions,
                "fills": s.fills,
                "unmarked": s.marks_missing or None,
            }
            for s in shown
        ]
    )


ANALYTICS_RENDERERS: dict[type[Result], Callable[[Any], None]] = {
    AccountPerformance: _account_performance,
}
"""Each analytics result type and how it is printed."""

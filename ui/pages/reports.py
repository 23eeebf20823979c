"""Reports page: the live account's performance from the scheduler's snapshots, and backtests
run from the console (:mod:`ui.components.backtest_form`).

Performance
    ``GetPerformance`` (a read: any logged-in user) for the chosen account — one of
    ``risk.default_accounts`` or of the positions the console knows, or one typed in —
    when the page opens, when the account changes, on "Refresh" and every ``POLL_S``:
    the key figures and the equity line ``capital + total P&L`` over the snapshots. The
    scheduler takes one every ``sync.snapshot_every_s``; with fewer than two the page says
    so, and how to take one now.
Backtests
    Operators and admins get the form; viewers see that it is not theirs (the handler
    checks the role too).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from nicegui import ui
from sqlalchemy import Engine

from app.settings import Settings
from engine.bus.commands import Command, Result
from engine.bus.commands.analytics import AccountPerformance, GetPerformance, PerformanceFigures
from ui import session
from ui.components.backtest_form import BacktestForm
from ui.components.format import iso, num, parse_decimal, pct, when
from ui.components.redraw import Changes
from ui.components.widgets import marked, say, table
from ui.trading_state import TradingView

R = TypeVar("R", bound=Result)
POLL_S = 60.0
"""The shown account's performance is asked again this often (snapshots are minutes apart)."""
DEFAULT_CAPITAL = "1000000"
FIGURE_COLUMNS = [
    {"name": "figure", "label": "Figure", "field": "figure", "align": "left"},
    {"name": "value", "label": "Value", "field": "value"},
]


class ReportsSource(Protocol):
    """What the page needs from the bridge (tests pass a fake)."""

    settings: Settings
    trading: TradingView

    def symbols(self) -> list[str]: ...

    async def act(self, command: Command, kind: type[R]) -> tuple[R | None, str]: ...


def _console_database() -> Engine:
    return session.accounts().store.engine  # the console's own, opened once from settings


async def load_performance(
    bridge: ReportsSource, account: str, capital: str
) -> tuple[AccountPerformance | None, str]:
    """``GetPerformance`` as the logged-in user: the reply, or (None, why not in words)."""
    account = account.strip()
    amount = parse_decimal(capital)
    if not account:
        return None, "Choose or type an account"
    if amount is None or amount <= 0:
        return None, "Capital must be a positive number"
    report, why = await bridge.act(
        GetPerformance(account=account, capital=amount), AccountPerformance
    )
    return report, "" if report is not None else f"Cannot load the performance of {account}: {why}"


def accounts(bridge: ReportsSource) -> list[str]:
    """The accounts to offer: the configured ones, then any other the positions name."""
    configured = list(bridge.settings.risk.default_accounts)
    held = {account for account, _ in bridge.trading.positions}
    return configured + sorted(held - set(configured))


def too_few(report: AccountPerformance, every_s: float) -> str:
    """Why there are no figures yet ("" when there are)."""
    if report.performance is not None:
        return ""
    n = len(report.snapshots)
    how = (
        f"snapshots are taken every sync.snapshot_every_s ({every_s:g} s) by the scheduler"
        if every_s > 0
        else "snapshots are off (sync.snapshot_every_s = 0)"
    )
    return (
        f"{n} snapshot{'' if n == 1 else 's'} of {report.account} so far: the performance "
        f"needs at least two. {how[0].upper()}{how[1:]}; run "
        "`qsuite ctl jobs run analytics_snapshot` to take one now."
    )


def figure_rows(p: PerformanceFigures) -> list[dict[str, Any]]:
    def ratio(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    days = p.max_drawdown_duration_s / 86_400
    shown = [
        ("total_return", "Total return", pct(p.total_return, signed=True)),
        ("annualized_return", "Annualized return", pct(p.annualized_return, signed=True)),
        ("sharpe", "Sharpe", ratio(p.sharpe)),
        ("sortino", "Sortino", ratio(p.sortino)),
        ("max_drawdown", "Max drawdown", pct(p.max_drawdown)),
        (
            "drawdown_length",
            "Its length",
            f"{days:.1f} days{'' if p.max_drawdown_recovered else ', not recovered'}",
        ),
        ("pnl", "P&L", num(p.pnl, 2, strip=False)),
        ("final_equity", "Final equity", f"{p.final_equity:,.2f}"),
        ("volatility", "Annualized volatility", pct(p.annualized_volatility)),
    ]
    return [{"key": key, "figure": label, "value": value} for key, label, value in shown]


def equity_figure(report: AccountPerformance | None) -> dict[str, Any]:
    """``capital + total P&L`` at each snapshot (plotly, as a dict)."""
    data: list[dict[str, Any]] = []
    if report is not None and report.snapshots:
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers" if len(report.snapshots) < 50 else "lines",
                "name": report.account,
                "x": [iso(s.ts) for s in report.snapshots],
                "y": [float(report.capital + s.total_pnl) for s in report.snapshots],
                "line": {"color": "#1976d2"},
            }
        )
    return {
        "data": data,
        "layout": {
            "margin": {"l": 70, "r": 10, "t": 10, "b": 30},
            "xaxis": {"type": "date"},
            "yaxis": {"title": {"text": "equity"}},
            "uirevision": report.account if report is not None else "",
        },
        "config": {"displayModeBar": False},
    }


class PerformancePanel:
    """An account's snapshots: key figures and the equity line."""

    def __init__(self, bridge: ReportsSource) -> None:
        self.bridge = bridge
        self.every_s = bridge.settings.sync.snapshot_every_s
        self.changed = Changes()
        self.due = 0.0
        self.loading = False
        offered = accounts(bridge)
        with ui.card().classes("w-full gap-1").props('data-testid="performance"'):
            ui.label("Account performance").classes("text-subtitle2")
            with ui.row().classes("items-center gap-2"):
                account = ui.select(
                    offered,
                    value=next(iter(offered), None),
                    label="Account",
                    with_input=True,
                    new_value_mode="add-unique",
                )
                self.account = marked(account.classes("w-48"), "perf-account")
                self.capital = marked(ui.input("Capital", value=DEFAULT_CAPITAL), "perf-capital")
                self.capital.tooltip("the equity base: equity = capital + total P&L")
                marked(ui.button("Refresh", on_click=self.load), "perf-refresh")
            self.problem = marked(ui.label("").classes("text-caption"), "perf-error")
            self.note = marked(ui.label("").classes("text-caption"), "perf-note")
            with ui.row().classes("w-full items-start no-wrap gap-4"):
                self.figures = table(FIGURE_COLUMNS, "perf-figures")
                self.chart = ui.plotly(equity_figure(None)).classes("grow h-64").mark("perf-chart")
        self.account.on_value_change(self.load)

    async def tick(self) -> None:
        offered = accounts(self.bridge)
        if self.changed("accounts", offered):
            value = self.account.value
            self.account.set_options(offered + ([value] if value and value not in offered else []))
        if time.monotonic() >= self.due:
            await self.load()

    async def load(self) -> None:
        if self.loading:
            self.due = 0.0  # the account or capital changed meanwhile: ask again next tick
            return
        self.loading, self.due = True, time.monotonic() + POLL_S
        try:
            account = str(self.account.value or "")
            report, why = await load_performance(self.bridge, account, self.capital.value or "")
        finally:
            self.loading = False
        say(self.problem, report is not None, why)
        if report is None:
            return
        self.show(report)

    def show(self, report: AccountPerformance) -> None:
        snaps = report.snapshots
        span = f", {when(snaps[0].ts)} → {when(snaps[-1].ts)} UTC" if snaps else ""
        older = "; older ones left out" if report.truncated else ""
        self.note.set_text(too_few(report, self.every_s) or f"{len(snaps)} snapshots{span}{older}")
        p = report.performance
        self.figures.rows = [] if p is None else figure_rows(p)
        self.chart.update_figure(equity_figure(report))


def build(bridge: ReportsSource, database: Callable[[], Engine] = _console_database) -> None:
    """The page; ``database`` gives the engine backtests read bars from (tests pass one)."""
    user = session.current_user()
    ui.label("Reports").classes("text-h5")
    panel = PerformancePanel(bridge)
    ui.timer(1.0, panel.tick)
    ui.label("Backtests").classes("text-h6")
    if user is not None and user.may("operator"):
        with ui.row().classes("w-full items-start gap-4 no-wrap"):
            reports = bridge.settings.data_path / "reports"
            BacktestForm(bridge.symbols(), database, reports)
    else:
        who = f"you are {user.name} ({user.role})" if user is not None else "log in first"
        ui.label(f"Backtests are for operators and admins (they cost CPU); {who}.").classes(
            "text-caption"
        ).mark("bt-not-allowed")

"""The backtest form of the Reports page — a registered strategy and its parameters (drawn
from its parameter schema), symbols, interval, dates and fill model — and the last run's
results: key metrics, equity against buy and hold, and the HTML report to download.

Only operators and admins run backtests (they cost CPU): the handler checks the role. The
bars come from the console's own database; the run leaves the event loop for a worker
process (:mod:`ui.backtest_runs`). A tab runs one backtest at a time.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
from loguru import logger
from nicegui import ui
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from engine.backtest import registry
from engine.backtest.api import to_ns
from engine.backtest.runner import BacktestError
from engine.backtest.strategy import StrategyError
from engine.errors import OperationalError
from engine.intervals import INTERVAL_SECONDS
from ui import backtest_runs, session
from ui.algo_state import ParamField, parse_params_schema
from ui.backtest_runs import BacktestRequest, BacktestSummary
from ui.components.algo_form import initial_value, read_params
from ui.components.algo_start import param_input, param_value
from ui.components.format import iso, parse_decimal, parse_float, pct
from ui.components.widgets import marked, say, table

MAX_SYMBOLS = 50
PREFERRED_STRATEGY = "ma_crossover"
"""The strategy the form shows first (when registered)."""
SYMBOL = re.compile(r"^[A-Za-z0-9.\-=^_]{1,32}$")
"""A market-data symbol, as ``engine.bus.commands.market.Symbol`` checks it."""
METRIC_COLUMNS = [
    {"name": "metric", "label": "Metric", "field": "metric", "align": "left"},
    {"name": "value", "label": "Value", "field": "value"},
]


# --- the form as pure functions --------------------------------------------------------------


def strategy_fields(name: str) -> tuple[ParamField, ...]:
    """The fields of a registered strategy's parameters, from its params schema."""
    schema = msgspec.json.schema(registry.get(name).params_type)
    ref = str(schema.get("$ref", "")).rsplit("/", 1)[-1]
    body = schema.get("$defs", {}).get(ref, schema)
    return parse_params_schema(msgspec.json.encode(body).decode())


def check_backtest(
    strategy: str,
    values: Mapping[str, Any],
    *,
    symbols: Sequence[str],
    interval: str,
    start: str,
    end: str,
    cash: str,
    commission: str,
    slippage_bps: str,
) -> BacktestRequest | list[str]:
    """The request of a filled-in form, or what is wrong with it (in words)."""
    if strategy not in registry.names():  # never file.py:Class from a browser
        return [f"Strategy must be one of {', '.join(registry.names())}"]
    params, problems = read_params(strategy_fields(strategy), values)
    if not problems:
        try:
            registry.get(strategy).parse(params)
        except StrategyError as exc:
            problems.append(str(exc))
    names = list(dict.fromkeys(s.strip() for s in symbols if s.strip()))
    bad = [s for s in names if not SYMBOL.match(s)]
    if not names:
        problems.append("Symbols: choose at least one")
    elif bad:
        problems.append(f"Symbols: not a symbol: {', '.join(bad)}")
    elif len(names) > MAX_SYMBOLS:
        problems.append(f"Symbols: at most {MAX_SYMBOLS} in one backtest")
    if interval not in INTERVAL_SECONDS:
        problems.append(f"Interval must be one of {', '.join(INTERVAL_SECONDS)}")
    bounds: dict[str, int | None] = {}
    for label, text in (("Start", start), ("End", end)):
        try:
            bounds[label] = to_ns(text.strip() or None, label)
        except BacktestError as exc:
            problems.append(str(exc))
    lo, hi = bounds.get("Start"), bounds.get("End")
    if lo is not None and hi is not None and lo >= hi:
        problems.append("Start must be before End")
    amount = parse_decimal(cash)
    if amount is None or amount <= 0:
        problems.append("Cash must be a positive number")
    fee = parse_float(commission or "0")
    if fee is None or not 0 <= fee < 1:
        problems.append("Commission must be a fraction of the traded value: 0 ≤ c < 1 (0.001)")
    slip = parse_float(slippage_bps or "0")
    if slip is None or not 0 <= slip <= 10_000:
        problems.append("Slippage must be between 0 and 10000 bps")
    if problems:
        return problems
    assert amount is not None and fee is not None and slip is not None
    moment = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return BacktestRequest(
        run_id=f"bt-{moment}-{uuid.uuid4().hex[:8]}",
        strategy=strategy,
        params=params,
        symbols=names,
        interval=interval,
        start=lo,
        end=hi,
        cash=amount,
        commission=fee,
        slippage_bps=slip,
    )


async def start_backtest(
    request: BacktestRequest | list[str], database: Callable[[], Engine], reports: Path
) -> tuple[BacktestSummary | None, str]:
    """Run a checked form (operator): (the summary, what ran) or (None, why not, in words)."""
    await session.confirm()  # renews the session; ends it if expired or disabled
    try:
        user = session.require("operator")
    except session.Forbidden as exc:
        return None, f"Not allowed: {exc}."
    if isinstance(request, list):
        return None, "; ".join(request)
    try:
        engine = await asyncio.to_thread(database)
    except (OperationalError, SQLAlchemyError) as exc:
        return None, f"Cannot open the database: {exc}"
    logger.info("Backtest {} of {} by {}", request.run_id, request.strategy, user.name)
    outcome = await backtest_runs.offload(request, engine, reports)
    asked = msgspec.to_builtins(request)
    if isinstance(outcome, str):
        logger.info("Cannot run backtest {}: {}", request.run_id, outcome)
        await session.audit(user.name, "backtest", request.run_id, "error", outcome, asked)
        return None, f"Cannot run the backtest: {outcome}"
    m = outcome.metrics
    done = (
        f"{request.run_id}: {outcome.bars:,} bars, {m.trades} trades, total return "
        f"{pct(m.total_return, signed=True)} in {outcome.wall_s:.1f} s"
    )
    await session.audit(user.name, "backtest", request.run_id, "ok", done, asked)
    return outcome, done


def metric_rows(s: BacktestSummary) -> list[dict[str, Any]]:
    m = s.metrics

    def ratio(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    shown = [
        ("total_return", "Total return", pct(m.total_return, signed=True)),
        ("annualized_return", "Annualized return", pct(m.annualized_return, signed=True)),
        ("buy_and_hold", "Buy and hold", pct(m.buy_and_hold_return, signed=True)),
        ("sharpe", "Sharpe", ratio(m.sharpe)),
        ("sortino", "Sortino", ratio(m.sortino)),
        ("max_drawdown", "Max drawdown", pct(m.max_drawdown)),
        ("trades", "Trades (round trips)", str(m.trades)),
        ("win_rate", "Win rate", pct(m.win_rate)),
        ("profit_factor", "Profit factor", ratio(m.profit_factor)),
        ("final_equity", "Final equity", f"{m.final_equity:,.2f}"),
        ("fills", "Fills / risk denials", f"{s.fills} / {s.denied}"),
    ]
    return [{"key": key, "metric": label, "value": value} for key, label, value in shown]


def equity_figure(s: BacktestSummary | None) -> dict[str, Any]:
    """The run's equity against buy and hold of its symbols (plotly, as a dict)."""
    data: list[dict[str, Any]] = []
    if s is not None:
        x = [iso(ts) for ts in s.ts]
        data.append({"type": "scatter", "mode": "lines", "name": "Strategy", "x": x, "y": s.equity})
        if s.buy_and_hold is not None:
            hold = {"type": "scatter", "mode": "lines", "name": "Buy and hold", "x": x}
            data.append(hold | {"y": s.buy_and_hold, "line": {"dash": "dash", "color": "#757575"}})
    return {
        "data": data,
        "layout": {
            "margin": {"l": 60, "r": 10, "t": 10, "b": 30},
            "legend": {"orientation": "h", "y": 1.12},
            "xaxis": {"type": "date"},
            "yaxis": {"title": {"text": "equity"}},
        },
        "config": {"displayModeBar": False},
    }


# --- the form ----------------------------------------------------------------------------


class BacktestForm:
    """The form, its running state and the last run's results (drawn for operators)."""

    def __init__(self, symbols: list[str], database: Callable[[], Engine], reports: Path) -> None:
        self.database, self.reports = database, reports
        self.inputs: dict[str, ui.element] = {}
        self.running = False
        self.summary: BacktestSummary | None = None
        names = registry.names()
        with ui.card().classes("w-96 gap-1").props('data-testid="backtest-form"'):
            ui.label("Backtest").classes("text-subtitle2")
            first = PREFERRED_STRATEGY if PREFERRED_STRATEGY in names else next(iter(names), None)
            strategy = ui.select(names, value=first, label="Strategy")
            self.strategy = marked(strategy.classes("w-full"), "bt-strategy")
            self.strategy.on_value_change(self.draw_fields)
            self.about = marked(ui.label("").classes("text-caption"), "bt-about")
            self.fields = ui.column().classes("w-full gap-1")
            chosen = ui.select(
                symbols,
                value=symbols[:1],
                label="Symbols",
                multiple=True,
                new_value_mode="add-unique",
            ).props("use-chips")
            self.symbols = marked(chosen.classes("w-full"), "bt-symbols")
            interval = ui.select(list(INTERVAL_SECONDS), value="1d", label="Interval")
            self.interval = marked(interval.classes("w-full"), "bt-interval")
            with ui.row().classes("w-full no-wrap"):
                self.start = marked(ui.input("Start (UTC)", placeholder="2020-01-01"), "bt-start")
                self.end = marked(ui.input("End (UTC)", placeholder="last bar"), "bt-end")
            with ui.row().classes("w-full no-wrap"):
                self.cash = marked(ui.input("Cash", value="100000"), "bt-cash")
                self.commission = marked(ui.input("Commission", value="0"), "bt-commission")
                self.commission.tooltip("a fraction of the traded value: 0.001 is 0.1%")
                self.slippage = marked(ui.input("Slippage (bps)", value="0"), "bt-slippage")
            with ui.row().classes("items-center gap-2"):
                self.button = marked(ui.button("Run backtest", on_click=self.run), "bt-run")
                self.spinner = ui.spinner(size="md").mark("bt-running")
                self.spinner.set_visibility(False)
            self.message = marked(ui.label("").classes("text-caption"), "bt-message")
        with ui.card().classes("grow gap-1").props('data-testid="backtest-results"') as results:
            ui.label("Backtest results").classes("text-subtitle2")
            self.title = marked(ui.label("").classes("text-caption"), "bt-title")
            with ui.row().classes("w-full items-start no-wrap gap-4"):
                self.metrics = table(METRIC_COLUMNS, "bt-metrics")
                self.chart = ui.plotly(equity_figure(None)).classes("grow h-72").mark("bt-chart")
            download = ui.button("Download the HTML report", icon="download")
            self.download = marked(download.on_click(self.send_report), "bt-download")
        self.results = results
        results.set_visibility(False)
        self.draw_fields()

    def draw_fields(self) -> None:
        name = self.strategy.value or ""
        self.fields.clear()
        self.inputs = {}
        if name not in registry.names():
            return
        self.about.set_text(registry.get(name).description)
        with self.fields:
            for f in strategy_fields(name):
                self.inputs[f.name] = param_input(f, initial_value(f), "bt-param")

    async def run(self) -> None:
        if self.running:
            say(self.message, False, "A backtest is running in this tab; wait for its results")
            return
        request = check_backtest(
            self.strategy.value or "",
            {name: param_value(e) for name, e in self.inputs.items()},
            symbols=list(self.symbols.value or []),
            interval=self.interval.value or "",
            start=self.start.value or "",
            end=self.end.value or "",
            cash=self.cash.value or "",
            commission=self.commission.value or "",
            slippage_bps=self.slippage.value or "",
        )
        if not isinstance(request, list):
            what = ", ".join(request.symbols)
            say(self.message, True, f"Running {request.strategy} over {what} ({request.interval})…")
        self.running = True
        self.button.disable()
        self.spinner.set_visibility(True)
        try:
            summary, text = await start_backtest(request, self.database, self.reports)
        finally:
            self.running = False
            self.button.enable()
            self.spinner.set_visibility(False)
        say(self.message, summary is not None, text)
        if summary is not None:
            self.show(summary)

    def show(self, s: BacktestSummary) -> None:
        self.summary = s
        r = s.request
        params = msgspec.json.encode(r.params).decode() if r.params else "defaults"
        self.title.set_text(
            f"{r.run_id}: {r.strategy} ({params}) on {', '.join(r.symbols)}, {r.interval}, "
            f"{s.bars:,} bars; {s.metrics.trades} trades, {s.fills} fills"
        )
        self.metrics.rows = metric_rows(s)
        self.chart.update_figure(equity_figure(s))
        self.results.set_visibility(True)

    def send_report(self) -> None:
        if self.summary is None or session.current_user() is None:
            return
        path = Path(self.summary.report)
        if not path.is_file():
            say(self.message, False, f"The report {path.name} is gone; run the backtest again")
            return
        ui.download.file(path, filename=path.name, media_type="text/html")

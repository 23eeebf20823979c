"""Dashboard: the watchlist (last, change, sparkline, what is simulated) and a live
candlestick chart of one symbol and interval with indicator overlays (SMA, EMA,
Bollinger), sub-panels (volume, RSI, MACD) and the signals raised on its bars.

Everything renders from the bridge's bounded view state (:mod:`ui.chart_state`,
:mod:`ui.state`) on one timer, two redraws a second at most, and each part only when its
version moved. The figure is built by :func:`~ui.components.chart.chart_figure` (pure,
tested without a page) and shared by the tabs that show the same series.
"""

from __future__ import annotations

from typing import Any, Protocol

from nicegui import background_tasks, ui

from ui.chart_state import ChartBoard, ChartSource
from ui.components.chart import (
    DOWN,
    SPARK_H,
    SPARK_W,
    STUDIES,
    UP,
    chart_figure,
    chart_status,
    data_badge,
    shared_figure,
    spark_points,
)
from ui.components.redraw import REDRAW_S, Changes
from ui.components.widgets import show_badge
from ui.state import MarketView

WATCH_COLUMNS = [
    {"name": "symbol", "label": "Symbol", "field": "symbol", "align": "left"},
    {"name": "last", "label": "Last", "field": "last"},
    {"name": "change", "label": "Chg %", "field": "change"},
    {"name": "spark", "label": "", "field": "spark", "align": "center"},
    {"name": "source", "label": "Source", "field": "source", "align": "left"},
]
CHANGE_CELL = (
    '<q-td :props="props" :class="props.row.up === true ? \'text-positive\' : '
    "(props.row.up === false ? 'text-negative' : '')\">{{ props.value }}</q-td>"
)
SPARK_CELL = (
    f'<q-td :props="props"><svg width="{SPARK_W}" height="{SPARK_H}" '
    ':data-testid="\'spark-\' + props.row.symbol"><polyline :points="props.value" '
    f'fill="none" stroke-width="1.5" :stroke="props.row.up === false ? \'{DOWN}\' : '
    f"'{UP}'\"/></svg></q-td>"
)
SOURCE_CELL = (
    "<q-td :props=\"props\"><q-badge :color=\"props.value === 'SIMULATED' ? 'orange' : "
    "(props.value === '-' ? 'grey' : 'positive')\" :label=\"props.value\" "
    ":data-testid=\"'source-' + props.row.symbol\"/></q-td>"
)


class DashboardSource(ChartSource, Protocol):
    """What the page needs from the bridge (tests pass a fake)."""

    @property
    def charts(self) -> ChartBoard: ...

    @property
    def market(self) -> MarketView: ...

    @property
    def last_error(self) -> str: ...


def build(bridge: DashboardSource) -> None:
    board, market, settings = bridge.charts, bridge.market, bridge.settings
    watchlist = list(settings.feed.watchlist)
    intervals = list(settings.analysis.intervals)
    interval = settings.feed.interval if settings.feed.interval in intervals else None
    ui.label("Dashboard").classes("text-h5")
    with ui.row().classes("items-center gap-4"):
        symbol_in = ui.select(watchlist, value=watchlist[0] if watchlist else None, label="Symbol")
        symbol_in.classes("w-40").props('data-testid="symbol"').mark("symbol")
        first = interval or next(iter(intervals), None)
        interval_in = ui.select(intervals, value=first, label="Interval")
        interval_in.classes("w-28").props('data-testid="interval"').mark("interval")
        studies_in = ui.select(STUDIES, value=list(STUDIES), multiple=True, label="Studies")
        studies_in.classes("min-w-64").props('use-chips data-testid="studies"').mark("studies")
        badge = ui.badge("…").props('data-testid="chart-data"').mark("chart-data")
        status = ui.label("").classes("text-caption").props('data-testid="chart-status"')
        status.mark("chart-status")
    with ui.row().classes("w-full items-start gap-4 no-wrap"):
        with ui.column().classes("gap-1"):
            ui.label("Watchlist").classes("text-subtitle2")
            table = ui.table(columns=WATCH_COLUMNS, rows=[], row_key="symbol")
            table.props('dense flat bordered hide-bottom data-testid="watchlist"')
            table.mark("watchlist")
            table.add_slot("body-cell-change", CHANGE_CELL)
            table.add_slot("body-cell-spark", SPARK_CELL)
            table.add_slot("body-cell-source", SOURCE_CELL)
            table.on("rowClick", lambda e: symbol_in.set_value(_clicked(e.args) or symbol_in.value))
        plot = ui.plotly(chart_figure(None)).classes("grow").style("height: 720px")
        plot.props('data-testid="chart"').mark("chart")
    changed = Changes()

    def follow() -> None:
        if symbol_in.value and interval_in.value:
            board.watch(symbol_in.value, interval_in.value)
            background_tasks.create(board.sync(bridge), name="chart-sync")  # no wait for maintain
        refresh()

    def refresh() -> None:
        symbol, interval = symbol_in.value, interval_in.value
        series = board.watch(symbol, interval) if symbol and interval else None
        studies = tuple(s for s in STUDIES if s in (studies_in.value or ()))
        if changed("chart", (symbol, interval, id(series), series and series.version, studies)):
            plot.update_figure(shared_figure(series, studies))
            show_badge(badge, *data_badge(series))
        text, problem = chart_status(series, symbol or "?", interval or "?", bridge.last_error)
        status.set_text(text)
        status.classes(replace="text-caption text-negative" if problem else "text-caption")
        if changed("watchlist", (market.version, board.spark_version)):
            table.rows = [_watch_row(s, market, board) for s in watchlist]

    symbol_in.on_value_change(follow)
    interval_in.on_value_change(follow)
    studies_in.on_value_change(refresh)
    follow()
    ui.timer(REDRAW_S, refresh)


def _watch_row(symbol: str, market: MarketView, board: ChartBoard) -> dict[str, Any]:
    quote = market.quotes.get(symbol)
    closes = list(board.sparks.get(symbol, {}).values())
    if quote is not None:
        closes.append(quote.last)  # the sparkline ends at the live price
    return {
        "symbol": symbol,
        "last": f"{quote.last:.2f}" if quote else "-",
        "change": f"{quote.change_pct:+.2f}" if quote else "-",
        "up": (quote.change_pct >= 0) if quote else None,
        "spark": spark_points(closes),
        "source": ("SIMULATED" if quote.simulated else quote.origin.upper()) if quote else "-",
    }


def _clicked(args: Any) -> str | None:
    """The symbol of a clicked watchlist row (Quasar's ``row-click``: event, row, index)."""
    rows = args if isinstance(args, list) else [args]
    return next((r["symbol"] for r in rows if isinstance(r, dict) and "symbol" in r), None)

"""Market page: the watchlist, live, with what is real and what is simulated."""

from __future__ import annotations

import time

from nicegui import ui

from ui.components.format import FEED_MODE_COLORS
from ui.components.redraw import REDRAW_S
from ui.components.widgets import show_badge
from ui.state import MarketView

# a SIMULATED badge is orange, a real source green; the testid addresses one row's badge
SOURCE_CELL = (
    "<q-td :props=\"props\"><q-badge :color=\"props.value === 'SIMULATED' ? 'orange' : "
    '\'positive\'" :label="props.value" :data-testid="\'source-\' + props.row.symbol"/></q-td>'
)
COLUMNS = [
    {"name": "symbol", "label": "Symbol", "field": "symbol", "align": "left"},
    {"name": "last", "label": "Last", "field": "last"},
    {"name": "bid", "label": "Bid", "field": "bid"},
    {"name": "ask", "label": "Ask", "field": "ask"},
    {"name": "change", "label": "Change %", "field": "change"},
    {"name": "source", "label": "Source", "field": "source", "align": "left"},
    {"name": "age", "label": "Age", "field": "age"},
]


def build(view: MarketView) -> None:
    ui.label("Market").classes("text-h5")
    with ui.row().classes("items-center"):
        mode = ui.badge("…").props('data-testid="feed-mode"').mark("feed-mode")
        reason = ui.label("").classes("text-caption").mark("feed-reason")
    table = ui.table(columns=COLUMNS, rows=[], row_key="symbol").classes("w-full")
    table.props('data-testid="watchlist"').mark("watchlist")
    table.add_slot("body-cell-source", SOURCE_CELL)
    seen = {"version": -1}

    def refresh() -> None:
        if view.version == seen["version"]:
            return
        seen["version"] = view.version
        show_badge(mode, view.feed_mode.upper(), FEED_MODE_COLORS.get(view.feed_mode, "grey"))
        reason.set_text(view.feed_reason)
        now = time.monotonic()
        table.rows = [
            {
                "symbol": q.symbol,
                "last": f"{q.last:.2f}",
                "bid": f"{q.bid:.2f}",
                "ask": f"{q.ask:.2f}",
                "change": f"{q.change_pct:+.2f}",
                "source": "SIMULATED" if q.simulated else q.origin.upper(),
                "age": f"{now - q.updated_at:.0f}s",
            }
            for q in sorted(view.quotes.values(), key=lambda q: q.symbol)
        ]
        table.update()

    ui.timer(REDRAW_S, refresh)

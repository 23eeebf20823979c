"""The detail panel of the Algorithms page: the selected parent's schedule vs actual, its
transaction costs (TCA), its child orders and their fills.

The children and the TCA come from the control plane (``ShowAlgo``, ``GetAlgoTca``),
fetched again at most every ``DETAIL_EVERY_S`` while the bus says the parent changed; the
chart and the fills follow the bridge's view state on every refresh.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import msgspec
from nicegui import background_tasks, ui

from engine.bus.commands.algos import AlgoDetail, AlgoTca, ChildRow, GetAlgoTca, ShowAlgo
from engine.bus.events import OrderFilled
from ui.algo_state import ParentView
from ui.components.format import clock, iso, num, pct
from ui.components.redraw import Changes
from ui.components.sources import AlgoSource
from ui.components.widgets import table

DETAIL_EVERY_S = 2.0
"""The selected parent's children and TCA are fetched again at most this often (while
the bus says it changed)."""
SHOWN_CHILDREN = 50
SHOWN_FILLS = 20
CHILD_COLUMNS = [
    {"name": "time", "label": "Time (UTC)", "field": "time", "align": "left"},
    {"name": "order", "label": "Child order", "field": "order", "align": "left"},
    {"name": "slice", "label": "Slice", "field": "slice"},
    {"name": "qty", "label": "Qty", "field": "qty"},
    {"name": "price", "label": "Price", "field": "price"},
    {"name": "status", "label": "Status", "field": "status", "align": "left"},
    {"name": "filled", "label": "Filled", "field": "filled"},
    {"name": "avg", "label": "Avg price", "field": "avg"},
]
FILL_COLUMNS = [
    {"name": "time", "label": "Time (UTC)", "field": "time", "align": "left"},
    {"name": "order", "label": "Child order", "field": "order", "align": "left"},
    {"name": "qty", "label": "Qty", "field": "qty"},
    {"name": "price", "label": "Price", "field": "price"},
    {"name": "liquidity", "label": "Liquidity", "field": "liquidity", "align": "left"},
]
TCA_COLUMNS = [
    {"name": "metric", "label": "Measure", "field": "metric", "align": "left"},
    {"name": "value", "label": "Value", "field": "value"},
]


class DetailPanel:
    """The selected parent: schedule vs actual, TCA, children and their fills."""

    def __init__(self, bridge: AlgoSource) -> None:
        self.bridge, self.board = bridge, bridge.algos
        self.selected: str | None = None
        self.changed = Changes()
        self.child_ids: set[str] = set()
        self.children_version = 0
        self.fetching = False
        self.fetched_at = -math.inf
        self.fetched_rev = -1
        with ui.card().classes("w-full gap-1").props('data-testid="detail"'):
            self.title = ui.label("Select a parent order to see its children, fills and costs.")
            self.title.classes("text-subtitle2").mark("detail-title")
            self.params = ui.label("").classes("text-caption font-mono").mark("detail-params")
            self.problem = ui.label("").classes("text-caption text-negative").mark("detail-error")
            with ui.row().classes("w-full items-start gap-4 no-wrap"):
                with ui.column().classes("grow gap-1"):
                    ui.label("Schedule vs actual").classes("text-subtitle2")
                    self.chart = ui.plotly(schedule_figure(None, [])).classes("w-full h-64")
                    self.chart.props('data-testid="schedule-chart"').mark("schedule-chart")
                with ui.column().classes("gap-1"):
                    ui.label("Transaction costs").classes("text-subtitle2")
                    self.tca = table(TCA_COLUMNS, "tca")
            ui.label("Child orders").classes("text-subtitle2")
            self.count = ui.label("").classes("text-caption").mark("children-count")
            self.children = table(CHILD_COLUMNS, "children")
            ui.label("Fills").classes("text-subtitle2")
            self.fills = table(FILL_COLUMNS, "algo-fills")

    def select(self, algo_id: str) -> None:
        if algo_id == self.selected:
            return
        self.selected, self.changed, self.child_ids = algo_id, Changes(), set()
        self.fetched_at, self.fetched_rev = -math.inf, -1
        self.board.watch(algo_id)
        for rows in (self.tca, self.children, self.fills):
            rows.rows = []
        self.count.set_text("")
        self.refresh()

    def refresh(self) -> None:
        p = self.board.parents.get(self.selected or "")
        if p is None:
            return
        if self.changed("parent", p.rev):
            self.title.set_text(
                f"{p.algo_id}: {p.algo_type} {p.side} {num(p.qty)} {p.symbol} for "
                f"{p.account or '?'} — {p.state.upper()}{f' ({p.reason})' if p.reason else ''}"
            )
            self.params.set_text("" if p.params is None else msgspec.json.encode(p.params).decode())
        history = self.board.histories.get(p.algo_id)
        if self.changed("chart", history.version if history else -1):
            self.chart.update_figure(schedule_figure(p, history.points if history else []))
        fills = self.bridge.trading.blotter.fills_version
        if self.changed("fills", (fills, self.children_version)):
            mine = [
                f for f in self.bridge.trading.blotter.fills if f.client_order_id in self.child_ids
            ]
            self.fills.rows = [_fill_row(f) for f in reversed(mine[-SHOWN_FILLS:])]
        due = time.monotonic() - self.fetched_at >= DETAIL_EVERY_S
        if not self.fetching and p.rev != self.fetched_rev and due:
            self.fetching, self.fetched_at = True, time.monotonic()
            background_tasks.create(self.fetch(p.algo_id), name="algo-detail")

    async def fetch(self, algo_id: str) -> None:
        try:
            with self.board.tracking() as touched:
                detail, why = await self.bridge.act(ShowAlgo(algo_id=algo_id), AlgoDetail)
                tca, tca_why = await self.bridge.act(GetAlgoTca(algo_id=algo_id), AlgoTca)
            if algo_id != self.selected:
                return
            if detail is not None:
                self.board.load([detail.algo], touched)
                self._show_children(detail.children)
            if tca is not None:
                self.tca.rows = tca_rows(tca)
            self.problem.set_text("; ".join(w for w in (why, tca_why) if w))
            p = self.board.parents.get(algo_id)
            if p is not None and detail is not None and tca is not None:
                self.fetched_rev = p.rev  # else tried again after DETAIL_EVERY_S
        finally:
            self.fetching = False

    def _show_children(self, children: list[ChildRow]) -> None:
        self.child_ids = {c.client_order_id for c in children}
        self.children_version += 1
        shown = children[-SHOWN_CHILDREN:]
        more = f", the latest {len(shown)} shown" if len(shown) < len(children) else ""
        self.count.set_text(f"{len(children)} child orders{more}")
        self.children.rows = [_child_row(c) for c in reversed(shown)]


def schedule_figure(p: ParentView | None, points: Sequence[tuple[int, Decimal, Any]]) -> dict:
    """Filled quantity against what the schedule expected, over time (plotly, as a dict)."""
    times = [iso(ts) for ts, _, _ in points]
    data: list[dict[str, Any]] = []
    if any(expected is not None for _, _, expected in points):
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "Schedule",
                "x": times,
                "y": [None if e is None else float(e) for _, _, e in points],
                "line": {"dash": "dash", "color": "#757575", "shape": "hv"},
            }
        )
    data.append(
        {
            "type": "scatter",
            "mode": "lines",
            "name": "Filled",
            "x": times,
            "y": [float(filled) for _, filled, _ in points],
            "line": {"color": "#1976d2", "shape": "hv"},
        }
    )
    yaxis: dict[str, Any] = {"title": {"text": "quantity"}, "rangemode": "tozero"}
    if p is not None and p.qty > 0:
        yaxis["range"] = [0, float(p.qty) * 1.05]
    return {
        "data": data,
        "layout": {
            "margin": {"l": 50, "r": 10, "t": 10, "b": 30},
            "legend": {"orientation": "h", "y": 1.12},
            "xaxis": {"type": "date"},
            "yaxis": yaxis,
            "uirevision": p.algo_id if p is not None else "",
        },
        "config": {"displayModeBar": False},
    }


def tca_rows(t: AlgoTca) -> list[dict[str, Any]]:
    def bps(value: float | None) -> str:
        return "-" if value is None else f"{value:+.1f}"

    measures = [
        ("status", "Status", "final" if t.final else "live (still running)"),
        ("fill_rate", "Filled", f"{num(t.filled)} of {num(t.qty)} ({t.fill_rate:.1%})"),
        ("avg_price", "Avg price", num(t.avg_price, 4)),
        ("arrival_price", "Arrival price (mid)", num(t.arrival_price, 4)),
        ("shortfall_bps", "Shortfall vs arrival (bps, + is a cost)", bps(t.shortfall_bps)),
        ("interval_vwap", "Interval VWAP", num(t.interval_vwap, 4)),
        ("slippage_bps", "Slippage vs VWAP (bps, + is a cost)", bps(t.slippage_vs_vwap_bps)),
        ("market_volume", "Market volume", num(t.market_volume)),
        ("participation", "Participation", pct(t.participation)),
        ("duration", "Duration", f"{t.duration_s:.0f} s"),
        ("children", "Child orders", str(t.children)),
    ]
    return [{"key": key, "metric": label, "value": value} for key, label, value in measures]


def _child_row(c: ChildRow) -> dict[str, Any]:
    return {
        "key": c.client_order_id,
        "time": clock(c.ts_created),
        "order": c.client_order_id,
        "slice": c.slice_index if c.slice_index >= 0 else "-",
        "qty": num(c.qty),
        "price": num(c.price) if c.price is not None else "MKT",
        "status": c.status,
        "filled": num(c.filled_qty),
        "avg": num(c.avg_price, 4),
    }


def _fill_row(f: OrderFilled) -> dict[str, Any]:
    return {
        "key": f.exec_id,
        "time": clock(f.ts_event),
        "order": f.client_order_id,
        "qty": num(f.qty),
        "price": num(f.price),
        "liquidity": f.liquidity,
    }

"""Algorithms page: start a parent order with a form per algorithm kind (its fields come
from the kind's parameter schema), follow every parent live — progress against its
schedule, state, average price, participation — with pause / resume / modify / cancel
for operators, and a detail panel per parent: its child orders and fills, schedule vs
actual, and transaction costs (TCA). Recent strategy triggers are listed beside the form.

Everything renders from the bridge's bounded :class:`~ui.algo_state.AlgoBoard` on one
timer (two redraws a second at most), each part only when its version moved. The parts
live in :mod:`ui.components`: the start form (:mod:`~ui.components.algo_start`, checked by
:mod:`~ui.components.algo_form`), the parents grid (:mod:`~ui.components.algo_parents`)
and the detail panel (:mod:`~ui.components.algo_detail`).
"""

from __future__ import annotations

from typing import Any

from nicegui import ui

from engine.bus.events import AlgorithmTriggered
from ui import session
from ui.components.algo_detail import DetailPanel
from ui.components.algo_parents import ParentsGrid
from ui.components.algo_start import StartForm
from ui.components.format import clock
from ui.components.redraw import REDRAW_S, Changes
from ui.components.sources import AlgoSource
from ui.components.widgets import table

SHOWN_TRIGGERS = 10
TRIGGER_COLUMNS = [
    {"name": "time", "label": "Time (UTC)", "field": "time", "align": "left"},
    {"name": "strategy", "label": "Strategy", "field": "strategy", "align": "left"},
    {"name": "rule", "label": "Signal", "field": "rule", "align": "left"},
    {"name": "symbol", "label": "Symbol", "field": "symbol", "align": "left"},
    {"name": "algo", "label": "Started", "field": "algo", "align": "left"},
]


def build(bridge: AlgoSource) -> None:
    board = bridge.algos
    detail: DetailPanel  # below the grid; the form and the grid select into it
    user = session.current_user()
    controls = user is not None and user.may("operator")
    ui.label("Algorithms").classes("text-h5")
    problem = ui.label("").classes("text-caption text-negative").mark("sync-error")
    with ui.row().classes("w-full items-start gap-4 no-wrap"):
        if controls:
            form: StartForm | None = StartForm(bridge, lambda algo_id: detail.select(algo_id))
        else:
            form = None
            ui.label("Starting and controlling algorithms needs the operator role.").classes(
                "text-caption"
            ).mark("no-controls")
        with ui.column().classes("grow gap-1"):
            ui.label("Strategy triggers").classes("text-subtitle2")
            triggers = table(TRIGGER_COLUMNS, "triggers")
    message = ui.label("").classes("text-caption").mark("algo-message")
    parents = ParentsGrid(bridge, controls, message, lambda algo_id: detail.select(algo_id))
    detail = DetailPanel(bridge)
    changed = Changes()

    def refresh() -> None:
        problem.set_text(board.sync_error)
        if form is not None:
            form.refresh()
        if changed("parents", board.version):
            parents.refresh()
        if changed("triggers", board.triggers_version):
            latest = list(board.triggers)[-SHOWN_TRIGGERS:]
            triggers.rows = [_trigger_row(t) for t in reversed(latest)]
        detail.refresh()

    refresh()
    ui.timer(REDRAW_S, refresh)


def _trigger_row(t: AlgorithmTriggered) -> dict[str, Any]:
    return {
        "key": f"{t.strategy}/{t.algo_id}",
        "time": clock(t.ts_event),
        "strategy": t.strategy,
        "rule": t.signal_rule,
        "symbol": t.symbol,
        "algo": t.algo_id,
    }

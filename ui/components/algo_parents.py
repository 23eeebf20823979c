"""The parents grid of the Algorithms page: every parent order live — progress against
its schedule, state, average price, participation — and, for operators, its pause /
resume, modify and cancel controls with their dialogs.

The grid is an AG Grid updated by transactions: only the rows that changed travel. Every
action goes through ``bridge.act`` as the logged-in user; the controls are drawn for
operators only and their handlers refuse anybody else too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from nicegui import ui
from nicegui.events import GenericEventArguments

from engine.bus.commands import Command
from engine.bus.commands.algos import AlgoView, CancelAlgo, PauseAlgo, ResumeAlgo
from ui import session
from ui.algo_state import ParentView
from ui.components.algo_form import check_modify, initial_value
from ui.components.algo_start import param_input, param_value
from ui.components.format import clock, num, pct
from ui.components.redraw import send_changed_rows
from ui.components.sources import AlgoSource
from ui.components.widgets import marked, say

MAX_REASON = 500
CONTROLS = ("pause", "modify", "cancel")

STATE_COLORS = {
    "pending": "#9e9e9e",
    "running": "#1976d2",
    "paused": "#ef6c00",
    "completed": "#2e7d32",
    "cancelled": "#757575",
    "failed": "#c62828",
}
# AG Grid cell renderers (they return HTML); keys are cleaned before they go into an id
PROGRESS_RENDERER = """p => {
  const e = p.data.expected_pct;
  const mark = e == null ? '' : `<div title="expected by now: ${e}%"
    style="position:absolute;top:-3px;bottom:-3px;width:2px;background:#424242;left:${e}%"></div>`;
  const color = p.data.active ? '#1976d2' : '#9e9e9e';
  return `<div style="display:flex;align-items:center;height:100%">
    <div style="position:relative;width:100%;height:10px;border-radius:5px;background:#e0e0e0">
    <div style="height:10px;border-radius:5px;width:${p.value}%;background:${color}"></div>
    ${mark}</div></div>`;
}"""
STATE_RENDERER = (
    """p => {
  const key = String(p.data.key).replace(/[^A-Za-z0-9_.:-]/g, '');
  const color = """
    + msgspec.json.encode(STATE_COLORS).decode()
    + """[p.value] || '#757575';
  return `<span data-testid="state-${key}" style="color:white;border-radius:4px;
    padding:2px 6px;font-size:11px;background:${color}">${String(p.value).toUpperCase()}</span>`;
}"""
)
CONTROL_RENDERER = """p => {
  if (!p.value) return '';
  const key = String(p.data.key).replace(/[^A-Za-z0-9_.:-]/g, '');
  return `<button data-testid="${p.colDef.field}-${key}" style="border:1px solid #1976d2;
    color:#1976d2;border-radius:4px;padding:0 8px;line-height:22px;background:white;
    cursor:pointer">${p.value}</button>`;
}"""
SIGNED_STYLE = (
    "p => ({color: p.value.startsWith('-') && p.value !== '-' ? '#c62828' : "
    "(p.value.startsWith('+') ? '#2e7d32' : 'inherit')})"
)
CONTROL_COLUMNS: list[dict[str, Any]] = [
    {"field": name, "headerName": "", "minWidth": 96, "sortable": False}
    | {":cellRenderer": CONTROL_RENDERER}
    for name in CONTROLS
]
PARENT_COLUMNS: list[dict[str, Any]] = [
    {"field": "active", "hide": True, "sort": "desc", "sortIndex": 0},  # active ones first
    {"field": "ts", "hide": True, "sort": "desc", "sortIndex": 1},  # then newest first
    {"field": "time", "headerName": "Started (UTC)"},
    {"field": "algo_id", "headerName": "Algo", "minWidth": 140},
    {"field": "type", "headerName": "Type"},
    {"field": "account", "headerName": "Account"},
    {"field": "symbol", "headerName": "Symbol"},
    {"field": "side", "headerName": "Side"},
    {"field": "filled", "headerName": "Filled / qty"},
    {"field": "progress", "headerName": "Progress", "minWidth": 120}
    | {":cellRenderer": PROGRESS_RENDERER},
    {"field": "state", "headerName": "State", "minWidth": 120, ":cellRenderer": STATE_RENDERER},
    {"field": "avg_price", "headerName": "Avg price"},
    {"field": "participation", "headerName": "Participation"},
    {"field": "deviation", "headerName": "vs schedule", ":cellStyle": SIGNED_STYLE},
    {"field": "shortfall", "headerName": "Shortfall (bps)"},
    {"field": "children", "headerName": "Children"},
    {"field": "by", "headerName": "By"},
    {"field": "reason", "headerName": "Reason"},
]


class ParentsGrid:
    """The parents grid (incremental), its row controls and their dialogs."""

    def __init__(
        self,
        bridge: AlgoSource,
        controls: bool,
        message: ui.label,
        select: Callable[[str], None],
    ) -> None:
        self.bridge, self.board, self.controls = bridge, bridge.algos, controls
        self.message, self.select = message, select
        parents = self.board.parents.values()
        self.shown: dict[str, int] = {p.algo_id: p.rev for p in parents}
        columns = PARENT_COLUMNS + (CONTROL_COLUMNS if controls else [])
        self.grid = ui.aggrid(
            {
                "columnDefs": columns,
                "rowData": [_parent_row(p, controls) for p in parents],
                ":getRowId": "p => p.data.key",
                "defaultColDef": {"sortable": True, "resizable": True, "minWidth": 80},
            }
        )
        self.grid.classes("w-full h-96").props('data-testid="algos"').mark("algos")
        self.grid.on("cellClicked", self.clicked)
        with ui.dialog() as self.modify_dialog, ui.card().classes("w-96 gap-1") as self.modify:
            pass
        with ui.dialog() as self.cancel_dialog, ui.card().classes("w-96 gap-2") as self.cancel:
            pass

    def refresh(self) -> None:
        send_changed_rows(
            self.grid, self.board.parents, self.shown, lambda p: _parent_row(p, self.controls)
        )

    async def clicked(self, e: GenericEventArguments) -> None:
        column, value = e.args.get("colId"), e.args.get("value")
        key = (e.args.get("data") or {}).get("key")
        if column not in CONTROLS:
            if key in self.board.parents:
                self.select(key)
            return
        try:
            session.require("operator")
        except session.Forbidden as exc:
            say(self.message, False, f"Not allowed: {exc}.")
            return
        p = self.board.parents.get(key or "")
        if p is None or not value:
            return
        if column == "pause" and value == "Resume":
            await self.send(ResumeAlgo(algo_id=p.algo_id), "Resumed")
        elif column == "pause":
            await self.send(PauseAlgo(algo_id=p.algo_id), "Paused")
        elif column == "modify":
            self.open_modify(p)
        else:
            self.open_cancel(p)

    async def send(self, command: Command, done: str) -> bool:
        with self.board.tracking() as touched:
            view, why = await self.bridge.act(command, AlgoView)
        if view is None:
            say(self.message, False, why)
            return False
        self.board.load([view], touched)
        say(self.message, True, f"{done} {view.algo_id} ({view.state})")
        return True

    def open_modify(self, p: ParentView) -> None:
        kind = self.board.kinds.get(p.algo_type)
        fields = kind.fields if kind else ()
        initial = {f.name: initial_value(f, p.params) for f in fields}
        initial_qty = num(p.qty) if p.qty > 0 else ""
        self.modify.clear()
        with self.modify:
            ui.label(f"Modify {p.algo_id}").classes("text-subtitle2")
            note = "Only what you change is sent; clear an optional field to drop it."
            if p.params is None:
                note += " Its current parameters are not known yet: fill in what should change."
            ui.label(note).classes("text-caption")
            qty = marked(ui.input("Quantity", value=initial_qty), "modify-qty").classes("w-full")
            inputs = {f.name: param_input(f, initial[f.name], "modify-param") for f in fields}
            problem = marked(ui.label("").classes("text-caption"), "modify-message")

            async def apply() -> None:
                command = check_modify(
                    p,
                    kind,
                    qty=qty.value or "",
                    initial_qty=initial_qty,
                    values={name: param_value(e) for name, e in inputs.items()},
                    initial=initial,
                )
                if isinstance(command, list):
                    say(problem, False, "; ".join(command))
                    return
                if await self.send(command, "Modified"):
                    self.modify_dialog.close()
                else:
                    say(problem, False, self.message.text)

            with ui.row():
                marked(ui.button("Apply", on_click=apply), "modify-send")
                marked(ui.button("Close", on_click=self.modify_dialog.close), "modify-close")
        self.modify_dialog.open()

    def open_cancel(self, p: ParentView) -> None:
        self.cancel.clear()
        with self.cancel:
            ui.label(f"Cancel {p.algo_id}?").classes("text-subtitle2")
            ui.label(
                f"{p.side} {num(p.filled)} of {num(p.qty)} {p.symbol} done. Its working "
                "children are cancelled and it cannot be resumed."
            ).classes("text-caption")
            reason = ui.input("Reason (optional)").props(f"maxlength={MAX_REASON}")
            marked(reason.classes("w-full"), "cancel-reason")

            async def confirm() -> None:
                self.cancel_dialog.close()
                why = (reason.value or "").strip()[:MAX_REASON]
                await self.send(CancelAlgo(algo_id=p.algo_id, reason=why), "Cancelled")

            with ui.row():
                button = ui.button("Cancel the algorithm", color="negative", on_click=confirm)
                marked(button, "cancel-confirm")
                marked(ui.button("Keep it", on_click=self.cancel_dialog.close), "cancel-keep")
        self.cancel_dialog.open()


def _parent_row(p: ParentView, controls: bool) -> dict[str, Any]:
    expected = None
    if p.expected is not None and p.qty > 0:
        expected = round(min(float(p.expected / p.qty), 1.0) * 100, 1)
    row: dict[str, Any] = {
        "key": p.algo_id,
        "active": 1 if p.is_active else 0,
        "ts": p.ts_created,
        "time": clock(p.ts_started or p.ts_created),
        "algo_id": p.algo_id,
        "type": p.algo_type,
        "account": p.account or "-",
        "symbol": p.symbol,
        "side": p.side,
        "filled": f"{num(p.filled)} / {num(p.qty) if p.qty > 0 else '?'}",
        "progress": round(p.share * 100, 1),
        "expected_pct": expected,
        "state": p.state,
        "avg_price": num(p.avg_price, 4),
        "participation": pct(p.participation),
        "deviation": pct(p.deviation, signed=True),
        "shortfall": "-" if p.shortfall_bps is None else f"{p.shortfall_bps:+.1f}",
        "children": p.children,
        "by": f"strategy {p.strategy}" if p.strategy else p.actor or "-",
        "reason": p.reason,
    }
    if controls:
        active = p.is_active
        row["pause"] = "Resume" if p.state == "paused" else "Pause" if active else ""
        row["modify"] = "Modify" if active else ""
        row["cancel"] = "Cancel" if active else ""
    return row

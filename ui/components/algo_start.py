"""The start form of the Algorithms page — a kind selector, the parent's account, symbol,
side and quantity, and the kind's own fields, drawn from its parameter schema — and the
input of one parameter, which the modify dialog draws too."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from nicegui import ui

from engine.bus.commands.algos import AlgoView
from ui.algo_state import ParamField
from ui.components.algo_form import check_start, initial_value
from ui.components.sources import AlgoSource
from ui.components.ticket import DEFAULT_ACCOUNT
from ui.components.widgets import disabled, marked, say

PREFERRED_KIND = "twap"
"""The kind the start form shows first (when the engine has it)."""


class StartForm:
    """The start form: a kind selector, the parent's account, symbol, side and quantity,
    and the kind's own fields (redrawn when the kind changes)."""

    def __init__(self, bridge: AlgoSource, started: Callable[[str], None]) -> None:
        self.bridge, self.board, self.started = bridge, bridge.algos, started
        self.inputs: dict[str, ui.element] = {}
        self.kinds_seen = -1
        symbols = bridge.symbols()
        with ui.card().classes("w-96 gap-1").props('data-testid="start-form"'):
            ui.label("Start an algorithm").classes("text-subtitle2")
            self.kind = ui.select({}, label="Algorithm", on_change=self.draw_fields)
            self.kind.classes("w-full").props('data-testid="algo-kind"').mark("algo-kind")
            self.about = ui.label("Loading the algorithm kinds…").classes("text-caption")
            self.about.mark("algo-about")
            self.account = marked(ui.input("Account", value=DEFAULT_ACCOUNT), "algo-account")
            symbol = ui.input("Symbol", value=symbols[0] if symbols else "", autocomplete=symbols)
            self.symbol = marked(symbol, "algo-symbol")
            self.side = marked(ui.toggle({"buy": "Buy", "sell": "Sell"}, value="buy"), "algo-side")
            self.qty = marked(ui.input("Quantity *"), "algo-qty")
            start_at = ui.input("Start at (UTC)", placeholder="now; or 14:30, 2025-01-31T14:30Z")
            self.start_at = marked(start_at, "algo-start-at")
            for element in (self.account, self.symbol, self.qty, self.start_at):
                element.classes("w-full")
            self.fields = ui.column().classes("w-full gap-1")
            self.message = marked(ui.label("").classes("text-caption"), "start-message")
            self.button = marked(ui.button("Start", on_click=self.start), "algo-start")

    def refresh(self) -> None:
        if self.board.kinds_version == self.kinds_seen:
            return
        self.kinds_seen = self.board.kinds_version
        kinds = sorted(self.board.kinds)
        first = PREFERRED_KIND if PREFERRED_KIND in kinds else next(iter(kinds), None)
        value = self.kind.value if self.kind.value in kinds else first
        self.kind.set_options({k: k.upper() for k in kinds}, value=value)
        self.draw_fields()

    def draw_fields(self) -> None:
        kind = self.board.kinds.get(self.kind.value or "")
        self.fields.clear()
        self.inputs = {}
        if kind is None:
            loaded = self.board.kinds_loaded
            self.about.set_text(
                "The engine offers no algorithms." if loaded else "Loading the algorithm kinds…"
            )
            return
        self.about.set_text(kind.problem or kind.description)
        with self.fields:
            for f in kind.fields:
                self.inputs[f.name] = param_input(f, initial_value(f), "param")

    async def start(self) -> None:
        order = check_start(
            self.board.kinds.get(self.kind.value or ""),
            account=self.account.value or "",
            symbol=self.symbol.value or "",
            side=self.side.value or "buy",
            qty=self.qty.value or "",
            values={name: param_value(e) for name, e in self.inputs.items()},
            now_ns=time.time_ns(),
            start_at=self.start_at.value or "",
        )
        if isinstance(order, list):
            say(self.message, False, "; ".join(order))
            return
        with disabled(self.button), self.board.tracking() as touched:
            view, why = await self.bridge.act(order, AlgoView)
        if view is None:
            say(self.message, False, why)
            return
        self.board.load([view], touched)
        say(self.message, True, f"Started {view.algo_id} ({view.state})")
        self.started(view.algo_id)


def param_input(f: ParamField, value: Any, prefix: str) -> ui.element:
    """The widget of one parameter: a switch, a choice, or text (parsed on sending)."""
    label = f.label + (" *" if f.required else "")
    element: ui.element
    if f.type == "boolean":
        element = ui.checkbox(label, value=bool(value))
    elif f.type == "enum":
        element = ui.select(list(f.options), value=value, label=label, clearable=f.nullable)
    else:
        element = ui.input(label, value=value or "", placeholder=_hint(f))
    element.classes("w-full")
    return marked(element, f"{prefix}-{f.name}")


def _hint(f: ParamField) -> str:
    if f.type == "time":
        return "UTC: 14:30, 2025-01-31T14:30Z or ns"
    if f.type == "numbers":
        return "numbers, comma-separated"
    if f.has_default and f.default not in (None, [], ""):
        return f"default {f.default}"
    return "" if f.required else "optional"


def param_value(element: ui.element) -> Any:
    return getattr(element, "value", None)

"""Small NiceGUI pieces every page uses: an element tests can address, a dense table (and
the columns every table of orders begins with), a badge's text and color, a message
saying how an action went, and a button kept off while its action runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from nicegui import ui

E = TypeVar("E", bound=ui.element)

ORDER_COLUMNS: list[dict[str, Any]] = [
    {"name": "time", "label": "Time (UTC)", "field": "time", "align": "left"},
    {"name": "account", "label": "Account", "field": "account", "align": "left"},
    {"name": "symbol", "label": "Symbol", "field": "symbol", "align": "left"},
    {"name": "side", "label": "Side", "field": "side", "align": "left"},
    {"name": "qty", "label": "Qty", "field": "qty"},
    {"name": "price", "label": "Price", "field": "price"},
]
"""How every table of orders, fills or denials begins: time, account, symbol, side,
quantity and price."""


def marked(element: E, name: str) -> E:
    """``element`` addressable as ``name``: by browser tests (``data-testid``) and by
    in-process ones (its marker)."""
    element.props(f'data-testid="{name}"').mark(name)
    return element


def table(columns: list[dict[str, Any]], name: str, *, row_key: str = "key") -> ui.table:
    """An empty dense table, marked as ``name``."""
    rows = ui.table(columns=columns, rows=[], row_key=row_key)
    rows.props(f'dense flat bordered data-testid="{name}"').mark(name)
    return rows


def show_badge(badge: ui.badge, text: str, color: str) -> None:
    badge.set_text(text)
    badge.props(f"color={color}")


def say(label: ui.label, ok: bool, text: str) -> None:
    """``text`` in ``label``, green when the action went through, red when it did not."""
    label.set_text(text)
    label.classes(
        add="text-positive" if ok else "text-negative",
        remove="text-negative" if ok else "text-positive",
    )


@contextmanager
def disabled(button: ui.button) -> Iterator[None]:
    """``button`` off while the block runs (one request at a time from a form)."""
    button.disable()
    try:
        yield
    finally:
        button.enable()

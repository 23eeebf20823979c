"""Redrawing only what moved: each page refreshes on a timer, and a part is drawn again
only when its version changed; an AG Grid gets only the rows that changed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from nicegui import ui

REDRAW_S = 0.2
"""How often a page looks for changes to draw: at most four redraws a second per tab
(a tick waits half of it on average before it shows; see the console benchmark)."""


class Revised(Protocol):
    @property
    def rev(self) -> int:
        """The board's version when this item last changed."""
        ...


T = TypeVar("T", bound=Revised)


class Changes:
    """Remembers the version each part of a page was last drawn at."""

    def __init__(self) -> None:
        self._seen: dict[str, object] = {}

    def __call__(self, part: str, version: object) -> bool:
        """True (and remembered) when ``part`` is at another version than last time."""
        if self._seen.get(part) == version:
            return False
        self._seen[part] = version
        return True


def send_changed_rows(
    grid: ui.aggrid,
    items: Mapping[str, T],
    shown: dict[str, int],
    row: Callable[[T], dict[str, Any]],
) -> None:
    """Only added, changed and removed rows go to the browser (an AG Grid transaction).

    ``items`` are by row key (a row's ``key``), ``shown`` the revision of each row the
    grid has (kept up to date here), ``row`` an item's grid row.
    """
    add = [key for key in items if key not in shown]
    update = [key for key, item in items.items() if key in shown and shown[key] != item.rev]
    remove = [key for key in shown if key not in items]
    if not (add or update or remove):
        return
    for key in remove:
        del shown[key]
    for key in add + update:
        shown[key] = items[key].rev
    with grid.props.suspend_updates():  # the element's copy, for a tab that reconnects
        grid.options["rowData"] = [row(item) for item in items.values()]
    grid.run_grid_method(
        "applyTransaction",
        {
            "add": [row(items[key]) for key in add],
            "update": [row(items[key]) for key in update],
            "remove": [{"key": key} for key in remove],
        },
    )

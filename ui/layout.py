"""The console's shared layout: navigation, and a status bar that says at a glance
whether the engine is reachable, what the feed serves (LIVE / DELAYED / SIMULATED) and
how trading stands (ACTIVE / REDUCING / HALTED)."""

from __future__ import annotations

from typing import Protocol

from nicegui import ui

from ui.session import current_user

PAGES = [
    ("Dashboard", "/"),
    ("Algorithms", "/algos"),
    ("Orders & book", "/trading"),
    ("Risk", "/risk"),
    ("Market", "/market"),
    ("Data", "/data"),
    ("Reports", "/reports"),
    ("Health", "/health"),
]
FEED_COLORS = {"LIVE": "positive", "DELAYED": "info", "SIMULATED": "orange", "CACHED": "warning"}
TRADING_COLORS = {"ACTIVE": "positive", "REDUCING": "warning", "HALTED": "negative"}


class StatusSource(Protocol):
    """What the status bar reads (the bridge; tests pass a fake)."""

    def status(self) -> tuple[str, str, str]:
        """(connection problem or "", feed mode, trading state)."""
        ...


def frame(bridge: StatusSource | None = None) -> None:
    """Header with the navigation and the status bar (when ``bridge`` is given)."""
    with ui.header().classes("items-center gap-6"):
        ui.label("QSuite").classes("text-h6")
        for label, path in PAGES:
            ui.link(label, path).classes("text-white")
        ui.space()
        if bridge is not None:
            _status_bar(bridge)
        user = current_user()
        if user is not None:
            ui.label(f"{user.name} ({user.role})").props('data-testid="user"')
            ui.link("Log out", "/logout").classes("text-white")


def _status_bar(bridge: StatusSource) -> None:
    connection = ui.badge("…").props('data-testid="status-connection"')
    feed = ui.badge("…").props('data-testid="status-feed"')
    trading = ui.badge("…").props('data-testid="status-trading"')
    shown: list[tuple[str, str, str]] = []

    def refresh() -> None:
        now = bridge.status()
        if shown and shown[0] == now:
            return
        shown[:] = [now]
        problem, mode, state = now
        connection.set_text("ENGINE UNREACHABLE" if problem else "CONNECTED")
        connection.props(f"color={'negative' if problem else 'positive'}")
        connection.tooltip(problem or "the engine answers")
        feed.set_text(f"FEED {mode}")
        feed.props(f"color={FEED_COLORS.get(mode, 'grey')}")
        trading.set_text(f"TRADING {state}")
        trading.props(f"color={TRADING_COLORS.get(state, 'grey')}")

    refresh()
    ui.timer(1.0, refresh)

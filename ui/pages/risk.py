"""Risk page: trading state per scope, limit usage per account, open alerts (critical ones
pinned until acknowledged), recent denials and the kill switch; resume, risk profiles
and compliance rules for admins.

Everything renders from the bridge's :class:`~ui.risk_state.RiskBoard` on one timer, each
part only when it changed (:mod:`ui.components.risk_panels`). Every action is one of the
handlers of :mod:`ui.components.risk_actions`, which send their command through
``Bridge.act`` as the logged-in user: the role is checked there and again by the control
plane, so hiding a viewer's buttons is a courtesy, not the enforcement. Viewers see
everything and get no controls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import ui

from ui import session
from ui.components.redraw import REDRAW_S, Changes
from ui.components.risk_actions import SCOPES, acknowledge, halt, resume
from ui.components.risk_editors import profile_editor, rules_editor
from ui.components.risk_panels import (
    DENIAL_COLUMNS,
    STATE_COLORS,
    accounts,
    denial_row,
    draw_alerts,
    draw_scopes,
    draw_usage,
    scope_words,
)
from ui.components.sources import RiskSource
from ui.components.widgets import disabled, show_badge, table

SHOWN_DENIALS = 50


def build(bridge: RiskSource) -> None:
    board = bridge.risk
    user = session.current_user()
    operator = user is not None and user.may("operator")
    admin = user is not None and user.may("admin")
    resume_scope = _resume_dialog(bridge) if admin else None
    with ui.row().classes("items-center gap-4"):
        ui.label("Risk").classes("text-h5")
        state = ui.badge("…").props('data-testid="risk-state"').mark("risk-state")
        if operator:
            halt_dialog = _halt_dialog(bridge)
            kill = ui.button("KILL SWITCH", color="negative", icon="dangerous")
            kill.props('data-testid="kill-switch"').mark("kill-switch")
            kill.on_click(halt_dialog.open)
        problem = ui.label("").classes("text-caption text-negative").mark("risk-error")
    pinned = ui.column().classes("w-full gap-1 p-2 rounded bg-red-1 border border-red-6")
    pinned.props('data-testid="pinned-alerts"').mark("pinned-alerts")
    with ui.row().classes("w-full items-start gap-4 no-wrap"):
        with ui.card().classes("grow"):
            ui.label("Trading state").classes("text-subtitle2")
            scopes = ui.column().classes("w-full gap-1").mark("scopes")
        with ui.card().classes("grow"):
            ui.label("Limit usage").classes("text-subtitle2")
            usage = ui.column().classes("w-full gap-2").mark("usage")
    alerts_title = ui.label("Open alerts").classes("text-subtitle2")
    alerts = ui.column().classes("w-full gap-1").mark("alerts")
    ui.label("Recent denials").classes("text-subtitle2")
    denials = table(DENIAL_COLUMNS, "denials").classes("w-full")
    with ui.row().classes("w-full items-start gap-4 no-wrap"):
        profile_editor(bridge, admin)
        rules_editor(bridge, admin)
    changed = Changes()

    def ack_handler(alert_id: int) -> Any:
        async def ack() -> None:
            ok, text = await acknowledge(bridge, alert_id)
            ui.notify(text, type="positive" if ok else "negative")

        return ack

    def refresh() -> None:
        if changed("state", (board.trading_state, board.error)):
            color = STATE_COLORS.get(board.trading_state, "grey")
            show_badge(state, f"TRADING {board.trading_state}", color)
            problem.set_text(board.error)
        if changed("scopes", (board.scopes_version, accounts(board))):
            draw_scopes(scopes, board, resume_scope)
        status = board.status
        if changed("usage", (status and status.accounts, dict(board.warning_levels))):
            draw_usage(usage, board)
        if changed("alerts", board.alerts_version):
            draw_alerts(pinned, alerts, board, operator, ack_handler)
        # the status counts every stored open alert, also those beyond the listed window
        count = max(status.unacknowledged if status else 0, len(board.alerts))
        if changed("alert-count", count):
            alerts_title.set_text(f"Open alerts ({count})")
        if changed("denials", board.denials_version):
            shown = list(board.denials)[-SHOWN_DENIALS:]
            denials.rows = [denial_row(i, d) for i, d in enumerate(reversed(shown))]

    refresh()
    ui.timer(REDRAW_S, refresh)


# --- dialogs ---------------------------------------------------------------------------------


def _halt_dialog(bridge: RiskSource) -> ui.dialog:
    with ui.dialog() as dialog, ui.card().classes("w-96").props('data-testid="halt-dialog"'):
        ui.label("Kill switch").classes("text-h6 text-negative")
        ui.label(
            "Cancels the scope's working orders at once and denies its risk-increasing "
            "orders until an admin resumes it."
        ).classes("text-caption")
        scope = ui.select(list(SCOPES), value="global", label="Scope").classes("w-full")
        scope.props('data-testid="halt-scope"').mark("halt-scope")
        key = ui.input("Account, symbol or algorithm id").classes("w-full").mark("halt-key")
        key.props('data-testid="halt-key"').bind_enabled_from(
            scope, "value", lambda v: v != "global"
        )
        reason = ui.input("Reason (required)").classes("w-full").mark("halt-reason")
        reason.props('data-testid="halt-reason"')
        message = ui.label("").classes("text-caption text-negative").mark("halt-message")

        async def confirm() -> None:
            with disabled(button):
                ok, text = await halt(
                    bridge, scope.value or "", key.value or "", reason.value or ""
                )
            message.set_text("" if ok else text)
            if ok:
                reason.set_value("")
                dialog.close()
                ui.notify(text, type="warning")

        with ui.row().classes("w-full justify-end"):
            ui.button("Cancel", on_click=dialog.close).props("flat").mark("halt-cancel")
            button = ui.button("HALT", color="negative", on_click=confirm)
            button.props('data-testid="halt-confirm"').mark("halt-confirm")
    return dialog


def _resume_dialog(bridge: RiskSource) -> Callable[[str, str], None]:
    """The resume dialog; returns what opens it for a scope."""
    target = {"scope": "global", "key": ""}
    with ui.dialog() as dialog, ui.card().classes("w-96").props('data-testid="resume-dialog"'):
        what = ui.label("Resume").classes("text-h6")
        reason = ui.input("Reason (required)").classes("w-full").mark("resume-reason")
        message = ui.label("").classes("text-caption text-negative").mark("resume-message")

        async def confirm() -> None:
            ok, text = await resume(bridge, target["scope"], target["key"], reason.value or "")
            message.set_text("" if ok else text)
            if ok:
                reason.set_value("")
                dialog.close()
                ui.notify(text, type="positive")

        with ui.row().classes("w-full justify-end"):
            ui.button("Cancel", on_click=dialog.close).props("flat").mark("resume-cancel")
            ui.button("Resume", color="positive", on_click=confirm).mark("resume-confirm")

    def open_for(scope: str, key: str) -> None:
        target.update(scope=scope, key=key)
        what.set_text(f"Resume {scope_words(scope, key)}")
        dialog.open()

    return open_for

"""The read-only parts of the Risk page: the trading state per scope, the limit usage per
account, the open alerts (critical ones pinned) and the recent denials. Each is drawn
again as a whole when its part of the :class:`~ui.risk_state.RiskBoard` changed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import ui

from engine.bus.commands.risk import AlertRow, LimitUsage
from engine.bus.events import AlertRaised, OrderDenied
from ui.components.format import num, when
from ui.components.widgets import ORDER_COLUMNS
from ui.risk_state import RiskBoard, ScopeState

STATE_COLORS = {"ACTIVE": "positive", "REDUCING": "warning", "HALTED": "negative"}
SEVERITY_COLORS = {"info": "info", "warning": "warning", "critical": "negative"}
DENIAL_COLUMNS = [
    *ORDER_COLUMNS,
    {"name": "reason", "label": "Reason", "field": "reason", "align": "left"},
    {"name": "limit", "label": "Limit", "field": "limit", "align": "left"},
    {"name": "observed", "label": "Observed / limit", "field": "observed"},
    {"name": "algo", "label": "Algo", "field": "algo", "align": "left"},
    {"name": "message", "label": "Message", "field": "message", "align": "left"},
]


def accounts(board: RiskBoard) -> tuple[str, ...]:
    known = [a.account for a in board.status.accounts] if board.status else []
    halted = [s.key for s in board.scopes.values() if s.scope == "account"]
    return tuple(sorted(set(known + halted)))


def draw_scopes(
    box: ui.column, board: RiskBoard, resume: Callable[[str, str], None] | None
) -> None:
    rows = [board.scopes.get(("global", "")) or ScopeState("global", "", "ACTIVE", "")]
    rows += [
        board.scopes.get(("account", a)) or ScopeState("account", a, "ACTIVE", "")
        for a in accounts(board)
    ]
    rows += sorted(
        (s for s in board.scopes.values() if s.scope in ("symbol", "algo")),
        key=lambda s: (s.scope, s.key),
    )
    box.clear()
    with box:
        for s in rows:
            name = f"{s.scope}-{s.key}" if s.key else s.scope
            with ui.row().classes("items-center gap-2 w-full").mark(f"scope-{name}"):
                ui.label(scope_words(s.scope, s.key)).classes("w-40")
                badge = ui.badge(s.state, color=STATE_COLORS.get(s.state, "grey"))
                badge.props(f'data-testid="state-{name}"').mark(f"state-{name}")
                if s.state != "ACTIVE":
                    by = f" by {s.actor}" if s.actor else ""
                    since = f" since {when(s.since_ns)}" if s.since_ns else ""
                    said = f": {s.message}" if s.message else ""
                    ui.label(f"{s.reason}{by}{since}{said}").classes("text-caption grow")
                    if resume is not None:
                        ui.button(
                            "Resume",
                            on_click=lambda s=s: resume(s.scope, s.key),
                        ).props("dense flat color=positive").mark(f"resume-{name}")
                elif s.scope != "global" and ("global", "") in board.scopes:
                    ui.label("stopped by the global halt too").classes("text-caption")


def draw_usage(box: ui.column, board: RiskBoard) -> None:
    box.clear()
    with box:
        if board.status is None:
            ui.label("No risk status yet").classes("text-caption")
            return
        for a in board.status.accounts:
            warn = board.warning_level(a.account)
            with ui.column().classes("w-full gap-0").mark(f"usage-{a.account}"):
                pnl = "text-negative" if a.day_pnl < 0 else ""
                with ui.row().classes("items-center gap-2"):
                    ui.label(a.account).classes("text-weight-bold")
                    ui.badge(a.state, color=STATE_COLORS.get(a.state, "grey"))
                    ui.label(f"day P&L {num(a.day_pnl)}").classes(pnl)
                    ui.label(f"· {a.working_orders} working orders").classes("text-caption")
                    if not a.profile_version:
                        ui.label("· no risk profile: every order is denied").classes(
                            "text-caption text-negative"
                        )
                for lim in a.limits:
                    _usage_bar(a.account, lim, warn)


def _usage_bar(account: str, lim: LimitUsage, warn: float) -> None:
    color = "negative" if lim.usage >= 1 else "warning" if lim.usage >= warn else "positive"
    with ui.row().classes("items-center gap-2 w-full no-wrap"):
        what = f"{lim.limit} ({lim.key})" if lim.key else lim.limit
        ui.label(what).classes("text-caption w-64")
        bar = ui.linear_progress(max(0.0, min(lim.usage, 1.0)), show_value=False, color=color)
        bar.classes("w-48").props("size=10px").mark(f"bar-{account}-{lim.limit}")
        ui.label(f"{lim.usage:.0%} · {num(lim.observed)} / {num(lim.limit_value)}").classes(
            f"text-caption text-{color}"
        )


def draw_alerts(
    pinned: ui.column, box: ui.column, board: RiskBoard, operator: bool, ack: Any
) -> None:
    stored = sorted(board.alerts.values(), key=lambda a: a.ts, reverse=True)
    live = [a for _, a in reversed(board.live_alerts)]
    critical = [a for a in stored if a.severity == "critical"]
    live_critical = [a for a in live if a.severity == "critical"]
    pinned.clear()
    pinned.set_visibility(bool(critical or live_critical))
    with pinned:
        ui.label("Unacknowledged critical alerts").classes("text-subtitle2 text-negative")
        for a in critical:
            _stored_alert(a, operator, ack)
        for e in live_critical:
            _live_alert(e)
    box.clear()
    with box:
        for a in stored:
            if a.severity != "critical":
                _stored_alert(a, operator, ack)
        for e in live:
            if e.severity != "critical":
                _live_alert(e)
        if not stored and not live:
            ui.label("No open alerts").classes("text-caption")


def _stored_alert(a: AlertRow, operator: bool, ack: Any) -> None:
    with ui.row().classes("items-center gap-2 w-full no-wrap").mark(f"alert-{a.id}"):
        ui.badge(a.severity.upper(), color=SEVERITY_COLORS[a.severity])
        ui.label(when(a.ts)).classes("text-caption")
        ui.label(a.kind).classes("text-caption text-weight-bold")
        where = " ".join(x for x in (a.account, a.symbol, a.algo_id) if x)
        ui.label(f"{a.message}" + (f" [{where}]" if where else "")).classes("grow")
        if operator:
            ui.button("Acknowledge", on_click=ack(a.id)).props("dense flat").mark(f"ack-{a.id}")


def _live_alert(e: AlertRaised) -> None:
    with ui.row().classes("items-center gap-2 w-full no-wrap").mark("alert-live"):
        ui.badge(e.severity.upper(), color=SEVERITY_COLORS[e.severity])
        ui.label(when(e.ts_event)).classes("text-caption")
        ui.label(e.kind).classes("text-caption text-weight-bold")
        ui.label(e.message).classes("grow")
        ui.label("(just raised)").classes("text-caption")


def denial_row(i: int, d: OrderDenied) -> dict[str, Any]:
    observed = "" if d.observed is None else num(d.observed)
    limit = "" if d.limit_value is None else num(d.limit_value)
    return {
        "key": f"{i}-{d.client_order_id}",
        "time": when(d.ts_event),
        "account": d.account,
        "symbol": d.symbol,
        "side": d.side,
        "qty": num(d.qty),
        "price": "MKT" if d.price is None else num(d.price),
        "reason": d.reason,
        "limit": d.limit,
        "observed": f"{observed} / {limit}" if observed or limit else "",
        "algo": d.algo_id,
        "message": d.message,
    }


def scope_words(scope: str, key: str) -> str:
    return "Everything (global)" if scope == "global" else f"{scope} {key}"

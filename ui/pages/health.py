"""Health page: every process up / degraded / down, heartbeat age, restarts."""

from __future__ import annotations

from nicegui import ui

from ui.bridge import Bridge

STATE_COLORS = {
    "up": "positive",
    "degraded": "warning",
    "down": "negative",
    "starting": "info",
    "stopped": "grey",
}
COLUMNS = [
    {"name": "process", "label": "Process", "field": "process", "align": "left"},
    {"name": "state", "label": "State", "field": "state", "align": "left"},
    {"name": "pid", "label": "PID", "field": "pid"},
    {"name": "age", "label": "Heartbeat age", "field": "age"},
    {"name": "restarts", "label": "Restarts", "field": "restarts"},
    {"name": "version", "label": "Version", "field": "version"},
    {"name": "detail", "label": "Detail", "field": "detail", "align": "left"},
]


def build(bridge: Bridge) -> None:
    ui.label("Health").classes("text-h5")
    overall = ui.badge("…").props('data-testid="overall"')
    problem = ui.label("").classes("text-negative")
    table = ui.table(columns=COLUMNS, rows=[], row_key="process").classes("w-full")
    table.props('data-testid="health-table"')
    table.add_slot(
        "body-cell-state",
        "<q-td :props=\"props\"><q-badge :color=\"{up:'positive',degraded:'warning',"
        "down:'negative',starting:'info',stopped:'grey'}[props.value]\" "
        ':label="props.value.toUpperCase()" :data-testid="\'state-\' + props.row.process"/></q-td>',
    )

    async def refresh() -> None:
        report = await bridge.health()
        if report is None:
            overall.set_text("UNREACHABLE")
            overall.props("color=negative")
            problem.set_text(f"{bridge.last_error} Start the engine with `qsuite run`.")
            return
        problem.set_text("")
        overall.set_text(report.overall.upper())
        overall.props(f"color={STATE_COLORS[report.overall]}")
        table.rows = [
            {
                "process": p.process,
                "state": p.state,
                "pid": p.pid or "-",
                "age": "-" if p.heartbeat_age_s is None else f"{p.heartbeat_age_s:.1f}s",
                "restarts": p.restarts,
                "version": p.version or "-",
                "detail": p.detail,
            }
            for p in report.processes
        ]
        table.update()

    ui.timer(1.0, refresh)

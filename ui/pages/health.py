"""Health page: every process up / degraded / down, heartbeat age, restarts."""

from __future__ import annotations

from typing import Protocol

from nicegui import ui

from engine.bus.commands import HealthReport

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


class HealthSource(Protocol):
    """What the page needs from the bridge (tests pass a fake)."""

    last_error: str

    async def health(self) -> HealthReport | None: ...


def _cell_with_testid(column: str) -> str:
    # data-testid="<column>-<process>" lets browser tests address one cell of one row.
    return (
        f'<q-td :props="props" :data-testid="\'{column}-\' + props.row.process">'
        "{{ props.value }}</q-td>"
    )


def build(bridge: HealthSource) -> None:
    ui.label("Health").classes("text-h5")
    overall = ui.badge("…").props('data-testid="overall"').mark("overall")
    problem = ui.label("").classes("text-negative").props('data-testid="problem"').mark("problem")
    table = ui.table(columns=COLUMNS, rows=[], row_key="process").classes("w-full")
    table.props('data-testid="health-table"').mark("health-table")
    table.add_slot(
        "body-cell-state",
        "<q-td :props=\"props\"><q-badge :color=\"{up:'positive',degraded:'warning',"
        "down:'negative',starting:'info',stopped:'grey'}[props.value]\" "
        ':label="props.value.toUpperCase()" :data-testid="\'state-\' + props.row.process"/></q-td>',
    )
    for column in ("pid", "restarts"):
        table.add_slot(f"body-cell-{column}", _cell_with_testid(column))

    async def refresh() -> None:
        report = await bridge.health()
        if report is None:
            overall.set_text("UNREACHABLE")
            overall.props("color=negative")
            problem.set_text(bridge.last_error)
            table.rows = []  # last known states would be stale: show none rather than old ones
            table.update()
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

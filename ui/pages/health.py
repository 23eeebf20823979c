"""Health page: every process up / degraded / down, heartbeat age, restarts, bus message
rates, gaps and drops, commands served and errors (from the counters each heartbeat
carries), and how long the control plane took to answer the console."""

from __future__ import annotations

import time
from typing import Protocol

from nicegui import ui

from engine.bus.commands import HealthReport
from ui.components.widgets import show_badge

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
    {"name": "in", "label": "Msgs in/s", "field": "in"},
    {"name": "out", "label": "Msgs out/s", "field": "out"},
    {"name": "gaps", "label": "Gaps", "field": "gaps"},
    {"name": "drops", "label": "Drops", "field": "drops"},
    {"name": "commands", "label": "Commands", "field": "commands"},
    {"name": "errors", "label": "Errors", "field": "errors"},
    {"name": "version", "label": "Version", "field": "version"},
    {"name": "detail", "label": "Detail", "field": "detail", "align": "left"},
]


RATES = {"in": "qsuite_bus_received_total", "out": "qsuite_bus_published_total"}
TOTALS = {
    "gaps": "qsuite_bus_gaps_total",
    "drops": "qsuite_bus_dropped_total",
    "commands": "qsuite_control_commands_total",
    "errors": "qsuite_runtime_errors_total",
}


class Rates:
    """Messages per second of each process, from two successive reports' counters (a
    restarted process's counters start again from 0: no rate until the next report)."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, dict[str, float]]] = {}

    def of(self, process: str, counters: dict[str, float], now: float) -> dict[str, str]:
        before = self._last.get(process)
        self._last[process] = (now, counters)
        out = {}
        for column, name in RATES.items():
            value = counters.get(name)
            if before is None or value is None or now <= before[0]:
                out[column] = "-"
                continue
            delta = value - before[1].get(name, 0.0)
            out[column] = "-" if delta < 0 else f"{delta / (now - before[0]):.1f}"
        return out


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

    latency = ui.label("").props('data-testid="control-latency"').mark("control-latency")
    rates = Rates()

    async def refresh() -> None:
        started = time.monotonic()
        report = await bridge.health()
        took_ms = (time.monotonic() - started) * 1000
        if report is None:
            show_badge(overall, "UNREACHABLE", "negative")
            problem.set_text(bridge.last_error)
            table.rows = []  # last known states would be stale: show none rather than old ones
            table.update()
            return
        problem.set_text("")
        latency.set_text(f"The control plane answered the console in {took_ms:.1f} ms")
        now = time.monotonic()
        show_badge(overall, report.overall.upper(), STATE_COLORS[report.overall])
        table.rows = [
            {
                "process": p.process,
                "state": p.state,
                "pid": p.pid or "-",
                "age": "-" if p.heartbeat_age_s is None else f"{p.heartbeat_age_s:.1f}s",
                "restarts": p.restarts,
                "version": p.version or "-",
                "detail": p.detail,
                **rates.of(p.process, p.counters, now),
                **{
                    column: f"{p.counters[name]:.0f}" if name in p.counters else "-"
                    for column, name in TOTALS.items()
                },
            }
            for p in report.processes
        ]
        table.update()

    ui.timer(1.0, refresh)

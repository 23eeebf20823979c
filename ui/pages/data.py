"""Data page: the feed's status and the simulated market's scenario, the scheduler's jobs
(with "run now"), a backfill form, the ingestion log — where a backfill shows its
progress, running then ok / partial / failed with its rows — and the gap repairs.

The bridge's one bus subscription does not carry ``md.backfill`` / ``md.gap``, so the page
asks the control plane (``GetFeedStatus``, ``ListJobs``, ``GetIngestionLog``) every few
seconds while it is open, every second while a run is going. Every action is one of the
handlers below, sent through ``Bridge.act`` as the logged-in user (the role is checked
there and again by the control plane); viewers see everything and get no controls.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, cast, get_args

from nicegui import ui

from engine.bus.commands import Command, Result
from engine.bus.commands.jobs import JobInfo, JobList, JobStarted, ListJobs, RequestBackfill, RunJob
from engine.bus.commands.market import (
    FeedStatus,
    GetFeedStatus,
    GetIngestionLog,
    IngestionLog,
    IngestionRow,
    Scenario,
    ScenarioSet,
    SetScenario,
)
from engine.intervals import INTERVAL_SECONDS
from ui import session
from ui.components.format import FEED_MODE_COLORS, when
from ui.components.redraw import Changes
from ui.components.widgets import disabled, say, show_badge, table

R = TypeVar("R", bound=Result)
SCENARIOS: list[Scenario] = list(get_args(Scenario))
POLL_S = 3.0
BUSY_POLL_S = 1.0
"""While a job or an ingestion run is going (its progress)."""
LOG_ROWS = 50
GAP_ROWS = 20
MAX_SYMBOLS = 100
"""Symbols one backfill request may name."""
SYMBOL = re.compile(r"^[A-Za-z0-9.\-=^_]{1,32}$")
"""A market-data symbol, as ``engine.bus.commands.market.Symbol`` checks it."""
BREAKER_COLORS = {"closed": "positive", "half_open": "warning", "open": "negative"}
STATUS_COLORS = {
    "ok": "positive",
    "running": "info",
    "partial": "warning",
    "failed": "negative",
    "skipped": "grey",
    "never": "grey",
}
STATUS_CELL = (
    "<q-td :props=\"props\"><q-badge :color=\"{ok:'positive',running:'info',partial:'warning',"
    "failed:'negative'}[props.value] || 'grey'\" :label=\"props.value\"/></q-td>"
)
LOG_COLUMNS = [
    {"name": "id", "label": "Run", "field": "id"},
    {"name": "job", "label": "Job", "field": "job", "align": "left"},
    {"name": "source", "label": "Source", "field": "source", "align": "left"},
    {"name": "symbols", "label": "Symbols", "field": "symbols", "align": "left"},
    {"name": "interval", "label": "Interval", "field": "interval", "align": "left"},
    {"name": "status", "label": "Status", "field": "status", "align": "left"},
    {"name": "rows", "label": "Rows", "field": "rows"},
    {"name": "started", "label": "Started (UTC)", "field": "started", "align": "left"},
    {"name": "duration", "label": "Duration", "field": "duration"},
    {"name": "error", "label": "Error", "field": "error", "align": "left"},
]


class DataSource(Protocol):
    """What the page needs from the bridge (tests pass a fake)."""

    async def act(self, command: Command, kind: type[R]) -> tuple[R | None, str]: ...


# --- the handlers: each sends one command as the logged-in user -----------------------------


def check_backfill(
    symbols: str, interval: str, since: str, *, now_ns: int | None = None
) -> RequestBackfill | list[str]:
    """The backfill of a filled-in form, or what is wrong with it (in words)."""
    problems = []
    names = list(dict.fromkeys(s for s in re.split(r"[\s,;]+", symbols.strip()) if s))
    bad = [s for s in names if not SYMBOL.match(s)]
    if not names:
        problems.append("Symbols: name at least one, separated by spaces or commas")
    elif bad:
        problems.append(f"Symbols: not a symbol: {', '.join(bad)}")
    elif len(names) > MAX_SYMBOLS:
        problems.append(f"Symbols: at most {MAX_SYMBOLS} in one backfill")
    if interval not in INTERVAL_SECONDS:
        problems.append(f"Interval must be one of {', '.join(INTERVAL_SECONDS)}")
    start = _utc_ns(since.strip())
    now = time.time_ns() if now_ns is None else now_ns
    if start is None:
        problems.append("Since: a date like 2024-01-31 or 2024-01-31T14:30 (UTC)")
    elif start >= now:
        problems.append("Since must be in the past")
    if problems:
        return problems
    assert start is not None
    return RequestBackfill(symbols=names, interval=interval, start=start)


async def request_backfill(
    bridge: DataSource, symbols: str, interval: str, since: str
) -> tuple[bool, str]:
    """``RequestBackfill`` (operator); it runs in the scheduler, the log shows it."""
    request = check_backfill(symbols, interval, since)
    if isinstance(request, list):
        return False, "; ".join(request)
    started, why = await bridge.act(request, JobStarted)
    if started is None:
        return False, why
    what = ", ".join(request.symbols)
    return True, f"Backfill of {what} ({request.interval}) queued as {started.job}"


async def set_scenario(bridge: DataSource, scenario: str) -> tuple[bool, str]:
    """``SetScenario`` (operator): the simulated market and venue follow it."""
    if scenario not in SCENARIOS:
        return False, f"Scenario must be one of {', '.join(SCENARIOS)}"
    done, why = await bridge.act(SetScenario(scenario=cast(Scenario, scenario)), ScenarioSet)
    if done is None:
        return False, why
    return True, f"Scenario {done.previous} → {done.current}"


async def run_job(bridge: DataSource, job: str) -> tuple[bool, str]:
    """``RunJob`` (operator)."""
    started, why = await bridge.act(RunJob(job=job), JobStarted)
    if started is None:
        return False, why
    return True, f"Job {started.job} started; its run shows in the ingestion log"


# --- the page --------------------------------------------------------------------------------


def build(bridge: DataSource) -> None:
    user = session.current_user()
    operator = user is not None and user.may("operator")
    ui.label("Data").classes("text-h5")
    problem = ui.label("").classes("text-caption text-negative").mark("data-error")
    with ui.row().classes("w-full items-start gap-4 no-wrap"):
        with ui.card().classes("grow").props('data-testid="feed"'):
            ui.label("Feed").classes("text-subtitle2")
            with ui.row().classes("items-center gap-2"):
                mode = ui.badge("…").props('data-testid="feed-mode"').mark("feed-mode")
                breaker = ui.badge("…").props('data-testid="feed-breaker"').mark("feed-breaker")
                scenario = ui.badge("…").props('data-testid="feed-scenario"')
                scenario.mark("feed-scenario")
            reason = ui.label("").classes("text-caption").mark("feed-reason")
            watched = ui.label("").classes("text-caption").mark("feed-watchlist")
            if operator:
                with ui.row().classes("items-center gap-2"):
                    chosen = ui.select(SCENARIOS, value=None, label="Scenario").classes("w-48")
                    chosen.props('data-testid="scenario"').mark("scenario")
                    switch = ui.button("Switch").mark("scenario-apply")
                scenario_message = ui.label("").classes("text-caption")
                scenario_message.mark("scenario-message")
        if operator:
            _backfill_form(bridge)
    ui.label("Scheduled jobs").classes("text-subtitle2")
    jobs = ui.column().classes("w-full gap-1").mark("jobs")
    job_message = ui.label("").classes("text-caption").mark("job-message")
    ui.label("Ingestion log").classes("text-subtitle2")
    log = _log_table("ingestion-log")
    ui.label("Gap repairs").classes("text-subtitle2")
    gaps = _log_table("gap-repairs")
    changed = Changes()
    due = [0.0]

    def run_handler(job: str) -> Any:
        async def run() -> None:
            say(job_message, *await run_job(bridge, job))
            due[0] = 0.0

        return run

    async def poll() -> None:
        if time.monotonic() < due[0]:
            return
        due[0] = time.monotonic() + POLL_S
        feed, why_feed = await bridge.act(GetFeedStatus(), FeedStatus)
        listed, why_jobs = await bridge.act(ListJobs(), JobList)
        runs, why_log = await bridge.act(GetIngestionLog(limit=LOG_ROWS), IngestionLog)
        repairs, why_gaps = await bridge.act(
            GetIngestionLog(job="gap_repair", limit=GAP_ROWS), IngestionLog
        )
        problem.set_text("; ".join(w for w in (why_feed, why_jobs, why_log, why_gaps) if w))
        if feed is not None and changed("feed", feed):
            _draw_feed(feed, mode, breaker, scenario, reason, watched)
            if operator and changed("scenario", feed.scenario):
                chosen.set_value(feed.scenario)  # only when the feed's own scenario moved
        if listed is not None and changed("jobs", listed.jobs):
            _draw_jobs(jobs, listed.jobs, operator, run_handler)
        if runs is not None and changed("log", runs.runs):
            log.rows = [_run_row(r) for r in runs.runs]
        if repairs is not None and changed("gaps", repairs.runs):
            gaps.rows = [_run_row(r) for r in repairs.runs]
        busy = any(j.last_status == "running" for j in (listed.jobs if listed else [])) or any(
            r.status == "running" for r in (runs.runs if runs else [])
        )
        if busy:
            due[0] = time.monotonic() + BUSY_POLL_S

    if operator:

        async def switch_scenario() -> None:
            say(scenario_message, *await set_scenario(bridge, chosen.value or ""))
            due[0] = 0.0

        switch.on_click(switch_scenario)
    ui.timer(0.5, poll)


def _backfill_form(bridge: DataSource) -> None:
    with ui.card().classes("w-96 gap-1").props('data-testid="backfill"'):
        ui.label("Backfill").classes("text-subtitle2")
        symbols = ui.input("Symbols", placeholder="AAPL MSFT BRK-B").classes("w-full")
        symbols.mark("backfill-symbols")
        interval = ui.select(list(INTERVAL_SECONDS), value="1d", label="Interval")
        interval.classes("w-full").mark("backfill-interval")
        since = ui.input("Since (UTC)", placeholder="2024-01-31").classes("w-full")
        since.mark("backfill-since")
        message = ui.label("").classes("text-caption").mark("backfill-message")

        async def send() -> None:
            with disabled(button):
                ok, text = await request_backfill(
                    bridge, symbols.value or "", interval.value or "", since.value or ""
                )
            say(message, ok, text)

        button = ui.button("Backfill", on_click=send).mark("backfill-send")


def _draw_feed(
    feed: FeedStatus,
    mode: ui.badge,
    breaker: ui.badge,
    scenario: ui.badge,
    reason: ui.label,
    watched: ui.label,
) -> None:
    show_badge(mode, feed.mode.upper(), FEED_MODE_COLORS.get(feed.mode, "grey"))
    show_badge(breaker, f"breaker {feed.breaker}", BREAKER_COLORS.get(feed.breaker, "grey"))
    scenario.set_text(f"scenario {feed.scenario}")
    live = f"; source last answered {when(feed.last_live_at)}" if feed.last_live_at else ""
    reason.set_text((feed.reason or "serving normally") + live)
    watched.set_text(f"Watchlist ({feed.interval}): {', '.join(feed.watchlist) or '-'}")


def _draw_jobs(box: ui.column, jobs: list[JobInfo], operator: bool, run: Any) -> None:
    box.clear()
    with box:
        if not jobs:
            ui.label("No jobs (is the scheduler running?)").classes("text-caption")
        for j in jobs:
            with ui.row().classes("items-center gap-3 w-full no-wrap").mark(f"job-{j.id}"):
                ui.label(f"{j.name} ({j.id})").classes("w-72 text-weight-bold")
                ui.label(j.trigger).classes("text-caption w-48")
                ui.badge(j.last_status, color=STATUS_COLORS.get(j.last_status, "grey"))
                ui.label(f"last {when(j.last_run)} · next {when(j.next_run)}").classes(
                    "text-caption"
                )
                ui.label(j.last_error or "").classes("text-caption text-negative grow")
                if operator:
                    button = ui.button("Run now", on_click=run(j.id)).props("dense flat")
                    button.mark(f"run-{j.id}")
                    if j.last_status == "running":
                        button.disable()


def _log_table(name: str) -> ui.table:
    runs = table(LOG_COLUMNS, name, row_key="id").classes("w-full")
    runs.add_slot("body-cell-status", STATUS_CELL)
    return runs


def _run_row(r: IngestionRow) -> dict[str, Any]:
    return {
        "id": r.id,
        "job": r.job,
        "source": r.source,
        "symbols": ", ".join(r.symbols),
        "interval": r.interval or "-",
        "status": r.status,
        "rows": r.rows,
        "started": r.started_at.replace("T", " ")[:19],
        "duration": "-" if r.duration_s is None else f"{r.duration_s:.1f}s",
        "error": r.error or "",
    }


def _utc_ns(text: str) -> int | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000_000)

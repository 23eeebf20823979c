"""The Data page rendered in-process by NiceGUI's simulated ``User``, against a fake bridge
whose real ``Bridge.act`` sends to a fake control plane (which checks roles as the real
one does): no sockets, no browser."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from nicegui.testing import User, user_simulation

from app.client import QSuiteClient
from engine.bus.commands import Command, Result
from engine.bus.commands.base import ROLE_RANK
from engine.bus.commands.jobs import JobInfo, JobList, JobStarted, ListJobs, RequestBackfill, RunJob
from engine.bus.commands.market import (
    FeedStatus,
    GetFeedStatus,
    GetIngestionLog,
    IngestionLog,
    IngestionRow,
    ScenarioSet,
    SetScenario,
)
from engine.errors import CommandError, ErrorCode
from ui import session
from ui.bridge import Bridge
from ui.pages import data
from ui.session import SessionUser

pytestmark = pytest.mark.timeout(30)

NS = 1_000_000_000


def run(run_id: int, job: str, status: str = "ok") -> IngestionRow:
    return IngestionRow(
        id=run_id,
        job=job,
        source="yahoo",
        symbols=["AAPL"],
        interval="1d",
        rows=0 if status == "running" else 250,
        status=status,
        started_at="2024-05-01T06:00:00+00:00",
        duration_s=None if status == "running" else 2.5,
        error=None,
    )


class FakeClient:
    """The feed and the scheduler as far as the page needs them."""

    expect = staticmethod(QSuiteClient.expect)

    def __init__(self) -> None:
        self.sent: list[tuple[Command, str, str]] = []
        self.scenario = "calm"
        self.runs = [run(2, "backfill_request", "running"), run(1, "backfill")]

    def mutations(self) -> list[Command]:
        return [c for c, _, _ in self.sent if c.mutating]

    async def send(self, command: Command, *, actor: str = "", role: str = "viewer") -> Result:
        self.sent.append((command, actor, role))
        if ROLE_RANK[role] < ROLE_RANK[command.min_role]:
            raise CommandError(
                ErrorCode.FORBIDDEN,
                f"{type(command).__name__}.v1 needs role {command.min_role}; "
                f"the caller acts as {role}",
            )
        if isinstance(command, GetFeedStatus):
            return FeedStatus(
                mode="simulated",
                breaker="open",
                reason="Yahoo unreachable: timeout; serving simulated",
                watchlist=["AAPL", "MSFT"],
                interval="1m",
                scenario=self.scenario,  # type: ignore[arg-type]
                last_live_at=None,
            )
        if isinstance(command, ListJobs):
            return JobList(
                jobs=[
                    JobInfo(
                        id="backfill",
                        name="Backfill the watchlist",
                        trigger="cron[hour='6']",
                        next_run=1_714_600_000 * NS,
                        last_run=1_714_543_200 * NS,
                        last_status="ok",
                    ),
                    JobInfo(
                        id="gap_repair",
                        name="Repair gaps in stored bars",
                        trigger="interval[0:05:00]",
                        next_run=None,
                        last_run=None,
                        last_status="running",
                    ),
                ]
            )
        if isinstance(command, GetIngestionLog):
            runs = self.runs if command.job is None else [run(9, "gap_repair", "partial")]
            return IngestionLog(runs=runs)
        if isinstance(command, SetScenario):
            previous, self.scenario = self.scenario, command.scenario
            return ScenarioSet(previous=previous, current=command.scenario, applied_at=1)  # type: ignore[arg-type]
        if isinstance(command, RunJob | RequestBackfill):
            job = command.job if isinstance(command, RunJob) else "backfill-request-x"
            return JobStarted(job=job, run_at=1)
        raise AssertionError(f"unexpected {type(command).__name__}")


class FakeBridge:
    def __init__(self) -> None:
        self.client = FakeClient()

    act = Bridge.act


@pytest.fixture
def bridge() -> FakeBridge:
    return FakeBridge()


@pytest.fixture
def login(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    names = {"viewer": "vic", "operator": "olga", "admin": "ada"}

    def as_role(role: str) -> None:
        monkeypatch.setattr(session, "current_user", lambda: SessionUser(names[role], role))  # type: ignore[arg-type]

    return as_role


@pytest.fixture
async def user(bridge: FakeBridge, caplog: pytest.LogCaptureFixture) -> AsyncIterator[User]:
    async with user_simulation(lambda: data.build(bridge)) as simulated:
        yield simulated
    errors = [r.getMessage() for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    assert not errors, f"the page logged errors: {errors}"


async def eventually(predicate: Callable[[], Any], timeout_s: float = 3.0) -> Any:
    for _ in range(int(timeout_s / 0.05)):
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("the page did not get there in time")


def only(user: User, marker: str) -> Any:
    (element,) = user.find(marker=marker).elements
    return element


async def test_data_page_shows_feed_jobs_and_the_ingestion_log_with_progress(
    user: User, bridge: FakeBridge, login: Callable[[str], None]
) -> None:
    login("viewer")
    await user.open("/")

    await user.should_see(marker="feed-mode", content="SIMULATED")
    assert only(user, "feed-mode").props["color"] == "orange"
    await user.should_see(marker="feed-breaker", content="breaker open")
    await user.should_see(marker="feed-scenario", content="scenario calm")
    await user.should_see(marker="feed-reason", content="Yahoo unreachable")
    await user.should_see(marker="job-backfill")
    log = only(user, "ingestion-log")
    await eventually(lambda: log.rows)
    assert [(r["id"], r["status"], r["rows"]) for r in log.rows] == [
        (2, "running", 0),
        (1, "ok", 250),
    ]

    bridge.client.runs = [run(2, "backfill_request", "ok"), run(1, "backfill")]  # it finished

    await eventually(lambda: log.rows[0]["status"] == "ok")  # a run going: polled every second
    gaps = only(user, "gap-repairs")
    assert [(r["job"], r["status"]) for r in gaps.rows] == [("gap_repair", "partial")]


async def test_data_page_scenario_change_sends_set_scenario(
    user: User, bridge: FakeBridge, login: Callable[[str], None]
) -> None:
    login("operator")
    await user.open("/")
    select = only(user, "scenario")
    await eventually(lambda: select.value == "calm")  # the feed's own scenario

    select.value = "flash_crash"
    user.find(marker="scenario-apply").click()

    await user.should_see(marker="scenario-message", content="Scenario calm → flash_crash")
    ((sent, actor, role),) = [s for s in bridge.client.sent if s[0].mutating]
    assert (sent, actor, role) == (SetScenario(scenario="flash_crash"), "olga", "operator")
    badge = only(user, "feed-scenario")
    await eventually(lambda: badge.text == "scenario flash_crash")  # asked again at once


async def test_data_page_backfill_form_validates_then_sends_request_backfill(
    user: User, bridge: FakeBridge, login: Callable[[str], None]
) -> None:
    login("operator")
    await user.open("/")

    user.find(marker="backfill-send").click()
    await user.should_see(marker="backfill-message", content="Symbols: name at least one")
    await user.should_see(marker="backfill-message", content="Since: a date like 2024-01-31")
    assert bridge.client.mutations() == []

    user.find(marker="backfill-symbols").type("AAPL, MSFT AAPL")
    only(user, "backfill-interval").value = "1h"
    user.find(marker="backfill-since").type("2024-01-31")
    user.find(marker="backfill-send").click()

    await user.should_see(marker="backfill-message", content="queued as backfill-request-x")
    start = int(datetime(2024, 1, 31, tzinfo=UTC).timestamp()) * NS
    assert bridge.client.mutations() == [
        RequestBackfill(symbols=["AAPL", "MSFT"], interval="1h", start=start)
    ]


async def test_data_page_run_now_sends_run_job(
    user: User, bridge: FakeBridge, login: Callable[[str], None]
) -> None:
    login("operator")
    await user.open("/")
    await user.should_see(marker="run-backfill")
    assert not only(user, "run-gap_repair").enabled  # running: it never runs twice at once

    user.find(marker="run-backfill").click()

    await user.should_see(marker="job-message", content="Job backfill started")
    assert bridge.client.mutations() == [RunJob(job="backfill")]


async def test_data_page_when_viewer_then_no_controls_and_handlers_refused(
    user: User, bridge: FakeBridge, login: Callable[[str], None]
) -> None:
    login("viewer")
    await user.open("/")
    await user.should_see(marker="job-backfill")
    for control in ("scenario", "scenario-apply", "backfill-send", "run-backfill"):
        await user.should_not_see(marker=control)

    refusals = [
        await data.set_scenario(bridge, "flash_crash"),
        await data.run_job(bridge, "backfill"),
        await data.request_backfill(bridge, "AAPL", "1d", "2024-01-31"),
    ]

    for ok, why in refusals:
        assert not ok and why.startswith("Not allowed: this needs the operator role")
        assert "vic (viewer)" in why
    assert bridge.client.mutations() == []


async def test_data_page_when_the_feed_is_unreachable_then_says_why(
    user: User, bridge: FakeBridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session, "current_user", lambda: None)  # nobody logged in
    await user.open("/")
    await user.should_see(marker="data-error", content="Not allowed: log in first.")


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"symbols": ""}, "Symbols: name at least one"),
        ({"symbols": "AAPL $$$"}, "Symbols: not a symbol: $$$"),
        ({"interval": "7m"}, "Interval must be one of"),
        ({"since": "last week"}, "Since: a date like"),
        ({"since": "2030-01-01"}, "Since must be in the past"),
    ],
)
def test_check_backfill_when_a_field_is_wrong_then_names_it(
    fields: dict[str, str], problem: str
) -> None:
    form = {"symbols": "AAPL", "interval": "1d", "since": "2024-01-31"} | fields
    now = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp()) * NS
    problems = data.check_backfill(**form, now_ns=now)
    assert isinstance(problems, list) and len(problems) == 1 and problem in problems[0]


def test_check_backfill_when_a_time_with_offset_then_utc() -> None:
    request = data.check_backfill("^GSPC BRK-B", "1d", "2024-01-31T14:30+01:00")
    assert request == RequestBackfill(
        symbols=["^GSPC", "BRK-B"],
        interval="1d",
        start=int(datetime(2024, 1, 31, 13, 30, tzinfo=UTC).timestamp()) * NS,
    )

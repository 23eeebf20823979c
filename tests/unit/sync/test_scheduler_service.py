"""The scheduler service over a real APScheduler: jobs listed, run now, requested, never
twice at once. Runs are started with commands and awaited with a bounded poll."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fakes import FakeContext
from harness import wait_until
from test_sync_jobs import DAY, START, WATCHLIST, FakeSource

from app import database
from app.settings import load_settings
from engine.bus.commands.jobs import (
    JobInfo,
    JobList,
    JobStarted,
    ListJobs,
    RequestBackfill,
    RunJob,
)
from engine.bus.events import BackfillCompleted
from engine.clock import FakeClock
from engine.errors import CommandError, ErrorCode
from engine.persistence.bars import count_bars, load_bars
from engine.persistence.ingestion import recent_runs
from engine.persistence.models import BarFlag
from engine.sync import SchedulerService
from feeds.gaps import GapQueue
from feeds.ingest import Ingestor
from feeds.mdlog import MarketDataLog
from feeds.synthetic import SyntheticMarket

WAIT_S = 5.0


class GatedSource(FakeSource):
    """Blocks every history call until the gate opens (a slow job)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.gate = threading.Event()
        self.entered = threading.Event()

    def history(self, symbol: str, interval: str, start_ns: int, end_ns: int) -> pd.DataFrame:
        self.entered.set()
        assert self.gate.wait(WAIT_S), "the test never opened the gate"
        return super().history(symbol, interval, start_ns, end_ns)


Make = Callable[..., tuple[SchedulerService, FakeContext]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def make(tmp_path: Path, clock: FakeClock) -> Iterator[Make]:
    """Build and start a scheduler service; stopped at the end of the test."""
    started: list[SchedulerService] = []

    def build(
        source: Any = None, *, on_start: bool = False, feed_source: str = "yahoo"
    ) -> tuple[SchedulerService, FakeContext]:
        settings = load_settings(
            environ={
                "QSUITE__APP__DATA_DIR": str(tmp_path),
                "QSUITE__FEED__WATCHLIST": '["AAA", "BBB"]',
                "QSUITE__FEED__SOURCE": feed_source,
                "QSUITE__SYNC__BACKFILL_DAYS": "10",
                "QSUITE__SYNC__BACKFILL_ON_START": "true" if on_start else "false",
            }
        )
        ingestor = Ingestor(
            database.open_database(settings),
            MarketDataLog(tmp_path / "mdlog", "scheduler"),
            gaps=GapQueue(tmp_path / "gaps"),
            clock=clock,
        )
        market = SyntheticMarket({s: 100.0 for s in WATCHLIST}, seed=7, clock=clock)
        service = SchedulerService(
            settings.sync,
            settings.feed,
            ingestor=ingestor,
            source=source if source is not None else market,
            fallback_source=market,
            clock=clock,
        )
        ctx = FakeContext("scheduler", clock)
        service.start(ctx)
        started.append(service)
        return service, ctx

    yield build
    for service in started:
        service.stop()


def jobs_of(ctx: FakeContext) -> dict[str, JobInfo]:
    listing = ctx.send(ListJobs(command_id="list"))
    assert isinstance(listing, JobList)
    return {job.id: job for job in listing.jobs}


def wait_status(ctx: FakeContext, job: str, *statuses: str) -> JobInfo:
    return wait_until(
        lambda: (info := jobs_of(ctx).get(job)) and info.last_status in statuses and info,
        WAIT_S,
        f"job {job} to end {'/'.join(statuses)}",
        every_s=0.01,
    )


def refused(ctx: FakeContext, command: Any) -> CommandError:
    with pytest.raises(CommandError) as raised:
        ctx.send(command)
    return raised.value


def test_list_jobs_when_started_then_four_jobs_with_next_runs(make: Make, clock: FakeClock):
    service, ctx = make(FakeSource(clock))

    listed = jobs_of(ctx)

    assert list(listed) == ["backfill", "fundamentals", "gap_repair", "analytics_snapshot"]
    assert listed["backfill"].trigger == "cron[hour='6', minute='0']"
    assert listed["fundamentals"].trigger == "cron[hour='6', minute='30']"
    assert listed["gap_repair"].trigger == "interval[0:15:00]"
    assert listed["analytics_snapshot"].trigger == "interval[0:05:00]"
    now = time.time_ns()
    for job in listed.values():
        assert job.next_run is not None and now < job.next_run <= now + DAY + 10**9
        assert (job.last_run, job.last_status, job.last_error) == (None, "never", None)
    assert service.health() == ("up", "")


def test_run_job_when_backfill_then_runs_now_stores_and_hands_off_to_analysis(
    make: Make, clock: FakeClock
):
    service, ctx = make(FakeSource(clock))

    started = ctx.send(RunJob(command_id="c1", job="backfill", role="operator"))

    assert isinstance(started, JobStarted) and started.job == "backfill"
    info = wait_status(ctx, "backfill", "ok")
    assert info.last_run == START and info.next_run is not None
    assert count_bars(service.ingestor.engine) == 18
    assert [e.symbol for e in ctx.events(BackfillCompleted)] == WATCHLIST
    assert [r.status for r in recent_runs(service.ingestor.engine, "backfill")] == ["ok"]
    assert ctx.stats.snapshot()["qsuite_sync_job_runs_total{job=backfill,status=ok}"] == 1


def test_run_job_when_unknown_then_not_found_listing_the_jobs(make: Make, clock: FakeClock):
    _service, ctx = make(FakeSource(clock))

    error = refused(ctx, RunJob(command_id="c1", job="nope"))

    assert error.code == ErrorCode.NOT_FOUND
    assert (
        error.message
        == "no job 'nope'; jobs: backfill, fundamentals, gap_repair, analytics_snapshot"
    )


def test_run_job_when_running_then_never_runs_twice_at_once(make: Make, clock: FakeClock):
    source = GatedSource(clock)
    service, ctx = make(source)
    ctx.send(RunJob(command_id="c1", job="backfill"))
    assert source.entered.wait(WAIT_S)
    assert jobs_of(ctx)["backfill"].last_status == "running"

    error = refused(ctx, RunJob(command_id="c2", job="backfill"))
    # behind the command's check, APScheduler's max_instances=1 refuses a second run too
    service._scheduler.modify_job("backfill", next_run_time=datetime.now(UTC))
    wait_until(
        lambda: ctx.stats.total("qsuite_sync_job_skipped_total") == 1,
        WAIT_S,
        "the second run to be refused",
        every_s=0.01,
    )
    source.gate.set()

    assert error.code == ErrorCode.CONFLICT and "already running" in error.message
    wait_status(ctx, "backfill", "ok")
    assert [c[0] for c in source.calls] == WATCHLIST  # one run: each symbol fetched once
    assert len(recent_runs(service.ingestor.engine, "backfill")) == 1


def test_request_backfill_when_sent_twice_with_one_command_id_then_one_run(
    make: Make, clock: FakeClock
):
    source = FakeSource(clock)
    service, ctx = make(source)
    command = RequestBackfill(
        command_id="req-1", symbols=["AAA"], interval="1d", start=START - 5 * DAY, end=START
    )

    first = ctx.send(command)
    second = ctx.send(command)

    assert first == second == JobStarted(job="backfill-request-req-1", run_at=START)
    info = wait_status(ctx, "backfill-request-req-1", "ok")
    assert info.next_run is None and info.trigger.startswith("date[")
    (run,) = recent_runs(service.ingestor.engine, "backfill_request")
    assert (run.status, run.rows, run.symbols) == ("ok", 4, ["AAA"])  # today's is not closed
    assert len(source.calls) == 1
    assert [(e.symbol, e.rows) for e in ctx.events(BackfillCompleted)] == [("AAA", 4)]
    assert ctx.send(command) == first  # and after it ran: still no second run
    assert len(recent_runs(service.ingestor.engine, "backfill_request")) == 1


INVALID_REQUESTS: list[tuple[dict[str, Any], str]] = [
    ({"interval": "7m"}, "unknown interval '7m'"),
    ({"start": START, "end": START}, "start must be before end"),
    ({"start": START + DAY}, "start must be before end"),  # end defaults to now
    ({"source": "replay"}, "source 'replay' is not available in the scheduler; it has: "),
    ({"symbols": []}, "no symbols"),
]


def test_request_backfill_when_invalid_then_refused_and_nothing_queued(
    make: Make, clock: FakeClock
):
    service, ctx = make(FakeSource(clock))

    for n, (fields, why) in enumerate(INVALID_REQUESTS):
        command = RequestBackfill(
            **{"command_id": f"r{n}", "symbols": ["AAA"], "start": START - DAY, **fields}
        )
        error = refused(ctx, command)
        assert (error.code, why in error.message) == (ErrorCode.INVALID, True), error.message

    assert list(jobs_of(ctx)) == ["backfill", "fundamentals", "gap_repair", "analytics_snapshot"]
    assert recent_runs(service.ingestor.engine) == []


def test_backfill_when_source_down_then_degraded_with_reason_and_next_run_recovers(
    make: Make, clock: FakeClock
):
    source = FakeSource(clock)
    source.up = False
    service, ctx = make(source)

    ctx.send(RunJob(command_id="c1", job="backfill"))
    info = wait_status(ctx, "backfill", "failed")

    assert info.last_error == "yahoo unreachable: connect timeout"
    assert service.health() == (
        "degraded",
        "backfill failed 12:00: yahoo unreachable: connect timeout",
    )
    (run,) = recent_runs(service.ingestor.engine, "backfill")
    assert run.status == "failed"

    source.up = True
    ctx.send(RunJob(command_id="c2", job="backfill"))
    wait_status(ctx, "backfill", "ok")

    assert service.health() == ("up", "")


def test_start_when_backfill_on_start_then_backfills_at_once(make: Make, clock: FakeClock):
    service, ctx = make(FakeSource(clock), on_start=True)

    wait_status(ctx, "backfill", "ok")

    assert count_bars(service.ingestor.engine) == 18


def test_backfill_when_feed_is_synthetic_then_uses_the_market_and_flags_bars_simulated(
    make: Make, clock: FakeClock
):
    service, ctx = make(feed_source="synthetic")
    assert sorted(service.sources) == ["synthetic"]

    ctx.send(RunJob(command_id="c1", job="backfill"))
    wait_status(ctx, "backfill", "ok")

    bars = load_bars(service.ingestor.engine, "AAA", "1d")
    assert bars and all(bar.flags & BarFlag.SIMULATED for bar in bars)
    assert {e.origin for e in ctx.events(BackfillCompleted)} == {"synthetic"}
    error = refused(ctx, RequestBackfill(command_id="r", symbols=["AAA"], start=START - DAY))
    assert error.code == ErrorCode.INVALID  # "yahoo" (the default) is not one it has


def test_gap_repair_when_run_now_then_drains_the_queue(make: Make, clock: FakeClock):
    service, ctx = make(FakeSource(clock))
    assert service.ingestor.gaps is not None
    service.ingestor.gaps.put("AAA", "1d", START - 5 * DAY, START - 2 * DAY, 3)

    ctx.send(RunJob(command_id="c1", job="gap_repair"))
    wait_status(ctx, "gap_repair", "ok")

    assert len(service.ingestor.gaps) == 0
    assert count_bars(service.ingestor.engine, "AAA", "1d") == 3


def test_stop_when_a_job_is_running_then_it_stops_after_the_current_symbol(
    make: Make, clock: FakeClock
):
    source = GatedSource(clock)
    service, ctx = make(source)
    ctx.send(RunJob(command_id="c1", job="backfill"))
    assert source.entered.wait(WAIT_S)
    # the slow fetch ends only once stop() has asked the job to stop
    opener = threading.Thread(target=lambda: service._cancel.wait(WAIT_S) and source.gate.set())
    opener.start()

    began = time.monotonic()
    service.stop()

    assert time.monotonic() - began < WAIT_S
    assert [c[0] for c in source.calls] == ["AAA"]
    (run,) = recent_runs(service.ingestor.engine, "backfill")
    assert run.status == "partial" and run.error is not None
    assert "the scheduler is stopping" in run.error
    assert refused(ctx, RunJob(command_id="c2", job="backfill")).code == ErrorCode.UNAVAILABLE
    opener.join()

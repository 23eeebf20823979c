"""The ``analytics_snapshot`` job and ``GetPerformance`` in the scheduler service (a real
APScheduler, SQLite and price cache in tmp): marks from the cache, listed and run like
the other jobs, off when its interval is 0."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeContext
from harness import wait_until
from ledger_fills import trade
from test_sync_jobs import START, FakeSource

from app import database
from app.settings import load_settings
from engine.analytics.snapshots import load_snapshots
from engine.bus.commands.analytics import AccountPerformance, GetPerformance
from engine.bus.commands.jobs import JobInfo, JobList, ListJobs, RunJob
from engine.clock import FakeClock
from engine.errors import CommandError, ErrorCode
from engine.orders.ledger import OrderLedger
from engine.sync import SchedulerService
from engine.sync.performance import cache_marks, quote_mark
from feeds.cache import PriceCache
from feeds.ingest import Ingestor
from feeds.mdlog import MarketDataLog
from feeds.schema import Quote

D = Decimal
JOB = "analytics_snapshot"
WAIT_S = 5.0


def quote(symbol: str, bid: float, ask: float, last: float, ts: int = START) -> Quote:
    return Quote(symbol=symbol, ts=ts, bid=bid, ask=ask, last=last, origin="yahoo")


# --- marks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bid", "ask", "last", "mark"),
    [
        (100.1, 100.2, 99.0, D("100.15")),  # the mid, from the floats' shortest form
        (100.0, 100.0, 99.0, D("100")),  # locked
        (100.2, 100.1, 99.5, D("99.5")),  # crossed: the last trade
        (0.0, 100.1, 99.5, D("99.5")),  # one-sided
        (float("nan"), 100.1, 99.5, D("99.5")),
        (0.0, 0.0, 0.0, None),
        (0.0, 0.0, float("inf"), None),
    ],
)
def test_quote_mark_when_quote_given_then_mid_else_last_else_none(
    bid: float, ask: float, last: float, mark: Decimal | None
) -> None:
    assert quote_mark(quote("AAA", bid, ask, last)) == mark


def test_cache_marks_when_cache_has_quotes_then_marks_else_none(tmp_path: Path) -> None:
    with PriceCache(tmp_path / "price-cache") as cache:
        cache.put_quote(quote("AAA", 10.0, 10.5, 10.2))
        marks = cache_marks(cache)

        assert (marks("AAA"), marks("BBB")) == (D("10.25"), None)
    assert cache_marks(None)("AAA") is None


# --- the job in the scheduler ---------------------------------------------------------

Make = Callable[..., tuple[SchedulerService, FakeContext, PriceCache]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def make(tmp_path: Path, clock: FakeClock) -> Iterator[Make]:
    started: list[SchedulerService] = []

    def build(every_s: str = "300") -> tuple[SchedulerService, FakeContext, PriceCache]:
        settings = load_settings(
            environ={
                "QSUITE__APP__DATA_DIR": str(tmp_path),
                "QSUITE__SYNC__BACKFILL_ON_START": "false",
                "QSUITE__SYNC__SNAPSHOT_EVERY_S": every_s,
            }
        )
        cache = PriceCache(tmp_path / "price-cache", clock=clock)
        ingestor = Ingestor(
            database.open_database(settings),
            MarketDataLog(tmp_path / "mdlog", "scheduler"),
            cache=cache,
            clock=clock,
        )
        source = FakeSource(clock)
        service = SchedulerService(
            settings.sync,
            settings.feed,
            ingestor=ingestor,
            source=source,
            fallback_source=None,
            clock=clock,
        )
        ctx = FakeContext("scheduler", clock)
        service.start(ctx)
        started.append(service)
        return service, ctx, cache

    yield build
    for service in started:
        service.stop()  # closes the cache and disposes the engine


def run_now(ctx: FakeContext, clock: FakeClock, n: int) -> JobInfo:
    """Run the job now and wait for this run (started at the clock's time) to end."""
    ctx.send(RunJob(command_id=f"run-{n}", job=JOB, role="operator"))

    def ended() -> JobInfo | None:
        listing = ctx.send(ListJobs(command_id=f"list-{n}"))
        assert isinstance(listing, JobList)
        info = {job.id: job for job in listing.jobs}[JOB]
        done = info.last_run == clock.time_ns() and info.last_status not in ("running", "never")
        return info if done else None

    return wait_until(ended, WAIT_S, f"run {n} of {JOB}", every_s=0.01)


def performance(ctx: FakeContext, **fields: Any) -> AccountPerformance:
    result = ctx.send(GetPerformance(command_id="p", account="acme", **fields))
    assert isinstance(result, AccountPerformance)
    return result


def test_snapshot_job_when_run_twice_then_snapshots_at_cache_marks_and_performance(
    make: Make, clock: FakeClock
) -> None:
    service, ctx, cache = make()
    engine = service.ingestor.engine
    trade(OrderLedger(engine), "acme", "AAA", "buy", "100", "10")
    cache.put_quote(quote("AAA", 10.0, 10.5, 10.2))

    first = run_now(ctx, clock, 1)
    clock.advance(300)
    cache.put_quote(quote("AAA", 9.5, 9.7, 9.6, ts=clock.time_ns()))
    second = run_now(ctx, clock, 2)

    assert (first.last_status, first.last_error, second.last_status) == ("ok", None, "ok")
    snapshots = load_snapshots(engine, "acme")
    assert [(s.ts, s.unrealized_pnl, s.gross_exposure) for s in snapshots] == [
        (START, D("25"), D("1025")),  # 100 * (10.25 - 10)
        (START + 300 * 10**9, D("-40"), D("960")),  # 100 * (9.6 - 10)
    ]
    report = performance(ctx, capital=D(10_000))
    assert report.snapshots == snapshots and not report.truncated
    assert report.performance is not None
    assert (report.performance.pnl, report.performance.initial_equity) == (D(-65), 10_025.0)
    assert report.performance.total_return == pytest.approx(9_960 / 10_025 - 1, rel=1e-12)
    assert ctx.stats.snapshot()[f"qsuite_sync_job_runs_total{{job={JOB},status=ok}}"] == 2


def test_snapshot_job_when_a_mark_is_missing_then_partial_naming_the_symbol(
    make: Make, clock: FakeClock
) -> None:
    service, ctx, cache = make()
    ledger = OrderLedger(service.ingestor.engine)
    trade(ledger, "acme", "AAA", "buy", "1", "10")
    trade(ledger, "acme", "ZZZ", "sell", "2", "5")
    cache.put_quote(quote("AAA", 11.0, 11.0, 11.0))

    info = run_now(ctx, clock, 1)

    assert info.last_status == "partial"
    assert info.last_error == "no mark for 1 open position(s) (ZZZ); their P&L is left out"
    (snapshot,) = load_snapshots(service.ingestor.engine, "acme")
    assert (snapshot.unrealized_pnl, snapshot.positions, snapshot.marks_missing) == (D(1), 2, 1)
    assert service.health() == ("up", "")  # incomplete marks are not an outage


def test_get_performance_when_no_snapshots_then_empty_without_figures(make: Make) -> None:
    _service, ctx, _cache = make()

    report = performance(ctx)

    assert (report.capital, report.snapshots, report.performance) == (D(1_000_000), [], None)


def test_get_performance_when_capital_unusable_then_invalid(make: Make, clock: FakeClock) -> None:
    service, ctx, cache = make()
    trade(OrderLedger(service.ingestor.engine), "acme", "AAA", "buy", "100", "10")
    cache.put_quote(quote("AAA", 1.0, 1.0, 1.0))  # a loss of 900
    run_now(ctx, clock, 1)
    clock.advance(60)
    run_now(ctx, clock, 2)

    with pytest.raises(CommandError) as zero:
        performance(ctx, capital=D(0))
    with pytest.raises(CommandError) as small:
        performance(ctx, capital=D(900))

    assert (zero.value.code, zero.value.message) == (
        ErrorCode.INVALID,
        "capital must be positive, not 0",
    )
    assert small.value.code == ErrorCode.INVALID
    assert small.value.message.startswith("Cannot compute the performance of acme: ")
    assert small.value.message.endswith("; give a larger capital")
    assert performance(ctx, capital=D(901)).performance is not None


def test_snapshot_job_when_interval_zero_then_not_scheduled(make: Make) -> None:
    _service, ctx, _cache = make(every_s="0")

    listing = ctx.send(ListJobs(command_id="l"))
    with pytest.raises(CommandError) as refused:
        ctx.send(RunJob(command_id="r", job=JOB, role="operator"))

    assert isinstance(listing, JobList) and JOB not in [job.id for job in listing.jobs]
    assert refused.value.code == ErrorCode.NOT_FOUND
    assert isinstance(performance(ctx), AccountPerformance)  # still served

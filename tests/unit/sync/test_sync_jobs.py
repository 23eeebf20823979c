"""The background-sync jobs, called directly: idempotent, logged, failing fast offline."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fakes import FakeContext
from sqlalchemy import Engine, func, select

from app import database
from app.settings import load_settings
from engine.bus import topics
from engine.bus.events import BackfillCompleted
from engine.clock import FakeClock
from engine.intervals import interval_ns
from engine.persistence.bars import count_bars, load_bars
from engine.persistence.ingestion import recent_runs
from engine.persistence.instruments import latest_fundamentals
from engine.persistence.models import Fundamental
from engine.sync import jobs
from feeds.gaps import GapQueue
from feeds.ingest import Ingestor
from feeds.mdlog import MarketDataLog
from feeds.schema import Fundamentals, Quote
from feeds.source import SourceUnavailable, SymbolNotFound

DAY = 86_400 * 1_000_000_000
START = 1_700_000_000 * 1_000_000_000 // DAY * DAY + DAY // 2  # noon UTC
WATCHLIST = ["AAA", "BBB"]


class FakeSource:
    """A Yahoo-like source: one bar per interval slot, switchable down or empty."""

    name = "yahoo"

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.up = True
        self.unknown: set[str] = set()
        self.empty: set[str] = set()
        self.calls: list[tuple[str, str, int, int]] = []
        self.fundamentals_calls: list[str] = []

    def history(self, symbol: str, interval: str, start_ns: int, end_ns: int) -> pd.DataFrame:
        self.calls.append((symbol, interval, start_ns, end_ns))
        if not self.up:
            raise SourceUnavailable("connect timeout")
        if symbol in self.unknown:
            raise SymbolNotFound(self.name, symbol)
        step = interval_ns(interval)
        ts = [] if symbol in self.empty else list(range(-(-start_ns // step) * step, end_ns, step))
        return pd.DataFrame(
            {"ts": ts, "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5, "volume": 100.0}
        )

    def quotes(self, symbols: list[str]) -> list[Quote]:
        return []

    def fundamentals(self, symbol: str) -> Fundamentals:
        self.fundamentals_calls.append(symbol)
        if not self.up:
            raise SourceUnavailable("connect timeout")
        if symbol in self.unknown:
            raise SymbolNotFound(self.name, symbol)
        return Fundamentals(
            symbol=symbol,
            as_of=self.clock.time_ns(),
            name=f"{symbol} Inc",
            currency="USD",
            sector="Technology",
            industry="Software",
            market_cap=1e9 + len(self.fundamentals_calls),
            pe_ratio=20.0,
        )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def source(clock: FakeClock) -> FakeSource:
    return FakeSource(clock)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    settings = load_settings(environ={"QSUITE__APP__DATA_DIR": str(tmp_path)})
    engine = database.open_database(settings)
    yield engine
    engine.dispose()


@pytest.fixture
def ingestor(tmp_path: Path, engine: Engine, clock: FakeClock) -> Iterator[Ingestor]:
    ingestor = Ingestor(
        engine,
        MarketDataLog(tmp_path / "mdlog", "scheduler"),
        gaps=GapQueue(tmp_path / "gaps"),
        clock=clock,
    )
    yield ingestor
    ingestor.log.close()


def _watchlist(ingestor: Ingestor, source: FakeSource, ctx: FakeContext) -> jobs.JobOutcome:
    return jobs.backfill_watchlist(
        ingestor, source, WATCHLIST, "1d", 10, clock=ingestor.clock, publish=ctx.publish
    )


# -- backfill ------------------------------------------------------------------------------


def test_backfill_watchlist_when_source_up_then_stores_logs_ok_and_announces_each_symbol(
    ingestor: Ingestor, source: FakeSource
) -> None:
    ctx = FakeContext("scheduler")

    outcome = _watchlist(ingestor, source, ctx)

    # [noon - 10 days, noon): 10 daily slots, the last one (today) is not closed yet
    assert count_bars(ingestor.engine, "AAA", "1d") == 9
    assert count_bars(ingestor.engine, "BBB", "1d") == 9
    assert (outcome.status, outcome.rows, outcome.error) == ("ok", 18, None)
    (run,) = recent_runs(ingestor.engine, "backfill")
    assert (run.status, run.rows, run.source, run.symbols, run.interval, run.error) == (
        "ok",
        18,
        "yahoo",
        WATCHLIST,
        "1d",
        None,
    )
    assert run.duration_s is not None and outcome.run_ids == (run.id,)
    announced = [(topic, e.symbol, e.rows, e.run_id) for topic, e in ctx.published]
    assert announced == [
        (topics.backfill("AAA"), "AAA", 9, run.id),
        (topics.backfill("BBB"), "BBB", 9, run.id),
    ]
    event = ctx.events(BackfillCompleted)[0]
    assert (event.interval, event.origin) == ("1d", "yahoo")
    assert (event.start, event.end) == (START - 10 * DAY, START)


def test_backfill_watchlist_when_run_again_then_writes_nothing_and_duplicates_nothing(
    ingestor: Ingestor, source: FakeSource
) -> None:
    ctx = FakeContext("scheduler")
    _watchlist(ingestor, source, ctx)
    before = load_bars(ingestor.engine, "AAA", "1d")

    again = _watchlist(ingestor, source, ctx)

    assert (again.status, again.rows) == ("ok", 0)
    assert load_bars(ingestor.engine, "AAA", "1d") == before
    assert count_bars(ingestor.engine) == 18
    assert [(r.status, r.rows) for r in recent_runs(ingestor.engine, "backfill")] == [
        ("ok", 0),
        ("ok", 18),
    ]
    # nothing changed, but the symbols are current: the re-evaluation may still run
    assert [e.rows for e in ctx.events(BackfillCompleted)] == [9, 9, 0, 0]


def test_backfill_when_source_down_then_fails_fast_with_the_reason_and_announces_nothing(
    ingestor: Ingestor, source: FakeSource
) -> None:
    ctx = FakeContext("scheduler")
    source.up = False

    outcome = _watchlist(ingestor, source, ctx)

    assert outcome.status == "failed"
    assert outcome.error == "yahoo unreachable: connect timeout"
    assert len(source.calls) == 1  # BBB is not attempted
    (run,) = recent_runs(ingestor.engine, "backfill")
    assert run.status == "failed" and run.error is not None
    assert "connect timeout" in run.error and "BBB: not attempted" in run.error
    assert count_bars(ingestor.engine) == 0
    assert ctx.published == []


def test_backfill_when_one_symbol_unknown_then_partial_and_only_the_other_is_announced(
    ingestor: Ingestor, source: FakeSource
) -> None:
    ctx = FakeContext("scheduler")
    source.unknown.add("AAA")

    outcome = _watchlist(ingestor, source, ctx)

    assert (outcome.status, outcome.rows) == ("partial", 9)
    assert outcome.error is not None and outcome.error.startswith("AAA: yahoo has no data")
    assert [e.symbol for e in ctx.events(BackfillCompleted)] == ["BBB"]


def test_backfill_when_cancelled_then_stops_after_the_current_symbol_and_says_why(
    ingestor: Ingestor, source: FakeSource
) -> None:
    ctx = FakeContext("scheduler")
    cancel = threading.Event()
    cancel.set()

    outcome = jobs.backfill(
        ingestor, source, WATCHLIST, "1d", START - 10 * DAY, START, cancel=cancel
    )

    assert (outcome.status, outcome.rows) == ("partial", 9)
    assert [c[0] for c in source.calls] == ["AAA"]
    (run,) = recent_runs(ingestor.engine, "backfill")
    assert run.status == "partial" and run.rows == 9
    assert run.error is not None and run.error.startswith("stopped after 1 of 2 symbols")
    assert ctx.published == []


# -- fundamentals ----------------------------------------------------------------------------


def _fundamentals_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Fundamental)).scalar_one())


def test_refresh_fundamentals_when_run_twice_the_same_day_then_one_row_per_symbol(
    engine: Engine, source: FakeSource, clock: FakeClock
) -> None:
    first = jobs.refresh_fundamentals(engine, source, WATCHLIST)
    clock.advance(3600)
    second = jobs.refresh_fundamentals(engine, source, WATCHLIST)

    assert (first.status, first.rows) == (second.status, second.rows) == ("ok", 2)
    assert _fundamentals_rows(engine) == 2
    stored = latest_fundamentals(engine, "AAA")
    assert stored is not None
    assert (stored.name, stored.sector, stored.market_cap) == ("AAA Inc", "Technology", 1e9 + 3)
    runs = recent_runs(engine, "fundamentals")
    assert [(r.status, r.rows, r.source, r.symbols) for r in runs] == [
        ("ok", 2, "yahoo", WATCHLIST)
    ] * 2


def test_refresh_fundamentals_when_a_symbol_is_unknown_then_recorded_and_the_rest_saved(
    engine: Engine, source: FakeSource
) -> None:
    source.unknown.add("AAA")

    outcome = jobs.refresh_fundamentals(engine, source, WATCHLIST)

    assert (outcome.status, outcome.rows) == ("partial", 1)
    (run,) = recent_runs(engine, "fundamentals")
    assert run.status == "partial" and run.error is not None and "AAA" in run.error
    assert latest_fundamentals(engine, "BBB") is not None


def test_refresh_fundamentals_when_source_down_then_stops_early_and_logs_failed(
    engine: Engine, source: FakeSource
) -> None:
    source.up = False

    outcome = jobs.refresh_fundamentals(engine, source, WATCHLIST)

    assert (outcome.status, outcome.error) == ("failed", "yahoo unreachable: connect timeout")
    assert source.fundamentals_calls == ["AAA"]
    (run,) = recent_runs(engine, "fundamentals")
    assert run.status == "failed" and run.error is not None
    assert "BBB: not attempted" in run.error
    assert _fundamentals_rows(engine) == 0


# -- gap repair ------------------------------------------------------------------------------


def test_repair_gaps_when_queued_then_drains_the_queue_fills_and_drops_the_unfillable(
    ingestor: Ingestor, source: FakeSource
) -> None:
    assert ingestor.gaps is not None
    ctx = FakeContext("scheduler")
    source.empty.add("HOL")  # a holiday: the source has no bars there
    ingestor.gaps.put("AAA", "1d", START - 5 * DAY, START - 2 * DAY, 3)
    ingestor.gaps.put("BBB", "1d", START - 4 * DAY, START - 3 * DAY, 1)
    ingestor.gaps.put("HOL", "1d", START - 4 * DAY, START - 3 * DAY, 1)

    outcome = jobs.repair_gaps(ingestor, source, ingestor.gaps, publish=ctx.publish)

    assert len(ingestor.gaps) == 0
    assert (outcome.status, outcome.rows, len(outcome.run_ids)) == ("ok", 4, 3)
    assert count_bars(ingestor.engine, "AAA", "1d") == 3
    runs = recent_runs(ingestor.engine, "gap_repair")
    assert sorted((r.symbols[0], r.status, r.rows) for r in runs) == [
        ("AAA", "ok", 3),
        ("BBB", "ok", 1),
        ("HOL", "ok", 0),
    ]
    assert [(e.symbol, e.rows) for e in ctx.events(BackfillCompleted)] == [("AAA", 3), ("BBB", 1)]

    idle = jobs.repair_gaps(ingestor, source, ingestor.gaps, publish=ctx.publish)

    assert (idle.status, idle.rows, idle.run_ids) == ("ok", 0, ())
    assert len(recent_runs(ingestor.engine, "gap_repair")) == 3  # an empty queue logs nothing


def test_repair_gaps_when_source_down_then_fails_and_requeues_the_gaps(
    ingestor: Ingestor, source: FakeSource
) -> None:
    assert ingestor.gaps is not None
    source.up = False
    ingestor.gaps.put("AAA", "1d", START - 5 * DAY, START - 2 * DAY, 3)
    ingestor.gaps.put("BBB", "1d", START - 4 * DAY, START - 3 * DAY, 1)

    outcome = jobs.repair_gaps(ingestor, source, ingestor.gaps)

    assert outcome.status == "failed"
    assert outcome.error == "yahoo unreachable: connect timeout; 2 gap(s) re-queued"
    assert len(source.calls) == 1
    assert sorted(g.symbol for g in ingestor.gaps.peek()) == ["AAA", "BBB"]
    (run,) = recent_runs(ingestor.engine, "gap_repair")
    assert run.status == "failed"

    source.up = True
    again = jobs.repair_gaps(ingestor, source, ingestor.gaps)

    assert (again.status, again.rows, len(ingestor.gaps)) == ("ok", 4, 0)

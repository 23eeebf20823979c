"""Event sourcing of bars: replaying the market-data log rebuilds the bar store exactly,
on a real SQLite file and a real PostgreSQL schema."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest
from conftest_db import db_fixture, migrated_fixture  # noqa: F401  (fixtures)
from sqlalchemy import Engine, Table, delete, select

from engine.bus.events import BarClosed
from engine.clock import FakeClock
from engine.persistence import bars as bars_module
from engine.persistence import count_bars, upsert_bars
from engine.persistence.bars import PLAIN_INSERT_MIN_ROWS
from engine.persistence.models import Bar, BarFlag
from engine.stats import StatsRegistry
from feeds.mdlog import MarketDataLog, ReadCounts, rebuild_bars, segments

pytestmark = pytest.mark.integration

NS = 1_000_000_000
T0 = 1_700_000_000 * NS
BARS: Table = Bar.__table__  # type: ignore[assignment]
STEP = {"1m": 60 * NS, "1d": 86400 * NS}


def bar_event(symbol: str, interval: str, i: int, rng: random.Random, **extra: Any) -> BarClosed:
    price = rng.uniform(10, 500)
    simulated = symbol.startswith("SIM")
    fields: dict[str, Any] = {
        "origin": "synthetic" if simulated else "yahoo",
        "simulated": simulated,
        "flags": int(BarFlag.SIMULATED) if simulated else 0,
    }
    fields.update(extra)
    return BarClosed(
        ts_event=T0 + (i + 1) * STEP[interval],
        symbol=symbol,
        interval=interval,
        ts=T0 + i * STEP[interval],
        open=price,
        high=price * 1.01,
        low=price * 0.99,
        close=price * rng.uniform(0.995, 1.005),
        volume=float(rng.randrange(0, 10**7)),
        **fields,
    )


def row_of(event: BarClosed) -> tuple[Any, ...]:
    """How a writer stores the bar it logs (the mapping rebuild_bars inverts)."""
    return (
        event.symbol,
        event.interval,
        event.ts,
        event.open,
        event.high,
        event.low,
        event.close,
        event.volume,
        event.origin,
        event.flags,
    )


def ingest(engine: Engine, log: MarketDataLog, events: list[BarClosed]) -> None:
    """What a writer does with a batch: log it (the source of truth), then store it."""
    log.append_many(events)
    upsert_bars(engine, [row_of(e) for e in events])


def table(engine: Engine) -> list[tuple[Any, ...]]:
    columns = [BARS.c[name] for name in ("symbol", "interval", "ts")]
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(select(BARS).order_by(*columns))]


def wipe(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(BARS))


def test_rebuild_bars_when_table_wiped_then_equals_the_original_store(
    migrated: Engine, tmp_path: Path
) -> None:
    rng = random.Random(7)
    clock = FakeClock(T0)
    directory = tmp_path / "mdlog"
    feed = MarketDataLog(
        directory, "feed", clock=clock, stats=StatsRegistry(), segment_bytes=20_000
    )
    backfill = MarketDataLog(directory, "backfill", clock=clock, stats=StatsRegistry())
    keys = [(s, iv) for s in ("AAPL", "VOD.L", "SIM1") for iv in ("1m", "1d")]

    # the feed's live bars, in batches
    for start in range(0, 120, 30):
        clock.advance(1)
        ingest(
            migrated,
            feed,
            [bar_event(s, iv, i, rng) for s, iv in keys for i in range(start, start + 30)],
        )
    # a backfill (another process) corrects some of them: adjusted prices, new flags
    clock.advance(1)
    ingest(
        migrated,
        backfill,
        [bar_event("AAPL", "1d", i, rng, flags=int(BarFlag.ADJUSTED)) for i in range(0, 60)],
    )
    # ...and later the feed corrects a few of the same keys again, with other values
    clock.advance(1)
    ingest(migrated, feed, [bar_event("AAPL", "1d", i, rng, flags=0) for i in range(10, 20)])
    clock.advance(1)
    ingest(migrated, feed, [bar_event("VOD.L", "1m", 5, rng), bar_event("VOD.L", "1m", 5, rng)])
    feed.close()
    backfill.close()

    original = table(migrated)
    assert len(original) == 6 * 120
    assert len(segments(directory)) > 2, "the feed rotated segments"

    wipe(migrated)
    assert count_bars(migrated) == 0
    counts = ReadCounts()
    written = rebuild_bars(directory, migrated, batch_size=97, counts=counts, stats=StatsRegistry())

    assert table(migrated) == original
    assert written >= len(original)
    assert counts.corrupt == 0 and counts.records == 6 * 120 + 60 + 10 + 2
    assert rebuild_bars(directory, migrated, stats=StatsRegistry()) == 0, "replay is idempotent"


def test_rebuild_bars_when_last_record_torn_by_a_crash_then_rest_rebuilt(
    migrated: Engine, tmp_path: Path
) -> None:
    rng = random.Random(11)
    clock = FakeClock(T0)
    directory = tmp_path / "mdlog"
    with MarketDataLog(directory, "feed", clock=clock, stats=StatsRegistry()) as feed:
        ingest(migrated, feed, [bar_event("AAPL", "1m", i, rng) for i in range(50)])
        original = table(migrated)
        # the process died while appending its next batch, before storing it
        feed.append_many([bar_event("AAPL", "1m", i, rng) for i in range(50, 53)])
        path = feed.path
    assert path is not None
    os.truncate(path, path.stat().st_size - 10)

    wipe(migrated)
    stats = StatsRegistry()
    counts = ReadCounts()
    rebuild_bars(directory, migrated, counts=counts, stats=stats)

    assert table(migrated)[:50] == original
    assert count_bars(migrated) == 52, "the whole records of the torn batch are replayed"
    assert counts.torn == 1
    assert stats.total("qsuite_mdlog_corrupt_records_total") == 1


def test_rebuild_bars_when_given_a_connection_then_joins_its_transaction(
    migrated: Engine, tmp_path: Path
) -> None:
    rng = random.Random(3)
    directory = tmp_path / "mdlog"
    with MarketDataLog(directory, "feed", clock=FakeClock(T0), stats=StatsRegistry()) as feed:
        feed.append_many([bar_event("AAPL", "1m", i, rng) for i in range(10)])

    with migrated.connect() as conn:
        assert rebuild_bars(directory, conn, batch_size=4, stats=StatsRegistry()) == 10
        conn.rollback()

    assert count_bars(migrated) == 0


def large_log(directory: Path, n: int, rng: random.Random) -> list[BarClosed]:
    """``n`` bars of two symbols, logged in one batch (a backfill's worth)."""
    events = [bar_event(s, "1m", i, rng) for s in ("AAPL", "SIM1") for i in range(n // 2)]
    with MarketDataLog(directory, "backfill", clock=FakeClock(T0), stats=StatsRegistry()) as log:
        log.append_many(events)
    return events


def test_rebuild_bars_when_large_batches_into_empty_store_then_every_bar_new(
    migrated: Engine, tmp_path: Path
) -> None:
    # batches above PLAIN_INSERT_MIN_ROWS take PostgreSQL's plain-insert path
    n = 2 * PLAIN_INSERT_MIN_ROWS
    events = large_log(tmp_path / "mdlog", n, random.Random(5))

    assert rebuild_bars(tmp_path / "mdlog", migrated, batch_size=n, stats=StatsRegistry()) == n
    assert table(migrated) == sorted(row_of(e) for e in events)
    assert rebuild_bars(tmp_path / "mdlog", migrated, batch_size=n, stats=StatsRegistry()) == 0


def test_rebuild_bars_when_another_writer_stored_keys_after_the_check_then_still_upserts(
    migrated: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 2 * PLAIN_INSERT_MIN_ROWS
    events = large_log(tmp_path / "mdlog", n, random.Random(6))
    # the store already holds some of the keys with other values, but the overlap check
    # is made to miss them, as when a concurrent writer commits right after it
    stale = [(*row_of(e)[:6], -1.0, *row_of(e)[7:]) for e in events[100:200]]
    upsert_bars(migrated, stale)
    monkeypatch.setattr(bars_module, "_overlaps_store", lambda conn, data: False)

    written = rebuild_bars(tmp_path / "mdlog", migrated, batch_size=n, stats=StatsRegistry())

    assert written == n, "100 changed + the rest inserted"
    assert table(migrated) == sorted(row_of(e) for e in events)


def test_rebuild_bars_when_large_batch_on_a_connection_rolled_back_then_nothing_stored(
    migrated: Engine, tmp_path: Path
) -> None:
    n = 2 * PLAIN_INSERT_MIN_ROWS
    large_log(tmp_path / "mdlog", n, random.Random(8))

    with migrated.connect() as conn:
        assert rebuild_bars(tmp_path / "mdlog", conn, batch_size=n, stats=StatsRegistry()) == n
        assert count_bars(conn) == n
        conn.rollback()

    assert count_bars(migrated) == 0


def test_rebuild_bars_when_one_large_batch_holds_corrections_then_last_one_wins(
    migrated: Engine, tmp_path: Path
) -> None:
    rng = random.Random(9)
    n = 2 * PLAIN_INSERT_MIN_ROWS
    events = large_log(tmp_path / "mdlog", n, rng)
    corrections = [bar_event("AAPL", "1m", i, rng, flags=int(BarFlag.ADJUSTED)) for i in range(50)]
    with MarketDataLog(
        tmp_path / "mdlog", "backfill", clock=FakeClock(T0 + NS), stats=StatsRegistry()
    ) as log:
        log.append_many(corrections)

    written = rebuild_bars(tmp_path / "mdlog", migrated, batch_size=2 * n, stats=StatsRegistry())

    assert written == n
    expected = {row_of(e)[:3]: row_of(e) for e in [*events, *corrections]}
    assert table(migrated) == sorted(expected.values())

"""The market-data read side on a real SQLite file and a real PostgreSQL schema, and a
real price cache: each query command answered from stored bars, cached quotes, the
instrument master and the ingestion log, with the refusals an operator sees."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest_db import db_fixture, migrated_fixture  # noqa: F401  (fixtures)
from sqlalchemy import Engine, event

from app.database import make_engine
from engine.bus.codec import decode_reply, encode
from engine.bus.commands import Reply
from engine.bus.commands.market import (
    BarSeries,
    GetBars,
    GetFundamentals,
    GetIngestionLog,
    GetQuotes,
    ListInstruments,
    QuoteRow,
)
from engine.clock import FakeClock
from engine.errors import CommandError, ErrorCode
from engine.persistence.bars import upsert_bars
from engine.persistence.ingestion import finish_run, start_run
from engine.persistence.instruments import save_fundamentals, upsert_instrument
from engine.stats import StatsRegistry
from feeds.cache import PriceCache
from feeds.queries import MarketQueries
from feeds.schema import Fundamentals, Quote

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

NS = 1_000_000_000
MINUTE = 60 * NS
T0 = 1_700_000_000 * NS


@pytest.fixture(name="clock")
def clock_fixture() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture(name="cache")
def cache_fixture(tmp_path: Path, clock: FakeClock) -> Iterator[PriceCache]:
    with PriceCache(tmp_path / "cache", clock=clock, stats=StatsRegistry()) as cache:
        yield cache


@pytest.fixture(name="queries")
def queries_fixture(migrated: Engine, cache: PriceCache, clock: FakeClock) -> MarketQueries:
    return MarketQueries(migrated, cache, clock=clock)


def minute_bars(symbol: str, n: int) -> list[tuple[Any, ...]]:
    return [
        (
            symbol,
            "1m",
            T0 + i * MINUTE,
            100.0 + i,
            101.0 + i,
            99.0 + i,
            100.5 + i,
            10.0 * i,
            "test",
            i % 2,
        )
        for i in range(n)
    ]


def quote(symbol: str, ts: int, last: float) -> Quote:
    return Quote(symbol=symbol, ts=ts, bid=last - 0.01, ask=last + 0.01, last=last, origin="yahoo")


def refused(call: Any, code: str) -> str:
    with pytest.raises(CommandError) as caught:
        call()
    assert caught.value.code == code
    return caught.value.message


def round_trip(result: Any) -> Any:
    reply = Reply(command_id="c-1", ok=True, process="feed", result=result)
    decoded = decode_reply(encode(reply))
    assert decoded == reply
    return decoded.result


# -- bars ------------------------------------------------------------------------------


def test_bars_when_newest_with_limit_then_latest_bars_oldest_first(
    migrated: Engine, queries: MarketQueries
) -> None:
    upsert_bars(migrated, minute_bars("AAPL", 10) + minute_bars("MSFT", 3))

    series = queries.bars(GetBars(symbol="AAPL", interval="1m", limit=3, newest=True))

    assert series.ts == [T0 + 7 * MINUTE, T0 + 8 * MINUTE, T0 + 9 * MINUTE]
    assert series.open == [107.0, 108.0, 109.0]
    assert series.high == [108.0, 109.0, 110.0]
    assert series.low == [106.0, 107.0, 108.0]
    assert series.close == [107.5, 108.5, 109.5]
    assert series.volume == [70.0, 80.0, 90.0]
    assert series.flags == [1, 0, 1]
    assert series.source == ["test"] * 3
    assert (series.symbol, series.interval) == ("AAPL", "1m")


def test_bars_when_range_then_half_open_and_first_limit(
    migrated: Engine, queries: MarketQueries
) -> None:
    upsert_bars(migrated, minute_bars("AAPL", 10))

    ranged = queries.bars(
        GetBars(symbol="AAPL", interval="1m", start=T0 + 2 * MINUTE, end=T0 + 5 * MINUTE)
    )
    oldest = queries.bars(
        GetBars(symbol="AAPL", interval="1m", start=T0 + 2 * MINUTE, limit=2, newest=False)
    )

    assert ranged.ts == [T0 + 2 * MINUTE, T0 + 3 * MINUTE, T0 + 4 * MINUTE]
    assert oldest.ts == [T0 + 2 * MINUTE, T0 + 3 * MINUTE]


def test_bars_when_symbol_has_none_then_empty_series(
    migrated: Engine, queries: MarketQueries
) -> None:
    upsert_bars(migrated, minute_bars("AAPL", 3))

    series = queries.bars(GetBars(symbol="NOPE", interval="1m"))
    other_interval = queries.bars(GetBars(symbol="AAPL", interval="1d"))

    assert series == BarSeries(
        symbol="NOPE",
        interval="1m",
        ts=[],
        open=[],
        high=[],
        low=[],
        close=[],
        volume=[],
        flags=[],
        source=[],
    )
    assert other_interval.ts == []


def test_bars_when_interval_unknown_then_invalid_listing_valid_ones(
    queries: MarketQueries,
) -> None:
    message = refused(lambda: queries.bars(GetBars(symbol="AAPL", interval="2h")), "invalid")

    assert "unknown interval '2h'" in message
    assert "1m" in message and "1d" in message and "1wk" in message


@pytest.mark.parametrize("end", [T0, T0 - MINUTE])
def test_bars_when_start_not_before_end_then_invalid(queries: MarketQueries, end: int) -> None:
    message = refused(
        lambda: queries.bars(GetBars(symbol="AAPL", interval="1m", start=T0, end=end)),
        ErrorCode.INVALID,
    )

    assert "start" in message and "before end" in message


def test_bars_when_sent_as_reply_then_round_trips_through_codec(
    migrated: Engine, queries: MarketQueries
) -> None:
    upsert_bars(migrated, minute_bars("AAPL", 5))
    series = queries.bars(GetBars(symbol="AAPL", interval="1m"))

    assert round_trip(series) == series


# -- quotes ----------------------------------------------------------------------------


def test_quotes_when_symbols_named_then_in_order_with_age_mode_and_missing(
    queries: MarketQueries, cache: PriceCache, clock: FakeClock
) -> None:
    cache.put_quote(quote("AAPL", T0 - NS, 190.0), mode="live")
    clock.advance(2.5)
    cache.put_quote(quote("VOD.L", T0, 0.71), mode="cached")
    clock.advance(1.5)

    snapshot = queries.quotes(GetQuotes(symbols=["VOD.L", "NOPE", "AAPL", "VOD.L"]))

    assert [q.symbol for q in snapshot.quotes] == ["VOD.L", "AAPL"]
    assert snapshot.missing == ["NOPE"]
    vod, aapl = snapshot.quotes
    assert (vod.mode, vod.age_s) == ("cached", 1.5)
    assert (aapl.mode, aapl.age_s) == ("live", 4.0)
    assert aapl == QuoteRow(
        symbol="AAPL",
        ts=T0 - NS,
        bid=189.99,
        ask=190.01,
        bid_size=0.0,
        ask_size=0.0,
        last=190.0,
        volume=0.0,
        origin="yahoo",
        simulated=False,
        mode="live",
        age_s=4.0,
    )
    assert round_trip(snapshot) == snapshot


def test_quotes_when_no_symbols_named_then_every_cached_quote_by_symbol(
    queries: MarketQueries, cache: PriceCache
) -> None:
    cache.put_quotes([quote("MSFT", T0, 400.0), quote("AAPL", T0, 190.0)])

    snapshot = queries.quotes(GetQuotes())

    assert [q.symbol for q in snapshot.quotes] == ["AAPL", "MSFT"]
    assert snapshot.missing == []


def test_quotes_when_cache_empty_then_everything_missing(queries: MarketQueries) -> None:
    snapshot = queries.quotes(GetQuotes(symbols=["AAPL"]))

    assert (snapshot.quotes, snapshot.missing) == ([], ["AAPL"])


# -- fundamentals and instruments ------------------------------------------------------


def test_fundamentals_when_stored_then_latest_row(migrated: Engine, queries: MarketQueries) -> None:
    stored = Fundamentals(
        symbol="AAPL",
        as_of=T0,
        name="Apple Inc.",
        exchange="NASDAQ",
        currency="USD",
        sector="Technology",
        industry="Consumer Electronics",
        market_cap=3.0e12,
        pe_ratio=30.5,
    )
    save_fundamentals(migrated, stored, source="yahoo")

    result = queries.fundamentals(GetFundamentals(symbol="AAPL"))

    row = result.fundamentals
    assert (row.symbol, row.as_of, row.name, row.exchange) == ("AAPL", T0, "Apple Inc.", "NASDAQ")
    assert (row.market_cap, row.pe_ratio, row.eps) == (3.0e12, 30.5, None)
    assert round_trip(result) == result


def test_fundamentals_when_none_stored_then_not_found_with_what_to_do(
    migrated: Engine, queries: MarketQueries
) -> None:
    upsert_instrument(migrated, "AAPL")

    message = refused(
        lambda: queries.fundamentals(GetFundamentals(symbol="AAPL")), ErrorCode.NOT_FOUND
    )

    assert message == (
        "no fundamentals stored for AAPL; run `qsuite ctl jobs run fundamentals` "
        "or wait for the daily refresh"
    )


def test_instruments_when_filtered_then_rows_of_the_master(
    migrated: Engine, queries: MarketQueries
) -> None:
    upsert_instrument(migrated, "BP.L", name="BP", sector="Energy", industry="Oil & Gas")
    upsert_instrument(migrated, "SHOP.TO", name="Shopify", sector="Technology", industry="Software")
    upsert_instrument(migrated, "AAPL", exchange_code="NASDAQ", sector="Technology", industry="HW")

    tech = queries.instruments(ListInstruments(sector="Technology"))
    london = queries.instruments(ListInstruments(exchange="LSE"))
    by_yahoo_code = queries.instruments(ListInstruments(exchange="NMS"))

    assert [r.symbol for r in tech.instruments] == ["AAPL", "SHOP.TO"]
    assert [r.symbol for r in london.instruments] == ["BP.L"]
    assert [r.symbol for r in by_yahoo_code.instruments] == ["AAPL"]
    bp = london.instruments[0]
    assert (bp.name, bp.exchange, bp.currency, bp.industry, bp.active) == (
        "BP",
        "LSE",
        "GBP",
        "Oil & Gas",
        True,
    )
    assert round_trip(tech) == tech


@pytest.mark.parametrize(("code", "words"), [("MOON", "unknown exchange 'MOON'"), ("US", "NYSE")])
def test_instruments_when_exchange_not_one_venue_then_invalid(
    queries: MarketQueries, code: str, words: str
) -> None:
    message = refused(lambda: queries.instruments(ListInstruments(exchange=code)), "invalid")

    assert words in message


# -- ingestion log ---------------------------------------------------------------------


def test_ingestion_log_when_runs_logged_then_newest_first_and_filtered_by_job(
    migrated: Engine, queries: MarketQueries
) -> None:
    first = start_run(migrated, "backfill", "yahoo", ["AAPL", "MSFT"], "1d")
    finish_run(migrated, first, status="ok", rows=500)
    second = start_run(migrated, "poll", "yahoo", ["AAPL"], "1m")
    finish_run(migrated, second, status="failed", rows=0, error="Yahoo unreachable: timeout")
    third = start_run(migrated, "backfill", "replay", ["VOD.L"], "1m")

    log = queries.ingestion_log(GetIngestionLog())
    backfills = queries.ingestion_log(GetIngestionLog(job="backfill"))
    latest = queries.ingestion_log(GetIngestionLog(limit=1))

    assert [r.id for r in log.runs] == [third, second, first]
    assert [r.id for r in backfills.runs] == [third, first]
    assert [r.id for r in latest.runs] == [third]
    running, failed, ok = log.runs
    assert (running.status, running.duration_s, running.symbols) == ("running", None, ["VOD.L"])
    assert (failed.status, failed.error, failed.interval) == (
        "failed",
        "Yahoo unreachable: timeout",
        "1m",
    )
    assert (ok.status, ok.rows, ok.source, ok.job) == ("ok", 500, "yahoo", "backfill")
    assert ok.duration_s is not None and ok.duration_s >= 0
    for run in log.runs:
        started = datetime.fromisoformat(run.started_at)
        assert started.utcoffset() == timedelta(0)
    assert round_trip(log) == log


def test_ingestion_log_when_empty_then_no_runs(queries: MarketQueries) -> None:
    assert queries.ingestion_log(GetIngestionLog(job="backfill")).runs == []


# -- wiring ----------------------------------------------------------------------------


class RecordingContext:
    def __init__(self) -> None:
        self.handlers: dict[type, Any] = {}

    def register_command(self, command_type: type, handler: Any) -> None:
        self.handlers[command_type] = handler


def test_register_when_called_then_serves_every_query_command(
    migrated: Engine, queries: MarketQueries
) -> None:
    ctx = RecordingContext()

    queries.register(ctx)  # type: ignore[arg-type]

    assert set(ctx.handlers) == {
        GetBars,
        GetQuotes,
        GetFundamentals,
        ListInstruments,
        GetIngestionLog,
    }
    assert ctx.handlers[GetBars](GetBars(symbol="AAPL")).ts == []
    assert ctx.handlers[GetIngestionLog](GetIngestionLog()).runs == []


def test_queries_when_database_unreachable_then_unavailable(
    cache: PriceCache, clock: FakeClock, tmp_path: Path
) -> None:
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
    try:
        queries = MarketQueries(engine, cache, clock=clock)
        message = refused(lambda: queries.bars(GetBars(symbol="AAPL")), ErrorCode.UNAVAILABLE)
    finally:
        engine.dispose()

    assert message.startswith("Cannot read bars: the database is unreachable (")


def test_queries_when_served_then_only_read_the_database(
    migrated: Engine, queries: MarketQueries
) -> None:
    upsert_bars(migrated, minute_bars("AAPL", 3))
    save_fundamentals(migrated, Fundamentals(symbol="AAPL", as_of=T0), source="yahoo")
    finish_run(migrated, start_run(migrated, "poll", "yahoo", ["AAPL"], "1m"), status="ok", rows=1)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.lstrip().split(None, 1)[0].upper())

    event.listen(migrated, "before_cursor_execute", record)
    try:
        queries.bars(GetBars(symbol="AAPL", interval="1m"))
        queries.fundamentals(GetFundamentals(symbol="AAPL"))
        queries.instruments(ListInstruments(exchange="NASDAQ"))
        queries.ingestion_log(GetIngestionLog())
    finally:
        event.remove(migrated, "before_cursor_execute", record)

    assert statements
    assert set(statements) <= {"SELECT", "BEGIN"}

"""The price cache in one process: latest-wins by ts, entry age and mode, bounds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import diskcache
import msgspec
import pytest

from engine.bus.events import BarClosed
from engine.clock import FakeClock
from engine.stats import StatsRegistry
from feeds.cache import CachedQuote, PriceCache, quote_key
from feeds.schema import NS, Quote

T0 = 1_700_000_000 * NS


def quote(symbol: str = "AAPL", ts: int = T0, last: float = 100.0, **extra: object) -> Quote:
    fields: dict = {"bid": last - 0.01, "ask": last + 0.01, "origin": "yahoo"}
    fields.update(extra)
    return Quote(symbol=symbol, ts=ts, last=last, **fields)


def bar(ts: int = T0, close: float = 100.0, ts_init: int = 0, **extra: object) -> BarClosed:
    fields: dict = {"symbol": "AAPL", "interval": "1m", "origin": "yahoo"}
    fields.update(extra)
    return BarClosed(
        ts_event=ts + 60 * NS,
        ts_init=ts_init,
        ts=ts,
        open=close,
        high=close + 1,
        low=close - 1,
        close=close,
        volume=1000.0,
        **fields,
    )


@pytest.fixture(name="clock")
def clock_fixture() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture(name="stats")
def stats_fixture() -> StatsRegistry:
    return StatsRegistry()


@pytest.fixture(name="cache")
def cache_fixture(tmp_path: Path, clock: FakeClock, stats: StatsRegistry) -> Iterator[PriceCache]:
    with PriceCache(tmp_path / "cache", clock=clock, stats=stats) as cache:
        yield cache


def test_latest_quote_when_empty_then_none(cache: PriceCache) -> None:
    assert cache.latest_quote("AAPL") is None
    assert cache.quote_entry("AAPL") is None
    assert cache.snapshot() == {}


def test_put_quote_then_latest_quote_round_trips(cache: PriceCache) -> None:
    q = quote(bid_size=5.0, volume=1e6)

    assert cache.put_quote(q)

    assert cache.latest_quote("AAPL") == q


def test_put_quote_when_older_ts_then_ignored_and_counted(
    cache: PriceCache, stats: StatsRegistry
) -> None:
    cache.put_quote(quote(ts=T0 + 2, last=102.0))

    assert not cache.put_quote(quote(ts=T0 + 1, last=101.0))

    assert cache.latest_quote("AAPL") == quote(ts=T0 + 2, last=102.0)
    assert stats.snapshot()["qsuite_price_cache_stale_writes_total{kind=quote}"] == 1


def test_put_quote_when_same_ts_then_overwrites(cache: PriceCache) -> None:
    cache.put_quote(quote(last=101.0))

    assert cache.put_quote(quote(last=101.5))

    latest = cache.latest_quote("AAPL")
    assert latest is not None and latest.last == 101.5


def test_quote_entry_when_clock_moves_then_age_grows(cache: PriceCache, clock: FakeClock) -> None:
    cache.put_quote(quote())
    clock.advance(7.5)

    entry = cache.quote_entry("AAPL")

    assert entry is not None
    assert entry.written_at == T0
    assert entry.age_s(clock.time_ns()) == 7.5
    assert entry.age_s(T0 - NS) == 0.0, "a reader whose clock is behind sees no negative age"


def test_put_quote_when_mode_not_given_then_live_or_simulated_from_quote(
    cache: PriceCache,
) -> None:
    cache.put_quote(quote("AAPL"))
    cache.put_quote(quote("SIM", origin="synthetic", simulated=True))
    cache.put_quote(quote("MSFT"), mode="cached")

    modes = {symbol: entry.mode for symbol, entry in cache.snapshot().items()}

    assert modes == {"AAPL": "live", "SIM": "simulated", "MSFT": "cached"}


def test_quotes_when_some_missing_then_left_out(cache: PriceCache) -> None:
    assert cache.put_quotes([quote("AAPL"), quote("MSFT", last=300.0)]) == 2

    got = cache.quotes(["AAPL", "MSFT", "NOPE"])

    assert set(got) == {"AAPL", "MSFT"} and got["MSFT"].last == 300.0
    assert set(cache.quote_entries(["MSFT", "NOPE"])) == {"MSFT"}


def test_snapshot_when_bars_cached_too_then_only_quotes(cache: PriceCache) -> None:
    cache.put_quote(quote("AAPL"))
    cache.put_bar("AAPL", "1m", bar())

    snapshot = cache.snapshot()

    assert list(snapshot) == ["AAPL"] and isinstance(snapshot["AAPL"], CachedQuote)


def test_put_bar_then_latest_bar_round_trips_with_mode(cache: PriceCache) -> None:
    b = bar(flags=2)

    assert cache.put_bar("AAPL", "1m", b, mode="delayed")

    assert cache.latest_bar("AAPL", "1m") == b
    entry = cache.bar_entry("AAPL", "1m")
    assert entry is not None and entry.mode == "delayed" and entry.written_at == T0
    assert cache.latest_bar("AAPL", "5m") is None


def test_put_bar_when_older_bar_then_ignored(cache: PriceCache, stats: StatsRegistry) -> None:
    cache.put_bar("AAPL", "1m", bar(ts=T0 + 60 * NS))

    assert not cache.put_bar("AAPL", "1m", bar(ts=T0))

    latest = cache.latest_bar("AAPL", "1m")
    assert latest is not None and latest.ts == T0 + 60 * NS
    assert stats.snapshot()["qsuite_price_cache_stale_writes_total{kind=bar}"] == 1


def test_put_bar_when_correction_published_later_then_replaces(cache: PriceCache) -> None:
    cache.put_bar("AAPL", "1m", bar(close=100.0, ts_init=T0 + 1))

    assert cache.put_bar("AAPL", "1m", bar(close=99.0, ts_init=T0 + 2))
    assert not cache.put_bar("AAPL", "1m", bar(close=98.0, ts_init=T0 + 1))

    latest = cache.latest_bar("AAPL", "1m")
    assert latest is not None and latest.close == 99.0


def test_put_bar_when_key_does_not_match_bar_then_value_error(cache: PriceCache) -> None:
    with pytest.raises(ValueError, match="cannot be stored as AAPL/5m"):
        cache.put_bar("AAPL", "5m", bar())


def test_read_when_entry_undecodable_then_missing_and_counted(
    tmp_path: Path, cache: PriceCache, stats: StatsRegistry
) -> None:
    with diskcache.Cache(str(tmp_path / "cache")) as raw:
        raw.set(quote_key("AAPL"), b"\x93garbage")
        raw.set(quote_key("MSFT"), 42)

    assert cache.latest_quote("AAPL") is None
    assert cache.snapshot() == {}
    assert stats.total("qsuite_price_cache_decode_errors_total") == 3
    assert cache.put_quote(quote("AAPL")), "a bad entry is overwritten by a good one"


def test_cache_when_reopened_then_data_persists(tmp_path: Path, clock: FakeClock) -> None:
    with PriceCache(tmp_path / "c", clock=clock, stats=StatsRegistry()) as writer:
        writer.put_quote(quote())

    with PriceCache(tmp_path / "c", size_limit=None, stats=StatsRegistry()) as reader:
        assert reader.latest_quote("AAPL") == quote()


def test_cache_when_size_limit_exceeded_then_evicts_oldest(tmp_path: Path) -> None:
    with PriceCache(tmp_path / "c", size_limit=64 * 1024, stats=StatsRegistry()) as cache:
        for i in range(2000):
            cache.put_quote(quote(f"S{i:04d}-{'x' * 200}"))

        kept = cache.snapshot()

    assert 0 < len(kept) < 2000
    assert f"S1999-{'x' * 200}" in kept, "the newest entries survive"


def test_cache_when_closed_then_runtime_error(tmp_path: Path) -> None:
    cache = PriceCache(tmp_path / "c", stats=StatsRegistry())
    cache.close()
    cache.close()

    with pytest.raises(RuntimeError, match="closed"):
        cache.latest_quote("AAPL")


def test_entries_are_msgpack_documents_not_pickles(tmp_path: Path, cache: PriceCache) -> None:
    cache.put_quote(quote())

    with diskcache.Cache(str(tmp_path / "cache")) as raw:
        stored = raw.get(quote_key("AAPL"))

    assert isinstance(stored, bytes)
    assert msgspec.msgpack.decode(stored)["quote"]["symbol"] == "AAPL"

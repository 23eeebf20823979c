"""The feed service's modes: simulated until the source answers, live, fallback, recovery."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pandas as pd
import pytest
from fakes import FakeContext

from app import database
from app.settings import load_settings
from engine.bus.commands.market import FeedStatus, GetFeedStatus, ScenarioSet, SetScenario
from engine.bus.events import BarClosed, FeedStateChanged, QuoteUpdated, TradeReported
from engine.clock import FakeClock
from engine.persistence.bars import load_bars, upsert_bars
from feeds.breaker import CircuitBreaker
from feeds.cache import PriceCache
from feeds.gaps import GapQueue
from feeds.ingest import Ingestor
from feeds.mdlog import MarketDataLog
from feeds.queries import MarketQueries
from feeds.schema import Quote
from feeds.service import FeedService
from feeds.source import SourceUnavailable
from feeds.synthetic import SyntheticMarket

MIN = 60 * 1_000_000_000
START = 1_700_000_040 * 1_000_000_000 // MIN * MIN  # on a minute boundary


class FakeSource:
    """A live source that is down until told otherwise."""

    name = "yahoo"

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.up = False
        self.calls = 0

    def history(self, symbol: str, interval: str, start_ns: int, end_ns: int) -> pd.DataFrame:
        self.calls += 1
        if not self.up:
            raise SourceUnavailable("connect timeout")
        ts = [t for t in range(start_ns // MIN * MIN, end_ns, MIN)]
        return pd.DataFrame(
            {"ts": ts, "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5, "volume": 100.0}
        )

    def quotes(self, symbols: list[str]) -> list[Quote]:
        if not self.up:
            raise SourceUnavailable("connect timeout")
        now = self.clock.time_ns()
        return [
            Quote(symbol=s, ts=now, bid=10.4, ask=10.6, last=10.5, origin="yahoo") for s in symbols
        ]

    def fundamentals(self, symbol: str) -> object:
        raise NotImplementedError


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def parts(tmp_path: Path, clock: FakeClock) -> Iterator[dict[str, object]]:
    settings = load_settings(
        environ={
            "QSUITE__APP__DATA_DIR": str(tmp_path),
            "QSUITE__FEED__WATCHLIST": '["AAA", "BBB.L"]',
            "QSUITE__FEED__POLL_INTERVAL_S": "5",
            "QSUITE__FEED__TICK_INTERVAL_S": "1",
            "QSUITE__FEED__BREAKER_COOL_DOWN_S": "30",
        }
    )
    engine = database.open_database(settings)
    cache = PriceCache(tmp_path / "cache", clock=clock)
    ingestor = Ingestor(
        engine,
        MarketDataLog(tmp_path / "mdlog", "feed", clock=clock),
        cache=cache,
        gaps=GapQueue(tmp_path / "gaps"),
        clock=clock,
    )
    yield {"settings": settings, "engine": engine, "cache": cache, "ingestor": ingestor}
    engine.dispose()


def _service(
    parts: dict[str, object],
    clock: FakeClock,
    source: FakeSource | None,
    fallback: str = "synthetic",
) -> FeedService:
    settings = parts["settings"]
    feed = settings.feed  # type: ignore[attr-defined]
    if fallback != feed.fallback:
        import msgspec

        feed = msgspec.structs.replace(feed, fallback=fallback)
    ctx_clock = clock
    return FeedService(
        feed,
        ingestor=parts["ingestor"],  # type: ignore[arg-type]
        cache=parts["cache"],  # type: ignore[arg-type]
        queries=MarketQueries(parts["engine"], parts["cache"], clock=ctx_clock),  # type: ignore[arg-type]
        market=SyntheticMarket({}, seed=3, interval="1m", clock=clock),
        source=source,  # type: ignore[arg-type]
        breaker=CircuitBreaker(
            "yahoo", failure_threshold=3, cool_down_s=30, max_cool_down_s=60, clock=clock
        ),
    )


def test_start_when_source_down_then_simulated_market_flagged_everywhere(
    parts: dict[str, object], clock: FakeClock
) -> None:
    ctx = FakeContext("feed", clock)
    service = _service(parts, clock, FakeSource(clock))
    service.start(ctx)

    ctx.advance(65)

    quotes = ctx.events(QuoteUpdated)
    assert quotes and all(q.simulated and q.origin == "synthetic" for q in quotes)
    assert {q.symbol for q in quotes} == {"AAA", "BBB.L"}
    assert ctx.events(TradeReported)
    bars = ctx.events(BarClosed)
    assert bars and all(b.simulated for b in bars)
    assert any(t == "md.bar.BBB~L.1m" for t, _ in ctx.published)
    states = ctx.events(FeedStateChanged)
    assert states[-1].mode == "simulated"
    status, detail = service.health()
    assert status == "degraded" and "SIMULATED" in detail and "unreachable" in detail
    cached = parts["cache"].latest_quote("AAA")  # type: ignore[attr-defined]
    assert cached is not None and cached.simulated


def test_poll_when_source_keeps_failing_then_breaker_opens_and_stops_calling(
    parts: dict[str, object], clock: FakeClock
) -> None:
    ctx = FakeContext("feed", clock)
    source = FakeSource(clock)
    service = _service(parts, clock, source)
    service.start(ctx)

    ctx.advance(16)  # polls at 0, 5, 10, 15 s: three failures open the breaker

    assert service.breaker.state == "open"
    calls = source.calls
    ctx.advance(10)
    assert source.calls == calls  # open: the source is left alone
    status = ctx.send(GetFeedStatus())
    assert isinstance(status, FeedStatus)
    assert (status.mode, status.breaker) == ("simulated", "open")
    assert any(e.breaker == "open" for e in ctx.events(FeedStateChanged))


def test_poll_when_source_comes_back_then_live_again_by_itself(
    parts: dict[str, object], clock: FakeClock
) -> None:
    ctx = FakeContext("feed", clock)
    source = FakeSource(clock)
    service = _service(parts, clock, source)
    service.start(ctx)
    ctx.advance(16)
    assert service.breaker.state == "open"

    source.up = True
    ctx.advance(40)  # cool-down over: a trial poll succeeds

    assert service.mode == "live" and service.breaker.state == "closed"
    assert service.health() == ("up", "")
    live_bars = [b for b in ctx.events(BarClosed) if b.origin == "yahoo"]
    assert live_bars and not any(b.simulated for b in live_bars)
    published = len(ctx.published)
    ctx.advance(3)  # between polls: no synthetic ticks any more
    assert not any(
        isinstance(e, QuoteUpdated) and e.simulated for _, e in ctx.published[published:]
    )


def test_fallback_cached_when_source_down_then_nothing_simulated(
    parts: dict[str, object], clock: FakeClock
) -> None:
    ctx = FakeContext("feed", clock)
    service = _service(parts, clock, FakeSource(clock), fallback="cached")
    service.start(ctx)
    ctx.advance(20)

    assert service.mode == "cached"
    assert not ctx.events(QuoteUpdated) and not ctx.events(BarClosed)
    assert "cached" in service.health()[1]


def test_enter_simulated_when_real_bars_stored_then_history_only_after_them(
    parts: dict[str, object], clock: FakeClock
) -> None:
    engine = parts["engine"]
    real_ts = START - 10 * MIN
    upsert_bars(engine, [("AAA", "1m", real_ts, 50.0, 51.0, 49.0, 50.5, 10.0, "yahoo", 0)])  # type: ignore[arg-type]
    ctx = FakeContext("feed", clock)
    _service(parts, clock, FakeSource(clock)).start(ctx)

    rows = load_bars(engine, "AAA", "1m")  # type: ignore[arg-type]
    real = [r for r in rows if r.ts == real_ts]
    assert real and real[0].source == "yahoo" and real[0].close == 50.5
    assert all(r.ts > real_ts for r in rows if r.source == "synthetic")
    assert len(rows) == 10  # the nine minutes after the real bar were simulated


def test_set_scenario_when_sent_then_market_switches(
    parts: dict[str, object], clock: FakeClock
) -> None:
    ctx = FakeContext("feed", clock)
    service = _service(parts, clock, None)
    service.start(ctx)
    result = ctx.send(SetScenario(scenario="flash_crash", command_id="x"))
    assert isinstance(result, ScenarioSet)
    assert (result.previous, result.current) == ("calm", "flash_crash")
    assert service.market.scenario == "flash_crash"
    assert service.health() == ("up", "synthetic market (configured)")


def test_simulated_when_a_symbol_does_not_trade_then_its_quote_is_refreshed(
    parts: dict[str, object], clock: FakeClock
) -> None:
    ctx = FakeContext("feed", clock)
    service = _service(parts, clock, None)
    service.start(ctx)
    ctx.send(SetScenario(scenario="illiquid"))  # a trade about every 40 s

    ctx.advance(120)

    for symbol in ("AAA", "BBB.L"):
        stamps = [q.ts_event for q in ctx.events(QuoteUpdated) if q.symbol == symbol]
        gaps = [b - a for a, b in pairwise(stamps)]
        assert len(stamps) >= 24 and max(gaps) <= 5 * 1_000_000_000 + 1_000_000_000
    trades = {t.ts_event for t in ctx.events(TradeReported)}
    refreshed = [q for q in ctx.events(QuoteUpdated) if q.ts_event not in trades]
    assert refreshed and all(q.simulated for q in refreshed)
    latest = parts["cache"].latest_quote("AAA")  # type: ignore[attr-defined]
    assert latest is not None and clock.time_ns() - latest.ts <= 5 * 1_000_000_000


def test_simulated_when_quote_refresh_off_then_quotes_only_with_trades(
    parts: dict[str, object], clock: FakeClock
) -> None:
    import msgspec

    ctx = FakeContext("feed", clock)
    service = _service(parts, clock, None)
    service.settings = msgspec.structs.replace(service.settings, quote_refresh_s=0.0)
    service.start(ctx)

    ctx.advance(60)

    trades = {(t.symbol, t.ts_event) for t in ctx.events(TradeReported)}
    assert {(q.symbol, q.ts_event) for q in ctx.events(QuoteUpdated)} == trades

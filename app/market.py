"""Composition of the market-data processes (feed, scheduler) and of CLI backfills.

Imported only by the processes that need it: pandas, yfinance and SQLAlchemy stay out
of the bus and the other engine processes.
"""

from __future__ import annotations

import threading
from pathlib import Path

from app import database
from app.settings import Settings
from engine.clock import LiveClock
from engine.intervals import INTRADAY
from engine.sync import SchedulerService
from feeds.breaker import CircuitBreaker
from feeds.cache import PriceCache
from feeds.gaps import GapQueue
from feeds.ingest import Ingestor
from feeds.mdlog import MarketDataLog
from feeds.queries import MarketQueries
from feeds.replay import ReplaySource
from feeds.service import FeedService
from feeds.source import MarketSource
from feeds.synthetic import SyntheticMarket
from feeds.yahoo import YahooSettings, YahooSource


def market_sources(
    settings: Settings, stopping: threading.Event | None = None
) -> tuple[MarketSource | None, SyntheticMarket]:
    """The configured live source (None when the synthetic market is the source) and the
    synthetic market (the fallback, or the source itself). A replay paces itself by
    waiting on ``stopping``, so setting it ends the replay at once."""
    feed, data = settings.feed, settings.data_path
    market = SyntheticMarket(
        {},
        seed=feed.seed,
        interval=feed.interval if feed.interval in INTRADAY else "1m",
        scenario=feed.scenario,
        clock=LiveClock(),
    )
    source: MarketSource | None = None
    if feed.source == "yahoo":
        source = YahooSource(
            data / "yahoo",
            YahooSettings(
                connect_timeout_s=min(3.0, feed.request_timeout_s),
                read_timeout_s=feed.request_timeout_s,
                min_interval_s=feed.min_request_spacing_s,
            ),
        )
    elif feed.source == "replay":
        wait = (stopping or threading.Event()).wait
        source = ReplaySource(Path(feed.replay_file), interval=feed.interval, sleep=wait)
    return source, market


def market_ingestor(settings: Settings, writer: str) -> Ingestor:
    """The bar pipeline of a writer process (feed, scheduler, a CLI backfill)."""
    data = settings.data_path
    return Ingestor(
        database.open_database(settings),
        MarketDataLog(data / "mdlog", writer),
        cache=PriceCache(
            settings.price_cache_path, size_limit=settings.feed.cache_size_mb * 1024 * 1024
        ),
        gaps=GapQueue(data / "gaps"),
    )


def build_feed(settings: Settings) -> FeedService:
    feed = settings.feed
    ingestor = market_ingestor(settings, "feed")
    assert ingestor.cache is not None
    stopping = threading.Event()
    source, market = market_sources(settings, stopping)
    breaker = CircuitBreaker(
        source.name if source is not None else "synthetic",
        failure_threshold=feed.breaker_failure_threshold,
        cool_down_s=feed.breaker_cool_down_s,
        max_cool_down_s=feed.breaker_max_cool_down_s,
    )
    return FeedService(
        feed,
        ingestor=ingestor,
        cache=ingestor.cache,
        queries=MarketQueries(ingestor.engine, ingestor.cache, clock=LiveClock()),
        market=market,
        source=source,
        breaker=breaker,
        stopping=stopping,
    )


def build_scheduler(settings: Settings) -> SchedulerService:
    """The scheduler process: background-sync jobs over the ``scheduler`` writer pipeline."""
    feed = settings.feed
    ingestor = market_ingestor(settings, "scheduler")
    source, market = market_sources(settings)
    # the synthetic market trades the watchlist from the last known price (as the feed does)
    for symbol in feed.watchlist:
        cache = ingestor.cache
        quote = cache.latest_quote(symbol) if cache is not None else None
        bar = cache.latest_bar(symbol, feed.interval) if cache is not None else None
        market.add_symbol(symbol, quote.last if quote else bar.close if bar else feed.start_price)
    return SchedulerService(
        settings.sync,
        feed,
        ingestor=ingestor,
        source=source if source is not None else market,
        fallback_source=market,
        clock=LiveClock(),
    )

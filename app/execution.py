"""Composition of the execution process: the order manager on the order ledger."""

from __future__ import annotations

from app import database
from app.settings import Settings
from engine.bus.events import QuoteUpdated
from engine.orders.service import OrderService
from feeds.cache import PriceCache
from feeds.schema import quote_event


def build_execution(settings: Settings) -> OrderService:
    return OrderService(
        settings.execution,
        settings.venue,
        settings.risk,
        settings.algos,
        engine=database.open_database(settings),
        recent_quotes=lambda: cached_quotes(settings),
    )


def cached_quotes(settings: Settings) -> list[QuoteUpdated]:
    """The latest quote of every symbol in the feed's price cache (none before the feed
    has written one), as the events that carried them."""
    with PriceCache(settings.data_path / "price-cache", size_limit=None) as cache:
        return [quote_event(entry.quote) for entry in cache.snapshot().values()]

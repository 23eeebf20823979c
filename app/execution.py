"""Composition of the execution process: the order manager on the order ledger."""

from __future__ import annotations

from app import database
from app.settings import Settings
from engine.orders.service import OrderService
from feeds.cache import cached_quotes


def build_execution(settings: Settings) -> OrderService:
    return OrderService(
        settings.execution,
        settings.venue,
        settings.risk,
        settings.algos,
        engine=database.open_database(settings),
        recent_quotes=lambda: cached_quotes(settings.price_cache_path),
    )

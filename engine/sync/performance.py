"""The ``analytics_snapshot`` job: the live account's performance, snapshotted.

Every run values each account's positions at the marks of the moment and stores one
:class:`~engine.persistence.models.PerformanceSnapshot` row per account
(:mod:`engine.analytics.snapshots` has the arithmetic). Marks come from the price cache
the feed writes (:class:`feeds.cache.PriceCache`): the latest quote's mid when it has a
two-sided market (bid and ask positive, not crossed), else its last trade price, else
none — whatever its age and the feed's mode then (the console shows the same prices).

A run with open positions but no mark for some is ``partial``: its snapshots are stored
with those positions left out of unrealized P&L and exposure and counted in
``marks_missing``, and the job's error names the symbols. A run is idempotent per clock
tick: a snapshot of an ``(account, ts)`` already stored is not written again.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

from loguru import logger
from sqlalchemy import Engine

from engine.analytics.snapshots import Marks, save_snapshots, take_snapshots
from engine.clock import Clock
from engine.orders.positions import DECIMAL_CONTEXT
from engine.sync.jobs import JobOutcome
from feeds.cache import PriceCache
from feeds.schema import Quote

JOB = "analytics_snapshot"
_TWO = Decimal(2)


def quote_mark(quote: Quote | None) -> Decimal | None:
    """The mark a quote gives: its mid when bid and ask are positive and not crossed,
    else its last price when positive, else None. Floats are taken at their shortest
    decimal form (``100.1`` → ``Decimal("100.1")``)."""
    if quote is None:
        return None
    bid, ask, last = quote.bid, quote.ask, quote.last
    if math.isfinite(bid) and math.isfinite(ask) and 0 < bid <= ask:
        with localcontext(DECIMAL_CONTEXT):
            return (Decimal(repr(bid)) + Decimal(repr(ask))) / _TWO
    if math.isfinite(last) and last > 0:
        return Decimal(repr(last))
    return None


def cache_marks(cache: PriceCache | None) -> Marks:
    """Marks from the price cache (:func:`quote_mark` of each symbol's latest quote);
    every mark is missing without a cache."""

    def mark(symbol: str) -> Decimal | None:
        return None if cache is None else quote_mark(cache.latest_quote(symbol))

    return mark


def snapshot_performance(engine: Engine, marks: Marks, *, clock: Clock) -> JobOutcome:
    """Take and store a snapshot of every account with positions, now (see the module
    docstring); ``rows`` is the snapshots written."""
    unmarked: list[str] = []

    def recorded(symbol: str) -> Decimal | None:
        mark = marks(symbol)
        if mark is None:
            unmarked.append(symbol)
        return mark

    ts = clock.time_ns()
    snapshots = take_snapshots(engine, recorded, ts)
    written = save_snapshots(engine, snapshots)
    missing = sum(s.marks_missing for s in snapshots)
    logger.bind(component="scheduler", job=JOB).debug(
        "Performance snapshot of {} account(s): {} written, {} open position(s) unmarked",
        len(snapshots),
        written,
        missing,
    )
    if not missing:
        return JobOutcome("ok", written)
    symbols = ", ".join(sorted(unmarked))
    error = f"no mark for {missing} open position(s) ({symbols}); their P&L is left out"
    return JobOutcome("partial", written, error)

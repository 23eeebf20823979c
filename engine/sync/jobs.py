"""The background-sync jobs: plain functions of their dependencies, each idempotent.

The scheduler (:class:`engine.sync.service.SchedulerService`) calls them from its
APScheduler threads; ``qsuite`` tools and tests may call them directly. Every one:

- is safe to run again: bars are upserted on ``(symbol, interval, ts)`` and
  fundamentals on ``(instrument, UTC day)``, so a re-run writes nothing new;
- writes an ingestion-log row per run (:mod:`engine.persistence.ingestion`; backfills
  through :func:`feeds.backfill.run_backfill`), closed ``ok``/``partial``/``failed``
  with the rows written and the reason;
- fails fast when the source is unreachable (the first transient error stops the run;
  nothing raises out of the job; the next run tries again);
- stops between units of work (symbols, gaps) when ``cancel`` is set: the process is
  stopping, and the row says so.

The chain hand-off: every symbol a backfill (or a gap repair) stored is announced with a
:class:`~engine.bus.events.BackfillCompleted` on ``md.backfill.<symbol>``. That event is
how the analysis process learns to re-evaluate the symbol; the jobs call nothing else.
``publish`` must be safe to call from the job's thread (the service hands the event to
its loop).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, cast

import pandas as pd
from loguru import logger
from sqlalchemy import Engine

from engine.bus import topics
from engine.bus.events import BackfillCompleted, Event, Origin
from engine.clock import Clock
from engine.errors import QSuiteError, TransientError
from engine.intervals import NS
from engine.persistence.ingestion import finish_run, start_run
from engine.persistence.instruments import save_fundamentals
from feeds.backfill import BackfillSummary, SymbolOutcome, run_backfill
from feeds.gaps import Gap, GapQueue
from feeds.ingest import Ingestor
from feeds.schema import Fundamentals, Quote
from feeds.source import MarketSource, SymbolNotFound

RunStatus = Literal["ok", "partial", "failed", "skipped"]
Publish = Callable[[str, Event], object]
"""Publishes an event on the bus; callable from any thread."""

DAY_NS = 86_400 * NS
#: Gaps one repair run takes from the queue (the rest wait for the next run).
GAP_REPAIR_BATCH = 20
STOPPING = "the scheduler is stopping"


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What one run of a job did (the ingestion log has the details per run)."""

    status: RunStatus
    rows: int = 0
    """Bars (or fundamentals records) inserted or changed."""
    error: str | None = None
    """Why it failed, or what failed in a partial run, in words for the operator."""
    run_ids: tuple[int, ...] = ()
    """The ingestion-log rows the run wrote."""


class JobCancelled(Exception):
    """Raised between symbols to end a backfill early (the process is stopping)."""

    def __init__(self, summary: BackfillSummary) -> None:
        super().__init__(STOPPING)
        self.summary = summary


class OutageWatch:
    """A source seen through a window that remembers its last transient failure, so a
    job can tell "the source is down" from "the source has nothing for this"."""

    def __init__(self, source: MarketSource) -> None:
        self.source = source
        self.name: Origin = source.name
        self.outage: TransientError | None = None

    def history(self, symbol: str, interval: str, start_ns: int, end_ns: int) -> pd.DataFrame:
        try:
            return self.source.history(symbol, interval, start_ns, end_ns)
        except TransientError as exc:
            self.outage = exc
            raise

    def quotes(self, symbols: Sequence[str]) -> list[Quote]:
        return self.source.quotes(symbols)

    def fundamentals(self, symbol: str) -> Fundamentals:
        try:
            return self.source.fundamentals(symbol)
        except TransientError as exc:
            self.outage = exc
            raise


# -- backfills ---------------------------------------------------------------------------


def backfill(
    ingestor: Ingestor,
    source: MarketSource,
    symbols: Sequence[str],
    interval: str,
    start: int,
    end: int,
    *,
    job: str = "backfill",
    publish: Publish | None = None,
    cancel: threading.Event | None = None,
) -> JobOutcome:
    """Backfill ``symbols`` over ``[start, end)`` (UTC ns) and announce each symbol that
    was stored (rows written, or fetched without error) with ``BackfillCompleted``."""
    watch = OutageWatch(source)

    def on_symbol(outcome: SymbolOutcome, summary: BackfillSummary) -> None:
        if publish is not None and (outcome.error is None or outcome.rows > 0):
            publish(topics.backfill(outcome.symbol), completed(ingestor, summary, outcome))
        if cancel is not None and cancel.is_set() and len(summary.outcomes) < len(symbols):
            raise JobCancelled(summary)

    try:
        summary = run_backfill(
            ingestor, watch, symbols, interval, start, end, job=job, on_symbol=on_symbol
        )
    except JobCancelled as stop:
        done = stop.summary
        stopped = f"stopped after {len(done.outcomes)} of {len(symbols)} symbols: {STOPPING}"
        error = "; ".join([stopped, *done.errors])
        finish_run(ingestor.engine, done.run_id, status="partial", rows=done.rows, error=error)
        return JobOutcome("partial", done.rows, error, (done.run_id,))
    status = cast(RunStatus, summary.status)  # run_backfill closes ok, partial or failed
    return JobOutcome(status, summary.rows, _reason(watch, summary.errors), (summary.run_id,))


def backfill_watchlist(
    ingestor: Ingestor,
    source: MarketSource,
    symbols: Sequence[str],
    interval: str,
    days: int,
    *,
    clock: Clock,
    publish: Publish | None = None,
    cancel: threading.Event | None = None,
) -> JobOutcome:
    """The daily job: backfill the watchlist over the last ``days`` days, up to now."""
    now = clock.time_ns()
    return backfill(
        ingestor,
        source,
        symbols,
        interval,
        now - days * DAY_NS,
        now,
        job="backfill",
        publish=publish,
        cancel=cancel,
    )


def completed(
    ingestor: Ingestor, summary: BackfillSummary, outcome: SymbolOutcome
) -> BackfillCompleted:
    """The chain's hand-off event for one symbol of a backfill run."""
    return BackfillCompleted(
        ts_event=ingestor.clock.time_ns(),
        symbol=outcome.symbol,
        interval=summary.interval,
        start=summary.start,
        end=summary.end,
        rows=outcome.rows,
        origin=cast(Origin, summary.source),  # a MarketSource's name
        run_id=summary.run_id,
    )


# -- fundamentals ------------------------------------------------------------------------


def refresh_fundamentals(
    engine: Engine,
    source: MarketSource,
    symbols: Sequence[str],
    *,
    cancel: threading.Event | None = None,
) -> JobOutcome:
    """Fetch and store the fundamentals of ``symbols`` (one row per instrument and UTC
    day, so a second run the same day updates in place). An unknown symbol is recorded
    and skipped; a source outage stops the run (the rest are "not attempted")."""
    watch = OutageWatch(source)
    run_id = start_run(engine, "fundamentals", source.name, symbols, None)
    saved = 0
    errors: list[str] = []
    status: RunStatus = "failed"
    log = logger.bind(component="scheduler", job="fundamentals", run_id=run_id)
    try:
        for symbol in symbols:
            if cancel is not None and cancel.is_set():
                errors.append(f"{symbol}: not attempted: {STOPPING}")
            elif watch.outage is not None:
                errors.append(f"{symbol}: not attempted: {source.name} unreachable")
            else:
                try:
                    save_fundamentals(engine, watch.fundamentals(symbol), source=source.name)
                    saved += 1
                    continue
                except SymbolNotFound as exc:
                    errors.append(f"{symbol}: {exc}")
                except (QSuiteError, ValueError) as exc:
                    errors.append(f"{symbol}: {type(exc).__name__}: {exc}")
                log.bind(symbol=symbol).warning(
                    "Cannot refresh fundamentals of {}: {}", symbol, errors[-1]
                )
    except Exception as exc:  # the store failed: close the row with why, then let it raise
        errors.append(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if not errors:
            status = "ok"
        elif saved:
            status = "partial"
        finish_run(engine, run_id, status=status, rows=saved, error="; ".join(errors) or None)
        log.info(
            "Fundamentals of {} symbol(s) from {}: {} saved, status {}",
            len(symbols),
            source.name,
            saved,
            status,
        )
    return JobOutcome(status, saved, _reason(watch, errors), (run_id,))


# -- gap repair --------------------------------------------------------------------------


def repair_gaps(
    ingestor: Ingestor,
    source: MarketSource,
    gaps: GapQueue,
    *,
    limit: int = GAP_REPAIR_BATCH,
    publish: Publish | None = None,
    cancel: threading.Event | None = None,
) -> JobOutcome:
    """Take up to ``limit`` gaps from the queue and backfill each one's range (one
    ``gap_repair`` ingestion-log row per gap). A gap the source cannot fill (no bars: a
    holiday, a halt; or an error about the symbol) is dropped and logged; when the
    source is unreachable, that gap and the ones not tried yet go back in the queue.

    A run that finds the queue empty does nothing and writes no row."""
    taken = gaps.take(limit)
    log = logger.bind(component="scheduler", job="gap_repair")
    rows = repaired = dropped = 0
    run_ids: list[int] = []
    requeue: list[Gap] = []
    outage: str | None = None
    for gap in taken:
        if outage is not None or (cancel is not None and cancel.is_set()):
            requeue.append(gap)
            continue
        where = f"{gap.symbol} {gap.interval} [{gap.start}, {gap.end})"
        if gap.start >= gap.end:
            dropped += 1
            log.bind(symbol=gap.symbol).warning("Cannot repair gap {}: empty range", where)
            continue
        watch = OutageWatch(source)
        summary = run_backfill(
            ingestor,
            watch,
            [gap.symbol],
            gap.interval,
            gap.start,
            gap.end,
            job="gap_repair",
            on_symbol=_announce_rows(ingestor, publish),
        )
        run_ids.append(summary.run_id)
        rows += summary.rows
        if watch.outage is not None:
            requeue.append(gap)
            outage = f"{source.name} unreachable: {watch.outage}"
        elif summary.rows > 0:
            repaired += 1
        else:
            dropped += 1
            why = "; ".join(summary.errors) or "the source has no bars there (holiday or halt?)"
            log.bind(symbol=gap.symbol).info("Cannot repair gap {}: {}; dropped", where, why)
    for gap in requeue:
        gaps.put(gap.symbol, gap.interval, gap.start, gap.end, gap.missing)
    if taken:
        log.info(
            "Gap repair: {} taken, {} repaired, {} dropped, {} re-queued, {} rows",
            len(taken),
            repaired,
            dropped,
            len(requeue),
            rows,
        )
    status: RunStatus = "ok"
    error: str | None = None
    if outage is not None:
        status = "partial" if repaired else "failed"
        error = f"{outage}; {len(requeue)} gap(s) re-queued"
    elif requeue:
        status, error = "partial", f"{STOPPING}; {len(requeue)} gap(s) re-queued"
    return JobOutcome(status, rows, error, tuple(run_ids))


def _announce_rows(
    ingestor: Ingestor, publish: Publish | None
) -> Callable[[SymbolOutcome, BackfillSummary], None]:
    def on_symbol(outcome: SymbolOutcome, summary: BackfillSummary) -> None:
        if publish is not None and outcome.rows > 0:
            publish(topics.backfill(outcome.symbol), completed(ingestor, summary, outcome))

    return on_symbol


def _reason(watch: OutageWatch, errors: Sequence[str]) -> str | None:
    """The operator's one-line why: the outage if there was one, else the first error."""
    if watch.outage is not None:
        return f"{watch.name} unreachable: {watch.outage}"
    if not errors:
        return None
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{errors[0]}{more}"

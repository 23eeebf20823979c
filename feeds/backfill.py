"""Backfills: history of symbols from a source into the store, logged and idempotent.

Used by the scheduler's jobs, by ``qsuite backfill`` and by gap repair. A run:

1. opens an ingestion-log row (job, source, symbols, interval);
2. splits the range into the requests the source allows (Yahoo's limits per interval:
   :func:`feeds.yahoo_chunks.plan_chunks`; other sources take the range at once);
3. fetches and ingests each symbol chunk by chunk through :class:`feeds.ingest.Ingestor`
   (so re-running it never duplicates a bar);
4. closes the log row: ``ok`` (every symbol fetched), ``partial`` (some failed),
   ``failed`` (none could be fetched), with rows written and the errors in words.

One symbol's failure (a typo, a delisted ticker) never stops the others. A source that
is down stops the run early with ``failed``/``partial``: the next run resumes, and the
upsert keeps what was already stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from loguru import logger

from engine.errors import QSuiteError, TransientError
from engine.persistence.ingestion import finish_run, start_run
from feeds.ingest import Ingestor, IngestReport
from feeds.source import MarketSource, SymbolNotFound
from feeds.yahoo_chunks import clip_notice, plan_chunks


@dataclass(slots=True)
class SymbolOutcome:
    symbol: str
    rows: int = 0
    """Bars inserted or changed."""
    received: int = 0
    accepted: int = 0
    rejected: int = 0
    error: str | None = None
    first_ts: int | None = None
    last_ts: int | None = None


@dataclass(slots=True)
class BackfillSummary:
    run_id: int
    job: str
    source: str
    interval: str
    start: int
    end: int
    status: str = "running"
    notice: str | None = None
    """Why the range was shortened (Yahoo keeps 1m bars for 30 days only …)."""
    outcomes: list[SymbolOutcome] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(o.rows for o in self.outcomes)

    @property
    def errors(self) -> list[str]:
        return [f"{o.symbol}: {o.error}" for o in self.outcomes if o.error]


Progress = Callable[[str, int, int], None]
"""``progress(symbol, chunk_done, chunks_total)`` after every chunk."""


def chunks_for(
    source: MarketSource, interval: str, start: int, end: int, now: int
) -> list[tuple[int, int]]:
    if source.name == "yahoo":
        return plan_chunks(interval, start, end, now)
    return [(start, end)] if start < end else []


def run_backfill(
    ingestor: Ingestor,
    source: MarketSource,
    symbols: Sequence[str],
    interval: str,
    start: int,
    end: int,
    *,
    job: str = "backfill",
    progress: Progress | None = None,
    on_symbol: Callable[[SymbolOutcome, BackfillSummary], None] | None = None,
) -> BackfillSummary:
    """Backfill ``symbols`` over ``[start, end)`` (UTC ns); see the module docstring."""
    if start >= end:
        raise ValueError("the backfill start must be before its end")
    now = ingestor.clock.time_ns()
    run_id = start_run(ingestor.engine, job, source.name, symbols, interval)
    summary = BackfillSummary(run_id, job, source.name, interval, start, end)
    if source.name == "yahoo":
        summary.notice = clip_notice(interval, start, end, now)
    chunks = chunks_for(source, interval, start, end, now)
    log = logger.bind(component="backfill", job=job, run_id=run_id)
    source_down: str | None = None
    try:
        for symbol in symbols:
            outcome = SymbolOutcome(symbol)
            summary.outcomes.append(outcome)
            if source_down is not None:
                outcome.error = f"not attempted: {source_down}"
                continue
            try:
                for done, (a, b) in enumerate(chunks, start=1):
                    raw = source.history(symbol, interval, a, b)
                    _add(
                        outcome,
                        ingestor.ingest(
                            raw,
                            symbol=symbol,
                            interval=interval,
                            origin=source.name,
                            simulated=source.name == "synthetic",
                        ),
                    )
                    if progress is not None:
                        progress(symbol, done, len(chunks))
            except SymbolNotFound as exc:
                outcome.error = str(exc)
            except TransientError as exc:
                outcome.error = f"{type(exc).__name__}: {exc}"
                source_down = f"{source.name} failed during this run ({exc})"
            except (QSuiteError, ValueError) as exc:
                outcome.error = f"{type(exc).__name__}: {exc}"
            if outcome.error:
                log.bind(symbol=symbol).warning("Cannot backfill {}: {}", symbol, outcome.error)
            if on_symbol is not None:
                on_symbol(outcome, summary)
    finally:
        failed = sum(1 for o in summary.outcomes if o.error)
        if failed == 0 and len(summary.outcomes) == len(symbols):
            summary.status = "ok"
        elif failed == len(symbols):
            summary.status = "failed"
        else:
            summary.status = "partial"
        error = "; ".join(summary.errors) or None
        finish_run(ingestor.engine, run_id, status=summary.status, rows=summary.rows, error=error)
        log.info(
            "Backfill {} of {} symbol(s) {} from {}: {} rows, status {}",
            interval,
            len(symbols),
            ",".join(symbols[:5]),
            source.name,
            summary.rows,
            summary.status,
        )
    return summary


def _add(outcome: SymbolOutcome, report: IngestReport) -> None:
    outcome.rows += report.written
    outcome.received += report.received
    outcome.accepted += report.accepted
    outcome.rejected += sum(report.rejected.values())
    if report.first_ts is not None:
        outcome.first_ts = (
            report.first_ts if outcome.first_ts is None else min(outcome.first_ts, report.first_ts)
        )
    if report.last_ts is not None:
        outcome.last_ts = (
            report.last_ts if outcome.last_ts is None else max(outcome.last_ts, report.last_ts)
        )

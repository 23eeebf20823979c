"""Backtests the console runs: what one is asked to do (:class:`BacktestRequest`), what the
page shows of it (:class:`BacktestSummary`), and running it off the event loop.

A backtest holds the GIL for its whole length, so the console runs it in a worker process
of this module's pool: ``spawn``, never ``fork`` (the console has ZeroMQ contexts and
threads), at most ``WORKERS`` runs at once (others wait). An engine does not cross
processes, so the worker opens the console's database again from its URL; more than
``MAX_BARS`` stored bars are refused before any is loaded. The worker writes the HTML
report to ``<reports>/<run id>.html`` and sends back only the metrics and the curves
thinned to ``CHART_POINTS``, or why it could not run, in words. This module does not
import NiceGUI, so a worker starts light.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from loguru import logger
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from engine.backtest.api import BacktestRun, KeyMetrics, backtest
from engine.backtest.runner import BacktestError
from engine.persistence.models import Bar

MAX_BARS = 2_000_000
"""Stored bars one console backtest may read (all its symbols together)."""
WORKERS = 2
"""Backtests running at once in the console's worker processes."""
CHART_POINTS = 2_000
"""Points per line of the page's equity chart (the report keeps every bar)."""


class BacktestRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A checked form: what one run is asked to do (picklable, for the worker)."""

    run_id: str
    strategy: str
    params: dict[str, Any]
    symbols: list[str]
    interval: str
    start: int | None
    """UTC ns, inclusive; None: from the first stored bar."""
    end: int | None
    """UTC ns, exclusive; None: to the last stored bar."""
    cash: Decimal
    commission: float
    slippage_bps: float


class BacktestSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What the page shows of a finished run (the report has the rest)."""

    request: BacktestRequest
    metrics: KeyMetrics
    bars: int
    fills: int
    denied: int
    ts: list[int]
    equity: list[float]
    buy_and_hold: list[float] | None
    report: str
    """The HTML report's path."""
    wall_s: float


Outcome = BacktestSummary | str
"""A finished run, or why it did not run (in words)."""


# --- the run: synchronous, in a worker or a thread -----------------------------------------


def run_sync(request: BacktestRequest, database: Engine | str, reports: Path) -> BacktestSummary:
    """Run ``request`` over the stored bars of ``database`` (an engine, or its URL: opened
    and closed here) and write its HTML report in ``reports``; raises BacktestError."""
    from app.database import make_engine

    engine = database if isinstance(database, Engine) else make_engine(database)
    try:
        stored = bars_in_range(engine, request)
        if stored > MAX_BARS:
            raise BacktestError(
                f"{stored:,} bars match, more than the {MAX_BARS:,} a console backtest may "
                "use; choose fewer symbols, a shorter period or a longer interval"
            )
        run = backtest(
            request.strategy,
            symbols=request.symbols,
            interval=request.interval,
            from_db=engine,
            start=request.start,
            end=request.end,
            cash=request.cash,
            commission=request.commission,
            slippage_bps=request.slippage_bps,
            params=request.params,
        )
    finally:
        if engine is not database:
            engine.dispose()
    reports.mkdir(parents=True, exist_ok=True)
    path = reports / f"{request.run_id}.html"
    run.report(path)
    return summarize(request, run, path)


def attempt(request: BacktestRequest, database: Engine | str, reports: Path) -> Outcome:
    """:func:`run_sync`, or why it failed in words (a worker never sends a traceback)."""
    try:
        return run_sync(request, database, reports)
    except BacktestError as exc:
        return str(exc)
    except SQLAlchemyError as exc:
        return f"the database failed: {str(exc).splitlines()[0]}"
    except Exception as exc:  # the report or the machine, not the input: say so, log it
        logger.exception("Cannot run backtest {}", request.run_id)
        return f"the backtest failed: {type(exc).__name__}: {exc}"


def bars_in_range(engine: Engine, request: BacktestRequest) -> int:
    bars = Bar.__table__
    query = select(func.count()).select_from(bars)
    query = query.where(bars.c.symbol.in_(request.symbols), bars.c.interval == request.interval)
    if request.start is not None:
        query = query.where(bars.c.ts >= request.start)
    if request.end is not None:
        query = query.where(bars.c.ts < request.end)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def summarize(request: BacktestRequest, run: BacktestRun, report: Path) -> BacktestSummary:
    p, result = run.performance, run.result
    step = max(1, -(-len(p.ts) // CHART_POINTS))
    keep = [*range(0, len(p.ts) - 1, step), len(p.ts) - 1] if p.ts else []
    return BacktestSummary(
        request=request,
        metrics=run.metrics,
        bars=result.bars,
        fills=len(result.fills),
        denied=len(result.denied),
        ts=[p.ts[i] for i in keep],
        equity=[p.equity[i] for i in keep],
        buy_and_hold=None if p.benchmark is None else [p.benchmark.equity[i] for i in keep],
        report=str(report),
        wall_s=result.wall_s,
    )


# --- off the event loop --------------------------------------------------------------------

_pool: ProcessPoolExecutor | None = None


def _quiet_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the console's, not the worker's


def stop_workers() -> None:
    """End the worker processes (at shutdown: a run still going is abandoned)."""
    global _pool
    pool, _pool = _pool, None
    if pool is None:
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


async def in_worker(request: BacktestRequest, engine: Engine, reports: Path) -> Outcome:
    """:func:`attempt` in a worker process (one of ``WORKERS``)."""
    global _pool
    if engine.url.get_backend_name() == "sqlite" and engine.url.database in (None, "", ":memory:"):
        return await in_thread(request, engine, reports)  # another process cannot open it
    if _pool is None:
        from nicegui import app

        context = multiprocessing.get_context("spawn")
        _pool = ProcessPoolExecutor(WORKERS, mp_context=context, initializer=_quiet_worker)
        app.on_shutdown(stop_workers)
    pool, url = _pool, engine.url.render_as_string(hide_password=False)
    try:
        return await asyncio.get_running_loop().run_in_executor(
            pool, attempt, request, url, reports
        )
    except BrokenProcessPool:
        if _pool is pool:  # not a newer pool another tab has started since
            stop_workers()
        return "the backtest's worker process died (out of memory?); try fewer bars"


async def in_thread(request: BacktestRequest, engine: Engine, reports: Path) -> Outcome:
    """:func:`attempt` in a thread of this process (tests, and in-memory databases)."""
    return await asyncio.to_thread(attempt, request, engine, reports)


offload: Callable[[BacktestRequest, Engine, Path], Awaitable[Outcome]] = in_worker
"""How a run leaves the event loop (tests replace it with :func:`in_thread`)."""

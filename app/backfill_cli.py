"""``qsuite backfill``: history into the store from this shell, with progress and a summary.

Runs the same backfill as the scheduler (:func:`feeds.backfill.run_backfill`) in this
process, so it works with or without the engine running; when the bus is up, each
finished symbol is announced with ``BackfillCompleted`` like a scheduled backfill.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import zmq

from app.ctl import utc_ns
from app.settings import Settings
from engine.bus import topics
from engine.bus.events import BackfillCompleted
from engine.bus.publisher import Publisher
from engine.intervals import INTERVAL_SECONDS

if TYPE_CHECKING:  # pandas and SQLAlchemy load only when a backfill runs
    from feeds.backfill import BackfillSummary, SymbolOutcome
    from feeds.source import MarketSource


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "backfill", help="backfill bars into the store from here (progress, summary)"
    )
    p.add_argument("symbols", nargs="+", help="symbols, Yahoo spelling (BP.L, SHOP.TO)")
    p.add_argument("--interval", default="1d", choices=list(INTERVAL_SECONDS))
    p.add_argument("--start", type=utc_ns, required=True, help="UTC date or datetime")
    p.add_argument("--end", type=utc_ns, help="end, exclusive (default: now)")
    p.add_argument("--source", choices=["yahoo", "replay", "synthetic"], default="yahoo")
    p.add_argument("--file", type=Path, help="CSV or Parquet file (with --source replay)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def _source(args: argparse.Namespace, settings: Settings) -> MarketSource:
    from app.market import market_sources
    from feeds.replay import ReplaySource

    if args.source == "replay":
        if args.file is None:
            raise SystemExit("qsuite backfill: --source replay needs --file")
        if not args.file.exists():
            raise SystemExit(f"qsuite backfill: {args.file} does not exist")
        return ReplaySource(args.file, interval=args.interval)
    live, market = market_sources(settings)
    if args.source == "yahoo":
        if live is not None and live.name == "yahoo":
            return live
        from feeds.yahoo import YahooSource

        return YahooSource(settings.data_path / "yahoo")
    for symbol in args.symbols:
        market.add_symbol(symbol, settings.feed.start_price)
    return market


def run(args: argparse.Namespace, settings: Settings) -> int:
    from app.market import market_ingestor
    from feeds.backfill import run_backfill

    end = args.end or time.time_ns()
    source = _source(args, settings)
    ingestor = market_ingestor(settings, "backfill")
    ctx = zmq.Context()
    publisher = Publisher(ctx, settings.bus.xsub, "backfill", hwm=settings.bus.hwm)
    interactive = sys.stderr.isatty() and not args.json

    def progress(symbol: str, done: int, total: int) -> None:
        if interactive:
            width = 30
            filled = width * done // max(total, 1)
            bar = "#" * filled + "." * (width - filled)
            print(
                f"\r{symbol:<12} [{bar}] {done}/{total} request(s)",
                end="",
                file=sys.stderr,
                flush=True,
            )

    def announce(outcome: SymbolOutcome, summary: BackfillSummary) -> None:
        if interactive:
            print(file=sys.stderr)
        if outcome.error is None:
            publisher.publish(
                topics.backfill(outcome.symbol),
                BackfillCompleted(
                    ts_event=time.time_ns(),
                    symbol=outcome.symbol,
                    interval=summary.interval,
                    start=summary.start,
                    end=summary.end,
                    rows=outcome.rows,
                    origin=source.name,
                    run_id=summary.run_id,
                ),
            )

    try:
        summary = run_backfill(
            ingestor,
            source,
            args.symbols,
            args.interval,
            args.start,
            end,
            job="cli_backfill",
            progress=progress,
            on_symbol=announce,
        )
    finally:
        publisher.close(linger_ms=1000)
        ctx.term()
        ingestor.log.close()
        if ingestor.cache is not None:
            ingestor.cache.close()
        ingestor.engine.dispose()
    _print(summary, args.json)
    return 0 if summary.status == "ok" else 1


def _print(summary: BackfillSummary, as_json: bool) -> None:
    if as_json:
        data = msgspec.to_builtins(
            {
                "run_id": summary.run_id,
                "status": summary.status,
                "source": summary.source,
                "interval": summary.interval,
                "start": summary.start,
                "end": summary.end,
                "rows": summary.rows,
                "notice": summary.notice,
                "symbols": [asdict(o) for o in summary.outcomes],
            }
        )
        sys.stdout.write(msgspec.json.encode(data).decode() + "\n")
        return
    if summary.notice:
        print(f"note: {summary.notice}")
    print(f"{'SYMBOL':<12} {'ROWS':>8} {'RECEIVED':>9} {'REJECTED':>9}  RESULT")
    for o in summary.outcomes:
        print(f"{o.symbol:<12} {o.rows:>8} {o.received:>9} {o.rejected:>9}  {o.error or 'ok'}")
    status = summary.status.upper()
    print(f"run {summary.run_id}: {status}, {summary.rows} bar(s) written from {summary.source}")

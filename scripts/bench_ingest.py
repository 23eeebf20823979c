"""Bar ingestion throughput: QSuite's idempotent upsert against the raw way of loading
the same rows, plus the market-data log.

Every case loads the same fixed-seed rows (a random walk of several symbols, one-minute
bars, in :data:`engine.persistence.bars.BAR_COLUMNS` order), into empty tables:

- ``pg``:      ``upsert_bars`` into the migrated ``bars`` table, vs raw psycopg
               ``COPY … FROM STDIN (FORMAT BINARY)`` of the same tuples into
               ``bars_raw`` (``CREATE TABLE … (LIKE bars INCLUDING ALL)``: same columns,
               same primary key), in one transaction each, on a fresh schema with a
               random name that is dropped at the end. Target: >= 0.7x.
- ``sqlite``:  ``upsert_bars`` vs SQLAlchemy Core ``insert(bars)`` executemany of the
               same rows (as dicts, one transaction), each on its own new file opened
               by ``app.database.make_engine`` (WAL, synchronous=NORMAL). Target: >= 0.8x.
- ``reingest``: ``upsert_bars`` of the same rows again (every row already stored: the
               idempotent no-op a re-run backfill is), on both databases.
- ``mdlog``:   :class:`feeds.mdlog.MarketDataLog` appends of the rows as ``BarClosed``
               events in batches of ``--log-batch`` (encode + frame + write, default
               fsync policy), and :func:`feeds.mdlog.read_all` of them back.

Timings include what the caller would pay (building SQLAlchemy's dicts for the raw
insert; the dedup and staging inside ``upsert_bars``) and the commit. On PostgreSQL a
``CHECKPOINT`` (not timed) precedes every timed load, so no side pays for the WAL the
other one wrote. With ``--repeat`` > 1 each case runs again on emptied tables,
alternating which side goes first; the ratio is that of the median times, with the
range of the per-run ratios and the ratio of the best times (the least disturbed by
other load on the machine).

    python scripts/bench_ingest.py [--rows 1000000] [--repeat 1] [--pg-url URL] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import numpy as np  # noqa: E402
from loguru import logger  # noqa: E402
from sqlalchemy import Engine, Table, insert, text  # noqa: E402

from app.database import make_engine, masked, upgrade  # noqa: E402
from engine.bus.events import BarClosed  # noqa: E402
from engine.persistence.bars import BAR_COLUMNS, upsert_bars  # noqa: E402
from engine.persistence.models import Bar  # noqa: E402
from engine.stats import StatsRegistry  # noqa: E402
from feeds.mdlog import MarketDataLog, ReadCounts, read_all  # noqa: E402

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SYMBOLS = (
    "AAPL",
    "MSFT",
    "NVDA",
    "AMZN",
    "VOD.L",
    "HSBA.L",
    "SHOP.TO",
    "RY.TO",
    "SAP.DE",
    "7203.T",
)
MINUTE_NS = 60 * 1_000_000_000
T0 = 1_704_067_200 * 1_000_000_000  # 2024-01-01 00:00 UTC
SEED = 20240101
TARGETS = {"pg": 0.7, "sqlite": 0.8}
BARS: Table = Bar.__table__  # type: ignore[assignment]
_COPY_TYPES = ["text", "text", "int8", *["float8"] * 5, "text", "int2"]


# -- data ------------------------------------------------------------------------------


def make_rows(n: int, seed: int = SEED) -> list[tuple[Any, ...]]:
    """``n`` one-minute bars spread over :data:`SYMBOLS`: a random walk per symbol with
    consistent OHLC, integer volumes, a few adjusted bars."""
    rng = np.random.default_rng(seed)
    per_symbol = -(-n // len(SYMBOLS))
    rows: list[tuple[Any, ...]] = []
    for index, symbol in enumerate(SYMBOLS):
        count = min(per_symbol, n - len(rows))
        if count <= 0:
            break
        start = 20.0 + 40.0 * index
        returns = rng.normal(0.0, 0.0008, count)
        close = start * np.exp(np.cumsum(returns))
        open_ = np.concatenate(([start], close[:-1]))
        spread = np.abs(rng.normal(0.0, 0.0005, count)) * close
        high = np.maximum(open_, close) + spread
        low = np.minimum(open_, close) - spread
        volume = rng.integers(100, 50_000, count).astype(np.float64)
        flags = (rng.random(count) < 0.01).astype(np.int64) * 2  # BarFlag.ADJUSTED
        ts = T0 + np.arange(count, dtype=np.int64) * MINUTE_NS
        rows.extend(
            zip(
                [symbol] * count,
                ["1m"] * count,
                ts.tolist(),
                np.round(open_, 4).tolist(),
                np.round(high, 4).tolist(),
                np.round(low, 4).tolist(),
                np.round(close, 4).tolist(),
                volume.tolist(),
                ["yahoo"] * count,
                flags.tolist(),
                strict=True,
            )
        )
    return rows


def make_events(rows: list[tuple[Any, ...]]) -> list[BarClosed]:
    return [
        BarClosed(
            ts_event=ts + MINUTE_NS,
            symbol=symbol,
            interval=interval,
            ts=ts,
            open=o,
            high=h,
            low=lo,
            close=c,
            volume=v,
            origin="yahoo",
            flags=flags,
        )
        for symbol, interval, ts, o, h, lo, c, v, _, flags in rows
    ]


# -- timing ----------------------------------------------------------------------------


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - started, result


def rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds > 0 else float("inf")


def summarize(name: str, rows: int, ours: list[float], raw: list[float]) -> dict[str, Any]:
    ratios = [r / o for o, r in zip(ours, raw, strict=True)]  # rates: (rows/o)/(rows/r)
    ours_s, raw_s = statistics.median(ours), statistics.median(raw)
    return {
        "case": name,
        "rows": rows,
        "qsuite_s": ours_s,
        "raw_s": raw_s,
        "qsuite_rows_per_s": rate(rows, ours_s),
        "raw_rows_per_s": rate(rows, raw_s),
        "ratio": raw_s / ours_s,
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "ratio_best": min(raw) / min(ours),
        "qsuite_runs_s": ours,
        "raw_runs_s": raw,
        "target": TARGETS[name],
        "met": raw_s / ours_s >= TARGETS[name],
    }


# -- PostgreSQL --------------------------------------------------------------------------


def copy_raw(engine: Engine, rows: list[tuple[Any, ...]]) -> None:
    columns = ", ".join(BAR_COLUMNS)
    with engine.connect() as conn:
        driver: Any = conn.connection.driver_connection
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY bars_raw ({columns}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(_COPY_TYPES)
            for row in rows:
                copy.write_row(row)
        conn.commit()


def checkpoint(engine: Engine) -> None:
    """Start each timed load with no dirty buffers and fresh WAL, so one side does not
    pay for the checkpoint the other one caused."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("CHECKPOINT"))


def bench_pg(url: str, rows: list[tuple[Any, ...]], repeat: int) -> dict[str, Any]:
    schema = f"qsuite_bench_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
        try:
            upgrade(engine)
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE bars_raw (LIKE bars INCLUDING ALL)"))
            ours: list[float] = []
            raw: list[float] = []
            again: list[float] = []
            for run in range(repeat):
                with engine.begin() as conn:
                    conn.execute(text("TRUNCATE bars, bars_raw"))
                order = ("raw", "ours") if run % 2 == 0 else ("ours", "raw")
                for side in order:
                    checkpoint(engine)
                    if side == "raw":
                        raw.append(timed(copy_raw, engine, rows)[0])
                    else:
                        seconds, written = timed(upsert_bars, engine, rows)
                        assert written == len(rows), f"upsert wrote {written} of {len(rows)}"
                        ours.append(seconds)
                checkpoint(engine)
                seconds, written = timed(upsert_bars, engine, rows)
                assert written == 0, f"re-ingest wrote {written} rows"
                again.append(seconds)
        finally:
            engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()
    result = summarize("pg", len(rows), ours, raw)
    result["reingest_s"] = statistics.median(again)
    result["reingest_runs_s"] = again
    result["reingest_rows_per_s"] = rate(len(rows), result["reingest_s"])
    return result


# -- SQLite ------------------------------------------------------------------------------


def insert_raw(engine: Engine, rows: list[tuple[Any, ...]]) -> None:
    with engine.begin() as conn:
        conn.execute(insert(BARS), [dict(zip(BAR_COLUMNS, row, strict=True)) for row in rows])


def bench_sqlite(directory: Path, rows: list[tuple[Any, ...]], repeat: int) -> dict[str, Any]:
    ours: list[float] = []
    raw: list[float] = []
    again: list[float] = []
    for run in range(repeat):
        engines = {
            side: make_engine(f"sqlite:///{directory / f'{side}-{run}.db'}")
            for side in ("raw", "ours")
        }
        try:
            for engine in engines.values():
                upgrade(engine)
            order = ("raw", "ours") if run % 2 == 0 else ("ours", "raw")
            for side in order:
                engine = engines[side]
                if side == "raw":
                    raw.append(timed(insert_raw, engine, rows)[0])
                else:
                    seconds, written = timed(upsert_bars, engine, rows)
                    assert written == len(rows), f"upsert wrote {written} of {len(rows)}"
                    ours.append(seconds)
            seconds, written = timed(upsert_bars, engines["ours"], rows)
            assert written == 0, f"re-ingest wrote {written} rows"
            again.append(seconds)
        finally:
            for engine in engines.values():
                engine.dispose()
    result = summarize("sqlite", len(rows), ours, raw)
    result["reingest_s"] = statistics.median(again)
    result["reingest_runs_s"] = again
    result["reingest_rows_per_s"] = rate(len(rows), result["reingest_s"])
    return result


# -- market-data log -------------------------------------------------------------------


def bench_mdlog(directory: Path, events: list[BarClosed], batch: int) -> dict[str, Any]:
    stats = StatsRegistry()

    def append() -> None:
        with MarketDataLog(directory, "bench", stats=stats) as log:
            for start in range(0, len(events), batch):
                log.append_many(events[start : start + batch])

    append_s, _ = timed(append)
    size = sum(path.stat().st_size for path in directory.glob("*.mdlog"))
    counts = ReadCounts()
    read_s, read_n = timed(lambda: sum(1 for _ in read_all(directory, counts=counts, stats=stats)))
    assert read_n == len(events) and counts.corrupt == 0
    return {
        "case": "mdlog",
        "events": len(events),
        "batch": batch,
        "append_s": append_s,
        "append_events_per_s": rate(len(events), append_s),
        "bytes": size,
        "append_mb_per_s": size / append_s / 1e6 if append_s else 0.0,
        "read_s": read_s,
        "read_events_per_s": rate(len(events), read_s),
    }


# -- main --------------------------------------------------------------------------------


def _print(result: dict[str, Any]) -> None:
    print(f"rows: {result['rows']:,}  symbols: {len(SYMBOLS)}  repeat: {result['repeat']}")
    print(
        f"{'case':8} {'QSuite rows/s':>14} {'raw rows/s':>12} {'ratio':>7} {'range':>13} "
        f"{'best':>6} {'target':>7}"
    )
    for case in result["cases"]:
        if case["case"] in TARGETS:
            spread = f"{case['ratio_min']:.2f}-{case['ratio_max']:.2f}"
            print(
                f"{case['case']:8} {case['qsuite_rows_per_s']:>14,.0f} "
                f"{case['raw_rows_per_s']:>12,.0f} {case['ratio']:>6.2f}x {spread:>13} "
                f"{case['ratio_best']:>5.2f}x "
                f"{'>= ' + str(case['target']):>7} {'ok' if case['met'] else 'MISSED'}"
            )
    for case in result["cases"]:
        if "reingest_s" in case:
            print(
                f"re-ingest {case['case']}: {case['reingest_s']:.2f} s "
                f"({case['reingest_rows_per_s']:,.0f} rows/s, 0 rows written)"
            )
        if case["case"] == "mdlog":
            print(
                f"mdlog append: {case['append_events_per_s']:,.0f} events/s "
                f"({case['append_mb_per_s']:.0f} MB/s, batches of {case['batch']}); "
                f"read back: {case['read_events_per_s']:,.0f} events/s"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--pg-url", default=os.environ.get("QSUITE_TEST_PG_URL") or DEFAULT_PG_URL)
    parser.add_argument("--log-batch", type=int, default=1000, help="events per log append")
    parser.add_argument(
        "--only", choices=("pg", "sqlite", "mdlog"), action="append", help="run only these"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.rows < 1 or args.repeat < 1:
        parser.error("--rows and --repeat must be positive")
    logger.remove()  # the benchmark's output is the table
    only = set(args.only or ("pg", "sqlite", "mdlog"))

    rows = make_rows(args.rows)
    cases: list[dict[str, Any]] = []
    if "pg" in only:
        cases.append(bench_pg(args.pg_url, rows, args.repeat))
    with tempfile.TemporaryDirectory(prefix="qsuite-bench-") as tmp:
        if "sqlite" in only:
            cases.append(bench_sqlite(Path(tmp), rows, args.repeat))
        if "mdlog" in only:
            events = make_events(rows)
            cases.append(bench_mdlog(Path(tmp) / "mdlog", events, args.log_batch))
    result = {
        "rows": len(rows),
        "symbols": len(SYMBOLS),
        "repeat": args.repeat,
        "pg_url": masked(args.pg_url),
        "cases": cases,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result)
    return 0 if all(case.get("met", True) for case in cases) else 1


if __name__ == "__main__":
    raise SystemExit(main())

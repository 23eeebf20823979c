"""Replay throughput: a bar file through the feed's whole ingest path and the bus.

One run, three measurements on the same generated file (``--bars`` bars over
``--symbols`` symbols, 1m, as CSV):

``read``     ReplaySource: parse and normalize the file (bars/s).
``ingest``   every bar through :class:`feeds.ingest.Ingestor` (market-data log, SQLite
             bar store, price cache) with publishing switched off (bars/s).
``bus``      the same, publishing every bar as ``BarClosed`` through a BusProxy to a
             subscriber in another thread, timed until the subscriber has every bar
             (bars/s end to end). Bars go to the ingest path in the feed's full-speed
             replay batches (``feeds.service.REPLAY_BATCH``).

    python scripts/bench_replay.py [--bars 200000] [--symbols 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import zmq  # noqa: E402
from loguru import logger  # noqa: E402

from app import database  # noqa: E402
from app.settings import load_settings  # noqa: E402
from engine.bus import topics  # noqa: E402
from engine.bus.proxy import BusProxy  # noqa: E402
from engine.bus.publisher import Publisher  # noqa: E402
from engine.bus.subscriber import Subscriber, wait_for_subscription  # noqa: E402
from engine.persistence.bars import BAR_COLUMNS  # noqa: E402
from engine.stats import StatsRegistry  # noqa: E402
from feeds.cache import PriceCache  # noqa: E402
from feeds.ingest import Ingestor  # noqa: E402
from feeds.mdlog import MarketDataLog  # noqa: E402
from feeds.replay import ReplaySource  # noqa: E402
from feeds.service import REPLAY_BATCH as BATCH  # noqa: E402

MIN = 60 * 1_000_000_000


def write_file(path: Path, bars: int, symbols: int) -> None:
    rng = np.random.default_rng(11)
    per = bars // symbols
    start = 1_704_067_200 * 1_000_000_000  # 2024-01-01
    frames = []
    for s in range(symbols):
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, per)))
        open_ = np.concatenate([[100.0], close[:-1]])
        spread = np.abs(rng.normal(0, 0.0005, per)) * close
        frames.append(
            pd.DataFrame(
                {
                    "timestamp": pd.to_datetime(start + np.arange(per) * MIN, utc=True),
                    "symbol": f"S{s:03d}",
                    "open": open_,
                    "high": np.maximum(open_, close) + spread,
                    "low": np.minimum(open_, close) - spread,
                    "close": close,
                    "volume": rng.integers(100, 10_000, per).astype(float),
                }
            )
        )
    pd.concat(frames).to_csv(path, index=False)


def pipeline(work: Path, name: str) -> Ingestor:
    settings = load_settings(environ={"QSUITE__APP__DATA_DIR": str(work / name)})
    engine = database.open_database(settings)
    cache = PriceCache(work / name / "cache", stats=StatsRegistry())
    return Ingestor(
        engine, MarketDataLog(work / name / "mdlog", "bench", stats=StatsRegistry()), cache=cache
    )


def ingest_all(ingestor: Ingestor, rows: list[tuple[Any, ...]], publish: Any) -> None:
    for i in range(0, len(rows), BATCH):
        frame = pd.DataFrame(rows[i : i + BATCH], columns=list(BAR_COLUMNS))
        for (symbol, interval), raw in frame.groupby(["symbol", "interval"], sort=False):
            ingestor.ingest(
                raw, symbol=str(symbol), interval=str(interval), origin="replay", publish=publish
            )


def run(bars: int, symbols: int) -> dict[str, Any]:
    logger.remove()
    with tempfile.TemporaryDirectory(prefix="qsbench") as tmp:
        work = Path(tmp)
        path = work / "bars.csv"
        write_file(path, bars, symbols)
        started = time.perf_counter()
        source = ReplaySource(path, interval="1m", stats=StatsRegistry())
        rows = [tuple(bar) for bar in source.replay(None)]
        read_s = time.perf_counter() - started

        quiet = pipeline(work, "ingest")
        started = time.perf_counter()
        ingest_all(quiet, rows, None)
        ingest_s = time.perf_counter() - started

        ctx = zmq.Context()
        proxy = BusProxy(
            ctx, f"ipc://{work}/xsub", f"ipc://{work}/xpub", hwm=len(rows) + 10
        ).start()
        publisher = Publisher(
            ctx, proxy.xsub_address, "bench", hwm=len(rows) + 10, stats=StatsRegistry()
        )
        subscriber = Subscriber(
            ctx, proxy.xpub_address, (), hwm=len(rows) + 10, stats=StatsRegistry()
        )
        wait_for_subscription(publisher, subscriber)
        subscriber.subscribe(topics.BARS)
        wait_for_subscription(publisher, subscriber)
        received = 0
        done = threading.Event()

        def consume() -> None:
            nonlocal received
            deadline = time.monotonic() + 600
            while received < len(rows) and time.monotonic() < deadline:
                if subscriber.recv(timeout_ms=1000) is not None:
                    received += 1
            done.set()

        consumer = threading.Thread(target=consume)
        live = pipeline(work, "bus")
        started = time.perf_counter()
        consumer.start()
        ingest_all(live, rows, publisher.publish)
        done.wait(600)
        bus_s = time.perf_counter() - started
        consumer.join()
        subscriber.close()
        publisher.close()
        proxy.stop()
        ctx.term()
        for ingestor in (quiet, live):
            ingestor.log.close()
            assert ingestor.cache is not None
            ingestor.cache.close()
            ingestor.engine.dispose()
    n = len(rows)
    return {
        "bars": n,
        "symbols": symbols,
        "read_bars_per_s": n / read_s,
        "ingest_bars_per_s": n / ingest_s,
        "bus_bars_per_s": n / bus_s,
        "received": received,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.bars, args.symbols)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['bars']:,} 1m bars over {result['symbols']} symbols (CSV, SQLite store)")
        print(f"read + normalize      {result['read_bars_per_s']:>12,.0f} bars/s")
        print(f"ingest (log, store)   {result['ingest_bars_per_s']:>12,.0f} bars/s")
        received = f"({result['received']:,} received)"
        print(f"ingest + bus          {result['bus_bars_per_s']:>12,.0f} bars/s  {received}")
    return 0 if result["received"] == result["bars"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

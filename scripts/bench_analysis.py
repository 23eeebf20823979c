"""Analysis throughput: closed bars through the analysis service for many symbols.

The real :class:`engine.analysis.AnalysisService` with the default indicator set and
signal rules (``config/default.toml``), its events published to a counter instead of a
socket, SQLite in a temp dir. Every symbol is first warmed (``--warm`` stored bars
each), then ``--bars`` new bars per symbol arrive interleaved across symbols, as a live
minute does. Reported: bars/s of the per-bar path (indicators, signals, events), and the
time to store the indicator values those bars produced.

    python scripts/bench_analysis.py [--symbols 500] [--bars 60] [--warm 300] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from loguru import logger  # noqa: E402

from app import database  # noqa: E402
from app.settings import load_settings  # noqa: E402
from engine.analysis import AnalysisService  # noqa: E402
from engine.bus.events import BarClosed  # noqa: E402
from engine.clock import LiveClock  # noqa: E402
from engine.indicators.registry import default_registry  # noqa: E402
from engine.persistence.bars import upsert_bars  # noqa: E402
from engine.persistence.indicators import upsert_indicator_values  # noqa: E402
from engine.stats import StatsRegistry  # noqa: E402

MIN = 60 * 1_000_000_000
T0 = 1_704_067_200 * 1_000_000_000


class CountingContext:
    """Just enough of a ServiceContext: publishing counts, nothing else runs."""

    process = "analysis"
    clock = LiveClock()
    stats = StatsRegistry()

    def __init__(self) -> None:
        self.published = 0

    def publish(self, topic: str, event: Any) -> Any:
        self.published += 1
        return event

    def register_command(self, *_: Any) -> None: ...
    def subscribe(self, *_: Any) -> None: ...
    def call_every(self, *_: Any) -> None: ...
    def call_soon_threadsafe(self, fn: Any) -> None:
        fn()

    def run_in_worker(self, *_: Any) -> None: ...


def run(symbols: int, bars: int, warm: int) -> dict[str, Any]:
    logger.remove()
    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory(prefix="qsbench") as tmp:
        settings = load_settings(environ={"QSUITE__APP__DATA_DIR": tmp})
        engine = database.open_database(settings)
        paths = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, (symbols, warm + bars)), axis=1))
        rows = [
            (f"S{s:04d}", "1m", T0 + i * MIN, p, p * 1.001, p * 0.999, p, 1000.0, "replay", 0)
            for s in range(symbols)
            for i, p in enumerate(paths[s, :warm].tolist())
        ]
        upsert_bars(engine, rows)
        service = AnalysisService(settings.analysis, engine=engine, registry=default_registry())
        ctx = CountingContext()
        service.start(ctx)  # type: ignore[arg-type]
        started = time.perf_counter()
        for s in range(symbols):
            service._track(f"S{s:04d}", "1m")
        warm_s = time.perf_counter() - started
        events = [
            BarClosed(
                ts_event=T0 + (i + 1) * MIN,
                symbol=f"S{s:04d}",
                interval="1m",
                ts=T0 + i * MIN,
                open=p,
                high=p * 1.001,
                low=p * 0.999,
                close=p,
                volume=1000.0,
                origin="replay",
            )
            for i in range(warm, warm + bars)
            for s in range(symbols)
            for p in [float(paths[s, i])]
        ]
        started = time.perf_counter()
        for event in events:
            service._on_bar("md.bar", event)
        bar_s = time.perf_counter() - started
        pending = len(service._pending)
        started = time.perf_counter()
        upsert_indicator_values(engine, service._pending)
        store_s = time.perf_counter() - started
        engine.dispose()
    n = len(events)
    return {
        "symbols": symbols,
        "bars": n,
        "bars_per_s": n / bar_s,
        "us_per_bar": bar_s / n * 1e6,
        "events_published": ctx.published,
        "warm_s_per_symbol": warm_s / symbols,
        "values_stored": pending,
        "values_per_s_stored": pending / store_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--bars", type=int, default=60)
    parser.add_argument("--warm", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    r = run(args.symbols, args.bars, args.warm)
    if args.json:
        print(json.dumps(r))
        return 0
    print(f"{r['symbols']} symbols, {r['bars']:,} bars, default indicators and rules")
    detail = f"({r['us_per_bar']:.0f} µs/bar, {r['events_published']:,} events)"
    print(f"per-bar path      {r['bars_per_s']:>10,.0f} bars/s {detail}")
    print(f"warm-up           {r['warm_s_per_symbol'] * 1000:>10,.1f} ms per symbol")
    stored = f"({r['values_stored']:,} values)"
    print(f"store values      {r['values_per_s_stored']:>10,.0f} values/s {stored}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Indicator engine speed: streaming and batch, against raw TA-Lib (and talipp).

(a) Streaming, one symbol: RSI(14) + MACD(12,26,9) + BBANDS(20,2,2), one closed bar at
    a time, after warming all of them on the same history:

    - raw:    the three ``talib.stream`` handles, ``update(close)`` called directly;
    - engine: ``IndicatorBank.step(bar)``, the engine's hot path: it also rejects stale
              and non-finite bars, isolates a failing indicator, and returns each
              indicator's values in a tuple;
    - update: ``IndicatorBank.update(bar)``, the same returning ``{key: {output: value}}``
              dicts (what event builders want);
    - talipp: talipp's incremental ``RSI``, ``MACD`` and ``BB``, ``add(close)``.

    Every mode gets the same ``Bar`` tuples. The bars are cut into chunks and the modes
    take turns chunk by chunk (each keeping its own state), so machine noise hits them
    alike; the figure is the median over chunks of µs per bar, and the ratio is the
    median of the per-chunk ratios. ``preview`` (a forming bar) is timed against the
    raw handles' ``peek`` the same way.

(b) Batch over 1,000,000 bars: ``IndicatorBank.batch(bars)`` for the same three against
    ``talib.RSI``, ``talib.MACD`` and ``talib.BBANDS`` on the close array, each side
    holding its output arrays until its clock stops; median (and best) of ``--repeat``
    interleaved runs, the ratio being the median of per-run ratios.

    .venv/bin/python scripts/bench_indicators.py [--bars 200000] [--batch-bars 1000000]
                                                 [--repeat 7] [--json]

talipp is optional (``pip install talipp``); without it that column is skipped.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import numpy as np  # noqa: E402
import talib  # noqa: E402
from talib import stream as talib_stream  # noqa: E402

from engine.indicators import Bar, Bars, IndicatorBank, default_registry  # noqa: E402
from engine.stats import StatsRegistry  # noqa: E402

try:  # optional: pip install talipp
    _talipp: Any = importlib.import_module("talipp.indicators")
    TalippRSI, TalippMACD, TalippBB = _talipp.RSI, _talipp.MACD, _talipp.BB
except ImportError:
    TalippRSI = TalippMACD = TalippBB = None

WARM = 1_000
CHUNK = 2_000
SPECS = ("rsi_14", "macd_12_26_9", "bbands_20_2p0_2p0")

Run = Callable[[list[Bar]], float]


def make_bars(n: int, seed: int = 1) -> Bars:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, n)))
    spread = np.abs(rng.normal(0.0, 0.05, n))
    ts = np.arange(n, dtype=np.int64) * 60_000_000_000
    volume = rng.integers(100, 10_000, n).astype(np.float64)
    return Bars.of(ts, close, close + spread, close - spread, close, volume)


def as_bars(bars: Bars, start: int) -> list[Bar]:
    cols = [bars.ts.tolist(), *(getattr(bars, f).tolist() for f in ("open", "high", "low"))]
    cols += [bars.close.tolist(), bars.volume.tolist()]
    return [Bar(*row) for row in zip(*cols, strict=True)][start:]


# --- (a) streaming ---------------------------------------------------------------------


def raw_handles(history: np.ndarray) -> tuple[Any, Any, Any]:
    return (
        talib_stream.RSI(history, timeperiod=14),
        talib_stream.MACD(history, fastperiod=12, slowperiod=26, signalperiod=9),
        talib_stream.BBANDS(history, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=0),
    )


def raw_run(history: np.ndarray, peek: bool) -> Run:
    rsi, macd, bb = raw_handles(history)
    fr, fm, fb = (rsi.peek, macd.peek, bb.peek) if peek else (rsi.update, macd.update, bb.update)

    def run(chunk: list[Bar]) -> float:
        t0 = time.perf_counter()
        for bar in chunk:
            close = bar.close
            fr(close)
            fm(close)
            fb(close)
        return time.perf_counter() - t0

    return run


def engine_bank(history: Bars) -> IndicatorBank:
    registry = default_registry(stats=StatsRegistry())
    bank = IndicatorBank(
        "BENCH", "1m", [registry.from_key(k) for k in SPECS], stats=StatsRegistry()
    )
    bank.warm(history)
    return bank


def engine_run(history: Bars, mode: str) -> Run:
    bank = engine_bank(history)
    step = {"preview": bank.preview, "update": bank.update, "step": bank.step}[mode]

    def run(chunk: list[Bar]) -> float:
        t0 = time.perf_counter()
        for bar in chunk:
            step(bar)
        return time.perf_counter() - t0

    return run


def talipp_run(history: np.ndarray) -> Run:
    values = history.tolist()
    rsi, macd, bb = TalippRSI(14, values), TalippMACD(12, 26, 9, values), TalippBB(20, 2.0, values)
    fr, fm, fb = rsi.add, macd.add, bb.add

    def run(chunk: list[Bar]) -> float:
        t0 = time.perf_counter()
        for bar in chunk:
            close = bar.close
            fr(close)
            fm(close)
            fb(close)
        return time.perf_counter() - t0

    return run


def interleave(runs: dict[str, Run], bars: list[Bar]) -> dict[str, list[float]]:
    """µs per bar of every mode, chunk by chunk, modes taking turns."""
    per_bar: dict[str, list[float]] = {name: [] for name in runs}
    for start in range(0, len(bars) - CHUNK + 1, CHUNK):
        chunk = bars[start : start + CHUNK]
        for name, run in runs.items():
            per_bar[name].append(run(chunk) / len(chunk) * 1e6)
    return per_bar


def ratio(per_bar: dict[str, list[float]], mode: str, base: str) -> float:
    return statistics.median(a / b for a, b in zip(per_bar[mode], per_bar[base], strict=True))


def bench_streaming(n: int) -> dict[str, Any]:
    data = make_bars(n + WARM)
    history = data[:WARM]
    bars = as_bars(data, WARM)
    runs: dict[str, Run] = {
        "raw": raw_run(history.close, False),
        "engine": engine_run(history, "step"),
        "update": engine_run(history, "update"),
    }
    if TalippRSI is not None:
        runs["talipp"] = talipp_run(history.close)
    update = interleave(runs, bars)
    preview = interleave(
        {"raw": raw_run(history.close, True), "engine": engine_run(history, "preview")}, bars
    )
    out: dict[str, Any] = {
        "bars": len(bars),
        "chunk": CHUNK,
        "update_us": {k: statistics.median(v) for k, v in update.items()},
        "update_best_us": {k: min(v) for k, v in update.items()},
        "engine_vs_raw": ratio(update, "engine", "raw"),
        "update_vs_raw": ratio(update, "update", "raw"),
        "preview_us": {k: statistics.median(v) for k, v in preview.items()},
        "preview_engine_vs_raw_peek": ratio(preview, "engine", "raw"),
    }
    if "talipp" in update:
        out["engine_vs_talipp"] = ratio(update, "engine", "talipp")
        out["talipp_vs_engine"] = ratio(update, "talipp", "engine")
    out["parity_max_abs_diff"] = parity(data)
    return out


def parity(data: Bars) -> float:
    """Largest |engine streamed - TA-Lib batch| over the run (a sanity check)."""
    bank = engine_bank(data[:WARM])
    last: dict[str, dict[str, float]] = {}
    for bar in as_bars(data, WARM):
        last = bank.update(bar)
    close = data.close
    want = {
        "rsi_14": {"value": talib.RSI(close, 14)[-1]},
        "macd_12_26_9": dict(
            zip(
                ("macd", "macdsignal", "macdhist"),
                (a[-1] for a in talib.MACD(close, 12, 26, 9)),
                strict=True,
            )
        ),
        "bbands_20_2p0_2p0": dict(
            zip(
                ("upperband", "middleband", "lowerband"),
                (a[-1] for a in talib.BBANDS(close, 20, 2.0, 2.0, talib.MA_Type.SMA)),
                strict=True,
            )
        ),
    }
    return max(abs(last[k][o] - v) for k, d in want.items() for o, v in d.items())


# --- (b) batch -------------------------------------------------------------------------


def bench_batch(n: int, repeat: int) -> dict[str, Any]:
    data = make_bars(n, seed=2)
    close = data.close
    bank = engine_bank(data[:WARM])

    def raw() -> Any:
        return (
            talib.RSI(close, timeperiod=14),
            talib.MACD(close, fastperiod=12, slowperiod=26, signalperiod=9),
            talib.BBANDS(close, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=talib.MA_Type.SMA),
        )

    def engine() -> Any:
        return bank.batch(data)

    times: dict[str, list[float]] = {"raw": [], "engine": []}
    raw()
    engine()  # warm caches
    for _ in range(repeat):
        for name, fn in (("raw", raw), ("engine", engine)):
            gc.collect()
            t0 = time.perf_counter()
            result = fn()  # both keep their outputs until the clock stops
            times[name].append((time.perf_counter() - t0) * 1e3)
            del result
    ratios = [e / r for e, r in zip(times["engine"], times["raw"], strict=True)]
    return {
        "bars": n,
        "ms_median": {k: statistics.median(v) for k, v in times.items()},
        "ms_best": {k: min(v) for k, v in times.items()},
        "engine_vs_raw_median": statistics.median(ratios),
        "engine_vs_raw_best": min(times["engine"]) / min(times["raw"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=200_000, help="streamed bars")
    parser.add_argument("--batch-bars", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7, help="batch runs per mode")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = {
        "streaming": bench_streaming(args.bars),
        "batch": bench_batch(args.batch_bars, args.repeat),
        "talib": talib.__version__,
        "python": sys.version.split()[0],
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    report(result)


def report(result: dict[str, Any]) -> None:
    s, b = result["streaming"], result["batch"]
    us, pv, ms = s["update_us"], s["preview_us"], b["ms_median"]
    lines = [
        f"streaming RSI+MACD+BBANDS, {s['bars']:,} bars, median of {CHUNK:,}-bar chunks",
        f"  raw TA-Lib handles   {us['raw']:.3f} us/bar",
        f"  IndicatorBank.step   {us['engine']:.3f} us/bar  {s['engine_vs_raw']:.2f}x raw"
        " (target <= 1.5x)",
        f"  IndicatorBank.update {us['update']:.3f} us/bar  {s['update_vs_raw']:.2f}x raw"
        " (with the result dicts)",
    ]
    if "talipp" in us:
        lines.append(
            f"  talipp               {us['talipp']:.3f} us/bar  engine "
            f"{s['talipp_vs_engine']:.1f}x faster (target: faster)"
        )
    lines += [
        f"  preview: raw peek {pv['raw']:.3f}, IndicatorBank.preview {pv['engine']:.3f} us/bar"
        f"  {s['preview_engine_vs_raw_peek']:.2f}x",
        f"  last bar vs TA-Lib batch: max |diff| = {s['parity_max_abs_diff']:.3g}",
        f"batch over {b['bars']:,} bars, median of runs",
        f"  raw talib calls      {ms['raw']:.2f} ms",
        f"  IndicatorBank.batch  {ms['engine']:.2f} ms  {b['engine_vs_raw_median']:.3f}x raw"
        " (target <= 1.2x)",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()

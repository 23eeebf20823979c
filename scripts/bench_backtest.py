"""Backtest throughput: the runner (the live analysis service, signal rules, risk gate
and bar broker on a simulated clock) against a plain Python loop doing the same work.

One run, on a seeded random walk of ``--bars`` 1m bars over ``--symbols`` symbols:

``idle``     a strategy that does nothing, vs a loop that iterates the bars in
             ``(ts, symbol)`` order and records the equity of each timestamp (bars/s).
``ma``       ``ma_crossover`` with ``--fast``/``--slow`` (defaults trade about every 10
             bars), vs a loop computing both rolling means with running sums, the same
             golden/death cross and the same fill rule (market order at the next bar's
             open; buy ``floor(equity / close)`` units at the signal bar's close, cut to
             what the cash pays at the fill; sell the whole position). It reports both
             fill counts, which should agree, and the final equities.
``measure``  :func:`engine.backtest.analysis.performance_of` of the ``ma`` run.
``sweep``    :func:`engine.backtest.sweep.sweep` of a 12-combination ``ma_crossover`` grid
             on ``--sweep-bars`` bars of one symbol (passed as a DataFrame), with 1 and 2
             workers: backtests/s, loading and the pool's start included, and the CPU
             seconds per backtest (this process and its workers) — on a loaded
             machine the wall-clock gain of the second worker depends on a free core.

Ratios are runner time / plain-loop time (how many times slower the runner is).

    python scripts/bench_backtest.py [--bars 200000] [--symbols 1] [--repeat 1] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from engine.backtest.analysis import performance_of  # noqa: E402
from engine.backtest.registry import register  # noqa: E402
from engine.backtest.runner import BacktestConfig, run  # noqa: E402
from engine.backtest.strategy import Strategy, StrategyParams  # noqa: E402
from engine.backtest.sweep import sweep  # noqa: E402
from engine.persistence.bars import BarRow  # noqa: E402

MIN = 60 * 1_000_000_000
START = 1_704_067_200 * 1_000_000_000  # 2024-01-01
CASH = 100_000.0
GRID = {"fast": [4, 5, 10, 20], "slow": [30, 50, 80]}


class NothingParams(StrategyParams, frozen=True, kw_only=True):
    pass


@register
class Nothing(Strategy[NothingParams]):
    """Sees every bar and does nothing."""

    name = "bench_nothing"
    params_type = NothingParams


def walk(bars: int, symbols: int, seed: int = 7) -> list[BarRow]:
    rng = np.random.default_rng(seed)
    per = bars // symbols
    out: list[BarRow] = []
    for s in range(symbols):
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, per)))
        open_ = np.concatenate([[100.0], close[:-1]])
        high = np.maximum(open_, close) * 1.0005
        low = np.minimum(open_, close) * 0.9995
        name = f"S{s:02d}"
        for i, (o, h, lo, c) in enumerate(
            zip(open_.tolist(), high.tolist(), low.tolist(), close.tolist(), strict=True)
        ):
            out.append(BarRow(name, "1m", START + i * MIN, o, h, lo, c, 1000.0, "replay", 0))
    return out


def plain_idle(bars: list[BarRow]) -> list[float]:
    ordered = sorted(bars, key=lambda b: (b.ts, b.symbol))
    equity: list[float] = []
    for i, bar in enumerate(ordered):
        if i + 1 == len(ordered) or ordered[i + 1].ts != bar.ts:
            equity.append(CASH)
    return equity


def plain_ma(bars: list[BarRow], fast: int, slow: int) -> tuple[int, float]:
    """Fills and final equity of the crossover in plain Python (module docstring)."""
    ordered = sorted(bars, key=lambda b: (b.ts, b.symbol))
    cash, fills = CASH, 0
    held: dict[str, int] = {}
    last: dict[str, float] = {}
    pending: dict[str, tuple[str, float]] = {}  # symbol → (side, close it was decided on)
    windows: dict[str, tuple[deque[float], deque[float], list[float]]] = {}
    prev: dict[str, tuple[float, float]] = {}
    equity = CASH
    for i, bar in enumerate(ordered):
        sym = bar.symbol
        order = pending.pop(sym, None)
        if order is not None:  # fill at this bar's open
            side, decided_at = order
            if side == "buy":
                value = cash + sum(q * last[s] for s, q in held.items() if q)
                # sizing used the equity at the signal bar's close (as the broker does)
                qty = min(math.floor(value / decided_at), math.floor(cash / bar.open))
                if qty > 0:
                    cash -= qty * bar.open
                    held[sym] = held.get(sym, 0) + qty
                    fills += 1
            elif held.get(sym, 0) > 0:
                cash += held[sym] * bar.open
                held[sym] = 0
                fills += 1
        last[sym] = bar.close
        fq, sq, sums = windows.setdefault(sym, (deque(), deque(), [0.0, 0.0]))
        fq.append(bar.close)
        sq.append(bar.close)
        sums[0] += bar.close
        sums[1] += bar.close
        if len(fq) > fast:
            sums[0] -= fq.popleft()
        if len(sq) > slow:
            sums[1] -= sq.popleft()
        if len(sq) == slow:
            f, s = sums[0] / fast, sums[1] / slow
            before = prev.get(sym)
            if before is not None:
                pf, ps = before
                if pf <= ps and f > s and held.get(sym, 0) <= 0:
                    pending[sym] = ("buy", bar.close)
                elif pf >= ps and f < s and held.get(sym, 0) > 0:
                    pending[sym] = ("sell", bar.close)
            prev[sym] = (f, s)
        if i + 1 == len(ordered) or ordered[i + 1].ts != bar.ts:
            equity = cash + sum(q * last[s] for s, q in held.items() if q)
    return fills, equity


def timed(fn: Any, *args: Any, repeat: int = 1, **kwargs: Any) -> tuple[float, Any]:
    """The best time of ``repeat`` calls (after a full collection each) and the result."""
    best, out = math.inf, None
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        out = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - started)
    return best, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bars", type=int, default=200_000)
    ap.add_argument("--symbols", type=int, default=1)
    ap.add_argument("--fast", type=int, default=4)
    ap.add_argument("--slow", type=int, default=11)
    ap.add_argument("--sweep-bars", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each measurement (best)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    bars = walk(args.bars, args.symbols)
    n = len(bars)
    out: dict[str, Any] = {"bars": n, "symbols": args.symbols, "load_before": os.getloadavg()[0]}

    rep, plain_rep = args.repeat, max(args.repeat, 3)  # the plain loops are short: best of 3
    idle_config = BacktestConfig(strategy="bench_nothing", interval="1m")
    t_idle, _ = timed(run, idle_config, bars, repeat=rep)
    t_plain_idle, _ = timed(plain_idle, bars, repeat=plain_rep)
    out["idle"] = {
        "runner_bars_s": n / t_idle,
        "plain_bars_s": n / t_plain_idle,
        "ratio": t_idle / t_plain_idle,
    }

    config = BacktestConfig(
        strategy="ma_crossover", interval="1m", params={"fast": args.fast, "slow": args.slow}
    )
    t_ma, result = timed(run, config, bars, repeat=rep)
    t_plain_ma, (plain_fills, plain_equity) = timed(
        plain_ma, bars, args.fast, args.slow, repeat=plain_rep
    )
    t_measure, performance = timed(performance_of, result)
    out["ma"] = {
        "fast": args.fast,
        "slow": args.slow,
        "runner_bars_s": n / t_ma,
        "plain_bars_s": n / t_plain_ma,
        "ratio": t_ma / t_plain_ma,
        "fills": len(result.fills),
        "plain_fills": plain_fills,
        "bars_per_fill": n / max(len(result.fills), 1),
        "round_trips": performance.trade_stats.count if performance.trade_stats else 0,
        "final_equity": float(result.equity[-1]),
        "plain_final_equity": plain_equity,
        "measure_s": t_measure,
    }

    sweep_bars = walk(args.sweep_bars, 1, seed=8)
    data = pd.DataFrame(sweep_bars, columns=list(BarRow._fields))
    combos = math.prod(len(v) for v in GRID.values())
    out["sweep"] = {"bars": len(sweep_bars), "backtests": combos}
    for workers in (1, 2):
        before = os.times()
        t_sweep, rows = timed(
            sweep,
            "ma_crossover",
            GRID,
            symbols="S00",
            interval="1m",
            data=data,
            workers=workers,
            repeat=rep,
        )
        assert not any(r.error for r in rows), rows
        after = os.times()
        cpu = sum(after[k] - before[k] for k in range(4))  # this process and its workers
        out["sweep"][f"workers_{workers}_backtests_s"] = combos / t_sweep
        out["sweep"][f"workers_{workers}_cpu_s_per_backtest"] = cpu / (combos * rep)
    out["sweep"]["speedup"] = (
        out["sweep"]["workers_2_backtests_s"] / out["sweep"]["workers_1_backtests_s"]
    )

    out["load_after"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    i, m, s = out["idle"], out["ma"], out["sweep"]
    print(f"{n:,} 1m bars, {args.symbols} symbol(s)")
    print(
        f"idle strategy: runner {i['runner_bars_s']:,.0f} bars/s, plain loop "
        f"{i['plain_bars_s']:,.0f} bars/s: {i['ratio']:.0f}x"
    )
    print(
        f"ma_crossover {m['fast']}/{m['slow']}: runner {m['runner_bars_s']:,.0f} bars/s, plain "
        f"loop {m['plain_bars_s']:,.0f} bars/s: {m['ratio']:.0f}x; fills {m['fills']:,} "
        f"(plain {m['plain_fills']:,}), a fill every {m['bars_per_fill']:.1f} bars, "
        f"{m['round_trips']:,} round trips; final equity {m['final_equity']:,.2f} "
        f"(plain {m['plain_final_equity']:,.2f}); performance_of {m['measure_s']:.2f} s"
    )
    print(
        f"sweep {s['backtests']} backtests x {s['bars']:,} bars: 1 worker "
        f"{s['workers_1_backtests_s']:.2f} backtests/s, 2 workers "
        f"{s['workers_2_backtests_s']:.2f} backtests/s ({s['speedup']:.2f}x); CPU per backtest "
        f"{s['workers_1_cpu_s_per_backtest']:.2f} s / {s['workers_2_cpu_s_per_backtest']:.2f} s"
    )
    print(f"load average (1 min) {out['load_before']:.1f} before, {out['load_after']:.1f} after")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

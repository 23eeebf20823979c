"""The performance of a backtest, through the shared analytics (:mod:`engine.analytics`).

What :func:`performance_of` feeds :func:`~engine.analytics.analyze`:

- **curve**: the run's equity at each timestamp's close (``equity_ts``), annualized by the
  run's interval;
- **fills**: the broker's fills, each commission as the fill's fee;
- **marks**: each symbol's last close (the price the run's final equity used);
- **benchmark**: buy and hold of an **equal-weight basket** of every symbol of the run,
  bought at the first close and never rebalanced: ``B_i = mean_s(p_s,i / p_s,0)``. With
  one symbol this is that symbol's buy and hold. A basket, not the first symbol, because
  a strategy trading several symbols is fairly compared with holding all of them. A
  symbol whose bars start later counts at its first close until then (as
  :meth:`~engine.analytics.PriceSeries.asof` does); a symbol without a positive finite
  close is left out, and without any symbol there is no benchmark.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np

from engine.analytics import (
    EquityCurve,
    Fill,
    Performance,
    PriceSeries,
    RoundTrips,
    analyze,
    round_trips,
)
from engine.backtest.runner import BacktestResult


def performance_of(result: BacktestResult, *, risk_free_rate: float = 0.0) -> Performance:
    """The performance of ``result`` against its buy-and-hold basket (module docstring).
    Raises ``ValueError`` (from the analytics) for a curve that does not start positive."""
    curve = EquityCurve(
        ts=tuple(result.equity_ts),
        equity=tuple(float(e) for e in result.equity),
        interval=result.config.interval,
    )
    return analyze(
        curve,
        fills=fills_of(result),
        marks=marks_of(result),
        benchmark=benchmark_of(result),
        risk_free_rate=risk_free_rate,
    )


def fills_of(result: BacktestResult) -> list[Fill]:
    """The broker's fills as the analytics see them (commission as the fee)."""
    return [
        Fill(symbol=f.symbol, side=f.side, qty=f.qty, price=f.price, fee=f.commission, ts=f.ts)
        for f in result.fills
    ]


def marks_of(result: BacktestResult) -> dict[str, Decimal]:
    """Each symbol's last close, exactly as the broker valued it (``Decimal(repr(close))``)."""
    marks: dict[str, Decimal] = {}
    for symbol, closes in result.closes.items():
        if closes and math.isfinite(closes[-1]):
            marks[symbol] = Decimal(repr(closes[-1]))
    return marks


def benchmark_of(result: BacktestResult) -> PriceSeries | None:
    """The equal-weight buy-and-hold basket at ``equity_ts`` (module docstring)."""
    legs = []
    for symbol in result.symbols:
        closes = np.asarray(result.closes.get(symbol, []), dtype=np.float64)
        if len(closes) != len(result.equity_ts):
            continue
        valid = np.flatnonzero(np.isfinite(closes))
        if not len(valid):
            continue
        filled = closes.copy()
        filled[: valid[0]] = closes[valid[0]]  # before its first bar: its first close
        if not bool(np.all(np.isfinite(filled))) or not bool(np.all(filled > 0)):
            continue
        legs.append(filled / filled[0])
    if not legs:
        return None
    basket = np.mean(np.vstack(legs), axis=0)
    return PriceSeries(ts=tuple(result.equity_ts), price=tuple(basket.tolist()))


def trades_of(result: BacktestResult) -> dict[str, RoundTrips]:
    """FIFO round trips of every symbol of the run (closed trades and the lots still
    open), by symbol; a symbol that never traded has empty ones."""
    by_symbol: dict[str, list[Fill]] = {symbol: [] for symbol in result.symbols}
    for fill in fills_of(result):
        by_symbol.setdefault(fill.symbol, []).append(fill)
    return {symbol: round_trips(fills) for symbol, fills in by_symbol.items()}

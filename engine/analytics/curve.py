"""Inputs of the performance analytics: an equity curve, a price series, annualization.

**Annualization** (periods per year ``P``), the first that applies:

1. ``EquityCurve.periods_per_year`` when given: the override, and the only right choice
   for a market that trades around the clock (365 for daily bars, 525,600 for 1m bars);
2. ``EquityCurve.interval`` (Yahoo's spelling, :mod:`engine.intervals`) on a US equity
   calendar of 252 trading days of 6.5-hour sessions: intraday bars count
   ``252 * 23,400 s / bar seconds`` (1m → 98,280, 5m → 19,656, 60m → 1,638), longer bars
   ``1d`` → 252, ``5d`` → 50.4, ``1wk`` → 52, ``1mo`` → 12, ``3mo`` → 4;
3. derived from the median spacing ``s`` of the timestamps: the named interval nearest
   to ``s`` when it is within 10 % of it (rule 2; the median skips nights, weekends and
   holidays), otherwise calendar time, ``365.25 * 86,400 s / s``;
4. None with fewer than two timestamps: nothing is annualized.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, localcontext
from typing import Final

import msgspec
import numpy as np

from engine.analytics.trades import Fill
from engine.intervals import INTERVAL_SECONDS, INTRADAY, NS, interval_ns
from engine.orders.positions import DECIMAL_CONTEXT, side_sign

TRADING_DAYS_PER_YEAR: Final = 252
SESSION_SECONDS: Final = 23_400
"""A US equity session, 09:30-16:00."""
YEAR_SECONDS: Final = 365.25 * 86_400
_LONG_BARS_PER_YEAR: Final[dict[str, float]] = {
    "1d": 252.0,
    "5d": 50.4,
    "1wk": 52.0,
    "1mo": 12.0,
    "3mo": 4.0,
}
_SNAP_TOLERANCE: Final = 0.10


def periods_per_year(interval: str) -> float:
    """Bars of ``interval`` in a year of the US equity calendar (rule 2 above). Raises
    :class:`~engine.intervals.IntervalError` for an unknown interval."""
    seconds = interval_ns(interval) // NS
    if interval in INTRADAY:
        return TRADING_DAYS_PER_YEAR * SESSION_SECONDS / seconds
    return _LONG_BARS_PER_YEAR[interval]


def infer_periods_per_year(ts: Sequence[int]) -> float | None:
    """Periods per year from the median spacing of ``ts`` (rule 3 above); None with
    fewer than two timestamps."""
    if len(ts) < 2:
        return None
    spacing = float(np.median(np.diff(np.asarray(ts, dtype=np.int64)))) / NS
    name = min(INTERVAL_SECONDS, key=lambda k: abs(INTERVAL_SECONDS[k] - spacing))
    if abs(INTERVAL_SECONDS[name] - spacing) <= _SNAP_TOLERANCE * spacing:
        return periods_per_year(name)
    return YEAR_SECONDS / spacing


def _check_ts(ts: Sequence[int], values: Sequence[float], what: str) -> None:
    if not ts:
        raise ValueError(f"{what} needs at least one point")
    if len(ts) != len(values):
        raise ValueError(f"{what} has {len(ts)} timestamps and {len(values)} values")
    if len(ts) > 1 and not bool(np.all(np.diff(np.asarray(ts, dtype=np.int64)) > 0)):
        raise ValueError(f"{what} timestamps must be strictly increasing")
    if not bool(np.all(np.isfinite(np.asarray(values, dtype=np.float64)))):
        raise ValueError(f"{what} values must be finite")


class EquityCurve(msgspec.Struct, frozen=True, kw_only=True):
    """An account's equity (cash + positions marked to market) at the close of each
    bar. Raises ``ValueError`` unless the timestamps strictly increase, every value is
    finite and the first equity is positive (returns are relative to it)."""

    ts: tuple[int, ...]
    """Bar timestamps, UTC ns, strictly increasing."""
    equity: tuple[float, ...]
    """Equity at each timestamp, in the account currency."""
    interval: str | None = None
    """Bar interval (``1m``, ``1d`` …) for annualization; see the module docstring."""
    periods_per_year: float | None = None
    """Annualization override (> 0): bars per year."""

    def __post_init__(self) -> None:
        _check_ts(self.ts, self.equity, "an equity curve")
        if self.equity[0] <= 0:
            raise ValueError(f"an equity curve must start positive, not at {self.equity[0]}")
        if self.periods_per_year is not None and not self.periods_per_year > 0:
            raise ValueError(f"periods_per_year must be positive, not {self.periods_per_year}")
        if self.interval is not None:
            interval_ns(self.interval)

    def annualization(self) -> float | None:
        """Periods per year ``P`` (rules 1-4 of the module docstring)."""
        if self.periods_per_year is not None:
            return self.periods_per_year
        if self.interval is not None:
            return periods_per_year(self.interval)
        return infer_periods_per_year(self.ts)


class PriceSeries(msgspec.Struct, frozen=True, kw_only=True):
    """Prices of one symbol (e.g. bar closes): the benchmark of a strategy and the marks
    of :func:`mark_to_market`. Raises ``ValueError`` unless the timestamps strictly
    increase and every price is finite and positive."""

    ts: tuple[int, ...]
    """UTC ns, strictly increasing."""
    price: tuple[float, ...]

    def __post_init__(self) -> None:
        _check_ts(self.ts, self.price, "a price series")
        if min(self.price) <= 0:
            raise ValueError("a price series must be positive")

    def asof(self, ts: Sequence[int]) -> np.ndarray:
        """The price at each of ``ts``: the last one stamped at or before it, or the
        first price for a time before the series starts."""
        index = np.searchsorted(np.asarray(self.ts, dtype=np.int64), ts, side="right") - 1
        return np.asarray(self.price, dtype=np.float64)[np.maximum(index, 0)]


def mark_to_market(
    prices: PriceSeries,
    fills: Sequence[Fill],
    *,
    cash: Decimal,
    interval: str | None = None,
    periods_per_year: float | None = None,
) -> EquityCurve:
    """The equity curve of trading one symbol: at each price ``p_i``,
    ``cash - Σ (sign * qty * price + fee) + net_qty * p_i`` over the fills stamped at or
    before it, computed exactly (each price is taken at its exact binary value) and
    rounded to a float once. ``cash`` is the starting cash. Raises ``ValueError`` for
    fills of more than one symbol or a curve that does not start positive."""
    if len({f.symbol for f in fills}) > 1:
        raise ValueError("mark_to_market marks the fills of one symbol")
    ordered = sorted(fills, key=lambda f: f.ts)
    equity: list[float] = []
    held = Decimal(0)
    nxt = 0
    with localcontext(DECIMAL_CONTEXT):
        for ts, price in zip(prices.ts, prices.price, strict=True):
            while nxt < len(ordered) and ordered[nxt].ts <= ts:
                fill = ordered[nxt]
                signed = side_sign(fill.side) * fill.qty
                cash -= signed * fill.price + fill.fee
                held += signed
                nxt += 1
            equity.append(float(cash + held * Decimal(price)))
    return EquityCurve(
        ts=prices.ts,
        equity=tuple(equity),
        interval=interval,
        periods_per_year=periods_per_year,
    )

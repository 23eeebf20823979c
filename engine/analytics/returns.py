"""Return, risk and drawdown arithmetic on float64 arrays (formulas: see
:mod:`engine.analytics.performance`). Everything undefined is None, never NaN or inf."""

from __future__ import annotations

import math
from typing import Final, NamedTuple

import numpy as np

ZERO_VOLATILITY: Final = 1e-12
"""A per-period deviation at or below this is the float noise of a constant series."""


def simple_returns(equity: np.ndarray) -> np.ndarray | None:
    """``r_i = E_i / E_{i-1} - 1``; None when some ``E_{i-1} <= 0``."""
    base = equity[:-1]
    if bool(np.any(base <= 0)):
        return None
    result: np.ndarray = equity[1:] / base - 1.0
    return result


def annualized_return(growth: float, periods: int, per_year: float | None) -> float | None:
    """``growth ** (per_year / periods) - 1`` (CAGR over ``periods`` bars); None without
    a period or ``per_year``, for negative growth, or when it overflows a float."""
    if periods < 1 or per_year is None or growth < 0:
        return None
    if growth == 0:
        return -1.0
    try:
        return math.exp(math.log(growth) * per_year / periods) - 1.0
    except OverflowError:
        return None


def period_rate(annual_rate: float, per_year: float) -> float:
    """The per-period rate that compounds to ``annual_rate`` in ``per_year`` periods."""
    return float((1.0 + annual_rate) ** (1.0 / per_year) - 1.0)


def volatility(returns: np.ndarray | None, per_year: float | None) -> float | None:
    """``std(r, ddof=1) * sqrt(per_year)``; None with fewer than two returns."""
    if returns is None or len(returns) < 2 or per_year is None:
        return None
    std = float(np.std(returns, ddof=1))
    return 0.0 if std <= ZERO_VOLATILITY else std * math.sqrt(per_year)


def sharpe(returns: np.ndarray | None, per_year: float | None, rf: float) -> float | None:
    """``mean(r - rf_p) / std(r, ddof=1) * sqrt(per_year)``; None with fewer than two
    returns or zero volatility."""
    if returns is None or len(returns) < 2 or per_year is None:
        return None
    std = float(np.std(returns, ddof=1))
    if std <= ZERO_VOLATILITY:
        return None
    excess = float(np.mean(returns)) - period_rate(rf, per_year)
    return excess / std * math.sqrt(per_year)


def sortino(returns: np.ndarray | None, per_year: float | None, rf: float) -> float | None:
    """``mean(r - rf_p) / DD * sqrt(per_year)``, ``DD = sqrt(Σ min(r, 0)² / N)``; None
    with fewer than two returns or no period below 0."""
    if returns is None or len(returns) < 2 or per_year is None:
        return None
    downside = math.sqrt(float(np.sum(np.minimum(returns, 0.0) ** 2)) / len(returns))
    if downside <= ZERO_VOLATILITY:
        return None
    excess = float(np.mean(returns)) - period_rate(rf, per_year)
    return excess / downside * math.sqrt(per_year)


def drawdowns(equity: np.ndarray) -> np.ndarray:
    """``1 - E_i / max(E_0 … E_i)``: 0 at a peak, 0.25 a quarter below it."""
    result: np.ndarray = 1.0 - equity / np.maximum.accumulate(equity)
    return result


class Episode(NamedTuple):
    """The deepest drawdown: bar indices of its peak, trough and end (the recovery, or
    the last bar when it never recovered)."""

    depth: float
    peak: int
    trough: int
    end: int
    recovered: bool


def max_drawdown(equity: np.ndarray, dd: np.ndarray) -> Episode:
    """The first deepest drawdown of ``equity`` (``dd`` is :func:`drawdowns` of it)."""
    trough = int(np.argmax(dd))
    depth = float(dd[trough])
    if depth <= 0:
        return Episode(0.0, 0, 0, 0, True)
    top = equity[: trough + 1].max()
    peak = int(np.flatnonzero(equity[: trough + 1] == top)[-1])
    recovery = np.flatnonzero(equity[trough + 1 :] >= top)
    if len(recovery):
        return Episode(depth, peak, trough, trough + 1 + int(recovery[0]), True)
    return Episode(depth, peak, trough, len(equity) - 1, False)


def monthly_returns(ts: np.ndarray, equity: np.ndarray) -> list[tuple[int, int, float | None]]:
    """``(year, month, return)`` per UTC calendar month with a bar: the month's last
    equity over the previous month's last equity (the first month: over ``E_0``), less
    one; None when that base is not positive."""
    months = ts.astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64)
    ends = [*np.flatnonzero(np.diff(months) != 0).tolist(), len(months) - 1]
    rows: list[tuple[int, int, float | None]] = []
    base = float(equity[0])
    for end in ends:
        close = float(equity[end])
        month = int(months[end])
        rows.append((1970 + month // 12, month % 12 + 1, close / base - 1 if base > 0 else None))
        base = close
    return rows

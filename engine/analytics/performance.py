"""Performance of an equity curve and its trades: the one definition that backtests and
the live/paper account share. Pure: no I/O, no clock.

Notation: equity ``E_0 … E_n`` at bar timestamps ``t_0 … t_n`` (``n + 1`` points,
``N = n`` returns), ``P`` periods per year (:mod:`engine.analytics.curve`), ``rf`` the
annual risk-free rate, ``rf_p = (1 + rf) ** (1 / P) - 1`` its per-period rate.

Returns and risk (floats):

- **returns** are simple, ``r_i = E_i / E_{i-1} - 1`` (not log returns);
- **total return** ``E_n / E_0 - 1`` (0.0 for a single point);
- **annualized return** (CAGR over bars) ``(E_n / E_0) ** (P / N) - 1``; -1.0 if
  ``E_n = 0``;
- **annualized volatility** ``std(r, ddof=1) * sqrt(P)`` (sample standard deviation);
- **Sharpe** ``mean(r - rf_p) / std(r, ddof=1) * sqrt(P)``;
- **Sortino** ``mean(r - rf_p) / DD * sqrt(P)`` with the downside deviation against a
  target of 0 over all ``N`` periods, ``DD = sqrt(Σ min(r_i, 0)² / N)``;
- **drawdown** ``D_i = 1 - E_i / max(E_0 … E_i)``, a non-negative fraction (0.25: 25 %
  below the running peak), in ``[0, 1)`` while equity stays positive; **max drawdown**
  ``max D_i``, its first occurrence when several bars tie;
- **max drawdown duration**: from the peak (the last bar at the running maximum before
  the trough) to the recovery (the first later bar with ``E >= peak``) or, when it never
  recovered, to the last bar; in seconds (``(t_end - t_peak) / 1e9``) and in bars
  (``end - peak``); 0 without a drawdown;
- **Calmar** ``annualized return / max drawdown`` over the whole curve (not the classic
  trailing 36 months);
- **monthly returns** per UTC calendar month that has a bar: the month's last equity
  over the previous such month's last equity (the first month: over ``E_0``), less one;
  they compound to the total return.

When a value is undefined it is None, never NaN or inf:

- fewer than two points (``N < 1``): annualized return, volatility, Sharpe, Sortino and
  Calmar are None (the total return is 0.0, the max drawdown 0.0); volatility, Sharpe
  and Sortino also need ``N >= 2``; nothing is annualized without ``P``;
- zero volatility (a per-period std ``<= 1e-12``, float noise of a constant series):
  volatility 0.0, Sharpe None; no period below 0: Sortino None; no drawdown: Calmar
  None; an annualized return that overflows a float: None;
- equity reaching 0 or below after the start: the returns after it are undefined, so
  volatility, Sharpe and Sortino are None (drawdowns above 1 are reported as they are);
  a negative final equity has no annualized return.

Trades and P&L (exact ``Decimal``, from the fills; :mod:`engine.analytics.trades`):

- **trades**: FIFO round trips per symbol, in the order they closed; trade statistics
  (win rate, best/worst/average trade, average win/loss, profit factor = gross profit /
  gross loss, None without losses) are :class:`~engine.analytics.trades.TradeStats`;
- **realized / unrealized P&L at the end**: the live average-cost arithmetic of
  :class:`engine.orders.positions.Position` over all the fills (fees are realized when
  paid), unrealized at ``marks``; their sum equals the FIFO view's (see
  :mod:`engine.analytics.trades`); unrealized is None when a symbol is open and has no
  mark;
- **exposure**: the share of bars at which some position is not flat, the position at a
  bar being the net of the fills stamped at or before it;
- without fills (``fills=None``) all of these are None or empty.

Buy-and-hold benchmark (a :class:`~engine.analytics.curve.PriceSeries` of the traded
symbol): its price at each bar of the curve (the last at or before the bar, the first for
bars before it starts), scaled to ``E_0``: ``B_i = E_0 * p_i / p_0``. Its total return,
annualized return (same ``P`` and ``N``) and max drawdown follow the formulas above; the
strategy's **excess return** is ``total return - benchmark total return``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, localcontext

import msgspec
import numpy as np

from engine.analytics import returns as rt
from engine.analytics.curve import EquityCurve, PriceSeries
from engine.analytics.trades import Fill, Trade, TradeStats, round_trips, trade_stats
from engine.intervals import NS
from engine.orders.positions import DECIMAL_CONTEXT, ZERO, Position


class MonthlyReturn(msgspec.Struct, frozen=True, kw_only=True):
    """The return of one UTC calendar month."""

    year: int
    month: int
    """1-12."""
    ret: float | None
    """Simple return; None when the month's base equity is not positive."""


class BenchmarkComparison(msgspec.Struct, frozen=True, kw_only=True):
    """Buy-and-hold of the benchmark over the same bars."""

    total_return: float
    annualized_return: float | None
    max_drawdown: float
    excess_return: float
    """The strategy's total return less the benchmark's."""
    equity: tuple[float, ...]
    """Buy-and-hold equity at each bar of the curve, scaled to start at ``E_0``."""


class Performance(msgspec.Struct, frozen=True, kw_only=True):
    """The performance report of one equity curve (formulas: the module docstring).
    Ratios are floats, money from fills is ``Decimal``; undefined values are None."""

    start_ts: int
    """UTC ns of the first bar."""
    end_ts: int
    bars: int
    """Points of the equity curve (``n + 1``)."""
    periods_per_year: float | None
    risk_free_rate: float
    """Annual rate the Sharpe and Sortino ratios are in excess of."""
    initial_equity: float
    final_equity: float
    total_return: float
    annualized_return: float | None
    annualized_volatility: float | None
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    max_drawdown: float
    """Deepest drawdown, a fraction of the peak."""
    max_drawdown_start_ts: int
    """Its peak, UTC ns (the first bar when there is no drawdown)."""
    max_drawdown_trough_ts: int
    max_drawdown_end_ts: int
    """Its recovery, or the last bar when it never recovered."""
    max_drawdown_duration_s: float
    max_drawdown_duration_bars: int
    max_drawdown_recovered: bool
    ts: tuple[int, ...]
    """The curve, for reports."""
    equity: tuple[float, ...]
    drawdown: tuple[float, ...]
    """``D_i`` at each bar."""
    monthly_returns: tuple[MonthlyReturn, ...]
    realized_pnl: Decimal | None
    """At the end (average cost, net of every fee paid); None without fills."""
    unrealized_pnl: Decimal | None
    """At ``marks``; None without fills or without the mark of an open symbol."""
    exposure: float | None
    """Share of bars with a position; None without fills."""
    trade_stats: TradeStats | None
    """None without fills."""
    trades: tuple[Trade, ...]
    benchmark: BenchmarkComparison | None


def _positions(fills: Sequence[Fill], ts: Sequence[int]) -> tuple[dict[str, Position], float]:
    """Every symbol's position after all the fills, and the share of bars exposed."""
    ordered = sorted(fills, key=lambda f: f.ts)
    positions: dict[str, Position] = {}
    open_symbols: set[str] = set()
    exposed = 0
    nxt = 0
    for bar_ts in [*ts, None]:
        while nxt < len(ordered) and (bar_ts is None or ordered[nxt].ts <= bar_ts):
            fill = ordered[nxt]
            held = positions.get(fill.symbol) or Position(account="", symbol=fill.symbol)
            held = held.apply_fill(fill.side, fill.qty, fill.price, fee=fill.fee, ts=fill.ts)
            positions[fill.symbol] = held
            if held.is_flat:
                open_symbols.discard(fill.symbol)
            else:
                open_symbols.add(fill.symbol)
            nxt += 1
        if bar_ts is not None and open_symbols:
            exposed += 1
    return positions, exposed / len(ts)


def _unrealized(positions: Mapping[str, Position], marks: Mapping[str, Decimal]) -> Decimal | None:
    total = ZERO
    with localcontext(DECIMAL_CONTEXT):
        for symbol, position in positions.items():
            if position.is_flat:
                continue
            mark = marks.get(symbol)
            if mark is None:
                return None
            total += position.unrealized(mark)
    return total


def _benchmark(
    benchmark: PriceSeries, curve: EquityCurve, total_return: float, per_year: float | None
) -> BenchmarkComparison:
    prices = benchmark.asof(curve.ts)
    equity = float(curve.equity[0]) * prices / prices[0]
    growth = float(prices[-1] / prices[0])
    return BenchmarkComparison(
        total_return=growth - 1.0,
        annualized_return=rt.annualized_return(growth, len(prices) - 1, per_year),
        max_drawdown=float(rt.drawdowns(prices).max()),
        excess_return=total_return - (growth - 1.0),
        equity=tuple(equity.tolist()),
    )


def analyze(
    curve: EquityCurve,
    *,
    fills: Sequence[Fill] | None = None,
    marks: Mapping[str, Decimal] | None = None,
    benchmark: PriceSeries | None = None,
    risk_free_rate: float = 0.0,
) -> Performance:
    """The performance of ``curve``, of the trades of ``fills`` (any symbols, any order;
    the ones that made the curve) with open positions marked at ``marks`` (symbol →
    price), against a buy-and-hold ``benchmark``. Raises ``ValueError`` for a risk-free
    rate at or below -100 %."""
    if not risk_free_rate > -1.0:
        raise ValueError(f"risk_free_rate must be above -1, not {risk_free_rate}")
    equity = np.asarray(curve.equity, dtype=np.float64)
    ts = np.asarray(curve.ts, dtype=np.int64)
    per_year = curve.annualization()
    periods = len(equity) - 1
    growth = float(equity[-1] / equity[0])
    returns = rt.simple_returns(equity)
    dd = rt.drawdowns(equity)
    episode = rt.max_drawdown(equity, dd)
    annual = rt.annualized_return(growth, periods, per_year)
    calmar = annual / episode.depth if annual is not None and episode.depth > 0 else None

    realized: Decimal | None = None
    unrealized: Decimal | None = None
    exposure: float | None = None
    stats: TradeStats | None = None
    trades: tuple[Trade, ...] = ()
    if fills is not None:
        positions, exposure = _positions(fills, curve.ts)
        with localcontext(DECIMAL_CONTEXT):
            realized = sum((p.realized_pnl for p in positions.values()), ZERO)
        unrealized = _unrealized(positions, marks or {})
        by_symbol: dict[str, list[Fill]] = {}
        for fill in fills:
            by_symbol.setdefault(fill.symbol, []).append(fill)
        closed = [t for group in by_symbol.values() for t in round_trips(group).trades]
        trades = tuple(sorted(closed, key=lambda t: t.exit_ts))
        stats = trade_stats(trades)

    return Performance(
        start_ts=curve.ts[0],
        end_ts=curve.ts[-1],
        bars=len(equity),
        periods_per_year=per_year,
        risk_free_rate=risk_free_rate,
        initial_equity=float(equity[0]),
        final_equity=float(equity[-1]),
        total_return=growth - 1.0,
        annualized_return=annual,
        annualized_volatility=rt.volatility(returns, per_year),
        sharpe=rt.sharpe(returns, per_year, risk_free_rate),
        sortino=rt.sortino(returns, per_year, risk_free_rate),
        calmar=calmar,
        max_drawdown=episode.depth,
        max_drawdown_start_ts=curve.ts[episode.peak],
        max_drawdown_trough_ts=curve.ts[episode.trough],
        max_drawdown_end_ts=curve.ts[episode.end],
        max_drawdown_duration_s=(curve.ts[episode.end] - curve.ts[episode.peak]) / NS,
        max_drawdown_duration_bars=episode.end - episode.peak,
        max_drawdown_recovered=episode.recovered,
        ts=tuple(ts.tolist()),
        equity=tuple(equity.tolist()),
        drawdown=tuple(dd.tolist()),
        monthly_returns=tuple(
            MonthlyReturn(year=y, month=m, ret=r) for y, m, r in rt.monthly_returns(ts, equity)
        ),
        realized_pnl=realized,
        unrealized_pnl=unrealized,
        exposure=exposure,
        trade_stats=stats,
        trades=trades,
        benchmark=(
            None if benchmark is None else _benchmark(benchmark, curve, growth - 1.0, per_year)
        ),
    )

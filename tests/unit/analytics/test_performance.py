"""Performance metrics against values computed by hand (the arithmetic is in comments)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.analytics import (
    EquityCurve,
    Fill,
    Performance,
    PriceSeries,
    analyze,
    mark_to_market,
)

D = Decimal
S = 1_000_000_000
DAY = 86_400 * S


def ns(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, tzinfo=UTC).timestamp()) * S


T0 = ns(2024, 1, 2)


def daily(*equity: float, per_year: float | None = None, interval: str | None = None):
    ts = tuple(T0 + i * DAY for i in range(len(equity)))
    return EquityCurve(ts=ts, equity=equity, periods_per_year=per_year, interval=interval)


def buy(qty: str, price: str, day: int, *, fee: str = "0", symbol: str = "AAPL") -> Fill:
    return Fill(
        symbol=symbol, side="buy", qty=D(qty), price=D(price), fee=D(fee), ts=T0 + day * DAY
    )


def sell(qty: str, price: str, day: int, *, fee: str = "0", symbol: str = "AAPL") -> Fill:
    return Fill(
        symbol=symbol, side="sell", qty=D(qty), price=D(price), fee=D(fee), ts=T0 + day * DAY
    )


# The reference curve: 100 → 110 → 99 → 118.8, six periods a year.
# returns r = 0.1, -0.1, 0.2 (118.8 / 99 = 1.2); mean = 0.2 / 3 = 1/15
# sample variance = ((1/30)² + (-1/6)² + (2/15)²) / 2 = (1 + 25 + 16) / 900 / 2 = 7/300
REFERENCE = (100.0, 110.0, 99.0, 118.8)


def test_analyze_when_reference_curve_then_returns_and_ratios_by_hand() -> None:
    p = analyze(daily(*REFERENCE, per_year=6))
    assert p.total_return == pytest.approx(0.188)  # 118.8 / 100 - 1
    assert p.annualized_return == pytest.approx(0.411344)  # 1.188 ** (6 / 3) - 1
    assert p.annualized_volatility == pytest.approx(0.3741657386773941)  # √(7/300 · 6) = √0.14
    assert p.sharpe == pytest.approx(1.0690449676496976)  # (1/15) / √(7/300) · √6 = √(8/7)
    # downside deviation √(0.1² / 3); (1/15) / √(1/300) · √6 = √1800 / 15 = 2√2
    assert p.sortino == pytest.approx(2.8284271247461903)
    assert p.calmar == pytest.approx(4.11344)  # 0.411344 / 0.1
    assert (p.bars, p.periods_per_year, p.initial_equity, p.final_equity) == (4, 6, 100, 118.8)


def test_analyze_when_risk_free_rate_then_excess_per_period() -> None:
    # rf = 1.01⁶ - 1 compounds from 1 % per period: excess mean 1/15 - 1/100 = 17/300
    p = analyze(daily(*REFERENCE, per_year=6), risk_free_rate=1.01**6 - 1)
    assert p.sharpe == pytest.approx(0.9086882225022)  # 17/300 · √(300/7) · √6
    assert p.sortino == pytest.approx(2.4041630560343)  # 17/300 · √300 · √6
    assert p.risk_free_rate == pytest.approx(0.061520150601)


def test_analyze_when_daily_interval_then_252_periods() -> None:
    p = analyze(daily(*REFERENCE, interval="1d"))
    assert p.periods_per_year == 252
    assert p.sharpe == pytest.approx(6.928203230275509)  # (1/15) / √(7/300) · √252 = √48
    assert p.annualized_volatility == pytest.approx(2.4248711305964283)  # √(7/300 · 252)


def test_analyze_when_reference_curve_then_drawdown_peak_to_recovery() -> None:
    p = analyze(daily(*REFERENCE, per_year=6))
    assert p.max_drawdown == pytest.approx(0.1)  # 1 - 99 / 110
    assert p.drawdown == pytest.approx((0.0, 0.0, 0.1, 0.0))
    # peak day 1 (110), trough day 2 (99), recovered day 3 (118.8 >= 110)
    assert (p.max_drawdown_start_ts, p.max_drawdown_trough_ts, p.max_drawdown_end_ts) == (
        T0 + DAY,
        T0 + 2 * DAY,
        T0 + 3 * DAY,
    )
    assert (p.max_drawdown_duration_bars, p.max_drawdown_duration_s) == (2, 172_800.0)
    assert p.max_drawdown_recovered is True
    assert (p.ts, p.equity) == (tuple(T0 + i * DAY for i in range(4)), REFERENCE)


def test_analyze_when_drawdown_never_recovered_then_duration_to_the_end() -> None:
    p = analyze(daily(100, 120, 90, 96, 108, per_year=4))
    assert p.max_drawdown == pytest.approx(0.25)  # 1 - 90 / 120
    # peak day 1, never back to 120: to the last bar, day 4 → 3 bars, 3 days
    assert (p.max_drawdown_duration_bars, p.max_drawdown_duration_s) == (3, 259_200.0)
    assert (p.max_drawdown_recovered, p.max_drawdown_end_ts) == (False, T0 + 4 * DAY)


def test_analyze_when_two_drawdowns_then_deepest_one() -> None:
    # 1 - 90/100 = 0.1 first, then 1 - 84/120 = 0.3 from day 3 to day 5
    p = analyze(daily(100, 90, 100, 120, 84, 120))
    assert p.max_drawdown == pytest.approx(0.3)
    assert (p.max_drawdown_start_ts, p.max_drawdown_duration_bars) == (T0 + 3 * DAY, 2)
    assert p.max_drawdown_recovered is True


def test_analyze_when_peak_repeats_then_drawdown_starts_at_its_last_bar() -> None:
    p = analyze(daily(100, 120, 120, 90, 120))
    assert (p.max_drawdown_start_ts, p.max_drawdown_duration_bars) == (T0 + 2 * DAY, 2)


def test_analyze_when_single_point_then_none_not_nan() -> None:
    p = analyze(daily(100))
    assert (p.total_return, p.max_drawdown, p.max_drawdown_duration_bars) == (0.0, 0.0, 0)
    assert p.periods_per_year is None
    assert p.annualized_return is p.annualized_volatility is p.sharpe is None
    assert p.sortino is p.calmar is None
    assert [(m.year, m.month, m.ret) for m in p.monthly_returns] == [(2024, 1, 0.0)]


def test_analyze_when_two_points_then_no_volatility() -> None:
    p = analyze(daily(100, 110, per_year=2))
    assert p.annualized_return == pytest.approx(0.21)  # 1.1 ** (2 / 1) - 1
    assert p.annualized_volatility is p.sharpe is p.sortino is None


def test_analyze_when_flat_equity_then_zero_volatility_and_no_ratios() -> None:
    p = analyze(daily(100, 100, 100, per_year=252))
    assert (p.total_return, p.annualized_return, p.annualized_volatility) == (0.0, 0.0, 0.0)
    assert (p.max_drawdown, p.max_drawdown_duration_s, p.max_drawdown_recovered) == (0, 0, True)
    assert p.sharpe is p.sortino is p.calmar is None


def test_analyze_when_constant_growth_then_float_noise_is_zero_volatility() -> None:
    p = analyze(daily(100, 101, 102.01, 103.0301, per_year=252))  # r = 1 % every bar
    assert p.annualized_volatility == 0.0
    assert p.sharpe is p.sortino is p.calmar is None  # no std, no down bar, no drawdown


def test_analyze_when_only_losses_then_negative_sortino_and_calmar() -> None:
    p = analyze(daily(100, 90, 81, per_year=4))
    assert p.sortino == pytest.approx(-2.0)  # mean -0.1 / √((0.01 + 0.01) / 2) · √4
    assert p.annualized_return == pytest.approx(-0.3439)  # 0.81 ** (4 / 2) - 1
    assert p.max_drawdown == pytest.approx(0.19)  # 1 - 81 / 100
    assert p.calmar == pytest.approx(-1.81)  # -0.3439 / 0.19
    assert p.sharpe is None  # both returns -0.1: no volatility
    assert p.max_drawdown_recovered is False


def test_analyze_when_equity_reaches_zero_then_returns_after_it_undefined() -> None:
    p = analyze(daily(100, 50, 0, 10, per_year=3))
    assert p.total_return == pytest.approx(-0.9)  # 10 / 100 - 1
    assert p.annualized_return == pytest.approx(-0.9)  # 0.1 ** (3 / 3) - 1
    assert p.annualized_volatility is p.sharpe is p.sortino is None  # 10 / 0
    assert p.drawdown == pytest.approx((0.0, 0.5, 1.0, 0.9))
    assert [m.ret for m in p.monthly_returns] == pytest.approx([-0.9])


def test_analyze_when_equity_ends_negative_then_no_annualized_return() -> None:
    p = analyze(daily(100, -20, per_year=1))
    assert (p.total_return, p.max_drawdown) == pytest.approx((-1.2, 1.2))
    assert p.annualized_return is p.calmar is None


def test_analyze_when_annualizing_overflows_then_none() -> None:
    p = analyze(daily(100, 200, interval="1m"))  # 2 ** 98,280 is not a float
    assert p.annualized_return is None


def test_analyze_when_months_cross_a_year_then_each_month_over_the_previous_close() -> None:
    ts = (ns(2023, 12, 29), ns(2023, 12, 31), ns(2024, 1, 2), ns(2024, 1, 31), ns(2024, 2, 1))
    p = analyze(EquityCurve(ts=ts, equity=(100, 110, 99, 104.5, 110)))
    rows = [(m.year, m.month) for m in p.monthly_returns]
    assert rows == [(2023, 12), (2024, 1), (2024, 2)]
    # Dec 110 / 100 - 1 = 0.1; Jan 104.5 / 110 - 1 = -0.05; Feb 110 / 104.5 - 1 = 1/19
    assert [m.ret for m in p.monthly_returns] == pytest.approx([0.1, -0.05, 1 / 19])


def test_analyze_when_month_without_bars_then_skipped() -> None:
    ts = (ns(2024, 1, 2), ns(2024, 1, 31), ns(2024, 3, 1))
    p = analyze(EquityCurve(ts=ts, equity=(100, 120, 90)))
    # Jan 120 / 100 - 1 = 0.2; March over January's close: 90 / 120 - 1 = -0.25
    assert [(m.year, m.month) for m in p.monthly_returns] == [(2024, 1), (2024, 3)]
    assert [m.ret for m in p.monthly_returns] == pytest.approx([0.2, -0.25])


# -- fills: P&L, exposure, trades ---------------------------------------------------------

FIVE_DAYS = (10_000.0, 10_000.0, 10_050.0, 10_098.0, 10_098.0)


def test_analyze_when_round_trip_then_realized_and_exposure() -> None:
    fills = [buy("10", "100", 1, fee="1"), sell("10", "110", 3, fee="1")]
    p = analyze(daily(*FIVE_DAYS), fills=fills)
    assert (p.realized_pnl, p.unrealized_pnl) == (98, 0)  # 10 * (110 - 100) - 2; flat
    assert p.exposure == pytest.approx(0.4)  # long at the bars of days 1 and 2: 2 / 5
    assert p.trade_stats is not None and p.trade_stats.count == 1
    assert [t.pnl for t in p.trades] == [98]


def test_analyze_when_position_open_then_unrealized_at_the_mark() -> None:
    fills = [buy("10", "100", 1, fee="1"), sell("4", "110", 2, fee="1")]
    p = analyze(daily(*FIVE_DAYS), fills=fills, marks={"AAPL": D(105)})
    # average cost: realized 4 * (110 - 100) - 1 - 1 = 38; unrealized 6 * (105 - 100) = 30
    assert (p.realized_pnl, p.unrealized_pnl) == (38, 30)
    # FIFO trade: 40 - (1 * 4/10 + 1) = 38.6, its share of the entry fee charged later
    assert [t.pnl for t in p.trades] == [D("38.6")]
    assert p.exposure == pytest.approx(0.8)  # days 1-4 of 0-4
    assert analyze(daily(*FIVE_DAYS), fills=fills).unrealized_pnl is None  # no mark


def test_analyze_when_two_symbols_then_exposure_of_any_and_trades_by_exit() -> None:
    fills = [
        buy("1", "10", 1),
        sell("1", "11", 2),
        sell("2", "50", 2, symbol="MSFT"),
        buy("2", "49", 4, symbol="MSFT"),
    ]
    p = analyze(daily(*FIVE_DAYS), fills=fills)
    # AAPL open at day 1; MSFT at days 2 and 3 → 3 of 5 bars
    assert p.exposure == pytest.approx(0.6)
    assert [(t.symbol, t.pnl) for t in p.trades] == [("AAPL", 1), ("MSFT", 2)]
    assert p.realized_pnl == 3


def test_analyze_when_fill_between_bars_then_counts_from_the_next_bar() -> None:
    fills = [
        Fill(symbol="AAPL", side="buy", qty=D(1), price=D(10), ts=T0 + DAY + 3600 * S),
    ]
    p = analyze(daily(*FIVE_DAYS), fills=fills, marks={"AAPL": D(12)})
    assert p.exposure == pytest.approx(0.6)  # days 2, 3, 4
    assert (p.realized_pnl, p.unrealized_pnl) == (0, 2)


def test_analyze_when_no_fills_then_trade_fields_none_and_empty_fills_zero() -> None:
    p = analyze(daily(*FIVE_DAYS))
    assert p.realized_pnl is p.unrealized_pnl is p.exposure is p.trade_stats is None
    assert p.trades == ()
    empty = analyze(daily(*FIVE_DAYS), fills=[])
    assert (empty.realized_pnl, empty.unrealized_pnl, empty.exposure) == (0, 0, 0.0)
    assert empty.trade_stats is not None and empty.trade_stats.count == 0


# -- benchmark ----------------------------------------------------------------------------


def test_analyze_when_benchmark_then_buy_and_hold_by_hand() -> None:
    curve = daily(*REFERENCE, per_year=6)
    prices = PriceSeries(ts=curve.ts, price=(50, 45, 54, 60))
    bench = analyze(curve, benchmark=prices).benchmark
    assert bench is not None
    assert bench.total_return == pytest.approx(0.2)  # 60 / 50 - 1
    assert bench.annualized_return == pytest.approx(0.44)  # 1.2 ** (6 / 3) - 1
    assert bench.max_drawdown == pytest.approx(0.1)  # 1 - 45 / 50
    assert bench.excess_return == pytest.approx(-0.012)  # 0.188 - 0.2
    assert bench.equity == pytest.approx((100, 90, 108, 120))  # 100 * p / 50


def test_analyze_when_benchmark_stamped_elsewhere_then_as_of_each_bar() -> None:
    curve = daily(100, 100, 100, 100)
    prices = PriceSeries(ts=(T0 + DAY, T0 + 2 * DAY - 1), price=(40, 50))
    bench = analyze(curve, benchmark=prices).benchmark
    assert bench is not None
    # day 0 precedes the series: its first price 40; days 1 → 40; 2, 3 → 50
    assert bench.equity == pytest.approx((100, 100, 125, 125))
    assert bench.total_return == pytest.approx(0.25)


def test_analyze_when_risk_free_rate_not_above_minus_one_then_value_error() -> None:
    with pytest.raises(ValueError, match="risk_free_rate"):
        analyze(daily(100, 110), risk_free_rate=-1.0)


def test_performance_when_json_round_trip_then_equal() -> None:
    curve = daily(*FIVE_DAYS, interval="1d")
    fills = [buy("10", "100", 1, fee="1"), sell("4", "110", 2, fee="1")]
    p = analyze(
        curve,
        fills=fills,
        marks={"AAPL": D(105)},
        benchmark=PriceSeries(ts=curve.ts, price=(100, 100, 105, 110, 108)),
    )
    assert msgspec.json.decode(msgspec.json.encode(p), type=Performance) == p


# -- properties ---------------------------------------------------------------------------

equities = st.lists(st.floats(0.01, 1e9), min_size=1, max_size=80)
gaps = st.lists(st.integers(1, 40 * 86_400), min_size=80, max_size=80)


def finite_or_none(p: Performance) -> bool:
    values = [getattr(p, f) for f in p.__struct_fields__]
    floats = [v for v in values if isinstance(v, float)] + list(p.drawdown)
    return all(math.isfinite(v) for v in floats)


def curve_of(values: list[float], seconds: list[int]) -> EquityCurve:
    ts = [T0]
    for gap in seconds[: len(values) - 1]:
        ts.append(ts[-1] + gap * S)
    return EquityCurve(ts=tuple(ts), equity=tuple(values))


@settings(max_examples=300, deadline=None)
@given(values=equities, seconds=gaps)
def test_analyze_when_positive_equity_then_drawdown_in_unit_interval(
    values: list[float], seconds: list[int]
) -> None:
    p = analyze(curve_of(values, seconds))
    assert 0.0 <= p.max_drawdown < 1.0
    assert all(0.0 <= d < 1.0 for d in p.drawdown)
    assert p.max_drawdown == max(p.drawdown)
    assert 0 <= p.max_drawdown_duration_bars < len(values)
    assert finite_or_none(p)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.floats(10, 1000), min_size=1, max_size=80), seconds=gaps)
def test_analyze_when_monthly_returns_then_they_compound_to_the_total(
    values: list[float], seconds: list[int]
) -> None:
    # (moderate values: compounding float returns near -1 loses digits by design)
    p = analyze(curve_of(values, seconds))
    growth = math.prod(1 + m.ret for m in p.monthly_returns if m.ret is not None)
    assert growth == pytest.approx(1 + p.total_return, rel=1e-9)


@settings(max_examples=200, deadline=None)
@given(prices=st.lists(st.floats(0.01, 1e6), min_size=2, max_size=60))
def test_analyze_when_buy_and_hold_then_matches_its_benchmark(prices: list[float]) -> None:
    series = PriceSeries(ts=tuple(T0 + i * DAY for i in range(len(prices))), price=tuple(prices))
    first = D(prices[0])
    fills = [Fill(symbol="X", side="buy", qty=D(3), price=first, ts=T0)]
    curve = mark_to_market(series, fills, cash=3 * first, interval="1d")
    p = analyze(curve, fills=fills, marks={"X": D(prices[-1])}, benchmark=series)
    assert p.benchmark is not None
    assert p.benchmark.equity == pytest.approx(p.equity, rel=1e-12)
    assert p.benchmark.total_return == pytest.approx(p.total_return, rel=1e-12, abs=1e-12)
    assert p.benchmark.max_drawdown == pytest.approx(p.max_drawdown, abs=1e-12)
    assert p.exposure == 1.0 and p.trades == ()

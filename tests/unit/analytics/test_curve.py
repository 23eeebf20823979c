"""Equity curves and price series: validation, annualization, marking fills to market."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.analytics import (
    EquityCurve,
    Fill,
    PriceSeries,
    infer_periods_per_year,
    mark_to_market,
    periods_per_year,
)
from engine.intervals import IntervalError

D = Decimal
S = 1_000_000_000
DAY = 86_400 * S


def ns(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, tzinfo=UTC).timestamp()) * S


T0 = ns(2024, 1, 2)


@pytest.mark.parametrize(
    ("interval", "expected"),
    [
        ("1m", 98_280.0),  # 252 * 23,400 / 60
        ("5m", 19_656.0),  # 252 * 23,400 / 300
        ("60m", 1_638.0),  # 252 * 6.5
        ("1h", 1_638.0),
        ("90m", 1_092.0),  # 252 * 23,400 / 5,400
        ("1d", 252.0),
        ("5d", 50.4),  # 252 / 5
        ("1wk", 52.0),
        ("1mo", 12.0),
        ("3mo", 4.0),
    ],
)
def test_periods_per_year_when_interval_then_us_equity_calendar(
    interval: str, expected: float
) -> None:
    assert periods_per_year(interval) == pytest.approx(expected)


def test_periods_per_year_when_unknown_interval_then_interval_error() -> None:
    with pytest.raises(IntervalError):
        periods_per_year("7m")


def test_infer_when_daily_bars_with_weekend_then_252() -> None:
    # Tue … Fri, Mon: spacings 1, 1, 1, 3 days; the median is 1 day
    ts = [T0 + d * DAY for d in (0, 1, 2, 3, 6)]
    assert infer_periods_per_year(ts) == 252.0


def test_infer_when_minute_bars_over_two_sessions_then_98280() -> None:
    first = [T0 + i * 60 * S for i in range(390)]
    second = [T0 + DAY + i * 60 * S for i in range(390)]
    assert infer_periods_per_year(first + second) == 98_280.0


def test_infer_when_monthly_bars_then_snapped_to_1mo() -> None:
    ts = [ns(2024, 1, 1), ns(2024, 2, 1), ns(2024, 3, 1), ns(2024, 4, 1)]  # 31, 29, 31 days
    assert infer_periods_per_year(ts) == 12.0  # 31 days is within 10 % of 30


def test_infer_when_spacing_not_a_named_interval_then_calendar_time() -> None:
    # 2 h: nearest named is 90m, 1,800 s away (> 720 s); 365.25 * 86,400 / 7,200 = 4,383
    ts = [T0 + i * 7_200 * S for i in range(5)]
    assert infer_periods_per_year(ts) == pytest.approx(4_383.0)


def test_infer_when_single_timestamp_then_none() -> None:
    assert infer_periods_per_year([T0]) is None


def test_annualization_when_override_and_interval_then_override_first() -> None:
    ts = (T0, T0 + 60 * S, T0 + 120 * S)
    equity = (1.0, 1.0, 1.0)
    assert EquityCurve(ts=ts, equity=equity).annualization() == 98_280.0
    assert EquityCurve(ts=ts, equity=equity, interval="1d").annualization() == 252.0
    both = EquityCurve(ts=ts, equity=equity, interval="1d", periods_per_year=365.0)
    assert both.annualization() == 365.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ts": (), "equity": ()}, "at least one"),
        ({"ts": (1, 2), "equity": (1.0,)}, "2 timestamps and 1 values"),
        ({"ts": (2, 2), "equity": (1.0, 1.0)}, "strictly increasing"),
        ({"ts": (1, 2), "equity": (1.0, float("nan"))}, "finite"),
        ({"ts": (1,), "equity": (0.0,)}, "start positive"),
        ({"ts": (1,), "equity": (1.0,), "periods_per_year": 0.0}, "periods_per_year"),
        ({"ts": (1,), "equity": (1.0,), "interval": "7m"}, "unknown interval"),
    ],
)
def test_equity_curve_when_invalid_then_value_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EquityCurve(**kwargs)


def test_equity_curve_when_later_equity_not_positive_then_accepted() -> None:
    assert EquityCurve(ts=(1, 2), equity=(1.0, -1.0)).equity == (1.0, -1.0)


def test_price_series_when_not_positive_then_value_error() -> None:
    with pytest.raises(ValueError, match="positive"):
        PriceSeries(ts=(1, 2), price=(1.0, 0.0))


def test_asof_when_between_and_before_points_then_last_known_or_first() -> None:
    series = PriceSeries(ts=(10, 20, 30), price=(1.0, 2.0, 3.0))
    assert series.asof([5, 10, 15, 20, 29, 30, 99]).tolist() == [1, 1, 1, 2, 2, 3, 3]


def test_mark_to_market_when_round_trip_then_cash_plus_marked_position() -> None:
    prices = PriceSeries(ts=(T0, T0 + DAY, T0 + 2 * DAY, T0 + 3 * DAY), price=(100, 102, 101, 105))
    fills = [
        Fill(symbol="AAPL", side="buy", qty=D(10), price=D("100.5"), fee=D(1), ts=T0),
        Fill(symbol="AAPL", side="sell", qty=D(10), price=D(104), fee=D(1), ts=T0 + 3 * DAY),
    ]
    curve = mark_to_market(prices, fills, cash=D(10_000), interval="1d")
    # cash after the buy: 10,000 - 1,005 - 1 = 8,994
    # t0: 8,994 + 10 * 100 = 9,994; t1: + 10 * 102 = 10,014; t2: + 10 * 101 = 10,004
    # t3: sold, 8,994 + 1,040 - 1 = 10,033
    assert curve.equity == (9_994.0, 10_014.0, 10_004.0, 10_033.0)
    assert (curve.ts, curve.interval) == (prices.ts, "1d")


def test_mark_to_market_when_two_symbols_then_value_error() -> None:
    prices = PriceSeries(ts=(1,), price=(1.0,))
    fills = [
        Fill(symbol="AAPL", side="buy", qty=D(1), price=D(1), ts=1),
        Fill(symbol="MSFT", side="buy", qty=D(1), price=D(1), ts=1),
    ]
    with pytest.raises(ValueError, match="one symbol"):
        mark_to_market(prices, fills, cash=D(10))


@settings(max_examples=200, deadline=None)
@given(
    prices=st.lists(st.floats(0.01, 1e6), min_size=1, max_size=50),
    qty=st.integers(1, 10_000).map(D),
)
def test_mark_to_market_when_buy_and_hold_then_equity_is_price_curve_scaled(
    prices: list[float], qty: Decimal
) -> None:
    series = PriceSeries(ts=tuple(T0 + i * DAY for i in range(len(prices))), price=tuple(prices))
    first = D(prices[0])  # the float's exact value: cash buys exactly qty at the first price
    buy = Fill(symbol="X", side="buy", qty=qty, price=first, ts=T0)
    curve = mark_to_market(series, [buy], cash=qty * first)
    expected = [curve.equity[0] * p / prices[0] for p in prices]
    assert curve.equity == pytest.approx(expected, rel=1e-12)

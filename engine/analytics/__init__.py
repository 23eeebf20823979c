"""Performance analytics shared by backtests and the live/paper account: pure functions
of an equity curve, fills and an optional benchmark (formulas in
:mod:`engine.analytics.performance`)."""

from engine.analytics.curve import (
    EquityCurve,
    PriceSeries,
    infer_periods_per_year,
    mark_to_market,
    periods_per_year,
)
from engine.analytics.performance import (
    BenchmarkComparison,
    MonthlyReturn,
    Performance,
    analyze,
)
from engine.analytics.trades import (
    Fill,
    Lot,
    RoundTrips,
    Trade,
    TradeStats,
    round_trips,
    trade_stats,
)

__all__ = [
    "BenchmarkComparison",
    "EquityCurve",
    "Fill",
    "Lot",
    "MonthlyReturn",
    "Performance",
    "PriceSeries",
    "RoundTrips",
    "Trade",
    "TradeStats",
    "analyze",
    "infer_periods_per_year",
    "mark_to_market",
    "periods_per_year",
    "round_trips",
    "trade_stats",
]

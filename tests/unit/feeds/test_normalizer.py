"""The normalizer's rules one by one on hand-made frames, its invariants as properties,
gap detection, corporate actions, and quote validation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loguru import logger

from engine.persistence.models.market import BarFlag
from engine.stats import StatsRegistry
from feeds.normalizer import NormalizeResult, QuoteRejected, normalize_bars, normalize_quote
from feeds.schema import BAR_FRAME_COLUMNS, NS, Quote
from feeds.source import SourceDataError

MIN = 60 * NS
HOUR = 60 * MIN
DAY = 24 * HOUR
T0 = 1_699_920_000 * NS  # Tue 2023-11-14 00:00 UTC
GOOD = (10.0, 11.0, 9.0, 10.5, 100.0)


def frame(*rows: tuple[Any, ...], **extra: list[Any]) -> pd.DataFrame:
    """Rows of (ts, open, high, low, close, volume)."""
    columns = ["ts", "open", "high", "low", "close", "volume"]
    out = pd.DataFrame([list(r) for r in rows], columns=columns)
    for name, values in extra.items():
        out[name] = values
    return out


def bar(ts: float, *values: Any) -> tuple[Any, ...]:
    return (ts, *(values or GOOD))


def minutes(n: int, start: int = T0) -> list[tuple[Any, ...]]:
    return [bar(start + i * MIN) for i in range(n)]


def normalize(raw: pd.DataFrame, interval: str = "1m", **kwargs: Any) -> NormalizeResult:
    kwargs.setdefault("stats", StatsRegistry())
    return normalize_bars(raw, symbol="TEST", interval=interval, origin="replay", **kwargs)


@pytest.fixture(name="warnings")
def warnings_fixture() -> Iterator[list[str]]:
    lines: list[str] = []
    handler = logger.add(lambda m: lines.append(m.record["message"]), level="WARNING")
    yield lines
    logger.remove(handler)


# -- clean input -----------------------------------------------------------------------


def test_normalize_when_clean_then_exact_schema_and_nothing_counted() -> None:
    result = normalize(frame(*minutes(3)))

    expected = pd.DataFrame(
        {
            "symbol": ["TEST"] * 3,
            "interval": ["1m"] * 3,
            "ts": np.array([T0, T0 + MIN, T0 + 2 * MIN], dtype=np.int64),
            "open": [10.0] * 3,
            "high": [11.0] * 3,
            "low": [9.0] * 3,
            "close": [10.5] * 3,
            "volume": [100.0] * 3,
            "source": ["replay"] * 3,
            "flags": np.zeros(3, dtype=np.int64),
        }
    )
    assert tuple(result.bars.columns) == BAR_FRAME_COLUMNS
    pd.testing.assert_frame_equal(result.bars, expected, check_dtype=False)
    assert result.bars["ts"].dtype == np.int64 and result.bars["flags"].dtype == np.int64
    assert all(result.bars[c].dtype == np.float64 for c in ("open", "high", "low", "close"))
    assert (result.rejected, result.repaired, result.gaps) == ({}, {}, [])


def test_normalize_when_empty_then_empty_frame_with_schema() -> None:
    result = normalize(frame())
    assert tuple(result.bars.columns) == BAR_FRAME_COLUMNS and result.bars.empty
    assert result.bars["ts"].dtype == np.int64


def test_normalize_when_column_missing_then_source_data_error_names_it() -> None:
    raw = frame(*minutes(2)).drop(columns=["high", "volume"])
    with pytest.raises(SourceDataError, match=r"lack column\(s\) high, volume"):
        normalize(raw)


def test_normalize_when_simulated_then_flag_and_source_set() -> None:
    result = normalize_bars(
        frame(*minutes(2)), symbol="X", interval="1m", origin="synthetic", simulated=True,
        stats=StatsRegistry(),
    )  # fmt: skip
    assert set(result.bars["source"]) == {"synthetic"}
    assert (result.bars["flags"] == int(BarFlag.SIMULATED)).all()


# -- rejections ------------------------------------------------------------------------

REJECTIONS = [
    ("bad_ts", bar(np.nan)),
    ("non_finite_price", bar(T0 + 9 * MIN, np.nan, 11.0, 9.0, 10.5, 1.0)),
    ("non_finite_price", bar(T0 + 9 * MIN, 10.0, np.inf, 9.0, 10.5, 1.0)),
    ("non_finite_price", bar(T0 + 9 * MIN, 10.0, 11.0, 9.0, "n/a", 1.0)),
    ("negative_price", bar(T0 + 9 * MIN, 10.0, 11.0, -9.0, 10.5, 1.0)),
    ("zero_price", bar(T0 + 9 * MIN, 0.0, 11.0, 9.0, 10.5, 1.0)),
    ("non_finite_volume", bar(T0 + 9 * MIN, 10.0, 11.0, 9.0, 10.5, np.inf)),
    ("negative_volume", bar(T0 + 9 * MIN, 10.0, 11.0, 9.0, 10.5, -1.0)),
    ("high_below_low", bar(T0 + 9 * MIN, 10.0, 9.0, 11.0, 10.0, 1.0)),
    ("ohlc_outside_range", bar(T0 + 9 * MIN, 15.0, 11.0, 9.0, 10.5, 1.0)),
    ("ohlc_outside_range", bar(T0 + 9 * MIN, 10.0, 11.0, 9.0, 8.0, 1.0)),
    ("misaligned_ts", bar(T0 + 9 * MIN + 30 * NS)),
]


@pytest.mark.parametrize(("reason", "row"), REJECTIONS, ids=[r for r, _ in REJECTIONS])
def test_normalize_when_row_bad_then_rejected_for_reason(reason: str, row: tuple) -> None:
    good = minutes(3)
    stats = StatsRegistry()

    result = normalize(frame(good[0], row, *good[1:]), stats=stats)

    assert result.rejected == {reason: 1}
    assert result.bars["ts"].tolist() == [r[0] for r in good]
    assert stats.snapshot()[f"qsuite_feed_rows_rejected_total{{reason={reason}}}"] == 1


def test_normalize_when_row_fails_several_rules_then_first_reason_only() -> None:
    row = bar(T0 + 9 * MIN + 1, -1.0, 0.0, 9.0, np.nan, -3.0)  # every price rule, misaligned
    assert normalize(frame(*minutes(2), row)).rejected == {"non_finite_price": 1}


def test_normalize_when_rows_rejected_then_one_warning_with_counts_and_sample(
    warnings: list[str],
) -> None:
    raw = frame(*minutes(3), bar(T0 + 5 * MIN, 0.0, 1, 1, 1, 1), bar(T0 + 6 * MIN, -1, 1, 1, 1, 1))

    normalize(raw)

    assert len(warnings) == 1
    assert "Cannot use 2 of 5 TEST 1m rows from replay" in warnings[0]
    assert "negative_price=1, zero_price=1" in warnings[0]
    assert "row 3 (zero_price)" in warnings[0]


def test_normalize_when_nothing_rejected_then_no_warning(warnings: list[str]) -> None:
    normalize(frame(*minutes(3), bar(T0, *GOOD)))  # a duplicate is a repair, not a rejection
    assert warnings == []


def test_misaligned_when_hourly_bars_at_half_past_then_majority_phase_accepted() -> None:
    start = T0 + 14 * HOUR + 30 * MIN  # NYSE hourly bars: 14:30, 15:30 … UTC
    rows = [bar(start + i * HOUR) for i in range(5)] + [bar(start + 5 * HOUR + 17 * MIN)]

    result = normalize(frame(*rows), interval="1h")

    assert result.rejected == {"misaligned_ts": 1}
    assert len(result.bars) == 5


def test_misaligned_when_anchor_given_then_grid_fixed() -> None:
    rows = [bar(T0 + 30 * MIN + i * HOUR) for i in range(3)]
    assert normalize(frame(*rows), interval="1h", anchor_ns=0).rejected == {"misaligned_ts": 3}


# -- repairs ---------------------------------------------------------------------------


def test_repair_when_volume_nan_then_zero_and_counted() -> None:
    result = normalize(frame(bar(T0, 10.0, 11.0, 9.0, 10.5, np.nan), *minutes(2, T0 + MIN)))
    assert result.repaired == {"nan_volume": 1}
    assert result.bars["volume"].tolist() == [0.0, 100.0, 100.0]


def test_repair_when_open_close_slightly_outside_range_then_high_low_widened() -> None:
    rows = [bar(T0, 11.05, 11.0, 9.0, 10.0, 1.0), bar(T0 + MIN, 10.0, 11.0, 9.0, 8.95, 1.0)]

    result = normalize(frame(*rows))

    assert result.repaired == {"ohlc_widened": 2}
    assert result.bars[["open", "high", "low", "close"]].values.tolist() == [
        [11.05, 11.05, 9.0, 10.0],
        [10.0, 11.0, 8.95, 8.95],
    ]


def test_repair_when_out_of_order_then_sorted_and_descents_counted() -> None:
    ts = [T0 + 2 * MIN, T0, T0 + MIN, T0 + 4 * MIN, T0 + 3 * MIN]
    result = normalize(frame(*(bar(t) for t in ts)))
    assert result.repaired == {"out_of_order": 2}
    assert result.bars["ts"].tolist() == sorted(ts)


def test_repair_when_duplicate_ts_then_last_row_wins() -> None:
    rows = [bar(T0, *GOOD), bar(T0 + MIN), bar(T0, 20.0, 21.0, 19.0, 20.5, 7.0)]

    result = normalize(frame(*rows))

    assert result.repaired == {"duplicate": 1, "out_of_order": 1}
    assert result.bars.iloc[0][["open", "volume"]].tolist() == [20.0, 7.0]


def test_repair_when_last_duplicate_rejected_then_valid_one_kept() -> None:
    rows = [bar(T0), bar(T0, 0.0, 1.0, 1.0, 1.0, 1.0)]
    result = normalize(frame(*rows))
    assert (result.rejected, result.repaired, len(result.bars)) == ({"zero_price": 1}, {}, 1)


def test_repairs_counted_in_stats() -> None:
    stats = StatsRegistry()
    normalize(frame(bar(T0 + MIN), bar(T0), bar(T0)), stats=stats)
    snapshot = stats.snapshot()
    assert snapshot["qsuite_feed_rows_repaired_total{rule=duplicate}"] == 1
    assert snapshot["qsuite_feed_rows_repaired_total{rule=out_of_order}"] == 1


# -- timestamps ------------------------------------------------------------------------


def test_ts_when_tz_aware_datetimes_then_utc_ns() -> None:
    stamps = pd.date_range("2023-11-14 09:30", periods=3, freq="1min", tz="America/New_York")
    raw = frame(*(bar(0) for _ in range(3))).assign(ts=stamps)

    result = normalize(raw)

    assert result.bars["ts"].tolist() == [int(s.tz_convert("UTC").value) for s in stamps]


def test_ts_when_naive_datetimes_without_tz_then_value_error() -> None:
    raw = frame(bar(0)).assign(ts=pd.to_datetime(["2023-11-14 09:30"]))
    with pytest.raises(ValueError, match="naive timestamps"):
        normalize(raw)


def test_ts_when_naive_datetimes_with_declared_tz_then_localized() -> None:
    raw = frame(bar(0)).assign(ts=pd.to_datetime(["2023-11-14 09:30"]))
    result = normalize(raw, tz="America/New_York")
    assert result.bars["ts"].tolist() == [pd.Timestamp("2023-11-14 14:30", tz="UTC").value]


def test_ts_when_iso_text_with_offsets_then_parsed_and_garbage_rejected() -> None:
    text = ["2023-11-14T09:30:00-05:00", "not a date", "2023-11-14T09:31:00-05:00"]
    result = normalize(frame(*(bar(0) for _ in text)).assign(ts=text))
    assert result.rejected == {"bad_ts": 1}
    assert result.bars["ts"].tolist() == [T0 + 14 * HOUR + 30 * MIN, T0 + 14 * HOUR + 31 * MIN]


def test_ts_when_nonexistent_local_time_then_bad_ts() -> None:
    raw = frame(bar(0), bar(0)).assign(ts=pd.to_datetime(["2024-03-10 02:30", "2024-03-10 03:30"]))
    result = normalize(raw, tz="America/New_York")
    assert result.rejected == {"bad_ts": 1} and len(result.bars) == 1


def test_ts_when_daily_tz_aware_then_session_date_at_midnight_utc() -> None:
    tokyo = pd.date_range(
        "2023-11-14", periods=2, freq="D", tz="Asia/Tokyo"
    )  # 15:00 UTC the day before
    result = normalize(frame(bar(0), bar(0)).assign(ts=tokyo), interval="1d")
    assert result.bars["ts"].tolist() == [T0, T0 + DAY]


def test_ts_when_daily_int_ns_off_midnight_then_floored_to_utc_date() -> None:
    result = normalize(frame(bar(T0 + 5 * HOUR), bar(T0 + DAY + 5 * HOUR)), interval="1d")
    assert result.bars["ts"].tolist() == [T0, T0 + DAY]


def test_ts_when_datetime_index_then_used() -> None:
    raw = frame(bar(0), bar(0)).drop(columns="ts")
    raw.index = pd.DatetimeIndex([T0, T0 + MIN], tz="UTC", name="Datetime")
    assert normalize(raw).bars["ts"].tolist() == [T0, T0 + MIN]


# -- corporate actions -----------------------------------------------------------------


def daily_with_actions() -> pd.DataFrame:
    rows = [bar(T0 + i * DAY, 10.0, 12.0, 8.0, 10.0, 5.0) for i in range(3)]
    return frame(*rows, adj_close=[9.0, 9.5, 10.0], dividend=[0.0, 0.5, 0.0], split=[0, 0, 2.0])


def test_corporate_action_when_flag_mode_then_raw_prices_and_event_bits() -> None:
    result = normalize(daily_with_actions(), interval="1d")

    assert result.bars["close"].tolist() == [10.0, 10.0, 10.0]
    action = int(BarFlag.CORPORATE_ACTION)
    assert result.bars["flags"].tolist() == [0, action, action]


def test_corporate_action_when_adjust_mode_then_scaled_by_adj_close_ratio() -> None:
    result = normalize(daily_with_actions(), interval="1d", adjust="adjust")

    bars = result.bars
    assert bars[["open", "high", "low", "close"]].to_numpy() == pytest.approx(
        np.array([[9.0, 10.8, 7.2, 9.0], [9.5, 11.4, 7.6, 9.5], [10.0, 12.0, 8.0, 10.0]]),
        rel=1e-15,
    )
    assert bars["volume"].tolist() == [5.0] * 3
    adjusted, action = int(BarFlag.ADJUSTED), int(BarFlag.CORPORATE_ACTION)
    assert bars["flags"].tolist() == [adjusted, adjusted | action, adjusted | action]


def test_corporate_action_when_adjust_and_adj_close_bad_then_rejected() -> None:
    raw = daily_with_actions().assign(adj_close=[9.0, np.nan, 0.0])
    result = normalize(raw, interval="1d", adjust="adjust")
    assert result.rejected == {"bad_adj_close": 2} and len(result.bars) == 1


def test_corporate_action_when_adjust_without_adj_close_then_prices_unchanged() -> None:
    result = normalize(frame(*minutes(2)), adjust="adjust")
    assert result.bars["flags"].tolist() == [0, 0] and result.bars["open"].tolist() == [10.0] * 2


def test_price_scale_when_minor_unit_then_prices_divided() -> None:
    result = normalize(frame(bar(T0, 1000.0, 1100.0, 900.0, 1050.0, 7.0)), price_scale=0.01)
    assert result.bars[["open", "high", "low", "close", "volume"]].values.tolist() == [
        [10.0, 11.0, 9.0, 10.5, 7.0]
    ]


# -- gaps ------------------------------------------------------------------------------


def test_gaps_when_continuous_then_every_missing_slot() -> None:
    ts = [T0, T0 + MIN, T0 + 4 * MIN, T0 + 5 * MIN, T0 + 7 * MIN]
    result = normalize(frame(*(bar(t) for t in ts)), continuous=True)
    assert result.gaps == [(T0 + 2 * MIN, T0 + 4 * MIN, 2), (T0 + 6 * MIN, T0 + 7 * MIN, 1)]


def test_gaps_when_simulated_then_continuous_by_default() -> None:
    ts = [T0 + 23 * HOUR + 59 * MIN, T0 + DAY + MIN]  # across midnight
    result = normalize(frame(*(bar(t) for t in ts)), simulated=True)
    assert result.gaps == [(T0 + DAY, T0 + DAY + MIN, 1)]


def test_gaps_when_exchange_data_then_only_short_same_day_holes() -> None:
    open_ = T0 + 14 * HOUR + 30 * MIN
    ts = [
        open_,
        open_ + 3 * MIN,  # 2 missing: a gap
        open_ + 5 * HOUR,  # 4 h 57 min later: a session break, not a gap
        T0 + DAY + 14 * HOUR + 30 * MIN,  # next day: overnight, not a gap
    ]
    result = normalize(frame(*(bar(t) for t in ts)))
    assert result.gaps == [(open_ + MIN, open_ + 3 * MIN, 2)]


def test_gaps_when_daily_then_missing_weekdays_only() -> None:
    days = [
        "2023-11-09",
        "2023-11-10",
        "2023-11-13",
        "2023-11-15",
        "2023-11-20",
    ]  # Thu Fri Mon Wed Mon
    ts = [pd.Timestamp(d, tz="UTC").value for d in days]

    result = normalize(frame(*(bar(t) for t in ts)), interval="1d")

    tue, thu = (
        pd.Timestamp("2023-11-14", tz="UTC").value,
        pd.Timestamp("2023-11-16", tz="UTC").value,
    )
    assert result.gaps == [(tue, ts[3], 1), (thu, ts[4], 2)]


def test_gaps_when_weekly_then_none() -> None:
    assert normalize(frame(bar(T0), bar(T0 + 21 * DAY)), interval="1wk").gaps == []


# -- invariants ------------------------------------------------------------------------

_price = st.one_of(
    st.floats(min_value=0.5, max_value=200.0),
    st.sampled_from([0.0, -1.0, np.nan, np.inf, -np.inf]),
)
_row = st.tuples(
    st.integers(min_value=0, max_value=30).map(lambda i: T0 + i * MIN)
    | st.integers(min_value=0, max_value=30 * 60).map(lambda s: T0 + s * NS)
    | st.just(np.nan),
    _price,
    _price,
    _price,
    _price,
    st.one_of(st.floats(min_value=0, max_value=1e9), st.sampled_from([np.nan, -5.0, np.inf])),
)


@settings(max_examples=50, deadline=None)
@given(rows=st.lists(_row, max_size=40), continuous=st.booleans())
def test_normalize_properties_when_arbitrary_rows_then_invariants_hold(
    rows: list[tuple], continuous: bool
) -> None:
    raw = frame(*rows)

    result = normalize(raw, continuous=continuous)

    bars = result.bars
    ts = bars["ts"].to_numpy()
    assert (np.diff(ts) > 0).all()
    values = bars[["open", "high", "low", "close", "volume"]].to_numpy()
    assert np.isfinite(values).all() and (values[:, :4] > 0).all() and (values[:, 4] >= 0).all()
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    duplicates = result.repaired.get("duplicate", 0)
    assert len(bars) + sum(result.rejected.values()) == len(raw) - duplicates
    assert all(n > 0 for n in [*result.rejected.values(), *result.repaired.values()])
    for start, end, missing in result.gaps:
        assert end in set(ts.tolist()) and start < end and missing == (end - start) // MIN


# -- quotes ----------------------------------------------------------------------------


def quote(**fields: Any) -> Quote:
    values: dict[str, Any] = dict(
        symbol="AAPL", ts=T0, bid=10.0, ask=10.02, bid_size=100, ask_size=200, last=10, volume=5,
        origin="yahoo",
    )  # fmt: skip
    values.update(fields)
    return Quote(**values)


def test_normalize_quote_when_valid_then_same_quote_with_floats() -> None:
    result = normalize_quote(quote(), stats=StatsRegistry())
    assert isinstance(result, Quote) and result == quote(bid_size=100.0, last=10.0)
    assert all(isinstance(getattr(result, f), float) for f in ("bid_size", "last", "volume"))


def test_normalize_quote_when_locked_then_accepted() -> None:
    assert isinstance(normalize_quote(quote(bid=10.0, ask=10.0), stats=StatsRegistry()), Quote)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"ts": 0}, "bad_ts"),
        ({"bid": float("nan")}, "non_finite"),
        ({"ask": float("inf")}, "non_finite"),
        ({"bid": 0.0}, "non_positive_price"),
        ({"last": -1.0}, "non_positive_price"),
        ({"ask_size": -1.0}, "negative_size"),
        ({"bid": 10.05}, "crossed"),
    ],
)
def test_normalize_quote_when_invalid_then_rejected_and_counted(
    fields: dict[str, Any], reason: str
) -> None:
    stats = StatsRegistry()
    result = normalize_quote(quote(**fields), stats=stats)
    assert result == QuoteRejected(reason, quote(**fields))
    assert stats.snapshot()[f"qsuite_feed_quotes_rejected_total{{reason={reason}}}"] == 1

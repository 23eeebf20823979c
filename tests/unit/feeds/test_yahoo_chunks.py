"""Chunk planning to Yahoo's history limits, and the raw frames chunks become."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.schema import INTERVAL_SECONDS, INTRADAY, NS, IntervalError
from feeds.source import SourceDataError
from feeds.yahoo_chunks import (
    DAY_NS,
    HOUR_NS,
    RAW_COLUMNS,
    SAFETY_NS,
    HistoryLimit,
    clip_notice,
    day_ceil,
    earliest_start_ns,
    history_limit,
    plan_chunks,
    stitch,
    to_raw_frame,
)


def ns(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp()) * NS  # type: ignore[misc]


NOW = ns(2024, 6, 18, 20, 5)


@pytest.mark.parametrize(
    ("interval", "limit"),
    [
        ("1m", HistoryLimit(30, 7 * DAY_NS)),
        *[(i, HistoryLimit(60, None)) for i in ("2m", "5m", "15m", "30m", "90m")],
        *[(i, HistoryLimit(730, None)) for i in ("60m", "1h")],
        *[(i, HistoryLimit(None, None)) for i in ("1d", "5d", "1wk", "1mo", "3mo")],
    ],
)
def test_history_limit_per_interval_family(interval: str, limit: HistoryLimit) -> None:
    assert history_limit(interval) == limit


def test_history_limit_covers_every_known_interval() -> None:
    for interval in INTERVAL_SECONDS:
        history_limit(interval)


def test_history_limit_when_interval_unknown_then_interval_error() -> None:
    with pytest.raises(IntervalError):
        history_limit("7m")


def test_plan_1m_when_ten_days_then_a_seven_day_chunk_and_the_rest() -> None:
    assert plan_chunks("1m", ns(2024, 6, 3), ns(2024, 6, 13), NOW) == [
        (ns(2024, 6, 3), ns(2024, 6, 10)),
        (ns(2024, 6, 10), ns(2024, 6, 13)),
    ]


def test_plan_1m_when_start_older_than_30_days_then_clipped_to_the_window() -> None:
    chunks = plan_chunks("1m", ns(2024, 1, 1), NOW, NOW)

    # 30 days back, an hour inside, rounded up to the hour.
    assert ns(2024, 5, 19, 21, 5) == NOW - 30 * DAY_NS + SAFETY_NS
    assert chunks[0][0] == ns(2024, 5, 19, 22)
    assert chunks[-1][1] == NOW
    assert len(chunks) == 5  # 29 days 22 hours in 7-day requests


def test_plan_when_replanned_moments_later_then_same_chunks() -> None:
    # A backfill plans, then the source plans each chunk again a few seconds later.
    planned = plan_chunks("1m", ns(2024, 1, 1), NOW, NOW)

    for start, end in planned:
        assert plan_chunks("1m", start, end, NOW + 30 * NS) == [(start, end)]
        assert clip_notice("1m", start, end, NOW + 30 * NS) is None


def test_plan_5m_when_within_60_days_then_one_request() -> None:
    assert plan_chunks("5m", ns(2024, 5, 1), ns(2024, 6, 1), NOW) == [
        (ns(2024, 5, 1), ns(2024, 6, 1))
    ]


def test_plan_5m_when_start_older_than_60_days_then_clipped() -> None:
    assert plan_chunks("5m", ns(2024, 1, 1), ns(2024, 6, 1), NOW) == [
        (ns(2024, 4, 19, 22), ns(2024, 6, 1))
    ]


@pytest.mark.parametrize("interval", ["60m", "1h"])
def test_plan_hourly_when_start_older_than_730_days_then_clipped(interval: str) -> None:
    assert plan_chunks(interval, ns(2020, 1, 1), NOW, NOW) == [(ns(2022, 6, 19, 22), NOW)]


@pytest.mark.parametrize("interval", ["1d", "5d", "1wk", "1mo", "3mo"])
def test_plan_daily_and_longer_when_decades_then_one_request_unclipped(interval: str) -> None:
    start, end = ns(1980, 12, 12), ns(2024, 6, 19)

    assert plan_chunks(interval, start, end, NOW) == [(start, end)]
    assert clip_notice(interval, start, end, NOW) is None


def test_plan_intraday_when_end_in_the_future_then_ends_now() -> None:
    assert plan_chunks("5m", ns(2024, 6, 18), ns(2024, 6, 19), NOW) == [(ns(2024, 6, 18), NOW)]


@pytest.mark.parametrize("interval", ["1m", "5m", "1h", "1d"])
def test_plan_when_range_empty_then_no_request(interval: str) -> None:
    assert plan_chunks(interval, ns(2024, 6, 10), ns(2024, 6, 10), NOW) == []
    assert plan_chunks(interval, ns(2024, 6, 11), ns(2024, 6, 10), NOW) == []


def test_plan_1m_when_range_entirely_older_than_window_then_no_request() -> None:
    assert plan_chunks("1m", ns(2024, 4, 1), ns(2024, 4, 8), NOW) == []


def test_clip_notice_says_how_far_back_and_from_when() -> None:
    assert clip_notice("1m", ns(2024, 5, 1), NOW, NOW) == (
        "1m history only goes back 30 days; fetched from 2024-05-19 22:00 UTC"
    )
    assert clip_notice("15m", ns(2024, 1, 1), NOW, NOW) == (
        "15m history only goes back 60 days; fetched from 2024-04-19 22:00 UTC"
    )
    assert clip_notice("1m", ns(2024, 4, 1), ns(2024, 4, 8), NOW) == (
        "1m history only goes back 30 days; nothing of the requested range is available "
        "(oldest: 2024-05-19 22:00 UTC)"
    )
    assert clip_notice("1m", ns(2024, 6, 1), NOW, NOW) is None


# --- properties -------------------------------------------------------------------------

YEAR_NS = 365 * DAY_NS


@settings(max_examples=400, deadline=None)
@given(
    interval=st.sampled_from(sorted(INTERVAL_SECONDS)),
    now=st.integers(ns(2010, 1, 1), ns(2040, 1, 1)),
    start_back=st.integers(-YEAR_NS, 3 * YEAR_NS),
    length=st.integers(-DAY_NS, 3 * YEAR_NS),
)
def test_plan_chunks_cover_the_clipped_range_contiguously_within_limits(
    interval: str, now: int, start_back: int, length: int
) -> None:
    start = now - start_back
    end = start + length
    limit = history_limit(interval)
    earliest = earliest_start_ns(interval, now)

    chunks = plan_chunks(interval, start, end, now)

    lo = start if earliest is None else max(start, earliest)
    hi = end if interval not in INTRADAY else min(end, now)
    if lo >= hi:
        assert chunks == []
        return
    # Covers exactly the clipped range …
    assert chunks[0][0] == lo and chunks[-1][1] == hi
    for a, b in chunks:
        # … each request non-empty and within Yahoo's limits …
        assert a < b
        if limit.max_span_ns is not None:
            assert b - a <= limit.max_span_ns
        if earliest is not None:
            assert a >= earliest >= now - limit.lookback_days * DAY_NS + SAFETY_NS
            assert earliest % HOUR_NS == 0
        if interval in INTRADAY:
            assert b <= now
    # … contiguous and non-overlapping, in order, with no more requests than needed.
    for (_, b), (c, _) in itertools.pairwise(chunks):
        assert b == c
    if limit.max_span_ns is not None:
        assert len(chunks) == -(-(hi - lo) // limit.max_span_ns)
    else:
        assert len(chunks) == 1
    assert (clip_notice(interval, start, end, now) is not None) == (
        earliest is not None and start < earliest and start < end
    )


# --- raw frames -------------------------------------------------------------------------


def yf_frame(index: pd.DatetimeIndex, **extra: list[float]) -> pd.DataFrame:
    n = len(index)
    data = {
        "Open": [10.0 + i for i in range(n)],
        "High": [11.0 + i for i in range(n)],
        "Low": [9.0 + i for i in range(n)],
        "Close": [10.5 + i for i in range(n)],
        "Volume": np.arange(100, 100 + n, dtype=np.int64),
    }
    return pd.DataFrame({**data, **extra}, index=index)


def test_to_raw_frame_daily_when_asian_exchange_then_stamped_at_the_local_date() -> None:
    # Tokyo's 2024-06-18 session: yfinance says 2024-06-18 00:00+09:00 (= 06-17 15:00 UTC).
    index = pd.DatetimeIndex([pd.Timestamp("2024-06-18", tz="Asia/Tokyo")])

    frame = to_raw_frame(yf_frame(index), daily=True, symbol="7203.T")

    assert frame["ts"].tolist() == [ns(2024, 6, 18)]


def test_to_raw_frame_intraday_when_exchange_tz_then_utc_open_times() -> None:
    index = pd.date_range("2024-06-18 09:30", periods=3, freq="5min", tz="America/New_York")

    frame = to_raw_frame(yf_frame(index), daily=False, symbol="AAPL")

    assert frame["ts"].tolist() == [ns(2024, 6, 18, 13, 30 + 5 * i) for i in range(3)]
    assert list(frame.columns) == list(RAW_COLUMNS)
    assert frame["adj_close"].tolist() == frame["close"].tolist()
    assert frame["dividend"].eq(0.0).all() and frame["split"].eq(0.0).all()
    assert frame.dtypes.drop("ts").eq(np.float64).all() and frame["ts"].dtype == np.int64


def test_to_raw_frame_when_columns_missing_then_source_data_error() -> None:
    index = pd.date_range("2024-06-18", periods=2, freq="D", tz="America/New_York")

    with pytest.raises(SourceDataError, match="Close"):
        to_raw_frame(yf_frame(index).drop(columns="Close"), daily=True, symbol="AAPL")


def test_to_raw_frame_when_prices_not_numbers_then_source_data_error() -> None:
    index = pd.date_range("2024-06-18", periods=2, freq="D", tz="America/New_York")
    raw = yf_frame(index).astype({"Open": object})
    raw.loc[raw.index[0], "Open"] = "n/a"

    with pytest.raises(SourceDataError, match="prices of AAPL"):
        to_raw_frame(raw, daily=True, symbol="AAPL")


def test_stitch_when_chunks_share_a_bar_then_one_copy_sorted() -> None:
    index = pd.date_range("2024-06-18 13:30", periods=4, freq="1min", tz="UTC")
    frame = to_raw_frame(yf_frame(index), daily=False, symbol="AAPL")

    stitched = stitch([frame.iloc[2:], frame.iloc[:3]])

    assert stitched["ts"].tolist() == frame["ts"].tolist()
    assert stitch([]).columns.tolist() == list(RAW_COLUMNS)


def test_day_ceil_rounds_up_to_the_next_utc_midnight() -> None:
    assert day_ceil(ns(2024, 6, 18)).isoformat() == "2024-06-18"
    assert day_ceil(ns(2024, 6, 18) + 1).isoformat() == "2024-06-19"

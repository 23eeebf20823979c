"""How far back Yahoo keeps each interval, how to cut a range into requests it accepts,
and how the answers become one raw frame.

Yahoo's limits, per interval family:

============  =========================  ======================
interval      history available           one request at most
============  =========================  ======================
1m            the last 30 days            7 days
2m … 90m      the last 60 days            (the whole window)
60m, 1h       the last 730 days           (the whole window)
1d and up     everything                  (the whole range)
============  =========================  ======================

A start older than the window is **clipped** to the window, and the clipped part is
still fetched: a backfill gets what exists, plus a notice from :func:`clip_notice` such
as "1m history only goes back 30 days; fetched from 2024-05-19 22:00 UTC" (the Yahoo
source logs it and puts it in the frame's ``attrs["clipped"]``). A range entirely
outside the window plans no request at all. The earliest start stays at least
:data:`SAFETY_NS` inside the advertised window, so a request planned now is still valid
when it reaches Yahoo, and is rounded up to the hour, so plans made moments apart agree
(a backfill job plans, then the source re-plans each chunk) and start on a bar boundary.

Each answer (a yfinance history frame) becomes a raw frame of :data:`RAW_COLUMNS` via
:func:`to_raw_frame`; :func:`stitch` joins the chunks. Everything here is a pure
function of its arguments (``now_ns`` is passed in).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, Final, NamedTuple

import numpy as np
import pandas as pd

from feeds.schema import INTRADAY, NS, interval_ns
from feeds.source import SourceDataError

#: Columns of a raw Yahoo frame, in order (see :class:`feeds.yahoo.YahooSource`).
RAW_COLUMNS: Final = (
    *("ts", "open", "high", "low", "close", "volume"),
    *("adj_close", "dividend", "split"),
)
HOUR_NS: Final = 3_600 * NS
DAY_NS: Final = 24 * HOUR_NS
SAFETY_NS: Final = HOUR_NS
"""How far inside Yahoo's advertised window the earliest planned start stays."""


class HistoryLimit(NamedTuple):
    """Yahoo's window for one interval family; ``None`` means unlimited."""

    lookback_days: int | None
    max_span_ns: int | None


_MINUTE_1: Final = HistoryLimit(30, 7 * DAY_NS)
_MINUTES: Final = HistoryLimit(60, None)
_HOURLY: Final = HistoryLimit(730, None)
_DAILY: Final = HistoryLimit(None, None)


def history_limit(interval: str) -> HistoryLimit:
    """The window of ``interval``; raises :class:`feeds.schema.IntervalError` if unknown."""
    interval_ns(interval)
    if interval == "1m":
        return _MINUTE_1
    if interval in ("60m", "1h"):
        return _HOURLY
    return _MINUTES if interval in INTRADAY else _DAILY


def earliest_start_ns(interval: str, now_ns: int) -> int | None:
    """The oldest start we ask Yahoo for, for ``interval`` as of ``now_ns`` (None: any)."""
    days = history_limit(interval).lookback_days
    if days is None:
        return None
    return -(-(now_ns - days * DAY_NS + SAFETY_NS) // HOUR_NS) * HOUR_NS


def plan_chunks(interval: str, start_ns: int, end_ns: int, now_ns: int) -> list[tuple[int, int]]:
    """Half-open ``[start, end)`` requests that cover ``[start_ns, end_ns)`` within Yahoo's
    limits, oldest first: the start is clipped to the window, intraday ends to ``now_ns``,
    and each request spans at most the family's maximum. Empty if nothing is left."""
    limit = history_limit(interval)
    earliest = earliest_start_ns(interval, now_ns)
    start = start_ns if earliest is None else max(start_ns, earliest)
    end = end_ns if limit.lookback_days is None else min(end_ns, now_ns)
    if start >= end:
        return []
    if limit.max_span_ns is None:
        return [(start, end)]
    step = limit.max_span_ns
    return [(a, min(a + step, end)) for a in range(start, end, step)]


def clip_notice(interval: str, start_ns: int, end_ns: int, now_ns: int) -> str | None:
    """What to tell the caller when ``start_ns`` is older than Yahoo keeps (else None)."""
    earliest = earliest_start_ns(interval, now_ns)
    if earliest is None or start_ns >= earliest or start_ns >= end_ns:
        return None
    days = history_limit(interval).lookback_days
    head = f"{interval} history only goes back {days} days"
    if end_ns <= earliest:
        return f"{head}; nothing of the requested range is available (oldest: {_fmt(earliest)})"
    return f"{head}; fetched from {_fmt(earliest)}"


def _fmt(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / NS, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def day_ceil(ts_ns: int) -> date:
    """The first UTC date whose midnight is at or after ``ts_ns``."""
    return datetime.fromtimestamp(-(-ts_ns // DAY_NS) * DAY_NS // NS, tz=UTC).date()


def empty_frame() -> pd.DataFrame:
    """A raw frame without rows (the right columns and dtypes)."""
    return pd.DataFrame(
        {c: pd.Series(dtype=np.int64 if c == "ts" else np.float64) for c in RAW_COLUMNS}
    )


def stitch(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """One frame from the chunks' frames, sorted by ``ts``; a bar seen twice at a chunk
    seam keeps its later copy."""
    if not frames:
        return empty_frame()
    frame = pd.concat(frames, ignore_index=True)
    return frame.drop_duplicates("ts", keep="last").sort_values("ts", ignore_index=True)


_YF_COLUMNS: Final = (
    *("Open", "High", "Low", "Close", "Volume"),
    *("Adj Close", "Dividends", "Stock Splits"),
)


def to_raw_frame(raw: Any, *, daily: bool, symbol: str) -> pd.DataFrame:
    """The raw frame of a yfinance history frame (``auto_adjust=False, actions=True``).

    Intraday bars keep their open time in UTC; daily and longer bars are stamped at
    00:00 UTC of their date in the exchange's calendar (the schema's rule). Raises
    :class:`SourceDataError` when the frame is not what yfinance promises.
    """
    if not isinstance(raw, pd.DataFrame):
        raise SourceDataError(f"Yahoo's history of {symbol} is a {type(raw).__name__}")
    if raw.empty:
        return empty_frame()
    missing = {"Open", "High", "Low", "Close", "Volume"} - set(raw.columns)
    index = raw.index
    if missing or not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise SourceDataError(
            f"Cannot read Yahoo's history of {symbol}: missing {sorted(missing)} or no tz index"
        )
    stamps = index.tz_localize(None).normalize() if daily else index.tz_convert("UTC")
    try:
        values = {c: raw[c].to_numpy(dtype=np.float64) for c in _YF_COLUMNS if c in raw}
    except (TypeError, ValueError) as exc:
        raise SourceDataError(f"Cannot read Yahoo's prices of {symbol}: {exc}") from exc
    none = np.zeros(len(raw), dtype=np.float64)
    return pd.DataFrame(
        {
            "ts": stamps.as_unit("ns").asi8.astype(np.int64),
            "open": values["Open"],
            "high": values["High"],
            "low": values["Low"],
            "close": values["Close"],
            "volume": values["Volume"],
            "adj_close": values.get("Adj Close", values["Close"]),
            "dividend": values.get("Dividends", none),
            "split": values.get("Stock Splits", none),
        }
    )

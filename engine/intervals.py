"""Bar intervals, in Yahoo's spelling: the one table every module uses."""

from __future__ import annotations

from typing import Final

NS: Final = 1_000_000_000
#: Bar length of every supported interval, in seconds (Yahoo's names). Daily and longer
#: bars are stamped at the session's date, 00:00 UTC.
INTERVAL_SECONDS: Final[dict[str, int]] = {
    "1m": 60,
    "2m": 120,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "60m": 3600,
    "90m": 5400,
    "1h": 3600,
    "1d": 86400,
    "5d": 5 * 86400,
    "1wk": 7 * 86400,
    "1mo": 30 * 86400,
    "3mo": 91 * 86400,
}
INTRADAY: Final = frozenset(k for k, v in INTERVAL_SECONDS.items() if v < 86400)


class IntervalError(ValueError):
    """An interval QSuite does not know."""


def interval_ns(interval: str) -> int:
    """Length of one bar of ``interval`` in nanoseconds."""
    try:
        return INTERVAL_SECONDS[interval] * NS
    except KeyError:
        known = ", ".join(INTERVAL_SECONDS)
        raise IntervalError(f"unknown interval {interval!r}; use one of {known}") from None

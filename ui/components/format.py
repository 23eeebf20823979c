"""Values as an operator reads them: decimals without exponents, UTC clock times,
percentages and the colors of status badges; and numbers as an operator types them."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

FEED_MODE_COLORS = {
    "live": "positive",
    "delayed": "info",
    "simulated": "orange",
    "cached": "warning",
}
"""The feed's mode → its badge color (a simulated market stands out)."""


def num(value: Decimal | None, places: int | None = None, *, strip: bool = True) -> str:
    """A decimal as an operator reads it: no exponent, rounded to ``places``, without
    trailing zeros unless ``strip`` is off (money, prices at the book's tick); "-" for
    none."""
    if value is None:
        return "-"
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places))
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if strip and "." in text else text


def pct(value: float | None, *, signed: bool = False) -> str:
    """A share as a percentage with one decimal ("+1.5%" when ``signed``); "-" for none."""
    if value is None:
        return "-"
    return f"{value * 100:+.1f}%" if signed else f"{value * 100:.1f}%"


def clock(ts_ns: int | None) -> str:
    """The UTC time of day of a timestamp in ns ("-" for none)."""
    return time.strftime("%H:%M:%S", time.gmtime(ts_ns / 1e9)) if ts_ns else "-"


def when(ts_ns: int | None) -> str:
    """The UTC month, day and time of a timestamp in ns ("-" for none)."""
    return time.strftime("%m-%d %H:%M:%S", time.gmtime(ts_ns / 1e9)) if ts_ns else "-"


def iso(ts_ns: int) -> str:
    """A timestamp in ns as a UTC date and time to the microsecond (Plotly's date axis)."""
    return (EPOCH + timedelta(microseconds=ts_ns // 1000)).strftime("%Y-%m-%d %H:%M:%S.%f")


def parse_decimal(text: str) -> Decimal | None:
    """A typed number as a finite decimal, None when it is not one."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def parse_float(text: str) -> float | None:
    """A typed number as a finite float, None when it is not one."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None

"""The plain-text pieces every ``qsuite ctl`` renderer shares: a table of rows, a cell,
a rounded decimal, a UTC time."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any


def table(rows: list[dict[str, Any]]) -> None:
    """Rows as aligned columns under upper-case headers (the first row's keys)."""
    if not rows:
        print("(none)")
        return
    headers = list(rows[0])
    cells = [[cell(row.get(h)) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def rounded(value: Decimal | None, places: int) -> Decimal | None:
    """``value`` with at most ``places`` decimals, for people (``--json`` keeps them all):
    a mark of 99.8958864774 reads 99.8959; 100.5 stays 100.5."""
    if value is None or not value.is_finite():
        return value
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -places:
        return value
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


def utc_time(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M")

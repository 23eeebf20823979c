"""Decimals read back from ``Numeric(28, 10)`` columns, without the column's scale."""

from __future__ import annotations

from decimal import Decimal
from typing import overload


@overload
def plain_decimal(value: Decimal) -> Decimal: ...
@overload
def plain_decimal(value: Decimal | None) -> Decimal | None: ...
def plain_decimal(value: Decimal | None) -> Decimal | None:
    """``value`` without trailing zeros and never in exponent form
    (``100.0000000000`` → ``100``, ``100.5000000000`` → ``100.5``)."""
    if value is None or not value.is_finite():
        return value
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()

"""The console's shared formatting and redraw bookkeeping (pure: no NiceGUI page)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ui.components.format import clock, iso, num, parse_decimal, parse_float, pct, when
from ui.components.redraw import Changes

pytestmark = pytest.mark.timeout(30)

D = Decimal
T0 = 1_700_000_000_000_000_000
"""2023-11-14 22:13:20 UTC in ns."""


@pytest.mark.parametrize(
    ("value", "places", "strip", "shown"),
    [
        (None, None, True, "-"),
        (D("1E+2"), None, True, "100"),
        (D("12.500"), None, True, "12.5"),
        (D("12.500"), None, False, "12.500"),
        (D("1.23456"), 4, True, "1.2346"),
        (D("-3"), 2, False, "-3.00"),
    ],
)
def test_num_when_a_decimal_then_as_an_operator_reads_it(
    value: Decimal | None, places: int | None, strip: bool, shown: str
) -> None:
    assert num(value, places, strip=strip) == shown


def test_pct_when_signed_or_none_then_says_so() -> None:
    assert (pct(0.1234), pct(-0.05, signed=True), pct(0.05, signed=True)) == (
        "12.3%",
        "-5.0%",
        "+5.0%",
    )
    assert pct(None) == "-"


def test_times_when_a_timestamp_or_none_then_utc_or_a_dash() -> None:
    assert (clock(T0), when(T0), iso(T0 + 5_000)) == (
        "22:13:20",
        "11-14 22:13:20",
        "2023-11-14 22:13:20.000005",
    )
    assert clock(None) == when(0) == "-"


@pytest.mark.parametrize("text", ["", "abc", "nan", "inf", "-Infinity"])
def test_parse_when_not_a_finite_number_then_none(text: str) -> None:
    assert parse_decimal(text) is None
    assert parse_float(text) is None


def test_parse_when_a_number_then_its_value() -> None:
    assert parse_decimal(" 1.50 ") == D("1.50")
    assert parse_float("2.5") == 2.5


def test_changes_when_a_part_moves_then_true_once() -> None:
    changed = Changes()
    assert changed("book", (1, 2))
    assert not changed("book", (1, 2))
    assert changed("book", (1, 3))
    assert changed("fills", 0)  # each part on its own

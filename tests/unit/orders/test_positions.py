"""Positions: average cost, realized and unrealized P&L, exact to the last digit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.orders.positions import Position, side_sign

D = Decimal
TICK = D("0.01")


def flat() -> Position:
    return Position(account="acc", symbol="AAPL")


def fills(position: Position, *trades: tuple[str, str, str]) -> Position:
    for side, qty, price in trades:
        position = position.apply_fill(side, D(qty), D(price))  # type: ignore[arg-type]
    return position


def test_apply_fill_when_adding_then_avg_is_weighted() -> None:
    p = fills(flat(), ("buy", "10", "100"), ("buy", "30", "104"))
    assert (p.qty, p.avg_price, p.realized_pnl, p.cost) == (40, 103, 0, 4120)


def test_apply_fill_when_reducing_long_then_realizes_and_keeps_avg() -> None:
    p = fills(flat(), ("buy", "10", "100"), ("sell", "4", "110"))
    assert (p.qty, p.avg_price, p.realized_pnl) == (6, 100, 40)


def test_apply_fill_when_reducing_short_then_realizes_with_sign() -> None:
    p = fills(flat(), ("sell", "10", "100"), ("buy", "4", "90"))
    assert (p.qty, p.avg_price, p.realized_pnl) == (-6, 100, 40)
    p = p.apply_fill("buy", D(6), D(105))
    assert (p.qty, p.avg_price, p.realized_pnl, p.cost) == (0, 0, 10, 0)


def test_apply_fill_when_crossing_zero_then_realizes_closed_part_and_opens_rest() -> None:
    p = fills(flat(), ("buy", "10", "100"), ("sell", "15", "120"))
    assert (p.qty, p.avg_price, p.realized_pnl) == (-5, 120, 200)
    p = p.apply_fill("buy", D(8), D(110))
    assert (p.qty, p.avg_price, p.realized_pnl) == (3, 110, 250)


def test_apply_fill_when_flat_then_avg_zero() -> None:
    p = fills(flat(), ("buy", "3", "100.01"), ("sell", "3", "99.99"))
    assert (p.qty, p.avg_price, p.cost, p.realized_pnl, p.is_flat) == (0, 0, 0, D("-0.06"), True)


def test_apply_fill_when_fee_then_subtracted_from_realized() -> None:
    p = flat().apply_fill("buy", D(10), D(100), fee=D("1.5"), ts=7)
    p = p.apply_fill("sell", D(10), D(101), fee=D("1.5"), ts=8)
    assert (p.realized_pnl, p.ts_updated) == (7, 8)


def test_apply_fill_when_qty_not_positive_then_value_error() -> None:
    with pytest.raises(ValueError):
        flat().apply_fill("buy", D(0), D(1))


def test_unrealized_when_long_or_short_then_mark_minus_avg_times_qty() -> None:
    assert fills(flat(), ("buy", "10", "100")).unrealized(D(103)) == 30
    assert fills(flat(), ("sell", "10", "100")).unrealized(D(103)) == -30
    assert flat().unrealized(D(103)) == 0


def test_apply_fill_when_avg_not_terminating_then_remainder_stays_in_cost() -> None:
    # avg 100.00666…: realized is quantized to 1e-10 and the rounding remainder stays in
    # the cost basis, so the average may move by 1e-10 while nothing is lost
    p = fills(flat(), ("buy", "1", "100"), ("buy", "2", "100.01"))
    assert p.avg_price == D("100.0066666667")
    p = p.apply_fill("sell", D(1), D("100.02"))
    assert p.avg_price == D("100.0066666666")
    assert p.realized_pnl == D("0.0133333333")
    assert p.realized_pnl + p.unrealized(D(100)) == -D("300.02") + D("100.02") + 2 * D(100)
    closed = p.apply_fill("sell", D(2), D(100))
    assert (closed.qty, closed.cost, closed.realized_pnl) == (0, 0, D("-0.00"))


def test_from_avg_when_restored_then_same_stored_fields() -> None:
    p = fills(flat(), ("buy", "10", "100"), ("sell", "4", "110"))
    restored = Position.from_avg(
        "acc", "AAPL", qty=p.qty, avg_price=p.avg_price, realized_pnl=p.realized_pnl
    )
    assert restored == p


# -- properties ---------------------------------------------------------------------------

prices = st.integers(1, 100_000).map(lambda ticks: ticks * TICK)
quantities = st.integers(1, 10_000).map(lambda n: D(n) / 100)  # lots of 0.01
fees = st.integers(0, 500).map(lambda n: D(n) / 1000)
fill_lists = st.lists(
    st.tuples(st.sampled_from(["buy", "sell"]), quantities, prices, fees), max_size=60
)


@settings(max_examples=300, deadline=None)
@given(trades=fill_lists, mark=prices)
def test_position_when_random_fills_then_qty_and_pnl_match_cash_flows(
    trades: list[tuple[str, Decimal, Decimal, Decimal]], mark: Decimal
) -> None:
    position = flat()
    cash = D(0)
    net = D(0)
    for side, qty, price, fee in trades:
        position = position.apply_fill(side, qty, price, fee=fee)  # type: ignore[arg-type]
        sign = side_sign(side)  # type: ignore[arg-type]
        cash += -sign * qty * price - fee
        net += sign * qty
    assert position.qty == net
    assert position.realized_pnl + position.unrealized(mark) == cash + net * mark
    if not net:
        assert (position.avg_price, position.cost) == (0, 0)


@settings(max_examples=200, deadline=None)
@given(trades=fill_lists)
def test_position_when_only_adding_then_avg_is_volume_weighted(
    trades: list[tuple[str, Decimal, Decimal, Decimal]],
) -> None:
    buys = [(qty, price) for _, qty, price, _ in trades]
    position = flat()
    for qty, price in buys:
        position = position.apply_fill("buy", qty, price)
    if buys:
        total = sum((q for q, _ in buys), D(0))
        expected = (sum((q * p for q, p in buys), D(0)) / total).quantize(D("1e-10"))
        assert position.avg_price == expected and position.realized_pnl == 0

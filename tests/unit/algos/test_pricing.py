"""Child pricing: aggressiveness against the book, fallbacks, limit capping, the grid."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.algos.base import Market
from engine.algos.pricing import AGGRESSIVENESS, child_price

D = Decimal
BOOK = Market(now_ns=0, bid=D("100.00"), ask=D("100.04"))


@pytest.mark.parametrize(
    ("side", "aggressiveness", "expected"),
    [
        ("buy", "passive", "100.00"),
        ("buy", "touch", "100.04"),
        ("buy", "cross", "100.09"),
        ("sell", "passive", "100.04"),
        ("sell", "touch", "100.00"),
        ("sell", "cross", "99.95"),
    ],
)
def test_child_price_when_two_sided_book_then_priced_by_aggressiveness(
    side, aggressiveness, expected
):
    assert child_price(side, BOOK, aggressiveness, limit=None) == D(expected)


def test_child_price_when_cross_ticks_given_then_that_many_ticks_through():
    assert child_price("buy", BOOK, "cross", limit=None, cross_ticks=2) == D("100.06")
    assert child_price("sell", BOOK, "cross", limit=None, cross_ticks=0) == D("100.00")


def test_child_price_when_tick_is_coarse_then_cross_moves_whole_ticks():
    market = Market(now_ns=0, bid=D("100.0"), ask=D("100.5"), tick=D("0.5"))
    assert child_price("buy", market, "cross", limit=None, cross_ticks=3) == D("102.0")


@pytest.mark.parametrize(
    ("side", "aggressiveness", "bid", "ask", "expected"),
    [
        # own side empty: passive rests one tick inside the opposite best
        ("buy", "passive", None, "100.04", "100.03"),
        ("sell", "passive", "100.00", None, "100.01"),
        # opposite side empty: nothing to take, touch and cross join the own best
        ("buy", "touch", "100.00", None, "100.00"),
        ("buy", "cross", "100.00", None, "100.00"),
        ("sell", "touch", None, "100.04", "100.04"),
        ("sell", "cross", None, "100.04", "100.04"),
        # the opposite side is there: touch and cross do not need the own side
        ("buy", "cross", None, "100.04", "100.09"),
        ("sell", "touch", "100.00", None, "100.00"),
    ],
)
def test_child_price_when_one_side_empty_then_falls_back(side, aggressiveness, bid, ask, expected):
    market = Market(
        now_ns=0, bid=None if bid is None else D(bid), ask=None if ask is None else D(ask)
    )
    assert child_price(side, market, aggressiveness, limit=None) == D(expected)


@pytest.mark.parametrize("aggressiveness", AGGRESSIVENESS)
@pytest.mark.parametrize("side", ["buy", "sell"])
def test_child_price_when_book_empty_then_none(side, aggressiveness):
    empty = Market(now_ns=0, last=D("100"))
    assert child_price(side, empty, aggressiveness, limit=D("100")) is None


@pytest.mark.parametrize(
    ("side", "aggressiveness", "limit", "expected"),
    [
        ("buy", "touch", "100.02", "100.02"),  # capped
        ("buy", "cross", "100.05", "100.05"),
        ("buy", "passive", "100.02", "100.00"),  # already better than the limit
        ("sell", "touch", "100.03", "100.03"),
        ("sell", "cross", "99.99", "99.99"),
        ("sell", "passive", "100.01", "100.04"),
    ],
)
def test_child_price_when_limit_given_then_never_worse_than_limit(
    side, aggressiveness, limit, expected
):
    assert child_price(side, BOOK, aggressiveness, limit=D(limit)) == D(expected)


def test_child_price_when_limit_off_grid_then_rounded_away_from_market():
    assert child_price("buy", BOOK, "touch", limit=D("100.015")) == D("100.01")
    assert child_price("sell", BOOK, "touch", limit=D("100.015")) == D("100.02")


def test_child_price_when_on_grid_then_keeps_plain_notation():
    price = child_price("buy", BOOK, "passive", limit=None)
    assert str(price) == "100.00"


def test_child_price_when_sell_cross_goes_below_zero_then_one_tick():
    market = Market(now_ns=0, bid=D("0.02"), ask=D("0.03"))
    assert child_price("sell", market, "cross", limit=None) == D("0.01")


def test_child_price_when_buy_passive_has_no_price_below_ask_then_none():
    market = Market(now_ns=0, ask=D("0.01"))
    assert child_price("buy", market, "passive", limit=None) is None


def test_child_price_when_cross_ticks_negative_then_value_error():
    with pytest.raises(ValueError, match="cross_ticks"):
        child_price("buy", BOOK, "cross", limit=None, cross_ticks=-1)


def test_child_price_when_aggressiveness_unknown_then_value_error():
    with pytest.raises(ValueError, match="aggressiveness"):
        child_price("buy", BOOK, "reckless", limit=None)  # type: ignore[arg-type]

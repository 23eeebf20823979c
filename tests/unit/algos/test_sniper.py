"""Sniper: hidden until the opposite best reaches the limit, then IOC children at the limit
for what the best level shows; expiry relative to the parent's start."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine.algos  # noqa: F401  (registers the built-ins)
from engine.algos.base import AlgoParamsError, Child, Decision, Market, ParentSpec, Place, Progress
from engine.algos.registry import REGISTRY
from engine.algos.sniper import SniperAlgorithm, SniperParams
from engine.bus.events import Side

D = Decimal
NS = 1_000_000_000
T0 = 1_700_000_000 * NS
LIMIT = D("100.00")


def make_parent(qty: str = "1000", side: Side = "buy") -> ParentSpec:
    return ParentSpec(
        algo_id="snp-1", account="acc", symbol="AAA", side=side, qty=D(qty), start_ns=T0
    )


def make_algo(
    qty: str = "1000", side: Side = "buy", limit: Decimal = LIMIT, **raw: Any
) -> SniperAlgorithm:
    parent = make_parent(qty, side)
    return SniperAlgorithm(
        parent, SniperAlgorithm.parse(parent, {"limit_price": str(limit), **raw})
    )


def make_market(
    bid: str | None = "99.90",
    ask: str | None = "100.10",
    bid_size: str = "500",
    ask_size: str = "500",
    now_ns: int = T0,
    halted: bool = False,
) -> Market:
    return Market(
        now_ns=now_ns,
        bid=None if bid is None else D(bid),
        ask=None if ask is None else D(ask),
        bid_size=D(bid_size),
        ask_size=D(ask_size),
        halted=halted,
    )


def offered(side: Side, price: str, size: str = "500", now_ns: int = T0) -> Market:
    """A market whose opposite best (for ``side``) is ``price`` with ``size``."""
    if side == "buy":
        return make_market(bid="90", ask=price, ask_size=size, now_ns=now_ns)
    return make_market(bid=price, ask="110", bid_size=size, now_ns=now_ns)


def ioc(qty: str) -> Place:
    return Place(qty=D(qty), price=LIMIT, tif="ioc")


# --- parameters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        ({}, "limit_price", "is required for a sniper"),
        ({"limit_price": None}, "limit_price", "is required for a sniper"),
        ({"limit_price": "-1"}, "limit_price", "must be a positive price, not -1"),
        ({"limit_price": "NaN"}, "limit_price", "must be a positive price"),
        ({"limit_price": "100", "max_qty": "0"}, "max_qty", "must be a positive quantity, not 0"),
        ({"limit_price": "100", "max_qty": "-3"}, "max_qty", "must be a positive quantity"),
        ({"limit_price": "100", "max_qty": "Infinity"}, "max_qty", "must be a positive quantity"),
        (
            {"limit_price": "100", "expire_after_s": 0},
            "expire_after_s",
            "must be a positive number of seconds, not 0",
        ),
        ({"limit_price": "100", "expire_after_s": -5}, "expire_after_s", "must be a positive"),
        (
            {"limit_price": "100", "expire_after_s": float("inf")},
            "expire_after_s",
            "must be a positive",
        ),
        ({"limit_price": "100", "max_qty": "lots"}, "max_qty", "Invalid decimal"),
        ({"limit_price": "100", "hidden": True}, "params", "unknown field"),
    ],
)
def test_sniper_params_when_invalid_then_refused_naming_the_field(
    raw: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(AlgoParamsError, match=message) as info:
        SniperAlgorithm.parse(make_parent(), raw)
    assert info.value.field == field


def test_sniper_params_when_valid_then_parsed() -> None:
    params = SniperAlgorithm.parse(
        make_parent(), {"limit_price": "100", "max_qty": 50, "expire_after_s": 30}
    )
    assert params == SniperParams(limit_price=D(100), max_qty=D(50), expire_after_s=30.0)


def test_sniper_registry_when_engine_algos_imported_then_kind_registered() -> None:
    assert REGISTRY.get("sniper") is SniperAlgorithm


# --- when it fires ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "best", "fires"),
    [
        ("buy", "99.99", True),  # ask below the limit
        ("buy", "100.00", True),  # ask at the limit
        ("buy", "100.01", False),  # one tick too dear
        ("sell", "100.01", True),  # bid above the limit
        ("sell", "100.00", True),
        ("sell", "99.99", False),
    ],
)
def test_sniper_decide_when_opposite_best_vs_limit_then_fires_only_at_or_better(
    side: Side, best: str, fires: bool
) -> None:
    decision = make_algo(side=side).decide(offered(side, best), Progress(), "market")
    assert decision == Decision(actions=(ioc("500"),) if fires else ())


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_sniper_decide_when_own_side_reaches_limit_then_hidden(side: Side) -> None:
    # a buy's own side is the bid: a bid at the limit offers nothing to take
    market = (
        make_market(bid="100.00", ask="100.20")
        if side == "buy"
        else make_market(bid="99.80", ask="100.00")
    )
    assert make_algo(side=side).decide(market, Progress(), "market") == Decision()


@settings(max_examples=500, deadline=None)
@given(
    side=st.sampled_from(["buy", "sell"]),
    limit_cents=st.integers(1, 20_000),
    bid_cents=st.none() | st.integers(1, 20_000),
    spread_cents=st.integers(1, 500),
    ask_none=st.booleans(),
    sizes=st.tuples(st.integers(0, 2_000), st.integers(0, 2_000)),
    filled=st.integers(0, 1_000),
    max_qty=st.none() | st.integers(1, 2_000),
)
def test_sniper_property_when_any_book_then_fires_iff_limit_on_offer_with_capped_ioc(
    side: Side,
    limit_cents: int,
    bid_cents: int | None,
    spread_cents: int,
    ask_none: bool,
    sizes: tuple[int, int],
    filled: int,
    max_qty: int | None,
) -> None:
    limit = D(limit_cents) / 100
    bid = None if bid_cents is None else D(bid_cents) / 100
    ask = None if ask_none else (D(bid_cents or 100) + spread_cents) / 100
    market = Market(now_ns=T0, bid=bid, ask=ask, bid_size=D(sizes[0]), ask_size=D(sizes[1]))
    raw = {} if max_qty is None else {"max_qty": max_qty}
    parent = make_parent("1000", side)
    algo = SniperAlgorithm(
        parent, SniperAlgorithm.parse(parent, {"limit_price": str(limit), **raw})
    )
    decision = algo.decide(market, Progress(filled=D(filled)), "market")
    remaining = D(1000 - filled)
    if remaining <= 0:
        assert decision == Decision(done="filled")
        return
    best, size = (ask, D(sizes[1])) if side == "buy" else (bid, D(sizes[0]))
    on_offer = best is not None and (best <= limit if side == "buy" else best >= limit)
    if not on_offer or size == 0:
        assert decision == Decision()
        return
    [place] = decision.actions
    assert isinstance(place, Place)
    assert place.tif == "ioc"
    assert place.price == limit
    assert place.qty == min(remaining, size, D(max_qty) if max_qty else remaining)
    assert D(0) < place.qty <= size


@pytest.mark.parametrize(
    ("qty", "filled", "max_qty", "size", "expected"),
    [
        ("1000", "0", None, "300", "300"),  # what the level shows
        ("1000", "0", "200", "300", "200"),  # the shot cap
        ("1000", "900", "200", "300", "100"),  # the parent's remaining
        ("1000", "0", None, "5000", "1000"),
        ("1000", "999.5", "200", "300", "0.5"),
    ],
)
def test_sniper_decide_when_level_available_then_size_is_smallest_of_remaining_cap_and_level(
    qty: str, filled: str, max_qty: str | None, size: str, expected: str
) -> None:
    raw: dict[str, Any] = {} if max_qty is None else {"max_qty": max_qty}
    for side in ("buy", "sell"):
        algo = make_algo(qty=qty, side=side, **raw)
        decision = algo.decide(offered(side, "100.00", size), Progress(filled=D(filled)), "market")
        assert decision.actions == (ioc(expected),)


def test_sniper_decide_when_level_has_no_size_then_hidden() -> None:
    assert make_algo().decide(offered("buy", "99.00", "0"), Progress(), "market") == Decision()


def test_sniper_decide_when_book_empty_then_hidden() -> None:
    assert make_algo().decide(make_market(bid=None, ask=None), Progress(), "market") == Decision()


def test_sniper_decide_when_halted_then_holds_fire() -> None:
    market = Market(now_ns=T0, bid=D(90), ask=D(99), ask_size=D(100), halted=True)
    assert make_algo().decide(market, Progress(), "market") == Decision()


def test_sniper_decide_when_ioc_in_flight_then_waits() -> None:
    child = Child(client_order_id="c1", qty=D(500), price=LIMIT, leaves=D(500), sent_ns=T0)
    progress = Progress(working=(child,), slices=1, last_child_ns=T0)
    assert make_algo().decide(offered("buy", "99.00"), progress, "market") == Decision()


def test_sniper_timeline_when_level_comes_and_goes_then_shoots_each_time_and_finishes() -> None:
    algo = make_algo(qty="1000", max_qty="400")
    progress, now = Progress(), T0
    shots: list[Decimal] = []
    # (ask, ask size, what our IOC gets): the IOC trades what is left when it arrives
    tape = [
        ("100.05", "900", None),
        ("100.00", "300", "300"),  # shot 1: 300 (level size)
        ("100.00", "900", "150"),  # shot 2: 400 asked, only 150 left when it arrived
        ("100.02", "900", None),  # gone again: hidden
        ("99.95", "900", "400"),  # shot 3: 400 (cap)
        ("99.90", "900", "150"),  # shot 4: the remaining 150
    ]
    for ask, size, got in tape:
        now += NS
        market = make_market(bid="99.80", ask=ask, ask_size=size, now_ns=now)
        decision = algo.decide(market, progress, "market")
        if got is None:
            assert decision == Decision()
            continue
        [place] = decision.actions
        assert isinstance(place, Place) and place.tif == "ioc" and place.price == LIMIT
        shots.append(place.qty)
        child = Child(
            client_order_id=f"c{progress.slices}",
            qty=place.qty,
            price=LIMIT,
            leaves=place.qty,
            sent_ns=now,
        )
        in_flight = Progress(
            filled=progress.filled, working=(child,), slices=progress.slices + 1, last_child_ns=now
        )
        assert algo.decide(market, in_flight, "market") == Decision()
        # the IOC is done at once: what traded is filled, the rest cancelled by the venue
        progress = Progress(
            filled=progress.filled + D(got), slices=in_flight.slices, last_child_ns=now
        )
    assert shots == [D(300), D(400), D(400), D(150)]
    assert progress.filled == D(1000)
    assert algo.decide(make_market(now_ns=now), progress, "child_done") == Decision(done="filled")


# --- expiry ----------------------------------------------------------------------------------


def test_sniper_decide_when_no_expiry_then_never_wakes_and_no_end() -> None:
    algo = make_algo()
    assert algo.end_ns() is None
    later = make_market(now_ns=T0 + 10**6 * NS)
    assert algo.decide(later, Progress(), "market") == Decision()


def test_sniper_decide_when_waiting_with_expiry_then_wakes_at_expiry() -> None:
    algo = make_algo(expire_after_s=30)
    assert algo.end_ns() == T0 + 30 * NS
    assert algo.decide(make_market(now_ns=T0), Progress(), "start") == Decision(wake_in_s=30.0)
    decision = algo.decide(offered("buy", "99.00", now_ns=T0 + 20 * NS), Progress(), "market")
    assert decision == Decision(actions=(ioc("500"),), wake_in_s=10.0)


@pytest.mark.parametrize("after_ns", [30 * NS, 30 * NS + 1, 3600 * NS])
def test_sniper_decide_when_expired_then_done_expired_even_if_on_offer(after_ns: int) -> None:
    algo = make_algo(expire_after_s=30)
    decision = algo.decide(offered("buy", "99.00", now_ns=T0 + after_ns), Progress(), "timer")
    assert decision == Decision(done="expired")


def test_sniper_decide_when_filled_at_expiry_then_done_filled() -> None:
    algo = make_algo(qty="100", expire_after_s=1)
    assert (
        algo.decide(make_market(now_ns=T0 + NS), Progress(filled=D(100)), "timer").done == "filled"
    )


def test_sniper_decide_when_limit_missing_despite_check_then_raises() -> None:
    algo = SniperAlgorithm(make_parent(), SniperParams())
    with pytest.raises(AlgoParamsError, match="limit_price"):
        algo.decide(offered("buy", "99.00"), Progress(), "market")

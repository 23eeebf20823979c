"""Participation rate: children keep filled within the tolerance band around rate * market
volume; ahead of it, working children are cancelled. The market volume stream and the
engine (clipping to the parent, rounding to the lot, filling) are simulated here."""

from __future__ import annotations

import random
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine.algos  # noqa: F401  (registers the built-ins)
from engine.algos.base import (
    AlgoParamsError,
    Cancel,
    Child,
    Decision,
    Market,
    ParentSpec,
    Place,
    Progress,
    Why,
)
from engine.algos.pov import PovAlgorithm, PovParams
from engine.algos.registry import REGISTRY
from engine.bus.events import Side

D = Decimal
NS = 1_000_000_000
T0 = 1_700_000_000 * NS
BID, ASK = D("99.99"), D("100.01")


def make_parent(qty: str | Decimal = "1000000", side: Side = "buy") -> ParentSpec:
    return ParentSpec(
        algo_id="pov-1", account="acc", symbol="AAA", side=side, qty=D(qty), start_ns=T0
    )


def make_algo(qty: str | Decimal = "1000000", side: Side = "buy", **raw: Any) -> PovAlgorithm:
    parent = make_parent(qty, side)
    return PovAlgorithm(parent, PovAlgorithm.parse(parent, {"rate": 0.1, **raw}))


def make_market(volume: str | Decimal = "0", now_ns: int = T0, **kw: Any) -> Market:
    return Market(
        now_ns=now_ns, bid=kw.pop("bid", BID), ask=kw.pop("ask", ASK), volume=D(volume), **kw
    )


def child(cid: str, leaves: str, price: Decimal = ASK, sent_ns: int = T0, qty: str = "") -> Child:
    return Child(
        client_order_id=cid, qty=D(qty or leaves), price=price, leaves=D(leaves), sent_ns=sent_ns
    )


def places(decision: Decision) -> list[Place]:
    return [a for a in decision.actions if isinstance(a, Place)]


# --- parameters ----------------------------------------------------------------------------

BAD = [
    ({"rate": 0}, "rate", "must be above 0 and at most 0.5, not 0"),
    ({"rate": -0.1}, "rate", "must be above 0 and at most 0.5"),
    ({"rate": 0.51}, "rate", "must be above 0 and at most 0.5, not 0.51"),
    ({"rate": float("nan")}, "rate", "must be above 0"),
    ({"rate": 0.1, "tolerance": -0.01}, "tolerance", "must be at least 0 and below 1, not -0.01"),
    ({"rate": 0.1, "tolerance": 1.0}, "tolerance", "must be at least 0 and below 1"),
    ({"rate": 0.1, "tolerance": float("inf")}, "tolerance", "must be at least 0"),
    ({"rate": 0.1, "min_child_qty": "0"}, "min_child_qty", "must be a positive quantity, not 0"),
    ({"rate": 0.1, "max_child_qty": "-1"}, "max_child_qty", "must be a positive quantity"),
    ({"rate": 0.1, "max_child_qty": "NaN"}, "max_child_qty", "must be a positive quantity"),
    (
        {"rate": 0.1, "min_child_qty": "200", "max_child_qty": "100"},
        "min_child_qty",
        "must be at most max_child_qty 100, not 200",
    ),
    ({"rate": 0.1, "check_interval_s": 0}, "check_interval_s", "must be a positive number"),
    ({"rate": 0.1, "check_interval_s": float("nan")}, "check_interval_s", "must be a positive"),
    ({"rate": 0.1, "end_at_ns": T0}, "end_at_ns", f"must be after the start {T0}, not {T0}"),
    ({"rate": 0.1, "end_at_ns": T0 - 1}, "end_at_ns", "must be after the start"),
    ({"rate": 0.1, "duration_s": 0}, "duration_s", "must be a positive number of seconds"),
    ({"rate": 0.1, "duration_s": -60}, "duration_s", "must be a positive number of seconds"),
    (
        {"rate": 0.1, "duration_s": 60, "end_at_ns": T0 + NS},
        "duration_s",
        "give either end_at_ns or duration_s, not both",
    ),
    ({"rate": 0.1, "limit_price": "0"}, "limit_price", "must be a positive price, not 0"),
    ({"rate": 0.1, "aggressiveness": "yolo"}, "aggressiveness", "Invalid enum value 'yolo'"),
    ({"tolerance": 0.1}, "params", "missing required field `rate`"),
    ({"rate": 0.1, "volume_limit": 3}, "params", "unknown field"),
]


@pytest.mark.parametrize(("raw", "field", "message"), BAD)
def test_pov_params_when_invalid_then_refused_naming_the_field(
    raw: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(AlgoParamsError, match=message) as info:
        PovAlgorithm.parse(make_parent(), raw)
    assert info.value.field == field


def test_pov_params_when_aggressiveness_bypasses_decoding_then_check_refuses() -> None:
    params = PovParams(rate=0.1, aggressiveness="yolo")  # type: ignore[arg-type]
    with pytest.raises(AlgoParamsError, match="must be one of passive, touch, cross, not 'yolo'"):
        params.check(make_parent())


def test_pov_params_when_valid_then_defaults_filled() -> None:
    params = PovAlgorithm.parse(
        make_parent(), {"rate": "0.25", "min_child_qty": 10, "max_child_qty": "10"}
    )
    assert params == PovParams(rate=0.25, min_child_qty=D(10), max_child_qty=D(10))
    assert (params.tolerance, params.aggressiveness, params.check_interval_s) == (0.2, "touch", 1.0)


def test_pov_registry_when_engine_algos_imported_then_kind_registered() -> None:
    assert REGISTRY.get("pov") is PovAlgorithm


# --- single decisions ------------------------------------------------------------------------


def test_pov_decide_when_no_market_volume_then_waits_a_check_interval() -> None:
    algo = make_algo(check_interval_s=2.5)
    assert algo.decide(make_market("0"), Progress(), "start") == Decision(wake_in_s=2.5)


@pytest.mark.parametrize(("side", "price"), [("buy", ASK), ("sell", BID)])
def test_pov_decide_when_behind_then_places_the_shortfall_at_the_touch(
    side: Side, price: Decimal
) -> None:
    algo = make_algo(side=side)
    decision = algo.decide(make_market("1000"), Progress(filled=D(20)), "market")
    assert decision == Decision(actions=(Place(qty=D(80), price=price),), wake_in_s=1.0)


def test_pov_decide_when_working_covers_the_band_then_places_nothing() -> None:
    algo = make_algo()
    # target 100, band 80..120: filled 50 + working 40 = 90 is enough
    progress = Progress(filled=D(50), working=(child("c1", "40"),), slices=2)
    assert algo.decide(make_market("1000"), progress, "market").actions == ()


def test_pov_decide_when_behind_with_working_then_places_only_what_working_does_not_cover() -> None:
    algo = make_algo()
    progress = Progress(filled=D(20), working=(child("c1", "30"),), slices=2, last_child_ns=T0)
    decision = algo.decide(make_market("1000"), progress, "market")
    assert places(decision) == [Place(qty=D(50), price=ASK)]


@pytest.mark.parametrize("filled", ["80", "100", "120"])
def test_pov_decide_when_within_band_then_nothing(filled: str) -> None:
    assert (
        make_algo().decide(make_market("1000"), Progress(filled=D(filled)), "market").actions == ()
    )


def test_pov_decide_when_ahead_with_working_then_cancels_all_working() -> None:
    algo = make_algo()
    progress = Progress(filled=D("120.5"), working=(child("c1", "10"), child("c2", "5")), slices=3)
    decision = algo.decide(make_market("1000"), progress, "market")
    assert decision == Decision(
        actions=(Cancel(client_order_id="c1"), Cancel(client_order_id="c2")), wake_in_s=1.0
    )


def test_pov_decide_when_ahead_without_working_then_waits() -> None:
    decision = make_algo().decide(make_market("1000"), Progress(filled=D(300)), "market")
    assert decision == Decision(wake_in_s=1.0)


def test_pov_decide_when_tolerance_zero_then_tops_up_any_shortfall() -> None:
    algo = make_algo(tolerance=0.0)
    assert places(algo.decide(make_market("1000"), Progress(filled=D("99")), "market")) == [
        Place(qty=D(1), price=ASK)
    ]


def test_pov_decide_when_shortfall_below_min_child_then_rounded_up_to_it() -> None:
    algo = make_algo(min_child_qty="50")
    assert places(algo.decide(make_market("1000"), Progress(filled=D(70)), "market")) == [
        Place(qty=D(50), price=ASK)
    ]


def test_pov_decide_when_shortfall_above_max_child_then_capped() -> None:
    algo = make_algo(max_child_qty="25")
    assert places(algo.decide(make_market("10000"), Progress(), "market")) == [
        Place(qty=D(25), price=ASK)
    ]


def test_pov_decide_when_min_equals_max_then_fixed_child_size() -> None:
    algo = make_algo(min_child_qty="40", max_child_qty="40")
    for volume, filled in (("1000", "0"), ("1000", "70"), ("100000", "0")):
        assert places(algo.decide(make_market(volume), Progress(filled=D(filled)), "market")) == [
            Place(qty=D(40), price=ASK)
        ]


def test_pov_decide_when_shortfall_exceeds_remaining_then_cut_to_what_is_not_working() -> None:
    algo = make_algo(qty="100")
    progress = Progress(filled=D(60), working=(child("c1", "15"),), slices=2)
    assert places(algo.decide(make_market("100000"), progress, "market")) == [
        Place(qty=D(25), price=ASK)
    ]


def test_pov_decide_when_tail_below_min_while_working_then_waits_for_it() -> None:
    algo = make_algo(qty="100", min_child_qty="50")
    working = Progress(filled=D(20), working=(child("c1", "50"),), slices=2)
    assert places(algo.decide(make_market("100000"), working, "market")) == []


def test_pov_decide_when_tail_below_min_is_all_that_remains_then_last_child_places_it() -> None:
    algo = make_algo(qty="100", min_child_qty="50")
    assert places(algo.decide(make_market("100000"), Progress(filled=D(70)), "market")) == [
        Place(qty=D(30), price=ASK)
    ]


@pytest.mark.parametrize(
    ("aggressiveness", "side", "limit", "price"),
    [
        ("passive", "buy", None, BID),
        ("passive", "sell", None, ASK),
        ("touch", "buy", None, ASK),
        ("cross", "buy", None, ASK + D("0.05")),
        ("cross", "sell", None, BID - D("0.05")),
        ("cross", "buy", "100.02", D("100.02")),  # capped by the limit
        ("touch", "sell", "100.00", D("100.00")),
    ],
)
def test_pov_decide_when_aggressiveness_then_child_priced_by_pricing(
    aggressiveness: str, side: Side, limit: str | None, price: Decimal
) -> None:
    raw: dict[str, Any] = {"aggressiveness": aggressiveness}
    if limit is not None:
        raw["limit_price"] = limit
    algo = make_algo(side=side, **raw)
    [place] = places(algo.decide(make_market("1000"), Progress(), "market"))
    assert place.price == price


def test_pov_decide_when_book_empty_then_places_nothing() -> None:
    market = make_market("1000", bid=None, ask=None)
    assert make_algo().decide(market, Progress(), "market") == Decision(wake_in_s=1.0)


def test_pov_decide_when_halted_then_nothing_but_the_timer() -> None:
    algo = make_algo()
    progress = Progress(filled=D(500), working=(child("c1", "10"),), slices=2)
    for p in (Progress(), progress):
        assert algo.decide(make_market("1000", halted=True), p, "market") == Decision(wake_in_s=1.0)


@pytest.mark.parametrize("filled", ["1000", "1001"])
def test_pov_decide_when_filled_then_done(filled: str) -> None:
    assert make_algo(qty="1000").decide(
        make_market("5"), Progress(filled=D(filled)), "fill"
    ) == Decision(done="filled")


@pytest.mark.parametrize(
    "raw", [{"end_at_ns": T0 + 60 * NS}, {"duration_s": 60}, {"duration_s": 60.0}]
)
def test_pov_decide_when_end_reached_then_done_end_time_and_wakes_for_it_before(
    raw: dict[str, Any],
) -> None:
    algo = make_algo(check_interval_s=5, **raw)
    assert algo.end_ns() == T0 + 60 * NS
    assert algo.decide(make_market("0", T0 + 50 * NS), Progress(), "timer").wake_in_s == 5
    assert algo.decide(make_market("0", T0 + 58 * NS), Progress(), "timer").wake_in_s == 2
    assert algo.decide(make_market("0", T0 + 60 * NS), Progress(), "timer") == Decision(
        done="end_time"
    )


def test_pov_expected_when_asked_then_none_no_time_schedule() -> None:
    algo = make_algo(duration_s=60)
    assert algo.expected(T0 + 30 * NS) is None
    assert make_algo().end_ns() is None


def test_pov_decide_when_behind_and_working_child_left_by_the_market_then_reprices() -> None:
    algo = make_algo(aggressiveness="passive", check_interval_s=2)
    # our passive buy rests at 99.90 but the bid moved up to 99.99: filled 0 of target 100
    old = child("c1", "100", price=D("99.90"), sent_ns=T0)
    progress = Progress(working=(old,), slices=1, last_child_ns=T0)
    early = algo.decide(make_market("1000", T0 + NS), progress, "market")
    assert early.actions == ()  # younger than a check interval: give it time
    late = algo.decide(make_market("1000", T0 + 2 * NS), progress, "timer")
    assert late.actions == (Cancel(client_order_id="c1"),)
    # once it is gone the shortfall goes out at the current bid
    after = algo.decide(make_market("1000", T0 + 2 * NS), Progress(slices=1), "child_done")
    assert places(after) == [Place(qty=D(100), price=BID)]


def test_pov_decide_when_working_child_at_current_price_then_kept() -> None:
    algo = make_algo(aggressiveness="passive")
    progress = Progress(working=(child("c1", "100", price=BID),), slices=1)
    assert algo.decide(make_market("1000", T0 + 60 * NS), progress, "timer").actions == ()


def test_pov_decide_when_within_band_on_fills_then_old_off_price_child_kept() -> None:
    algo = make_algo(aggressiveness="passive")
    progress = Progress(filled=D(90), working=(child("c1", "10", price=D("99.00")),), slices=2)
    assert algo.decide(make_market("1000", T0 + 60 * NS), progress, "timer").actions == ()


# --- simulated market volume -------------------------------------------------------------------


def floor_lot(qty: Decimal, lot: Decimal) -> Decimal:
    return (qty / lot).to_integral_value(rounding=ROUND_FLOOR) * lot


def simulate(
    algo: PovAlgorithm, others: list[Decimal], lot: Decimal = Decimal(1)
) -> tuple[list[Decimal], Progress, Decision]:
    """Plays the engine: after each step of other traders' volume the algorithm decides;
    its children are clipped to the parent, rounded down to the lot and filled at once
    (their quantity joins the market volume) and it is asked again (``fill``), as the
    engine does on a fill. Returns the participation after each step."""
    progress, volume, now = Progress(), D(0), T0
    participation: list[Decimal] = []
    decision = Decision()
    for step, other in enumerate(others):
        now = T0 + (step + 1) * NS
        volume += other
        why: Why = "market"
        for _ in range(50):
            decision = algo.decide(make_market(volume, now), progress, why)
            assert not any(isinstance(a, Cancel) for a in decision.actions)  # nothing works
            new = places(decision)
            if decision.done or not new:
                break
            for place in new:
                qty = floor_lot(min(place.qty, algo.parent.qty - progress.filled), lot)
                if qty <= 0:
                    continue
                progress = Progress(
                    filled=progress.filled + qty, slices=progress.slices + 1, last_child_ns=now
                )
                volume += qty
            why = "fill"
        if decision.done:
            break
        participation.append(progress.filled / volume if volume else D(0))
    return participation, progress, decision


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("rate", [0.05, 0.1, 0.25, 0.5])
def test_pov_simulation_when_random_volume_then_participation_within_tolerance(
    seed: int, rate: float
) -> None:
    rnd = random.Random(seed)
    # 200 steps of bursty volume: mostly quiet, sometimes a block
    others = [
        D(int(rnd.lognormvariate(5, 1.2))) if rnd.random() > 0.1 else D(0) for _ in range(200)
    ]
    algo = make_algo(qty="100000000", rate=rate, tolerance=0.2)
    participation, _, _ = simulate(algo, others)
    r, tol = D(repr(rate)), D("0.2")
    low, high = r * (1 - tol), r * (1 + tol)
    assert low <= participation[-1] <= high
    settled = participation[20:]
    inside = sum(1 for p in settled if low <= p <= high)
    assert inside >= 0.95 * len(settled)
    assert all(p <= high for p in participation)  # never ahead with children filled at once


@settings(max_examples=60, deadline=None)
@given(
    others=st.lists(st.integers(0, 5_000), min_size=50, max_size=200),
    rate=st.floats(0.01, 0.5),
    tolerance=st.floats(0.05, 0.5),
    max_child=st.none() | st.integers(50, 500),
)
def test_pov_property_when_any_volume_then_never_ahead_and_caught_up_at_the_end(
    others: list[int], rate: float, tolerance: float, max_child: int | None
) -> None:
    raw: dict[str, Any] = {"rate": rate, "tolerance": tolerance}
    if max_child is not None:
        raw["max_child_qty"] = max_child
    algo = make_algo(qty="100000000", **raw)
    # a last quiet step lets it catch up with whatever the stream did before
    participation, _, _ = simulate(algo, [D(v) for v in others] + [D(0)] * 20)
    r, tol = D(repr(rate)), D(repr(tolerance))
    assert all(p <= r * (1 + tol) for p in participation)
    if sum(others) * rate >= 100:  # enough volume for whole lots to matter little
        assert participation[-1] >= r * (1 - tol)


def test_pov_simulation_when_parent_smaller_than_the_flow_then_done_filled() -> None:
    rnd = random.Random(7)
    others = [D(rnd.randint(100, 1_000)) for _ in range(200)]
    algo = make_algo(qty="2000", rate=0.2, min_child_qty="100", max_child_qty="300")
    participation, progress, decision = simulate(algo, others)
    assert decision.done == "filled"
    assert progress.filled == D(2000)
    assert len(participation) < 200


def test_pov_simulation_when_max_child_then_every_child_within_min_and_max() -> None:
    rnd = random.Random(3)
    algo = make_algo(rate=0.3, min_child_qty="20", max_child_qty="60")
    progress, volume, sizes = Progress(), D(0), []
    for step in range(200):
        volume += D(rnd.randint(0, 400))
        decision = algo.decide(make_market(volume, T0 + step * NS), progress, "market")
        for place in places(decision):
            sizes.append(place.qty)
            progress = Progress(filled=progress.filled + place.qty, slices=progress.slices + 1)
            volume += place.qty
    assert sizes and all(D(20) <= s <= D(60) for s in sizes)


def test_pov_simulation_when_market_dries_up_after_we_traded_then_cancels_resting_children() -> (
    None
):
    # passive children rest; after a burst fills us the volume drops: ahead, so it cancels
    algo = make_algo(aggressiveness="passive")
    progress = Progress(filled=D(100), working=(child("c1", "50", price=BID),), slices=2)
    assert algo.decide(make_market("1000"), progress, "market").actions == ()
    fills = Progress(filled=D(130), working=(child("c1", "20", price=BID, qty="50"),), slices=2)
    assert algo.decide(make_market("1030"), fills, "fill").actions == (
        Cancel(client_order_id="c1"),
    )

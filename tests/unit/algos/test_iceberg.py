"""Iceberg: one visible child of at most display_qty at the limit price, refreshed when it
is gone; the engine is played by hand (children filled or cancelled by building the next
Progress)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine.algos  # noqa: F401  (registers the built-ins)
from engine.algos.base import (
    AlgoParamsError,
    Child,
    Decision,
    Market,
    ParentSpec,
    Place,
    Progress,
    Why,
)
from engine.algos.iceberg import IcebergAlgorithm, IcebergParams
from engine.algos.registry import REGISTRY
from engine.bus.events import Side

D = Decimal
NS = 1_000_000_000
T0 = 1_700_000_000 * NS
LIMIT = D("100.00")
WHYS: tuple[Why, ...] = ("market", "fill", "timer")


def make_parent(
    qty: str | Decimal = "1000", side: Side = "buy", algo_id: str = "ice-1"
) -> ParentSpec:
    return ParentSpec(
        algo_id=algo_id, account="acc", symbol="AAA", side=side, qty=D(qty), start_ns=T0
    )


def make_algo(
    qty: str | Decimal = "1000", display: str | Decimal = "100", variance: float = 0.0, **kw: Any
) -> IcebergAlgorithm:
    parent = make_parent(qty, **kw)
    raw = {"display_qty": str(display), "variance": variance, "limit_price": str(LIMIT)}
    return IcebergAlgorithm(parent, IcebergAlgorithm.parse(parent, raw))


def make_market(now_ns: int = T0, lot: str = "1", halted: bool = False) -> Market:
    return Market(now_ns=now_ns, bid=D("99.99"), ask=D("100.01"), lot=D(lot), halted=halted)


def working(qty: str, leaves: str | None = None, cid: str = "c1") -> Child:
    return Child(client_order_id=cid, qty=D(qty), price=LIMIT, leaves=D(leaves or qty), sent_ns=T0)


def places(decision: Decision) -> list[Place]:
    return [a for a in decision.actions if isinstance(a, Place)]


# --- parameters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        ({"display_qty": "100"}, "limit_price", "is required for an iceberg"),
        ({"display_qty": "100", "limit_price": "0"}, "limit_price", "must be a positive price"),
        ({"display_qty": "0", "limit_price": "100"}, "display_qty", "must be a positive quantity"),
        ({"display_qty": "-5", "limit_price": "100"}, "display_qty", "must be a positive quantity"),
        ({"display_qty": "NaN", "limit_price": "100"}, "display_qty", "must be a positive"),
        ({"display_qty": "Infinity", "limit_price": "100"}, "display_qty", "must be a positive"),
        (
            {"display_qty": "1000.5", "limit_price": "100"},
            "display_qty",
            "must be at most the parent quantity 1000, not 1000.5",
        ),
        (
            {"display_qty": "100", "limit_price": "100", "variance": -0.1},
            "variance",
            "must be between 0 and 0.5, not -0.1",
        ),
        (
            {"display_qty": "100", "limit_price": "100", "variance": 0.51},
            "variance",
            "must be between 0 and 0.5",
        ),
        (
            {"display_qty": "100", "limit_price": "100", "variance": float("nan")},
            "variance",
            "must be between 0 and 0.5",
        ),
        ({"limit_price": "100"}, "params", "missing required field `display_qty`"),
        ({"display_qty": "100", "limit_price": "100", "peak": 1}, "params", "unknown field"),
    ],
)
def test_iceberg_params_when_invalid_then_refused_naming_the_field(
    raw: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(AlgoParamsError, match=message) as info:
        IcebergAlgorithm.parse(make_parent("1000"), raw)
    assert info.value.field == field


def test_iceberg_params_when_display_is_the_whole_parent_then_accepted() -> None:
    params = IcebergAlgorithm.parse(
        make_parent("1000"), {"display_qty": 1000, "limit_price": 100, "variance": 0.5}
    )
    assert params == IcebergParams(display_qty=D(1000), limit_price=D(100), variance=0.5)


def test_iceberg_registry_when_engine_algos_imported_then_kind_registered() -> None:
    assert REGISTRY.get("iceberg") is IcebergAlgorithm
    info = next(i for i in REGISTRY.describe() if i.kind == "iceberg")
    assert "display_qty" in info.params["required"]


# --- decisions -----------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_iceberg_decide_when_started_then_one_child_of_display_at_limit(side: Side) -> None:
    algo = make_algo(side=side)
    decision = algo.decide(make_market(), Progress(), "start")
    assert decision == Decision(actions=(Place(qty=D(100), price=LIMIT, tif="day"),))


def test_iceberg_decide_when_child_works_then_places_nothing() -> None:
    algo = make_algo()
    for leaves in ("100", "40", "1"):
        progress = Progress(filled=D(100) - D(leaves), working=(working("100", leaves),), slices=1)
        for why in WHYS:
            assert algo.decide(make_market(), progress, why) == Decision()


def test_iceberg_decide_when_child_filled_then_refreshes() -> None:
    algo = make_algo()
    progress = Progress(filled=D(100), slices=1, last_child_ns=T0)
    decision = algo.decide(make_market(T0 + NS), progress, "child_done")
    assert places(decision) == [Place(qty=D(100), price=LIMIT)]


def test_iceberg_decide_when_child_gone_partly_filled_then_refreshes_full_display() -> None:
    # the venue cancelled the child (e.g. end of day) after 30 traded: the next shows 100
    algo = make_algo()
    progress = Progress(filled=D(30), slices=1, last_child_ns=T0)
    assert places(algo.decide(make_market(), progress, "child_done")) == [
        Place(qty=D(100), price=LIMIT)
    ]


def test_iceberg_decide_when_less_than_display_remains_then_last_child_is_the_rest() -> None:
    algo = make_algo(qty="250")
    progress = Progress(filled=D(200), slices=2)
    assert places(algo.decide(make_market(), progress, "child_done")) == [
        Place(qty=D(50), price=LIMIT)
    ]


@pytest.mark.parametrize("filled", ["1000", "1000.5"])
def test_iceberg_decide_when_filled_then_done(filled: str) -> None:
    decision = make_algo().decide(make_market(), Progress(filled=D(filled), slices=10), "fill")
    assert decision == Decision(done="filled")


def test_iceberg_decide_when_halted_then_waits_and_places_after_resume() -> None:
    algo = make_algo()
    assert algo.decide(make_market(halted=True), Progress(), "start") == Decision()
    assert places(algo.decide(make_market(), Progress(), "market")) == [
        Place(qty=D(100), price=LIMIT)
    ]


def test_iceberg_decide_when_limit_missing_despite_check_then_raises_not_market_order() -> None:
    algo = IcebergAlgorithm(make_parent(), IcebergParams(display_qty=D(100)))
    with pytest.raises(AlgoParamsError, match="limit_price"):
        algo.decide(make_market(), Progress(), "start")


def test_iceberg_decide_when_qty_modified_below_display_then_child_is_the_remaining() -> None:
    algo = make_algo(qty="1000", display="100")
    modified = IcebergAlgorithm(make_parent("60"), algo.params)
    assert places(modified.decide(make_market(), Progress(filled=D(20)), "modify")) == [
        Place(qty=D(40), price=LIMIT)
    ]


def test_iceberg_timeline_when_children_fill_one_by_one_then_works_the_whole_parent() -> None:
    algo = make_algo(qty="450", display="100")
    progress, now, sizes = Progress(), T0, []
    for _ in range(20):
        decision = algo.decide(make_market(now), progress, "fill")
        if decision.done:
            break
        [place] = places(decision)
        sizes.append(place.qty)
        # the child rests, then trades in two prints
        child = Child(
            client_order_id="x", qty=place.qty, price=place.price, leaves=place.qty, sent_ns=now
        )
        progress = Progress(filled=progress.filled, working=(child,), slices=progress.slices + 1)
        assert algo.decide(make_market(now), progress, "market") == Decision()
        half = place.qty / 2
        progress = Progress(
            filled=progress.filled + half,
            working=(
                Child(
                    client_order_id="x", qty=place.qty, price=place.price, leaves=half, sent_ns=now
                ),
            ),
            slices=progress.slices,
        )
        assert algo.decide(make_market(now), progress, "fill") == Decision()
        progress = Progress(filled=progress.filled + half, slices=progress.slices)
        now += NS
    assert decision.done == "filled"
    assert sizes == [D(100)] * 4 + [D(50)]


# --- variance --------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    algo_id=st.text(min_size=1, max_size=12),
    variance=st.floats(0, 0.5),
    display=st.integers(1, 10_000),
    lot=st.sampled_from(["1", "10", "0.01"]),
    slice_index=st.integers(0, 10_000),
)
def test_iceberg_shown_qty_when_variance_then_bounded_on_the_lot_and_deterministic(
    algo_id: str, variance: float, display: int, lot: str, slice_index: int
) -> None:
    qty = D(display) * 3
    algo = make_algo(qty=qty, display=D(display), variance=variance, algo_id=algo_id)
    shown = algo.shown_qty(slice_index, D(lot))
    if D(display) >= D(lot):
        assert shown <= D(display)
        assert shown > D(display) * (1 - D(repr(variance))) - D(lot)
        assert shown >= D(lot)
        assert shown % D(lot) == 0
    # the same after a restart: a new instance of the same parent draws the same size
    again = make_algo(qty=qty, display=D(display), variance=variance, algo_id=algo_id)
    assert again.shown_qty(slice_index, D(lot)) == shown


def test_iceberg_shown_qty_when_no_variance_then_always_display() -> None:
    algo = make_algo(display="100", variance=0.0)
    assert {algo.shown_qty(i, D(1)) for i in range(50)} == {D(100)}


def test_iceberg_shown_qty_when_variance_then_sizes_vary_by_slice_and_parent() -> None:
    one = make_algo(display="1000", variance=0.5, algo_id="a")
    other = make_algo(display="1000", variance=0.5, algo_id="b")
    sizes_one = [one.shown_qty(i, D(1)) for i in range(40)]
    sizes_other = [other.shown_qty(i, D(1)) for i in range(40)]
    assert len(set(sizes_one)) > 10
    assert sizes_one != sizes_other
    assert all(D(500) <= s <= D(1000) for s in sizes_one + sizes_other)


def test_iceberg_shown_qty_when_display_below_a_lot_then_unrounded() -> None:
    # check() cannot know the lot; the engine rounds such a child (down) itself
    algo = make_algo(display="50", variance=0.0)
    assert algo.shown_qty(0, D(100)) == D(50)


def test_iceberg_decide_when_variance_then_child_uses_the_slice_number() -> None:
    algo = make_algo(display="1000", qty="100000", variance=0.5)
    for slices in range(5):
        [place] = places(algo.decide(make_market(), Progress(slices=slices), "child_done"))
        assert place.qty == algo.shown_qty(slices, D(1))


# --- property: any sequence of fills ---------------------------------------------------------

Op = tuple[str, float]
OPS = st.tuples(st.sampled_from(["fill", "fill", "cancel", "market"]), st.floats(0.01, 1.0))


@settings(max_examples=300, deadline=None)
@given(
    qty=st.integers(1, 5_000),
    display_share=st.floats(0.001, 1.0),
    variance=st.floats(0, 0.5),
    lot=st.sampled_from(["1", "0.01", "5"]),
    side=st.sampled_from(["buy", "sell"]),
    ops=st.lists(OPS, max_size=120),
)
def test_iceberg_property_when_any_fills_then_display_and_total_never_exceeded(
    qty: int, display_share: float, variance: float, lot: str, side: Side, ops: list[Op]
) -> None:
    display = max(D(qty) * D(repr(display_share)), D("0.01")).quantize(D("0.01"))
    algo = make_algo(qty=D(qty), display=display, variance=variance, side=side)
    progress = Progress()
    now = T0
    for kind, fraction in ops:
        now += NS // 10
        decision = algo.decide(make_market(now, lot=lot), progress, "market")
        if progress.filled >= qty:
            assert decision == Decision(done="filled")
            return
        assert not decision.done
        new = places(decision)
        assert len(decision.actions) == len(new) <= 1
        if progress.working:
            assert new == []
        for place in new:
            assert place.price == LIMIT
            assert place.tif == "day"
            assert D(0) < place.qty <= display
            assert progress.filled + progress.working_qty + place.qty <= qty
            cid = f"c{progress.slices}"
            child = Child(
                client_order_id=cid, qty=place.qty, price=place.price, leaves=place.qty, sent_ns=now
            )
            progress = Progress(
                filled=progress.filled,
                working=(*progress.working, child),
                slices=progress.slices + 1,
                last_child_ns=now,
            )
        # what is shown (working) never exceeds display_qty
        assert len(progress.working) <= 1
        assert progress.working_qty <= display
        assert progress.filled + progress.working_qty <= qty
        if not progress.working or kind == "market":
            continue
        [child] = progress.working
        if kind == "cancel":
            progress = Progress(filled=progress.filled, slices=progress.slices, last_child_ns=now)
            continue
        traded = min(
            child.leaves, max(D("0.01"), (child.leaves * D(repr(fraction))).quantize(D("0.01")))
        )
        leaves = child.leaves - traded
        rest = (
            ()
            if leaves == 0
            else (
                Child(
                    client_order_id=child.client_order_id,
                    qty=child.qty,
                    price=child.price,
                    leaves=leaves,
                    sent_ns=child.sent_ns,
                ),
            )
        )
        progress = Progress(
            filled=progress.filled + traded, working=rest, slices=progress.slices, last_child_ns=now
        )
    assert progress.filled <= qty

"""TWAP: the schedule, child sizing, randomization, catch-up, pricing, the end, parameters.

The algorithm is driven over a simulated timeline: :class:`Sim` calls ``decide`` at the
given fake times, fills placed children as told (all, a share, or nothing) and builds the
next :class:`Progress` itself — the way the engine rebuilds it from the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine.algos  # noqa: F401  (registers the built-ins)
from engine.algos.base import (
    NS,
    ZERO,
    AlgoParamsError,
    Cancel,
    Child,
    Decision,
    Market,
    ParentSpec,
    Place,
    Progress,
)
from engine.algos.registry import REGISTRY
from engine.algos.twap import TwapAlgorithm, TwapParams

D = Decimal
T0 = 1_700_000_000 * NS
BID, ASK = D("100.00"), D("100.04")


def parent(qty: Decimal | int = 100, side: str = "buy", algo_id: str = "a1") -> ParentSpec:
    return ParentSpec(
        algo_id=algo_id, account="acc", symbol="AAA", side=side, qty=D(qty), start_ns=T0
    )


def twap(qty: Decimal | int = 100, side: str = "buy", algo_id: str = "a1", **raw: Any):
    spec = parent(qty, side, algo_id)
    return TwapAlgorithm(spec, TwapAlgorithm.parse(spec, raw))


def market(t_s: float, **kw: Any) -> Market:
    return Market(now_ns=T0 + round(t_s * NS), **{"bid": BID, "ask": ASK, **kw})


Fill = Callable[[Place], Decimal]
"""How much of a placed child fills at once."""


def fill_all(place: Place) -> Decimal:
    return place.qty


def fill_none(place: Place) -> Decimal:
    return ZERO


class Sim:
    """Feeds ``decide`` and plays the engine and the venue."""

    def __init__(self, algo: TwapAlgorithm, fill: Fill = fill_all, *, expire: bool = False):
        self.algo, self.fill, self.expire = algo, fill, expire
        self.filled = ZERO
        self.working: dict[str, Child] = {}
        self.sent, self.last_ns = 0, 0
        self.placed: list[tuple[int, Place]] = []  # (ns after start, child)
        self.cancelled: list[str] = []
        self.done = ""

    def progress(self) -> Progress:
        return Progress(
            filled=self.filled,
            working=tuple(self.working.values()),
            slices=self.sent,
            last_child_ns=self.last_ns,
        )

    def step(self, t_s: float, **market_kw: Any) -> Decision:
        m = market(t_s, **market_kw)
        decision = self.algo.decide(m, self.progress(), "timer")
        for action in decision.actions:
            if isinstance(action, Place):
                cid = f"c{self.sent}"
                self.sent, self.last_ns = self.sent + 1, m.now_ns
                self.placed.append((m.now_ns - T0, action))
                got = self.fill(action)
                self.filled += got
                if got < action.qty and not self.expire:
                    self.working[cid] = Child(
                        client_order_id=cid,
                        qty=action.qty,
                        price=action.price,
                        leaves=action.qty - got,
                        sent_ns=m.now_ns,
                    )
            else:
                self.working.pop(action.client_order_id)
                self.cancelled.append(action.client_order_id)
        if decision.done:
            self.done = decision.done
        return decision

    def run(self, times_s: Iterable[float], **market_kw: Any) -> Sim:
        for t in times_s:
            if self.done:
                break
            self.step(t, **market_kw)
        return self

    def sizes(self) -> list[Decimal]:
        return [p.qty for _, p in self.placed]

    def times_s(self) -> list[float]:
        return [ns / NS for ns, _ in self.placed]


def every(step_s: float, until_s: float) -> list[float]:
    return [i * step_s for i in range(int(until_s / step_s) + 1)]


# --- schedule and child sizing ------------------------------------------------------------


def test_twap_when_slices_given_then_equal_children_at_slice_times():
    sim = Sim(twap(duration_s=600, slices=4)).run(every(1, 700))
    assert sim.times_s() == [0, 150, 300, 450]
    assert sim.sizes() == [D(25)] * 4
    assert sim.done == "filled"


def test_twap_when_no_slice_params_then_one_slice_a_minute():
    sim = Sim(twap(qty=10, duration_s=300)).run(every(1, 400))
    assert sim.times_s() == [0, 60, 120, 180, 240]
    assert sim.sizes() == [D(2)] * 5


def test_twap_when_run_shorter_than_a_minute_then_one_slice():
    sim = Sim(twap(qty=10, duration_s=20)).run(every(1, 25))
    assert sim.times_s() == [0]
    assert sim.sizes() == [D(10)]


def test_twap_when_interval_given_then_slices_that_far_apart():
    sim = Sim(twap(qty=9, duration_s=250, interval_s=100)).run(every(1, 300))
    assert sim.times_s() == [0, 100, 200]
    assert sim.sizes() == [D(3)] * 3


def test_twap_when_end_at_given_then_run_ends_there():
    algo = twap(end_at_ns=T0 + 120 * NS, slices=2)
    assert algo.end_ns() == T0 + 120 * NS
    assert Sim(algo).run(every(1, 200)).times_s() == [0, 60]


def test_twap_when_qty_not_divisible_then_whole_lots_add_up_to_qty():
    sim = Sim(twap(qty=100, duration_s=700, slices=7)).run(every(10, 800))
    assert sum(sim.sizes()) == 100
    assert set(sim.sizes()) <= {D(14), D(15)}


def test_twap_when_shares_are_thirds_then_no_lot_lost_to_rounding():
    sim = Sim(twap(qty=3, duration_s=180, slices=3)).run(every(1, 200))
    assert sim.sizes() == [D(1), D(1), D(1)]


def test_twap_when_lot_is_ten_then_children_are_whole_lots():
    sim = Sim(twap(qty=100, duration_s=300, slices=3)).run(every(1, 400), lot=D(10))
    assert sim.sizes() == [D(30), D(30), D(40)]


def test_twap_when_between_slices_then_no_new_child_and_wakes_at_next_slice():
    algo = twap(duration_s=600, slices=4)
    sim = Sim(algo, fill_none)
    first = sim.step(0)
    assert len(first.actions) == 1
    assert first.wake_in_s == 150
    again = sim.step(10)
    assert again.actions == ()
    assert again.wake_in_s == 140


def test_twap_when_asked_then_expected_is_the_schedule_step():
    algo = twap(duration_s=600, slices=4)
    assert algo.expected(T0 - 1) == 0
    assert algo.expected(T0) == 25
    assert algo.expected(T0 + 149 * NS) == 25
    assert algo.expected(T0 + 150 * NS) == 50
    assert algo.expected(T0 + 450 * NS) == 100
    assert algo.expected(T0 + 10_000 * NS) == 100


def test_twap_when_parent_qty_modified_then_schedule_follows_it():
    algo = twap(duration_s=600, slices=4)
    algo.parent = parent(qty=200)
    assert algo.expected(T0 + 150 * NS) == 100


# --- the end ------------------------------------------------------------------------------


def test_twap_when_end_reached_unfilled_then_done_end_time():
    sim = Sim(twap(duration_s=600, slices=4), fill_none, expire=True)
    last = sim.step(599)
    assert last.done == ""
    assert last.wake_in_s == pytest.approx(1)
    assert sim.step(600).done == "end_time"


def test_twap_when_filled_then_done_filled_even_after_end():
    algo = twap(qty=10, duration_s=60)
    assert algo.decide(market(0), Progress(filled=D(10)), "fill").done == "filled"
    assert algo.decide(market(90), Progress(filled=D(10)), "timer").done == "filled"
    assert algo.decide(market(90), Progress(filled=D(9)), "timer").done == "end_time"


def test_twap_when_before_start_then_waits_for_first_slice():
    decision = twap(duration_s=600).decide(market(-5), Progress(), "start")
    assert decision.actions == ()
    assert decision.wake_in_s == 5


def test_twap_when_halted_then_no_child():
    decision = twap(duration_s=600).decide(market(0, halted=True), Progress(), "start")
    assert decision.actions == ()
    assert decision.done == ""


def test_twap_when_book_empty_then_waits():
    decision = twap(duration_s=600).decide(market(0, bid=None, ask=None), Progress(), "start")
    assert decision.actions == ()
    assert decision.wake_in_s == 60


# --- catch-up -----------------------------------------------------------------------------


def half(place: Place) -> Decimal:
    return place.qty // 2


def test_twap_when_behind_with_catch_up_then_next_child_takes_shortfall():
    # half of every child fills, the rest expires (IOC-like): the shortfall rolls over
    sim = Sim(twap(duration_s=400, slices=4, aggressiveness="passive"), half, expire=True)
    sim.run([0, 100, 200])
    assert sim.sizes() == [D(25), D(38), D(44)]  # 25; 50-12; 75-(12+19)


def test_twap_when_child_expires_with_catch_up_then_replaced_before_next_slice():
    sim = Sim(twap(duration_s=400, slices=4), half, expire=True)
    sim.run([0, 1, 2])
    assert sim.sizes() == [D(25), D(13), D(7)]


def test_twap_when_behind_without_catch_up_then_only_slice_quantity():
    algo = twap(duration_s=400, slices=4, catch_up=False)
    sim = Sim(algo, half, expire=True).run(every(1, 420))
    assert sim.sizes() == [D(25)] * 4
    assert sim.done == "end_time"


def test_twap_when_slices_missed_without_catch_up_then_only_latest_slice():
    sim = Sim(twap(duration_s=400, slices=4, catch_up=False)).run([250])
    assert sim.sizes() == [D(25)]


def test_twap_when_slices_missed_with_catch_up_then_all_due_at_once():
    sim = Sim(twap(duration_s=400, slices=4)).run([250])
    assert sim.sizes() == [D(75)]


def test_twap_when_new_slice_and_child_behind_market_then_cancelled_then_replaced():
    sim = Sim(twap(duration_s=400, slices=4, aggressiveness="passive"), fill_none)
    sim.step(0)
    assert sim.placed[0][1].price == BID
    moved = sim.step(100, bid=D("100.02"))
    assert moved.actions == (Cancel(client_order_id="c0"),)
    replaced = sim.step(100.5, bid=D("100.02"))
    assert replaced.actions == (Place(qty=D(50), price=D("100.02")),)


def test_twap_when_new_slice_and_child_still_at_price_then_kept_and_slice_added():
    sim = Sim(twap(duration_s=400, slices=4, aggressiveness="passive"), fill_none)
    sim.step(0)
    decision = sim.step(100)
    assert decision.actions == (Place(qty=D(25), price=BID),)
    assert sim.cancelled == []


def test_twap_when_market_moves_mid_slice_then_no_chasing():
    sim = Sim(twap(duration_s=400, slices=4, aggressiveness="passive"), fill_none)
    sim.step(0)
    assert sim.step(30, bid=D("100.03")).actions == ()


def test_twap_when_child_priced_better_than_market_then_kept():
    sim = Sim(twap(duration_s=400, slices=4, aggressiveness="passive"), fill_none)
    sim.step(0)
    assert sim.step(100, bid=D("99.90")).actions == (Place(qty=D(25), price=D("99.90")),)


def test_twap_when_last_slice_with_catch_up_then_crosses():
    sim = Sim(twap(duration_s=400, slices=4)).run(every(1, 400))
    prices = [p.price for _, p in sim.placed]
    assert prices == [ASK, ASK, ASK, ASK + 5 * D("0.01")]


def test_twap_when_last_tenth_of_run_then_working_child_replaced_across_spread():
    # one slice: the finishing phase is the last tenth of the run
    sim = Sim(twap(qty=10, duration_s=50, aggressiveness="passive"), fill_none)
    assert sim.step(0).wake_in_s == 45
    assert sim.step(44).actions == ()
    assert sim.step(45).actions == (Cancel(client_order_id="c0"),)
    assert sim.step(46).actions == (Place(qty=D(10), price=D("100.09")),)
    # and it chases the market while finishing
    assert sim.step(47, ask=D("100.20")).actions == (Cancel(client_order_id="c1"),)


def test_twap_when_finishing_without_catch_up_then_keeps_aggressiveness():
    sim = Sim(twap(duration_s=400, slices=4, catch_up=False), fill_none).run(every(1, 399))
    assert [p.price for _, p in sim.placed] == [ASK] * 4
    assert sim.cancelled == []


def test_twap_when_working_exceeds_remaining_then_no_child():
    working = Child(client_order_id="c0", qty=D(90), price=ASK, leaves=D(90), sent_ns=T0)
    progress = Progress(filled=D(20), working=(working,), slices=1, last_child_ns=T0)
    decision = twap(duration_s=400, slices=4).decide(market(350), progress, "timer")
    assert [a for a in decision.actions if isinstance(a, Place)] == []


# --- pricing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "aggressiveness", "price"),
    [
        ("buy", "passive", "100.00"),
        ("buy", "touch", "100.04"),
        ("buy", "cross", "100.09"),
        ("sell", "passive", "100.04"),
        ("sell", "touch", "100.00"),
        ("sell", "cross", "99.95"),
    ],
)
def test_twap_when_aggressiveness_set_then_child_priced_by_it(side, aggressiveness, price):
    algo = twap(side=side, duration_s=600, aggressiveness=aggressiveness)
    decision = algo.decide(market(0), Progress(), "start")
    assert decision.actions == (Place(qty=D(10), price=D(price)),)


def test_twap_when_limit_price_then_children_capped_at_limit():
    algo = twap(duration_s=600, slices=2, limit_price="100.02")
    sim = Sim(algo).run(every(1, 600))
    assert [p.price for _, p in sim.placed] == [D("100.02"), D("100.02")]


def test_twap_when_sell_limit_then_children_not_below_limit():
    algo = twap(side="sell", duration_s=600, slices=2, limit_price="100.01")
    sim = Sim(algo).run(every(1, 600))
    assert [p.price for _, p in sim.placed] == [D("100.01"), D("100.01")]


# --- randomization ------------------------------------------------------------------------


def test_twap_when_randomized_then_same_schedule_for_same_parent():
    a = twap(duration_s=3600, slices=30, randomize=0.3)
    b = twap(duration_s=3600, slices=30, randomize=0.3)
    other = twap(duration_s=3600, slices=30, randomize=0.3, algo_id="a2")
    assert a.schedule == b.schedule
    assert a.schedule.times != other.schedule.times
    assert a.schedule.shares != other.schedule.shares


@pytest.mark.parametrize("algo_id", ["a1", "a2", "x-17", "long-algo-id-000042"])
@pytest.mark.parametrize("randomize", [0.1, 0.5])
def test_twap_when_randomized_then_jitter_bounded_and_qty_exact(algo_id, randomize):
    n, interval = 40, 90
    algo = twap(qty=10_000, algo_id=algo_id, duration_s=n * interval, slices=n, randomize=randomize)
    times = [(t - T0) / NS for t in algo.schedule.times]
    assert times[0] == 0
    assert times == sorted(times)
    for k, t in enumerate(times):
        assert abs(t - k * interval) <= randomize * interval + 1e-6
    sim = Sim(algo).run(sorted(set(times)))
    even = D(10_000) / n
    low, high = (1 - randomize) / (1 + randomize), (1 + randomize) / (1 - randomize)
    for size in sim.sizes():
        assert even * D(low) - 1 <= size <= even * D(high) + 1
    assert sum(sim.sizes()) == 10_000
    assert len(set(sim.sizes())) > 5  # sizes do vary
    assert algo.expected(algo.schedule.times[-1]) == 10_000


def test_twap_when_not_randomized_then_no_jitter():
    algo = twap(duration_s=600, slices=6)
    assert [(t - T0) // NS for t in algo.schedule.times] == [0, 100, 200, 300, 400, 500]


# --- parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        ({}, "duration_s", "exactly one of duration_s and end_at_ns"),
        ({"duration_s": 60, "end_at_ns": T0 + NS}, "duration_s", "exactly one"),
        ({"end_at_ns": T0}, "end_at_ns", "not after the parent's start"),
        ({"end_at_ns": T0 - NS}, "end_at_ns", "not after"),
        ({"duration_s": 0}, "duration_s", "positive duration"),
        ({"duration_s": float("inf")}, "duration_s", "positive duration"),
        ({"duration_s": float("nan")}, "duration_s", "positive duration"),
        ({"duration_s": 60, "slices": 0}, "slices", "must be 1 to"),
        ({"duration_s": 60, "slices": 2, "interval_s": 10}, "interval_s", "not both"),
        ({"duration_s": 60, "interval_s": 0}, "interval_s", "positive duration"),
        ({"duration_s": 60, "interval_s": -5}, "interval_s", "positive duration"),
        ({"duration_s": 60, "interval_s": float("nan")}, "interval_s", "positive duration"),
        ({"duration_s": 60, "interval_s": 61}, "interval_s", "longer than the run"),
        ({"duration_s": 60, "interval_s": 0.001}, "interval_s", "more than 10000 slices"),
        ({"duration_s": 10**9}, "duration_s", "more than 10000 slices"),
        ({"duration_s": 60, "randomize": 0.6}, "randomize", "0 to 0.5"),
        ({"duration_s": 60, "randomize": -0.1}, "randomize", "0 to 0.5"),
        ({"duration_s": 60, "randomize": float("nan")}, "randomize", "0 to 0.5"),
        ({"duration_s": 60, "limit_price": "0"}, "limit_price", "positive price"),
        ({"duration_s": 60, "aggressiveness": "eager"}, "aggressiveness", "Invalid enum value"),
        ({"duration_s": 60, "nonsense": 1}, "params", "unknown field `nonsense`"),
    ],
)
def test_twap_params_when_invalid_then_error_names_field(raw, field, message):
    with pytest.raises(AlgoParamsError, match=message) as info:
        TwapAlgorithm.parse(parent(), raw)
    assert info.value.field == field


def test_twap_params_when_built_directly_with_bad_aggressiveness_then_check_refuses():
    params = TwapParams(duration_s=60, aggressiveness="eager")  # type: ignore[arg-type]
    with pytest.raises(AlgoParamsError, match="aggressiveness"):
        params.check(parent())


def test_twap_params_when_json_strings_then_parsed():
    params = TwapAlgorithm.parse(
        parent(), {"duration_s": "600", "slices": "4", "limit_price": "101.5", "catch_up": False}
    )
    assert params == TwapParams(duration_s=600, slices=4, limit_price=D("101.5"), catch_up=False)


def test_twap_when_engine_imported_then_registered():
    assert REGISTRY.get("twap") is TwapAlgorithm
    info = next(i for i in REGISTRY.describe() if i.kind == "twap")
    assert {"duration_s", "end_at_ns", "slices", "interval_s", "randomize"} <= set(
        info.params["properties"]
    )


# --- property -----------------------------------------------------------------------------

prices = st.decimals(min_value=D("0.01"), max_value=D("200"), places=2)
quantities = st.integers(min_value=0, max_value=500).map(D)


@st.composite
def situations(draw: st.DrawFn) -> tuple[TwapAlgorithm, Market, Progress]:
    qty = draw(st.integers(min_value=1, max_value=1_000))
    raw: dict[str, Any] = {
        "duration_s": draw(st.floats(min_value=1, max_value=7_200)),
        "randomize": draw(st.floats(min_value=0, max_value=0.5)),
        "aggressiveness": draw(st.sampled_from(["passive", "touch", "cross"])),
        "catch_up": draw(st.booleans()),
    }
    if draw(st.booleans()):
        raw["slices"] = draw(st.integers(min_value=1, max_value=50))
    algo = twap(qty=qty, side=draw(st.sampled_from(["buy", "sell"])), **raw)
    children = tuple(
        Child(
            client_order_id=f"c{i}",
            qty=leaves,
            price=draw(st.none() | prices),
            leaves=leaves,
            sent_ns=T0,
        )
        for i, leaves in enumerate(draw(st.lists(quantities, max_size=4)))
    )
    progress = Progress(
        filled=draw(st.integers(min_value=0, max_value=qty + 10).map(D)),
        working=children,
        slices=len(children),
        last_child_ns=draw(st.sampled_from([0, T0, T0 + 30 * NS])),
    )
    m = Market(
        now_ns=T0 + draw(st.integers(min_value=-10, max_value=8_000)) * NS,
        bid=draw(st.none() | prices),
        ask=draw(st.none() | prices),
        lot=draw(st.sampled_from([D(1), D(10), D("0.5")])),
        halted=draw(st.booleans()),
    )
    return algo, m, progress


@settings(max_examples=400, deadline=None)
@given(situations())
def test_twap_when_any_progress_then_never_asks_beyond_remaining(situation):
    algo, m, progress = situation
    decision = algo.decide(m, progress, "market")
    placed = sum((a.qty for a in decision.actions if isinstance(a, Place)), ZERO)
    assert placed <= max(algo.parent.qty - progress.filled - progress.working_qty, ZERO)
    assert all(a.qty > 0 and a.qty % m.lot == 0 for a in decision.actions if isinstance(a, Place))
    assert decision.wake_in_s is None or decision.wake_in_s > 0

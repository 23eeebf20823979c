"""VWAP and its volume profile: bucketing history by time of day, the flat fallback, the
schedule it gives, the participation cap, the end, parameters.

The algorithm is driven over a simulated timeline like TWAP's (see test_twap.py): the
test plays the engine and the venue and builds each :class:`Progress` itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
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
    Child,
    Decision,
    Market,
    ParentSpec,
    Place,
    Progress,
)
from engine.algos.profile import (
    DAY_NS,
    Schedule,
    bucket_volumes,
    cumulative_shares,
    flat_profile,
    floor_lot,
    slice_count,
    volume_profile,
)
from engine.algos.registry import REGISTRY
from engine.algos.vwap import VwapAlgorithm, VwapParams

D = Decimal
MIN = 60 * NS
START_DT = datetime(2024, 3, 11, 14, 30, tzinfo=UTC)
T0 = int(START_DT.timestamp()) * NS
BID, ASK = D("50.00"), D("50.02")


def ns(dt: datetime) -> int:
    return int(dt.timestamp()) * NS


def minute_bars(
    days: int, busy: dict[int, int], *, base: int = 100, first: str = "14:00", count: int = 120
) -> list[tuple[int, Decimal]]:
    """1m bars on each of the ``days`` days before the start, ``base`` volume a minute
    except ``busy`` (minutes after 14:30 → volume)."""
    hour, minute = map(int, first.split(":"))
    bars = []
    for day in range(days, 0, -1):
        open_dt = (START_DT - timedelta(days=day)).replace(hour=hour, minute=minute)
        for i in range(count):
            dt = open_dt + timedelta(minutes=i)
            offset = int((dt - dt.replace(hour=14, minute=30)).total_seconds() // 60)
            bars.append((ns(dt), D(busy.get(offset, base))))
    return bars


class FakeHistory:
    def __init__(self, bars: list[tuple[int, Decimal]]):
        self.bars = bars
        self.calls: list[tuple[str, int, int]] = []

    def intraday_volumes(self, symbol: str, *, days: int, now_ns: int) -> list[tuple[int, Decimal]]:
        self.calls.append((symbol, days, now_ns))
        return self.bars


def parent(qty: int = 1_000, side: str = "buy") -> ParentSpec:
    return ParentSpec(algo_id="v1", account="acc", symbol="AAA", side=side, qty=D(qty), start_ns=T0)


def vwap(qty: int = 1_000, history: FakeHistory | None = None, **raw: Any) -> VwapAlgorithm:
    spec = parent(qty)
    params = VwapAlgorithm.parse(spec, raw)
    if history is not None:
        params = VwapAlgorithm.prepare(spec, params, history)
    return VwapAlgorithm(spec, params)


def market(t_s: float, **kw: Any) -> Market:
    return Market(now_ns=T0 + round(t_s * NS), **{"bid": BID, "ask": ASK, **kw})


class Sim:
    """Feeds ``decide``; placed children fill at once (``fill``) or keep working."""

    def __init__(self, algo: VwapAlgorithm, fill: Callable[[Place], Decimal] = lambda p: p.qty):
        self.algo, self.fill = algo, fill
        self.filled = ZERO
        self.working: dict[str, Child] = {}
        self.sent, self.last_ns = 0, 0
        self.placed: list[tuple[float, Place]] = []
        self.done = ""

    def step(self, t_s: float, **market_kw: Any) -> Decision:
        m = market(t_s, **market_kw)
        progress = Progress(
            filled=self.filled,
            working=tuple(self.working.values()),
            slices=self.sent,
            last_child_ns=self.last_ns,
        )
        decision = self.algo.decide(m, progress, "timer")
        for action in decision.actions:
            if isinstance(action, Place):
                cid = f"c{self.sent}"
                self.sent, self.last_ns = self.sent + 1, m.now_ns
                self.placed.append((t_s, action))
                got = self.fill(action)
                self.filled += got
                if got < action.qty:
                    self.working[cid] = Child(
                        client_order_id=cid,
                        qty=action.qty,
                        price=action.price,
                        leaves=action.qty - got,
                        sent_ns=m.now_ns,
                    )
            else:
                self.working.pop(action.client_order_id)
        self.done = self.done or decision.done
        return decision

    def run(self, times_s: Iterable[float], **market_kw: Any) -> Sim:
        for t in times_s:
            if not self.done:
                self.step(t, **market_kw)
        return self

    def by_slice(self, interval_s: float = 60) -> dict[int, Decimal]:
        out: dict[int, Decimal] = {}
        for t, place in self.placed:
            out[int(t // interval_s)] = out.get(int(t // interval_s), ZERO) + place.qty
        return out


def seconds(until_s: int) -> list[float]:
    return [float(t) for t in range(until_s + 1)]


# --- the profile on its own ---------------------------------------------------------------


def test_flat_profile_when_n_slices_then_even_steps_ending_at_one():
    assert flat_profile(1) == (1.0,)
    assert flat_profile(4) == (0.25, 0.5, 0.75, 1.0)
    assert flat_profile(3)[-1] == 1.0


def test_cumulative_shares_when_volumes_then_running_share_ending_exactly_at_one():
    assert cumulative_shares([1, 0, 3]) == (0.25, 0.25, 1.0)
    assert cumulative_shares([0.1] * 10)[-1] == 1.0
    assert cumulative_shares([-5, 5]) == (0.0, 1.0)  # negative volume counts as none


@pytest.mark.parametrize("volumes", [[], [0, 0, 0]])
def test_cumulative_shares_when_no_volume_then_none(volumes):
    assert cumulative_shares(volumes) is None


def test_bucket_volumes_when_minute_bars_then_mean_per_slice_and_days():
    bars = minute_bars(5, {3: 10_000, 7: 10_000})
    buckets = bucket_volumes(bars, start_ns=T0, end_ns=T0 + 10 * MIN, interval_ns=MIN)
    assert buckets.days == 5
    assert buckets.volumes == (100, 100, 100, 10_000, 100, 100, 100, 10_000, 100, 100)


def test_bucket_volumes_when_slices_longer_than_bars_then_bars_summed():
    bars = minute_bars(3, {3: 1_000})
    buckets = bucket_volumes(bars, start_ns=T0, end_ns=T0 + 10 * MIN, interval_ns=5 * MIN)
    assert buckets.volumes == (1_400, 500)


def test_bucket_volumes_when_hourly_bars_then_spread_over_minute_slices():
    bars = [
        (ns((START_DT - timedelta(days=d)).replace(hour=h, minute=0)), D(6_000 * (h - 12)))
        for d in (3, 2, 1)
        for h in (13, 14, 15)
    ]
    buckets = bucket_volumes(bars, start_ns=T0, end_ns=T0 + 60 * MIN, interval_ns=MIN)
    assert buckets.days == 3
    assert buckets.volumes[:30] == pytest.approx([200.0] * 30)  # 14:30-15:00 of the 14h bar
    assert buckets.volumes[30:] == pytest.approx([300.0] * 30)  # the 15h bar


def test_bucket_volumes_when_window_crosses_midnight_then_both_sides_counted():
    start = ns(datetime(2024, 3, 11, 23, 58, tzinfo=UTC))
    bars = []
    for d in (3, 2, 1):
        base = start - d * DAY_NS
        bars += [(base + i * MIN, D(i + 1)) for i in range(-2, 6)]
    buckets = bucket_volumes(bars, start_ns=start, end_ns=start + 4 * MIN, interval_ns=MIN)
    assert buckets.days == 3
    assert buckets.volumes == (1, 2, 3, 4)


def test_bucket_volumes_when_bar_straddles_window_start_then_only_its_inside_part():
    # 1m bars 30 s off the window: half of each edge bar falls inside
    bars = [(T0 - d * DAY_NS - 30 * NS + i * MIN, D(100)) for d in (3, 2, 1) for i in range(4)]
    buckets = bucket_volumes(bars, start_ns=T0, end_ns=T0 + 2 * MIN, interval_ns=MIN)
    assert buckets.volumes == pytest.approx((100.0, 100.0))


def test_bucket_volumes_when_window_a_day_or_longer_then_no_days():
    bars = minute_bars(5, {})
    buckets = bucket_volumes(bars, start_ns=T0, end_ns=T0 + DAY_NS, interval_ns=3_600 * NS)
    assert buckets.days == 0


def test_volume_profile_when_volume_concentrated_then_steps_at_those_minutes():
    bars = minute_bars(5, {3: 10_000, 7: 10_000})
    profile = volume_profile(bars, start_ns=T0, end_ns=T0 + 10 * MIN, interval_ns=MIN)
    total = 20_800
    assert profile == pytest.approx(
        [100 / total, 200 / total, 300 / total, 10_300 / total, 10_400 / total,
         10_500 / total, 10_600 / total, 20_600 / total, 20_700 / total, 1.0]
    )  # fmt: skip
    assert profile[-1] == 1.0


@pytest.mark.parametrize(
    "bars",
    [
        minute_bars(2, {3: 10_000}),  # two days only
        minute_bars(5, {}, first="16:00", count=30),  # nothing traded in the window
        [],
    ],
    ids=["two-days", "no-volume-in-window", "no-history"],
)
def test_volume_profile_when_history_too_thin_then_flat(bars):
    profile = volume_profile(bars, start_ns=T0, end_ns=T0 + 4 * MIN, interval_ns=MIN)
    assert profile == (0.25, 0.5, 0.75, 1.0)


def test_floor_lot_when_quantities_then_whole_lots_never_negative():
    assert floor_lot(D("37.9"), D(10)) == 30
    assert floor_lot(D("2.75"), D("0.5")) == D("2.5")
    assert floor_lot(D(-3), D(1)) == 0
    assert floor_lot(D("3.3"), ZERO) == D("3.3")


def test_slice_count_when_partial_last_slice_then_counted():
    assert slice_count(600 * NS, 60 * NS) == 10
    assert slice_count(601 * NS, 60 * NS) == 11
    assert slice_count(10 * NS, 60 * NS) == 1


def test_schedule_when_built_then_last_share_exact_and_finish_at_last_slice():
    schedule = Schedule.build(0, 100, [0, 50], [D("0.3333"), D("0.9999")])
    assert schedule.shares == (D("0.3333"), D(1))
    assert schedule.finish_ns == 50
    assert Schedule.build(0, 100, [0], [D(1)]).finish_ns == 90


# --- VWAP ---------------------------------------------------------------------------------


def test_vwap_when_prepared_then_history_asked_for_days_before_start():
    history = FakeHistory(minute_bars(5, {}))
    vwap(duration_s=600, history_days=7, history=history)
    assert history.calls == [("AAA", 7, T0)]


def test_vwap_when_volume_concentrated_then_children_concentrated_there():
    history = FakeHistory(minute_bars(5, {3: 10_000, 7: 10_000}))
    algo = vwap(qty=20_800, duration_s=600, history=history)
    sim = Sim(algo).run(seconds(600))
    per_slice = sim.by_slice()
    assert per_slice[3] == per_slice[7] == 10_000
    assert all(per_slice[k] == 100 for k in (0, 1, 2, 4, 5, 6, 8, 9))
    assert sim.done == "filled"


def test_vwap_when_history_short_then_flat_like_twap():
    algo = vwap(qty=1_000, duration_s=600, history=FakeHistory(minute_bars(2, {3: 10_000})))
    assert algo.params.profile == flat_profile(10)
    sim = Sim(algo).run(seconds(600))
    assert list(sim.by_slice().values()) == [D(100)] * 10


def test_vwap_when_profile_given_then_prepare_keeps_it():
    history = FakeHistory(minute_bars(5, {1: 10_000}))
    algo = vwap(qty=100, duration_s=180, profile=[0.5, 0.5, 1.0], history=history)
    assert algo.params.profile == (0.5, 0.5, 1.0)
    assert history.calls == []
    assert Sim(algo).run(seconds(180)).by_slice() == {0: 50, 2: 50}


def test_vwap_when_never_prepared_then_flat_schedule():
    algo = vwap(qty=100, duration_s=240)
    assert algo.params.profile == ()
    assert [algo.expected(T0 + k * MIN) for k in range(4)] == [25, 50, 75, 100]


def test_vwap_when_asked_then_expected_follows_profile_and_end():
    algo = vwap(qty=1_000, duration_s=180, profile=[0.2, 0.9, 1.0])
    assert algo.expected(T0 - 1) == 0
    assert algo.expected(T0 + 59 * NS) == 200
    assert algo.expected(T0 + MIN) == 900
    assert algo.expected(T0 + 3 * MIN) == 1_000
    assert algo.end_ns() == T0 + 3 * MIN


def test_vwap_when_end_at_given_then_slices_cover_that_window():
    algo = vwap(end_at_ns=T0 + 150 * NS, interval_s=60)
    assert algo.schedule.times == (T0, T0 + MIN, T0 + 2 * MIN)
    assert algo.end_ns() == T0 + 150 * NS


def test_vwap_when_participation_capped_then_child_within_share_of_volume():
    algo = vwap(qty=1_000, duration_s=600, max_participation=0.1)
    decision = algo.decide(market(0, volume=D(500)), Progress(), "start")
    assert decision.actions == (Place(qty=D(50), price=ASK),)


def test_vwap_when_capped_then_filled_and_working_count_against_cap():
    algo = vwap(qty=1_000, duration_s=600, max_participation=0.1)
    working = Child(client_order_id="c0", qty=D(20), price=ASK, leaves=D(20), sent_ns=T0)
    progress = Progress(filled=D(30), working=(working,), slices=1, last_child_ns=T0)
    decision = algo.decide(market(60, volume=D(800)), progress, "timer")
    assert decision.actions == (Place(qty=D(30), price=ASK),)  # 80 - 30 - 20


def test_vwap_when_capped_and_no_market_volume_then_waits():
    algo = vwap(qty=1_000, duration_s=600, max_participation=0.2)
    decision = algo.decide(market(0), Progress(), "start")
    assert decision.actions == ()
    assert decision.wake_in_s == 60


def test_vwap_when_volume_grows_then_cap_releases_more_within_schedule():
    sim = Sim(vwap(qty=1_000, duration_s=600, max_participation=0.5))
    sim.step(0, volume=D(40))
    sim.step(5, volume=D(100))
    sim.step(10, volume=D(1_000))
    assert [p.qty for _, p in sim.placed] == [D(20), D(30), D(50)]  # schedule: 100


def test_vwap_when_no_cap_then_volume_ignored():
    decision = vwap(qty=1_000, duration_s=600).decide(market(0), Progress(), "start")
    assert decision.actions == (Place(qty=D(100), price=ASK),)


@pytest.mark.parametrize(
    ("aggressiveness", "price"), [("passive", BID), ("touch", ASK), ("cross", D("50.07"))]
)
def test_vwap_when_aggressiveness_and_limit_then_child_priced_and_capped(aggressiveness, price):
    algo = vwap(duration_s=600, aggressiveness=aggressiveness)
    assert algo.decide(market(0), Progress(), "start").actions[0].price == price
    capped = vwap(duration_s=600, aggressiveness=aggressiveness, limit_price="50.01")
    assert capped.decide(market(0), Progress(), "start").actions[0].price == min(price, D("50.01"))


def test_vwap_when_last_slice_then_crosses_to_finish():
    sim = Sim(vwap(qty=300, duration_s=180)).run(seconds(180))
    assert [p.price for _, p in sim.placed] == [ASK, ASK, D("50.07")]


def test_vwap_when_end_reached_then_done_end_time_and_filled_wins():
    algo = vwap(qty=100, duration_s=120)
    assert algo.decide(market(120), Progress(filled=D(99)), "timer").done == "end_time"
    assert algo.decide(market(120), Progress(filled=D(100)), "timer").done == "filled"
    assert algo.decide(market(30), Progress(filled=D(100)), "fill").done == "filled"


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        ({}, "duration_s", "exactly one of duration_s and end_at_ns"),
        ({"duration_s": 60, "end_at_ns": T0 + NS}, "duration_s", "exactly one"),
        ({"end_at_ns": T0 - 1}, "end_at_ns", "not after the parent's start"),
        ({"duration_s": -1}, "duration_s", "positive duration"),
        ({"duration_s": 60, "interval_s": 0}, "interval_s", "positive duration"),
        ({"duration_s": 60, "interval_s": float("inf")}, "interval_s", "positive duration"),
        ({"duration_s": 86_400, "interval_s": 1}, "interval_s", "more than 10000"),
        ({"duration_s": 60, "max_participation": 0}, "max_participation", "above 0"),
        ({"duration_s": 60, "max_participation": 1.5}, "max_participation", "at most 1"),
        ({"duration_s": 60, "max_participation": float("nan")}, "max_participation", "above 0"),
        ({"duration_s": 60, "history_days": 0}, "history_days", "1 to 366"),
        ({"duration_s": 120, "profile": [1.0]}, "profile", "1 entries for 2 slices"),
        ({"duration_s": 120, "profile": [0.4, 0.5]}, "profile", "must end at 1.0"),
        ({"duration_s": 180, "profile": [0.6, 0.5, 1.0]}, "profile", "must not decrease"),
        ({"duration_s": 120, "profile": [-0.1, 1.0]}, "profile", "finite, 0 to 1"),
        ({"duration_s": 120, "profile": [float("nan"), 1.0]}, "profile", "finite"),
        ({"duration_s": 60, "limit_price": "-1"}, "limit_price", "positive price"),
        ({"duration_s": 60, "aggressiveness": "wild"}, "aggressiveness", "Invalid enum"),
    ],
)
def test_vwap_params_when_invalid_then_error_names_field(raw, field, message):
    with pytest.raises(AlgoParamsError, match=message) as info:
        VwapAlgorithm.parse(parent(), raw)
    assert info.value.field == field


def test_vwap_params_when_defaults_then_minute_slices_twenty_days_touch():
    params = VwapAlgorithm.parse(parent(), {"duration_s": 600})
    assert params == VwapParams(duration_s=600)
    assert (params.interval_s, params.history_days, params.aggressiveness) == (60, 20, "touch")


def test_vwap_when_engine_imported_then_registered():
    assert REGISTRY.get("vwap") is VwapAlgorithm
    info = next(i for i in REGISTRY.describe() if i.kind == "vwap")
    assert {"max_participation", "history_days", "profile"} <= set(info.params["properties"])


@settings(max_examples=300, deadline=None)
@given(
    qty=st.integers(min_value=1, max_value=10_000),
    cap=st.floats(min_value=0.01, max_value=1),
    volume=st.integers(min_value=0, max_value=100_000).map(D),
    filled=st.integers(min_value=0, max_value=10_000).map(D),
    leaves=st.lists(st.integers(min_value=1, max_value=500).map(D), max_size=3),
    t_s=st.integers(min_value=0, max_value=700),
    last_child_s=st.sampled_from([None, 0, 100, 400]),
)
def test_vwap_when_any_progress_then_within_cap_and_remaining(
    qty, cap, volume, filled, leaves, t_s, last_child_s
):
    algo = vwap(qty=qty, duration_s=600, max_participation=cap)
    children = tuple(
        Child(client_order_id=f"c{i}", qty=q, price=ASK, leaves=q, sent_ns=T0)
        for i, q in enumerate(leaves)
    )
    progress = Progress(
        filled=filled,
        working=children,
        slices=len(children),
        last_child_ns=0 if last_child_s is None else T0 + last_child_s * NS,
    )
    decision = algo.decide(market(t_s, volume=volume), progress, "market")
    placed = sum((a.qty for a in decision.actions if isinstance(a, Place)), ZERO)
    committed = filled + progress.working_qty
    assert placed == 0 or committed + placed <= D(str(cap)) * volume
    assert placed <= max(D(qty) - committed, ZERO)

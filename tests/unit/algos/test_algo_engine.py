"""The algorithm engine in the execution process against the real matching engine, in
compressed time: schedules and child sizing, the lifecycle and its illegal moves,
modify mid-flight, failures isolated, the kill switch, risk refusals, TCA, progress."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar

import pytest
from algo_world import SYMBOL, AlgoWorld, D

from engine.algos.base import (
    AlgoParams,
    Algorithm,
    Cancel,
    Decision,
    Market,
    Place,
    Progress,
    Why,
)
from engine.algos.registry import REGISTRY
from engine.bus import topics
from engine.bus.commands.algos import (
    CancelAlgo,
    GetAlgoTca,
    ListAlgoKinds,
    ListAlgos,
    ModifyAlgo,
    PauseAlgo,
    ResumeAlgo,
    ShowAlgo,
    StartAlgo,
)
from engine.bus.commands.risk import HaltTrading
from engine.bus.events import AlertRaised, AlgoProgress, AlgoStateChanged, QuoteUpdated
from engine.errors import CommandError, ErrorCode
from engine.risk.profile import RiskProfile


class BoomAlgorithm(Algorithm[AlgoParams]):
    """Places one child, then raises on the next decision."""

    kind: ClassVar[str] = "boom_test"

    def decide(self, market: Market, progress: Progress, why: Why) -> Decision:
        if progress.slices == 0:
            return Decision(actions=(Place(qty=D(10), price=market.bid),), wake_in_s=1)
        raise RuntimeError("boom")


@pytest.fixture(autouse=True)
def test_algorithms() -> Iterator[None]:
    """This module's broken algorithms, registered only while its tests run."""
    for cls in (BoomAlgorithm, ChurnAlgorithm):
        REGISTRY.register(cls, replace=True)
    yield
    for cls in (BoomAlgorithm, ChurnAlgorithm):
        REGISTRY.unregister(cls.kind)


@pytest.fixture
def world(tmp_path: Path) -> AlgoWorld:
    w = AlgoWorld(tmp_path)
    w.quote(D(100))
    w.advance(6)  # the venue's first book snapshot reaches the engine
    return w


def states(world: AlgoWorld, algo_id: str) -> list[str]:
    return [e.state for e in world.events(AlgoStateChanged) if e.algo_id == algo_id]


def refused(world: AlgoWorld, command: Any) -> CommandError:
    with pytest.raises(CommandError) as info:
        world.send(command)
    return info.value


def test_twap_when_run_then_sliced_on_schedule_filled_completed_with_tca(world: AlgoWorld) -> None:
    view = world.start("twap", 1000, duration_s=600, slices=10)
    sent_at: dict[str, int] = {}

    def watch(w: AlgoWorld) -> None:
        for child in w.children(view.algo_id):
            sent_at.setdefault(child.client_order_id, child.ts_created)

    world.advance(620, every=watch)

    children = world.children(view.algo_id)
    assert [c.client_order_id for c in children] == [f"{view.algo_id}-{n}-0" for n in range(10)]
    assert all(c.qty == 100 and c.status == "filled" for c in children)
    gaps = sorted(sent_at.values())
    assert all(59e9 <= b - a <= 61e9 for a, b in pairwise(gaps))
    assert states(world, view.algo_id) == ["running", "completed"]
    tca = world.send(GetAlgoTca(algo_id=view.algo_id))
    assert (tca.final, tca.filled, tca.fill_rate, tca.children) == (True, 1000, 1.0, 10)
    assert tca.arrival_price == 100 and tca.shortfall_bps is not None
    assert tca.market_volume >= 1000 and tca.participation is not None
    progress = [e for e in world.events(AlgoProgress) if e.algo_id == view.algo_id]
    assert progress[-1].filled == 1000 and progress[-1].remaining == 0


def test_iceberg_when_flow_hits_it_then_never_shows_more_than_display(world: AlgoWorld) -> None:
    view = world.start("iceberg", 500, side="sell", display_qty="50", limit_price="100")
    shown: list[Decimal] = []
    steps = iter(range(10**6))

    def flow(w: AlgoWorld) -> None:
        working = [c for c in w.children(view.algo_id) if c.is_open]
        shown.append(sum((c.leaves_qty for c in working), D(0)))
        if next(steps) % 4 == 0:
            w.tape(30, "buy")  # the tape's buyers lift the best ask: the iceberg's

    world.advance(200, step=0.5, every=flow)

    assert max(shown) == 50
    children = world.children(view.algo_id)
    assert sum((c.filled_qty for c in children), D(0)) == 500
    assert len(children) == 10 and all(c.price == 100 for c in children)
    assert states(world, view.algo_id) == ["running", "completed"]


def test_lifecycle_when_paused_resumed_cancelled_then_children_follow(world: AlgoWorld) -> None:
    view = world.start("iceberg", 500, display_qty="50", limit_price="99")
    world.advance(1)
    (working,) = [c for c in world.children(view.algo_id) if c.is_open]

    paused = world.send(PauseAlgo(algo_id=view.algo_id, reason="lunch", actor="ops"))
    assert (paused.state, paused.reason) == ("paused", "lunch")
    assert world.service.ledger.order(working.client_order_id).status == "cancelled"  # type: ignore[union-attr]
    assert world.send(PauseAlgo(algo_id=view.algo_id, actor="ops")).state == "paused"  # idempotent
    world.advance(5)
    assert not [c for c in world.children(view.algo_id) if c.is_open]

    assert world.send(ResumeAlgo(algo_id=view.algo_id, actor="ops")).state == "running"
    assert len([c for c in world.children(view.algo_id) if c.is_open]) == 1
    cancelled = world.send(CancelAlgo(algo_id=view.algo_id, reason="done", actor="ops"))

    assert cancelled.state == "cancelled"
    assert not [c for c in world.children(view.algo_id) if c.is_open]
    assert states(world, view.algo_id) == ["running", "paused", "running", "cancelled"]
    for command in (
        ResumeAlgo(algo_id=view.algo_id),
        PauseAlgo(algo_id=view.algo_id),
        ModifyAlgo(algo_id=view.algo_id, qty=D(600)),
    ):
        assert refused(world, command).code == ErrorCode.CONFLICT
    assert refused(world, ResumeAlgo(algo_id="nope")).code == ErrorCode.NOT_FOUND


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"algo_type": "martingale"}, "unknown algorithm 'martingale'"),
        ({"params": '{"duration_s": 60, "end_at_ns": 1}'}, "duration_s"),
        ({"params": '{"slices": 0, "duration_s": 60}'}, "slices"),
        ({"params": "[1]"}, "params must be a JSON object"),
        ({"qty": D("10.5")}, "not a multiple of AAPL's lot 1"),
        ({"qty": D(0)}, "qty must be positive"),
        ({"symbol": "ZZZZ"}, "ZZZZ has no book on the venue"),
        ({"algo_type": "iceberg", "params": '{"display_qty": "50"}'}, "limit_price"),
    ],
)
def test_start_when_input_bad_then_invalid_and_nothing_started(
    world: AlgoWorld, fields: dict[str, Any], expected: str
) -> None:
    values: dict[str, Any] = {
        "algo_type": "twap",
        "account": "acc",
        "symbol": SYMBOL,
        "side": "buy",
        "qty": D(100),
        "params": '{"duration_s": 60}',
        "command_id": "bad",
    }
    values.update(fields)

    error = refused(world, StartAlgo(**values))

    assert error.code == ErrorCode.INVALID and expected in error.message
    assert world.send(ListAlgos()).algos == []


def test_start_when_same_command_again_then_one_parent(world: AlgoWorld) -> None:
    command = StartAlgo(
        algo_type="twap",
        account="acc",
        symbol=SYMBOL,
        side="buy",
        qty=D(100),
        params='{"duration_s": 60}',
        command_id="once",
    )

    first, again = world.send(command), world.send(command)

    assert first.algo_id == again.algo_id
    assert len(world.send(ListAlgos()).algos) == 1


def test_modify_when_running_then_new_quantity_worked_to_completion(world: AlgoWorld) -> None:
    view = world.start("twap", 1000, duration_s=600, slices=10)
    world.advance(130)

    modified = world.send(
        ModifyAlgo(algo_id=view.algo_id, qty=D(500), params='{"duration_s": 300}', actor="ops")
    )
    world.advance(200)

    assert modified.qty == 500
    filled = sum((c.filled_qty for c in world.children(view.algo_id)), D(0))
    assert filled == 500
    assert states(world, view.algo_id)[-1] == "completed"
    error = refused(world, ModifyAlgo(algo_id=view.algo_id, qty=D(400)))
    assert error.code == ErrorCode.CONFLICT


def test_modify_when_below_filled_or_nonsense_then_invalid_and_unchanged(world: AlgoWorld) -> None:
    view = world.start("twap", 1000, duration_s=600, slices=10)
    world.advance(70)  # two slices filled

    assert "not above what" in refused(world, ModifyAlgo(algo_id=view.algo_id, qty=D(200))).message
    bad = ModifyAlgo(algo_id=view.algo_id, params='{"slices": -1}')
    assert refused(world, bad).code == ErrorCode.INVALID
    detail = world.send(ShowAlgo(algo_id=view.algo_id))
    assert (detail.algo.qty, '"slices":10' in detail.algo.params) == (1000, True)


def test_algorithm_error_when_raised_then_that_parent_failed_others_run(world: AlgoWorld) -> None:
    boom = world.start("boom_test", 100)
    twap = world.start("twap", 200, duration_s=120, slices=2)

    world.advance(130)

    assert states(world, boom.algo_id)[-1] == "failed"
    detail = world.send(ShowAlgo(algo_id=boom.algo_id))
    assert "algorithm error: RuntimeError('boom')" in detail.algo.reason
    assert not [c for c in world.children(boom.algo_id) if c.is_open]
    assert states(world, twap.algo_id)[-1] == "completed"
    assert any(a.kind == "algo.failed" for a in world.events(AlertRaised))


def test_kill_switch_when_algos_running_then_paused_children_cancelled_resume_works(
    world: AlgoWorld,
) -> None:
    first = world.start("iceberg", 500, display_qty="50", limit_price="99")
    second = world.start("twap", 1000, duration_s=600, slices=10, aggressiveness="passive")
    world.advance(1)

    world.send(HaltTrading(reason="drill", actor="ops"))

    for algo_id in (first.algo_id, second.algo_id):
        assert states(world, algo_id)[-1] == "paused"
        assert not [c for c in world.children(algo_id) if c.is_open]
    detail = world.send(ShowAlgo(algo_id=first.algo_id))
    assert "risk halt of all trading (kill_switch): drill" in detail.algo.reason
    world.send(ResumeAlgo(algo_id=first.algo_id))  # the risk halt still denies its children
    assert states(world, first.algo_id)[-1] == "paused"
    assert "halted" in world.send(ShowAlgo(algo_id=first.algo_id)).algo.reason


def test_child_denied_by_a_limit_then_paused_with_the_reason(tmp_path: Path) -> None:
    world = AlgoWorld(tmp_path, profile=RiskProfile(account="acc", max_order_qty=D(50)))
    world.quote(D(100))
    world.advance(6)

    view = world.start("twap", 1000, duration_s=600, slices=10)

    detail = world.send(ShowAlgo(algo_id=view.algo_id))
    assert detail.algo.state == "paused"
    assert "risk denied a child: order_qty (max_order_qty)" in detail.algo.reason
    assert world.children(view.algo_id) == []


def test_parent_denied_by_its_limit_then_not_started(tmp_path: Path) -> None:
    world = AlgoWorld(tmp_path, profile=RiskProfile(account="acc", max_parent_qty=D(500)))
    world.quote(D(100))

    with pytest.raises(CommandError) as info:
        world.start("twap", 1000, duration_s=600)

    assert info.value.code == ErrorCode.DENIED and "max_parent_qty" in info.value.message
    assert world.send(ListAlgos()).algos == []


def test_pending_when_start_later_then_waits_then_runs(world: AlgoWorld) -> None:
    start_at = world.clock.time_ns() + 30 * 10**9
    view = world.send(
        StartAlgo(
            algo_type="twap",
            account="acc",
            symbol=SYMBOL,
            side="buy",
            qty=D(100),
            params='{"duration_s": 60, "slices": 2}',
            start_at_ns=start_at,
            command_id="later",
        )
    )

    assert view.state == "pending"
    world.advance(20)
    assert world.children(view.algo_id) == []
    world.advance(100)
    assert states(world, view.algo_id) == ["pending", "running", "completed"]


def test_kinds_when_listed_then_every_builtin_with_schema(world: AlgoWorld) -> None:
    kinds = {k.kind: k for k in world.send(ListAlgoKinds()).kinds}

    assert {"twap", "vwap", "iceberg", "sniper", "pov"} <= set(kinds)
    assert "display_qty" in kinds["iceberg"].params_schema


class ChurnAlgorithm(Algorithm[AlgoParams]):
    """A broken algorithm: cancels and re-sends its whole quantity on every event."""

    kind: ClassVar[str] = "churn_test"

    def decide(self, market: Market, progress: Progress, why: Why) -> Decision:
        cancels = tuple(Cancel(client_order_id=c.client_order_id) for c in progress.working)
        place = Place(qty=self.parent.qty, price=market.bid - 1 if market.bid else None)
        return Decision(actions=(*cancels, place), wake_in_s=0.5)


def test_runaway_when_an_algorithm_churns_beyond_its_plan_then_disabled_and_paused(
    tmp_path: Path,
) -> None:
    world = AlgoWorld(tmp_path, profile=RiskProfile(account="acc", runaway_submit_factor=3.0))
    world.quote(D(100))
    world.advance(6)
    view = world.start("churn_test", 100)

    world.advance(10)

    detail = world.send(ShowAlgo(algo_id=view.algo_id))
    assert detail.algo.state == "paused"
    assert "runaway" in detail.algo.reason
    assert len(detail.children) <= 3  # 3 x its plan at most, then the gate stopped it
    assert not [c for c in world.children(view.algo_id) if c.is_open]
    world.send(ResumeAlgo(algo_id=view.algo_id, actor="ops"))  # the gate still disables it
    again = world.send(ShowAlgo(algo_id=view.algo_id)).algo
    assert again.state == "paused" and "algo_disabled" in again.reason


def test_pov_when_the_market_trades_then_participation_within_tolerance(
    world: AlgoWorld,
) -> None:
    view = world.start("pov", 5000, rate=0.2, tolerance=0.2, check_interval_s=1)

    def tape(w: AlgoWorld) -> None:
        if w.clock.time_ns() // 250_000_000 % 4 == 0:
            w.tape(50, "buy" if w.clock.time_ns() // 10**9 % 2 else "sell")

    world.advance(180, step=0.25, every=tape)

    (last,) = [e for e in world.events(AlgoProgress) if e.algo_id == view.algo_id][-1:]
    assert last.market_volume > 5000
    assert last.participation is not None and 0.14 <= last.participation <= 0.24


def test_sniper_when_its_level_appears_then_takes_it_and_never_before(world: AlgoWorld) -> None:
    view = world.start("sniper", 100, limit_price="99.95")
    world.advance(20)
    assert world.children(view.algo_id) == []  # the ask (100.01) is above its limit

    world.quote(D("99.90"))  # the makers re-quote: the ask falls to 99.91
    world.advance(5)

    children = world.children(view.algo_id)
    assert children and all(c.tif == "ioc" and c.price == D("99.95") for c in children)
    assert all(c.ts_created >= world.clock.time_ns() - 5 * 10**9 for c in children)
    assert sum((c.filled_qty for c in children), D(0)) == 100


def test_vwap_when_history_is_concentrated_then_children_follow_the_profile(
    world: AlgoWorld,
) -> None:
    from engine.persistence.bars import upsert_bars

    minute, day = 60 * 10**9, 86_400 * 10**9
    world.advance((minute - world.clock.time_ns() % minute) / 10**9)  # a whole minute
    first = world.clock.time_ns()  # the parent's slices start on it, like the bars
    rows = []
    for d in range(1, 6):  # five past days: heavy volume 2 and 6 minutes into the window
        for m in range(10):
            volume = 9000.0 if m in (2, 6) else 100.0
            ts = first - d * day + m * minute
            rows.append((SYMBOL, "1m", ts, 100.0, 100.1, 99.9, 100.0, volume, "replay", 0))
    upsert_bars(world.engine, rows)

    view = world.start("vwap", 1000, duration_s=600, interval_s=60, aggressiveness="cross")
    world.advance(620)

    sizes = [c.qty for c in world.children(view.algo_id)]
    assert sum((c.filled_qty for c in world.children(view.algo_id)), D(0)) == 1000
    assert max(sizes) >= 400  # the busy minutes take most of it
    assert states(world, view.algo_id)[-1] == "completed"


def test_start_when_engine_has_not_seen_the_venue_book_then_arrival_is_the_quote_mark(
    world: AlgoWorld,
) -> None:
    world.kill_execution()
    world.start_execution()  # a new process: no venue book mirrored yet
    quote = QuoteUpdated(
        ts_event=world.clock.time_ns(),
        symbol=SYMBOL,
        bid=100.99,
        ask=101.01,
        bid_size=1.0,
        ask_size=1.0,
        last=101.0,
        origin="synthetic",
    )
    world.ctx.deliver(topics.quote(SYMBOL), quote)  # the feed's quote, not yet the venue's

    view = world.start("twap", 100, duration_s=60, slices=2)

    assert world.service.algos.board.get(SYMBOL).mid() is None
    assert world.send(GetAlgoTca(algo_id=view.algo_id)).arrival_price == D(101)

"""The console's algorithms view state: parents from the bus and the control plane (Clone
pattern), bounded histories, kinds and their fields. Pure logic: no sockets, no NiceGUI."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest

import engine.algos  # noqa: F401  (the built-in kinds register themselves)
from app.client import QSuiteClient
from engine.algos.registry import REGISTRY
from engine.bus.commands import Command, Result
from engine.bus.commands.algos import AlgoKind, AlgoKinds, AlgoList, AlgoView, ListAlgos
from engine.bus.events import AlgoProgress, AlgorithmTriggered, AlgoState, AlgoStateChanged
from engine.errors import CommandError, EngineUnreachable, ErrorCode
from ui.algo_state import (
    MAX_HISTORIES,
    MAX_PARENTS,
    MAX_POINTS,
    RETRY_S,
    AlgoBoard,
    ParamField,
    parse_params_schema,
)

pytestmark = pytest.mark.timeout(30)

D = Decimal
T0 = 1_700_000_000_000_000_000


def changed(algo_id: str, state: AlgoState, ts: int = T0, **kw: Any) -> AlgoStateChanged:
    return AlgoStateChanged(
        ts_event=ts,
        algo_id=algo_id,
        algo_type="twap",
        account="desk1",
        symbol="AAA",
        side="buy",
        state=state,
        **kw,
    )


def progress(
    algo_id: str, filled: str, ts: int = T0, state: AlgoState = "running", **kw: Any
) -> AlgoProgress:
    return AlgoProgress(
        ts_event=ts,
        algo_id=algo_id,
        algo_type="twap",
        symbol="AAA",
        side="buy",
        state=state,
        qty=D(100),
        filled=D(filled),
        remaining=D(100) - D(filled),
        working=D(10),
        **kw,
    )


def view(algo_id: str, state: AlgoState = "running", filled: str = "0", **kw: Any) -> AlgoView:
    fields: dict[str, Any] = {
        "algo_id": algo_id,
        "algo_type": "twap",
        "account": "desk1",
        "symbol": "AAA",
        "side": "buy",
        "qty": D(100),
        "state": state,
        "params": '{"duration_s": 600.0, "aggressiveness": "touch"}',
        "filled": D(filled),
        "working": D(0),
        "children": 0,
        "ts_created": T0,
        "ts_started": T0,
    }
    return AlgoView(**(fields | kw))


class FakeClient:
    """Answers each command with the next scripted reply (a result or an exception)."""

    expect = staticmethod(QSuiteClient.expect)

    def __init__(self, *replies: Result | Exception) -> None:
        self.replies = list(replies)
        self.sent: list[Command] = []
        self.during: list[Any] = []
        """Run while a reply is out (the bus speaking meanwhile)."""

    async def send(self, command: Command) -> Result:
        self.sent.append(command)
        for step in self.during:
            step()
        self.during.clear()
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


class FakeBridge:
    def __init__(self, client: FakeClient) -> None:
        self.client = client


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def kinds() -> AlgoKinds:
    return AlgoKinds(
        kinds=[
            AlgoKind(
                kind=info.kind,
                version=info.version,
                description=info.description,
                params_schema=msgspec.json.encode(info.params).decode(),
            )
            for info in REGISTRY.describe()
        ]
    )


def test_algo_board_when_progress_then_parent_row_and_history() -> None:
    board = AlgoBoard()
    board.apply(changed("a1", "running"))
    board.apply(
        progress(
            "a1",
            "20",
            ts=T0 + 5,
            expected=D(25),
            schedule_deviation=-0.05,
            participation=0.1,
            shortfall_bps=3.5,
        )
    )

    p = board.parents["a1"]
    assert (p.account, p.qty, p.filled, p.working, p.state) == (
        "desk1",
        D(100),
        D(20),
        D(10),
        "running",
    )
    assert (p.expected, p.deviation, p.participation, p.shortfall_bps) == (D(25), -0.05, 0.1, 3.5)
    assert p.share == pytest.approx(0.2)
    assert board.histories["a1"].points == [(T0 + 5, D(20), D(25))]
    assert p.rev == board.version == 2


def test_algo_board_when_an_older_progress_comes_late_then_filled_never_goes_back() -> None:
    board = AlgoBoard()
    board.apply(progress("a1", "30", ts=T0 + 2))
    board.apply(progress("a1", "20", ts=T0 + 1))

    assert board.parents["a1"].filled == D(30)
    assert [pt[0] for pt in board.histories["a1"].points] == [T0 + 2]


def test_algo_board_when_ended_then_a_late_running_does_not_revive_it() -> None:
    board = AlgoBoard()
    board.apply(changed("a1", "running"))
    board.apply(changed("a1", "cancelled", ts=T0 + 9, reason="by olga", actor="olga"))
    board.apply(progress("a1", "20", ts=T0 + 5))

    p = board.parents["a1"]
    assert (p.state, p.reason, p.actor, p.ts_finished) == ("cancelled", "by olga", "olga", T0 + 9)
    assert not p.is_active


def test_algo_board_when_over_the_cap_then_the_oldest_ended_parent_goes() -> None:
    board = AlgoBoard()
    board.apply(changed("old-active", "running", ts=T0))
    board.apply(changed("old-ended", "completed", ts=T0 + 1))
    for i in range(MAX_PARENTS - 1):
        board.apply(changed(f"a{i}", "running", ts=T0 + 10 + i))

    assert len(board.parents) == MAX_PARENTS
    assert "old-ended" not in board.parents and "old-active" in board.parents


def test_algo_board_when_history_is_full_then_it_thins_out_but_spans_the_run() -> None:
    board = AlgoBoard()
    for i in range(MAX_POINTS + 10):
        board.apply(progress("a1", str(min(i, 100)), ts=T0 + i))

    points = board.histories["a1"].points
    assert len(points) <= MAX_POINTS
    assert points[0][0] == T0 and points[-1][0] == T0 + MAX_POINTS + 9


def test_algo_board_when_too_many_histories_then_watched_and_active_ones_stay() -> None:
    board = AlgoBoard()
    board.apply(progress("watched", "1", ts=T0, state="completed"))
    board.watch("watched")
    board.apply(progress("ended", "1", ts=T0 + 1, state="completed"))
    for i in range(MAX_HISTORIES - 1):
        board.apply(progress(f"a{i}", "1", ts=T0 + 10 + i))

    assert len(board.histories) == MAX_HISTORIES
    assert "watched" in board.histories and "ended" not in board.histories


def test_algo_board_when_a_strategy_triggers_then_kept_and_named_on_its_parent() -> None:
    board = AlgoBoard()
    board.apply(changed("a1", "running"))
    trigger = AlgorithmTriggered(
        ts_event=T0,
        strategy="dip",
        signal_rule="rsi_cross",
        symbol="AAA",
        algo_id="a1",
        algo_type="twap",
    )
    board.apply(trigger)

    assert list(board.triggers) == [trigger] and board.triggers_version == 1
    assert board.parents["a1"].strategy == "dip"


async def test_algo_board_sync_loads_kinds_and_parents_once_then_nothing() -> None:
    client = FakeClient(kinds(), AlgoList(algos=[view("a2", filled="5"), view("a1", "completed")]))
    board = AlgoBoard(clock=Clock())

    await board.sync(FakeBridge(client))
    await board.sync(FakeBridge(client))

    assert [type(c).__name__ for c in client.sent] == ["ListAlgoKinds", "ListAlgos"]
    assert client.sent[1] == ListAlgos(limit=MAX_PARENTS)
    assert board.loaded and board.kinds_loaded and board.sync_error == ""
    assert sorted(board.kinds) == ["iceberg", "pov", "sniper", "twap", "vwap"]
    p = board.parents["a2"]
    assert (p.complete, p.filled, p.params) == (
        True,
        D(5),
        {"duration_s": 600.0, "aggressiveness": "touch"},
    )
    assert [p.algo_id for p in board.active_first()] == ["a2", "a1"]


async def test_algo_board_sync_when_the_bus_names_an_unknown_parent_then_lists_again() -> None:
    clock = Clock()
    client = FakeClient(kinds(), AlgoList(algos=[]), AlgoList(algos=[view("new", filled="3")]))
    board = AlgoBoard(clock=clock)
    await board.sync(FakeBridge(client))
    board.apply(progress("new", "2"))
    assert not board.parents["new"].complete

    await board.sync(FakeBridge(client))  # too soon after the last load
    assert len(client.sent) == 2
    clock.now += RETRY_S
    await board.sync(FakeBridge(client))

    assert len(client.sent) == 3 and board.parents["new"].complete
    assert board.parents["new"].account == "desk1" and board.parents["new"].filled == D(3)
    clock.now += RETRY_S
    await board.sync(FakeBridge(client))
    assert len(client.sent) == 3  # known now


async def test_algo_board_sync_when_the_bus_moves_on_during_the_request_then_the_bus_wins() -> None:
    client = FakeClient(AlgoList(algos=[view("a1", "running", filled="10")]))
    board = AlgoBoard(clock=Clock(), kinds_loaded=True)
    board.apply(changed("a1", "running"))
    # the bus says "paused" while ListAlgos is out; the (older) reply says "running"
    client.during.append(lambda: board.apply(changed("a1", "paused", ts=T0 + 5)))

    await board.sync(FakeBridge(client))

    p = board.parents["a1"]
    assert (p.state, p.filled, p.complete, p.account) == ("paused", D(10), True, "desk1")


async def test_algo_board_sync_when_engine_unreachable_then_says_so_and_retries_later() -> None:
    clock = Clock()
    unreachable = EngineUnreachable("ipc:///tmp/qs/execution", 3, 500)
    client = FakeClient(
        unreachable,
        CommandError(ErrorCode.INTERNAL, "database is locked"),
        kinds(),
        AlgoList(algos=[]),
    )
    board = AlgoBoard(clock=clock)

    await board.sync(FakeBridge(client))
    assert "Cannot load algorithm kinds: Engine unreachable" in board.sync_error
    assert "Cannot load algorithms (internal): database is locked" in board.sync_error
    await board.sync(FakeBridge(client))
    assert len(client.sent) == 2  # not before RETRY_S

    clock.now += RETRY_S
    await board.sync(FakeBridge(client))
    assert board.sync_error == "" and board.loaded and board.kinds_loaded


def test_parse_params_schema_when_builtin_kinds_then_typed_fields() -> None:
    schemas = {k.kind: parse_params_schema(k.params_schema) for k in kinds().kinds}
    twap = {f.name: f for f in schemas["twap"]}
    iceberg = {f.name: f for f in schemas["iceberg"]}
    pov = {f.name: f for f in schemas["pov"]}

    assert twap["duration_s"] == ParamField(
        "duration_s", "number", False, nullable=True, has_default=True
    )
    assert twap["duration_s"].label == "Duration (s)"
    assert (twap["end_at_ns"].type, twap["end_at_ns"].label) == ("time", "End at (UTC)")
    assert twap["slices"].type == "integer"
    assert twap["aggressiveness"].options == ("cross", "passive", "touch")
    assert (twap["aggressiveness"].default, twap["aggressiveness"].type) == ("touch", "enum")
    assert (twap["catch_up"].type, twap["catch_up"].default) == ("boolean", True)
    assert (iceberg["display_qty"].type, iceberg["display_qty"].required) == ("decimal", True)
    assert (iceberg["limit_price"].type, iceberg["limit_price"].nullable) == ("decimal", True)
    assert pov["rate"].required and pov["rate"].type == "number"
    assert {f.name: f.type for f in schemas["vwap"]}["profile"] == "numbers"


def test_parse_params_schema_when_not_a_schema_then_says_why() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        parse_params_schema("{nope")
    board = AlgoBoard()
    board.load_kinds([AlgoKind(kind="odd", version=1, description="", params_schema="[1]")])
    assert (
        board.kinds["odd"].problem
        == "Cannot build the form of odd: its parameter schema is not an object schema"
    )

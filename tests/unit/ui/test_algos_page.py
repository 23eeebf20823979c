"""The algorithms page rendered in-process by NiceGUI's simulated ``User``, against a fake
bridge holding a real ``AlgoBoard`` and the real ``Bridge.act`` over a fake control
client: no sockets, no browser. Plus the page's pure form logic."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from nicegui import ui
from nicegui.testing import User, user_simulation

import engine.algos  # noqa: F401  (the built-in kinds register themselves)
from app.client import QSuiteClient
from engine.algos.registry import REGISTRY
from engine.bus.commands import Command, Result
from engine.bus.commands.algos import (
    AlgoDetail,
    AlgoKind,
    AlgoTca,
    AlgoView,
    CancelAlgo,
    ChildRow,
    GetAlgoTca,
    ModifyAlgo,
    PauseAlgo,
    ResumeAlgo,
    ShowAlgo,
    StartAlgo,
)
from engine.bus.events import AlgoProgress, AlgoState, OrderFilled
from engine.errors import CommandError, ErrorCode
from ui import session
from ui.algo_state import AlgoBoard, parse_params_schema
from ui.bridge import Bridge
from ui.components.algo_form import (
    check_modify,
    check_start,
    initial_value,
    read_params,
    time_ns,
)
from ui.pages import algos
from ui.session import SessionUser
from ui.trading_state import TradingView

pytestmark = pytest.mark.timeout(30)

D = Decimal
T0 = 1_700_000_000_000_000_000
NS = 1_000_000_000
OPERATOR = SessionUser("olga", "operator")
VIEWER = SessionUser("vic", "viewer")


def builtin_kinds() -> list[AlgoKind]:
    return [
        AlgoKind(
            kind=info.kind,
            version=info.version,
            description=info.description,
            params_schema=msgspec.json.encode(info.params).decode(),
        )
        for info in REGISTRY.describe()
    ]


def view(algo_id: str = "a1", state: AlgoState = "running", **kw: Any) -> AlgoView:
    fields: dict[str, Any] = {
        "algo_id": algo_id,
        "algo_type": "twap",
        "account": "desk1",
        "symbol": "AAA",
        "side": "buy",
        "qty": D(100),
        "state": state,
        "params": msgspec.json.encode(
            {"duration_s": 600.0, "aggressiveness": "touch", "catch_up": True, "randomize": 0.0}
        ).decode(),
        "filled": D(0),
        "working": D(0),
        "children": 0,
        "ts_created": T0,
        "ts_started": T0,
    }
    return AlgoView(**(fields | kw))


def progress(algo_id: str, filled: str, ts: int, **kw: Any) -> AlgoProgress:
    return AlgoProgress(
        ts_event=ts,
        algo_id=algo_id,
        algo_type="twap",
        symbol="AAA",
        side="buy",
        state="running",
        qty=D(100),
        filled=D(filled),
        remaining=D(100) - D(filled),
        working=D(0),
        **kw,
    )


class FakeClient:
    """The control client: each command type answers its scripted reply (a result or a
    refusal); anything unscripted is refused."""

    expect = staticmethod(QSuiteClient.expect)

    def __init__(self) -> None:
        self.sent: list[Command] = []
        self.replies: dict[type[Command], Result | CommandError] = {}

    async def send(self, command: Command, **_as_user: Any) -> Result:
        self.sent.append(command)
        reply = self.replies.get(type(command))
        if reply is None:
            raise CommandError(ErrorCode.UNAVAILABLE, f"{type(command).__name__} not scripted")
        if isinstance(reply, CommandError):
            raise reply
        return reply

    def of(self, kind: type[Command]) -> list[Any]:
        return [c for c in self.sent if isinstance(c, kind)]


class FakeBridge:
    """Stands in for ``ui.bridge.Bridge``: its view state and the real ``act``."""

    def __init__(self) -> None:
        self.algos = AlgoBoard()
        self.algos.load_kinds(builtin_kinds())
        self.trading = TradingView()
        self.client = FakeClient()

    def symbols(self) -> list[str]:
        return ["AAA", "BBB.L"]

    act = Bridge.act


@pytest.fixture
def bridge() -> FakeBridge:
    return FakeBridge()


@pytest.fixture
def as_user(monkeypatch: pytest.MonkeyPatch) -> Callable[[SessionUser], None]:
    def login(who: SessionUser) -> None:
        monkeypatch.setattr(session, "current_user", lambda: who)

    login(OPERATOR)
    return login


@pytest.fixture
async def user(
    bridge: FakeBridge, as_user: Any, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[User]:
    async with user_simulation(lambda: algos.build(bridge)) as simulated:
        yield simulated
    errors = [r.getMessage() for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    assert not errors, f"the page logged errors: {errors}"


async def eventually(predicate: Callable[[], Any], timeout_s: float = 3.0) -> Any:
    """The page redraws on its own timer: wait for it (polling, like ``should_see``)."""
    for _ in range(int(timeout_s / 0.05)):
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("the page did not get there in time")


def only(user: User, marker: str) -> Any:
    (element,) = user.find(marker=marker).elements
    return element


def choose(user: User, kind: str) -> None:
    assert user.client is not None
    with user.client:
        only(user, "algo-kind").value = kind


def click_cell(user: User, column: str, value: str, algo_id: str = "a1") -> None:
    user.find(marker="algos").trigger(
        "cellClicked", {"colId": column, "value": value, "data": {"key": algo_id}}
    )


def grid_row(user: User, algo_id: str = "a1") -> dict[str, Any]:
    grid = only(user, "algos")
    return next(r for r in grid.options["rowData"] if r["key"] == algo_id)


# --- the start form ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["twap", "vwap", "iceberg", "sniper", "pov"])
async def test_algos_page_when_a_kind_is_chosen_then_the_form_has_its_fields(
    user: User, bridge: FakeBridge, kind: str
) -> None:
    await user.open("/")
    choose(user, kind)

    schema = msgspec.json.decode(_schema(kind))
    for name in schema["properties"]:
        element = only(user, f"param-{name}")
        field = next(f for f in bridge.algos.kinds[kind].fields if f.name == name)
        widgets: dict[str, type[ui.element]] = {"enum": ui.select, "boolean": ui.checkbox}
        assert isinstance(element, widgets.get(field.type, ui.input)), name
        label = str(element.props.get("label") or getattr(element, "text", ""))
        assert label.endswith(" *") == (name in schema.get("required", [])), name
    await user.should_see(marker="algo-about", content=REGISTRY.get(kind).description)


def _schema(kind: str) -> str:
    return next(k.params_schema for k in builtin_kinds() if k.kind == kind)


async def test_algos_page_when_twap_has_no_duration_then_the_engine_words_and_nothing_sent(
    user: User, bridge: FakeBridge
) -> None:
    await user.open("/")
    choose(user, "twap")
    user.find(marker="algo-qty").type("100")
    user.find(marker="algo-start").click()

    await user.should_see(
        marker="start-message",
        content="twap parameters: duration_s: give exactly one of duration_s and end_at_ns",
    )
    assert "text-negative" in only(user, "start-message").classes
    assert bridge.client.sent == []


async def test_algos_page_when_iceberg_shows_more_than_its_qty_then_the_engine_words(
    user: User, bridge: FakeBridge
) -> None:
    await user.open("/")
    choose(user, "iceberg")
    user.find(marker="algo-qty").type("10")
    user.find(marker="param-limit_price").type("100.5")
    user.find(marker="param-display_qty").type("20")
    user.find(marker="algo-start").click()

    await user.should_see(
        marker="start-message",
        content="iceberg parameters: display_qty: must be at most the parent quantity 10, not 20",
    )
    assert bridge.client.sent == []


async def test_algos_page_when_fields_are_missing_or_wrong_then_says_each(
    user: User, bridge: FakeBridge
) -> None:
    await user.open("/")
    choose(user, "pov")
    user.find(marker="algo-account").clear().type("_house")
    user.find(marker="param-tolerance").type("lots")
    user.find(marker="algo-start").click()

    message = only(user, "start-message")
    await eventually(lambda: message.text)
    assert message.text.split("; ") == [
        "Account: up to 32 letters, digits, _ or -, not starting with _ or -",
        "Quantity must be a number greater than 0",
        "Rate is required",
        "Tolerance must be a number",
    ]
    assert bridge.client.sent == []


async def test_algos_page_when_start_then_sends_start_algo_with_the_params_json(
    user: User, bridge: FakeBridge
) -> None:
    bridge.client.replies[StartAlgo] = view("twap-1", qty=D(100))
    await user.open("/")
    choose(user, "twap")
    only(user, "algo-side").value = "sell"
    user.find(marker="algo-qty").type("100")
    user.find(marker="param-duration_s").type("600")
    user.find(marker="param-limit_price").type("101.25")
    only(user, "param-aggressiveness").value = "passive"
    user.find(marker="param-catch_up").click()
    user.find(marker="algo-start").click()

    await user.should_see(marker="start-message", content="Started twap-1 (running)")
    (start,) = bridge.client.of(StartAlgo)
    assert start == StartAlgo(
        algo_type="twap",
        account="desk1",
        symbol="AAA",
        side="sell",
        qty=D(100),
        params='{"limit_price":"101.25","duration_s":600.0,"aggressiveness":"passive",'
        '"catch_up":false}',
    )
    await eventually(
        lambda: any(r["key"] == "twap-1" for r in only(user, "algos").options["rowData"])
    )


async def test_algos_page_when_the_engine_refuses_a_start_then_its_words_shown(
    user: User, bridge: FakeBridge
) -> None:
    bridge.client.replies[StartAlgo] = CommandError(
        ErrorCode.INVALID, "qty 15 is not a multiple of AAA's lot 10"
    )
    await user.open("/")
    choose(user, "sniper")
    user.find(marker="algo-qty").type("15")
    user.find(marker="param-limit_price").type("99")
    user.find(marker="algo-start").click()

    await user.should_see(
        marker="start-message",
        content="Refused (invalid): qty 15 is not a multiple of AAA's lot 10",
    )
    assert len(bridge.client.of(StartAlgo)) == 1


# --- the parents and their controls --------------------------------------------------------


async def test_algos_page_when_progress_arrives_then_the_row_follows(
    user: User, bridge: FakeBridge
) -> None:
    bridge.algos.load([view()])
    await user.open("/")
    assert grid_row(user)["filled"] == "0 / 100"
    grid = only(user, "algos")
    updates: list[dict[str, Any]] = []
    grid.run_grid_method = lambda name, arg: updates.append({name: arg})

    bridge.algos.apply(
        progress("a1", "40", T0 + 1, expected=D(45), schedule_deviation=-0.05, participation=0.12)
    )

    (sent,) = await eventually(lambda: updates)
    change = sent["applyTransaction"]
    assert change["add"] == [] and change["remove"] == []
    (row,) = change["update"]
    assert (row["filled"], row["progress"], row["expected_pct"]) == ("40 / 100", 40.0, 45.0)
    assert (row["deviation"], row["participation"], row["state"]) == ("-5.0%", "12.0%", "running")
    assert (row["pause"], row["modify"], row["cancel"]) == ("Pause", "Modify", "Cancel")
    assert grid_row(user)["filled"] == "40 / 100"  # the element's copy kept in step


async def test_algos_page_when_pause_then_resume_then_sends_each_and_the_row_says_so(
    user: User, bridge: FakeBridge
) -> None:
    bridge.algos.load([view()])
    bridge.client.replies[PauseAlgo] = view(state="paused", reason="paused by the operator")
    bridge.client.replies[ResumeAlgo] = view(state="running", reason="resumed")
    await user.open("/")

    click_cell(user, "pause", "Pause")
    await user.should_see(marker="algo-message", content="Paused a1 (paused)")
    await eventually(lambda: grid_row(user)["pause"] == "Resume")
    click_cell(user, "pause", "Resume")
    await user.should_see(marker="algo-message", content="Resumed a1 (running)")

    assert bridge.client.of(PauseAlgo) == [PauseAlgo(algo_id="a1")]
    assert bridge.client.of(ResumeAlgo) == [ResumeAlgo(algo_id="a1")]


async def test_algos_page_when_cancel_then_asks_first_and_sends_the_reason(
    user: User, bridge: FakeBridge
) -> None:
    bridge.algos.load([view()])
    bridge.client.replies[CancelAlgo] = view(state="cancelled", reason="wrong symbol")
    await user.open("/")

    click_cell(user, "cancel", "Cancel")
    await user.should_see("Cancel a1?")
    assert bridge.client.of(CancelAlgo) == []
    user.find(marker="cancel-reason").type("wrong symbol")
    user.find(marker="cancel-confirm").click()

    await user.should_see(marker="algo-message", content="Cancelled a1 (cancelled)")
    assert bridge.client.of(CancelAlgo) == [CancelAlgo(algo_id="a1", reason="wrong symbol")]
    await eventually(lambda: grid_row(user)["cancel"] == "" and grid_row(user)["active"] == 0)


async def test_algos_page_when_modify_then_sends_only_what_changed(
    user: User, bridge: FakeBridge
) -> None:
    bridge.algos.load([view()])
    bridge.client.replies[ModifyAlgo] = view(qty=D(200))
    await user.open("/")

    click_cell(user, "modify", "Modify")
    await user.should_see("Modify a1")
    assert only(user, "modify-param-duration_s").value == "600.0"
    user.find(marker="modify-send").click()
    await user.should_see(
        marker="modify-message", content="Nothing to change: edit the quantity or a parameter"
    )
    user.find(marker="modify-qty").clear().type("200")
    only(user, "modify-param-aggressiveness").value = "cross"
    user.find(marker="modify-send").click()

    await user.should_see(marker="algo-message", content="Modified a1 (running)")
    assert bridge.client.of(ModifyAlgo) == [
        ModifyAlgo(algo_id="a1", qty=D(200), params='{"aggressiveness":"cross"}')
    ]


async def test_algos_page_when_viewer_then_no_controls_and_the_handler_refuses(
    user: User, bridge: FakeBridge, as_user: Callable[[SessionUser], None]
) -> None:
    as_user(VIEWER)
    bridge.algos.load([view()])
    await user.open("/")

    await user.should_see(marker="no-controls")
    await user.should_not_see(marker="algo-start")
    grid = only(user, "algos")
    fields = {c["field"] for c in grid.options["columnDefs"]}
    assert not fields & {"pause", "modify", "cancel"}
    assert "pause" not in grid_row(user)

    click_cell(user, "cancel", "Cancel")  # as a tampered browser would

    await user.should_see(
        marker="algo-message", content="Not allowed: this needs the operator role; you are vic"
    )
    assert not bridge.client.of(CancelAlgo)


# --- the detail panel ----------------------------------------------------------------------


async def test_algos_page_when_a_parent_is_selected_then_children_fills_chart_and_tca(
    user: User, bridge: FakeBridge
) -> None:
    bridge.algos.load([view(filled=D(30))])
    bridge.algos.apply(progress("a1", "10", T0 + NS, expected=D(20)))
    bridge.algos.apply(progress("a1", "30", T0 + 2 * NS, expected=D(40)))
    bridge.trading.blotter.fills.append(fill("a1-0", "10"))
    bridge.trading.blotter.fills.append(fill("other", "5"))
    bridge.trading.blotter.fills_version += 1
    bridge.client.replies[ShowAlgo] = AlgoDetail(
        algo=view(filled=D(30)),
        children=[child("a1-0", 0, "10", "filled"), child("a1-1", 1, "20", "partially_filled")],
    )
    bridge.client.replies[GetAlgoTca] = tca()
    await user.open("/")

    click_cell(user, "algo_id", "a1")

    await user.should_see(marker="detail-title", content="a1: twap buy 100 AAA for desk1 — RUNNING")
    children = only(user, "children")
    await eventually(lambda: children.rows)
    assert [(r["order"], r["slice"], r["status"]) for r in children.rows] == [
        ("a1-1", 1, "partially_filled"),
        ("a1-0", 0, "filled"),
    ]
    fills = only(user, "algo-fills")
    await eventually(lambda: fills.rows)
    assert [r["order"] for r in fills.rows] == ["a1-0"]
    rows = {r["key"]: r["value"] for r in only(user, "tca").rows}
    assert rows["shortfall_bps"] == "+2.5" and rows["fill_rate"] == "30 of 100 (30.0%)"
    chart = only(user, "schedule-chart")
    schedule, filled = chart.figure["data"]
    assert (schedule["name"], schedule["y"]) == ("Schedule", [20.0, 40.0])
    assert (filled["name"], filled["y"]) == ("Filled", [10.0, 30.0])
    assert bridge.client.of(ShowAlgo) == [ShowAlgo(algo_id="a1")]


def child(cid: str, index: int, qty: str, status: str) -> ChildRow:
    return ChildRow(
        client_order_id=cid,
        slice_index=index,
        qty=D(qty),
        price=D("100.01"),
        status=status,
        filled_qty=D(qty) if status == "filled" else D(0),
        avg_price=D("100.01") if status == "filled" else None,
        ts_created=T0,
    )


def fill(cid: str, qty: str) -> OrderFilled:
    return OrderFilled(
        ts_event=T0,
        venue="SIM",
        account="desk1",
        client_order_id=cid,
        venue_order_id=f"v-{cid}",
        symbol="AAA",
        side="buy",
        exec_id=f"e-{cid}",
        trade_id=f"t-{cid}",
        qty=D(qty),
        price=D("100.01"),
        liquidity="taker",
        leaves_qty=D(0),
        cum_qty=D(qty),
    )


def tca() -> AlgoTca:
    return AlgoTca(
        algo_id="a1",
        final=False,
        side="buy",
        qty=D(100),
        filled=D(30),
        fill_rate=0.3,
        avg_price=D("100.0125"),
        arrival_price=D("99.9875"),
        shortfall_bps=2.5,
        interval_vwap=D("100.01"),
        slippage_vs_vwap_bps=0.25,
        market_volume=D(300),
        participation=0.1,
        duration_s=120.0,
        children=2,
    )


# --- the form logic, pure ------------------------------------------------------------------


def fields(kind: str) -> Any:
    return parse_params_schema(_schema(kind))


def test_read_params_when_new_then_only_what_is_set_and_not_the_defaults() -> None:
    values = {"duration_s": " 600 ", "slices": "", "aggressiveness": "touch", "catch_up": True}

    assert read_params(fields("twap"), values) == ({"duration_s": 600.0}, [])


def test_read_params_when_modified_then_changes_and_a_cleared_optional_is_null() -> None:
    twap = fields("twap")
    initial = {f.name: initial_value(f, {"limit_price": "100", "slices": 5}) for f in twap}
    values = dict(initial, limit_price="", slices="6")

    assert read_params(twap, values, initial) == ({"limit_price": None, "slices": 6}, [])


@pytest.mark.parametrize(
    ("kind", "values", "problem"),
    [
        ("twap", {"slices": "2.5"}, "Slices must be a whole number"),
        ("twap", {"end_at_ns": "tomorrow"}, "End at (UTC) must be a UTC time"),
        ("iceberg", {"display_qty": "many"}, "Display qty must be a number"),
        ("vwap", {"profile": "0.5, x"}, "Profile must be numbers separated by commas"),
        ("pov", {}, "Rate is required"),
    ],
)
def test_read_params_when_a_value_is_wrong_then_names_the_field(
    kind: str, values: dict[str, str], problem: str
) -> None:
    _, problems = read_params(fields(kind), values)
    assert len(problems) == 1 and problems[0].startswith(problem)


def test_time_ns_when_iso_or_ns_then_utc_nanoseconds() -> None:
    assert time_ns("2023-11-14T22:13:20Z") == T0
    assert time_ns("2023-11-14T22:13:20") == T0  # UTC unless it says otherwise
    assert time_ns(str(T0 + 5)) == T0 + 5
    assert time_ns("soon") is None


def test_check_modify_when_below_what_filled_then_refused_before_sending() -> None:
    board = AlgoBoard()
    board.load_kinds(builtin_kinds())
    board.load([view(filled=D(30))])
    p = board.parents["a1"]
    twap = board.kinds["twap"]
    initial = {f.name: initial_value(f, p.params) for f in twap.fields}

    problems = check_modify(p, twap, qty="20", initial_qty="100", values=initial, initial=initial)
    assert problems == ["Quantity must be above what it filled (30)"]
    bad = check_modify(
        p,
        twap,
        qty="100",
        initial_qty="100",
        values=dict(initial, randomize="0.9"),
        initial=initial,
    )
    assert bad == ["twap parameters: randomize: must be 0 to 0.5, not 0.9"]


def test_check_start_when_a_start_time_is_given_then_sent_and_checked_from_then() -> None:
    twap = AlgoBoard()
    twap.load_kinds(builtin_kinds())
    form: dict[str, Any] = {
        "account": "desk1",
        "symbol": "AAA",
        "side": "buy",
        "qty": "100",
        "now_ns": T0,
    }
    values = {"end_at_ns": "2023-11-14T22:20:00Z"}

    later = check_start(twap.kinds["twap"], **form, values=values, start_at="2023-11-14T22:15:00Z")
    assert isinstance(later, StartAlgo) and later.start_at_ns == T0 + 100 * NS
    assert later.params == f'{{"end_at_ns":{T0 + 400 * NS}}}'
    too_late = check_start(
        twap.kinds["twap"], **form, values=values, start_at="2023-11-14T22:30:00Z"
    )
    assert isinstance(too_late, list) and "is not after the parent's start" in too_late[0]
    assert check_start(twap.kinds["twap"], **form, values=values, start_at="noon") == [
        "Start at must be a UTC time (14:30, 2025-01-31T14:30Z) or ns"
    ]

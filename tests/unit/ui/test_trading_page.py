"""The orders-and-book page rendered in-process by NiceGUI's simulated ``User``, against
a fake bridge that holds a real ``TradingView``: no sockets, no browser."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from decimal import Decimal
from typing import Any

import pytest
from nicegui import ui
from nicegui.testing import User, user_simulation

from app.client import QSuiteClient
from engine.bus.commands import Command, Result
from engine.bus.commands.orders import SubmitOrder
from engine.bus.events import BookUpdated, OrderAccepted, OrderFilled
from engine.errors import CommandError, ErrorCode
from ui import session
from ui.bridge import Bridge
from ui.components.ticket import check_ticket
from ui.pages import trading
from ui.session import SessionUser
from ui.trading_state import TradingView

pytestmark = pytest.mark.timeout(30)

D = Decimal
FORBIDDEN = "SubmitOrder.v1 needs role operator; the caller acts as viewer"


class FakeClient:
    """The control client as the control plane answers a viewer's SubmitOrder today."""

    role = "viewer"
    expect = staticmethod(QSuiteClient.expect)

    def __init__(self) -> None:
        self.sent: list[Command] = []

    async def send(self, command: Command, **_as_user: Any) -> Result:
        self.sent.append(command)
        raise CommandError(
            ErrorCode.FORBIDDEN, "SubmitOrder.v1 needs role operator; the caller acts as viewer"
        )


class FakeBridge:
    """Stands in for ``ui.bridge.Bridge``: its view state and the real order sending, over
    a fake client."""

    def __init__(self) -> None:
        self.trading = TradingView()
        self.sync_error = ""
        self.client = FakeClient()
        self.watched: list[str] = []
        self.synced: list[list[str]] = []

    def symbols(self) -> list[str]:
        return ["AAA", "BBB.L"]

    def watch(self, symbol: str) -> None:
        self.watched.append(symbol)

    async def sync(self, symbols: Iterable[str] = ()) -> None:
        self.synced.append(list(symbols))

    act = Bridge.act
    submit_order = Bridge.submit_order


@pytest.fixture
def bridge() -> FakeBridge:
    return FakeBridge()


@pytest.fixture
async def user(bridge: FakeBridge, caplog: pytest.LogCaptureFixture) -> AsyncIterator[User]:
    async with user_simulation(lambda: trading.build(bridge)) as simulated:
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


def book(seq: int, *, snapshot: bool = True) -> BookUpdated:
    return BookUpdated(
        ts_event=1,
        venue="SIM",
        symbol="AAA",
        book_seq=seq,
        snapshot=snapshot,
        bids=[(D("99.99"), D(500)), (D("99.98"), D(300))],
        asks=[(D("100.01"), D(200)), (D("100.02"), D(400))],
    )


def accepted(cid: str) -> OrderAccepted:
    return OrderAccepted(
        ts_event=1_700_000_000_000_000_000,
        venue="SIM",
        account="desk1",
        client_order_id=cid,
        venue_order_id=f"v-{cid}",
        symbol="AAA",
        side="buy",
        order_type="limit",
        tif="day",
        qty=D(10),
        price=D("100.01"),
    )


def filled(cid: str) -> OrderFilled:
    return OrderFilled(
        ts_event=1_700_000_000_500_000_000,
        venue="SIM",
        account="desk1",
        client_order_id=cid,
        venue_order_id=f"v-{cid}",
        symbol="AAA",
        side="buy",
        exec_id="e1",
        trade_id="t1",
        qty=D(10),
        price=D("100.01"),
        liquidity="taker",
        leaves_qty=D(0),
        cum_qty=D(10),
    )


def only(user: User, marker: str) -> Any:
    (element,) = user.find(marker=marker).elements
    return element


async def test_trading_page_when_book_is_live_then_ladder_shows_both_sides_best_marked(
    user: User, bridge: FakeBridge
) -> None:
    bridge.trading.apply(book(7))

    await user.open("/")

    await user.should_see(marker="book-state", content="LIVE · seq 7")
    ladder = only(user, "ladder")
    assert isinstance(ladder, ui.table)
    assert [(r["id"], r["bid"], r["price"], r["ask"]) for r in ladder.rows] == [
        ("ask-1", "", "100.02", "400"),
        ("ask-0", "", "100.01", "200"),  # the best ask sits right above the best bid
        ("bid-0", "500", "99.99", ""),
        ("bid-1", "300", "99.98", ""),
    ]
    assert [r["id"] for r in ladder.rows if r["best"]] == ["ask-0", "bid-0"]
    assert bridge.watched == ["AAA"] and ["AAA"] in bridge.synced  # a late tab asks for it


async def test_trading_page_when_a_gap_then_the_book_says_stale(
    user: User, bridge: FakeBridge
) -> None:
    bridge.trading.apply(book(7))
    await user.open("/")
    await user.should_see(marker="book-state", content="LIVE")

    bridge.trading.apply(book(9, snapshot=False))

    await user.should_see(marker="book-state", content="STALE")
    badge = only(user, "book-state")
    assert badge.props["color"] == "warning"


async def test_trading_page_when_an_order_fills_then_only_its_row_is_sent(
    user: User, bridge: FakeBridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    bridge.trading.apply(accepted("o1"))
    bridge.trading.apply(accepted("o2"))
    await user.open("/")
    grid = only(user, "blotter")
    assert isinstance(grid, ui.aggrid)
    assert {r["client_order_id"]: r["status"] for r in grid.options["rowData"]} == {
        "o1": "accepted",
        "o2": "accepted",
    }
    transactions: list[dict[str, Any]] = []
    monkeypatch.setattr(grid, "run_grid_method", lambda name, arg: transactions.append({name: arg}))

    bridge.trading.apply(filled("o2"))

    (sent,) = await eventually(lambda: transactions)
    change = sent["applyTransaction"]
    assert change["add"] == [] and change["remove"] == []
    (row,) = change["update"]
    assert (row["key"], row["status"], row["filled"], row["avg_price"]) == (
        "o2",
        "filled",
        "10",
        "100.01",
    )
    rows = {r["key"]: r["status"] for r in grid.options["rowData"]}
    assert rows == {"o1": "accepted", "o2": "filled"}  # the element's copy kept in step
    fills = only(user, "fills")
    await eventually(lambda: fills.rows)
    assert fills.rows[0]["order"] == "o2" and fills.rows[0]["time"] == "22:13:20"


async def test_trading_page_when_ticket_is_incomplete_then_says_what_to_fix_and_sends_nothing(
    user: User, bridge: FakeBridge
) -> None:
    await user.open("/")
    user.find(marker="ticket-qty").type("0")
    user.find(marker="ticket-send").click()

    await user.should_see(
        marker="ticket-message", content="Quantity must be a number greater than 0"
    )
    await user.should_see(
        marker="ticket-message", content="Price must be a number greater than 0 for a limit order"
    )
    assert bridge.client.sent == []


async def test_trading_page_when_a_viewer_sends_an_order_then_refused_and_nothing_sent(
    user: User, bridge: FakeBridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session, "current_user", lambda: SessionUser("vic", "viewer"))
    await user.open("/")
    user.find(marker="ticket-qty").type("5")
    user.find(marker="ticket-price").type("99.5")
    user.find(marker="ticket-send").click()

    await user.should_see(marker="ticket-message", content="this needs the operator role")
    message = only(user, "ticket-message")
    assert "text-negative" in message.classes and "vic (viewer)" in message.text
    assert bridge.client.sent == []  # refused by the handler, not only by hiding a button


async def test_trading_page_when_the_control_plane_refuses_then_its_words_shown(
    user: User, bridge: FakeBridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session, "current_user", lambda: SessionUser("olga", "operator"))
    await user.open("/")
    user.find(marker="ticket-qty").type("5")
    user.find(marker="ticket-price").type("99.5")
    user.find(marker="ticket-send").click()

    await user.should_see(marker="ticket-message", content=FORBIDDEN)
    (order,) = bridge.client.sent
    assert order == SubmitOrder(
        account="desk1", symbol="AAA", side="buy", qty=D(5), price=D("99.5"), tif="day"
    )


async def test_trading_page_when_engine_unreachable_then_sync_error_shown(
    user: User, bridge: FakeBridge
) -> None:
    bridge.sync_error = "Cannot load orders: Engine unreachable at ipc:///tmp/qs/execution"
    await user.open("/")
    await user.should_see(marker="sync-error", content="Engine unreachable")
    await user.should_see(marker="book-state", content="NO BOOK YET")


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"account": ""}, "Account"),
        ({"account": "_mm"}, "Account"),
        ({"symbol": ""}, "Symbol is required"),
        ({"qty": "abc"}, "Quantity must be a number greater than 0"),
        ({"qty": "-1"}, "Quantity must be a number greater than 0"),
        ({"price": "0"}, "Price must be a number greater than 0 for a limit order"),
        ({"price": "NaN"}, "Price must be a number greater than 0 for a limit order"),
        ({"order_type": "market"}, "A market order takes no price"),
    ],
)
def test_check_ticket_when_a_field_is_wrong_then_names_it(
    fields: dict[str, str], problem: str
) -> None:
    ticket = {
        "account": "desk1",
        "symbol": "AAA",
        "side": "sell",
        "qty": "3",
        "price": "101.25",
        "order_type": "limit",
        "tif": "gtc",
    }
    problems = check_ticket(**(ticket | fields))
    assert isinstance(problems, list) and len(problems) == 1 and problem in problems[0]


def test_check_ticket_when_market_order_then_no_price() -> None:
    order = check_ticket(
        account="desk1",
        symbol="BBB.L",
        side="sell",
        qty="3",
        price=" ",
        order_type="market",
        tif="ioc",
    )
    assert order == SubmitOrder(
        account="desk1",
        symbol="BBB.L",
        side="sell",
        qty=D(3),
        price=None,
        order_type="market",
        tif="ioc",
    )

"""``qsuite ctl order …`` and ``qsuite ctl positions``: arguments → commands, tables."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.cli import build_parser
from app.ctl import VERBS, render, venue_answer
from engine.bus.commands.orders import (
    GetPositions,
    ListOrders,
    OrderList,
    OrderRow,
    PositionList,
    PositionRow,
    RequestCancel,
    RequestReplace,
    SubmitOrder,
)

D = Decimal


def command(*argv: str) -> object:
    args = build_parser().parse_args(["ctl", *argv])
    built, process = VERBS[args.verb].build(args)
    assert process is None
    return built


def test_order_submit_when_limit_then_submit_order_with_every_option() -> None:
    built = command(
        "order", "submit", "acc", "AAPL", "buy", "10", "--price", "100.05", "--tif", "gtc",
        "--id", "my-1", "--command-id", "k1",
    )  # fmt: skip

    assert built == SubmitOrder(
        account="acc",
        symbol="AAPL",
        side="buy",
        qty=D(10),
        price=D("100.05"),
        order_type="limit",
        tif="gtc",
        client_order_id="my-1",
        command_id="k1",
    )


def test_order_submit_when_market_then_no_price_and_default_id() -> None:
    built = command("order", "submit", "acc", "BP.L", "sell", "2.5", "--type", "market")

    assert isinstance(built, SubmitOrder)
    assert (built.order_type, built.price, built.qty, built.client_order_id) == (
        "market",
        None,
        D("2.5"),
        "",
    )


def test_order_cancel_replace_list_and_positions_when_parsed_then_commands() -> None:
    assert command("order", "cancel", "o1") == RequestCancel(client_order_id="o1")
    assert command("order", "replace", "o1", "--qty", "6") == RequestReplace(
        client_order_id="o1", qty=D(6)
    )
    assert command("order", "replace", "o1", "--qty", "6", "--price", "99.5") == RequestReplace(
        client_order_id="o1", qty=D(6), price=D("99.5")
    )
    assert command("order", "list") == ListOrders(open_only=True, limit=50)
    assert command("order", "list", "--account", "acc", "--all", "--json") == ListOrders(
        account="acc", open_only=False, limit=50
    )
    assert command("positions", "--account", "acc") == GetPositions(account="acc")
    assert build_parser().parse_args(["ctl", "positions", "--json"]).json is True


@pytest.mark.parametrize(
    "argv",
    [
        ["order", "submit", "acc", "AAPL", "buy", "ten"],
        ["order", "submit", "acc", "AAPL", "hold", "1"],
        ["order", "replace", "o1"],
        ["order"],
        ["order", "amend", "o1"],
    ],
)
def test_order_when_arguments_bad_then_usage_error(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["ctl", *argv])
    assert info.value.code == 2


def test_render_when_orders_and_positions_then_tables(capsys: pytest.CaptureFixture[str]) -> None:
    row = OrderRow(
        client_order_id="o1",
        account="acc",
        symbol="AAPL",
        side="buy",
        order_type="limit",
        tif="day",
        qty=D(10),
        price=D("100.5"),
        status="partially_filled",
        filled_qty=D(4),
        avg_price=D("100.25"),
        ts_created=0,
        ts_updated=1_700_000_000 * 10**9,
    )
    render(OrderList(orders=[row]))
    position = PositionRow(
        account="acc",
        symbol="AAPL",
        qty=D(4),
        avg_price=D("100.25"),
        realized_pnl=D(0),
        unrealized_pnl=None,
        mark_price=None,
        ts_updated=0,
    )
    render(PositionList(positions=[position]))

    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == [
        "ID", "ACCOUNT", "SYMBOL", "SIDE", "TYPE", "TIF", "QTY", "PRICE", "FILLED", "AVG",
        "STATUS", "REASON", "UPDATED",
    ]  # fmt: skip
    assert out[1].split() == [
        "o1", "acc", "AAPL", "buy", "limit", "day", "10", "100.5", "4", "100.25",
        "PARTIALLY_FILLED", "-", "2023-11-14", "22:13",
    ]  # fmt: skip
    assert out[2].split() == [
        "ACCOUNT", "SYMBOL", "QTY", "AVG", "PRICE", "MARK", "UNREALIZED", "REALIZED",
    ]  # fmt: skip
    assert out[3].split() == ["acc", "AAPL", "4", "100.25", "-", "-", "0"]


def test_render_positions_when_mark_has_many_decimals_then_rounded_for_people(
    capsys: pytest.CaptureFixture[str],
) -> None:
    position = PositionRow(
        account="acc",
        symbol="AAPL",
        qty=D(10),
        avg_price=D("99.92"),
        realized_pnl=D("1.005"),
        unrealized_pnl=D("-0.241135226"),
        mark_price=D("99.8958864774"),
        ts_updated=0,
    )

    render(PositionList(positions=[position]))

    assert capsys.readouterr().out.splitlines()[1].split() == [
        "acc", "AAPL", "10", "99.92", "99.8959", "-0.24", "1.00",
    ]  # fmt: skip


def row(cid: str, status: str, **fields: object) -> OrderRow:
    values: dict[str, object] = {
        "client_order_id": cid,
        "account": "acc",
        "symbol": "AAPL",
        "side": "buy",
        "order_type": "limit",
        "tif": "day",
        "qty": D(10),
        "price": D(100),
        "status": status,
        "filled_qty": D(0),
        "avg_price": None,
        "ts_created": 0,
        "ts_updated": 0,
    }
    values.update(fields)
    return OrderRow(**values)  # type: ignore[arg-type]


class Ledger:
    """The order manager as the CLI asks it: each ListOrders gets the next answer."""

    def __init__(self, *answers: list[OrderRow]) -> None:
        self.answers = list(answers)
        self.asked: list[ListOrders] = []
        self.now = 0.0

    def send(self, command: ListOrders) -> OrderList:
        self.asked.append(command)
        return OrderList(orders=self.answers.pop(0) if len(self.answers) > 1 else self.answers[0])

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(
    ("answers", "line"),
    [
        ([[row("o1", "rejected", reason="halted")]], "venue: REJECTED (halted)"),
        (
            [[row("o1", "pending_new")], [row("o0", "filled"), row("o1", "accepted")]],
            "venue: ACCEPTED",
        ),
        (
            [[row("o1", "filled", filled_qty=D(10), avg_price=D("99.92"))]],
            "venue: FILLED 10 @ 99.92",
        ),
        (
            [[]],
            "venue: no answer within 1 s; `qsuite ctl order list --all` shows it when it comes",
        ),
    ],
)
def test_venue_answer_when_order_manager_asked_then_one_line(
    answers: list[list[OrderRow]], line: str
) -> None:
    ledger = Ledger(*answers)

    said = venue_answer(ledger, "acc", "o1", 1.0, clock=lambda: ledger.now, sleep=ledger.sleep)

    assert said == line
    assert ledger.asked[0] == ListOrders(account="acc", open_only=False, limit=50)
    assert len(ledger.asked) <= 12  # bounded by the wait


def test_order_submit_when_parsed_then_waits_two_seconds_by_default() -> None:
    args = build_parser().parse_args(["ctl", "order", "submit", "acc", "AAPL", "buy", "1"])
    assert args.wait == 2.0
    args = build_parser().parse_args(
        ["ctl", "order", "submit", "acc", "AAPL", "buy", "1", "--wait", "0"]
    )
    assert args.wait == 0.0

"""The order manager with fake contexts and a fake venue that speaks the order-entry
protocol: write-ahead submits, fills into positions once, cancel/replace, input checks,
logon and reconciliation after a venue restart."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeChannel, FakeContext, FakeNetwork
from order_world import D, World, permit, refused

from app import database
from app.settings import load_settings
from engine.bus.commands.orders import (
    GetPositions,
    ListOrders,
    OrderAck,
    RequestCancel,
    RequestReplace,
    SubmitOrder,
)
from engine.bus.events import (
    AlertRaised,
    PositionChanged,
    QuoteUpdated,
)
from engine.clock import FakeClock
from engine.errors import ErrorCode
from engine.orders.service import OrderService
from engine.venue.protocol import (
    REQUEST_DECODER,
    CancelOrder,
    Logon,
    NewOrder,
    OrderStatus,
    ReplaceOrder,
    StatusRequest,
)

# --- submit ----------------------------------------------------------------------------


def test_submit_when_logged_on_then_intent_recorded_before_new_order_sent(world: World) -> None:
    seen: list[str | None] = []

    def spy(sender: FakeChannel, frames: list[bytes]) -> None:
        if sender.role != "connect":
            return
        request = REQUEST_DECODER.decode(frames[0])
        if isinstance(request, NewOrder):
            stored = world.service.ledger.order(request.client_order_id)
            seen.append(None if stored is None else stored.status)

    world.network.on_send = spy

    ack = world.submit("o1", price=D("100.5"), tif="gtc")

    assert (ack.client_order_id, ack.request_id, ack.request, ack.status) == (
        "o1",
        "o1",
        "new",
        "pending_new",
    )
    assert seen == ["pending_new"]  # recorded, then sent
    (sent,) = world.venue.received(NewOrder)
    assert (sent.account, sent.symbol, sent.qty, sent.price, sent.tif) == (
        "acc",
        "AAPL",
        10,
        D("100.5"),
        "gtc",
    )
    assert world.status_of("o1") == "accepted"


def test_submit_when_no_client_order_id_then_derived_from_command_id(world: World) -> None:
    ack = world.submit("", command_id="abc123")

    assert ack.client_order_id == "man-abc123"
    assert world.status_of("man-abc123") == "accepted"


def test_submit_when_same_command_again_then_one_order(world: World) -> None:
    first = world.submit("o1")
    again = world.submit("o1")

    assert first.status == "pending_new" and again.status == "accepted"
    assert len(world.venue.received(NewOrder)) == 1
    assert len(world.venue.orders) == 1


def test_submit_when_id_reused_for_another_order_then_conflict(world: World) -> None:
    world.submit("o1")
    error = refused(
        world,
        SubmitOrder(
            account="acc",
            symbol="MSFT",
            side="sell",
            qty=D(1),
            price=D(5),
            client_order_id="o1",
            command_id="c2",
        ),
    )

    assert error.code == ErrorCode.CONFLICT
    assert "o1 is already used" in error.message


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"qty": D(0)}, "qty must be positive, not 0"),
        ({"qty": D(-5)}, "qty must be positive, not -5"),
        ({"qty": D("NaN")}, "qty must be a finite number, not NaN"),
        ({"qty": D("Infinity")}, "qty must be a finite number"),
        ({"qty": D("0.00000000001")}, "more than 10 decimal places"),
        ({"price": None}, "a limit order needs a price"),
        ({"price": D(0)}, "price must be positive"),
        ({"price": D("sNaN")}, "price must be a finite number"),
        ({"order_type": "market"}, "a market order takes no price"),
        ({"account": "_mm"}, "account '_mm' is not valid"),
        ({"account": "a" * 33}, "is not valid"),
        ({"symbol": "A B"}, "symbol 'A B' is not valid"),
        ({"client_order_id": "has space"}, "client_order_id 'has space' is not valid"),
        ({"client_order_id": "", "command_id": ""}, "give the order a client_order_id"),
        ({"qty": D("1.5")}, "qty 1.5 is not a multiple of AAPL's lot 1"),
        ({"price": D("100.001")}, "price 100.001 is not on AAPL's tick 0.01"),
        (
            {"symbol": "ZZZ"},
            "ZZZ is not traded on SIM: the feed has not quoted it and no operator added it "
            "(`qsuite ctl instrument ZZZ`)",
        ),
    ],
    ids=lambda v: str(v)[:40],
)
def test_submit_when_input_bad_then_invalid_and_nothing_recorded_or_sent(
    world: World, fields: dict[str, Any], text: str
) -> None:
    values: dict[str, Any] = {
        "account": "acc",
        "symbol": "AAPL",
        "side": "buy",
        "qty": D(10),
        "price": D(100),
        "client_order_id": "bad",
        "command_id": "c",
    }
    values.update(fields)

    error = refused(world, SubmitOrder(**values))

    assert error.code == ErrorCode.INVALID
    assert text in error.message
    assert world.venue.received(NewOrder) == []
    assert world.service.ledger.orders() == []


def test_submit_when_limit_without_price_then_invalid(world: World) -> None:
    error = refused(
        world, SubmitOrder(account="acc", symbol="AAPL", side="buy", qty=D(1), command_id="c1")
    )

    assert (error.code, error.message) == (
        ErrorCode.INVALID,
        "a limit order needs a price (--price), or use --type market",
    )


def test_submit_when_channel_drops_the_request_then_order_rejected_not_sent(
    world: World,
) -> None:
    world.venue.restart(down=True)  # gone, and not noticed yet: the send is dropped

    ack = world.submit("o1")

    assert (ack.status, ack.message) == ("rejected", "the channel dropped it: rejected")
    order = world.service.ledger.order("o1")
    assert order is not None and order.reject_reason == "not_sent"


def test_submit_when_market_order_then_sent_without_price(world: World) -> None:
    world.quote(bid=99.0, ask=101.0)  # the gate values a market order at the reference
    world.submit("m1", order_type="market", price=None, tif="ioc")

    (sent,) = world.venue.received(NewOrder)
    assert (sent.order_type, sent.price, sent.tif) == ("market", None, "ioc")


# --- fills and positions ---------------------------------------------------------------


def test_fill_when_repeated_by_venue_then_position_moved_and_published_once(world: World) -> None:
    world.submit("o1")
    fill = world.venue.fill("o1", "4", "100")
    world.run()
    world.venue.report("execution", fill)  # the venue says it again (new seq, same exec_id)
    world.run()

    (changed,) = world.events(PositionChanged)
    assert (changed.account, changed.symbol, changed.qty, changed.avg_price, changed.exec_id) == (
        "acc",
        "AAPL",
        4,
        100,
        "x1",
    )
    assert world.ctx.published[-1][0] == "exec.position.acc"
    world.venue.fill("o1", "6", "101")
    world.run()

    assert [e.qty for e in world.events(PositionChanged)] == [4, 10]
    assert world.status_of("o1") == "filled"
    (position,) = world.send(GetPositions()).positions
    assert (position.qty, position.avg_price, position.mark_price, position.unrealized_pnl) == (
        10,
        D("100.6"),
        101,
        4,
    )
    world.quote(bid=102.0, ask=104.0)
    (position,) = world.send(GetPositions(account="acc")).positions
    assert (position.mark_price, position.unrealized_pnl) == (103, 24)  # 10 * 103 - 1006
    assert world.send(GetPositions(account="other")).positions == []


def test_fill_when_cum_qty_does_not_add_up_then_reconciles(world: World) -> None:
    world.submit("o1")
    before = len(world.venue.received(StatusRequest))

    world.venue.fill("o1", "4", "100", cum="5")
    world.run()

    assert len(world.venue.received(StatusRequest)) == before + 1
    assert world.events(PositionChanged)[0].qty == 4


# --- cancel and replace ----------------------------------------------------------------


def test_cancel_when_order_open_then_cancel_sent_and_order_cancelled(world: World) -> None:
    world.submit("o1")

    ack = world.send(RequestCancel(client_order_id="o1", command_id="k1"))

    assert (ack.client_order_id, ack.request_id, ack.request) == ("o1", "o1-c1", "cancel")
    (sent,) = world.venue.received(CancelOrder)
    assert (sent.client_order_id, sent.orig_client_order_id, sent.account) == (
        "o1-c1",
        "o1",
        "acc",
    )
    assert world.status_of("o1") == "cancelled"
    assert world.send(ListOrders()).orders == []
    (row,) = world.send(ListOrders(open_only=False)).orders
    assert (row.client_order_id, row.status, row.reason) == ("o1", "cancelled", "requested")
    again = refused(world, RequestCancel(client_order_id="o1", command_id="k2"))
    assert (again.code, again.message) == (
        ErrorCode.CONFLICT,
        "cannot cancel o1: it is cancelled already",
    )


def test_cancel_when_order_unknown_then_not_found(world: World) -> None:
    error = refused(world, RequestCancel(client_order_id="nope", command_id="k1"))

    assert error.code == ErrorCode.NOT_FOUND
    assert "no order nope" in error.message
    assert world.venue.received(CancelOrder) == []


def test_replace_when_order_open_then_new_id_and_one_replace_at_a_time(world: World) -> None:
    world.submit("o1")
    world.venue.fill("o1", "2", "100")
    world.run()

    ack = world.ctx.send(
        RequestReplace(client_order_id="o1", qty=D(6), price=D(99), command_id="r1")
    )
    busy = refused(world, RequestReplace(client_order_id="o1", qty=D(5), command_id="r2"))
    world.run()

    assert isinstance(ack, OrderAck)
    assert (ack.request_id, ack.request) == ("o1-r1", "replace")
    assert busy.code == ErrorCode.CONFLICT and "on its way (o1-r1)" in busy.message
    order = world.service.ledger.find_order("o1")
    assert order is not None
    assert (order.client_order_id, order.orig_client_order_id, order.qty, order.price) == (
        "o1-r1",
        "o1",
        6,
        99,
    )
    assert order.status == "partially_filled"
    second = world.send(RequestReplace(client_order_id="o1-r1", qty=D(5), command_id="r3"))
    assert second.request_id == "o1-r2"
    assert world.venue.received(ReplaceOrder)[-1].price is None  # price kept
    cancel = world.send(RequestCancel(client_order_id="o1-r1", command_id="k1"))  # previous id
    assert cancel.request_id == "o1-r2-c1"
    assert world.status_of("o1-r2") == "cancelled"


@pytest.mark.parametrize(
    ("qty", "price", "text"),
    [
        (D(0), None, "qty must be positive"),
        (D("NaN"), None, "qty must be a finite number"),
        (D(2), None, "2 is filled already"),
        (D(10), D(100), "already has qty 10 at 100"),
        (D(10), D(-1), "price must be positive"),
        (D("10.5"), None, "qty 10.5 is not a multiple of AAPL's lot 1"),
        (D(10), D("99.999"), "price 99.999 is not on AAPL's tick 0.01"),
    ],
)
def test_replace_when_input_bad_then_invalid(
    world: World, qty: Decimal, price: Decimal | None, text: str
) -> None:
    world.submit("o1")
    world.venue.fill("o1", "2", "100")
    world.run()

    error = refused(
        world, RequestReplace(client_order_id="o1", qty=qty, price=price, command_id="r1")
    )

    assert error.code == ErrorCode.INVALID and text in error.message
    assert world.venue.received(ReplaceOrder) == []


def test_replace_when_venue_refuses_then_order_unchanged_and_replace_allowed_again(
    world: World,
) -> None:
    world.submit("o1")
    world.venue.orders.clear()  # the venue lost it: it refuses the replace

    world.send(RequestReplace(client_order_id="o1", qty=D(5), command_id="r1"))
    ack = world.send(RequestReplace(client_order_id="o1", qty=D(5), command_id="r2"))

    assert ack.request_id == "o1-r1"  # the refused id was never taken
    assert world.status_of("o1") == "accepted"


# --- session, health and reconciliation -------------------------------------------------


def test_health_when_venue_not_up_then_degraded_until_logged_on(tmp_path: Path) -> None:
    world = World(tmp_path, venue_up=False)
    status, detail = world.service.health()
    assert status == "degraded"
    assert detail == (
        f"not connected to venue at {world.settings.venue.order_entry}; orders cannot be sent"
    )
    error = refused(
        world,
        SubmitOrder(
            account="acc", symbol="AAPL", side="buy", qty=D(1), price=D(1), command_id="c1"
        ),
    )
    assert error.code == ErrorCode.UNAVAILABLE
    assert world.service.ledger.orders() == []

    world.venue.restart()  # the venue starts late
    world.advance(world.settings.execution.logon_retry_s * 2)

    assert world.service.health() == ("up", "logged on to venue SIM (run run1)")
    assert len(world.venue.received(Logon)) == 1
    assert world.venue.received(StatusRequest)[0].open_orders  # reconciled on logon
    world.service.stop()


def test_session_when_venue_silent_then_degraded_and_logs_on_again(world: World) -> None:
    assert world.service.health()[0] == "up"
    world.venue.restart(down=True)

    world.advance(world.settings.execution.timeout_s + 1)

    assert world.service.health()[0] == "degraded"
    world.venue.restart()
    world.advance(world.settings.execution.logon_retry_s * 2)
    assert world.service.health()[0] == "up"


def test_session_when_idle_then_probes_keep_it_up(world: World) -> None:
    world.advance(world.settings.execution.timeout_s * 3)

    assert world.service.health()[0] == "up"
    probes = [r for r in world.venue.received(StatusRequest) if r.request_id.startswith("hb-")]
    assert probes and all(not p.open_orders and not p.client_order_ids for p in probes)


def test_reconcile_when_venue_restarted_then_missed_fill_once_and_unknown_order_alerted(
    world: World,
) -> None:
    world.submit("o1")
    world.venue.restart(down=True)  # the venue stops…
    world.venue.fill("o1", "3", "100", send=False)  # …having traded o1 (the report is lost)
    stranger = OrderStatus(
        account="acc",
        client_order_id="not-ours",
        venue_order_id="v99",
        symbol="MSFT",
        side="sell",
        order_type="limit",
        tif="day",
        qty=D(5),
        price=D(300),
        cum_qty=D(0),
        leaves_qty=D(5),
        status="accepted",
    )
    world.venue.orders["v99"] = stranger
    world.venue.restart()  # …and comes back as a new run

    world.advance(world.settings.execution.timeout_s + world.settings.execution.logon_retry_s)

    assert world.service.session.epoch == "run2"
    order = world.service.ledger.find_order("o1")
    assert order is not None and (order.status, order.filled_qty) == ("partially_filled", 3)
    (changed,) = world.events(PositionChanged)
    assert (changed.qty, changed.exec_id) == (3, "x1")
    (alert,) = world.events(AlertRaised)
    assert (alert.kind, alert.severity, alert.symbol, alert.details["venue_order_id"]) == (
        "execution.unknown_venue_order",
        "warning",
        "MSFT",
        "v99",
    )
    assert "not-ours" in alert.message
    assert world.ctx.published[-1][0] == "alert.warning"
    world.venue.report("execution", world.venue.orders["v1"].fills[0])  # the fill, late
    world.run()
    world.advance(world.settings.execution.reconcile_interval_s + 1)  # a periodic reconcile

    assert len(world.events(PositionChanged)) == 1
    assert len(world.events(AlertRaised)) == 1
    assert world.service.ledger.position("acc", "AAPL").qty == 3


def test_reconcile_when_new_order_never_reached_venue_then_rejected_not_resent(
    world: World,
) -> None:
    world.venue.drop_new = True
    world.submit("lost")
    assert world.status_of("lost") == "pending_new"

    world.advance(world.settings.execution.reconcile_interval_s + 1)

    order = world.service.ledger.find_order("lost")
    assert order is not None and (order.status, order.reject_reason) == (
        "rejected",
        "unknown_at_venue",
    )
    assert len(world.venue.received(NewOrder)) == 1


def test_reconcile_when_order_sent_after_status_request_then_not_closed(world: World) -> None:
    world.service.reconciler.request("test")  # a status request is on its way…
    world.ctx.send(
        SubmitOrder(
            account="acc",
            symbol="AAPL",
            side="buy",
            qty=D(1),
            price=D(1),
            client_order_id="late",
            command_id="c1",
        )
    )  # …and the order goes after it: the answer cannot know it
    world.run()

    assert world.status_of("late") == "accepted"


def test_reconcile_when_sequence_gap_then_status_requested(world: World) -> None:
    world.submit("o1")
    before = len(world.venue.received(StatusRequest))
    fill = world.venue.fill("o1", "1", "100", send=False)

    world.venue.report("execution", fill, skip=1)  # one report went missing
    world.run()

    assert len(world.venue.received(StatusRequest)) == before + 1
    assert world.service.ledger.position("acc", "AAPL").qty == 1


def test_report_when_not_logged_on_refusal_then_order_rejected_and_logon_again(
    world: World,
) -> None:
    world.venue.restart()  # a restart the order manager has not noticed yet
    logons = len(world.venue.received(Logon))

    world.submit("o1")

    assert world.status_of("o1") == "rejected"
    assert world.service.ledger.order("o1").reject_reason == "not_logged_on"  # type: ignore[union-attr]
    assert len(world.venue.received(Logon)) == logons + 1
    assert world.service.health()[0] == "up"
    assert world.service.session.epoch == "run2"


def test_report_when_undecodable_then_counted_and_dropped(world: World) -> None:
    world.venue.channel.send([b"\x00garbage"], world.venue.peers["execution"])
    world.run()

    assert world.ctx.stats.total("qsuite_execution_reports_malformed_total") == 1
    assert world.service.health()[0] == "up"


def test_order_manager_when_real_venue_then_trades_restarts_and_reconciles(
    tmp_path: Path,
) -> None:
    """The contract with :class:`engine.venue.service.VenueService` (its own fake context
    on the same network): logon, a fill against its market makers, a restart, a cancel."""
    from engine.venue.service import VenueService

    settings = load_settings(environ={"QSUITE__APP__DATA_DIR": str(tmp_path)})
    network, clock = FakeNetwork(), FakeClock()
    engine = database.open_database(settings)
    venue_ctx = FakeContext("venue", clock=clock, network=network)
    VenueService(settings.venue, engine=engine).start(venue_ctx)
    ctx = FakeContext("execution", clock=clock, network=network)
    permit(engine, "acc")
    service = OrderService(
        settings.execution, settings.venue, settings.risk, settings.algos, engine=engine
    )
    service.start(ctx)
    network.run()
    quote = QuoteUpdated(
        ts_event=clock.time_ns(),
        symbol="AAPL",
        bid=99.99,
        ask=100.01,
        bid_size=500.0,
        ask_size=500.0,
        last=100.0,
        origin="synthetic",
    )
    venue_ctx.deliver("md.quote.AAPL", quote)
    network.run()

    ctx.send(
        SubmitOrder(
            account="acc", symbol="AAPL", side="buy", qty=D(10), price=D("100.05"), command_id="c1"
        )
    )
    ctx.send(
        SubmitOrder(
            account="acc", symbol="AAPL", side="buy", qty=D(5), price=D(99), command_id="c2"
        )
    )
    network.run()

    assert service.ledger.order("man-c1").status == "filled"  # type: ignore[union-attr]
    assert service.ledger.order("man-c2").status == "accepted"  # type: ignore[union-attr]
    (changed,) = ctx.events(PositionChanged)
    assert (changed.qty, changed.avg_price) == (10, D("100.01"))
    network.servers[settings.venue.order_entry].closed = True  # the venue restarts
    restarted = VenueService(settings.venue, engine=engine)
    restarted.start(FakeContext("venue", clock=clock, network=network))
    for _ in range(int(settings.execution.timeout_s * 10)):
        ctx.advance(0.1)
        network.run()
    assert service.session.epoch == restarted.epoch
    assert service.ledger.order("man-c2").status == "accepted"  # type: ignore[union-attr]
    ctx.send(RequestCancel(client_order_id="man-c2", command_id="c3"))
    network.run()
    assert service.ledger.order("man-c2").status == "cancelled"  # type: ignore[union-attr]
    assert ctx.events(AlertRaised) == []
    service.stop()

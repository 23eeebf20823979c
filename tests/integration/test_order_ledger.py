"""The order ledger on a real SQLite file and a real PostgreSQL schema: write-ahead
intents, idempotent fills, positions moved in the fill's transaction, restore after a
restart, and reconciliation plans applied twice."""

from __future__ import annotations

from decimal import Decimal

import pytest
from conftest_db import db_fixture, migrated_fixture  # noqa: F401  (fixtures)
from sqlalchemy import Connection, Engine, func, select

import engine.orders.ledger as ledger_module
from engine.bus.events import (
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    Side,
)
from engine.orders.ledger import OrderLedger
from engine.orders.lifecycle import OrderState, new_order
from engine.orders.positions import Position
from engine.orders.reconcile import reconcile
from engine.persistence.models import Fill, Order
from engine.persistence.models import Position as PositionRow
from engine.venue.protocol import OrderStatus

pytestmark = pytest.mark.integration

T0 = 1_700_000_000 * 1_000_000_000
D = Decimal


def order(cid: str, qty: str = "10", *, side: Side = "buy", symbol: str = "AAPL") -> OrderState:
    return new_order(
        cid,
        account="acc",
        symbol=symbol,
        side=side,
        qty=D(qty),
        price=D("100"),
        ts=T0,
    )


def accepted(state: OrderState, vid: str) -> OrderAccepted:
    return OrderAccepted(
        ts_event=T0 + 1,
        venue="sim",
        account=state.account,
        client_order_id=state.client_order_id,
        venue_order_id=vid,
        symbol=state.symbol,
        side=state.side,
        order_type="limit",
        tif="day",
        qty=state.qty,
        price=state.price,
    )


def fill(
    state: OrderState, exec_id: str, qty: str, price: str, cum: str, *, vid: str, ts: int = T0 + 2
) -> OrderFilled:
    return OrderFilled(
        ts_event=ts,
        venue="sim",
        account=state.account,
        client_order_id=state.client_order_id,
        venue_order_id=vid,
        symbol=state.symbol,
        side=state.side,
        exec_id=exec_id,
        trade_id="t-" + exec_id,
        qty=D(qty),
        price=D(price),
        liquidity="taker",
        leaves_qty=state.qty - D(cum),
        cum_qty=D(cum),
    )


def count(db: Engine, model: type) -> int:
    with db.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def stored(position: Position) -> tuple[Decimal, Decimal, Decimal]:
    return (position.qty, position.avg_price, position.realized_pnl)


def test_record_intent_when_recorded_then_stored_before_send(migrated: Engine) -> None:
    ledger = OrderLedger(migrated)
    intent = order("c1")

    assert ledger.record_intent(intent) is True
    # the process "crashes" before sending: a new ledger finds the intent to reconcile
    assert OrderLedger(migrated).open_orders() == [intent]
    assert ledger.record_intent(intent) is False
    assert count(migrated, Order) == 1
    with pytest.raises(ValueError):
        ledger.record_intent(ledger.apply(accepted(intent, "v1")).order)  # type: ignore[arg-type]


def test_apply_fill_when_exec_id_replayed_then_one_fill_and_position_moved_once(
    migrated: Engine,
) -> None:
    ledger = OrderLedger(migrated, fee_of=lambda f: D("0.5"))
    intent = order("c1")
    ledger.record_intent(intent)
    ledger.apply(accepted(intent, "v1"))
    first = fill(intent, "e1", "4", "100.25", "4", vid="v1")

    done = ledger.apply(first)
    again = ledger.apply(first)

    assert done.result == "applied" and done.order is not None
    assert (done.order.status, done.order.filled_qty, done.order.avg_price) == (
        "partially_filled",
        4,
        D("100.25"),
    )
    changed = done.position_changed
    assert changed is not None
    assert (changed.qty, changed.avg_price, changed.realized_pnl, changed.exec_id) == (
        4,
        D("100.25"),
        D("-0.5"),
        "e1",
    )
    assert (again.result, again.reason, again.position_changed) == (
        "ignored",
        "duplicate_exec_id",
        None,
    )
    assert count(migrated, Fill) == 1
    assert stored(ledger.position("acc", "AAPL")) == (4, D("100.25"), D("-0.5"))
    assert ledger.exec_ids("c1") == {"e1"}


def test_apply_fill_when_exec_id_stored_by_a_racing_writer_then_dropped(
    migrated: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = OrderLedger(migrated)
    a, b = order("a"), order("b")
    for state, vid in ((a, "va"), (b, "vb")):
        ledger.record_intent(state)
        ledger.apply(accepted(state, vid))
    ledger.apply(fill(a, "x1", "1", "100", "1", vid="va"))
    # the check ran before the other writer committed: only the unique index sees it
    real = ledger_module._fill_stored
    calls: list[str] = []

    def stale_once(conn: Connection, exec_id: str) -> bool:
        calls.append(exec_id)
        return False if len(calls) == 1 else real(conn, exec_id)

    monkeypatch.setattr(ledger_module, "_fill_stored", stale_once)
    raced = ledger.apply(fill(b, "x1", "1", "100", "1", vid="vb"))

    assert (raced.result, raced.reason) == ("ignored", "duplicate_exec_id")
    assert len(calls) == 2
    assert count(migrated, Fill) == 1
    assert ledger.order("b").filled_qty == 0  # type: ignore[union-attr]
    assert stored(ledger.position("acc", "AAPL")) == (1, 100, 0)


def test_apply_fill_when_position_write_fails_then_fill_and_order_rolled_back(
    migrated: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = OrderLedger(migrated)
    intent = order("c1")
    ledger.record_intent(intent)
    ledger.apply(accepted(intent, "v1"))

    def broken(conn: Connection, position: Position) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(ledger_module, "_write_position", broken)
    with pytest.raises(RuntimeError):
        ledger.apply(fill(intent, "e1", "4", "100", "4", vid="v1"))

    assert count(migrated, Fill) == 0
    assert ledger.order("c1").filled_qty == 0  # type: ignore[union-attr]
    monkeypatch.undo()
    assert ledger.apply(fill(intent, "e1", "4", "100", "4", vid="v1")).result == "applied"
    assert (count(migrated, Fill), count(migrated, PositionRow)) == (1, 1)


def test_apply_when_report_unknown_or_illegal_then_nothing_written(migrated: Engine) -> None:
    ledger = OrderLedger(migrated)
    intent = order("c1")
    ledger.record_intent(intent)
    stray = fill(order("zz"), "e1", "1", "100", "1", vid="v9")
    assert (ledger.apply(stray).result, ledger.apply(stray).reason) == ("refused", "unknown_order")
    overfill = ledger.apply(fill(intent, "e2", "11", "100", "11", vid="v1"))
    assert (overfill.result, overfill.reason, overfill.order) == ("refused", "overfill", intent)
    assert (count(migrated, Fill), count(migrated, PositionRow)) == (0, 0)
    assert ledger.order("c1") == intent


def test_apply_when_replaced_then_new_id_stored_and_old_id_fills_still_match(
    migrated: Engine,
) -> None:
    ledger = OrderLedger(migrated)
    intent = order("c1")
    ledger.record_intent(intent)
    ledger.apply(accepted(intent, "v1"))
    replace = OrderReplaced(
        ts_event=T0 + 3,
        venue="sim",
        account="acc",
        client_order_id="c2",
        orig_client_order_id="c1",
        venue_order_id="v1",
        symbol="AAPL",
        qty=D(6),
        price=D("99.5"),
        leaves_qty=D(6),
        priority_kept=False,
    )
    assert ledger.apply(replace).result == "applied"
    assert ledger.apply(replace).result == "ignored"
    assert ledger.order("c1") is None
    late = ledger.apply(fill(intent, "e1", "6", "99.5", "6", vid="v1"))  # names c1
    assert late.result == "applied"
    after = ledger.order("c2")
    assert after is not None
    assert (after.qty, after.price, after.status, after.exec_ids) == (
        6,
        D("99.5"),
        "filled",
        {"e1"},
    )


def test_ledger_when_restarted_then_same_open_orders_and_positions(migrated: Engine) -> None:
    ledger = OrderLedger(migrated)
    buy, sell, other = order("b1"), order("s1", "7", side="sell"), order("m1", symbol="MSFT")
    for state, vid in ((buy, "v1"), (sell, "v2"), (other, "v3")):
        ledger.record_intent(state)
        ledger.apply(accepted(state, vid))
    ledger.apply(fill(buy, "e1", "3", "100.01", "3", vid="v1"))
    ledger.apply(fill(buy, "e2", "2", "100.04", "5", vid="v1"))
    ledger.apply(fill(sell, "e3", "7", "101", "7", vid="v2"))  # long 5, sells 7: short 2
    ledger.apply(fill(other, "e4", "1", "50", "1", vid="v3"))
    ledger.apply(
        OrderCancelled(
            ts_event=T0 + 9,
            venue="sim",
            account="acc",
            client_order_id="m1",
            venue_order_id="v3",
            symbol="MSFT",
            cancelled_qty=D(9),
            cum_qty=D(1),
            reason="requested",
        )
    )
    before_orders, before_positions = ledger.open_orders(), ledger.positions()

    restarted = OrderLedger(migrated)

    assert restarted.open_orders() == before_orders
    assert [o.client_order_id for o in before_orders] == ["b1"]
    (b1,) = before_orders
    assert (b1.filled_qty, b1.avg_price, b1.notional, b1.exec_ids) == (
        5,
        D("100.022"),
        D("500.11"),
        {"e1", "e2"},
    )
    assert [stored(p) for p in restarted.positions()] == [
        (D(-2), D(101), D("4.89")),
        (D(1), D(50), D(0)),
    ]
    assert [stored(p) for p in restarted.positions()] == [stored(p) for p in before_positions]
    assert restarted.positions(account="nobody") == []
    assert restarted.open_orders(account="acc") == before_orders


def test_apply_plan_when_applied_twice_then_same_as_once(migrated: Engine) -> None:
    ledger = OrderLedger(migrated)
    pending, partial, lost = order("p1"), order("f1"), order("l1")
    for state in (pending, partial, lost):
        ledger.record_intent(state)
    ledger.apply(accepted(partial, "v2"))
    ledger.apply(accepted(lost, "v3"))
    ledger.apply(fill(partial, "e1", "4", "100", "4", vid="v2"))
    venue_fills = [
        fill(partial, "e1", "4", "100", "4", vid="v2"),
        fill(partial, "e2", "6", "101", "10", vid="v2"),
    ]
    answer = [
        OrderStatus(
            account="acc",
            client_order_id="p1",
            venue_order_id="v1",
            symbol="AAPL",
            side="buy",
            order_type="limit",
            tif="day",
            qty=D(10),
            price=D(100),
            cum_qty=D(2),
            leaves_qty=D(8),
            status="partially_filled",
            fills=[fill(pending, "e0", "2", "99", "2", vid="v1")],
        ),
        OrderStatus(
            account="acc",
            client_order_id="f1",
            venue_order_id="v2",
            symbol="AAPL",
            side="buy",
            order_type="limit",
            tif="day",
            qty=D(10),
            price=D(100),
            cum_qty=D(10),
            leaves_qty=D(0),
            status="filled",
            fills=venue_fills,
        ),
        OrderStatus(
            account="acc",
            client_order_id="l1",
            venue_order_id="",
            symbol="AAPL",
            side="buy",
            order_type="limit",
            tif="day",
            qty=D(10),
            price=D(100),
            cum_qty=D(0),
            leaves_qty=D(0),
            status="unknown",
        ),
    ]
    plan = reconcile(ledger.open_orders(), answer, ts=T0 + 50, venue="sim")
    assert [f.exec_id for f in plan.fills] == ["e0", "e2"]

    once = ledger.apply_plan(plan)
    snapshot = (
        ledger.open_orders(),
        [stored(p) for p in ledger.positions()],
        count(migrated, Fill),
    )
    twice = ledger.apply_plan(plan)

    assert [r.result for r in once] == ["applied"] * len(plan.reports())
    assert [r.result for r in twice] == ["ignored"] * len(plan.reports())
    assert all(r.position_changed is None for r in twice)
    assert (
        ledger.open_orders(),
        [stored(p) for p in ledger.positions()],
        count(migrated, Fill),
    ) == snapshot
    assert [(o.client_order_id, o.status) for o in ledger.open_orders()] == [
        ("p1", "partially_filled")
    ]
    assert (ledger.order("f1").status, ledger.order("l1").status) == ("filled", "expired")  # type: ignore[union-attr]
    assert stored(ledger.position("acc", "AAPL")) == (12, D("100.3333333333"), 0)
    assert reconcile(ledger.open_orders(), answer, ts=T0 + 60).reports() == []


def test_ledger_when_restarted_after_replace_then_old_id_still_finds_the_order(
    migrated: Engine,
) -> None:
    ledger = OrderLedger(migrated)
    intent = order("c1")
    ledger.record_intent(intent)
    ledger.apply(accepted(intent, "v1"))
    replace = OrderReplaced(
        ts_event=T0 + 3,
        venue="sim",
        account="acc",
        client_order_id="c1-r1",
        orig_client_order_id="c1",
        venue_order_id="v1",
        symbol="AAPL",
        qty=D(8),
        price=D("99.5"),
        leaves_qty=D(8),
        priority_kept=False,
    )
    ledger.apply(replace)

    restarted = OrderLedger(migrated)

    (current,) = restarted.open_orders()
    assert (current.client_order_id, current.orig_client_order_id) == ("c1-r1", "c1")
    assert restarted.find_order("c1") == current == restarted.find_order("c1-r1")
    assert restarted.order("c1") is None and restarted.find_order("zz") is None
    assert restarted.apply(replace).result == "ignored"  # the link survived the restart
    refused_cancel = OrderRejected(
        ts_event=T0 + 4,
        venue="sim",
        account="acc",
        client_order_id="c1-c1",
        symbol="AAPL",
        request="cancel",
        orig_client_order_id="c1",  # sent before the replace was known
        reason="unknown_order",
    )
    assert (restarted.apply(refused_cancel).result, restarted.apply(refused_cancel).reason) == (
        "ignored",
        "request_rejected",
    )
    old_name = fill(intent, "e1", "2", "99.5", "2", vid="")  # names c1, no venue id
    assert restarted.apply(old_name).result == "applied"
    assert restarted.exec_ids("c1-r1") == {"e1"}
    assert [o.client_order_id for o in restarted.orders()] == ["c1-r1"]
    assert restarted.orders(open_only=True, account="nobody") == []


def test_ledger_when_restarted_then_positions_keep_their_exact_cost_basis(
    migrated: Engine,
) -> None:
    ledger = OrderLedger(migrated)
    buy, sell = order("b1", "3"), order("s1", "3", side="sell")
    for state, vid in ((buy, "v1"), (sell, "v2")):
        ledger.record_intent(state)
        ledger.apply(accepted(state, vid))
    ledger.apply(fill(buy, "e1", "1", "100", "1", vid="v1"))
    ledger.apply(fill(buy, "e2", "2", "100.01", "3", vid="v1"))

    restarted = OrderLedger(migrated)  # no exact cost in memory: only the stored row

    position = restarted.position("acc", "AAPL")
    assert (position.qty, position.cost, position.avg_price) == (
        3,
        D("300.02"),
        D("100.0066666667"),
    )
    assert position.unrealized(D(101)) == D("2.98")  # avg * qty would give 2.9799999999
    closed = restarted.apply(fill(sell, "e3", "3", "101", "3", vid="v2"))
    assert closed.position_changed is not None
    assert closed.position_changed.realized_pnl == D("2.98")
    assert stored(OrderLedger(migrated).position("acc", "AAPL")) == (0, 0, D("2.98"))


def test_ledger_when_position_row_predates_cost_basis_then_restored_from_avg_price(
    migrated: Engine,
) -> None:
    ledger = OrderLedger(migrated)
    buy = order("b1", "3")
    ledger.record_intent(buy)
    ledger.apply(accepted(buy, "v1"))
    ledger.apply(fill(buy, "e1", "3", "100.5", "3", vid="v1"))
    with migrated.begin() as conn:  # as migration 0003 leaves an older row
        conn.execute(PositionRow.__table__.update().values(cost_basis=D(0)))  # type: ignore[attr-defined]

    position = OrderLedger(migrated).position("acc", "AAPL")

    assert (position.qty, position.cost, position.avg_price) == (3, D("301.5"), D("100.5"))

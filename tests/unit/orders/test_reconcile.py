"""Reconciliation plans: missing fills once, closes the venue reports, unknown orders."""

from __future__ import annotations

from decimal import Decimal

from engine.bus.events import (
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
)
from engine.orders.lifecycle import OrderState, apply_report, new_order
from engine.orders.reconcile import ReconcilePlan, reconcile
from engine.venue.protocol import OrderStatus

T0 = 1_700_000_000 * 1_000_000_000
D = Decimal


def order(cid: str = "c1", qty: str = "10") -> OrderState:
    return new_order(cid, account="acc", symbol="AAPL", side="buy", qty=D(qty), price=D(100), ts=T0)


def fill(exec_id: str, qty: str, cum: str, *, cid: str = "c1", vid: str = "v1") -> OrderFilled:
    return OrderFilled(
        ts_event=T0 + 5,
        venue="sim",
        account="acc",
        client_order_id=cid,
        venue_order_id=vid,
        symbol="AAPL",
        side="buy",
        exec_id=exec_id,
        trade_id="t" + exec_id,
        qty=D(qty),
        price=D(100),
        liquidity="maker",
        leaves_qty=D(10) - D(cum),
        cum_qty=D(cum),
    )


def accepted(state: OrderState, vid: str = "v1") -> OrderState:
    report = OrderAccepted(
        ts_event=T0 + 1,
        venue="sim",
        account="acc",
        client_order_id=state.client_order_id,
        venue_order_id=vid,
        symbol="AAPL",
        side="buy",
        order_type="limit",
        tif="day",
        qty=state.qty,
        price=state.price,
    )
    return apply_report(state, report).state


def status(
    state: str, fills: list[OrderFilled], *, cid: str = "c1", vid: str = "v1", qty: str = "10"
) -> OrderStatus:
    cum = sum((f.qty for f in fills), D(0))
    return OrderStatus(
        account="acc",
        client_order_id=cid,
        venue_order_id=vid,
        symbol="AAPL",
        side="buy",
        order_type="limit",
        tif="day",
        qty=D(qty),
        price=D(100),
        cum_qty=cum,
        leaves_qty=D(0) if state in ("filled", "cancelled") else D(qty) - cum,
        status=state,
        fills=fills,
    )


def applied(states: list[OrderState], plan: ReconcilePlan) -> dict[str, OrderState]:
    """Apply the plan to the states as the ledger would (match by id or venue id)."""
    current = list(states)
    for report in plan.reports():
        for i, state in enumerate(current):
            transition = apply_report(state, report)
            if transition.result != "refused":
                current[i] = transition.state
                break
    return {s.client_order_id: s for s in current}


def test_reconcile_when_both_agree_then_plan_empty() -> None:
    state = apply_report(accepted(order()), fill("e1", "4", "4")).state
    plan = reconcile([state], [status("partially_filled", [fill("e1", "4", "4")])], ts=T0 + 9)
    assert plan.is_empty and plan == ReconcilePlan()


def test_reconcile_when_fills_missing_then_each_planned_once() -> None:
    state = apply_report(accepted(order()), fill("e1", "4", "4")).state
    venue_fills = [fill("e1", "4", "4"), fill("e2", "3", "7"), fill("e3", "3", "10")]
    # the venue lists the order twice: its fills are still planned once
    answer = [status("filled", venue_fills), status("filled", venue_fills)]
    plan = reconcile([state], answer, ts=T0 + 9)
    assert [f.exec_id for f in plan.fills] == ["e2", "e3"]
    assert (plan.accepts, plan.closes, plan.unknown_orders, plan.discrepancies) == ((), (), (), ())
    assert applied([state], plan)["c1"].status == "filled"


def test_reconcile_when_venue_cancelled_then_close_planned() -> None:
    state = accepted(order())
    plan = reconcile([state], [status("cancelled", [fill("e1", "2", "2")])], ts=T0 + 9)
    assert [f.exec_id for f in plan.fills] == ["e1"]
    (close,) = plan.closes
    assert isinstance(close, OrderCancelled)
    assert (close.reason, close.cum_qty, close.cancelled_qty, close.ts_event) == (
        "reconciled",
        2,
        8,
        T0 + 9,
    )
    after = applied([state], plan)["c1"]
    assert (after.status, after.filled_qty) == ("cancelled", 2)


def test_reconcile_when_pending_new_at_venue_then_accept_planned() -> None:
    plan = reconcile([order()], [status("partially_filled", [fill("e1", "1", "1")])], ts=T0 + 9)
    (accept,) = plan.accepts
    assert (accept.venue_order_id, accept.venue) == ("v1", "sim")
    assert [f.exec_id for f in plan.fills] == ["e1"]
    assert applied([order()], plan)["c1"].status == "partially_filled"


def test_reconcile_when_unknown_at_venue_then_pending_rejected_and_live_expired() -> None:
    pending, live = order("c1"), accepted(order("c2"), vid="v2")
    answer = [status("unknown", [], cid="c1", vid=""), status("unknown", [], cid="c2", vid="")]
    plan = reconcile([pending, live], answer, ts=T0 + 9, venue="sim")
    rejected, expired = plan.closes
    assert isinstance(rejected, OrderRejected) and rejected.reason == "unknown_at_venue"
    assert isinstance(expired, OrderCancelled) and expired.reason == "unknown_at_venue"
    after = applied([pending, live], plan)
    assert (after["c1"].status, after["c1"].reject_reason) == ("rejected", "unknown_at_venue")
    assert (after["c2"].status, after["c2"].reject_reason) == ("expired", "unknown_at_venue")


def test_reconcile_when_order_absent_from_answer_then_treated_as_unknown() -> None:
    plan = reconcile([accepted(order())], [], ts=T0 + 9)
    assert [c.reason for c in plan.closes] == ["unknown_at_venue"]


def test_reconcile_when_venue_has_order_oms_does_not_then_flagged_only() -> None:
    stranger = status("accepted", [], cid="zz", vid="v9")
    plan = reconcile([], [stranger], ts=T0 + 9)
    assert plan.unknown_orders == (stranger,) and plan.reports() == []


def test_reconcile_when_replace_missed_then_replace_planned_by_venue_id() -> None:
    state = apply_report(accepted(order()), fill("e1", "2", "2")).state
    venue_fills = [fill("e1", "2", "2"), fill("e2", "1", "3", cid="c2")]
    plan = reconcile(
        [state], [status("partially_filled", venue_fills, cid="c2", qty="8")], ts=T0 + 9
    )
    (replace,) = plan.replaces
    assert isinstance(replace, OrderReplaced)
    assert (replace.orig_client_order_id, replace.client_order_id, replace.qty) == ("c1", "c2", 8)
    assert [f.exec_id for f in plan.fills] == ["e2"]
    after = applied([state], plan)["c2"]
    assert (after.qty, after.filled_qty, after.orig_client_order_id) == (8, 3, "c1")
    assert not plan.unknown_orders and not plan.closes


def test_reconcile_when_fills_do_not_add_up_then_discrepancy() -> None:
    state = accepted(order())
    plan = reconcile([state], [status("filled", [fill("e1", "4", "4")])], ts=T0 + 9)
    assert [(d.client_order_id, d.reason) for d in plan.discrepancies] == [("c1", "fills_missing")]


def test_reconcile_when_venue_fill_overfills_then_refused_and_flagged() -> None:
    state = accepted(order(qty="5"))
    plan = reconcile(
        [state], [status("partially_filled", [fill("e1", "6", "6")], qty="5")], ts=T0 + 9
    )
    assert plan.fills == ()
    assert "overfill" in [d.reason for d in plan.discrepancies]


def test_reconcile_when_plan_applied_then_second_plan_empty_and_reapply_is_noop() -> None:
    pending, live = (
        order("c1"),
        apply_report(
            accepted(order("c2"), vid="v2"), fill("a", "1", "1", cid="c2", vid="v2")
        ).state,
    )
    gone = accepted(order("c3"), vid="v3")
    answer = [
        status("partially_filled", [fill("x", "2", "2")], cid="c1", vid="v1"),
        status(
            "filled",
            [fill("a", "1", "1", cid="c2", vid="v2"), fill("b", "9", "10", cid="c2", vid="v2")],
            cid="c2",
            vid="v2",
        ),
        status("unknown", [], cid="c3", vid=""),
    ]
    states = [pending, live, gone]
    plan = reconcile(states, answer, ts=T0 + 9)
    once = applied(states, plan)
    twice = applied(list(once.values()), plan)
    assert once == twice
    assert [s.status for s in once.values()] == ["partially_filled", "filled", "expired"]
    assert reconcile(list(once.values()), answer, ts=T0 + 10).is_empty

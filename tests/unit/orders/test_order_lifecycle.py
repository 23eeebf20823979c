"""The order state machine: every execution report, legal or not, duplicated or not."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.bus.events import (
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderType,
)
from engine.orders.lifecycle import (
    OrderState,
    Transition,
    apply_report,
    new_order,
    order_from_request,
)

T0 = 1_700_000_000 * 1_000_000_000
D = Decimal


def order(qty: str = "10", price: str | None = "100", **kw: object) -> OrderState:
    fields = {"account": "acc", "symbol": "AAPL", "side": "buy", "ts": T0} | kw
    order_type: OrderType = "limit" if price is not None else "market"
    return new_order(
        "c1",
        qty=D(qty),
        price=None if price is None else D(price),
        order_type=order_type,
        **fields,  # type: ignore[arg-type]
    )


def accepted(cid: str = "c1", vid: str = "v1", **kw: object) -> OrderAccepted:
    fields = {
        "venue": "sim",
        "account": "acc",
        "symbol": "AAPL",
        "side": "buy",
        "order_type": "limit",
        "tif": "day",
        "qty": D(10),
        "price": D(100),
    } | kw
    return OrderAccepted(ts_event=T0 + 1, client_order_id=cid, venue_order_id=vid, **fields)  # type: ignore[arg-type]


def filled(
    exec_id: str, qty: str, price: str, cum: str, *, cid: str = "c1", **kw: object
) -> OrderFilled:
    fields = {
        "venue": "sim",
        "account": "acc",
        "symbol": "AAPL",
        "side": "buy",
        "venue_order_id": "v1",
        "liquidity": "maker",
        "trade_id": "t-" + exec_id,
        "leaves_qty": D(10) - D(cum),
    } | kw
    return OrderFilled(
        ts_event=T0 + 2,
        client_order_id=cid,
        exec_id=exec_id,
        qty=D(qty),
        price=D(price),
        cum_qty=D(cum),
        **fields,  # type: ignore[arg-type]
    )


def cancelled(reason: str = "requested", cum: str = "0", cid: str = "c1") -> OrderCancelled:
    return OrderCancelled(
        ts_event=T0 + 3,
        venue="sim",
        account="acc",
        client_order_id=cid,
        venue_order_id="v1",
        symbol="AAPL",
        cancelled_qty=D(10) - D(cum),
        cum_qty=D(cum),
        reason=reason,
    )


def rejected(reason: str = "price_off_tick", request: str = "new", **kw: object) -> OrderRejected:
    fields = {"client_order_id": "c1"} | kw
    return OrderRejected(
        ts_event=T0 + 1,
        venue="sim",
        account="acc",
        symbol="AAPL",
        request=request,  # type: ignore[arg-type]
        reason=reason,
        **fields,  # type: ignore[arg-type]
    )


def replaced(
    new: str = "c2", orig: str = "c1", qty: str = "8", price: str | None = "101"
) -> OrderReplaced:
    return OrderReplaced(
        ts_event=T0 + 4,
        venue="sim",
        account="acc",
        client_order_id=new,
        orig_client_order_id=orig,
        venue_order_id="v1",
        symbol="AAPL",
        qty=D(qty),
        price=None if price is None else D(price),
        leaves_qty=D(qty),
        priority_kept=False,
    )


def run(state: OrderState, *reports: object) -> Transition:
    transition = Transition(state, "applied")
    for report in reports:
        transition = apply_report(transition.state, report)  # type: ignore[arg-type]
    return transition


def live() -> OrderState:
    return run(order(), accepted()).state


# -- construction ----------------------------------------------------------------------


def test_new_order_when_built_then_pending_new_and_round_trips_to_request() -> None:
    state = order()
    assert (state.status, state.filled_qty, state.avg_price, state.exec_ids) == (
        "pending_new",
        0,
        None,
        frozenset(),
    )
    assert state.is_open and state.leaves_qty == 10
    assert order_from_request(state.to_request(), ts=T0) == state


@pytest.mark.parametrize(
    ("qty", "price", "order_type"),
    [("0", "1", "limit"), ("-1", "1", "limit"), ("1", None, "limit"), ("1", "1", "market")],
)
def test_new_order_when_shape_invalid_then_value_error(
    qty: str, price: str | None, order_type: OrderType
) -> None:
    with pytest.raises(ValueError):
        new_order(
            "c1",
            account="a",
            symbol="S",
            side="buy",
            qty=D(qty),
            price=None if price is None else D(price),
            order_type=order_type,
            ts=T0,
        )


# -- accepted / rejected -------------------------------------------------------------------


def test_apply_accepted_when_pending_new_then_accepted_with_venue_id() -> None:
    t = apply_report(order(), accepted())
    assert t.applied and t.state.status == "accepted"
    assert (t.state.venue_order_id, t.state.ts_updated) == ("v1", T0 + 1)


def test_apply_accepted_when_repeated_then_ignored() -> None:
    t = apply_report(live(), accepted())
    assert (t.result, t.reason, t.state) == ("ignored", "duplicate_report", live())


def test_apply_accepted_when_other_venue_id_after_accept_then_refused() -> None:
    t = apply_report(live(), accepted(vid="v9"))
    assert (t.result, t.reason, t.state) == ("refused", "illegal_transition", live())


def test_apply_accepted_when_other_order_or_details_then_refused() -> None:
    assert apply_report(order(), accepted(cid="c9")).reason == "wrong_order"
    assert apply_report(order(), accepted(side="sell")).reason == "mismatch"
    assert apply_report(order(), accepted(symbol="MSFT")).reason == "mismatch"


def test_apply_rejected_when_pending_new_then_rejected_with_reason() -> None:
    t = apply_report(order(), rejected())
    assert (t.result, t.state.status, t.state.reject_reason) == (
        "applied",
        "rejected",
        "price_off_tick",
    )
    assert not t.state.is_open and t.state.leaves_qty == 0
    assert apply_report(t.state, rejected()).result == "ignored"


def test_apply_rejected_when_duplicate_client_order_id_then_ignored_as_resend() -> None:
    for state in (order(), live()):
        t = apply_report(state, rejected("duplicate_client_order_id"))
        assert (t.result, t.state) == ("ignored", state)


def test_apply_rejected_when_cancel_request_refused_then_order_unchanged() -> None:
    state = live()
    t = apply_report(
        state, rejected("unknown_order", "cancel", client_order_id="x1", orig_client_order_id="c1")
    )
    assert (t.result, t.reason, t.state) == ("ignored", "request_rejected", state)
    other = rejected("too_late", "replace", client_order_id="x1", orig_client_order_id="c9")
    assert apply_report(state, other).result == "refused"


def test_apply_rejected_when_new_order_already_accepted_then_refused() -> None:
    t = apply_report(live(), rejected())
    assert (t.result, t.reason, t.state.status) == ("refused", "illegal_transition", "accepted")


# -- fills -------------------------------------------------------------------------------


def test_apply_fill_when_partial_then_cum_and_vwap() -> None:
    t = run(live(), filled("e1", "4", "100", "4"), filled("e2", "3", "101.5", "7"))
    state = t.state
    assert (state.status, state.filled_qty, state.leaves_qty) == ("partially_filled", 7, 3)
    assert state.avg_price == D("100.6428571429")
    assert state.notional == D("704.5") and state.exec_ids == {"e1", "e2"}


def test_apply_fill_when_cum_reaches_qty_then_filled() -> None:
    t = run(live(), filled("e1", "4", "100", "4"), filled("e2", "6", "99", "10"))
    assert (t.applied, t.reason, t.state.status, t.state.avg_price) == (
        True,
        "",
        "filled",
        D("99.4"),
    )
    assert not t.state.is_open


def test_apply_fill_when_exec_id_seen_then_ignored() -> None:
    once = run(live(), filled("e1", "4", "100", "4")).state
    t = apply_report(once, filled("e1", "4", "100", "4"))
    assert (t.result, t.reason, t.state) == ("ignored", "duplicate_exec_id", once)


def test_apply_fill_when_overfill_then_refused_and_state_kept() -> None:
    once = run(live(), filled("e1", "8", "100", "8")).state
    t = apply_report(once, filled("e2", "3", "100", "11"))
    assert (t.result, t.reason, t.state) == ("refused", "overfill", once)
    done = run(once, filled("e3", "2", "100", "10")).state
    assert apply_report(done, filled("e4", "1", "100", "11")).reason == "overfill"


def test_apply_fill_when_pending_new_then_taken_and_venue_id_set() -> None:
    t = apply_report(order(), filled("e1", "10", "100", "10"))
    assert (t.state.status, t.state.venue_order_id) == ("filled", "v1")


def test_apply_fill_when_rejected_or_foreign_then_refused() -> None:
    gone = run(order(), rejected()).state
    assert apply_report(gone, filled("e1", "1", "100", "1")).reason == "illegal_transition"
    state = live()
    assert (
        apply_report(state, filled("e1", "1", "100", "1", cid="c9", venue_order_id="v9")).reason
        == "wrong_order"
    )
    assert apply_report(state, filled("e1", "1", "100", "1", side="sell")).reason == "mismatch"
    assert apply_report(state, filled("e1", "0", "100", "0")).reason == "invalid_qty"


def test_apply_fill_when_cum_differs_then_applied_with_hint() -> None:
    t = apply_report(live(), filled("e2", "3", "100", "7"))
    assert (t.result, t.reason, t.state.filled_qty) == ("applied", "cum_qty_mismatch", 3)


def test_apply_fill_when_cancelled_then_late_fill_keeps_status() -> None:
    state = run(live(), cancelled(cum="2")).state
    t = apply_report(state, filled("e1", "2", "100", "2"))
    assert (t.result, t.reason, t.state.status, t.state.filled_qty) == (
        "applied",
        "late_fill",
        "cancelled",
        2,
    )


# -- cancel / expiry -----------------------------------------------------------------------


def test_apply_cancelled_when_open_then_cancelled_with_reason() -> None:
    state = run(live(), filled("e1", "4", "100", "4")).state
    t = apply_report(state, cancelled(cum="4"))
    assert (t.result, t.reason, t.state.status, t.state.reject_reason) == (
        "applied",
        "",
        "cancelled",
        "requested",
    )
    assert t.state.filled_qty == 4 and t.state.leaves_qty == 0
    assert apply_report(t.state, cancelled(cum="4")).result == "ignored"


@pytest.mark.parametrize("reason", ["expired", "unknown_at_venue"])
def test_apply_cancelled_when_expiry_reason_then_expired(reason: str) -> None:
    t = apply_report(live(), cancelled(reason))
    assert (t.state.status, t.state.reject_reason) == ("expired", reason)


def test_apply_cancelled_when_filled_then_refused() -> None:
    done = run(live(), filled("e1", "10", "100", "10")).state
    t = apply_report(done, cancelled(cum="10"))
    assert (t.result, t.reason, t.state) == ("refused", "illegal_transition", done)


def test_apply_cancelled_when_fills_missing_then_applied_with_hint() -> None:
    assert apply_report(live(), cancelled(cum="3")).reason == "fills_missing"


# -- replace -----------------------------------------------------------------------------


def test_apply_replaced_when_open_then_new_id_linked_to_orig() -> None:
    state = run(live(), filled("e1", "2", "100", "2")).state
    t = apply_report(state, replaced())
    new = t.state
    assert t.applied
    assert (new.client_order_id, new.orig_client_order_id, new.venue_order_id) == ("c2", "c1", "v1")
    assert (new.qty, new.price, new.status, new.filled_qty) == (8, 101, "partially_filled", 2)
    assert apply_report(new, replaced()).result == "ignored"


def test_apply_replaced_when_reports_name_old_or_venue_id_then_still_matched() -> None:
    new = run(live(), replaced()).state
    t = apply_report(new, filled("e1", "1", "101", "1", cid="c1"))
    assert t.applied and t.state.filled_qty == 1
    assert apply_report(t.state, filled("e2", "1", "101", "2", cid="zz")).applied  # by venue id
    assert apply_report(new, cancelled(cid="c2")).state.status == "cancelled"


def test_apply_replaced_when_qty_equals_filled_then_filled() -> None:
    state = run(live(), filled("e1", "2", "100", "2")).state
    assert apply_report(state, replaced(qty="2")).state.status == "filled"


def test_apply_replaced_when_below_filled_or_closed_or_stale_then_refused() -> None:
    state = run(live(), filled("e1", "5", "100", "5")).state
    assert apply_report(state, replaced(qty="4")).reason == "overfill"
    gone = run(live(), cancelled()).state
    assert apply_report(gone, replaced()).reason == "illegal_transition"
    assert apply_report(live(), replaced(new="c3", orig="c9")).reason == "wrong_order"


def test_apply_replaced_when_price_none_then_keeps_price() -> None:
    assert apply_report(live(), replaced(price=None)).state.price == 100


def test_apply_report_when_refused_or_ignored_then_state_identical() -> None:
    """No illegal or duplicate report may corrupt state: replay garbage at every stage."""
    noise = [
        accepted(vid="v9"),
        rejected(),
        filled("e1", "1", "100", "1"),
        cancelled(),
        replaced(new="c3", orig="c9"),
        filled("e9", "99", "100", "99"),
    ]
    stages = [live()]
    stages.append(run(stages[-1], filled("e1", "1", "100", "1")).state)
    stages.append(run(stages[-1], cancelled(cum="1")).state)
    for state in stages:
        for report in noise:
            t = apply_report(state, report)  # type: ignore[arg-type]
            if not t.applied:
                assert t.state is state


def test_apply_fill_when_many_small_fills_then_avg_does_not_drift() -> None:
    state = new_order(
        "c1", account="acc", symbol="AAPL", side="buy", qty=D(3000), price=D(1), ts=T0
    )
    reports = [
        filled(f"e{i}", "1", ("100.01", "100.02", "100.03")[i % 3], str(i + 1)) for i in range(3000)
    ]
    state = run(state, *reports).state
    assert (state.status, state.avg_price, state.notional) == ("filled", D("100.02"), D("300060"))

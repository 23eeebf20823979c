"""The matching core: priority, order types, replaces, self-match, validation, L2, restore."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TypeVar

import pytest

from engine.bus.events import (
    BookUpdated,
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    TradePrinted,
)
from engine.errors import ConfigError
from engine.venue.book import OrderBook
from engine.venue.instrument import DecimalCache, InstrumentSpec, Reason
from engine.venue.levels import OrderState
from engine.venue.protocol import OrderStatus

SPEC = InstrumentSpec("AAPL", Decimal("0.01"), Decimal("1"))
TS = 1_700_000_000_000_000_000
E = TypeVar("E", bound=Event)


def D(text: str) -> Decimal:
    return Decimal(text)


def only(events: list[Event], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def kinds(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


def rest(book: OrderBook, coid: str, side: str, qty: int, price: int, account: str = "mm") -> str:
    """A resting limit order; returns its venue_order_id."""
    events = book.submit(account, coid, side, qty, price, ts=TS)  # type: ignore[arg-type]
    assert kinds(events) == ["OrderAccepted"], events
    return only(events, OrderAccepted)[0].venue_order_id


def fills_of(events: list[Event], liquidity: str) -> list[tuple[str, Decimal, Decimal]]:
    """(client_order_id, qty, price) of the fills with that liquidity, in order."""
    return [
        (f.client_order_id, f.qty, f.price)
        for f in only(events, OrderFilled)
        if f.liquidity == liquidity
    ]


def rejection(events: list[Event]) -> OrderRejected:
    assert len(events) == 1 and isinstance(events[0], OrderRejected), events
    return events[0]


@pytest.fixture
def book() -> OrderBook:
    return OrderBook(SPEC)


# --- new orders and priority -------------------------------------------------------------


def test_submit_when_limit_does_not_cross_then_accepted_and_rests(book: OrderBook) -> None:
    events = book.submit("acct", "c1", "buy", 5, 10000, tif="gtc", ts=TS)

    assert events == [
        OrderAccepted(
            ts_event=TS,
            venue="SIM",
            account="acct",
            client_order_id="c1",
            venue_order_id="AAPL-O1",
            symbol="AAPL",
            side="buy",
            order_type="limit",
            tif="gtc",
            qty=D("5"),
            price=D("100.00"),
        )
    ]
    assert book.depth() == ([(D("100.00"), D("5"))], [])
    assert book.best_bid() == 10000 and book.best_bid_price() == D("100.00")
    assert book.best_ask() is None and book.best_ask_price() is None


def test_submit_when_same_price_then_earliest_order_fills_first(book: OrderBook) -> None:
    rest(book, "s1", "sell", 5, 10000)
    rest(book, "s2", "sell", 5, 10000)

    events = book.submit("taker", "b1", "buy", 7, 10000, ts=TS)

    assert fills_of(events, "maker") == [("s1", D("5"), D("100.00")), ("s2", D("2"), D("100.00"))]
    assert book.depth() == ([], [(D("100.00"), D("3"))])


def test_submit_when_better_price_arrives_later_then_it_fills_first(book: OrderBook) -> None:
    rest(book, "s1", "sell", 5, 10001)
    rest(book, "s2", "sell", 5, 10000)

    events = book.submit("taker", "b1", "buy", 5, 10001, ts=TS)

    assert fills_of(events, "maker") == [("s2", D("5"), D("100.00"))]


def test_submit_when_partially_filled_then_both_sides_report_leaves_and_cum(
    book: OrderBook,
) -> None:
    rest(book, "s1", "sell", 10, 10000)

    events = book.submit("taker", "b1", "buy", 4, 10000, ts=TS)

    assert kinds(events) == ["OrderAccepted", "OrderFilled", "OrderFilled", "TradePrinted"]
    taker, maker = only(events, OrderFilled)
    assert (taker.liquidity, taker.side, taker.leaves_qty, taker.cum_qty) == (
        "taker",
        "buy",
        D("0"),
        D("4"),
    )
    assert (maker.liquidity, maker.side, maker.leaves_qty, maker.cum_qty) == (
        "maker",
        "sell",
        D("6"),
        D("4"),
    )
    assert taker.trade_id == maker.trade_id == "AAPL-T1"
    assert (taker.exec_id, maker.exec_id) == ("AAPL-T1-t", "AAPL-T1-m")
    print_ = only(events, TradePrinted)[0]
    assert (print_.trade_id, print_.qty, print_.price, print_.aggressor) == (
        "AAPL-T1",
        D("4"),
        D("100.00"),
        "buy",
    )
    state = book.order("mm", "s1")
    assert state is not None
    assert (state.status, state.cum_qty, state.leaves_qty) == ("partially_filled", 4, 6)
    taker_state = book.order("taker", "b1")
    assert taker_state is not None and taker_state.status == "filled"


def test_submit_when_sweeping_levels_then_fills_each_at_its_price(book: OrderBook) -> None:
    rest(book, "s1", "sell", 5, 10000)
    rest(book, "s2", "sell", 5, 10001)
    rest(book, "s3", "sell", 5, 10002)

    events = book.submit("taker", "b1", "buy", 12, 10002, ts=TS)

    prints = only(events, TradePrinted)
    assert [(p.price, p.qty) for p in prints] == [
        (D("100.00"), D("5")),
        (D("100.01"), D("5")),
        (D("100.02"), D("2")),
    ]
    assert [p.trade_id for p in prints] == ["AAPL-T1", "AAPL-T2", "AAPL-T3"]
    assert [f.cum_qty for f in only(events, OrderFilled) if f.liquidity == "taker"] == [
        D("5"),
        D("10"),
        D("12"),
    ]
    assert book.depth() == ([], [(D("100.02"), D("3"))])


def test_submit_when_limit_reached_then_remainder_rests_at_limit(book: OrderBook) -> None:
    rest(book, "s1", "sell", 5, 10000)
    rest(book, "s2", "sell", 5, 10002)

    events = book.submit("taker", "b1", "buy", 8, 10001, ts=TS)

    assert [p.qty for p in only(events, TradePrinted)] == [D("5")]
    assert book.depth() == ([(D("100.01"), D("3"))], [(D("100.02"), D("5"))])


def test_submit_when_sell_sweeps_bids_then_best_bid_first(book: OrderBook) -> None:
    rest(book, "b1", "buy", 5, 9998)
    rest(book, "b2", "buy", 5, 10000)
    rest(book, "b3", "buy", 5, 9999)

    events = book.submit("taker", "s1", "sell", 11, 9998, ts=TS)

    assert fills_of(events, "maker") == [
        ("b2", D("5"), D("100.00")),
        ("b3", D("5"), D("99.99")),
        ("b1", D("1"), D("99.98")),
    ]
    assert all(p.aggressor == "sell" for p in only(events, TradePrinted))


# --- IOC, FOK, market ---------------------------------------------------------------------


def test_submit_when_ioc_partially_fills_then_remainder_cancelled(book: OrderBook) -> None:
    rest(book, "s1", "sell", 3, 10000)

    events = book.submit("taker", "b1", "buy", 5, 10000, tif="ioc", ts=TS)

    assert kinds(events) == [
        "OrderAccepted",
        "OrderFilled",
        "OrderFilled",
        "TradePrinted",
        "OrderCancelled",
    ]
    cancel = only(events, OrderCancelled)[0]
    assert (cancel.reason, cancel.cancelled_qty, cancel.cum_qty) == (
        "ioc_remainder",
        D("2"),
        D("3"),
    )
    assert book.depth() == ([], [])


def test_submit_when_ioc_does_not_cross_then_cancelled_whole(book: OrderBook) -> None:
    rest(book, "s1", "sell", 3, 10001)

    events = book.submit("taker", "b1", "buy", 5, 10000, tif="ioc", ts=TS)

    assert kinds(events) == ["OrderAccepted", "OrderCancelled"]
    assert only(events, OrderCancelled)[0].cancelled_qty == D("5")
    assert book.depth() == ([], [(D("100.01"), D("3"))])


def test_submit_when_fok_fully_fillable_then_fills_across_levels(book: OrderBook) -> None:
    rest(book, "s1", "sell", 3, 10000)
    rest(book, "s2", "sell", 3, 10001)

    events = book.submit("taker", "b1", "buy", 5, 10001, tif="fok", ts=TS)

    assert [p.qty for p in only(events, TradePrinted)] == [D("3"), D("2")]
    assert not only(events, OrderCancelled)
    assert book.depth() == ([], [(D("100.01"), D("1"))])


def test_submit_when_fok_not_fully_fillable_then_killed_without_trading(book: OrderBook) -> None:
    rest(book, "s1", "sell", 3, 10000)
    rest(book, "s2", "sell", 3, 10002)
    before = book.depth()

    events = book.submit("taker", "b1", "buy", 5, 10001, tif="fok", ts=TS)

    assert kinds(events) == ["OrderAccepted", "OrderCancelled"]
    cancel = only(events, OrderCancelled)[0]
    assert (cancel.reason, cancel.cancelled_qty, cancel.cum_qty) == ("fok_unfilled", D("5"), D("0"))
    assert book.depth() == before
    assert book.next_trade_number == 1
    state = book.order("taker", "b1")
    assert state is not None and state.status == "cancelled"


def test_submit_when_fok_on_empty_book_then_killed(book: OrderBook) -> None:
    events = book.submit("taker", "b1", "buy", 5, 10001, tif="fok", ts=TS)

    assert only(events, OrderCancelled)[0].reason == "fok_unfilled"


def test_submit_when_market_sweeps_then_remainder_cancelled_no_liquidity(book: OrderBook) -> None:
    rest(book, "s1", "sell", 3, 10000)
    rest(book, "s2", "sell", 3, 10500)

    events = book.submit("taker", "b1", "buy", 10, order_type="market", ts=TS)

    assert only(events, OrderAccepted)[0].price is None
    assert [p.price for p in only(events, TradePrinted)] == [D("100.00"), D("105.00")]
    cancel = only(events, OrderCancelled)[0]
    assert (cancel.reason, cancel.cancelled_qty, cancel.cum_qty) == ("no_liquidity", D("4"), D("6"))
    assert book.depth() == ([], [])


def test_submit_when_market_on_empty_book_then_accepted_and_cancelled(book: OrderBook) -> None:
    events = book.submit("taker", "s1", "sell", 5, order_type="market", ts=TS)

    assert kinds(events) == ["OrderAccepted", "OrderCancelled"]
    cancel = only(events, OrderCancelled)[0]
    assert (cancel.reason, cancel.cancelled_qty) == ("no_liquidity", D("5"))
    assert book.open_orders() == []


def test_submit_when_market_fok_short_then_fok_unfilled(book: OrderBook) -> None:
    rest(book, "s1", "sell", 3, 10000)

    events = book.submit("taker", "b1", "buy", 5, order_type="market", tif="fok", ts=TS)

    assert kinds(events) == ["OrderAccepted", "OrderCancelled"]
    assert only(events, OrderCancelled)[0].reason == "fok_unfilled"
    assert book.depth() == ([], [(D("100.00"), D("3"))])


# --- cancels -------------------------------------------------------------------------------


def test_cancel_when_resting_then_cancelled_and_level_gone(book: OrderBook) -> None:
    rest(book, "s1", "sell", 3, 10000)

    events = book.cancel("mm", "s1", client_order_id="x1", ts=TS + 1)

    assert events == [
        OrderCancelled(
            ts_event=TS + 1,
            venue="SIM",
            account="mm",
            client_order_id="s1",
            venue_order_id="AAPL-O1",
            symbol="AAPL",
            cancelled_qty=D("3"),
            cum_qty=D("0"),
            reason="requested",
            cancel_client_order_id="x1",
        )
    ]
    assert book.depth() == ([], [])
    assert book.best_ask() is None


def test_cancel_when_by_venue_order_id_then_cancelled(book: OrderBook) -> None:
    vid = rest(book, "s1", "sell", 3, 10000)
    rest(book, "s2", "sell", 4, 10000)

    events = book.cancel("mm", venue_order_id=vid, ts=TS)

    assert only(events, OrderCancelled)[0].client_order_id == "s1"
    assert book.depth() == ([], [(D("100.00"), D("4"))])


def test_cancel_when_unknown_then_rejects_unknown_order(book: OrderBook) -> None:
    rejected = rejection(book.cancel("mm", "nope", client_order_id="x1", ts=TS))

    assert (rejected.request, rejected.reason) == ("cancel", "unknown_order")
    assert (rejected.client_order_id, rejected.orig_client_order_id) == ("x1", "nope")
    assert rejected.message.startswith("Cannot cancel order")


def test_cancel_when_other_accounts_order_then_rejects_unknown_order(book: OrderBook) -> None:
    vid = rest(book, "s1", "sell", 3, 10000, account="owner")

    assert rejection(book.cancel("thief", "s1", ts=TS)).reason == "unknown_order"
    assert rejection(book.cancel("thief", venue_order_id=vid, ts=TS)).reason == "unknown_order"
    assert book.depth() == ([], [(D("100.00"), D("3"))])


def test_cancel_when_already_filled_or_cancelled_then_rejects_order_done(book: OrderBook) -> None:
    rest(book, "s1", "sell", 3, 10000)
    rest(book, "s2", "sell", 3, 10001)
    book.submit("taker", "b1", "buy", 3, 10000, ts=TS)
    book.cancel("mm", "s2", ts=TS)

    assert rejection(book.cancel("mm", "s1", ts=TS)).reason == "order_done"
    assert rejection(book.cancel("mm", "s2", ts=TS)).reason == "order_done"


def test_cancel_when_middle_of_queue_then_neighbours_keep_priority(book: OrderBook) -> None:
    for coid in ("s1", "s2", "s3"):
        rest(book, coid, "sell", 2, 10000)
    book.cancel("mm", "s2", ts=TS)

    events = book.submit("taker", "b1", "buy", 4, 10000, ts=TS)

    assert [c for c, _, _ in fills_of(events, "maker")] == ["s1", "s3"]


def test_cancel_when_new_head_after_partial_sweep_then_queue_stays_linked(
    book: OrderBook,
) -> None:
    for coid, qty in (("s1", 2), ("s2", 5), ("s3", 5)):
        rest(book, coid, "sell", qty, 10000)
    book.submit("taker", "b1", "buy", 4, 10000, ts=TS)  # s1 gone, s2 partly filled

    book.cancel("mm", "s2", ts=TS)
    events = book.submit("taker", "b2", "buy", 6, 10000, ts=TS)

    assert fills_of(events, "maker") == [("s3", D("5"), D("100.00"))]
    assert book.integrity_problems() == []
    assert book.depth() == ([(D("100.00"), D("1"))], [])


def test_cancel_all_when_account_and_tif_given_then_only_those(book: OrderBook) -> None:
    book.submit("a", "a1", "buy", 1, 9900, tif="day", ts=TS)
    book.submit("a", "a2", "buy", 1, 9901, tif="gtc", ts=TS)
    book.submit("b", "b1", "sell", 1, 10100, tif="day", ts=TS)

    events = book.cancel_all(tif="day", reason=Reason.EXPIRED, ts=TS)
    assert sorted((c.client_order_id, c.reason) for c in only(events, OrderCancelled)) == [
        ("a1", "expired"),
        ("b1", "expired"),
    ]
    events = book.cancel_all("a", ts=TS)
    assert [c.client_order_id for c in only(events, OrderCancelled)] == ["a2"]
    assert book.open_orders() == []


# --- replaces ------------------------------------------------------------------------------


def test_replace_when_qty_reduced_at_same_price_then_keeps_priority(book: OrderBook) -> None:
    rest(book, "s1", "sell", 10, 10000)
    rest(book, "s2", "sell", 5, 10000)

    events = book.replace("mm", "s1", "s1b", 6, ts=TS)

    assert events == [
        OrderReplaced(
            ts_event=TS,
            venue="SIM",
            account="mm",
            client_order_id="s1b",
            orig_client_order_id="s1",
            venue_order_id="AAPL-O1",
            symbol="AAPL",
            qty=D("6"),
            price=D("100.00"),
            leaves_qty=D("6"),
            priority_kept=True,
        )
    ]
    fills = book.submit("taker", "b1", "buy", 6, 10000, ts=TS)
    assert fills_of(fills, "maker") == [("s1b", D("6"), D("100.00"))]
    assert book.depth() == ([], [(D("100.00"), D("5"))])


def test_replace_when_qty_increased_then_loses_priority(book: OrderBook) -> None:
    rest(book, "s1", "sell", 5, 10000)
    rest(book, "s2", "sell", 5, 10000)

    events = book.replace("mm", "s1", "s1b", 8, ts=TS)

    assert only(events, OrderReplaced)[0].priority_kept is False
    assert book.depth() == ([], [(D("100.00"), D("13"))])
    fills = book.submit("taker", "b1", "buy", 6, 10000, ts=TS)
    assert [c for c, _, _ in fills_of(fills, "maker")] == ["s2", "s1b"]


def test_replace_when_price_changed_then_requeued_behind(book: OrderBook) -> None:
    rest(book, "s1", "sell", 5, 10001)
    rest(book, "s2", "sell", 5, 10000)

    book.replace("mm", "s1", "s1b", 5, 10000, ts=TS + 5)

    assert book.depth() == ([], [(D("100.00"), D("10"))])
    state = book.order("mm", "s1b")
    assert state is not None and (state.price, state.ts) == (10000, TS + 5)
    fills = book.submit("taker", "b1", "buy", 6, 10000, ts=TS)
    assert [c for c, _, _ in fills_of(fills, "maker")] == ["s2", "s1b"]


def test_replace_when_new_price_marketable_then_matches_after_replaced(book: OrderBook) -> None:
    rest(book, "s1", "sell", 5, 10001)
    rest(book, "b1", "buy", 8, 9999, account="other")

    events = book.replace("other", "b1", "b1b", 8, 10001, ts=TS)

    assert kinds(events) == ["OrderReplaced", "OrderFilled", "OrderFilled", "TradePrinted"]
    taker = only(events, OrderFilled)[0]
    assert (taker.client_order_id, taker.liquidity, taker.leaves_qty) == ("b1b", "taker", D("3"))
    assert book.depth() == ([(D("100.01"), D("3"))], [])


def test_replace_when_partially_filled_then_qty_counts_filled_part(book: OrderBook) -> None:
    rest(book, "s1", "sell", 10, 10000)
    book.submit("taker", "b1", "buy", 4, 10000, ts=TS)

    events = book.replace("mm", "s1", "s1b", 7, ts=TS)

    replaced = only(events, OrderReplaced)[0]
    assert (replaced.qty, replaced.leaves_qty, replaced.priority_kept) == (D("7"), D("3"), True)
    assert book.depth() == ([], [(D("100.00"), D("3"))])


def test_replace_when_qty_not_above_filled_then_rejects_qty_below_filled(book: OrderBook) -> None:
    rest(book, "s1", "sell", 10, 10000)
    book.submit("taker", "b1", "buy", 4, 10000, ts=TS)

    rejected = rejection(book.replace("mm", "s1", "s1b", 4, ts=TS))

    assert (rejected.request, rejected.reason) == ("replace", "qty_below_filled")
    assert (rejected.client_order_id, rejected.orig_client_order_id) == ("s1b", "s1")
    assert book.depth() == ([], [(D("100.00"), D("6"))])


def test_replace_when_filled_then_rejects_order_done(book: OrderBook) -> None:
    rest(book, "s1", "sell", 3, 10000)
    book.submit("taker", "b1", "buy", 3, 10000, ts=TS)

    assert rejection(book.replace("mm", "s1", "s1b", 5, ts=TS)).reason == "order_done"


def test_replace_when_unknown_then_rejects_unknown_order(book: OrderBook) -> None:
    assert rejection(book.replace("mm", "zz", "zz2", 5, ts=TS)).reason == "unknown_order"


def test_replace_when_new_id_already_used_then_rejects_duplicate(book: OrderBook) -> None:
    rest(book, "s1", "sell", 3, 10000)
    rest(book, "s2", "sell", 3, 10001)

    rejected = rejection(book.replace("mm", "s1", "s2", 5, ts=TS))

    assert rejected.reason == "duplicate_client_order_id"


@pytest.mark.parametrize(
    ("qty", "price", "reason"),
    [
        (0, None, "qty_not_positive"),
        (2.5, None, "qty_not_integer"),
        (5, 0, "price_not_positive"),
        (5, float("nan"), "price_not_finite"),
    ],
)
def test_replace_when_bad_qty_or_price_then_rejects(
    book: OrderBook, qty: Any, price: Any, reason: str
) -> None:
    rest(book, "s1", "sell", 3, 10000)

    assert rejection(book.replace("mm", "s1", "s1b", qty, price, ts=TS)).reason == reason
    state = book.order("mm", "s1")
    assert state is not None and (state.client_order_id, state.qty, state.price) == ("s1", 3, 10000)
    assert book.order("mm", "s1b") is None
    assert book.depth() == ([], [(D("100.00"), D("3"))])


def test_replace_when_done_then_order_answers_to_old_and_new_ids(book: OrderBook) -> None:
    vid = rest(book, "s1", "sell", 3, 10000)
    book.replace("mm", "s1", "s1b", 2, ts=TS)

    by_old, by_new = book.order("mm", "s1"), book.order("mm", "s1b")

    assert by_old is not None and by_old == by_new == book.order(venue_order_id=vid)
    assert by_old.client_order_id == "s1b" and by_old.qty == 2


# --- self-match prevention ----------------------------------------------------------------


def test_submit_when_self_match_cancel_newest_then_incoming_remainder_cancelled(
    book: OrderBook,
) -> None:
    rest(book, "other1", "sell", 3, 10000, account="b")
    rest(book, "own", "sell", 5, 10000, account="a")

    events = book.submit("a", "a1", "buy", 10, 10000, ts=TS)

    assert fills_of(events, "maker") == [("other1", D("3"), D("100.00"))]
    cancel = only(events, OrderCancelled)[-1]
    assert (cancel.client_order_id, cancel.reason, cancel.cancelled_qty) == (
        "a1",
        "self_match",
        D("7"),
    )
    assert book.depth() == ([], [(D("100.00"), D("5"))])


def test_submit_when_self_match_cancel_oldest_then_resting_cancelled_and_matching_goes_on() -> None:
    book = OrderBook(SPEC, self_match={"a": "cancel_oldest"})
    rest(book, "own", "sell", 5, 10000, account="a")
    rest(book, "other1", "sell", 3, 10000, account="b")

    events = book.submit("a", "a1", "buy", 3, 10000, ts=TS)

    assert kinds(events) == [
        "OrderAccepted",
        "OrderCancelled",
        "OrderFilled",
        "OrderFilled",
        "TradePrinted",
    ]
    cancel = only(events, OrderCancelled)[0]
    assert (cancel.client_order_id, cancel.reason, cancel.cancelled_qty) == (
        "own",
        "self_match",
        D("5"),
    )
    assert fills_of(events, "maker") == [("other1", D("3"), D("100.00"))]
    assert book.depth() == ([], [])


def test_submit_when_self_match_cancel_both_then_both_cancelled() -> None:
    book = OrderBook(SPEC, self_match_default="cancel_both")
    rest(book, "own", "sell", 5, 10000, account="a")
    rest(book, "other1", "sell", 3, 10000, account="b")

    events = book.submit("a", "a1", "buy", 4, 10000, ts=TS)

    cancels = only(events, OrderCancelled)
    assert [(c.client_order_id, c.reason) for c in cancels] == [
        ("own", "self_match"),
        ("a1", "self_match"),
    ]
    assert not only(events, OrderFilled)
    assert book.depth() == ([], [(D("100.00"), D("3"))])


def test_submit_when_policies_per_account_then_each_account_gets_its_own() -> None:
    book = OrderBook(SPEC, self_match={"a": "cancel_oldest"})
    rest(book, "a_own", "sell", 5, 10000, account="a")
    rest(book, "b_own", "sell", 5, 10001, account="b")

    a_events = book.submit("a", "a1", "buy", 1, 10000, tif="ioc", ts=TS)
    b_events = book.submit("b", "b1", "buy", 1, 10001, tif="ioc", ts=TS)

    assert only(a_events, OrderCancelled)[0].client_order_id == "a_own"
    assert only(b_events, OrderCancelled)[0].client_order_id == "b1"  # default: newest
    assert book.depth() == ([], [(D("100.01"), D("5"))])


def test_submit_when_fok_blocked_by_own_order_then_killed_and_resting_kept(
    book: OrderBook,
) -> None:
    rest(book, "own", "sell", 5, 10000, account="a")
    rest(book, "other1", "sell", 5, 10000, account="b")

    events = book.submit("a", "a1", "buy", 5, 10000, tif="fok", ts=TS)

    assert kinds(events) == ["OrderAccepted", "OrderCancelled"]
    assert only(events, OrderCancelled)[0].reason == "fok_unfilled"
    assert book.depth() == ([], [(D("100.00"), D("10"))])


def test_submit_when_fok_with_cancel_oldest_then_skips_own_and_fills() -> None:
    book = OrderBook(SPEC, self_match={"a": "cancel_oldest"})
    rest(book, "own", "sell", 5, 10000, account="a")
    rest(book, "other1", "sell", 5, 10000, account="b")

    events = book.submit("a", "a1", "buy", 5, 10000, tif="fok", ts=TS)

    assert [c.client_order_id for c in only(events, OrderCancelled)] == ["own"]
    assert fills_of(events, "maker") == [("other1", D("5"), D("100.00"))]


def test_book_when_unknown_self_match_policy_then_config_error() -> None:
    with pytest.raises(ConfigError):
        OrderBook(SPEC, self_match={"a": "cancel_everything"})  # type: ignore[dict-item]


# --- validation ----------------------------------------------------------------------------

BAD_NEW: list[tuple[str, dict[str, Any], str]] = [
    ("qty zero", {"qty": 0}, "qty_not_positive"),
    ("qty negative", {"qty": -3}, "qty_not_positive"),
    ("qty fraction", {"qty": 1.5}, "qty_not_integer"),
    ("qty bool", {"qty": True}, "qty_not_integer"),
    ("qty nan", {"qty": float("nan")}, "qty_not_finite"),
    ("qty decimal nan", {"qty": Decimal("NaN")}, "qty_not_finite"),
    ("qty huge", {"qty": 1 << 70}, "qty_out_of_range"),
    ("limit without price", {"price": None}, "price_required"),
    ("market with price", {"order_type": "market"}, "price_not_allowed"),
    ("price zero", {"price": 0}, "price_not_positive"),
    ("price negative", {"price": -1}, "price_not_positive"),
    ("price nan", {"price": float("nan")}, "price_not_finite"),
    ("price inf", {"price": float("inf")}, "price_not_finite"),
    ("price float", {"price": 100.5}, "price_not_integer"),
    ("price huge", {"price": 1 << 70}, "price_out_of_range"),
    ("side", {"side": "hold"}, "side_invalid"),
    ("order type", {"order_type": "stop"}, "order_type_invalid"),
    ("tif", {"tif": "gtd"}, "tif_invalid"),
    ("no account", {"account": ""}, "account_required"),
    ("no client id", {"client_order_id": ""}, "client_order_id_required"),
]


@pytest.mark.parametrize(
    ("change", "reason"), [(c, r) for _, c, r in BAD_NEW], ids=[n for n, _, _ in BAD_NEW]
)
def test_submit_when_bad_input_then_rejects_with_reason_and_book_untouched(
    book: OrderBook, change: dict[str, Any], reason: str
) -> None:
    rest(book, "s1", "sell", 3, 10000)
    before = (book.depth(), book.open_orders(), book.next_order_number)
    request: dict[str, Any] = {
        "account": "acct",
        "client_order_id": "c1",
        "side": "buy",
        "qty": 5,
        "price": 10000,
    }
    request.update(change)

    rejected = rejection(book.submit(**request, ts=TS))

    assert (rejected.request, rejected.reason) == ("new", reason)
    assert rejected.message.startswith("Cannot submit order: ")
    assert (book.depth(), book.open_orders(), book.next_order_number) == before
    assert book.order("acct", "c1") is None


def test_submit_when_client_order_id_reused_then_rejects_duplicate(book: OrderBook) -> None:
    rest(book, "s1", "sell", 3, 10000, account="a")
    book.submit("a", "gone", "sell", 3, 10001, tif="ioc", ts=TS)  # done at once

    assert rejection(book.submit("a", "s1", "sell", 1, 10005, ts=TS)).reason == (
        "duplicate_client_order_id"
    )
    assert rejection(book.submit("a", "gone", "sell", 1, 10005, ts=TS)).reason == (
        "duplicate_client_order_id"
    )
    assert book.depth() == ([], [(D("100.00"), D("3"))])
    assert kinds(book.submit("b", "s1", "sell", 1, 10005, ts=TS)) == ["OrderAccepted"]


def test_submit_when_price_off_tick_then_rejects(book: OrderBook) -> None:
    ticks, reason = SPEC.price_ticks(Decimal("100.005"))

    assert (ticks, reason) == (0, "price_off_tick")


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        (Decimal("100.01"), (10001, "")),
        (Decimal("100.010"), (10001, "")),
        (Decimal("100.005"), (0, "price_off_tick")),
        (Decimal("NaN"), (0, "price_not_finite")),
        (Decimal("sNaN"), (0, "price_not_finite")),
        (Decimal("Infinity"), (0, "price_not_finite")),
        (Decimal("0"), (0, "price_not_positive")),
        (Decimal("-1.00"), (0, "price_not_positive")),
        (Decimal("1E+60"), (0, "price_out_of_range")),
        (None, (0, "price_required")),
    ],
)
def test_spec_price_ticks_when_decimal_then_ticks_or_reason(
    price: Decimal | None, expected: tuple[int, str]
) -> None:
    assert SPEC.price_ticks(price) == expected


@pytest.mark.parametrize(
    ("qty", "expected"),
    [
        (Decimal("7"), (7, "")),
        (Decimal("1.5"), (0, "qty_off_lot")),
        (Decimal("0"), (0, "qty_not_positive")),
        (Decimal("-Infinity"), (0, "qty_not_finite")),
        (Decimal("NaN"), (0, "qty_not_finite")),
    ],
)
def test_spec_qty_lots_when_decimal_then_lots_or_reason(
    qty: Decimal, expected: tuple[int, str]
) -> None:
    assert SPEC.qty_lots(qty) == expected


def test_spec_when_fractional_lots_then_round_trips() -> None:
    spec = InstrumentSpec("BTC", Decimal("0.5"), Decimal("0.001"))

    assert spec.qty_lots(Decimal("0.25")) == (250, "")
    assert spec.qty_lots(Decimal("0.0005")) == (0, "qty_off_lot")
    assert spec.price_ticks(Decimal("100.5")) == (201, "")
    assert (spec.price_of(201), spec.qty_of(250)) == (Decimal("100.5"), Decimal("0.250"))


@pytest.mark.parametrize("tick", [Decimal("0"), Decimal("-0.01"), Decimal("NaN")])
def test_spec_when_tick_not_positive_then_config_error(tick: Decimal) -> None:
    with pytest.raises(ConfigError, match="tick_size"):
        InstrumentSpec("X", tick, Decimal("1"))


# --- halt ----------------------------------------------------------------------------------


def test_submit_when_halted_then_rejects_halted_but_cancel_works(book: OrderBook) -> None:
    rest(book, "s1", "sell", 3, 10000)
    rest(book, "s2", "sell", 3, 10001)
    book.halted = True

    assert rejection(book.submit("t", "b1", "buy", 1, 10000, ts=TS)).reason == "halted"
    assert rejection(book.replace("mm", "s1", "s1b", 2, ts=TS)).reason == "halted"
    assert kinds(book.cancel("mm", "s1", ts=TS)) == ["OrderCancelled"]
    halted = book.cancel_all(reason=Reason.HALTED, ts=TS)
    assert [(c.client_order_id, c.reason) for c in only(halted, OrderCancelled)] == [
        ("s2", "halted")
    ]
    book.halted = False
    assert kinds(book.submit("t", "b1", "buy", 1, 10000, ts=TS)) == ["OrderAccepted"]


# --- L2 ------------------------------------------------------------------------------------


def test_depth_when_levels_given_then_best_first_and_cut(book: OrderBook) -> None:
    for i, price in enumerate((9990, 9999, 9995)):
        rest(book, f"b{i}", "buy", i + 1, price)
    for i, price in enumerate((10010, 10001, 10005)):
        rest(book, f"s{i}", "sell", i + 1, price)
    rest(book, "b9", "buy", 4, 9999)

    assert book.depth(levels=2) == (
        [(D("99.99"), D("6")), (D("99.95"), D("3"))],
        [(D("100.01"), D("2")), (D("100.05"), D("3"))],
    )
    assert book.depth_ticks(levels=1) == ([(9999, 6)], [(10001, 2)])
    assert [(o.client_order_id, o.price) for o in book.open_orders()] == [
        ("b1", 9999),
        ("b9", 9999),
        ("b2", 9995),
        ("b0", 9990),
        ("s1", 10001),
        ("s2", 10005),
        ("s0", 10010),
    ]
    assert book.depth(levels=0) == ([], [])
    snap = book.snapshot(TS)
    assert (snap.snapshot, snap.book_seq, len(snap.bids), len(snap.asks)) == (True, 0, 3, 3)


def test_deltas_when_on_then_one_update_per_operation_with_changed_levels() -> None:
    book = OrderBook(SPEC, deltas=True)

    first = book.submit("mm", "s1", "sell", 5, 10000, ts=TS)
    book.submit("mm", "s2", "sell", 5, 10001, ts=TS)
    sweep = book.submit("t", "b1", "buy", 7, 10002, ts=TS)
    cancel = book.cancel("mm", "s2", ts=TS)

    assert isinstance(first[-1], BookUpdated)
    assert (first[-1].book_seq, first[-1].snapshot, first[-1].asks) == (
        1,
        False,
        [(D("100.00"), D("5"))],
    )
    update = sweep[-1]
    assert isinstance(update, BookUpdated) and update.book_seq == 3
    assert update.asks == [(D("100.00"), D("0")), (D("100.01"), D("3"))]
    assert update.bids == []
    assert isinstance(cancel[-1], BookUpdated) and cancel[-1].book_seq == 4
    assert cancel[-1].asks == [(D("100.01"), D("0"))]
    assert book.snapshot(TS).book_seq == 4


def test_deltas_when_rejected_or_nothing_rests_then_no_update() -> None:
    book = OrderBook(SPEC, deltas=True)

    assert kinds(book.submit("t", "b1", "buy", 0, 10000, ts=TS)) == ["OrderRejected"]
    assert kinds(book.submit("t", "b2", "buy", 1, 10000, tif="ioc", ts=TS)) == [
        "OrderAccepted",
        "OrderCancelled",
    ]
    assert book.book_seq == 0


def test_deltas_when_replace_requeues_in_both_sides_then_both_reported() -> None:
    book = OrderBook(SPEC, deltas=True)
    book.submit("mm", "s1", "sell", 5, 10001, ts=TS)
    book.submit("t", "b1", "buy", 8, 10000, ts=TS)

    events = book.replace("t", "b1", "b1b", 8, 10001, ts=TS)

    update = events[-1]
    assert isinstance(update, BookUpdated)
    assert update.bids == [(D("100.01"), D("3")), (D("100.00"), D("0"))]
    assert update.asks == [(D("100.01"), D("0"))]


def test_reports_when_off_then_state_changes_without_execution_reports() -> None:
    book = OrderBook(SPEC, reports=False, deltas=True)

    assert kinds(book.submit("mm", "s1", "sell", 5, 10000, ts=TS)) == ["BookUpdated"]
    assert kinds(book.submit("t", "b1", "buy", 2, 10000, ts=TS)) == ["BookUpdated"]
    assert kinds(book.submit("t", "b2", "buy", 0, 10000, ts=TS)) == ["OrderRejected"]
    state = book.order("mm", "s1")
    assert state is not None and (state.cum_qty, state.leaves_qty) == (2, 3)


# --- queries, ids, restore ------------------------------------------------------------------


def test_order_queries_when_orders_exist_then_report_status(book: OrderBook) -> None:
    vid = rest(book, "s1", "sell", 5, 10000, account="a")
    rest(book, "s2", "sell", 5, 10001, account="a")
    book.submit("t", "b1", "buy", 2, 10000, ts=TS)
    book.cancel("a", "s2", ts=TS)

    state = book.order(venue_order_id=vid)
    assert state == OrderState(
        account="a",
        client_order_id="s1",
        venue_order_id=vid,
        side="sell",
        order_type="limit",
        tif="day",
        price=10000,
        qty=5,
        cum_qty=2,
        leaves_qty=3,
        cancelled_qty=0,
        status="partially_filled",
        ts=TS,
    )
    assert book.order("other", venue_order_id=vid) is None
    assert book.order("a", "nope") is None
    assert [s.client_order_id for s in book.orders_of("a")] == ["s1"]
    assert [(s.client_order_id, s.status) for s in book.orders_of("a", open_only=False)] == [
        ("s1", "partially_filled"),
        ("s2", "cancelled"),
    ]
    assert book.status(state) == OrderStatus(
        account="a",
        client_order_id="s1",
        venue_order_id=vid,
        symbol="AAPL",
        side="sell",
        order_type="limit",
        tif="day",
        qty=D("5"),
        price=D("100.00"),
        cum_qty=D("2"),
        leaves_qty=D("3"),
        status="partially_filled",
    )


def test_ids_when_same_operations_then_same_events() -> None:
    def run() -> list[Event]:
        book = OrderBook(SPEC, deltas=True)
        out: list[Event] = []
        out += book.submit("a", "1", "sell", 5, 10000, ts=1)
        out += book.submit("b", "2", "sell", 5, 10001, ts=2)
        out += book.submit("c", "3", "buy", 8, order_type="market", ts=3)
        out += book.replace("b", "2", "2b", 6, 10002, ts=4)
        return out

    first, second = run(), run()

    assert first == second
    exec_ids = [f.exec_id for f in only(first, OrderFilled)]
    assert len(exec_ids) == len(set(exec_ids)) == 4


def test_id_prefix_and_counters_when_given_then_ids_continue() -> None:
    book = OrderBook(SPEC, id_prefix="AAPL.r2", first_order_number=41, first_trade_number=7)
    book.submit("a", "1", "sell", 5, 10000, ts=1)

    events = book.submit("b", "2", "buy", 5, 10000, ts=2)

    assert only(events, OrderAccepted)[0].venue_order_id == "AAPL.r2-O42"
    assert only(events, TradePrinted)[0].trade_id == "AAPL.r2-T7"
    assert (book.next_order_number, book.next_trade_number) == (43, 8)


def test_ids_when_counters_cross_a_thousand_then_plain_numbers() -> None:
    book = OrderBook(SPEC, first_order_number=998, first_trade_number=999)
    vids = [rest(book, f"s{i}", "sell", 1, 10000 + i) for i in range(4)]

    events = book.submit("t", "x", "buy", 3, 10003, ts=TS)

    assert vids == ["AAPL-O998", "AAPL-O999", "AAPL-O1000", "AAPL-O1001"]
    assert only(events, OrderAccepted)[0].venue_order_id == "AAPL-O1002"
    assert [p.trade_id for p in only(events, TradePrinted)] == [
        "AAPL-T999",
        "AAPL-T1000",
        "AAPL-T1001",
    ]
    assert [f.exec_id for f in only(events, OrderFilled)][:2] == ["AAPL-T999-t", "AAPL-T999-m"]
    assert (book.next_order_number, book.next_trade_number) == (1003, 1002)
    assert book.order(venue_order_id="AAPL-O1000") is not None
    assert book.order(venue_order_id="AAPL-O01000") is None


def test_ids_when_reports_switched_on_later_then_ids_continue() -> None:
    book = OrderBook(SPEC, reports=False)
    for i in range(1200):  # past a thousand of order ids and of trade ids, quietly
        book.submit("mm", f"s{i}", "sell", 1, 10000, ts=TS)
        book.submit("t", f"b{i}", "buy", 1, 10000, ts=TS)
    book.reports = True

    rest(book, "s", "sell", 1, 10000)
    events = book.submit("t", "b", "buy", 1, 10000, ts=TS)

    assert only(events, OrderAccepted)[0].venue_order_id == "AAPL-O2402"
    assert only(events, TradePrinted)[0].trade_id == "AAPL-T1201"


def test_submit_when_price_and_qty_beyond_small_ints_then_same_rules(book: OrderBook) -> None:
    big = 1 << 40
    rest(book, "s1", "sell", 1 << 35, big)
    rest(book, "s2", "sell", 2, big)

    events = book.submit("t", "b1", "buy", 3, big, ts=TS)

    assert fills_of(events, "taker") == [("b1", D("3"), SPEC.price_of(big))]
    assert book.depth_ticks() == ([], [(big, (1 << 35) - 3 + 2)])
    assert rejection(book.submit("t", "b2", "buy", 1, 1 << 63, ts=TS)).reason == (
        "price_out_of_range"
    )


def test_events_when_decimal_caches_start_over_then_same_events() -> None:
    def run(limit: int) -> list[Event]:
        book = OrderBook(SPEC, deltas=True)
        book._build.prices.limit = book._build.lots.limit = limit  # forget at once
        out: list[Event] = []
        for i in range(6):
            out += book.submit("a", f"s{i}", "sell", 2 + i, 10000 + i % 3, ts=TS)
        out += book.submit("b", "b1", "buy", 7, 10002, ts=TS)
        out += book.cancel("a", "s5", ts=TS)
        out += book.replace("a", "s4", "s4b", 9, 10001, ts=TS)
        out += book.submit("b", "b2", "buy", 30, order_type="market", ts=TS)
        return [*out, book.snapshot(TS)]

    assert run(1) == run(1 << 16)


def test_decimal_cache_when_full_then_starts_over_with_right_values() -> None:
    cache = DecimalCache(Decimal("0.01"), limit=2)

    values = [cache[n] for n in (1, 2, 3, 1, 250)]

    assert values == [D("0.01"), D("0.02"), D("0.03"), D("0.01"), D("2.50")]
    assert len(cache.values) <= 2


def test_restore_when_open_orders_given_then_priority_preserved() -> None:
    original = OrderBook(SPEC)
    for i, (account, price) in enumerate([("a", 10000), ("b", 10000), ("c", 10001), ("d", 10000)]):
        original.submit(account, f"s{i}", "sell", 3, price, ts=TS + i)
    original.submit("e", "b0", "buy", 2, 9990, ts=TS)
    original.submit("t", "x", "buy", 1, 10000, ts=TS)  # a's order is now partially filled
    saved = original.open_orders()

    restored = OrderBook(
        SPEC,
        first_order_number=original.next_order_number,
        first_trade_number=original.next_trade_number,
    )
    assert restored.restore(saved) == []

    assert restored.open_orders() == saved
    assert restored.depth() == original.depth()
    sweep = restored.submit("t", "y", "buy", 20, 10001, ts=TS)
    assert [c for c, _, _ in fills_of(sweep, "maker")] == ["s0", "s1", "s3", "s2"]
    assert only(sweep, OrderAccepted)[0].venue_order_id == "AAPL-O7"
    assert only(sweep, TradePrinted)[0].trade_id == "AAPL-T2"


def test_restore_when_counter_behind_restored_ids_then_moves_past_them() -> None:
    book = OrderBook(SPEC)
    state = OrderState(
        account="a",
        client_order_id="s1",
        venue_order_id="AAPL-O41",
        side="sell",
        price=10000,
        qty=5,
    )

    book.restore([state])

    assert book.next_order_number == 42
    assert kinds(book.submit("a", "s2", "sell", 1, 10001, ts=TS)) == ["OrderAccepted"]
    assert book.order(venue_order_id="AAPL-O42") is not None


def test_restore_when_order_bad_or_crossing_then_left_out_with_rejection() -> None:
    book = OrderBook(SPEC)
    good = OrderState(
        account="a",
        client_order_id="s1",
        venue_order_id="AAPL-O1",
        side="sell",
        price=10000,
        qty=5,
    )
    crossing = OrderState(
        account="b", client_order_id="b1", venue_order_id="AAPL-O2", side="buy", price=10000, qty=5
    )
    duplicate = OrderState(
        account="a", client_order_id="s1", venue_order_id="AAPL-O3", side="sell", price=10001, qty=1
    )
    ioc = OrderState(
        account="c",
        client_order_id="c1",
        venue_order_id="AAPL-O4",
        side="sell",
        price=10001,
        qty=1,
        tif="ioc",
    )
    done = OrderState(
        account="c",
        client_order_id="c2",
        venue_order_id="AAPL-O5",
        side="sell",
        price=10001,
        qty=1,
        cum_qty=1,
    )

    events = book.restore([good, crossing, duplicate, ioc, done])

    assert [(r.client_order_id, r.reason) for r in only(events, OrderRejected)] == [
        ("b1", "would_cross"),
        ("s1", "duplicate_client_order_id"),
        ("c1", "tif_invalid"),
        ("c2", "qty_below_filled"),
    ]
    assert book.depth_ticks() == ([], [(10000, 5)])


def test_book_when_freed_then_resting_orders_unlinked() -> None:
    book = OrderBook(SPEC)
    rest(book, "s1", "sell", 3, 10000)
    rest(book, "s2", "sell", 3, 10000)
    level = book._asks.levels[10000]  # orders are not GC-tracked: the book must break the links
    first = level.head
    assert first is not None and first.next is not None
    second = first.next

    del book

    assert (level.head, level.tail, first.next, second.prev) == (None, None, None, None)


def test_keep_done_when_exceeded_then_old_done_orders_forgotten_but_ids_stay_taken() -> None:
    book = OrderBook(SPEC, keep_done=10)
    rest(book, "live", "sell", 1, 20000)  # old, but resting: kept
    rest(book, "r1", "sell", 1, 20001)
    book.replace("mm", "r1", "r2", 1, 20002, ts=TS)
    book.cancel("mm", "r2", ts=TS)
    for i in range(1100):  # done at once (nothing to trade with)
        book.submit("a", f"c{i}", "buy", 1, 100, tif="ioc", ts=TS)

    assert book.order("a", "c0") is None
    assert book.order(venue_order_id="AAPL-O3") is None
    assert (book.order("mm", "r1"), book.order("mm", "r2")) == (None, None)
    assert book.order("a", "c1099") is not None
    for account, coid in (("a", "c0"), ("mm", "r1"), ("mm", "r2")):
        assert rejection(book.submit(account, coid, "buy", 1, 100, ts=TS)).reason == (
            "duplicate_client_order_id"
        )
    assert book.order("mm", "live") is not None

    book.cancel("mm", "live", ts=TS)
    for i in range(1100, 2300):
        book.submit("a", f"c{i}", "buy", 1, 100, tif="ioc", ts=TS)

    assert book.order("mm", "live") is None
    assert rejection(book.cancel("mm", "live", ts=TS)).reason == "unknown_order"


def test_keep_done_when_restored_ids_far_ahead_then_sweeps_stay_short() -> None:
    book = OrderBook(SPEC, keep_done=0)
    book.submit("a", "early", "buy", 1, 100, tif="ioc", ts=TS)
    far = OrderState(
        account="mm",
        client_order_id="s1",
        venue_order_id="AAPL-O1000000000",
        side="sell",
        price=10000,
        qty=5,
    )
    assert book.restore([far]) == []
    book.cancel("mm", "s1", ts=TS)

    for i in range(1100):
        book.submit("a", f"c{i}", "buy", 1, 100, tif="ioc", ts=TS)

    assert book.next_order_number == 1_000_001_101
    assert book.order("a", "early") is None and book.order("mm", "s1") is None
    assert rejection(book.submit("mm", "s1", "sell", 1, 10000, ts=TS)).reason == (
        "duplicate_client_order_id"
    )

"""The console's trading view state: books by the Clone pattern, the bounded blotter,
fills and positions. Pure logic: no sockets, no NiceGUI."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest

from engine.bus.commands.orders import OrderRow, PositionRow
from engine.bus.commands.venue import BookSnapshot
from engine.bus.events import (
    BookLevel,
    BookUpdated,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    PositionChanged,
    QuoteUpdated,
    TradePrinted,
)
from ui.trading_state import MAX_ORDERS, MAX_TRADES, BookView, TradingView

pytestmark = pytest.mark.timeout(30)

D = Decimal


def lv(price: str, qty: str) -> BookLevel:
    return (D(price), D(qty))


def update(
    seq: int,
    *,
    bids: Sequence[BookLevel] = (),
    asks: Sequence[BookLevel] = (),
    snapshot: bool = False,
    symbol: str = "AAA",
) -> BookUpdated:
    return BookUpdated(
        ts_event=seq,
        venue="SIM",
        symbol=symbol,
        book_seq=seq,
        snapshot=snapshot,
        bids=list(bids),
        asks=list(asks),
    )


def snapshot_reply(seq: int, bids: list[BookLevel], asks: list[BookLevel]) -> BookSnapshot:
    return BookSnapshot(
        symbol="AAA",
        book_seq=seq,
        bids=bids,
        asks=asks,
        halted=False,
        tick_size=D("0.01"),
        lot_size=D(1),
    )


def accepted(cid: str, qty: str = "10", price: str = "100", ts: int = 1) -> OrderAccepted:
    return OrderAccepted(
        ts_event=ts,
        venue="SIM",
        account="desk1",
        client_order_id=cid,
        venue_order_id=f"v-{cid}",
        symbol="AAA",
        side="buy",
        order_type="limit",
        tif="day",
        qty=D(qty),
        price=D(price),
    )


def filled(cid: str, exec_id: str, qty: str, price: str, cum: str, leaves: str) -> OrderFilled:
    return OrderFilled(
        ts_event=2,
        venue="SIM",
        account="desk1",
        client_order_id=cid,
        venue_order_id=f"v-{cid}",
        symbol="AAA",
        side="buy",
        exec_id=exec_id,
        trade_id=f"t-{exec_id}",
        qty=D(qty),
        price=D(price),
        liquidity="taker",
        leaves_qty=D(leaves),
        cum_qty=D(cum),
    )


def order_row(cid: str, status: str, filled_qty: str, avg: str | None) -> OrderRow:
    return OrderRow(
        client_order_id=cid,
        account="desk1",
        symbol="AAA",
        side="buy",
        order_type="limit",
        tif="day",
        qty=D(10),
        price=D(100),
        status=status,
        filled_qty=D(filled_qty),
        avg_price=None if avg is None else D(avg),
        ts_created=1,
        ts_updated=5,
    )


# --- books -------------------------------------------------------------------------------


def test_book_when_deltas_follow_a_snapshot_then_levels_change_and_qty_zero_removes() -> None:
    book = BookView("AAA")
    book.on_update(
        update(
            7,
            bids=[lv("99.99", "500"), lv("99.98", "500")],
            asks=[lv("100.01", "500")],
            snapshot=True,
        )
    )
    book.on_update(update(8, bids=[lv("99.99", "0")], asks=[lv("100.00", "20")]))
    book.on_update(update(9, bids=[lv("99.98", "300")]))

    assert book.status == "live" and book.book_seq == 9
    bids, asks = book.ladder(10)
    assert bids == [lv("99.98", "300")]
    assert asks == [lv("100.00", "20"), lv("100.01", "500")]  # best first


def test_book_when_deltas_arrive_before_the_snapshot_then_newer_ones_apply_on_top() -> None:
    book = BookView("AAA")
    book.on_update(update(4, bids=[lv("99", "1")]))  # in the snapshot already
    book.on_update(update(5, bids=[lv("98", "2")]))
    book.on_update(update(6, asks=[lv("101", "3")]))
    assert book.status == "waiting" and book.ladder(10) == ([], [])

    book.on_snapshot(snapshot_reply(4, [lv("99", "1")], [lv("102", "9")]))

    assert book.status == "live" and book.book_seq == 6
    assert book.ladder(10) == ([lv("99", "1"), lv("98", "2")], [lv("101", "3"), lv("102", "9")])


def test_book_when_book_seq_jumps_then_stale_until_the_next_snapshot() -> None:
    book = BookView("AAA")
    book.on_update(update(1, bids=[lv("99", "1")], asks=[lv("101", "1")], snapshot=True))
    book.on_update(update(2, bids=[lv("99", "5")]))
    book.on_update(update(4, bids=[lv("98", "7")]))  # 3 was lost

    assert book.status == "stale" and book.gaps == 1
    assert book.ladder(10) == ([lv("99", "5")], [lv("101", "1")])  # last known, marked stale
    book.on_update(update(5, asks=[lv("101", "0")]))
    assert book.ladder(10) == ([lv("99", "5")], [lv("101", "1")])  # nothing applies while stale

    book.on_update(
        update(4, bids=[lv("99", "6"), lv("98", "7")], asks=[lv("101", "1")], snapshot=True)
    )

    assert book.status == "live" and book.book_seq == 5  # the held delta 5 applied on top
    assert book.ladder(10) == ([lv("99", "6"), lv("98", "7")], [])


def test_book_when_a_held_delta_leaves_a_gap_after_the_snapshot_then_stays_stale() -> None:
    book = BookView("AAA")
    book.on_update(update(9, bids=[lv("98", "7")]))
    book.on_snapshot(snapshot_reply(7, [lv("99", "1")], []))  # 8 is missing
    assert book.status == "stale"
    book.on_snapshot(snapshot_reply(9, [lv("99", "1"), lv("98", "7")], []))
    assert book.status == "live" and book.book_seq == 9


def test_book_when_get_book_reply_is_older_than_the_live_book_then_ignored() -> None:
    book = BookView("AAA")
    book.on_update(update(10, bids=[lv("99", "1")], snapshot=True))
    book.on_update(update(11, bids=[lv("99", "2")]))

    assert not book.on_snapshot(snapshot_reply(10, [lv("99", "1")], []))
    assert book.ladder(10) == ([lv("99", "2")], [])
    assert book.halted is False  # learned from the reply all the same


def test_book_when_an_old_delta_is_repeated_then_ignored() -> None:
    book = BookView("AAA")
    book.on_update(update(3, bids=[lv("99", "1")], snapshot=True))
    book.on_update(update(3, bids=[lv("99", "0")]))
    assert book.status == "live" and book.ladder(10) == ([lv("99", "1")], [])


def test_trading_view_when_many_trades_print_then_the_tape_is_bounded() -> None:
    view = TradingView()
    for i in range(MAX_TRADES + 10):
        view.apply(
            TradePrinted(
                ts_event=i,
                venue="SIM",
                symbol="AAA",
                trade_id=str(i),
                price=D(100),
                qty=D(1),
                aggressor="buy",
            )
        )
    book = view.books["AAA"]
    assert len(book.trades) == MAX_TRADES and book.trades[-1].trade_id == str(MAX_TRADES + 9)
    assert book.status == "waiting"  # a trade is not a snapshot


# --- the blotter -------------------------------------------------------------------------


def test_blotter_when_reports_arrive_then_status_filled_qty_and_avg_price_follow() -> None:
    view = TradingView()
    view.apply(accepted("o1"))
    assert view.blotter.find("o1").status == "accepted"  # type: ignore[union-attr]

    view.apply(filled("o1", "e1", "4", "100.00", cum="4", leaves="6"))
    view.apply(filled("o1", "e1", "4", "100.00", cum="4", leaves="6"))  # the same fill again
    view.apply(filled("o1", "e2", "6", "100.10", cum="10", leaves="0"))

    o = view.blotter.find("o1")
    assert o is not None
    assert (o.status, o.filled_qty, o.avg_price) == ("filled", D(10), D("100.06"))
    assert [f.exec_id for f in view.blotter.fills] == ["e1", "e2"]


def test_blotter_when_rejected_cancelled_expired_then_ended_with_the_reason() -> None:
    view = TradingView()
    view.apply(
        OrderRejected(
            ts_event=1,
            venue="SIM",
            account="desk1",
            client_order_id="r1",
            symbol="AAA",
            reason="price_off_tick",
        )
    )
    for cid, reason in (("c1", "requested"), ("x1", "expired")):
        view.apply(accepted(cid))
        view.apply(
            OrderCancelled(
                ts_event=3,
                venue="SIM",
                account="desk1",
                client_order_id=cid,
                venue_order_id=f"v-{cid}",
                symbol="AAA",
                cancelled_qty=D(10),
                cum_qty=D(0),
                reason=reason,
            )
        )
    statuses = {k: (o.status, o.reason) for k, o in view.blotter.orders.items()}
    assert statuses == {
        "r1": ("rejected", "price_off_tick"),
        "c1": ("cancelled", "requested"),
        "x1": ("expired", "expired"),
    }


def test_blotter_when_a_duplicate_id_is_rejected_then_the_order_stands() -> None:
    view = TradingView()
    view.apply(accepted("o1"))
    view.apply(
        OrderRejected(
            ts_event=2,
            venue="SIM",
            account="desk1",
            client_order_id="o1",
            symbol="AAA",
            reason="duplicate_client_order_id",
        )
    )
    assert view.blotter.find("o1").status == "accepted"  # type: ignore[union-attr]


def test_blotter_when_replaced_then_same_row_with_the_new_id_and_quantity() -> None:
    view = TradingView()
    view.apply(accepted("o1"))
    view.apply(
        OrderReplaced(
            ts_event=2,
            venue="SIM",
            account="desk1",
            client_order_id="o1-r1",
            orig_client_order_id="o1",
            venue_order_id="v-o1",
            symbol="AAA",
            qty=D(5),
            price=D("99.5"),
            leaves_qty=D(5),
            priority_kept=False,
        )
    )
    view.apply(filled("o1-r1", "e1", "5", "99.5", cum="5", leaves="0"))

    assert list(view.blotter.orders) == ["o1"]  # the row keeps its key
    o = view.blotter.orders["o1"]
    assert (o.client_order_id, o.qty, o.price, o.status) == ("o1-r1", D(5), D("99.5"), "filled")


def test_blotter_when_more_orders_than_the_cap_then_bounded_and_ended_orders_go_first() -> None:
    view = TradingView()
    view.apply(accepted("open-oldest", ts=0))
    for i in range(MAX_ORDERS + 50):
        cid = f"o{i}"
        view.apply(accepted(cid, ts=i + 1))
        view.apply(filled(cid, f"e{i}", "10", "100", cum="10", leaves="0"))

    orders = view.blotter.orders
    assert len(orders) == MAX_ORDERS
    assert "open-oldest" in orders  # still working: kept while ended ones can go
    assert "o0" not in orders and f"o{MAX_ORDERS + 49}" in orders
    assert view.blotter.find("o0") is None  # its alias went with it
    assert len(view.blotter.fills) <= 100


def test_blotter_when_list_orders_and_live_fills_overlap_then_nothing_counted_twice() -> None:
    view = TradingView()
    view.apply(accepted("o1"))
    view.apply(filled("o1", "e1", "4", "100", cum="4", leaves="6"))  # live, before the reply
    view.blotter.load(
        [order_row("o1", "accepted", "0", None), order_row("o2", "filled", "10", "99")]
    )

    o1, o2 = view.blotter.find("o1"), view.blotter.find("o2")
    assert o1 is not None and o2 is not None
    assert (o1.status, o1.filled_qty) == ("partially_filled", D(4))  # the older reply lost
    assert (o2.status, o2.filled_qty, o2.avg_price) == ("filled", D(10), D(99))
    assert view.blotter.loaded

    view.apply(filled("o2", "e9", "10", "99", cum="10", leaves="0"))  # in the reply already
    assert view.blotter.find("o2").filled_qty == D(10)  # type: ignore[union-attr]


def test_blotter_when_a_row_changes_then_only_its_rev_moves() -> None:
    view = TradingView()
    view.apply(accepted("o1"))
    view.apply(accepted("o2"))
    before = {k: o.rev for k, o in view.blotter.orders.items()}
    view.apply(filled("o2", "e1", "1", "100", cum="1", leaves="9"))
    after = {k: o.rev for k, o in view.blotter.orders.items()}
    assert after["o1"] == before["o1"] and after["o2"] > before["o2"]


# --- positions ---------------------------------------------------------------------------


def position(qty: str, ts: int, realized: str = "0") -> PositionChanged:
    return PositionChanged(
        ts_event=ts,
        account="desk1",
        symbol="AAA",
        qty=D(qty),
        avg_price=D(100),
        realized_pnl=D(realized),
        unrealized_pnl=D(0),
        mark_price=D(100),
    )


def test_positions_when_changed_then_latest_kept_and_an_older_snapshot_ignored() -> None:
    view = TradingView()
    view.apply(position("10", ts=5))
    view.load_positions(
        [
            PositionRow(
                account="desk1",
                symbol="AAA",
                qty=D(4),
                avg_price=D(100),
                realized_pnl=D(0),
                unrealized_pnl=None,
                mark_price=None,
                ts_updated=3,
            )
        ]
    )
    assert view.positions[("desk1", "AAA")].qty == D(10)
    view.apply(position("-2", ts=6, realized="12.5"))
    p = view.positions[("desk1", "AAA")]
    assert (p.qty, p.realized_pnl) == (D(-2), D("12.5"))
    assert view.positions_loaded


def test_positions_when_a_quote_moves_then_unrealized_pnl_at_its_mid() -> None:
    view = TradingView()
    view.apply(position("-2", ts=1))
    version = view.positions_version
    view.apply(
        QuoteUpdated(
            ts_event=2,
            symbol="AAA",
            bid=100.9,
            ask=101.1,
            bid_size=1,
            ask_size=1,
            last=101,
            origin="synthetic",
        )
    )
    p = view.positions[("desk1", "AAA")]
    assert p.mark_price == D(101) and p.unrealized_pnl == D(-2)
    assert view.positions_version > version

"""The venue service with fake contexts: order entry, write-ahead, restart, liquidity."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeContext, FakeNetwork

from app import database
from app.settings import Settings, load_settings
from engine.bus.commands.venue import (
    BookSnapshot,
    GetBook,
    GetVenueStatus,
    SetHalt,
    SetInstrument,
)
from engine.bus.events import (
    BookUpdated,
    FeedStateChanged,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    QuoteUpdated,
    TradePrinted,
    TradeReported,
)
from engine.clock import FakeClock
from engine.venue.protocol import (
    ENCODER,
    REPORT_DECODER,
    CancelOrder,
    LoggedOn,
    Logon,
    NewOrder,
    ReplaceOrder,
    StatusReport,
    StatusRequest,
)
from engine.venue.service import VenueService, instrument_defaults

D = Decimal


class Client:
    """An order-entry session on the fake network."""

    def __init__(self, network: FakeNetwork, endpoint: str, session: str = "oms") -> None:
        self.network = network
        self.reports: list[Any] = []
        ctx = FakeContext("client", network=network)
        self.channel = ctx.open_channel("orders", "connect", endpoint, self._got, "x")
        self.session = session

    def _got(self, _peer: bytes, frames: list[bytes]) -> None:
        self.reports.append(REPORT_DECODER.decode(frames[0]))

    def send(self, request: Any) -> list[Any]:
        start = len(self.reports)
        self.channel.send([ENCODER.encode(request)])
        self.network.run()
        return [r.body for r in self.reports[start:]]

    def logon(self) -> list[Any]:
        return self.send(Logon(session=self.session))


def order(
    cid: str, side: str = "buy", qty: str = "10", price: str | None = "100.00", **kw: Any
) -> NewOrder:
    return NewOrder(
        account=kw.pop("account", "acct1"),
        client_order_id=cid,
        symbol=kw.pop("symbol", "AAA"),
        side=side,  # type: ignore[arg-type]
        qty=D(qty),
        price=None if price is None else D(price),
        **kw,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        environ={
            "QSUITE__APP__DATA_DIR": str(tmp_path),
            "QSUITE__VENUE__ORDER_ENTRY": "inproc://orders",
            "QSUITE__VENUE__REFILL_S": "0",
        }
    )


def start(
    settings: Settings,
    network: FakeNetwork,
    recent_quotes: Callable[[], list[QuoteUpdated]] | None = None,
) -> tuple[VenueService, FakeContext]:
    service = VenueService(
        settings.venue, engine=database.open_database(settings), recent_quotes=recent_quotes
    )
    # an instrument of the venue, as if the feed had quoted it
    service.store.instrument("AAA", instrument_defaults(settings.venue))
    ctx = FakeContext("venue", network=network)
    service.start(ctx)
    return service, ctx


def test_new_order_before_logon_then_rejected_not_logged_on(settings: Settings) -> None:
    network = FakeNetwork()
    start(settings, network)
    client = Client(network, "inproc://orders")
    (body,) = client.send(order("c1"))
    assert isinstance(body, OrderRejected) and body.reason == "not_logged_on"


def test_orders_match_and_reports_go_to_each_owner_with_session_seq(settings: Settings) -> None:
    network = FakeNetwork()
    service, ctx = start(settings, network)
    a, b = Client(network, "inproc://orders", "a"), Client(network, "inproc://orders", "b")
    assert isinstance(a.logon()[0], LoggedOn) and isinstance(b.logon()[0], LoggedOn)
    (accepted,) = a.send(order("s1", "sell", "10", "100.05", account="seller"))
    assert isinstance(accepted, OrderAccepted) and accepted.price == D("100.05")
    got = b.send(order("b1", "buy", "4", "100.10", account="buyer"))
    assert [type(r) for r in got] == [OrderAccepted, OrderFilled]
    fill = got[1]
    assert (fill.qty, fill.price, fill.liquidity, fill.leaves_qty) == (
        D(4),
        D("100.05"),
        "taker",
        D(0),
    )
    maker = a.reports[-1].body
    assert (
        isinstance(maker, OrderFilled) and maker.liquidity == "maker" and maker.leaves_qty == D(6)
    )
    assert [r.seq for r in a.reports] == [1, 2, 3] and [r.seq for r in b.reports] == [1, 2, 3]
    assert {r.venue_epoch for r in a.reports} == {service.epoch}
    topics = [t for t, _ in ctx.published]
    assert "venue.order.buyer" in topics and "venue.order.seller" in topics
    assert "venue.trade.AAA" in topics and "venue.book.AAA" in topics
    assert len(ctx.events(TradePrinted)) == 1


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (order("x", qty="0"), "qty_not_positive"),
        (order("x", qty="-5"), "qty_not_positive"),
        (order("x", qty="1.5"), "qty_off_lot"),
        (order("x", price="100.001"), "price_off_tick"),
        (order("x", qty="NaN"), "qty_not_finite"),
        (order("x", price="Infinity"), "price_not_finite"),
        (order("x", account="_mm"), "account_invalid"),
        (order("x", symbol="BAD SYMBOL"), "unknown_symbol"),
        (order("x", price=None), "price_required"),
    ],
)
def test_bad_request_then_rejected_with_reason_and_book_untouched(
    settings: Settings, request_: NewOrder, reason: str
) -> None:
    network = FakeNetwork()
    service, _ = start(settings, network)
    client = Client(network, "inproc://orders")
    client.logon()
    (body,) = client.send(request_)
    assert isinstance(body, OrderRejected) and body.reason == reason, body
    book = service.books.get("AAA")
    assert book is None or book.open_orders() == []


def test_duplicate_client_order_id_rejected_also_after_restart(settings: Settings) -> None:
    network = FakeNetwork()
    start(settings, network)
    client = Client(network, "inproc://orders")
    client.logon()
    client.send(order("dup"))
    (again,) = client.send(order("dup"))
    assert isinstance(again, OrderRejected) and again.reason == "duplicate_client_order_id"
    network2 = FakeNetwork()
    start(settings, network2)
    client2 = Client(network2, "inproc://orders")
    client2.logon()
    (after,) = client2.send(order("dup"))
    assert isinstance(after, OrderRejected) and after.reason == "duplicate_client_order_id"


def test_restart_restores_resting_orders_in_priority_and_answers_status(
    settings: Settings,
) -> None:
    network = FakeNetwork()
    start(settings, network)
    client = Client(network, "inproc://orders")
    client.logon()
    client.send(order("first", "buy", "5", "99.00"))
    client.send(order("second", "buy", "5", "99.00"))
    client.send(order("gone", "buy", "5", "98.00"))
    client.send(
        CancelOrder(
            account="acct1", client_order_id="gone-c", orig_client_order_id="gone", symbol="AAA"
        )
    )
    client.send(order("hit", "sell", "3", "99.00", account="other"))  # fills 'first' for 3
    # the venue dies here; a new one starts on the same database
    network2 = FakeNetwork()
    service2, _ = start(settings, network2)
    book = service2.books["AAA"]
    resting = [(o.client_order_id, o.leaves_qty) for o in book.open_orders()]
    assert resting == [("first", 2), ("second", 5)]
    client2 = Client(network2, "inproc://orders")
    client2.logon()
    (report,) = client2.send(
        StatusRequest(request_id="r1", client_order_ids=["acct1/first", "acct1/gone", "acct1/nope"])
    )
    assert isinstance(report, StatusReport)
    status = {o.client_order_id: o for o in report.orders}
    assert status["first"].status == "partially_filled" and status["first"].cum_qty == D(3)
    assert [f.qty for f in status["first"].fills] == [D(3)]
    assert status["gone"].status == "cancelled"
    assert status["nope"].status == "unknown"
    assert status["second"].status == "accepted"  # an open order of the session
    (fill_after,) = [
        r
        for r in client2.send(order("hit2", "sell", "2", "99.00", account="other"))
        if isinstance(r, OrderAccepted)
    ]
    assert fill_after.client_order_id == "hit2"


def test_replace_reported_and_stored(settings: Settings) -> None:
    network = FakeNetwork()
    _service, _ = start(settings, network)
    client = Client(network, "inproc://orders")
    client.logon()
    client.send(order("r1", "buy", "10", "99.00"))
    (replaced,) = client.send(
        ReplaceOrder(
            account="acct1",
            client_order_id="r1-r",
            orig_client_order_id="r1",
            symbol="AAA",
            qty=D(6),
        )
    )
    assert isinstance(replaced, OrderReplaced) and replaced.priority_kept
    (dup,) = client.send(order("r1-r"))
    assert isinstance(dup, OrderRejected) and dup.reason == "duplicate_client_order_id"


def test_quotes_build_market_maker_ladder_and_scenario_changes_it(settings: Settings) -> None:
    network = FakeNetwork()
    _service, ctx = start(settings, network)

    _quote(ctx, 100.00, 100.02)
    (snap,) = [ctx.send(GetBook(symbol="AAA", depth=10))]
    assert [p for p, _ in snap.bids] == [
        D("100.00"),
        D("99.99"),
        D("99.98"),
        D("99.97"),
        D("99.96"),
    ]
    assert next(p for p, _ in snap.asks) == D("100.02")
    assert {q for _, q in snap.bids} == {D(500)}
    ctx.deliver(
        "md.feed.synthetic",
        FeedStateChanged(
            ts_event=2, feed="synthetic", mode="simulated", breaker="closed", scenario="illiquid"
        ),
    )
    _quote(ctx, 100.00, 100.60)
    thin = ctx.send(GetBook(symbol="AAA", depth=10))
    assert {q for _, q in thin.bids} == {D(50)}
    assert thin.asks[1][0] - thin.asks[0][0] == D("0.05")  # 5x spacing
    assert ctx.send(GetVenueStatus()).scenario == "illiquid"


def test_flash_crash_sweeps_bids_then_book_refills(settings: Settings) -> None:
    network = FakeNetwork()
    _service, ctx = start(settings, network)
    _quote(ctx, 100.0, 100.02, ts=1)
    before = len(ctx.events(TradePrinted))
    ctx.deliver(
        "md.feed.synthetic",
        FeedStateChanged(
            ts_event=2, feed="synthetic", mode="simulated", breaker="closed", scenario="flash_crash"
        ),
    )
    swept = ctx.events(TradePrinted)[before:]
    assert sum(t.qty for t in swept) == 5 * 500  # every market-maker bid taken
    _quote(ctx, 95.0, 95.10, ts=3)
    book = ctx.send(GetBook(symbol="AAA", depth=10))
    assert book.bids and book.bids[0][0] == D("95.00") and book.bids[0][1] == D(150)


def test_flow_trades_fill_resting_client_orders(settings: Settings) -> None:
    network = FakeNetwork()
    _service, ctx = start(settings, network)
    client = Client(network, "inproc://orders")
    client.logon()
    _quote(ctx, 99.0, 99.5, ts=1)
    client.send(order("passive", "buy", "10", "99.20"))  # inside the market makers' spread
    ctx.deliver(
        "md.trade.AAA",
        TradeReported(
            ts_event=2, symbol="AAA", price=99.2, size=4, aggressor="sell", origin="synthetic"
        ),
    )
    network.run()
    fills = [r.body for r in client.reports if isinstance(r.body, OrderFilled)]
    assert [(f.qty, f.price, f.liquidity) for f in fills] == [(D(4), D("99.20"), "maker")]


def test_halt_rejects_new_orders_and_cancels_open_when_asked(settings: Settings) -> None:
    network = FakeNetwork()
    service, ctx = start(settings, network)
    client = Client(network, "inproc://orders")
    client.logon()
    client.send(order("o1"))
    result = ctx.send(SetHalt(symbol="AAA", halted=True, cancel_open=True, reason="test"))
    assert result.symbols == ["AAA"] and result.cancelled == 1
    network.run()
    assert isinstance(client.reports[-1].body, OrderCancelled)
    (body,) = client.send(order("o2"))
    assert isinstance(body, OrderRejected) and body.reason == "halted"
    assert service.health()[0] == "degraded"
    ctx.send(SetHalt(symbol="AAA", halted=False))
    assert isinstance(client.send(order("o3"))[0], OrderAccepted)
    assert not any(isinstance(e, BookUpdated) and e.snapshot for e in ctx.events(BookUpdated))


def test_day_end_expires_day_orders_and_keeps_gtc(settings: Settings) -> None:
    network = FakeNetwork()
    service, ctx = start(settings, network)
    client = Client(network, "inproc://orders")
    client.logon()
    client.send(order("day1", "buy", "5", "99.00"))
    client.send(order("gtc1", "buy", "5", "98.00", tif="gtc"))
    ctx.advance((service._day_end - ctx.clock.time_ns()) / 1e9 + 1.5, step=60.0)
    network.run()
    cancelled = [r.body for r in client.reports if isinstance(r.body, OrderCancelled)]
    assert [(c.client_order_id, c.reason) for c in cancelled] == [("day1", "expired")]
    assert [o.client_order_id for o in service.books["AAA"].open_orders()] == ["gtc1"]
    assert service._day_end > ctx.clock.time_ns()


def test_next_day_end_is_strictly_after_now() -> None:
    from engine.venue.service import next_day_end

    day = 86_400 * 10**9
    midnight = 1_700_006_400 * 10**9 // day * day
    assert next_day_end(midnight, "22:00") == midnight + 22 * 3600 * 10**9
    assert next_day_end(midnight + 22 * 3600 * 10**9, "22:00") == midnight + day + 22 * 3600 * 10**9


def test_set_instrument_changes_liquidity_now_and_grid_only_without_resting_orders(
    settings: Settings,
) -> None:
    from engine.errors import CommandError

    network = FakeNetwork()
    _service, ctx = start(settings, network)
    client = Client(network, "inproc://orders")
    client.logon()
    client.send(order("rest", "buy", "5", "99.00"))
    thin = ctx.send(SetInstrument(symbol="AAA", base_liquidity=50.0))
    assert thin.base_liquidity == 50.0 and thin.tick_size == D("0.01")
    _quote(ctx, 100.0, 100.02, ts=1)
    assert ctx.send(GetBook(symbol="AAA")).asks[0][1] == D(50)
    with pytest.raises(CommandError, match="cancel them"):
        ctx.send(SetInstrument(symbol="AAA", tick_size=D("0.05")))
    client.send(
        CancelOrder(
            account="acct1", client_order_id="rest-c", orig_client_order_id="rest", symbol="AAA"
        )
    )
    coarse = ctx.send(SetInstrument(symbol="AAA", tick_size=D("0.05")))
    assert coarse.tick_size == D("0.05") and ctx.send(GetBook(symbol="AAA")).tick_size == D("0.05")
    (off,) = client.send(order("fine", "buy", "5", "99.01"))
    assert isinstance(off, OrderRejected) and off.reason == "price_off_tick"
    with pytest.raises(CommandError, match="positive"):
        ctx.send(SetInstrument(symbol="AAA", lot_size=D("-1")))


def _quote(ctx: FakeContext, bid: float, ask: float, ts: int = 1) -> None:
    ctx.deliver("md.quote.AAA", _quote_event(bid, ask, ts))


def _quote_event(bid: float, ask: float, ts: int) -> QuoteUpdated:
    return QuoteUpdated(
        ts_event=ts,
        symbol="AAA",
        bid=bid,
        ask=ask,
        bid_size=1,
        ask_size=1,
        last=bid,
        origin="synthetic",
    )


def _scenario(ctx: FakeContext, scenario: str, ts: int = 2) -> None:
    ctx.deliver(
        "md.feed.synthetic",
        FeedStateChanged(
            ts_event=ts, feed="synthetic", mode="simulated", breaker="closed", scenario=scenario
        ),
    )


def _book(ctx: FakeContext) -> BookSnapshot:
    snapshot = ctx.send(GetBook(symbol="AAA", depth=10))
    assert isinstance(snapshot, BookSnapshot)
    return snapshot


def _maker_levels(book: BookSnapshot) -> list[tuple[Decimal, Decimal]]:
    return [*book.bids, *book.asks]


def test_restart_when_no_quote_yet_then_book_holds_only_restored_orders_until_the_feed_quotes(
    settings: Settings,
) -> None:
    """The market makers' quotes are not stored: a restarted venue without a cached quote
    shows no ladder until the feed's next quote (a trade print, seconds apart), whatever
    the scenario says
    meanwhile. A "calm" book read in that window is empty, not calm (the CLI test's
    reference book must wait for the ladder)."""
    network = FakeNetwork()
    service, ctx = start(settings, network)
    _quote(ctx, 100.00, 100.02)
    client = Client(network, "inproc://orders")
    client.logon()
    client.send(order("rest", "buy", "7", "95.00"))
    assert not [r for r in service.store.load()[0] if r.account == "_mm"]
    # the venue dies here (kill -9); the supervisor starts a new one on the same database
    service2, ctx2 = start(settings, FakeNetwork())
    before = _book(ctx2)
    assert before.bids == [(D("95.00"), D(7))] and before.asks == []
    _scenario(ctx2, "illiquid")  # before any quote: nothing to re-quote yet
    assert _book(ctx2).bids == [(D("95.00"), D(7))]
    assert service2.makers["AAA"].scenario == "illiquid"
    _quote(ctx2, 100.00, 100.02)
    thin = _book(ctx2)
    assert [p for p, _ in thin.bids[:2]] == [D("100.00"), D("99.95")]  # 5x spacing
    assert {q for p, q in _maker_levels(thin) if p != D("95.00")} == {D(50)}


def test_restart_then_quote_then_illiquid_thins_every_level_at_once(settings: Settings) -> None:
    network = FakeNetwork()
    _service, ctx = start(settings, network)
    _scenario(ctx, "calm")
    _quote(ctx, 100.00, 100.02)
    service2, ctx2 = start(settings, FakeNetwork())
    _scenario(ctx2, "calm")  # the feed's re-announcement
    _quote(ctx2, 100.00, 100.02)
    calm = _book(ctx2)
    assert {q for _, q in _maker_levels(calm)} == {D(500)} and len(calm.bids) == 5
    _scenario(ctx2, "illiquid")  # no quote needed: the last one is re-quoted
    thin = _book(ctx2)
    assert {q for _, q in _maker_levels(thin)} == {D(50)}
    assert thin.bids[0][0] - thin.bids[1][0] == D("0.05")
    assert len([o for o in service2.books["AAA"].open_orders() if o.account == "_mm"]) == 10
    _scenario(ctx2, "illiquid", ts=3)  # re-announced: no change, nothing re-quoted
    assert _book(ctx2).book_seq == thin.book_seq


def test_scenario_before_any_book_then_first_book_quotes_in_it(settings: Settings) -> None:
    network = FakeNetwork()
    service, ctx = start(settings, network)
    _scenario(ctx, "illiquid")  # no book, no market maker yet
    _scenario(ctx, "illiquid", ts=3)  # the re-announcement is "no change", and need not be
    _quote(ctx, 100.00, 100.02)
    book = _book(ctx)
    assert {q for _, q in _maker_levels(book)} == {D(50)}
    assert service.makers["AAA"].scenario == "illiquid"


def test_start_when_feed_cached_a_recent_quote_then_makers_quote_before_the_next_one(
    settings: Settings,
) -> None:
    now = FakeClock().time_ns()
    cached = [_quote_event(100.00, 100.02, now - 60 * 10**9)]  # a minute old

    _service, ctx = start(settings, FakeNetwork(), lambda: cached)

    book = _book(ctx)
    assert book.bids[0][0] == D("100.00") and book.asks[0][0] == D("100.02")
    assert {q for _, q in _maker_levels(book)} == {D(500)} and len(book.bids) == 5


def test_start_when_cached_quote_older_than_the_limit_then_waits_for_the_feed(
    settings: Settings,
) -> None:
    now = FakeClock().time_ns()
    cached = [_quote_event(100.00, 100.02, now - 301 * 10**9)]  # seed_quote_max_age_s 300

    service, ctx = start(settings, FakeNetwork(), lambda: cached)

    assert "AAA" not in service.books
    _quote(ctx, 101.00, 101.02, ts=now)
    assert _book(ctx).bids[0][0] == D("101.00")


def test_start_when_price_cache_unreadable_then_starts_and_waits_for_the_feed(
    settings: Settings,
) -> None:
    def broken() -> list[QuoteUpdated]:
        raise OSError("disk I/O error")

    service, ctx = start(settings, FakeNetwork(), broken)

    assert service.books == {} and service.health()[0] == "up"
    _quote(ctx, 100.00, 100.02)
    assert _book(ctx).bids[0][0] == D("100.00")


def test_order_when_symbol_not_an_instrument_then_unknown_symbol_until_an_operator_adds_it(
    settings: Settings,
) -> None:
    network = FakeNetwork()
    service, ctx = start(settings, network)
    client = Client(network, "inproc://orders")
    client.logon()

    (refused,) = client.send(order("z1", symbol="ZZZ"))

    assert isinstance(refused, OrderRejected) and refused.reason == "unknown_symbol"
    assert "ZZZ is not traded here" in refused.message
    assert "`qsuite ctl instrument ZZZ` adds it" in refused.message
    assert "ZZZ" not in service.books and service.store.find_instrument("ZZZ") is None
    ctx.send(SetInstrument(symbol="ZZZ", lot_size=D(1)))
    (accepted,) = client.send(order("z2", symbol="ZZZ"))
    assert isinstance(accepted, OrderAccepted)

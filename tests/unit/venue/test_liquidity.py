"""Market makers and flow against a real book: ladder, requote, refill, scenarios."""

from __future__ import annotations

from decimal import Decimal

from engine.bus.events import OrderFilled, TradePrinted
from engine.venue.book import OrderBook
from engine.venue.instrument import InstrumentSpec
from engine.venue.liquidity import MM_ACCOUNT, Flow, LiquidityParams, MarketMaker

SEC = 1_000_000_000


def setup(refill_s: float = 1.0) -> tuple[OrderBook, MarketMaker]:
    book = OrderBook(InstrumentSpec("AAA", Decimal("0.01"), Decimal(1)))
    params = LiquidityParams(
        levels=3, spacing_ticks=2, size_lots=100, refill_ns=int(refill_s * SEC)
    )
    return book, MarketMaker(book, params)


def test_quote_builds_ladder_from_rounded_bid_and_ask() -> None:
    book, mm = setup()
    mm.quote(100.004, 100.016, ts=1)
    bids, asks = book.depth_ticks(10)
    assert bids == [(10000, 100), (9998, 100), (9996, 100)]
    assert asks == [(10002, 100), (10004, 100), (10006, 100)]


def test_quote_when_market_moves_then_stale_levels_cancelled_and_new_ones_added() -> None:
    book, mm = setup()
    mm.quote(100.00, 100.02, ts=1)
    mm.quote(100.04, 100.06, ts=2)
    bids, asks = book.depth_ticks(10)
    assert [p for p, _ in bids] == [10004, 10002, 10000]
    assert [p for p, _ in asks] == [10006, 10008, 10010]
    assert len([o for o in book.open_orders() if o.account == MM_ACCOUNT]) == 6


def test_quote_never_crosses_a_resting_client_order() -> None:
    book, mm = setup()
    book.submit("client", "c1", "sell", 5, 10001, ts=0)  # inside where the maker would bid
    mm.quote(100.02, 100.04, ts=1)
    assert book.best_bid() is not None and book.best_bid() < 10001  # type: ignore[operator]
    assert not any(o.account == "client" and o.cum_qty for o in book.open_orders())


def test_hit_level_refills_only_after_refill_time() -> None:
    book, mm = setup(refill_s=1.0)
    mm.quote(100.00, 100.02, ts=0)
    events = book.submit("taker", "t1", "buy", 40, 10002, tif="ioc", ts=1)
    mm.on_events(events, ts=1)
    mm.quote(100.00, 100.02, ts=SEC // 2)
    assert book.depth_ticks(1)[1] == [(10002, 60)]
    mm.quote(100.00, 100.02, ts=SEC + 1)
    assert book.depth_ticks(1)[1] == [(10002, 100)]


def test_scenario_illiquid_thins_and_widens_the_ladder() -> None:
    book, mm = setup()
    mm.quote(100.00, 100.02, ts=1)
    mm.set_scenario("illiquid", ts=2)
    bids, asks = book.depth_ticks(10)
    assert {q for _, q in bids + asks} == {10}
    assert bids[0][0] - bids[1][0] == 2 * 5


def test_flash_crash_sweeps_every_market_maker_bid() -> None:
    book, mm = setup()
    mm.quote(100.00, 100.02, ts=1)
    events = mm.set_scenario("flash_crash", ts=2)
    printed = [e for e in events if isinstance(e, TradePrinted)]
    assert sum(p.qty for p in printed) == 300
    assert {p.aggressor for p in printed} == {"sell"}
    assert book.best_bid() is not None  # re-quoted (thin) right after the sweep


def test_flow_replays_prints_against_the_book() -> None:
    book, mm = setup()
    mm.quote(100.00, 100.02, ts=1)
    flow = Flow(book)
    events = flow.trade(100.02, 30, "buy", ts=2)
    fills = [e for e in events if isinstance(e, OrderFilled) and e.liquidity == "taker"]
    assert [(f.qty, f.price) for f in fills] == [(Decimal(30), Decimal("100.02"))]
    assert flow.trade(float("nan"), 10, "buy", ts=3) == []
    assert flow.trade(100.0, 0, "sell", ts=3) == []

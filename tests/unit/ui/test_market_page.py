"""The market page from bounded view state: real and simulated quotes told apart."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from nicegui import ui
from nicegui.testing import User, user_simulation

from engine.bus.events import FeedStateChanged, QuoteUpdated
from ui.pages import market
from ui.state import MAX_SYMBOLS, MarketView

pytestmark = pytest.mark.timeout(30)


def quote(symbol: str, last: float, *, simulated: bool) -> QuoteUpdated:
    return QuoteUpdated(
        ts_event=1,
        symbol=symbol,
        bid=last - 0.01,
        ask=last + 0.01,
        bid_size=1,
        ask_size=1,
        last=last,
        origin="synthetic" if simulated else "yahoo",
        simulated=simulated,
    )


@pytest.fixture
def view() -> MarketView:
    return MarketView()


@pytest.fixture
async def user(view: MarketView) -> AsyncIterator[User]:
    async with user_simulation(lambda: market.build(view)) as simulated:
        yield simulated


async def test_market_page_when_simulated_quotes_then_flagged_and_feed_mode_shown(
    user: User, view: MarketView
) -> None:
    view.apply(
        FeedStateChanged(
            ts_event=1, feed="yahoo", mode="simulated", breaker="open", reason="yahoo unreachable"
        )
    )
    view.apply(quote("AAA", 10.0, simulated=True))
    view.apply(quote("AAA", 10.5, simulated=True))
    view.apply(quote("BBB", 20.0, simulated=False))

    await user.open("/")
    await user.should_see(marker="feed-mode", content="SIMULATED")
    await user.should_see(marker="feed-reason", content="yahoo unreachable")
    (table,) = user.find(marker="watchlist").elements
    assert isinstance(table, ui.table)
    rows = {r["symbol"]: r for r in table.rows}
    assert rows["AAA"]["source"] == "SIMULATED" and rows["AAA"]["last"] == "10.50"
    assert rows["AAA"]["change"] == "+5.00"
    assert rows["BBB"]["source"] == "YAHOO"


def test_market_view_when_more_symbols_than_the_cap_then_bounded() -> None:
    view = MarketView()
    for i in range(MAX_SYMBOLS + 50):
        view.apply(quote(f"S{i}", 1.0 + i, simulated=True))
    assert len(view.quotes) == MAX_SYMBOLS
    assert view.feed_mode == "simulated"  # inferred before the feed says so

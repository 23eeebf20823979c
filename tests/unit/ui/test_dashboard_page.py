"""The Dashboard rendered in-process by NiceGUI's simulated ``User``, against a fake bridge
that holds a real ``ChartBoard`` and ``MarketView`` and a fake control plane: no
sockets, no browser."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from nicegui import ui
from nicegui.testing import User, user_simulation

from app.client import QSuiteClient
from app.settings import Settings, load_settings
from engine.bus.commands import Command, Result
from engine.bus.commands.analysis import GetIndicators, IndicatorSnapshot, SignalList
from engine.bus.commands.market import BarSeries, GetBars
from engine.bus.events import BarClosed, QuoteUpdated
from engine.errors import EngineUnreachable
from engine.persistence.models.market import BarFlag
from ui.chart_state import ChartBoard
from ui.pages import dashboard
from ui.state import MarketView

pytestmark = pytest.mark.timeout(30)

MIN = 60_000_000_000
T0 = 1_700_000_040 * 1_000_000_000  # 2023-11-14 22:14 UTC, on a minute


def history(symbol: str, interval: str, n: int, *, simulated: bool = False) -> BarSeries:
    ts = [T0 + i * MIN for i in range(n)]
    closes = [100.0 + i for i in range(n)]
    return BarSeries(
        symbol=symbol,
        interval=interval,
        ts=ts,
        open=closes,
        high=[c + 1 for c in closes],
        low=[c - 1 for c in closes],
        close=closes,
        volume=[10.0] * n,
        flags=[int(BarFlag.SIMULATED) if simulated else 0] * n,
        source=["synthetic" if simulated else "yahoo"] * n,
    )


class FakeClient:
    """The control plane: bars for the symbols in ``bars``, nothing else yet."""

    expect = staticmethod(QSuiteClient.expect)

    def __init__(self) -> None:
        self.bars: dict[tuple[str, str], BarSeries] = {}
        self.error: Exception | None = None
        self.sent: list[Command] = []

    async def send(self, command: Command, **_: Any) -> Result:
        self.sent.append(command)
        if self.error is not None:
            raise self.error
        if isinstance(command, GetBars):
            return self.bars.get(
                (command.symbol, command.interval), history(command.symbol, command.interval, 0)
            )
        if isinstance(command, GetIndicators):
            return IndicatorSnapshot(
                symbol=command.symbol, interval=command.interval, as_of=None, series=[]
            )
        return SignalList(signals=[])


class FakeBridge:
    """Stands in for ``ui.bridge.Bridge``: its chart and market views, settings and a
    fake control client."""

    def __init__(self) -> None:
        self.settings: Settings = load_settings(
            environ={}, overrides={"feed": {"watchlist": ["AAA", "BBB.L"], "interval": "1m"}}
        )
        self.client = FakeClient()
        self.charts = ChartBoard()
        self.market = MarketView()
        self.last_error = ""


@pytest.fixture
def bridge() -> FakeBridge:
    return FakeBridge()


@pytest.fixture
async def user(bridge: FakeBridge, caplog: pytest.LogCaptureFixture) -> AsyncIterator[User]:
    async with user_simulation(lambda: dashboard.build(bridge)) as simulated:
        yield simulated
    errors = [r.getMessage() for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    assert not errors, f"the page logged errors: {errors}"


async def eventually(predicate: Callable[[], Any], timeout_s: float = 3.0) -> Any:
    """The page redraws on its own timer: wait for it (polling, like ``should_see``)."""
    for _ in range(int(timeout_s / 0.05)):
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("the page did not get there in time")


def only(user: User, marker: str) -> Any:
    (element,) = user.find(marker=marker).elements
    return element


def candles(plot: ui.plotly) -> dict[str, Any] | None:
    assert isinstance(plot.figure, dict)
    found = [t for t in plot.figure["data"] if t["type"] == "candlestick"]
    return found[0] if found else None


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


async def test_dashboard_when_history_loaded_then_chart_shows_it_with_zoom_kept(
    user: User, bridge: FakeBridge
) -> None:
    bridge.client.bars[("AAA", "1m")] = history("AAA", "1m", 30, simulated=True)

    await user.open("/")

    plot = only(user, "chart")
    trace = await eventually(lambda: candles(plot))
    assert len(trace["x"]) == 30 and trace["x"][0] == T0 // 1_000_000
    assert plot.figure["layout"]["uirevision"] == "AAA/1m"
    await user.should_see(marker="chart-data", content="SIMULATED")
    assert only(user, "chart-data").props["color"] == "orange"
    assert ("AAA", "1m") in bridge.charts.series

    bridge.charts.apply(
        BarClosed(
            ts_event=T0 + 31 * MIN,
            symbol="AAA",
            interval="1m",
            ts=T0 + 30 * MIN,
            open=130.0,
            high=131.0,
            low=129.0,
            close=130.5,
            volume=5.0,
            origin="yahoo",
        )
    )

    await eventually(lambda: len(candles(plot)["x"]) == 31)  # type: ignore[index]
    assert plot.figure["layout"]["uirevision"] == "AAA/1m"  # same series: the zoom stays
    await user.should_see(marker="chart-data", content="MARKET DATA")


async def test_dashboard_when_symbol_and_interval_switched_then_that_series_shown(
    user: User, bridge: FakeBridge
) -> None:
    bridge.client.bars[("BBB.L", "1m")] = history("BBB.L", "1m", 5)
    bridge.client.bars[("BBB.L", "1d")] = history("BBB.L", "1d", 3)
    await user.open("/")
    await user.should_see(marker="chart-status", content="No bars yet for AAA 1m")

    user.find(marker="symbol").click()
    user.find("BBB.L").click()

    plot = only(user, "chart")
    await eventually(lambda: (candles(plot) or {}).get("name") == "BBB.L")
    assert plot.figure["layout"]["uirevision"] == "BBB.L/1m"  # another series: zoom resets

    user.find(marker="interval").click()
    user.find("1d").click()

    await eventually(lambda: len((candles(plot) or {}).get("x", ())) == 3)
    assert plot.figure["layout"]["uirevision"] == "BBB.L/1d"
    assert GetBars(symbol="BBB.L", interval="1d", limit=500) in bridge.client.sent


async def test_dashboard_when_no_bars_then_empty_state_says_which(
    user: User, bridge: FakeBridge
) -> None:
    await user.open("/")

    await user.should_see(marker="chart-status", content="No bars yet for AAA 1m")
    await user.should_see(marker="chart-data", content="NO DATA")
    plot = only(user, "chart")
    assert plot.figure["data"] == []
    assert plot.figure["layout"]["annotations"][0]["text"] == "No bars yet for AAA 1m"


async def test_dashboard_when_engine_unreachable_then_the_reason_shown(
    user: User, bridge: FakeBridge
) -> None:
    bridge.client.error = EngineUnreachable("ipc:///tmp/qs/feed", 3, 2500)
    bridge.last_error = "Engine unreachable at ipc:///tmp/qs/supervisor"

    await user.open("/")

    await user.should_see(
        marker="chart-status", content="Cannot load the bars of AAA 1m: Engine unreachable"
    )
    assert "text-negative" in only(user, "chart-status").classes


async def test_dashboard_when_quotes_then_watchlist_shows_last_change_spark_and_source(
    user: User, bridge: FakeBridge
) -> None:
    bridge.client.bars[("AAA", "1m")] = history("AAA", "1m", 10)
    bridge.market.apply(quote("AAA", 100.0, simulated=False))
    bridge.market.apply(quote("AAA", 110.0, simulated=False))
    bridge.market.apply(quote("BBB.L", 50.0, simulated=True))

    await user.open("/")

    table = only(user, "watchlist")
    assert isinstance(table, ui.table)
    await eventually(lambda: table.rows and table.rows[0]["spark"])
    rows = {r["symbol"]: r for r in table.rows}
    assert list(rows) == ["AAA", "BBB.L"]  # the watchlist's order
    assert (rows["AAA"]["last"], rows["AAA"]["change"], rows["AAA"]["up"]) == (
        "110.00",
        "+10.00",
        True,
    )
    assert rows["AAA"]["source"] == "YAHOO" and rows["BBB.L"]["source"] == "SIMULATED"
    assert len(rows["AAA"]["spark"].split()) == 11  # ten closes and the live price
    assert rows["BBB.L"]["spark"] == ""  # one point is no line


async def test_dashboard_when_studies_narrowed_then_chart_redrawn_without_them(
    user: User, bridge: FakeBridge
) -> None:
    bridge.client.bars[("AAA", "1m")] = history("AAA", "1m", 5)
    await user.open("/")
    plot = only(user, "chart")
    await eventually(lambda: candles(plot))
    assert "yaxis2" in plot.figure["layout"]  # volume

    studies = only(user, "studies")
    studies.set_value(["rsi"])

    await eventually(lambda: "yaxis2" not in plot.figure["layout"])
    assert plot.figure["layout"]["uirevision"] == "AAA/1m"


async def test_dashboard_when_a_watchlist_row_is_clicked_then_its_chart_shown(
    user: User, bridge: FakeBridge
) -> None:
    await user.open("/")

    user.find(marker="watchlist").trigger("rowClick", [{}, {"symbol": "BBB.L"}, 1])

    assert only(user, "symbol").value == "BBB.L"
    await user.should_see(marker="chart-status", content="No bars yet for BBB.L 1m")

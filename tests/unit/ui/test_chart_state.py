"""The Dashboard's chart state (bars, indicator values with forming previews, signals,
sparklines; bounded; completed from the control plane) and the figure built from it.
Pure logic: no sockets, no NiceGUI page."""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go
import pytest

from app.client import QSuiteClient
from app.settings import Settings, load_settings
from engine.bus.commands import Command, Result
from engine.bus.commands.analysis import (
    GetIndicators,
    GetSignals,
    IndicatorSeries,
    IndicatorSnapshot,
    SignalList,
    SignalRow,
)
from engine.bus.commands.market import BarSeries, GetBars
from engine.bus.events import BarClosed, IndicatorUpdated, QuoteUpdated, SignalRaised
from engine.errors import CommandError, EngineUnreachable, ErrorCode
from engine.persistence.models.market import BarFlag
from ui import chart_state
from ui.chart_state import MAX_SERIES, SPARK_POINTS, ChartBoard
from ui.components import chart_series
from ui.components.chart import CONFIG, chart_figure, chart_status, spark_points
from ui.components.chart_series import MAX_BARS, MAX_SIGNALS, Candle, Series

pytestmark = pytest.mark.timeout(30)

MIN = 60_000_000_000
"""One minute in ns: bar ``i`` opens at ``i * MIN``."""


def bar(i: int, close: float = 100.0, *, symbol: str = "AAA", interval: str = "1m") -> BarClosed:
    return BarClosed(
        ts_event=(i + 1) * MIN,
        symbol=symbol,
        interval=interval,
        ts=i * MIN,
        open=close - 1,
        high=close + 2,
        low=close - 2,
        close=close,
        volume=1_000 + i,
        origin="synthetic",
        simulated=True,
    )


def values(i: int, key: str, forming: bool = False, **outputs: float) -> IndicatorUpdated:
    return IndicatorUpdated(
        ts_event=(i + 1) * MIN,
        symbol="AAA",
        interval="1m",
        ts=i * MIN,
        indicator=key,
        values=outputs,
        forming=forming,
    )


def signal(i: int, kind: str, rule: str = "macd_cross") -> SignalRaised:
    return SignalRaised(
        ts_event=(i + 1) * MIN,
        symbol="AAA",
        interval="1m",
        ts=i * MIN,
        rule=rule,
        kind=kind,
        indicator="macd_12_26_9",
        strength=0.5,
    )


def bar_series(first: int, n: int, *, symbol: str = "AAA", flags: int = 0) -> BarSeries:
    ts = [(first + i) * MIN for i in range(n)]
    closes = [50.0 + i for i in range(n)]
    return BarSeries(
        symbol=symbol,
        interval="1m",
        ts=ts,
        open=closes,
        high=[c + 1 for c in closes],
        low=[c - 1 for c in closes],
        close=closes,
        volume=[10.0] * n,
        flags=[flags] * n,
        source=["synthetic"] * n,
    )


class FakeClient:
    """The control plane as a dict: command type → reply (or the error to raise)."""

    expect = staticmethod(QSuiteClient.expect)

    def __init__(self, replies: dict[type[Command], Any] | None = None) -> None:
        self.replies = replies or {}
        self.sent: list[Command] = []

    async def send(self, command: Command, **_: Any) -> Result:
        self.sent.append(command)
        reply = self.replies.get(type(command))
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            reply = reply(command)
        if reply is None:
            return _empty(command)
        assert isinstance(reply, Result)
        return reply


def _empty(command: Command) -> Result:
    if isinstance(command, GetBars):
        return bar_series(0, 0, symbol=command.symbol)
    if isinstance(command, GetIndicators):
        return IndicatorSnapshot(symbol=command.symbol, interval="1m", as_of=None, series=[])
    return SignalList(signals=[])


class FakeBridge:
    def __init__(self, client: FakeClient, watchlist: list[str] | None = None) -> None:
        self.client = client
        self.settings: Settings = load_settings(
            environ={}, overrides={"feed": {"watchlist": watchlist or ["AAA"]}}
        )


@pytest.fixture
def board() -> ChartBoard:
    return ChartBoard()


def test_apply_when_series_not_watched_then_ignored_but_sparkline_kept(board: ChartBoard) -> None:
    board.apply(bar(0, symbol="BBB"))
    board.apply(values(0, "rsi_14", value=50.0))
    board.apply(signal(0, "bullish_cross"))

    assert board.series == {}
    assert board.sparks == {"BBB": {0: 100.0}}


def test_apply_when_bars_arrive_out_of_order_then_ordered_and_bounded(board: ChartBoard) -> None:
    series = board.watch("AAA", "1m")
    for i in range(MAX_BARS + 10):
        board.apply(bar(i + 1))
    version = series.version

    board.apply(bar(5))  # older than the window: dropped at once
    board.apply(bar(MAX_BARS + 20))
    board.apply(bar(MAX_BARS + 15))  # late, but inside the window

    assert len(series.bars) == MAX_BARS
    assert list(series.bars) == sorted(series.bars)
    assert next(reversed(series.bars)) == (MAX_BARS + 20) * MIN
    assert (MAX_BARS + 15) * MIN in series.bars and 5 * MIN not in series.bars
    assert series.version > version and board.version > 0


def test_apply_when_bar_repeats_then_replaced_not_duplicated(board: ChartBoard) -> None:
    series = board.watch("AAA", "1m")
    board.apply(bar(1, 100.0))
    board.apply(bar(1, 101.0))

    assert [b.close for b in series.bars.values()] == [101.0]
    assert series.bars[MIN].simulated


def test_forming_preview_when_newer_then_kept_apart_from_closed_values(board: ChartBoard) -> None:
    series = board.watch("AAA", "1m")
    board.apply(values(1, "sma_20", value=10.0))
    board.apply(values(2, "sma_20", forming=True, value=10.5))
    board.apply(values(2, "sma_20", forming=True, value=10.7))  # the latest preview wins

    assert series.indicators["sma_20"] == {MIN: {"value": 10.0}}
    assert series.previews["sma_20"] == (2 * MIN, {"value": 10.7})


def test_forming_preview_when_its_bar_closes_then_replaced(board: ChartBoard) -> None:
    series = board.watch("AAA", "1m")
    board.apply(values(2, "sma_20", forming=True, value=10.5))

    board.apply(values(2, "sma_20", value=10.6))

    assert series.previews == {}
    assert series.indicators["sma_20"] == {2 * MIN: {"value": 10.6}}


def test_forming_preview_when_late_then_dropped(board: ChartBoard) -> None:
    series = board.watch("AAA", "1m")
    board.apply(values(3, "sma_20", value=10.0))

    board.apply(values(3, "sma_20", forming=True, value=9.0))
    board.apply(values(2, "sma_20", forming=True, value=9.0))

    assert series.previews == {}


def test_indicators_when_many_instances_then_capped(board: ChartBoard) -> None:
    series = board.watch("AAA", "1m")
    for n in range(chart_series.MAX_INDICATORS + 5):
        board.apply(values(1, f"sma_{n + 2}", value=1.0))

    assert len(series.indicators) == chart_series.MAX_INDICATORS


def test_signals_when_repeated_then_once_and_bounded(board: ChartBoard) -> None:
    series = board.watch("AAA", "1m")
    board.apply(signal(1, "bullish_cross"))
    board.apply(signal(1, "bullish_cross"))  # a replayed copy
    board.apply(signal(1, "oversold_exit", rule="rsi_cross"))
    assert len(series.signals) == 2

    for i in range(MAX_SIGNALS + 10):
        board.apply(signal(i + 2, "bearish_cross"))

    assert len(series.signals) == MAX_SIGNALS
    assert min(series.signals)[0] == 12 * MIN  # the oldest bars' signals went first


def test_watch_when_more_series_than_kept_then_least_recently_watched_goes(
    board: ChartBoard,
) -> None:
    for n in range(MAX_SERIES):
        board.watch(f"S{n}", "1m")
    board.watch("S0", "1m")  # on screen again: now the most recent

    board.watch("NEW", "1d")

    assert len(board.series) == MAX_SERIES
    assert ("S0", "1m") in board.series and ("S1", "1m") not in board.series


def test_apply_when_other_events_then_ignored(board: ChartBoard) -> None:
    board.watch("AAA", "1m")
    board.apply(
        QuoteUpdated(
            ts_event=1,
            symbol="AAA",
            bid=1,
            ask=2,
            bid_size=1,
            ask_size=1,
            last=1.5,
            origin="synthetic",
        )
    )
    assert board.version == 0


# --- late joiners ----------------------------------------------------------------------


async def test_sync_when_watched_then_history_loaded_once_and_bus_values_win(
    board: ChartBoard,
) -> None:
    series = board.watch("AAA", "1m")
    board.apply(bar(3, 999.0))  # live, before the history arrives
    board.apply(values(3, "rsi_14", value=70.0))
    board.apply(signal(3, "bullish_cross"))
    client = FakeClient(
        {
            GetBars: bar_series(0, 4, flags=int(BarFlag.SIMULATED)),
            GetIndicators: IndicatorSnapshot(
                symbol="AAA",
                interval="1m",
                as_of=3 * MIN,
                series=[
                    IndicatorSeries(
                        indicator="rsi_14",
                        ts=[2 * MIN, 3 * MIN],
                        values={"value": [40.0, 41.0]},
                    )
                ],
            ),
            GetSignals: SignalList(
                signals=[
                    SignalRow(
                        symbol="AAA",
                        interval="1m",
                        ts=3 * MIN,
                        rule="macd_cross",
                        kind="bullish_cross",
                        indicator="macd_12_26_9",
                        strength=0.5,
                    ),
                    SignalRow(
                        symbol="AAA",
                        interval="1m",
                        ts=1 * MIN,
                        rule="rsi_cross",
                        kind="oversold_exit",
                        indicator="rsi_14",
                        strength=0.2,
                        simulated=True,
                    ),
                ]
            ),
        }
    )

    await board.sync(FakeBridge(client))
    await board.sync(FakeBridge(client))

    assert client.sent == [
        GetBars(symbol="AAA", interval="1m", limit=SPARK_POINTS),  # the watchlist's sparkline
        GetBars(symbol="AAA", interval="1m", limit=MAX_BARS),
        GetIndicators(symbol="AAA", interval="1m", last=MAX_BARS),
        GetSignals(symbol="AAA", interval="1m", limit=MAX_SIGNALS),
    ]
    assert [b.close for b in series.bars.values()] == [50.0, 51.0, 52.0, 999.0]
    assert series.bars[0].simulated
    assert series.indicators["rsi_14"] == {2 * MIN: {"value": 40.0}, 3 * MIN: {"value": 70.0}}
    assert (
        len(series.signals) == 2 and series.signals[(MIN, "rsi_cross", "oversold_exit")].simulated
    )
    assert series.loaded == {"bars", "indicators", "signals"} and series.error == ""


async def test_sync_when_engine_unreachable_then_says_why_and_asks_each_process_once(
    board: ChartBoard, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1_000.0]
    monkeypatch.setattr(chart_state.time, "monotonic", lambda: now[0])
    board.watch("AAA", "1m")
    board.watch("BBB", "1m")
    unreachable = EngineUnreachable("ipc:///tmp/qs/feed", 3, 2500)
    client = FakeClient({GetBars: unreachable, GetIndicators: unreachable, GetSignals: unreachable})

    await board.sync(FakeBridge(client, ["AAA"]))  # never raises

    assert [type(c) for c in client.sent] == [GetBars, GetIndicators]  # feed, then analysis
    series = board.series[("AAA", "1m")]
    assert series.error.startswith("Cannot load the bars of AAA 1m: Engine unreachable at")
    assert "signals" in series.errors and series.loaded == set()
    assert board.sync_error.startswith("Cannot load the sparkline of AAA: Engine unreachable")

    await board.sync(FakeBridge(client, ["AAA"]))
    assert len(client.sent) == 2  # not again before RETRY_S

    now[0] += chart_state.RETRY_S
    client.replies = {}
    await board.sync(FakeBridge(client, ["AAA"]))
    assert series.error == "" and board.sync_error == ""
    assert series.loaded == {"bars", "indicators", "signals"}


async def test_sync_when_refused_then_the_code_and_words_kept(board: ChartBoard) -> None:
    board.watch("AAA", "1h")
    refusal = CommandError(ErrorCode.INVALID, "interval 1h is not analysed; analysed: 1m, 1d")
    client = FakeClient({GetIndicators: refusal})

    await board.sync(FakeBridge(client))

    series = board.series[("AAA", "1h")]
    assert series.error == (
        "Cannot load the indicators of AAA 1h: refused (invalid): "
        "interval 1h is not analysed; analysed: 1m, 1d"
    )
    assert series.loaded == {"bars", "signals"}


async def test_sync_when_reply_is_malformed_then_error_not_raised(board: ChartBoard) -> None:
    board.watch("AAA", "1m")
    client = FakeClient({GetBars: SignalList(signals=[])})  # the wrong kind of result

    await board.sync(FakeBridge(client))

    assert "expected BarSeries, got SignalList" in board.series[("AAA", "1m")].error


async def test_sync_when_watchlist_then_sparklines_loaded_and_bounded(board: ChartBoard) -> None:
    client = FakeClient({GetBars: lambda c: bar_series(0, SPARK_POINTS, symbol=c.symbol)})

    await board.sync(FakeBridge(client, ["AAA", "BBB"]))
    board.apply(bar(SPARK_POINTS, 7.0))
    board.apply(bar(SPARK_POINTS, 8.0, interval="1d"))  # not the feed's interval

    assert client.sent == [
        GetBars(symbol="AAA", interval="1m", limit=SPARK_POINTS),
        GetBars(symbol="BBB", interval="1m", limit=SPARK_POINTS),
    ]
    closes = list(board.sparks["AAA"].values())
    assert len(closes) == SPARK_POINTS and closes[-1] == 7.0 and closes[0] == 51.0
    assert board.spark_version > 0


# --- the figure ------------------------------------------------------------------------


def _filled(board: ChartBoard) -> Series:
    series = board.watch("AAA", "1m")
    for i in range(5):
        board.apply(bar(i, 100.0 + i))
        board.apply(values(i, "sma_20", value=math.nan if i == 0 else 99.0 + i))
        board.apply(values(i, "ema_50", value=98.0 + i))
        board.apply(
            values(i, "bbands_20_2p0_2p0", upperband=110.0, middleband=100.0, lowerband=90.0)
        )
        board.apply(values(i, "rsi_14", value=40.0 + i))
        board.apply(values(i, "macd_12_26_9", macd=0.5, macdsignal=0.25, macdhist=0.25))
    board.apply(values(5, "sma_20", forming=True, value=104.5))
    board.apply(signal(1, "bullish_cross"))
    board.apply(signal(2, "death_cross", rule="ma_cross"))
    board.apply(signal(3, "upper_breakout", rule="bollinger_breakout"))
    board.apply(signal(40, "bearish_cross"))  # its bar is not in the chart
    return series


def _trace(figure: dict[str, Any], name: str) -> dict[str, Any]:
    (trace,) = [t for t in figure["data"] if t.get("name") == name]
    return trace


def test_chart_figure_when_all_studies_then_candles_overlays_panels_and_markers(
    board: ChartBoard,
) -> None:
    figure = chart_figure(_filled(board))

    go.Figure(data=figure["data"], layout=figure["layout"])  # plotly's own validation
    candles = _trace(figure, "AAA")
    assert candles["type"] == "candlestick"
    assert candles["x"] == [i * 60_000 for i in range(5)]  # epoch ms on a date axis
    assert candles["close"] == [100.0, 101.0, 102.0, 103.0, 104.0]
    sma = _trace(figure, "SMA 20")
    assert sma["y"] == [None, 100.0, 101.0, 102.0, 103.0, 104.5]  # NaN as a gap, then preview
    assert sma["x"][-1] == 5 * 60_000
    assert _trace(figure, "EMA 50")["yaxis"] == "y"
    lower = _trace(figure, "BB 20 2.0 2.0 lower")
    assert lower["fill"] == "tonexty" and lower["y"][0] == 90.0
    assert _trace(figure, "Volume")["yaxis"] == "y2"
    assert _trace(figure, "RSI 14")["y"] == [40.0, 41.0, 42.0, 43.0, 44.0]
    assert _trace(figure, "Hist")["type"] == "bar" and _trace(figure, "MACD")["yaxis"] == "y4"
    up, down, other = (
        _trace(figure, name) for name in ("Bullish signals", "Bearish signals", "Other signals")
    )
    assert (up["x"], up["y"]) == ([60_000], [99.0])  # below the bar's low
    assert (down["x"], down["y"]) == ([120_000], [104.0])  # above the bar's high
    assert (other["x"], other["y"]) == ([180_000], [103.0])  # at the close
    assert "macd_cross: bullish_cross" in up["text"][0]
    layout = figure["layout"]
    assert layout["uirevision"] == "AAA/1m"  # the user's zoom survives redraws
    assert layout["xaxis"]["anchor"] == "y4" and layout["xaxis"]["rangeslider"]["visible"] is False
    assert layout["yaxis3"]["range"] == [0, 100]
    assert figure["config"] == CONFIG


def test_chart_figure_when_studies_chosen_then_only_those(board: ChartBoard) -> None:
    figure = chart_figure(_filled(board), ("bbands", "rsi"))

    names = {t["name"] for t in figure["data"]}
    assert "SMA 20" not in names and "Volume" not in names and "MACD" not in names
    assert {"BB 20 2.0 2.0", "BB 20 2.0 2.0 lower", "RSI 14"} <= names
    layout = figure["layout"]
    assert "yaxis2" not in layout and "yaxis4" not in layout
    assert layout["xaxis"]["anchor"] == "y3"
    assert layout["yaxis"]["domain"][0] == pytest.approx(layout["yaxis3"]["domain"][1] + 0.03)


def test_chart_figure_when_no_bars_then_empty_chart_says_so(board: ChartBoard) -> None:
    series = board.watch("AAA", "1d")

    figure = chart_figure(series)

    assert figure["data"] == []
    assert figure["layout"]["annotations"][0]["text"] == "No bars yet for AAA 1d"
    assert figure["layout"]["uirevision"] == "AAA/1d" and figure["config"] == CONFIG


def test_chart_status_when_empty_loading_unreachable_or_failed_then_says_which(
    board: ChartBoard,
) -> None:
    series = board.watch("AAA", "1m")
    assert chart_status(series, "AAA", "1m", "") == ("Loading AAA 1m…", False)
    series.loaded.add("bars")
    assert chart_status(series, "AAA", "1m", "") == ("No bars yet for AAA 1m", False)
    assert chart_status(series, "AAA", "1m", "Engine unreachable at x") == (
        "No bars for AAA 1m: Engine unreachable at x",
        True,
    )
    series.errors["bars"] = "Cannot load the bars of AAA 1m: refused"
    assert chart_status(series, "AAA", "1m", "") == (
        "Cannot load the bars of AAA 1m: refused",
        True,
    )
    series.errors.clear()
    series.add_bar(Candle(0, 1.0, 1.0, 1.0, 1.0, 1.0))
    assert chart_status(series, "AAA", "1m", "") == ("", False)
    text, problem = chart_status(series, "AAA", "1m", "Engine unreachable at x")
    assert problem and text.endswith("(the chart shows what arrived before)")


def test_spark_points_when_values_then_scaled_into_the_box() -> None:
    assert spark_points([1.0]) == ""
    assert spark_points([1.0, 3.0, 2.0], width=12, height=12) == "1.0,11.0 6.0,1.0 11.0,6.0"
    assert spark_points([5.0, 5.0], width=12, height=12) == "1.0,11.0 11.0,11.0"  # flat

"""The analysis process through the bus: bars in, indicators and signals out, persisted;
a backfill re-evaluated in batch and continued by streaming; a late joiner's snapshot."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import talib
import zmq
from harness import Sandbox, running, wait_until

from app.client import QSuiteClient
from app.database import make_engine
from engine.bus import topics
from engine.bus.commands.analysis import GetIndicators, GetSignals, ListAnalysis
from engine.bus.events import BackfillCompleted, BarClosed, IndicatorUpdated, SignalRaised
from engine.bus.publisher import Publisher
from engine.bus.subscriber import Subscriber, wait_for_subscription
from engine.persistence.bars import upsert_bars
from engine.persistence.indicators import load_indicator_values

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
MIN = 60 * 1_000_000_000
T0 = 1_700_000_000 * 1_000_000_000 // MIN * MIN


def series(n: int) -> np.ndarray:
    """A walk that drifts, falls hard (RSI into oversold), then recovers (and overshoots)."""
    rng = np.random.default_rng(5)
    calm, fall = n // 3, n // 3
    steps = np.concatenate(
        [
            rng.normal(0, 0.3, calm),
            rng.normal(-0.6, 0.2, fall),
            rng.normal(0.5, 0.2, n - calm - fall),
        ]
    )
    return 100 + np.cumsum(steps)


def rsi_crosses(rsi: np.ndarray) -> set[tuple[int, str]]:
    """The rsi_cross rule (30/70) applied by hand to TA-Lib's batch RSI."""
    found = set()
    for i in range(1, len(rsi)):
        prev, cur = rsi[i - 1], rsi[i]
        if math.isnan(prev) or math.isnan(cur):
            continue
        ts = T0 + i * MIN
        if prev >= 30 > cur:
            found.add((ts, "oversold_entry"))
        if prev < 30 <= cur:
            found.add((ts, "oversold_exit"))
        if prev <= 70 < cur:
            found.add((ts, "overbought_entry"))
        if prev > 70 >= cur:
            found.add((ts, "overbought_exit"))
    return found


def bar(symbol: str, i: int, close: float) -> BarClosed:
    return BarClosed(
        ts_event=T0 + (i + 1) * MIN,
        symbol=symbol,
        interval="1m",
        ts=T0 + i * MIN,
        open=close,
        high=close + 0.1,
        low=close - 0.1,
        close=close,
        volume=1000.0,
        origin="replay",
    )


def analysis_listening(publisher: Publisher, subscriber: Subscriber) -> None:
    """Publish bars of a throw-away symbol until the analysis process answers one (its
    own subscription to md.bar may still be travelling to the proxy)."""
    subscriber.subscribe("ind.sma_20.WARM")
    deadline, i = time.monotonic() + 30, 0
    while time.monotonic() < deadline:
        publisher.publish(topics.bar("WARM", "1m"), bar("WARM", i, 100.0))
        i += 1
        message = subscriber.recv(timeout_ms=200)
        if message is not None and isinstance(message[1], IndicatorUpdated):
            subscriber.unsubscribe("ind.sma_20.WARM")
            return
    raise AssertionError("the analysis process never answered a bar")


def test_analysis_when_bars_arrive_then_indicators_and_signals_flow_and_persist(
    sandbox: Sandbox,
) -> None:
    closes = series(120)
    ctx = zmq.Context()
    publisher = Publisher(ctx, sandbox.settings.bus.xsub, "test", hwm=10_000)
    subscriber = Subscriber(ctx, sandbox.settings.bus.xpub, [], hwm=100_000)
    try:
        with running(sandbox, "run", "--headless"), QSuiteClient(sandbox.settings) as client:
            wait_until(lambda: client.ping("analysis"), 60, "analysis up")
            wait_for_subscription(publisher, subscriber, timeout_s=20)
            analysis_listening(publisher, subscriber)
            subscriber.subscribe("ind.rsi_14.TST")
            subscriber.subscribe("sig")
            wait_for_subscription(publisher, subscriber, timeout_s=20)
            for i, close in enumerate(closes):
                publisher.publish(topics.bar("TST", "1m"), bar("TST", i, float(close)))
            rsi: dict[int, float] = {}
            signals: list[SignalRaised] = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(rsi) < len(closes):
                message = subscriber.recv(timeout_ms=500)
                if message is None:
                    continue
                event = message[1]
                if isinstance(event, IndicatorUpdated) and event.symbol == "TST":
                    rsi[event.ts] = event.values["value"]
                elif isinstance(event, SignalRaised) and event.symbol == "TST":
                    signals.append(event)
            expected = talib.RSI(closes, timeperiod=14)
            got = np.array([rsi[T0 + i * MIN] for i in range(len(closes))])
            assert np.array_equal(np.isnan(got), np.isnan(expected))
            assert np.nanmax(np.abs(got - expected)) < 1e-9  # streaming equals TA-Lib batch
            kinds = {(s.rule, s.kind) for s in signals}
            assert ("rsi_cross", "oversold_entry") in kinds and (
                "rsi_cross",
                "oversold_exit",
            ) in kinds

            stored = wait_until(
                lambda: client.send(GetSignals(symbol="TST")).signals, 10, "signals stored"
            )
            assert {(s.rule, s.kind, s.ts) for s in stored} == {
                (s.rule, s.kind, s.ts) for s in signals
            }

            snapshot = client.send(GetIndicators(symbol="TST", interval="1m", last=5))
            assert snapshot.as_of == T0 + (len(closes) - 1) * MIN
            rsi_series = {s.indicator: s for s in snapshot.series}["rsi_14"]
            assert (
                rsi_series.ts[-1] == snapshot.as_of
                and abs(rsi_series.values["value"][-1] - expected[-1]) < 1e-9
            )

            catalog = client.send(ListAnalysis())
            assert {"rsi", "macd", "bbands", "sma", "ema", "atr", "stoch", "obv", "roc"} <= {
                i.name for i in catalog.indicators
            }
            assert {r.name for r in catalog.rules} >= {
                "rsi_cross",
                "macd_cross",
                "macd_divergence",
                "bollinger_breakout",
                "ma_cross",
            }

            engine = make_engine(sandbox.settings)
            try:
                values = wait_until(
                    lambda: (
                        (v := load_indicator_values(engine, "TST", "1m", "rsi_14", limit=500))
                        and len(v["value"]) == len(closes)
                        and v
                    ),
                    15,
                    "streamed values stored",
                )
                assert abs(values["value"][-1][1] - expected[-1]) < 1e-9
            finally:
                engine.dispose()
    finally:
        subscriber.close()
        publisher.close()
        ctx.term()


def test_analysis_when_backfill_completes_then_history_recomputed_and_streaming_continues(
    sandbox: Sandbox,
) -> None:
    closes = series(300)
    history, live = closes[:-3], closes[-3:]
    engine = make_engine(sandbox.settings)
    ctx = zmq.Context()
    publisher = Publisher(ctx, sandbox.settings.bus.xsub, "test", hwm=10_000)
    subscriber = Subscriber(ctx, sandbox.settings.bus.xpub, [], hwm=10_000)
    try:
        with running(sandbox, "run", "--headless"), QSuiteClient(sandbox.settings) as client:
            wait_until(lambda: client.ping("analysis"), 60, "analysis up")
            upsert_bars(
                engine,
                [
                    (
                        "BKF",
                        "1m",
                        T0 + i * MIN,
                        float(c),
                        float(c) + 0.1,
                        float(c) - 0.1,
                        float(c),
                        1000.0,
                        "yahoo",
                        0,
                    )
                    for i, c in enumerate(history)
                ],
            )
            wait_for_subscription(publisher, subscriber, timeout_s=20)
            analysis_listening(publisher, subscriber)
            subscriber.subscribe("ind.macd_12_26_9.BKF")
            wait_for_subscription(publisher, subscriber, timeout_s=20)
            publisher.publish(
                topics.backfill("BKF"),
                BackfillCompleted(
                    ts_event=T0,
                    symbol="BKF",
                    interval="1m",
                    start=T0,
                    end=T0 + len(history) * MIN,
                    rows=len(history),
                    origin="yahoo",
                    run_id=1,
                ),
            )
            macd, signal, _ = talib.MACD(closes, fastperiod=12, slowperiod=26, signalperiod=9)
            stored = wait_until(
                lambda: (
                    (v := load_indicator_values(engine, "BKF", "1m", "macd_12_26_9", limit=1000))
                    and len(v.get("macd", [])) == len(history)
                    and v
                ),
                30,
                "re-evaluated history stored",
            )
            got = np.array([v for _, v in stored["macd"]])
            assert np.nanmax(np.abs(got - macd[: len(history)])) < 1e-9
            for j, close in enumerate(live):
                i = len(history) + j
                publisher.publish(topics.bar("BKF", "1m"), bar("BKF", i, float(close)))
            updates: dict[int, float] = {}
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(updates) < len(live):
                message = subscriber.recv(timeout_ms=500)
                if message is not None and isinstance(message[1], IndicatorUpdated):
                    updates[message[1].ts] = message[1].values["macdsignal"]
            for j in range(len(live)):
                i = len(history) + j
                assert math.isclose(
                    updates[T0 + i * MIN], signal[i], abs_tol=1e-9
                )  # continues exactly
    finally:
        subscriber.close()
        publisher.close()
        ctx.term()
        engine.dispose()

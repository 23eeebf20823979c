"""Forming bars built from the feed's prices, and indicator previews on them."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from fakes import FakeContext

from app import database
from app.settings import load_settings
from engine.analysis import AnalysisService
from engine.analysis.forming import FormingBars
from engine.bus.events import BarClosed, IndicatorUpdated, QuoteUpdated, TradeReported
from engine.indicators import Bar
from engine.indicators.registry import default_registry

MIN = 60 * 1_000_000_000
T0 = 1_700_000_000 * 1_000_000_000 // (60 * MIN) * (60 * MIN)


def test_price_builds_ohlcv_and_changed_hands_each_move_once() -> None:
    forming = FormingBars(["1m", "5m"])
    forming.price("AAA", T0 + 1, 10.0, 5.0)
    forming.price("AAA", T0 + 2, 12.0, 1.0)
    forming.price("AAA", T0 + 3, 9.0)
    got = {(s, i): b for s, i, b in forming.changed()}
    assert got[("AAA", "1m")] == Bar(T0, 10.0, 12.0, 9.0, 9.0, 6.0)
    assert got[("AAA", "5m")] == Bar(T0, 10.0, 12.0, 9.0, 9.0, 6.0)
    assert list(forming.changed()) == []  # nothing moved since
    forming.price("AAA", T0 + MIN + 1, 11.0, 2.0)  # a new 1m bar; same 5m bar
    got = {(s, i): b for s, i, b in forming.changed()}
    assert got[("AAA", "1m")] == Bar(T0 + MIN, 11.0, 11.0, 11.0, 11.0, 2.0)
    assert got[("AAA", "5m")] == Bar(T0, 10.0, 12.0, 9.0, 11.0, 8.0)


def test_price_when_bar_closed_or_bad_then_ignored() -> None:
    forming = FormingBars(["1m"])
    forming.price("AAA", T0 + 1, 10.0)
    forming.closed("AAA", "1m", T0)
    forming.price("AAA", T0 + 2, 11.0)  # late: that bar is final
    forming.price("AAA", T0 + MIN, math.nan)
    forming.price("AAA", T0 + MIN, -1.0)
    forming.price("AAA", T0 + MIN, math.inf, 3.0)
    assert list(forming.changed()) == []
    forming.price("AAA", T0 + MIN + 5, 12.0, math.nan)
    assert list(forming.changed()) == [("AAA", "1m", Bar(T0 + MIN, 12.0, 12.0, 12.0, 12.0, 0.0))]


def test_preview_when_forming_bar_moves_then_published_as_forming_and_not_committed(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        environ={
            "QSUITE__APP__DATA_DIR": str(tmp_path),
            "QSUITE__ANALYSIS__INTERVALS": '["1m"]',
            "QSUITE__ANALYSIS__INDICATORS": '["sma_3"]',
            "QSUITE__ANALYSIS__RULES": "[]",
            "QSUITE__ANALYSIS__PREVIEW_INTERVAL_S": "1.0",
        }
    )
    engine = database.open_database(settings)
    service = AnalysisService(settings.analysis, engine=engine, registry=default_registry())
    ctx = FakeContext("analysis")
    service.start(ctx)
    closes = np.arange(1.0, 6.0)
    for i, close in enumerate(closes.tolist()):
        ctx.deliver(
            "md.bar.AAA.1m",
            BarClosed(
                ts_event=T0 + (i + 1) * MIN,
                symbol="AAA",
                interval="1m",
                ts=T0 + i * MIN,
                open=close,
                high=close,
                low=close,
                close=close,
                volume=1.0,
                origin="synthetic",
            ),
        )
    forming_ts = T0 + 5 * MIN
    ctx.deliver(
        "md.trade.AAA",
        TradeReported(
            ts_event=forming_ts + 10, symbol="AAA", price=9.0, size=2.0, origin="synthetic"
        ),
    )
    ctx.deliver(
        "md.quote.AAA",
        QuoteUpdated(
            ts_event=forming_ts + 20,
            symbol="AAA",
            bid=8.9,
            ask=9.1,
            bid_size=1.0,
            ask_size=1.0,
            last=12.0,
            origin="synthetic",
        ),
    )
    ctx.advance(1.05)
    previews = [e for e in ctx.events(IndicatorUpdated) if e.forming]
    assert [(e.indicator, e.ts, e.values["value"]) for e in previews] == [
        ("sma_3", forming_ts, (4.0 + 5.0 + 12.0) / 3)
    ]
    ctx.advance(3.0)  # nothing moved: no more previews
    assert len([e for e in ctx.events(IndicatorUpdated) if e.forming]) == 1
    ctx.deliver(  # the bar closes at another price: the preview committed nothing
        "md.bar.AAA.1m",
        BarClosed(
            ts_event=forming_ts + MIN,
            symbol="AAA",
            interval="1m",
            ts=forming_ts,
            open=9.0,
            high=12.0,
            low=6.0,
            close=6.0,
            volume=2.0,
            origin="synthetic",
        ),
    )
    closed = [e for e in ctx.events(IndicatorUpdated) if not e.forming and e.ts == forming_ts]
    assert closed[0].values["value"] == (4.0 + 5.0 + 6.0) / 3
    service.stop()

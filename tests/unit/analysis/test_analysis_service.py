"""The analysis service with a fake context: signals on simulated bars say so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fakes import FakeContext

from app import database
from app.settings import load_settings
from engine.analysis import AnalysisService
from engine.bus.events import BarClosed, IndicatorUpdated, SignalRaised
from engine.indicators.registry import default_registry
from engine.signals.store import load_signals

MIN = 60 * 1_000_000_000
T0 = 1_700_000_000 * 1_000_000_000 // MIN * MIN


def test_signals_when_bars_simulated_then_flagged_on_the_bus_and_in_the_store(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        environ={"QSUITE__APP__DATA_DIR": str(tmp_path), "QSUITE__ANALYSIS__RULES": '["rsi_cross"]'}
    )
    engine = database.open_database(settings)
    service = AnalysisService(settings.analysis, engine=engine, registry=default_registry())
    ctx = FakeContext("analysis")
    service.start(ctx)
    closes = 100 + np.cumsum(
        np.concatenate([np.full(20, 0.1), np.full(20, -0.8), np.full(20, 0.9)])
    )
    for i, close in enumerate(closes.tolist()):
        ctx.deliver(
            "md.bar.SIM.1m",
            BarClosed(
                ts_event=T0 + (i + 1) * MIN,
                symbol="SIM",
                interval="1m",
                ts=T0 + i * MIN,
                open=close,
                high=close + 0.05,
                low=close - 0.05,
                close=close,
                volume=10.0,
                origin="synthetic",
                simulated=True,
                flags=1,
            ),
        )
    signals = ctx.events(SignalRaised)
    assert signals and all(s.simulated for s in signals)
    assert {s.kind for s in signals} >= {"oversold_entry"}
    stored = load_signals(engine, symbol="SIM")
    assert stored and all(s.simulated for s in stored)
    assert len(ctx.events(IndicatorUpdated)) >= len(closes)
    service.stop()

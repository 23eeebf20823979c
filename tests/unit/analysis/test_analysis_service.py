"""The analysis service with a fake context: signals on simulated bars say so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from fakes import FakeContext

from app import database
from app.settings import load_settings
from engine.analysis import AnalysisService
from engine.bus.events import AlertRaised, BarClosed, IndicatorUpdated, SignalRaised
from engine.indicators.plugins import load_module
from engine.indicators.registry import default_registry
from engine.signals import registry as rules_registry
from engine.signals.rules import RsiCrossRule
from engine.signals.store import load_signals

FAULTY = str(Path(__file__).resolve().parents[2] / "fixtures" / "plugins" / "faulty_indicators.py")
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


class _Boom(RsiCrossRule):
    """rsi_cross that breaks on its 30th bar (a rule bug the service must contain)."""

    def on_bar(self, ctx: Any) -> list[Any]:
        self.bars = getattr(self, "bars", 0) + 1
        if self.bars == 30:
            raise ZeroDivisionError("rule bug")
        return super().on_bar(ctx)


def test_alert_when_plugin_indicator_and_rule_fail_then_raised_and_the_rest_runs(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        environ={
            "QSUITE__APP__DATA_DIR": str(tmp_path),
            "QSUITE__ANALYSIS__RULES": '["rsi_cross", "ma_cross"]',
            "QSUITE__ANALYSIS__INDICATORS": '["sma_5", "exploding_2"]',
        }
    )
    registry = default_registry()
    load_module(registry, FAULTY)
    engine = database.open_database(settings)

    def rules(name: str) -> Any:
        return _Boom() if name == "rsi_cross" else rules_registry.create(name)

    service = AnalysisService(
        settings.analysis, engine=engine, registry=registry, rule_factory=rules
    )
    ctx = FakeContext("analysis")
    service.start(ctx)
    for i in range(40):
        close = 100.0 + i
        ctx.deliver(
            "md.bar.AAA.1m",
            BarClosed(
                ts_event=T0 + (i + 1) * MIN,
                symbol="AAA",
                interval="1m",
                ts=T0 + i * MIN,
                open=close,
                high=close + 0.5,
                low=close - 0.5,
                close=close,
                volume=10.0,
                origin="synthetic",
            ),
        )
    alerts = {a.kind: a for a in ctx.events(AlertRaised)}
    assert set(alerts) == {"analysis.indicator_disabled", "analysis.rule_disabled"}
    plugin, rule = alerts["analysis.indicator_disabled"], alerts["analysis.rule_disabled"]
    assert plugin.symbol == rule.symbol == "AAA"
    assert plugin.details["indicator"] == "exploding_2"
    assert "ZeroDivisionError: plugin bug" in plugin.message
    assert rule.details["rule"] == "rsi_cross" and "rule bug" in rule.message
    assert ("alert.warning", plugin) in ctx.published
    last_bar = [e for e in ctx.events(IndicatorUpdated) if e.ts == T0 + 39 * MIN]
    assert {e.indicator for e in last_bar} >= {"sma_5"}
    assert "exploding_2" not in {e.indicator for e in last_bar}
    status, detail = service.health()
    assert status == "degraded" and "disabled" in detail
    service.stop()

"""Streaming equals batch (within 1e-9) for every built-in and the sample plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.indicators import default_registry
from engine.indicators.builtins import BUILTINS
from engine.indicators.parity import SERIES, check_parity, sample_bars
from engine.indicators.plugins import load_plugins
from engine.stats import StatsRegistry

PLUGINS = Path(__file__).resolve().parents[2] / "fixtures" / "plugins"
BARS = 300

#: Parameter sets beyond the defaults: the smallest TA-Lib accepts, and a long one.
EXTRA: dict[str, list[dict[str, Any]]] = {
    "sma": [{"timeperiod": 2}, {"timeperiod": 50}],
    "ema": [{"timeperiod": 2}, {"timeperiod": 50}],
    "rsi": [{"timeperiod": 2}, {"timeperiod": 30}],
    "macd": [
        {"fastperiod": 2, "slowperiod": 3, "signalperiod": 1},
        {"fastperiod": 5, "slowperiod": 35, "signalperiod": 5},
    ],
    "bbands": [
        {"timeperiod": 2, "nbdevup": 1.0, "nbdevdn": 3.0},
        {"timeperiod": 50, "nbdevup": 2.5, "nbdevdn": 0.5},
    ],
    "atr": [{"timeperiod": 1}, {"timeperiod": 30}],
    "natr": [{"timeperiod": 1}, {"timeperiod": 30}],
    "stoch": [
        {"fastk_period": 1, "slowk_period": 1, "slowd_period": 1},
        {"fastk_period": 14, "slowk_period": 3, "slowd_period": 5},
    ],
    "obv": [],
    "roc": [{"timeperiod": 1}, {"timeperiod": 30}],
    "mom": [{"timeperiod": 1}, {"timeperiod": 30}],
    "stddev": [{"timeperiod": 2, "nbdev": 1.0}, {"timeperiod": 30, "nbdev": 2.5}],
}


@pytest.fixture(scope="module")
def registry() -> Any:
    registry = default_registry(stats=StatsRegistry())
    report = load_plugins(registry, [str(PLUGINS / "sample_indicators.py")], entry_points=False)
    assert report.errors == []
    return registry


def test_every_builtin_has_parity_cases() -> None:
    assert sorted(EXTRA) == sorted(cls.name for cls in BUILTINS)


@pytest.mark.parametrize("kind", SERIES)
@pytest.mark.parametrize("name", [*sorted(EXTRA), "donchian"])
def test_streaming_equals_batch_when_default_params(registry: Any, name: str, kind: str) -> None:
    bars = sample_bars(kind, BARS)
    for warm in (0, 7, 120):  # all through warm-up, part of it, opened on history
        report = check_parity(registry.create(name), bars, warm)
        assert report.ok, (warm, report)
        assert report.checked >= (BARS - warm) * len(registry.get(name).outputs)


@pytest.mark.parametrize("kind", SERIES)
@pytest.mark.parametrize(
    ("name", "params"),
    [(n, p) for n, sets in sorted(EXTRA.items()) for p in sets]
    + [("donchian", {"timeperiod": 2}), ("donchian", {"timeperiod": 55})],
)
def test_streaming_equals_batch_when_other_params(
    registry: Any, name: str, params: dict[str, Any], kind: str
) -> None:
    report = check_parity(registry.create(name, **params), sample_bars(kind, BARS), 60)
    assert report.ok, report


@pytest.mark.parametrize("name", sorted(EXTRA))
def test_warmup_is_where_batch_values_start(registry: Any, name: str) -> None:
    indicator = registry.create(name)
    bars = sample_bars("walk", BARS)
    outputs = indicator.batch(*bars.columns(indicator.inputs))
    for series in outputs:
        assert np.isnan(series[: indicator.warmup]).all()
        assert not np.isnan(series[indicator.warmup :]).any()


def test_parity_check_reports_a_mismatch_when_stream_differs(registry: Any) -> None:
    class Off:
        value = 0.0

        def update(self, close: float) -> float:
            return close + 1e-6

        def peek(self, close: float) -> float:
            return close + 1e-6

    indicator = registry.create("sma", timeperiod=2)
    indicator.stream = lambda *history: Off()  # a stream that drifts from batch
    report = check_parity(indicator, sample_bars("walk", 50), 10)
    assert not report.ok
    assert "streamed" in report.mismatches[0]

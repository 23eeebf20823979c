"""Plugins: loading from a path, a module name or entry points; failures isolated."""

from __future__ import annotations

import importlib.metadata
import math
from pathlib import Path

import numpy as np
import pytest

from engine.indicators import (
    Bar,
    Indicator,
    IndicatorBank,
    IndicatorError,
    IndicatorRegistry,
    IndicatorStream,
    InsufficientHistory,
    PluginError,
    SafeIndicator,
    default_registry,
    load_plugins,
)
from engine.indicators.parity import sample_bars
from engine.indicators.plugins import FAILURES, load_module
from engine.stats import StatsRegistry

PLUGINS = Path(__file__).resolve().parents[2] / "fixtures" / "plugins"
SAMPLE = str(PLUGINS / "sample_indicators.py")
FAULTY = str(PLUGINS / "faulty_indicators.py")


@pytest.fixture
def stats() -> StatsRegistry:
    return StatsRegistry()


@pytest.fixture
def registry(stats: StatsRegistry) -> IndicatorRegistry:
    return default_registry(stats=stats)


def bar(i: int, close: float = 100.0) -> Bar:
    return Bar(i, close, close + 1.0, close - 1.0, close, 1_000.0)


def test_load_from_file_path_registers_module_indicators(registry: IndicatorRegistry) -> None:
    assert load_module(registry, SAMPLE) == ["donchian"]
    info = registry.info("donchian")
    assert info.source == SAMPLE
    assert info.outputs == ["upper", "middle", "lower"]
    assert info.default_key == "donchian_20" and info.warmup == 19
    assert isinstance(registry.create("donchian"), SafeIndicator)


def test_load_from_module_name(
    registry: IndicatorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(PLUGINS))
    report = load_plugins(registry, ["sample_indicators"], entry_points=False)
    assert report.loaded == ["donchian"] and report.errors == []


def test_load_from_entry_points(
    registry: IndicatorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(PLUGINS))
    eps = [
        importlib.metadata.EntryPoint("donchian", "sample_indicators:DonchianIndicator", "g"),
        importlib.metadata.EntryPoint("broken", "no_such_module_qsuite:Thing", "g"),
    ]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: eps)
    report = load_plugins(registry, [], entry_points=True)
    assert report.loaded == ["donchian"]
    assert len(report.errors) == 1
    assert report.errors[0].startswith("entry point broken = no_such_module_qsuite:Thing: ")
    assert "ModuleNotFoundError" in report.errors[0]


def test_load_plugins_when_some_fail_then_the_others_load(
    registry: IndicatorRegistry, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom at import')\n")
    clash = tmp_path / "clash.py"
    clash.write_text(
        "from engine.indicators.builtins import RsiIndicator\n"
        "class MyRsi(RsiIndicator):\n    pass\n"
        "INDICATORS = [MyRsi]\n"
    )
    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n")
    specs = [str(broken), str(tmp_path / "missing.py"), "no_such_pkg_qsuite.mod", str(clash)]
    report = load_plugins(registry, [*specs, str(empty), SAMPLE], entry_points=False)
    assert report.loaded == ["donchian"]
    assert len(report.errors) == 5
    assert "RuntimeError: boom at import" in report.errors[0]
    assert "no such file" in report.errors[1]
    assert "ModuleNotFoundError" in report.errors[2]
    assert "rsi: already registered from builtin" in report.errors[3]
    assert "defines no indicator classes" in report.errors[4]


def test_load_module_when_malformed_class_then_plugin_error(
    registry: IndicatorRegistry, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("INDICATORS = [int]\n")
    with pytest.raises(PluginError, match="int is not an Indicator subclass"):
        load_module(registry, str(bad))


def test_update_when_plugin_raises_then_disabled_counted_and_others_run(
    registry: IndicatorRegistry, stats: StatsRegistry
) -> None:
    load_module(registry, FAULTY)
    failures: list[tuple[str, str]] = []
    exploding = registry.create("exploding", after=2)
    assert isinstance(exploding, SafeIndicator)
    bank = IndicatorBank(
        "AAPL",
        "1m",
        [registry.create("sma", timeperiod=2), exploding],
        stats=stats,
        on_failure=lambda key, reason: failures.append((key, reason)),
    )
    results = [bank.update(bar(i, 100.0 + i)) for i in range(5)]  # bar 0 opens the stream
    assert [r["exploding_2"]["value"] for r in results[:3]] == [100.0, 101.0, 102.0]
    assert math.isnan(results[3]["exploding_2"]["value"])  # the bar it raised on
    assert "exploding_2" not in results[4]  # disabled from then on
    assert [r["sma_2"]["value"] for r in results[1:]] == [100.5, 101.5, 102.5, 103.5]
    assert failures == [("exploding_2", "update: ZeroDivisionError: plugin bug")]
    assert exploding.failure == "update: ZeroDivisionError: plugin bug"
    assert bank.failures == {"exploding_2": "update: ZeroDivisionError: plugin bug"}
    assert bank.keys == ("sma_2",)
    assert stats.snapshot()[f"{FAILURES}{{indicator=exploding}}"] == 1


def test_stream_when_wrong_shape_then_disabled_not_raised(registry: IndicatorRegistry) -> None:
    load_module(registry, FAULTY)
    bank = IndicatorBank("AAPL", "1m", [registry.create("wrong_shape")], stats=StatsRegistry())
    out = bank.update(bar(0))
    assert all(math.isnan(v) for v in out["wrong_shape"].values())
    assert "is not iterable" in bank.failures["wrong_shape"]
    assert bank.update(bar(1)) == {}


def test_batch_when_plugin_fails_then_nan_and_disabled(registry: IndicatorRegistry) -> None:
    load_module(registry, FAULTY)
    bad = registry.create("bad_batch")
    assert isinstance(bad, SafeIndicator)
    out = bad.batch(np.arange(5.0))
    assert len(out) == 1 and np.isnan(out[0]).all() and len(out[0]) == 5
    assert bad.failure is not None and "shapes [(4,)]" in bad.failure
    bank = IndicatorBank("AAPL", "1m", [bad, registry.create("rsi")], stats=StatsRegistry())
    assert list(bank.batch(sample_bars("walk", 50))) == ["rsi_14"]
    assert bank.failures == {"bad_batch": bad.failure}


def test_stream_open_when_plugin_raises_then_disabled(registry: IndicatorRegistry) -> None:
    load_module(registry, FAULTY)
    bank = IndicatorBank("AAPL", "1m", [registry.create("bad_batch")], stats=StatsRegistry())
    bank.warm(sample_bars("walk", 10))
    assert bank.failures == {"bad_batch": "stream: RuntimeError: cannot stream"}
    assert bank.update(bar(10**15)) == {}


def test_create_when_plugin_init_raises_then_indicator_error(
    registry: IndicatorRegistry, stats: StatsRegistry
) -> None:
    load_module(registry, FAULTY)
    with pytest.raises(IndicatorError, match="bad_init: cannot create: ValueError: no"):
        registry.create("bad_init")
    assert registry.info("bad_init").default_key is None  # listing still works
    assert stats.total(FAILURES) == 1  # the failed create, not the listing


def test_failure_listener_that_raises_is_contained(registry: IndicatorRegistry) -> None:
    load_module(registry, FAULTY)
    exploding = registry.create("exploding", after=1)
    assert isinstance(exploding, SafeIndicator)

    def broken_listener(indicator: SafeIndicator, reason: str) -> None:
        raise RuntimeError("alerting is down")

    exploding.listeners.append(broken_listener)
    stream = exploding.stream(np.array([1.0]))
    assert stream.update(2.0) == 2.0
    assert math.isnan(stream.update(3.0))
    assert math.isnan(stream.peek(3.0)) and math.isnan(stream.value)


def test_plugin_stream_that_never_opens_is_disabled_once(
    registry: IndicatorRegistry, stats: StatsRegistry
) -> None:
    class Greedy(Indicator):
        name = "greedy"

        @property
        def warmup(self) -> int:
            return 0

        def batch(self, close: np.ndarray) -> tuple[np.ndarray, ...]:
            return (close.copy(),)

        def stream(self, close: np.ndarray) -> IndicatorStream:
            raise InsufficientHistory("always one more")

    registry.register(Greedy, source="tests")
    greedy = registry.create("greedy")
    reasons: list[str] = []
    bank = IndicatorBank(
        "AAPL", "1m", [greedy], stats=stats, on_failure=lambda k, r: reasons.append(r)
    )
    for i in range(100):
        bank.update(bar(i))
    assert reasons == ["update: RuntimeError: stream did not open after 68 bars"]
    assert isinstance(greedy, SafeIndicator) and greedy.failure == reasons[0]
    assert stats.total(FAILURES) == 1

"""IndicatorBank: warm-up, commit vs preview, bad bars, batch semantics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import talib

from engine.indicators import (
    Bar,
    Bars,
    Indicator,
    IndicatorBank,
    IndicatorError,
    IndicatorRegistry,
    InsufficientHistory,
    default_registry,
)
from engine.indicators.base import Array, IndicatorStream
from engine.indicators.parity import sample_bars
from engine.stats import StatsRegistry

REJECTED = "qsuite_indicator_bars_rejected_total"


@pytest.fixture
def registry() -> IndicatorRegistry:
    return default_registry(stats=StatsRegistry())


@pytest.fixture
def stats() -> StatsRegistry:
    return StatsRegistry()


def make_bank(registry: IndicatorRegistry, stats: StatsRegistry, *keys: str) -> IndicatorBank:
    return IndicatorBank("AAPL", "1m", [registry.from_key(k) for k in keys], stats=stats)


def bars_list(bars: Bars) -> list[Bar]:
    cols = [bars.ts.tolist(), *(getattr(bars, f).tolist() for f in ("open", "high", "low"))]
    return [Bar(*row) for row in zip(*cols, bars.close.tolist(), bars.volume.tolist(), strict=True)]


def test_update_before_warmup_then_nan_until_batch_has_values(
    registry: IndicatorRegistry, stats: StatsRegistry
) -> None:
    bars = sample_bars("walk", 60)
    bank = make_bank(registry, stats, "rsi_14", "macd_12_26_9")
    want = talib.RSI(bars.close, 14)
    got = [bank.update(b)["rsi_14"]["value"] for b in bars_list(bars)]
    assert all(math.isnan(v) for v in got[:14])
    np.testing.assert_array_equal(got[14:], want[14:])
    assert bank.last_ts == int(bars.ts[-1])


def test_preview_commits_nothing(registry: IndicatorRegistry, stats: StatsRegistry) -> None:
    bars = bars_list(sample_bars("walk", 80))
    bank = make_bank(registry, stats, "rsi_14", "bbands_20_2p0_2p0", "atr_14")
    twin = make_bank(registry, stats, "rsi_14", "bbands_20_2p0_2p0", "atr_14")
    for b in bars:
        for wiggle in (-3.0, 0.5, 2.0):  # a forming bar revised several times
            forming = b._replace(close=b.close + wiggle, high=b.high + abs(wiggle))
            bank.preview(forming)
        preview = bank.preview(b)
        assert _same(bank.update(b), twin.update(b))
        assert _same(preview, twin.current())
    assert bank.last_ts == twin.last_ts


def _same(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]) -> bool:
    flat_a = [v for d in a.values() for v in d.values()]
    flat_b = [v for d in b.values() for v in d.values()]
    return a.keys() == b.keys() and np.array_equal(flat_a, flat_b, equal_nan=True)


def test_preview_during_warmup_shows_the_value_the_bar_would_open_with(
    registry: IndicatorRegistry, stats: StatsRegistry
) -> None:
    bars = bars_list(sample_bars("walk", 30))
    bank = make_bank(registry, stats, "sma_5")
    for b in bars[:4]:
        assert math.isnan(bank.preview(b)["sma_5"]["value"])
        bank.update(b)
    assert bank.preview(bars[4]) == bank.update(bars[4])
    assert not math.isnan(bank.current()["sma_5"]["value"])


def test_update_when_stale_or_duplicate_bar_then_rejected(
    registry: IndicatorRegistry, stats: StatsRegistry
) -> None:
    bars = sample_bars("walk", 40)
    bank = make_bank(registry, stats, "ema_5")
    bank.warm(bars[:30])
    first = bars_list(bars)[30]
    assert bank.update(first)
    assert bank.update(first) == {}
    assert bank.update(first._replace(ts=first.ts - 1)) == {}
    assert bank.preview(first) == {}
    assert stats.snapshot()[f"{REJECTED}{{reason=stale}}"] == 3


def test_update_when_nan_bar_then_skipped_and_streaming_still_equals_batch(
    registry: IndicatorRegistry, stats: StatsRegistry
) -> None:
    bars = sample_bars("walk", 120)
    bars.close[[50, 51, 90]] = [np.nan, np.inf, -np.inf]
    bars.volume[70] = np.nan
    keys = ("rsi_14", "obv", "macd_12_26_9", "stoch_5_3_3")
    bank = make_bank(registry, stats, *keys)
    batch = bank.batch(bars)
    bank.warm(bars[:40])
    for i, b in enumerate(bars_list(bars)[40:], start=40):
        out = bank.update(b)
        if i in (50, 51, 90):
            assert out == {}  # every indicator here reads the close
            continue
        if i == 70:
            assert "obv" not in out and "rsi_14" in out
        for key, values in out.items():
            for output, value in values.items():
                assert value == pytest.approx(batch[key][output][i], rel=1e-12), (i, key)
    assert np.isnan(batch["rsi_14"]["value"][[50, 51, 90]]).all()
    assert not np.isnan(batch["rsi_14"]["value"][52:90]).any()  # TA-Lib alone: NaN forever
    assert np.isnan(batch["obv"]["value"][70]) and not np.isnan(batch["obv"]["value"][71])
    assert stats.snapshot()[f"{REJECTED}{{reason=nonfinite}}"] == 4


def test_warm_when_history_has_nan_rows_then_they_are_skipped(
    registry: IndicatorRegistry, stats: StatsRegistry
) -> None:
    bars = sample_bars("walk", 100)
    bars.close[[0, 1, 30]] = np.nan  # leading NaN rows, as TA-Lib skips, and one inside
    bank = make_bank(registry, stats, "ema_10")
    filled = bank.warm_and_fill(bars[:60])["ema_10"]["value"]
    batch = bank.batch(bars)["ema_10"]["value"]
    np.testing.assert_array_equal(filled, batch[:60])
    for i, b in enumerate(bars_list(bars)[60:], start=60):
        assert bank.update(b)["ema_10"]["value"] == batch[i]


def test_warm_when_too_little_history_then_opens_later_at_the_right_bar(
    registry: IndicatorRegistry, stats: StatsRegistry
) -> None:
    bars = sample_bars("flat", 80)
    bank = make_bank(registry, stats, "macd_12_26_9")
    bank.warm(bars[:10])
    want = talib.MACD(bars.close, 12, 26, 9)
    for i, b in enumerate(bars_list(bars)[10:], start=10):
        got = bank.update(b)["macd_12_26_9"]
        assert np.array_equal(list(got.values()), [w[i] for w in want], equal_nan=True), i


def test_warm_and_fill_equals_batch(registry: IndicatorRegistry, stats: StatsRegistry) -> None:
    bars = sample_bars("spread", 200)
    keys = ("bbands_20_2p0_2p0", "natr_14", "roc_10", "obv", "stddev_20_1p0")
    bank = make_bank(registry, stats, *keys)
    filled = bank.warm_and_fill(bars)
    batch = bank.batch(bars)
    assert filled.keys() == batch.keys() == set(keys)
    for key in keys:
        for output in batch[key]:
            np.testing.assert_array_equal(filled[key][output], batch[key][output])
    short = bank.warm_and_fill(bars[:5])
    assert np.isnan(short["bbands_20_2p0_2p0"]["upperband"]).all()


def test_batch_edge_cases_never_raise(registry: IndicatorRegistry, stats: StatsRegistry) -> None:
    bank = make_bank(registry, stats, "rsi_14", "atr_14")
    empty = bank.batch(sample_bars("walk", 10)[:0])
    assert empty["rsi_14"]["value"].shape == (0,)
    nan = sample_bars("walk", 30)
    nan.close[:] = np.nan
    out = bank.batch(nan)
    assert np.isnan(out["rsi_14"]["value"]).all() and np.isnan(out["atr_14"]["value"]).all()
    short = bank.batch(sample_bars("walk", 5))
    assert np.isnan(short["rsi_14"]["value"]).all()


@pytest.mark.parametrize(
    "bad",
    [("x",), (None, 1.0, 1.0, 1.0, 1.0, 1.0), (10**18, "1", "1", "1", "1", "1"), None, 42],
)
def test_update_when_malformed_bar_then_rejected_not_raised(
    registry: IndicatorRegistry, stats: StatsRegistry, bad: object
) -> None:
    bank = make_bank(registry, stats, "rsi_14", "obv")
    bank.warm(sample_bars("walk", 30))
    assert bank.update(bad) == {}  # type: ignore[arg-type]
    assert bank.preview(bad) == {}  # type: ignore[arg-type]
    assert stats.snapshot()[f"{REJECTED}{{reason=invalid}}"] == 2
    assert bank.last_ts == 29 * 60_000_000_000


def test_add_and_remove(registry: IndicatorRegistry, stats: StatsRegistry) -> None:
    bars = sample_bars("walk", 60)
    bank = make_bank(registry, stats, "sma_5")
    bank.warm(bars[:50])
    assert bank.add(registry.create("ema", timeperiod=5), bars[:50]) == "ema_5"
    with pytest.raises(IndicatorError, match="ema_5: already in the bank of AAPL 1m"):
        bank.add(registry.create("ema", timeperiod=5))
    b = bars_list(bars)[50]
    out = bank.update(b)
    assert out["ema_5"]["value"] == talib.EMA(bars.close, 5)[50]
    bank.remove("sma_5")
    assert bank.keys == ("ema_5",)
    assert list(bank.update(bars_list(bars)[51])) == ["ema_5"]
    assert list(bank.indicators) == ["ema_5"]


def test_empty_bank_accepts_bars(stats: StatsRegistry) -> None:
    bank = IndicatorBank("AAPL", "1m", stats=stats)
    assert bank.update(Bar(1, 1.0, 1.0, 1.0, 1.0, 1.0)) == {}
    assert bank.last_ts == 1
    assert bank.batch(sample_bars("walk", 5)) == {}


class _NeverOpens(Indicator):
    """Keeps asking for more history (a plugin bug the bank must bound)."""

    name = "never_opens"

    @property
    def warmup(self) -> int:
        return 2

    def batch(self, close: Array) -> tuple[Array, ...]:
        return (np.full(len(close), np.nan),)

    def stream(self, close: Array) -> IndicatorStream:
        raise InsufficientHistory("more, please")


def test_stream_that_never_opens_is_disabled_after_a_bound(stats: StatsRegistry) -> None:
    reasons: list[str] = []
    from engine.indicators.params import NoParams

    bank = IndicatorBank(
        "AAPL",
        "1m",
        [_NeverOpens(NoParams())],
        stats=stats,
        on_failure=lambda key, reason: reasons.append(reason),
    )
    for i in range(100):
        bank.update(Bar(i, 1.0, 1.0, 1.0, 1.0, 1.0))
    assert reasons == ["update: RuntimeError: stream did not open after 76 bars"]
    assert bank.keys == ()
    assert stats.total("qsuite_indicator_failures_total") == 1


def test_preview_when_one_input_nan_then_other_indicators_preview(
    registry: IndicatorRegistry, stats: StatsRegistry
) -> None:
    bars = sample_bars("walk", 40)
    bank = make_bank(registry, stats, "rsi_14", "obv")
    bank.warm(bars[:39])
    last = bars_list(bars)[39]
    out = bank.preview(last._replace(volume=math.nan))
    assert list(out) == ["rsi_14"]
    assert bank.last_ts == int(bars.ts[38])  # nothing committed
    assert bank.update(last)["rsi_14"] == out["rsi_14"]


def _unpacked(bank: IndicatorBank, layout: tuple[str, ...], native: tuple) -> dict:
    out: dict = {}
    if native == ():
        return out
    for key, value in zip(layout, native, strict=True):
        if value is None:
            continue
        outputs = bank.indicators[key].outputs if key in bank.indicators else ("value",)
        values = value if isinstance(value, tuple) else (value,)
        out[key] = dict(zip(outputs, values, strict=True))
    return out


def test_step_equals_update_bar_for_bar_including_nan_and_stale_bars(
    registry: IndicatorRegistry, stats: StatsRegistry
) -> None:
    bars = sample_bars("walk", 120)
    bars.close[60] = np.nan
    bars.volume[70] = np.nan
    keys = ("rsi_14", "obv", "macd_12_26_9", "bbands_20_2p0_2p0")
    by_update, by_step = make_bank(registry, stats, *keys), make_bank(registry, stats, *keys)
    for bank in (by_update, by_step):
        bank.warm(bars[:30])
    for i, b in enumerate(bars_list(bars)[30:], start=30):
        layout = by_step.layout
        native = by_step.step(b)
        want = by_update.update(b)
        got = _unpacked(by_step, layout, native)
        assert got.keys() == want.keys(), i
        for key, values in want.items():
            for output, value in values.items():
                same = value == got[key][output] or (
                    math.isnan(value) and math.isnan(got[key][output])
                )
                assert same, (i, key, output)
        if i == 60:
            assert native == ()  # every indicator here reads the close
        if i == 70:
            assert native[layout.index("obv")] is None
    assert by_step.step(bars_list(bars)[-1]) == ()  # stale


def test_step_when_indicator_raises_then_answers_in_the_old_layout_and_drops_it(
    stats: StatsRegistry,
) -> None:
    from engine.indicators.params import NoParams

    class _Boom(_NeverOpens):
        name = "boom"

        def stream(self, close: Array) -> IndicatorStream:
            raise ZeroDivisionError("plugin bug")

    registry = default_registry(stats=StatsRegistry())
    bank = IndicatorBank("AAPL", "1m", [registry.from_key("sma_3"), _Boom(NoParams())], stats=stats)
    layout = bank.layout
    for i in range(3):
        native = bank.step(Bar(i, 1.0, 1.0, 1.0, float(i), 1.0))
        assert len(native) == len(layout)
    assert layout == ("sma_3", "boom")
    assert bank.layout == ("sma_3",)
    assert native[0] == pytest.approx(1.0)  # SMA of 0, 1, 2
    assert "boom" in bank.failures
    assert len(bank.step(Bar(3, 1.0, 1.0, 1.0, 3.0, 1.0))) == 1

"""The built-in indicators: thin classes over TA-Lib.

Both forms are TA-Lib's own: ``talib.<FUNC>`` for batch and the ``talib.stream.<FUNC>``
handle (TA-Lib ≥ 0.8) for streaming, whose values are bit-identical to the batch ones —
the parity tests check it for every class here. Parameter names are TA-Lib's, so the
params key (``timeperiod=14``) reads like the TA-Lib call. Moving averages inside
Bollinger Bands and the Stochastic are simple (TA-Lib ``matype=0``).

Output names are TA-Lib's too (``macd``, ``macdsignal``, ``macdhist``) except that a
single output is called ``value``.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import msgspec
import talib
from talib import abstract
from talib import stream as talib_stream

from engine.indicators.base import Array, Indicator, IndicatorStream, InsufficientHistory
from engine.indicators.params import Deviations, IndicatorParams, Period, ShortPeriod

# talib's abstract.pyi does not declare Function (it exists at run time)
_function: Any = abstract.Function  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=1024)
def _lookback(function: str, kwargs: tuple[tuple[str, Any], ...]) -> int:
    return int(_function(function, **dict(kwargs)).lookback)


class TalibIndicator(Indicator):
    """An indicator that is one TA-Lib function (batch) and its stream handle."""

    function: ClassVar[str]
    """The TA-Lib function name, e.g. ``RSI``."""
    fixed: ClassVar[dict[str, Any]] = {}
    """TA-Lib arguments that are not parameters here (``matype=0``)."""

    def __init__(self, params: IndicatorParams) -> None:
        super().__init__(params)
        self._kwargs = {**msgspec.structs.asdict(params), **self.fixed}
        self._batch = getattr(talib, self.function)
        self._open = getattr(talib_stream, self.function)
        self._warmup = _lookback(self.function, tuple(sorted(self._kwargs.items())))

    @property
    def warmup(self) -> int:
        return self._warmup

    def batch(self, *inputs: Array) -> tuple[Array, ...]:
        out = self._batch(*inputs, **self._kwargs)
        return out if isinstance(out, tuple) else (out,)

    def stream(self, *history: Array) -> IndicatorStream:
        try:
            handle: IndicatorStream = self._open(*history, **self._kwargs)
        except talib.InsufficientHistory as exc:
            raise InsufficientHistory(f"{self.key}: {exc}") from None
        return handle

    def stream_and_fill(self, *history: Array) -> tuple[IndicatorStream, tuple[Array, ...]]:
        try:
            handle, out = self._open.open_and_fill(*history, **self._kwargs)
        except talib.InsufficientHistory as exc:
            raise InsufficientHistory(f"{self.key}: {exc}") from None
        return handle, out if isinstance(out, tuple) else (out,)


class _Window(IndicatorParams, frozen=True, kw_only=True):
    timeperiod: Period = 20


class _Wilder(IndicatorParams, frozen=True, kw_only=True):
    timeperiod: ShortPeriod = 14


class _Lag(IndicatorParams, frozen=True, kw_only=True):
    timeperiod: ShortPeriod = 10


class SmaIndicator(TalibIndicator):
    name = "sma"
    summary = "Simple moving average of the close"
    function = "SMA"
    Params = _Window


class EmaIndicator(TalibIndicator):
    name = "ema"
    summary = "Exponential moving average of the close (seeded with the SMA, as TA-Lib)"
    function = "EMA"
    Params = _Window


class RsiParams(IndicatorParams, frozen=True, kw_only=True):
    timeperiod: Period = 14


class RsiIndicator(TalibIndicator):
    name = "rsi"
    summary = "Relative strength index (Wilder), 0-100"
    function = "RSI"
    Params = RsiParams


class MacdParams(IndicatorParams, frozen=True, kw_only=True):
    fastperiod: Period = 12
    slowperiod: Period = 26
    signalperiod: ShortPeriod = 9

    def check(self) -> list[str]:
        if self.fastperiod >= self.slowperiod:
            return [f"fastperiod ({self.fastperiod}) must be < slowperiod ({self.slowperiod})"]
        return []


class MacdIndicator(TalibIndicator):
    name = "macd"
    summary = "MACD line, its signal EMA and the histogram"
    function = "MACD"
    Params = MacdParams
    outputs = ("macd", "macdsignal", "macdhist")


class BbandsParams(IndicatorParams, frozen=True, kw_only=True):
    timeperiod: Period = 20
    nbdevup: Deviations = 2.0
    nbdevdn: Deviations = 2.0


class BbandsIndicator(TalibIndicator):
    name = "bbands"
    summary = "Bollinger Bands: SMA ± k population standard deviations"
    function = "BBANDS"
    Params = BbandsParams
    fixed = {"matype": 0}
    outputs = ("upperband", "middleband", "lowerband")


class AtrIndicator(TalibIndicator):
    name = "atr"
    summary = "Average true range (Wilder)"
    function = "ATR"
    Params = _Wilder
    inputs = ("high", "low", "close")


class NatrIndicator(TalibIndicator):
    name = "natr"
    summary = "Normalized ATR: ATR / close * 100 (volatility in percent)"
    function = "NATR"
    Params = _Wilder
    inputs = ("high", "low", "close")


class StochParams(IndicatorParams, frozen=True, kw_only=True):
    fastk_period: ShortPeriod = 5
    slowk_period: ShortPeriod = 3
    slowd_period: ShortPeriod = 3


class StochIndicator(TalibIndicator):
    name = "stoch"
    summary = "Slow stochastic oscillator %K and %D (SMA smoothing), 0-100"
    function = "STOCH"
    Params = StochParams
    fixed = {"slowk_matype": 0, "slowd_matype": 0}
    inputs = ("high", "low", "close")
    outputs = ("slowk", "slowd")


class ObvIndicator(TalibIndicator):
    name = "obv"
    summary = "On-balance volume"
    function = "OBV"
    inputs = ("close", "volume")


class RocIndicator(TalibIndicator):
    name = "roc"
    summary = "Rate of change in percent: (close / close[n bars ago] - 1) * 100"
    function = "ROC"
    Params = _Lag


class MomIndicator(TalibIndicator):
    name = "mom"
    summary = "Momentum: close - close[n bars ago]"
    function = "MOM"
    Params = _Lag


class StddevParams(IndicatorParams, frozen=True, kw_only=True):
    timeperiod: Period = 20
    nbdev: Deviations = 1.0


class StddevIndicator(TalibIndicator):
    name = "stddev"
    summary = "Rolling population standard deviation of the close, times nbdev (volatility)"
    function = "STDDEV"
    Params = StddevParams


BUILTINS: tuple[type[TalibIndicator], ...] = (
    SmaIndicator,
    EmaIndicator,
    RsiIndicator,
    MacdIndicator,
    BbandsIndicator,
    AtrIndicator,
    NatrIndicator,
    StochIndicator,
    ObvIndicator,
    RocIndicator,
    MomIndicator,
    StddevIndicator,
)

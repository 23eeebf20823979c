"""Technical indicators: built-ins over TA-Lib, plugins, batch and streaming forms.

- :mod:`.base` — the :class:`Indicator` interface, :class:`Bar`, :class:`Bars`
- :mod:`.params` — parameter schemas, validation (:class:`IndicatorError`), keys
- :mod:`.builtins` — SMA, EMA, RSI, MACD, BBANDS, ATR, NATR, STOCH, OBV, ROC, MOM, STDDEV
- :mod:`.registry` — name → class, ``create``, ``list`` (:func:`default_registry`)
- :mod:`.plugins` — loading custom indicators, :class:`SafeIndicator`
- :mod:`.bank` — :class:`IndicatorBank`, the indicators of one symbol and interval
- :mod:`.parity` — the streaming-equals-batch check, for built-ins and plugins
"""

from engine.indicators.bank import IndicatorBank
from engine.indicators.base import (
    Bar,
    Bars,
    Indicator,
    IndicatorStream,
    InsufficientHistory,
)
from engine.indicators.params import (
    Deviations,
    IndicatorError,
    IndicatorParams,
    Period,
    ShortPeriod,
)
from engine.indicators.plugins import PluginError, SafeIndicator, load_plugins
from engine.indicators.registry import IndicatorInfo, IndicatorRegistry, default_registry

__all__ = [
    "Bar",
    "Bars",
    "Deviations",
    "Indicator",
    "IndicatorBank",
    "IndicatorError",
    "IndicatorInfo",
    "IndicatorParams",
    "IndicatorRegistry",
    "IndicatorStream",
    "InsufficientHistory",
    "Period",
    "PluginError",
    "SafeIndicator",
    "ShortPeriod",
    "default_registry",
    "load_plugins",
]

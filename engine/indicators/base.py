"""The indicator interface: what a built-in or a plugin implements.

An :class:`Indicator` is one parameterised instance (``rsi`` with ``timeperiod=14``),
known by its :attr:`~Indicator.key` (``rsi_14``). It has two forms that agree:

- **batch**: :meth:`Indicator.batch` over float64 arrays (backfills, re-evaluation);
  outputs before :attr:`~Indicator.warmup` are NaN, as TA-Lib reports them.
- **streaming**: :meth:`Indicator.stream` opens an :class:`IndicatorStream` on a
  history; its ``update`` commits one closed bar in O(1) and returns that bar's values,
  ``peek`` returns what ``update`` would without committing (a forming bar). After
  warm-up, streaming values equal the batch values over the same bars within 1e-9.

A stream answers with a bare ``float`` for a one-output indicator and a tuple in
:attr:`~Indicator.outputs` order otherwise (the shape of TA-Lib's stream handles, so a
built-in's stream *is* the TA-Lib handle). Inputs are always finite: whoever feeds an
indicator (:class:`~engine.indicators.bank.IndicatorBank`) drops non-finite bars first.

Writing a plugin::

    class DonchianIndicator(Indicator):
        name = "donchian"
        summary = "Highest high and lowest low of the last N bars"
        inputs = ("high", "low")
        outputs = ("upper", "lower")

        class Params(IndicatorParams, frozen=True, kw_only=True):
            timeperiod: Period = 20

        @property
        def warmup(self) -> int: ...
        def batch(self, high, low): ...
        def stream(self, high, low): ...

Plugin code always runs inside :class:`~engine.indicators.plugins.SafeIndicator`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NamedTuple, Protocol, TypeAlias

import numpy as np
from numpy.typing import NDArray

from engine.indicators.params import (
    KEY_PATTERN,
    IndicatorError,
    IndicatorParams,
    NoParams,
    base_type,
    field_types,
    instance_key,
    params_key,
)

Array: TypeAlias = NDArray[np.float64]
Input = Literal["open", "high", "low", "close", "volume"]
INPUTS: tuple[Input, ...] = ("open", "high", "low", "close", "volume")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
OUTPUT_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class InsufficientHistory(IndicatorError):
    """Too few bars to open a stream yet; collect more and try again (not a failure)."""


class IndicatorStream(Protocol):
    """Streaming state of one indicator instance (TA-Lib's stream handles fit)."""

    @property
    def value(self) -> Any:
        """The values at the last bar of the history or the last ``update``."""

    def update(self, *values: Any, **_: Any) -> Any:
        """Commit one closed bar (its inputs in :attr:`Indicator.inputs` order) and
        return its values: a ``float``, or a tuple in :attr:`Indicator.outputs` order."""

    def peek(self, *values: Any, **_: Any) -> Any:
        """What :meth:`update` would return for this bar; changes nothing."""


class Indicator(ABC):
    """One parameterised indicator. Subclasses set the class attributes and implement
    :attr:`warmup`, :meth:`batch` and :meth:`stream`; instances come from
    :meth:`IndicatorRegistry.create <engine.indicators.registry.IndicatorRegistry.create>`
    with validated parameters."""

    INTERFACE_VERSION: ClassVar[int] = 1
    """Version of this interface the class was written for."""
    name: ClassVar[str]
    """Registry name, lower-case words joined by ``_`` (``rsi``, ``my_band``)."""
    summary: ClassVar[str] = ""
    """One line for ``qsuite ctl indicators list``."""
    Params: ClassVar[type[IndicatorParams]] = NoParams
    """The parameter schema."""
    inputs: ClassVar[tuple[Input, ...]] = ("close",)
    """Bar fields the indicator reads, in the order its methods take them."""
    outputs: ClassVar[tuple[str, ...]] = ("value",)
    """Output names; ``value`` for a single output."""

    def __init__(self, params: IndicatorParams) -> None:
        self.params: Any = params
        self.key = instance_key(self.name, params)
        """Instance key, e.g. ``rsi_14``: the topic part and ``IndicatorUpdated.indicator``."""
        self.params_key = params_key(params)
        """Canonical parameters, e.g. ``timeperiod=14``: ``IndicatorValue.params_key``."""
        if not KEY_PATTERN.match(self.key):
            raise IndicatorError(f"{self.name}: key {self.key!r} must match {KEY_PATTERN.pattern}")

    @property
    @abstractmethod
    def warmup(self) -> int:
        """Bars before the first value: batch outputs at indices ``< warmup`` are NaN
        (TA-Lib's lookback). A stream opens on ``warmup + 1`` bars or a few more."""

    # ``*args: Any, **kwargs: Any`` lets subclasses name their inputs
    # (``def batch(self, high, low)``) and still type-check.
    @abstractmethod
    def batch(self, *inputs: Any, **_: Any) -> tuple[Array, ...]:
        """Every output over finite, equally long float64 arrays (one per input, in
        :attr:`inputs` order), one array per output."""

    @abstractmethod
    def stream(self, *history: Any, **_: Any) -> IndicatorStream:
        """Open streaming state on a finite history whose last bar is the last closed
        one. Raises :class:`InsufficientHistory` when the history is too short."""

    def stream_and_fill(self, *history: Array) -> tuple[IndicatorStream, tuple[Array, ...]]:
        """A stream on ``history`` and the batch outputs over it (override to do both
        in one pass)."""
        return self.stream(*history), self.batch(*history)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key}>"


def check_class(cls: type) -> list[str]:
    """Problems that make ``cls`` unusable as an indicator class (``[]`` if none)."""
    label = getattr(cls, "__qualname__", repr(cls))
    if not (isinstance(cls, type) and issubclass(cls, Indicator)):
        return [f"{label} is not an Indicator subclass"]
    problems: list[str] = []
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or len(name) > 64:
        problems.append(f"{label}: name {name!r} must match {NAME_PATTERN.pattern} (≤ 64)")
    if cls.INTERFACE_VERSION != Indicator.INTERFACE_VERSION:
        problems.append(
            f"{label}: written for interface version {cls.INTERFACE_VERSION}, "
            f"this QSuite runs version {Indicator.INTERFACE_VERSION}"
        )
    if getattr(cls, "__abstractmethods__", None):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        problems.append(f"{label}: does not implement {missing}")
    if not (isinstance(cls.Params, type) and issubclass(cls.Params, IndicatorParams)):
        problems.append(f"{label}: Params must subclass IndicatorParams")
    else:
        try:
            for annotated in field_types(cls.Params).values():
                base_type(annotated)
        except Exception as exc:
            problems.append(f"{label}: Params: {exc}")
    if not cls.inputs or any(i not in INPUTS for i in cls.inputs):
        problems.append(f"{label}: inputs {cls.inputs!r} must be a non-empty subset of {INPUTS}")
    bad = [o for o in cls.outputs if not OUTPUT_PATTERN.match(o)]
    if not cls.outputs or bad or len(set(cls.outputs)) != len(cls.outputs):
        problems.append(
            f"{label}: outputs {cls.outputs!r} must be unique names matching "
            f"{OUTPUT_PATTERN.pattern}"
        )
    return problems


class Bar(NamedTuple):
    """One bar as the streaming form takes it; ``ts`` is its open time (UTC ns)."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float

    @classmethod
    def of(cls, bar: Any) -> Bar:
        """From anything with these attributes (``BarClosed``, ``BarRow``)."""
        return cls(bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume)


@dataclass(frozen=True, slots=True)
class Bars:
    """Bars column-wise, oldest first: int64 ``ts`` and float64 price/volume arrays."""

    ts: NDArray[np.int64]
    open: Array
    high: Array
    low: Array
    close: Array
    volume: Array

    @classmethod
    def of(
        cls,
        ts: Any,
        open: Any,
        high: Any,
        low: Any,
        close: Any,
        volume: Any,
    ) -> Bars:
        """From sequences or arrays, copied only where not already contiguous float64."""

        def f64(values: Any) -> Array:
            return np.ascontiguousarray(values, dtype=np.float64)

        bars = cls(
            np.ascontiguousarray(ts, dtype=np.int64),
            f64(open),
            f64(high),
            f64(low),
            f64(close),
            f64(volume),
        )
        lengths = {len(getattr(bars, f)) for f in ("ts", *INPUTS)}
        if len(lengths) != 1:
            raise ValueError(f"bar columns differ in length: {sorted(lengths)}")
        return bars

    @classmethod
    def from_rows(cls, rows: Iterable[Any]) -> Bars:
        """From bar objects with ``ts, open, high, low, close, volume`` attributes."""
        rows = list(rows)
        return cls.of(*([getattr(r, f) for r in rows] for f in ("ts", *INPUTS)))

    def __len__(self) -> int:
        return len(self.ts)

    def __getitem__(self, index: slice) -> Bars:
        return Bars(
            self.ts[index],
            self.open[index],
            self.high[index],
            self.low[index],
            self.close[index],
            self.volume[index],
        )

    def columns(self, names: tuple[Input, ...]) -> tuple[Array, ...]:
        return tuple(getattr(self, n) for n in names)

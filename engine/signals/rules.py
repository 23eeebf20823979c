"""The built-in signal rules.

Every rule fires on a closed bar and reads the indicator outputs it declares in
``required`` (TA-Lib names and parameters). "Previous" means the bar fed before this
one; a cross needs the previous and current values to be finite, so warm-up NaNs never
fire. Strength is always 0 … 1; each rule documents its measure. The ``indicator`` of
a signal is the instance key of the indicator the rule reads (``rsi_14``,
``macd_12_26_9``, ``bbands_20_2p0_2p0``); for ``ma_cross`` it is ``<type>_<fast>_<slow>``.

========================  ================================================================
rule                      kinds
========================  ================================================================
``rsi_cross``             ``oversold_entry``, ``oversold_exit``, ``overbought_entry``,
                          ``overbought_exit``
``macd_cross``            ``bullish_cross``, ``bearish_cross``
``macd_divergence``       ``bullish_divergence``, ``bearish_divergence``
                          (:mod:`engine.signals.divergence`)
``bollinger_breakout``    ``upper_breakout``, ``upper_reentry``, ``lower_breakout``,
                          ``lower_reentry``
``ma_cross``              ``golden_cross``, ``death_cross``
========================  ================================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Literal

import msgspec

from engine.signals.base import (
    SINGLE_OUTPUT,
    IndicatorSpec,
    RuleInput,
    RuleParams,
    RuleSignal,
    SignalRule,
    check_fast_slow,
    clamp01,
    crossed_above,
    crossed_below,
    finite,
)
from engine.signals.divergence import MacdDivergenceParams, MacdDivergenceRule

__all__ = [
    "BollingerBreakoutParams",
    "BollingerBreakoutRule",
    "MaCrossParams",
    "MaCrossRule",
    "MacdCrossParams",
    "MacdCrossRule",
    "MacdDivergenceParams",
    "MacdDivergenceRule",
    "RsiCrossParams",
    "RsiCrossRule",
]

Period = Annotated[int, msgspec.Meta(ge=2, le=100_000)]
StrengthPct = Annotated[
    float,
    msgspec.Meta(
        gt=0,
        description="Change of the spread across the cross bar, in % of the close, "
        "that scores strength 1.0.",
    ),
]


# -- rsi_cross -----------------------------------------------------------------------


class RsiCrossParams(RuleParams, frozen=True, kw_only=True):
    """Parameters of ``rsi_cross``; ``0 < lower < upper < 100``."""

    period: Annotated[Period, msgspec.Meta(description="RSI time period.")] = 14
    lower: Annotated[float, msgspec.Meta(description="Oversold threshold.")] = 30.0
    upper: Annotated[float, msgspec.Meta(description="Overbought threshold.")] = 70.0

    def __post_init__(self) -> None:
        if not 0 < self.lower < self.upper < 100:
            raise ValueError(
                f"thresholds must satisfy 0 < lower < upper < 100 "
                f"(lower={self.lower:g}, upper={self.upper:g})"
            )


class RsiCrossRule(SignalRule[RsiCrossParams]):
    """RSI entering and leaving the oversold and overbought zones.

    The oversold zone is ``rsi < lower``, the overbought zone ``rsi > upper``:

    - ``oversold_entry``: ``prev >= lower > cur``; strength ``(lower - cur) / lower``.
    - ``oversold_exit``: ``prev < lower <= cur``; strength ``(cur - lower) / (upper - lower)``.
    - ``overbought_entry``: ``prev <= upper < cur``; strength ``(cur - upper) / (100 - upper)``.
    - ``overbought_exit``: ``prev > upper >= cur``; strength ``(upper - cur) / (upper - lower)``.

    I.e. how far into the zone (entries) or back towards the middle (exits) RSI went, as a
    share of the room there is; capped at 1. A jump from oversold straight into overbought
    raises ``oversold_exit`` and ``overbought_entry`` on the same bar.

    Input ``rsi`` = ``rsi(timeperiod=period).value``.
    """

    name = "rsi_cross"
    kinds = ("oversold_entry", "oversold_exit", "overbought_entry", "overbought_exit")
    params_type = RsiCrossParams
    description = "RSI crossing into / out of oversold and overbought"

    @property
    def required(self) -> Mapping[str, IndicatorSpec]:
        return {"rsi": IndicatorSpec.of("rsi", {"timeperiod": self.params.period}, SINGLE_OUTPUT)}

    @property
    def indicator(self) -> str:
        return f"rsi_{self.params.period}"

    def on_bar(self, ctx: RuleInput) -> list[RuleSignal]:
        prev, cur = ctx.before("rsi"), ctx.now("rsi")
        if not finite(prev, cur):
            return []
        lower, upper = self.params.lower, self.params.upper
        details: dict[str, float | str] = {"rsi": cur, "prev_rsi": prev}
        out: list[RuleSignal] = []

        def emit(kind: str, strength: float, threshold: float) -> None:
            out.append(
                RuleSignal(
                    kind=kind,
                    strength=clamp01(strength),
                    details=details | {"threshold": threshold},
                )
            )

        if prev >= lower > cur:
            emit("oversold_entry", (lower - cur) / lower, lower)
        if prev < lower <= cur:
            emit("oversold_exit", (cur - lower) / (upper - lower), lower)
        if prev <= upper < cur:
            emit("overbought_entry", (cur - upper) / (100.0 - upper), upper)
        if prev > upper >= cur:
            emit("overbought_exit", (upper - cur) / (upper - lower), upper)
        return out


# -- macd_cross ----------------------------------------------------------------------


class MacdCrossParams(RuleParams, frozen=True, kw_only=True):
    """Parameters of ``macd_cross``; ``fast < slow``."""

    fast: Annotated[Period, msgspec.Meta(description="MACD fast EMA period.")] = 12
    slow: Annotated[Period, msgspec.Meta(description="MACD slow EMA period.")] = 26
    signal: Annotated[
        int, msgspec.Meta(ge=1, le=100_000, description="MACD signal-line EMA period.")
    ] = 9
    strength_pct: StrengthPct = 1.0

    def __post_init__(self) -> None:
        check_fast_slow(self.fast, self.slow)


class MacdCrossRule(SignalRule[MacdCrossParams]):
    """The MACD line crossing its signal line.

    - ``bullish_cross``: ``prev_macd <= prev_signal`` and ``macd > signal``.
    - ``bearish_cross``: ``prev_macd >= prev_signal`` and ``macd < signal``.

    Strength: how sharply the histogram (``macd - signal``) swung across the cross bar,
    ``|hist - prev_hist| / close`` in percent, divided by ``strength_pct``, capped at 1.

    Inputs ``macd`` and ``signal`` = ``macd(fastperiod, slowperiod, signalperiod)`` outputs
    ``macd`` and ``macdsignal``.
    """

    name = "macd_cross"
    kinds = ("bullish_cross", "bearish_cross")
    params_type = MacdCrossParams
    description = "MACD line crossing its signal line"

    @property
    def required(self) -> Mapping[str, IndicatorSpec]:
        params = _macd_params(self.params.fast, self.params.slow, self.params.signal)
        return {
            "macd": IndicatorSpec.of("macd", params, "macd"),
            "signal": IndicatorSpec.of("macd", params, "macdsignal"),
        }

    @property
    def indicator(self) -> str:
        return f"macd_{self.params.fast}_{self.params.slow}_{self.params.signal}"

    def on_bar(self, ctx: RuleInput) -> list[RuleSignal]:
        pm, ps, m, s = ctx.before("macd"), ctx.before("signal"), ctx.now("macd"), ctx.now("signal")
        if crossed_above(pm, ps, m, s):
            kind = "bullish_cross"
        elif crossed_below(pm, ps, m, s):
            kind = "bearish_cross"
        else:
            return []
        strength = _pct_of_close((m - s) - (pm - ps), ctx.close) / self.params.strength_pct
        details: dict[str, float | str] = {"macd": m, "signal": s, "hist": m - s}
        return [RuleSignal(kind=kind, strength=clamp01(strength), details=details)]


# -- bollinger_breakout ---------------------------------------------------------------


class BollingerBreakoutParams(RuleParams, frozen=True, kw_only=True):
    """Parameters of ``bollinger_breakout`` (bands around an SMA: TA-Lib's ``matype=0``);
    ``nbdev < sqrt(period - 1)``, or the close could never leave the bands."""

    period: Annotated[Period, msgspec.Meta(description="Bollinger Bands time period.")] = 20
    nbdev: Annotated[
        float, msgspec.Meta(gt=0, le=100, description="Band width in standard deviations.")
    ] = 2.0

    def __post_init__(self) -> None:
        # The close is part of the window: with population standard deviations (TA-Lib),
        # no value of n lies further than sqrt(n - 1) deviations from their mean.
        reach = math.sqrt(self.period - 1)
        if self.nbdev >= reach:
            raise ValueError(
                f"nbdev ({self.nbdev:g}) must be < sqrt(period - 1) = {reach:.3g}: over "
                f"{self.period} bars the close can never lie further from the mean"
            )


class BollingerBreakoutRule(SignalRule[BollingerBreakoutParams]):
    """The close leaving and re-entering the Bollinger Bands.

    "Above" is ``close > upper``, "below" is ``close < lower``:

    - ``upper_breakout``: ``prev_close <= prev_upper`` and ``close > upper``.
    - ``upper_reentry``: ``prev_close > prev_upper`` and ``close <= upper``.
    - ``lower_breakout``: ``prev_close >= prev_lower`` and ``close < lower``.
    - ``lower_reentry``: ``prev_close < prev_lower`` and ``close >= lower``.

    Strength: the distance of the close from the band it crossed (beyond it for a
    breakout, back inside for a re-entry) in standard deviations (``sd = (upper - middle) /
    nbdev``), capped at 1: a close one sd outside the upper band is a full-strength breakout.

    Inputs ``upper``, ``middle``, ``lower`` = ``bbands(timeperiod=period, nbdevup=nbdev,
    nbdevdn=nbdev)`` (``matype`` 0, TA-Lib's default) outputs ``upperband``,
    ``middleband``, ``lowerband``.
    """

    name = "bollinger_breakout"
    kinds = ("upper_breakout", "upper_reentry", "lower_breakout", "lower_reentry")
    params_type = BollingerBreakoutParams
    description = "close breaking out of / re-entering the Bollinger Bands"

    @property
    def required(self) -> Mapping[str, IndicatorSpec]:
        p = self.params
        params = {"timeperiod": p.period, "nbdevup": p.nbdev, "nbdevdn": p.nbdev}
        return {
            "upper": IndicatorSpec.of("bbands", params, "upperband"),
            "middle": IndicatorSpec.of("bbands", params, "middleband"),
            "lower": IndicatorSpec.of("bbands", params, "lowerband"),
        }

    @property
    def indicator(self) -> str:
        nbdev = repr(self.params.nbdev).replace(".", "p").replace("+", "")
        return f"bbands_{self.params.period}_{nbdev}_{nbdev}"

    def on_bar(self, ctx: RuleInput) -> list[RuleSignal]:
        pc, c = ctx.prev_close, ctx.close
        pu, pl = ctx.before("upper"), ctx.before("lower")
        u, mid, lo = ctx.now("upper"), ctx.now("middle"), ctx.now("lower")
        if not finite(pc, c, pu, pl, u, mid, lo):
            return []
        sigma = (u - mid) / self.params.nbdev
        details: dict[str, float | str] = {"close": c, "upper": u, "middle": mid, "lower": lo}
        out: list[RuleSignal] = []

        def emit(kind: str, distance: float) -> None:
            out.append(RuleSignal(kind=kind, strength=_ratio(distance, sigma), details=details))

        if pc <= pu and c > u:
            emit("upper_breakout", c - u)
        if pc > pu and c <= u:
            emit("upper_reentry", u - c)
        if pc >= pl and c < lo:
            emit("lower_breakout", lo - c)
        if pc < pl and c >= lo:
            emit("lower_reentry", c - lo)
        return out


# -- ma_cross ------------------------------------------------------------------------


class MaCrossParams(RuleParams, frozen=True, kw_only=True):
    """Parameters of ``ma_cross``; ``fast < slow``."""

    fast: Annotated[Period, msgspec.Meta(description="Fast moving-average period.")] = 50
    slow: Annotated[Period, msgspec.Meta(description="Slow moving-average period.")] = 200
    type: Annotated[Literal["sma", "ema"], msgspec.Meta(description="Moving-average type.")] = "sma"
    strength_pct: StrengthPct = 1.0

    def __post_init__(self) -> None:
        check_fast_slow(self.fast, self.slow)


class MaCrossRule(SignalRule[MaCrossParams]):
    """A fast moving average crossing a slow one.

    - ``golden_cross``: ``prev_fast <= prev_slow`` and ``fast > slow``.
    - ``death_cross``: ``prev_fast >= prev_slow`` and ``fast < slow``.

    Strength: how sharply the spread (``fast - slow``) moved across the cross bar,
    ``|spread - prev_spread| / close`` in percent, divided by ``strength_pct``, capped at 1.

    Inputs ``fast`` and ``slow`` = ``<type>(timeperiod=fast).value`` and
    ``<type>(timeperiod=slow).value`` with ``type`` ``sma`` or ``ema``.
    """

    name = "ma_cross"
    kinds = ("golden_cross", "death_cross")
    params_type = MaCrossParams
    description = "fast moving average crossing the slow one (golden / death cross)"

    @property
    def required(self) -> Mapping[str, IndicatorSpec]:
        p = self.params
        return {
            "fast": IndicatorSpec.of(p.type, {"timeperiod": p.fast}, SINGLE_OUTPUT),
            "slow": IndicatorSpec.of(p.type, {"timeperiod": p.slow}, SINGLE_OUTPUT),
        }

    @property
    def indicator(self) -> str:
        return f"{self.params.type}_{self.params.fast}_{self.params.slow}"

    def on_bar(self, ctx: RuleInput) -> list[RuleSignal]:
        pf, ps, f, s = ctx.before("fast"), ctx.before("slow"), ctx.now("fast"), ctx.now("slow")
        if crossed_above(pf, ps, f, s):
            kind = "golden_cross"
        elif crossed_below(pf, ps, f, s):
            kind = "death_cross"
        else:
            return []
        strength = _pct_of_close((f - s) - (pf - ps), ctx.close) / self.params.strength_pct
        details: dict[str, float | str] = {"fast": f, "slow": s, "spread": f - s}
        return [RuleSignal(kind=kind, strength=clamp01(strength), details=details)]


# -- shared --------------------------------------------------------------------------


def _macd_params(fast: int, slow: int, signal: int) -> dict[str, int | float | str]:
    return {"fastperiod": fast, "slowperiod": slow, "signalperiod": signal}


def _pct_of_close(change: float, close: float) -> float:
    """``|change|`` in percent of ``|close|`` (0 when the close is 0 or not finite)."""
    if not (finite(close) and close != 0.0):
        return 0.0
    return abs(change) / abs(close) * 100.0


def _ratio(distance: float, unit: float) -> float:
    """``distance / unit`` capped to 0 … 1; a zero-width unit scores any distance as 1."""
    if unit > 0.0:
        return clamp01(distance / unit)
    return 1.0 if distance > 0.0 else 0.0

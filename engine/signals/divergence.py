"""``macd_divergence``: price and MACD disagreeing at swing lows and highs."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Annotated, Any, Literal, NamedTuple, TypeGuard

import msgspec

from engine.signals.base import (
    IndicatorSpec,
    RuleInput,
    RuleParams,
    RuleSignal,
    SignalRule,
    check_fast_slow,
    clamp01,
)

_OUTPUTS = {"macd": "macd", "hist": "macdhist"}


class MacdDivergenceParams(RuleParams, frozen=True, kw_only=True):
    """Parameters of ``macd_divergence``; ``fast < slow`` and ``lookback > 2 * window``
    (two swings of one side are more than ``window`` bars apart and the newer one is
    confirmed ``window`` bars later, so a shorter lookback could never fire)."""

    fast: Annotated[int, msgspec.Meta(ge=2, le=100_000, description="MACD fast period.")] = 12
    slow: Annotated[int, msgspec.Meta(ge=2, le=100_000, description="MACD slow period.")] = 26
    signal: Annotated[int, msgspec.Meta(ge=1, le=100_000, description="MACD signal period.")] = 9
    window: Annotated[
        int,
        msgspec.Meta(
            ge=1,
            le=1000,
            description="Swing half-width: a swing low is the lowest low within ±window "
            "bars, confirmed window bars later.",
        ),
    ] = 5
    lookback: Annotated[
        int,
        msgspec.Meta(
            ge=3,
            le=100_000,
            description="The older of the two swings compared lies at most this many bars "
            "before the confirming bar.",
        ),
    ] = 60
    oscillator: Annotated[
        Literal["macd", "hist"],
        msgspec.Meta(description="Compare the MACD line (macd) or the histogram (hist)."),
    ] = "macd"

    def __post_init__(self) -> None:
        check_fast_slow(self.fast, self.slow)
        if self.lookback <= 2 * self.window:
            raise ValueError(
                f"lookback ({self.lookback}) must be > 2 * window ({self.window}), "
                f"or no divergence can ever be confirmed"
            )


class _Bar(NamedTuple):
    i: int
    ts: int
    low: float
    high: float
    osc: float


class _Swing(NamedTuple):
    i: int
    ts: int
    price: float
    osc: float


class MacdDivergenceRule(SignalRule[MacdDivergenceParams]):
    """Price making a new extreme that the MACD does not confirm.

    Swings (on the bar's ``low`` and ``high``, with half-width ``window``):

    - bar *p* is a *swing low* when its low is strictly below the lows of the ``window``
      bars before it and at or below the lows of the ``window`` bars after it (so the
      first bar of a flat bottom is the swing); a *swing high* likewise with highs.
    - A swing is **confirmed ``window`` bars later**, at bar *p + window*, when the bars
      after it are known: that confirming bar is the bar of the signal (its ``ts``), not
      the swing bar (the swing bar's time is in ``details["swing_ts"]``).
    - The oscillator's value at a swing is its extreme over the same ``2 * window + 1``
      bars (its lowest value around a swing low, highest around a swing high), because
      the MACD often turns a bar or two away from the price. A swing is only recorded
      when the oscillator is finite on all of those bars (never during warm-up).

    Each newly confirmed swing is compared with the previous confirmed swing of the same
    side, if that lies at most ``lookback`` bars before the confirming bar; then it
    becomes the new reference:

    - ``bullish_divergence``: the price makes a lower low (``low₂ < low₁``) while the
      oscillator makes a higher low (``osc₂ > osc₁``).
    - ``bearish_divergence``: a higher high (``high₂ > high₁``) with a lower oscillator
      high (``osc₂ < osc₁``).

    Strength: how much the oscillator disagrees, scale-free:
    ``|osc₂ - osc₁| / (|osc₁| + |osc₂|)`` (in (0, 1]).

    The oscillator is the MACD line (``oscillator="macd"``, default) or the histogram
    (``"hist"``). Input ``osc`` = ``macd(fastperiod, slowperiod, signalperiod)`` output
    ``macd`` (or ``macdhist``); prices come from the bar. State: the last
    ``2 * window + 1`` bars and the last swing of each side.
    """

    name = "macd_divergence"
    kinds = ("bullish_divergence", "bearish_divergence")
    params_type = MacdDivergenceParams
    description = "divergence between price and MACD at swing lows / highs"

    def __init__(self, params: MacdDivergenceParams | None = None, /, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        self._span = 2 * self.params.window + 1
        self._bars: deque[_Bar] = deque(maxlen=self._span)
        self._n = 0
        self._low: _Swing | None = None
        self._high: _Swing | None = None

    @property
    def required(self) -> Mapping[str, IndicatorSpec]:
        p = self.params
        params = {"fastperiod": p.fast, "slowperiod": p.slow, "signalperiod": p.signal}
        return {"osc": IndicatorSpec.of("macd", params, _OUTPUTS[p.oscillator])}

    @property
    def indicator(self) -> str:
        p = self.params
        suffix = "_hist" if p.oscillator == "hist" else ""
        return f"macd_{p.fast}_{p.slow}_{p.signal}{suffix}"

    def on_bar(self, ctx: RuleInput) -> list[RuleSignal]:
        self._bars.append(_Bar(self._n, ctx.ts, ctx.low, ctx.high, ctx.now("osc")))
        self._n += 1
        if len(self._bars) < self._span:
            return []
        w = self.params.window
        bars = list(self._bars)
        c, before, after = bars[w], bars[:w], bars[w + 1 :]
        oscs = [b.osc for b in bars]
        if not all(math.isfinite(o) for o in oscs):
            return []
        out: list[RuleSignal] = []
        if all(c.low < b.low for b in before) and all(c.low <= b.low for b in after):
            swing = _Swing(c.i, c.ts, c.low, min(oscs))
            prev, self._low = self._low, swing
            if self._recent(prev) and swing.price < prev.price and swing.osc > prev.osc:
                out.append(self._signal("bullish_divergence", prev, swing))
        if all(c.high > b.high for b in before) and all(c.high >= b.high for b in after):
            swing = _Swing(c.i, c.ts, c.high, max(oscs))
            prev, self._high = self._high, swing
            if self._recent(prev) and swing.price > prev.price and swing.osc < prev.osc:
                out.append(self._signal("bearish_divergence", prev, swing))
        return out

    def _recent(self, prev: _Swing | None) -> TypeGuard[_Swing]:
        """``prev`` exists and lies within ``lookback`` bars of the current bar."""
        return prev is not None and (self._n - 1) - prev.i <= self.params.lookback

    def _signal(self, kind: str, prev: _Swing, swing: _Swing) -> RuleSignal:
        spread = abs(prev.osc) + abs(swing.osc)
        strength = abs(swing.osc - prev.osc) / spread if spread > 0 else 0.0
        details: dict[str, float | str] = {
            "swing_ts": swing.ts,
            "prev_swing_ts": prev.ts,
            "price": swing.price,
            "prev_price": prev.price,
            "osc": swing.osc,
            "prev_osc": prev.osc,
            "bars_apart": swing.i - prev.i,
            "oscillator": self.params.oscillator,
        }
        return RuleSignal(kind=kind, strength=clamp01(strength), details=details)

    def state(self) -> dict[str, Any]:
        return {
            "n": self._n,
            "bars": [[b.i, b.ts, _num(b.low), _num(b.high), _num(b.osc)] for b in self._bars],
            "low": list(self._low) if self._low else None,
            "high": list(self._high) if self._high else None,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self._n = int(state.get("n", 0))
        self._bars.clear()
        for i, ts, low, high, osc in state.get("bars", []):
            self._bars.append(_Bar(int(i), int(ts), _float(low), _float(high), _float(osc)))
        self._low = _swing(state.get("low"))
        self._high = _swing(state.get("high"))


def _num(value: float) -> float | None:
    """NaN has no JSON spelling: stored as ``None``."""
    return value if math.isfinite(value) else None


def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _swing(raw: list[Any] | None) -> _Swing | None:
    if not raw:
        return None
    i, ts, price, osc = raw
    return _Swing(int(i), int(ts), float(price), float(osc))

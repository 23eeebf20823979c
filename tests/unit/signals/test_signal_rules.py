"""Each built-in signal rule on hand-made series whose signal bars are known by hand.

The rules read indicator values, so most series here are the indicator values
themselves (written out bar by bar); a few go through TA-Lib to show the rules agree
with TA-Lib's output shapes and warm-up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
import talib

from engine.signals.base import RuleInput, SignalRule
from engine.signals.rules import (
    BollingerBreakoutRule,
    MacdCrossRule,
    MacdDivergenceRule,
    MaCrossRule,
    RsiCrossRule,
)

NAN = math.nan


def run(
    rule: SignalRule,
    inputs: dict[str, Sequence[float]],
    *,
    close: Sequence[float] | None = None,
    low: Sequence[float] | None = None,
    high: Sequence[float] | None = None,
) -> list[tuple[int, str, float]]:
    """Feed ``rule`` bar by bar (bar ``i`` has ``ts == i``); returns ``(bar, kind, strength)``."""
    n = len(next(iter(inputs.values())))
    close = close if close is not None else [100.0] * n
    low = low if low is not None else close
    high = high if high is not None else close
    out: list[tuple[int, str, float]] = []
    for i in range(n):
        ctx = RuleInput(
            symbol="TEST",
            interval="1d",
            ts=i,
            open=close[i],
            high=high[i],
            low=low[i],
            close=close[i],
            volume=1.0,
            prev_close=close[i - 1] if i else NAN,
            current={name: values[i] for name, values in inputs.items()},
            previous={name: values[i - 1] if i else NAN for name, values in inputs.items()},
        )
        out.extend((i, s.kind, s.strength) for s in rule.on_bar(ctx))
    return out


def kinds(signals: list[tuple[int, str, float]]) -> list[tuple[int, str]]:
    return [(i, kind) for i, kind, _ in signals]


# -- rsi_cross -------------------------------------------------------------------------

#        0    1    2   3   4   5   6   7   8   9     10  11  12  13  14  15  16    17
RSI = [NAN, NAN, 50, 35, 30, 29, 25, 31, 30, 29.9, 50, 70, 71, 69, 70, 71, 70.5, 69.9]


def test_rsi_cross_when_rsi_enters_and_leaves_zones_then_fires_on_the_crossing_bars() -> None:
    # 2: previous is NaN (warm-up) -> nothing.     4: 35 -> 30 stays >= 30 (not oversold).
    # 5: 30 -> 29 crosses below 30 (entry).        7: 25 -> 31 back to >= 30 (exit).
    # 8: 31 -> 30 is not below 30.                 9: 30 -> 29.9 (entry).  10: -> 50 (exit).
    # 11: 50 -> 70 is not above 70.                12: 70 -> 71 (entry).   13: -> 69 (exit).
    # 15: 70 -> 71 (entry); 16: 70.5 still above;  17: 70.5 -> 69.9 (exit).
    assert kinds(run(RsiCrossRule(), {"rsi": RSI})) == [
        (5, "oversold_entry"),
        (7, "oversold_exit"),
        (9, "oversold_entry"),
        (10, "oversold_exit"),
        (12, "overbought_entry"),
        (13, "overbought_exit"),
        (15, "overbought_entry"),
        (17, "overbought_exit"),
    ]


def test_rsi_cross_strength_when_crossing_then_measures_distance_into_the_room() -> None:
    strengths = {(i, k): s for i, k, s in run(RsiCrossRule(), {"rsi": RSI})}

    assert strengths[(5, "oversold_entry")] == pytest.approx(1 / 30)  # (30 - 29) / 30
    assert strengths[(7, "oversold_exit")] == pytest.approx(1 / 40)  # (31 - 30) / (70 - 30)
    assert strengths[(12, "overbought_entry")] == pytest.approx(1 / 30)  # (71 - 70) / 30
    assert strengths[(13, "overbought_exit")] == pytest.approx(1 / 40)  # (70 - 69) / 40
    assert strengths[(10, "oversold_exit")] == pytest.approx(0.5)  # (50 - 30) / 40


def test_rsi_cross_when_thresholds_configured_then_uses_them() -> None:
    # lower 20 / upper 80: 29, 25 are no longer oversold, 71 no longer overbought.
    rsi = [NAN, 50, 21, 19, 25, 79, 81, 80]
    # 3: 21 -> 19 below 20 (entry); 4: -> 25 (exit); 6: 79 -> 81 (entry); 7: 81 -> 80 (exit).
    assert kinds(run(RsiCrossRule(lower=20, upper=80), {"rsi": rsi})) == [
        (3, "oversold_entry"),
        (4, "oversold_exit"),
        (6, "overbought_entry"),
        (7, "overbought_exit"),
    ]
    assert kinds(run(RsiCrossRule(lower=20, upper=80), {"rsi": RSI})) == []


def test_rsi_cross_when_rsi_jumps_across_both_zones_then_raises_exit_and_entry() -> None:
    assert kinds(run(RsiCrossRule(), {"rsi": [20, 90, 10]})) == [
        (1, "oversold_exit"),
        (1, "overbought_entry"),
        (2, "oversold_entry"),
        (2, "overbought_exit"),
    ]


def test_rsi_cross_on_talib_rsi_when_warming_up_then_never_fires() -> None:
    # 15 rising closes: TA-Lib's RSI(14) is NaN on bars 0-13 and 100 on bar 14. Entering
    # from NaN is not a cross, so no overbought_entry at 14. A drop of 7 at bar 15 gives
    # RSI = 100 * 13 / (13 + 7) = 65 (Wilder: avg gain 13/14, avg loss 7/14) -> exit at 15;
    # a drop of 5 gives 100 * 13 / 18 = 72.2, still overbought -> nothing.
    for drop, expected in ((7.0, [(15, "overbought_exit")]), (5.0, [])):
        closes = np.array([*map(float, range(15)), 14.0 - drop])
        rsi = talib.RSI(closes, timeperiod=14)
        assert math.isnan(rsi[13]) and rsi[14] == 100.0
        assert kinds(run(RsiCrossRule(), {"rsi": list(rsi)})) == expected


# -- macd_cross ------------------------------------------------------------------------


def test_macd_cross_when_macd_crosses_signal_then_bullish_and_bearish() -> None:
    #        0    1    2     3     4    5    6    7
    macd = [NAN, NAN, -1.0, -0.5, 0.2, 0.5, 0.3, -0.1]
    signal = [NAN, NAN, NAN, 0.0, 0.0, 0.1, 0.3, 0.2]
    # 3: previous signal NaN -> nothing.  4: -0.5 <= 0 then 0.2 > 0 -> bullish.
    # 6: macd touches the signal (0.3 == 0.3): not below -> nothing.
    # 7: 0.3 >= 0.3 then -0.1 < 0.2 -> bearish.
    got = run(MacdCrossRule(strength_pct=1.0), {"macd": macd, "signal": signal})
    assert kinds(got) == [(4, "bullish_cross"), (7, "bearish_cross")]
    # strength: histogram -0.5 -> 0.2 moved 0.7 = 0.7 % of the close 100 -> 0.7 / 1.0
    assert got[0][2] == pytest.approx(0.7)
    # bearish: 0.0 -> -0.3 = 0.3 %
    assert got[1][2] == pytest.approx(0.3)


def test_macd_cross_on_talib_macd_when_trend_turns_then_one_bullish_cross() -> None:
    # 40 falling then 40 rising closes: the MACD line sits below its signal line in the
    # fall and crosses above it once after the turn, never back.
    closes = np.array([100.0 - i for i in range(40)] + [61.0 + i for i in range(40)])
    macd, signal, _ = talib.MACD(closes, fastperiod=12, slowperiod=26, signalperiod=9)
    got = kinds(run(MacdCrossRule(), {"macd": list(macd), "signal": list(signal)}))
    assert len(got) == 1 and got[0][1] == "bullish_cross"
    bar = got[0][0]
    assert 40 <= bar < 50 and macd[bar - 1] <= signal[bar - 1] and macd[bar] > signal[bar]


# -- bollinger_breakout -----------------------------------------------------------------


def test_bollinger_when_close_leaves_and_reenters_bands_then_fires_each_crossing() -> None:
    # Bands 8 / 10 / 12 (nbdev 2 -> one standard deviation = 1); upper NaN at bar 0.
    #         0   1   2   3     4   5   6  7  8    9    10    11 12  13  14
    close = [10, 10, 10, 12.5, 13, 11, 9, 7, 7.5, 8.5, 12.5, 7, 8, 12, 12.01]
    n = len(close)
    bands = {"upper": [NAN] + [12.0] * (n - 1), "middle": [10.0] * n, "lower": [8.0] * n}
    # 1: previous upper NaN -> nothing.   3: 10 -> 12.5 above 12 (breakout, 0.5 sd).
    # 5: 13 -> 11 back inside (re-entry, 1 sd inside).  7: 9 -> 7 below 8 (breakout, 1 sd).
    # 9: 7.5 -> 8.5 (re-entry, 0.5 sd).   10: 8.5 -> 12.5 (breakout).
    # 11: 12.5 -> 7 leaves the top and breaks the bottom in one bar (both).
    # 12: 7 -> 8 touches the lower band: inside again (re-entry).
    # 13: 8 -> 12 touches the upper band: not outside.  14: 12 -> 12.01 (breakout).
    got = run(BollingerBreakoutRule(), bands, close=close)
    assert kinds(got) == [
        (3, "upper_breakout"),
        (5, "upper_reentry"),
        (7, "lower_breakout"),
        (9, "lower_reentry"),
        (10, "upper_breakout"),
        (11, "upper_reentry"),
        (11, "lower_breakout"),
        (12, "lower_reentry"),
        (14, "upper_breakout"),
    ]
    assert [s for _, _, s in got[:4]] == pytest.approx([0.5, 1.0, 1.0, 0.5])


def test_indicator_when_signals_labelled_then_instance_keys() -> None:
    assert RsiCrossRule().indicator == "rsi_14"
    assert MacdCrossRule().indicator == "macd_12_26_9"
    assert MacdDivergenceRule(oscillator="hist").indicator == "macd_12_26_9_hist"
    assert BollingerBreakoutRule(nbdev=2.5).indicator == "bbands_20_2p5_2p5"
    assert MaCrossRule().indicator == "sma_50_200"


def test_bollinger_when_band_has_no_width_then_strength_is_full() -> None:
    bands = {"upper": [10.0, 10.0], "middle": [10.0, 10.0], "lower": [10.0, 10.0]}
    got = run(BollingerBreakoutRule(), bands, close=[10.0, 10.5])
    assert got == [(1, "upper_breakout", 1.0)]


# -- ma_cross --------------------------------------------------------------------------


def test_ma_cross_on_talib_sma_when_fast_crosses_slow_then_golden_then_death() -> None:
    # closes 10 x6, 20 x4, 0 x4.  SMA(2) / SMA(4) by hand:
    # bar    0    1   2    3   4   5   6     7   8     9   10  11  12 13
    # fast  nan  10  10   10  10  10  15    20  20    20  10   0   0  0
    # slow  nan nan nan   10  10  10  12.5  15  17.5  20  15  10   5  0
    # 3: previous slow NaN -> nothing; 4-5 equal -> nothing; 6: 10 <= 10 then 15 > 12.5
    # (golden); 9: 20 == 20 is no cross; 10: 20 >= 20 then 10 < 15 (death); 13: equal.
    closes = np.array([10.0] * 6 + [20.0] * 4 + [0.0] * 4)
    fast, slow = talib.SMA(closes, 2), talib.SMA(closes, 4)
    rule = MaCrossRule(fast=2, slow=4, strength_pct=25.0)
    got = run(rule, {"fast": list(fast), "slow": list(slow)}, close=list(closes))
    assert kinds(got) == [(6, "golden_cross"), (10, "death_cross")]
    # golden: spread 0 -> 2.5 at close 20 = 12.5 % of the close; / 25 -> 0.5
    assert got[0][2] == pytest.approx(0.5)
    # death at close 0: no price scale -> strength 0
    assert got[1][2] == 0.0


def test_ma_cross_when_type_ema_then_requires_ema_outputs() -> None:
    rule = MaCrossRule(fast=5, slow=10, type="ema")
    assert {s.indicator for s in rule.required.values()} == {"ema"}
    assert rule.indicator == "ema_5_10"
    assert MaCrossRule().required["slow"].params_dict == {"timeperiod": 200}


# -- macd_divergence -------------------------------------------------------------------

# window 2: a swing low is the lowest low within +-2 bars, confirmed 2 bars later.
#        0   1  2  3  4   5   6   7  8  9  10  11  12  13  14
LOWS = [10, 9, 8, 9, 10, 11, 10, 9, 7, 8, 9, 10, 11, 12, 13]
HIGHS = [low + 1 for low in LOWS]
# swing lows at bars 2 (low 8) and 8 (low 7: a lower low), confirmed at bars 4 and 10;
# the only swing high is bar 5 (confirmed at 7), so no bearish comparison happens.
# MACD: lowest -2.0 within bars 0-4 (around the first low), -1.0 within bars 6-10 (around
# the second): a higher low -> bullish divergence at the confirming bar 10.
OSC = [-1, -1.5, -2, -1.5, -1, -0.5, -0.8, -0.9, -1, -0.9, -0.5, 0, 0.5, 1, 1.5]


def divergence(osc: Sequence[float], low: Sequence[float], high: Sequence[float], **params):
    rule = MacdDivergenceRule(window=2, lookback=20, **params)
    return run(rule, {"osc": osc}, close=low, low=low, high=high)


def test_divergence_when_price_lower_low_and_macd_higher_low_then_bullish_at_confirming_bar() -> (
    None
):
    got = divergence(OSC, LOWS, HIGHS)
    assert kinds(got) == [(10, "bullish_divergence")]
    # strength |(-1) - (-2)| / (|-2| + |-1|)
    assert got[0][2] == pytest.approx(1 / 3)


def test_divergence_when_price_higher_high_and_macd_lower_high_then_bearish() -> None:
    # The mirror image: highs -8 (bar 2) then -7 (bar 8) is a higher high; the MACD's
    # highs around them are 2.0 then 1.0, a lower high.
    highs = [-low for low in LOWS]
    lows = [h - 1 for h in highs]
    got = divergence([-o for o in OSC], lows, highs)
    assert kinds(got) == [(10, "bearish_divergence")]
    assert got[0][2] == pytest.approx(1 / 3)


def test_divergence_when_macd_confirms_the_lower_low_then_no_signal() -> None:
    # Control: the same prices, but MACD makes a lower low too (-3 < -2): no divergence.
    osc = list(OSC)
    osc[8] = -3.0
    assert divergence(osc, LOWS, HIGHS) == []


def test_divergence_when_swing_not_yet_confirmed_then_nothing_before_window_bars() -> None:
    assert divergence(OSC[:10], LOWS[:10], HIGHS[:10]) == []
    assert kinds(divergence(OSC[:11], LOWS[:11], HIGHS[:11])) == [(10, "bullish_divergence")]


def test_divergence_when_older_swing_beyond_lookback_then_no_signal() -> None:
    # The older swing (bar 2) is 8 bars before the confirming bar 10.
    def run_with(lookback: int):
        rule = MacdDivergenceRule(window=2, lookback=lookback)
        return kinds(run(rule, {"osc": OSC}, close=LOWS, low=LOWS, high=HIGHS))

    assert run_with(7) == []
    assert run_with(8) == [(10, "bullish_divergence")]


def test_divergence_when_macd_warming_up_then_first_swing_is_not_recorded() -> None:
    # MACD NaN on bars 0-4 covers the first swing: nothing to compare the second with.
    osc = [NAN] * 5 + OSC[5:]
    assert divergence(osc, LOWS, HIGHS) == []


def test_divergence_when_bottom_is_flat_then_first_bar_of_it_is_the_swing() -> None:
    lows = list(LOWS)
    lows[9] = 7  # bars 8 and 9 both at 7: bar 8 is the swing (bar 9 is not below bar 8)
    highs = [low + 1 for low in lows]
    got = divergence(OSC, lows, highs)
    assert kinds(got) == [(10, "bullish_divergence")]
    rule = MacdDivergenceRule(window=2, lookback=20)
    signals = []
    for i in range(len(lows)):
        ctx = RuleInput(
            symbol="T", interval="1d", ts=1000 + i, open=lows[i], high=highs[i], low=lows[i],
            close=lows[i], volume=0.0, current={"osc": OSC[i]},
        )  # fmt: skip
        signals += rule.on_bar(ctx)
    assert signals[0].details["swing_ts"] == 1008
    assert signals[0].details["prev_swing_ts"] == 1002


def test_divergence_when_oscillator_hist_then_requires_macdhist() -> None:
    assert MacdDivergenceRule(oscillator="hist").required["osc"].output == "macdhist"
    assert MacdDivergenceRule().required["osc"].output == "macd"

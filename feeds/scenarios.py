"""Market regimes of the synthetic market: one parameter table and the timeline of switches.

Units are per *day* of a 24 h market (the synthetic market never closes), so a scenario
shows within minutes on a 1-minute chart whatever the bar length:

=============  =====  =====  ======  ======  =====  =====  ===================================
scenario       drift  vol    spread  trades  size   size   jump process
               /day   /day   bps     /min    med.   sigma
=============  =====  =====  ======  ======  =====  =====  ===================================
calm           0      1.0 %  2       12      200    0.8    none
volatile       0      4.0 %  8       30      300    1.0    none
trending_up    +5 %   1.2 %  3       15      250    0.8    none
trending_down  -5 %   1.2 %  3       15      250    0.8    none
flash_crash    0      1.2 %  3       15      200    0.9    -12 % over 5 bars (vol, spread x4),
                                                           back up over the next 30 bars
illiquid       0      1.5 %  60      1.5     20     0.6    none
gap_open       0      1.2 %  3       12      200    0.8    ±5 % jump at the regime's first bar
                                                           (the session re-opens)
=============  =====  =====  ======  ======  =====  =====  ===================================

Drift and vol are of the log price; trade sizes are lognormal (median, sigma) in shares;
the number of trades in a bar is ``1 + Poisson(rate·minutes - 1)`` (at least one).
A :class:`Regime` starts at a bar; its jump (crash, gap) happens at its ``event_bar``:
the bar a switch takes effect, or the market's anchor for the initial scenario.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, get_args

import numpy as np

from feeds.schema import NS

ScenarioName = Literal[
    "calm", "volatile", "trending_up", "trending_down", "flash_crash", "illiquid", "gap_open"
]
SCENARIO_NAMES: Final[tuple[str, ...]] = get_args(ScenarioName)
DAY_NS: Final = 86_400 * NS
MINUTE_NS: Final = 60 * NS
BEFORE_TIME: Final = -(2**62)
"""Start bar of the initial regime: it holds for all history."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """One market regime (see the table in the module docstring)."""

    name: str
    drift: float
    """Log drift per day."""
    vol: float
    """Log volatility per square-root day."""
    spread_bps: float
    trades_per_min: float
    size_median: float
    size_sigma: float
    crash_depth: float = 0.0
    """Fraction lost in the crash (0: no crash)."""
    crash_bars: int = 0
    recover_bars: int = 0
    stress: float = 1.0
    """Vol and spread multiplier during the crash bars."""
    gap: float = 0.0
    """Size of the jump at the regime's first bar, as a fraction (sign drawn per symbol)."""


SCENARIOS: Final[dict[str, Scenario]] = {
    s.name: s
    for s in (
        Scenario("calm", 0.0, 0.010, 2, 12, 200, 0.8),
        Scenario("volatile", 0.0, 0.040, 8, 30, 300, 1.0),
        Scenario("trending_up", 0.05, 0.012, 3, 15, 250, 0.8),
        Scenario("trending_down", -0.05, 0.012, 3, 15, 250, 0.8),
        Scenario(
            "flash_crash",
            0.0,
            0.012,
            3,
            15,
            200,
            0.9,
            0.12,
            crash_bars=5,
            recover_bars=30,
            stress=4,
        ),
        Scenario("illiquid", 0.0, 0.015, 60, 1.5, 20, 0.6),
        Scenario("gap_open", 0.0, 0.012, 3, 12, 200, 0.8, gap=0.05),
    )
}


def scenario(name: str) -> Scenario:
    """The scenario called ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(
            f"unknown scenario {name!r}; use one of {', '.join(SCENARIO_NAMES)}"
        ) from None


@dataclass(frozen=True, slots=True)
class Regime:
    """A scenario in force from ``start_bar`` (bar index: ts // bar length) on."""

    start_bar: int
    scenario: Scenario
    event_bar: int
    jump_sign: float = 1.0


@dataclass(frozen=True, slots=True)
class BarParams:
    """Per-bar model parameters of a run of bars, already scaled to the bar length."""

    drift: np.ndarray
    """Log drift per bar, including the crash/recovery shift."""
    vol: np.ndarray
    """Log volatility per bar (stress applied)."""
    jump: np.ndarray
    """Log jump at the bar's open (gap_open)."""
    spread: np.ndarray
    """Quoted spread as a fraction of price (stress applied)."""
    rate: np.ndarray
    """Mean trades per bar."""
    size_median: np.ndarray
    size_sigma: np.ndarray


def bar_params(regimes: Sequence[Regime], first_bar: int, count: int, step_ns: int) -> BarParams:
    """Parameters of bars ``first_bar … first_bar + count - 1`` under ``regimes``
    (sorted by ``start_bar``, the first one starting at :data:`BEFORE_TIME`)."""
    bars = np.arange(first_bar, first_bar + count, dtype=np.int64)
    starts = np.array([r.start_bar for r in regimes], dtype=np.int64)
    which = np.searchsorted(starts, bars, side="right") - 1
    days = step_ns / DAY_NS

    def column(attribute: str) -> np.ndarray:
        values = np.array([getattr(r.scenario, attribute) for r in regimes], dtype=np.float64)
        return values[which]

    vol, drift = column("vol"), column("drift")
    shift, jump, stress = np.zeros(count), np.zeros(count), np.ones(count)
    for index in np.unique(which):
        regime = regimes[index]
        s = regime.scenario
        into = bars - regime.event_bar
        mine = which == index
        if s.crash_depth:
            fall = math.log(1 - s.crash_depth)
            crashing = mine & (into >= 0) & (into < s.crash_bars)
            recovering = mine & (into >= s.crash_bars) & (into < s.crash_bars + s.recover_bars)
            shift[crashing] = fall / s.crash_bars
            shift[recovering] = -fall / s.recover_bars
            stress[crashing] = s.stress
        if s.gap:
            jump[mine & (into == 0)] = math.log(1 + regime.jump_sign * s.gap)
    return BarParams(
        drift=(drift - vol**2 / 2) * days + shift,
        vol=vol * stress * math.sqrt(days),
        jump=jump,
        spread=column("spread_bps") * 1e-4 * stress,
        rate=column("trades_per_min") * step_ns / MINUTE_NS,
        size_median=column("size_median"),
        size_sigma=column("size_sigma"),
    )

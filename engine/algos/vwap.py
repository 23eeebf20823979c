"""VWAP: trade the parent in step with the symbol's usual intraday volume.

The run ``[start, end)`` is cut into slices of ``interval_s``; slice ``k`` is due at
``start + k * interval`` and brings the expected fill to ``qty * profile[k]``, where
``profile`` is the cumulative share of the window's historical volume traded by the end
of slice ``k`` (the last entry is 1.0). :meth:`VwapAlgorithm.prepare` computes it once at
the start from the stored intraday bars (:func:`engine.algos.profile.volume_profile`:
bucketed by UTC time of day, averaged over ``history_days`` days) and the engine persists
it with the parameters. With less than three days of history in the window, or no volume
in it, the profile is flat — TWAP-like; there is deliberately no U-shaped default.

Children go out like TWAP's with catch-up (:func:`engine.algos.twap.slice_decision`),
but never beyond ``max_participation`` of the market volume traded since the start.
"""

from __future__ import annotations

import math
from decimal import Decimal
from itertools import pairwise

import msgspec

from engine.algos.base import (
    NS,
    AlgoParams,
    AlgoParamsError,
    Algorithm,
    Decision,
    History,
    Market,
    ParentSpec,
    Progress,
    Why,
)
from engine.algos.pricing import AGGRESSIVENESS, Aggressiveness
from engine.algos.profile import (
    MAX_SLICES,
    Schedule,
    flat_profile,
    slice_count,
    volume_profile,
    window_end_ns,
)
from engine.algos.registry import register
from engine.algos.twap import slice_decision

MAX_HISTORY_DAYS = 366
_SHARE_TOLERANCE = 1e-9


class VwapParams(AlgoParams, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Parameters of :class:`VwapAlgorithm`."""

    duration_s: float | None = None
    """Length of the run in seconds from the parent's start (or give ``end_at_ns``)."""
    end_at_ns: int | None = None
    """End of the run (UTC ns, after the parent's start; or give ``duration_s``)."""
    interval_s: float = 60.0
    """Seconds between slices; a run shorter than one interval is a single slice."""
    max_participation: float | None = None
    """At most this share (0 < p <= 1) of the market volume traded since the start:
    filled + working + a new child <= p * volume (no volume yet: wait). None: no cap."""
    aggressiveness: Aggressiveness = "touch"
    """How children are priced (:data:`engine.algos.pricing.Aggressiveness`)."""
    history_days: int = 20
    """Days of stored intraday bars the profile is computed from (1 to 366)."""
    profile: tuple[float, ...] = ()
    """Cumulative expected share of the parent at the end of each slice (one entry per
    slice, non-decreasing, the last 1.0). Empty: computed by ``prepare`` from history
    (and flat if never prepared)."""

    def check(self, parent: ParentSpec) -> None:
        super().check(parent)
        end = window_end_ns(parent, self.duration_s, self.end_at_ns)
        if not (math.isfinite(self.interval_s) and self.interval_s > 0):
            raise AlgoParamsError(
                "interval_s", f"must be a positive duration, not {self.interval_s}"
            )
        n = slice_count(end - parent.start_ns, self.interval_s * NS)
        if n > MAX_SLICES:
            raise AlgoParamsError("interval_s", f"gives {n} slices, more than {MAX_SLICES}")
        cap = self.max_participation
        if cap is not None and not (math.isfinite(cap) and 0 < cap <= 1):
            raise AlgoParamsError("max_participation", f"must be above 0 and at most 1, not {cap}")
        if not 1 <= self.history_days <= MAX_HISTORY_DAYS:
            raise AlgoParamsError(
                "history_days", f"must be 1 to {MAX_HISTORY_DAYS}, not {self.history_days}"
            )
        if self.aggressiveness not in AGGRESSIVENESS:
            raise AlgoParamsError(
                "aggressiveness", f"must be one of {AGGRESSIVENESS}, not {self.aggressiveness!r}"
            )
        if self.profile:
            _check_profile(self.profile, n)


def _check_profile(profile: tuple[float, ...], n: int) -> None:
    if len(profile) != n:
        raise AlgoParamsError("profile", f"has {len(profile)} entries for {n} slices")
    if not all(math.isfinite(s) and 0 <= s <= 1 for s in profile):
        raise AlgoParamsError("profile", "shares must be finite, 0 to 1")
    if any(b < a for a, b in pairwise(profile)):
        raise AlgoParamsError("profile", "shares must not decrease")
    if abs(profile[-1] - 1.0) > _SHARE_TOLERANCE:
        raise AlgoParamsError("profile", f"must end at 1.0, not {profile[-1]}")


@register
class VwapAlgorithm(Algorithm[VwapParams]):
    """Volume-weighted average price: slices sized by the historical intraday volume
    profile, under an optional participation cap (see the module)."""

    kind = "vwap"
    params_type = VwapParams
    prepared = ("profile",)
    description = (
        "Slices sized by the symbol's historical intraday volume; optional participation cap."
    )

    def __init__(self, parent: ParentSpec, params: VwapParams) -> None:
        super().__init__(parent, params)
        self.schedule = self._schedule()

    @classmethod
    def prepare(cls, parent: ParentSpec, params: VwapParams, history: History) -> VwapParams:
        """Fill ``profile`` from ``history`` unless it was given."""
        if params.profile:
            return params
        end = window_end_ns(parent, params.duration_s, params.end_at_ns)
        bars = history.intraday_volumes(
            parent.symbol, days=params.history_days, now_ns=parent.start_ns
        )
        profile = volume_profile(
            bars, start_ns=parent.start_ns, end_ns=end, interval_ns=round(params.interval_s * NS)
        )
        return msgspec.structs.replace(params, profile=profile)

    def decide(self, market: Market, progress: Progress, why: Why) -> Decision:
        p = self.params
        cap = None
        if p.max_participation is not None:
            allowed = Decimal(str(p.max_participation)) * market.volume
            cap = allowed - progress.filled - progress.working_qty
        return slice_decision(
            self.parent,
            self.schedule,
            market,
            progress,
            aggressiveness=p.aggressiveness,
            limit=p.limit_price,
            cap=cap,
        )

    def expected(self, now_ns: int) -> Decimal | None:
        return self.schedule.target(self.parent.qty, now_ns)

    def end_ns(self) -> int | None:
        return self.schedule.end_ns

    def _schedule(self) -> Schedule:
        p, start = self.params, self.parent.start_ns
        end = window_end_ns(self.parent, p.duration_s, p.end_at_ns)
        interval = round(p.interval_s * NS)
        n = slice_count(end - start, interval)
        profile = p.profile if len(p.profile) == n else flat_profile(n)
        times = [start + k * interval for k in range(n)]
        return Schedule.build(start, end, times, [Decimal(repr(s)) for s in profile])

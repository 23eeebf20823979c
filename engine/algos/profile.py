"""Schedules and volume profiles for the scheduled algorithms (TWAP, VWAP).

A :class:`Schedule` says which share of the parent is due at each moment: slice ``k``
becomes due at ``times[k]`` and from then on ``shares[k]`` of the quantity is expected
filled (cumulative, the last share is exactly 1). TWAP's shares are even (or jittered),
VWAP's follow the historical intraday volume of the symbol (:func:`volume_profile`).

Everything here is a pure function of its arguments: the algorithms rebuild their
schedule from the parent and its parameters after a restart.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from decimal import Decimal
from itertools import pairwise

import msgspec

from engine.algos.base import NS, ZERO, AlgoParamsError, ParentSpec

DAY_NS = 86_400 * NS
MAX_SLICES = 10_000
"""More slices than this is refused (the schedule is kept in memory and searched)."""
FINISH_SHARE = 0.1
"""The last tenth of the run is the finishing phase (children cross to finish)."""
MIN_PROFILE_DAYS = 3
"""Fewer days of history than this give the flat profile."""
_TARGET_QUANTUM = Decimal("1e-9")


class Schedule(msgspec.Struct, frozen=True, kw_only=True):
    """Slice times with the cumulative share of the parent due once each is due."""

    times: tuple[int, ...]
    """When slice ``k`` is due (UTC ns, non-decreasing, before ``end_ns``)."""
    shares: tuple[Decimal, ...]
    """Cumulative share of the quantity due from ``times[k]`` on; the last is 1."""
    end_ns: int
    """When the run ends."""
    finish_ns: int
    """Start of the finishing phase: the last slice (when there are several) or the last
    :data:`FINISH_SHARE` of the run, whichever comes first."""

    def due(self, now_ns: int) -> int:
        """How many slices are due at ``now_ns``."""
        return bisect_right(self.times, now_ns)

    def target(self, qty: Decimal, now_ns: int) -> Decimal:
        """The quantity expected filled at ``now_ns`` (``qty`` from the end on)."""
        if now_ns >= self.end_ns:
            return qty
        due = self.due(now_ns)
        return self._share_of(qty, due - 1) if due else ZERO

    def slice_qty(self, qty: Decimal, k: int, lot: Decimal) -> Decimal:
        """Slice ``k``'s own quantity in whole lots (the slices' lots add up to ``qty``
        rounded down to the lot)."""
        before = floor_lot(self._share_of(qty, k - 1), lot) if k else ZERO
        return floor_lot(self._share_of(qty, k), lot) - before

    def _share_of(self, qty: Decimal, k: int) -> Decimal:
        # shares like 1/3 or a float's 0.4951923076923077 leave noise in the last digits
        # (3 * 0.333… = 0.999…) that would cost a whole lot when rounded down to it
        share = (qty * self.shares[k]).quantize(_TARGET_QUANTUM)
        whole = share.to_integral_value()
        return whole if share == whole else share.normalize()

    def wake_in_s(self, now_ns: int) -> float:
        """Seconds to the next moment the schedule changes (a slice, the finishing phase
        or the end)."""
        due = self.due(now_ns)
        nxt = self.times[due] if due < len(self.times) else self.end_ns
        if now_ns < self.finish_ns:
            nxt = min(nxt, self.finish_ns)
        return max(nxt - now_ns, 1) / NS

    @classmethod
    def build(
        cls, start_ns: int, end_ns: int, times: Sequence[int], shares: Sequence[Decimal]
    ) -> Schedule:
        """A schedule over ``[start_ns, end_ns)``; the last share is forced to exactly 1."""
        if not times or len(times) != len(shares):
            raise ValueError("a schedule needs one share per slice time")
        finish = end_ns - math.floor((end_ns - start_ns) * FINISH_SHARE)
        if len(times) > 1:
            finish = min(finish, times[-1])
        return cls(
            times=tuple(times),
            shares=(*shares[:-1], Decimal(1)),
            end_ns=end_ns,
            finish_ns=finish,
        )


def floor_lot(qty: Decimal, lot: Decimal) -> Decimal:
    """``qty`` rounded down to whole lots (0 for a negative quantity)."""
    if qty <= 0:
        return ZERO
    if lot <= 0:
        return qty
    return int(qty // lot) * lot


def window_end_ns(parent: ParentSpec, duration_s: float | None, end_at_ns: int | None) -> int:
    """The end of the run from exactly one of ``duration_s`` (after the parent's start)
    and ``end_at_ns``; raises :class:`AlgoParamsError` naming the field otherwise."""
    if (duration_s is None) == (end_at_ns is None):
        raise AlgoParamsError("duration_s", "give exactly one of duration_s and end_at_ns")
    if duration_s is not None:
        if not (math.isfinite(duration_s) and duration_s > 0):
            raise AlgoParamsError("duration_s", f"must be a positive duration, not {duration_s}")
        return parent.start_ns + max(1, round(duration_s * NS))
    assert end_at_ns is not None
    if end_at_ns <= parent.start_ns:
        raise AlgoParamsError(
            "end_at_ns", f"{end_at_ns} is not after the parent's start {parent.start_ns}"
        )
    return end_at_ns


def slice_count(total_ns: int, interval_ns: float) -> int:
    """Slices ``interval_ns`` apart that start inside a run of ``total_ns`` (at least 1)."""
    return max(1, math.ceil(total_ns / interval_ns - 1e-9))


def flat_profile(n: int) -> tuple[float, ...]:
    """Even cumulative shares over ``n`` slices: ``1/n, 2/n, …, 1``."""
    return (*((k + 1) / n for k in range(n - 1)), 1.0)


def cumulative_shares(volumes: Iterable[float]) -> tuple[float, ...] | None:
    """Running totals of ``volumes`` as shares of their sum, the last exactly 1.0; None
    when there is no volume at all."""
    running, total = [], 0.0
    for v in volumes:
        total += max(v, 0.0)
        running.append(total)
    if not running or total <= 0:
        return None
    return (*(min(r / total, 1.0) for r in running[:-1]), 1.0)


class Buckets(msgspec.Struct, frozen=True, kw_only=True):
    volumes: tuple[float, ...]
    """Mean volume per slice of the window, over the days seen."""
    days: int
    """Distinct days with volume in the window."""


def bucket_volumes(
    bars: Sequence[tuple[int, Decimal]], *, start_ns: int, end_ns: int, interval_ns: int
) -> Buckets:
    """Historical volume by time of day (UTC) over the window ``[start_ns, end_ns)`` cut in
    slices of ``interval_ns``, averaged over the days that traded in it.

    ``bars`` are ``(bar start UTC ns, volume)``, oldest first; a bar's volume is spread
    evenly over its length (the smallest gap between bar starts, at most an hour) so
    hourly bars still shape minute slices. Windows of a day or longer are not bucketed
    (no days).
    """
    total = end_ns - start_ns
    n = slice_count(total, interval_ns)
    sums = [0.0] * n
    if total >= DAY_NS or not bars:
        return Buckets(volumes=tuple(sums), days=0)
    bar_ns = _bar_length(bars)
    tod_start = start_ns % DAY_NS
    days: set[int] = set()
    for ts, volume in bars:
        v = float(volume)
        if not (math.isfinite(v) and v > 0):
            continue
        offset = (ts % DAY_NS - tod_start) % DAY_NS
        if offset > DAY_NS - bar_ns:  # starts before the window opens, ends inside it
            offset -= DAY_NS
        lo, hi = max(offset, 0), min(offset + bar_ns, total)
        if lo >= hi:
            continue
        days.add((ts - offset) // DAY_NS)
        for k in range(lo // interval_ns, min(n - 1, (hi - 1) // interval_ns) + 1):
            a, b = max(lo, k * interval_ns), min(hi, (k + 1) * interval_ns)
            if b > a:
                sums[k] += v * (b - a) / bar_ns
    count = len(days)
    return Buckets(volumes=tuple(s / count if count else 0.0 for s in sums), days=count)


def volume_profile(
    bars: Sequence[tuple[int, Decimal]],
    *,
    start_ns: int,
    end_ns: int,
    interval_ns: int,
    min_days: int = MIN_PROFILE_DAYS,
) -> tuple[float, ...]:
    """Cumulative expected share of the window's volume at the end of each slice, from
    ``bars`` (see :func:`bucket_volumes`). Falls back to :func:`flat_profile` — TWAP-like,
    deliberately not a U-shaped guess — when fewer than ``min_days`` distinct days traded
    in the window or it saw no volume."""
    n = slice_count(end_ns - start_ns, interval_ns)
    buckets = bucket_volumes(bars, start_ns=start_ns, end_ns=end_ns, interval_ns=interval_ns)
    shares = cumulative_shares(buckets.volumes) if buckets.days >= min_days else None
    return shares if shares is not None else flat_profile(n)


def _bar_length(bars: Sequence[tuple[int, Decimal]]) -> int:
    gaps = [b[0] - a[0] for a, b in pairwise(bars) if b[0] > a[0]]
    return min([*gaps, 3_600 * NS]) if gaps else 60 * NS

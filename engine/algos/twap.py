"""TWAP: trade the parent evenly over time, one child per slice.

The run ``[start, end)`` is cut into ``n`` slices; slice ``k`` is due at
``start + k * interval`` and brings the expected fill (:meth:`TwapAlgorithm.expected`) to
``qty * (k + 1) / n`` — a step function that reaches ``qty`` at the last slice. With
``randomize`` the slice times and sizes are jittered (deterministically, from
:meth:`~engine.algos.base.Algorithm.rng` of the slice number) so the pattern is harder to
spot; the sizes still add up to ``qty``.

:func:`slice_decision` is the decision both TWAP and VWAP make against their schedule:

- done when filled (``filled``) or at the end (``end_time``);
- at a new slice (no child sent since it became due) and in the finishing phase, working
  children priced less eagerly than the aggressiveness asks for now are cancelled (the
  replacement goes out once the cancels are through, so the parent never has more than
  its quantity working);
- then one child for the shortfall ``target - filled - working`` (with catch-up), or for
  the slice's own quantity once per slice (without), when that is at least one lot;
- in the finishing phase (with catch-up) children cross the spread to finish;
- wake at the next slice, the finishing phase or the end.
"""

from __future__ import annotations

import math
from decimal import Decimal

from engine.algos.base import (
    NS,
    AlgoParams,
    AlgoParamsError,
    Algorithm,
    Cancel,
    Decision,
    Market,
    ParentSpec,
    Place,
    Progress,
    Why,
)
from engine.algos.pricing import AGGRESSIVENESS, Aggressiveness, child_price
from engine.algos.profile import MAX_SLICES, Schedule, floor_lot, slice_count, window_end_ns
from engine.algos.registry import register
from engine.bus.events import Side

DEFAULT_INTERVAL_S = 60.0
MAX_RANDOMIZE = 0.5
_WEIGHT_SCALE = 1_000_000  # jittered weights as integers: exact Decimal shares


class TwapParams(AlgoParams, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Parameters of :class:`TwapAlgorithm`."""

    duration_s: float | None = None
    """Length of the run in seconds from the parent's start (or give ``end_at_ns``)."""
    end_at_ns: int | None = None
    """End of the run (UTC ns, after the parent's start; or give ``duration_s``)."""
    slices: int | None = None
    """Number of slices (at least 1), evenly spread over the run (or give ``interval_s``)."""
    interval_s: float | None = None
    """Seconds between slices (at most the run's length). Neither ``slices`` nor
    ``interval_s``: one slice per 60 s, at least one."""
    randomize: float = 0.0
    """0 to 0.5: each slice's time and size move by up to this share of the interval and
    of the even size (sizes are renormalized to add up to the quantity); the same after a
    restart."""
    aggressiveness: Aggressiveness = "touch"
    """How children are priced (:data:`engine.algos.pricing.Aggressiveness`)."""
    catch_up: bool = True
    """Behind schedule, the next child takes the shortfall too, and from the last slice (or
    the last tenth of the run) children cross the spread to finish. Off: each slice sends
    only its own quantity, at the chosen aggressiveness."""

    def check(self, parent: ParentSpec) -> None:
        super().check(parent)
        end = window_end_ns(parent, self.duration_s, self.end_at_ns)
        total_s = (end - parent.start_ns) / NS
        if self.slices is not None and self.interval_s is not None:
            raise AlgoParamsError("interval_s", "give slices or interval_s, not both")
        if self.slices is not None and not 1 <= self.slices <= MAX_SLICES:
            raise AlgoParamsError("slices", f"must be 1 to {MAX_SLICES}, not {self.slices}")
        if self.interval_s is not None:
            if not (math.isfinite(self.interval_s) and self.interval_s > 0):
                raise AlgoParamsError(
                    "interval_s", f"must be a positive duration, not {self.interval_s}"
                )
            if self.interval_s > total_s:
                raise AlgoParamsError(
                    "interval_s", f"{self.interval_s} s is longer than the run ({total_s} s)"
                )
        if self.slices is None and slice_count(end - parent.start_ns, _interval_ns(self)) > (
            MAX_SLICES
        ):
            field = "interval_s" if self.interval_s is not None else "duration_s"
            raise AlgoParamsError(field, f"gives more than {MAX_SLICES} slices")
        if not (math.isfinite(self.randomize) and 0 <= self.randomize <= MAX_RANDOMIZE):
            raise AlgoParamsError(
                "randomize", f"must be 0 to {MAX_RANDOMIZE}, not {self.randomize}"
            )
        if self.aggressiveness not in AGGRESSIVENESS:
            raise AlgoParamsError(
                "aggressiveness", f"must be one of {AGGRESSIVENESS}, not {self.aggressiveness!r}"
            )


@register
class TwapAlgorithm(Algorithm[TwapParams]):
    """Time-weighted average price: even slices over a fixed window (see the module)."""

    kind = "twap"
    params_type = TwapParams
    description = "Even slices over a time window, optionally jittered; catches up when behind."

    def __init__(self, parent: ParentSpec, params: TwapParams) -> None:
        super().__init__(parent, params)
        self.schedule = self._schedule()

    def decide(self, market: Market, progress: Progress, why: Why) -> Decision:
        p = self.params
        return slice_decision(
            self.parent,
            self.schedule,
            market,
            progress,
            aggressiveness=p.aggressiveness,
            limit=p.limit_price,
            catch_up=p.catch_up,
        )

    def expected(self, now_ns: int) -> Decimal | None:
        return self.schedule.target(self.parent.qty, now_ns)

    def end_ns(self) -> int | None:
        return self.schedule.end_ns

    def _schedule(self) -> Schedule:
        p, start = self.params, self.parent.start_ns
        end = window_end_ns(self.parent, p.duration_s, p.end_at_ns)
        total = end - start
        if p.slices is not None:
            n, interval = p.slices, total / p.slices
        else:
            interval = _interval_ns(p)
            n = slice_count(total, interval)
        times, weights = [], []
        for k in range(n):
            time_jitter = size_jitter = 0.0
            if p.randomize > 0:
                rng = self.rng(k)
                time_jitter = rng.uniform(-p.randomize, p.randomize) if k else 0.0
                size_jitter = rng.uniform(-p.randomize, p.randomize)
            times.append(min(start + round((k + time_jitter) * interval), end - 1))
            weights.append(round((1 + size_jitter) * _WEIGHT_SCALE))
        running, total_weight, shares = 0, sum(weights), []
        for w in weights:
            running += w
            shares.append(Decimal(running) / Decimal(total_weight))
        return Schedule.build(start, end, times, shares)


def slice_decision(
    parent: ParentSpec,
    schedule: Schedule,
    market: Market,
    progress: Progress,
    *,
    aggressiveness: Aggressiveness,
    limit: Decimal | None,
    catch_up: bool = True,
    cap: Decimal | None = None,
) -> Decision:
    """What a scheduled algorithm does now (see the module docstring). ``cap``: the most
    the new child may have (e.g. left under a participation limit); None: no cap."""
    qty, filled, now = parent.qty, progress.filled, market.now_ns
    if filled >= qty:
        return Decision(done="filled")
    if now >= schedule.end_ns:
        return Decision(done="end_time")
    wake = schedule.wake_in_s(now)
    due = schedule.due(now)
    if due == 0 or market.halted:
        return Decision(wake_in_s=wake)
    urgent = catch_up and now >= schedule.finish_ns
    price = child_price(parent.side, market, "cross" if urgent else aggressiveness, limit=limit)
    if price is None:
        return Decision(wake_in_s=wake)
    new_slice = progress.last_child_ns < schedule.times[due - 1]
    if catch_up and (new_slice or urgent):
        stale = tuple(
            Cancel(client_order_id=c.client_order_id)
            for c in progress.working
            if _less_eager(parent.side, c.price, price)
        )
        if stale:
            return Decision(actions=stale, wake_in_s=wake)
    working = progress.working_qty
    if catch_up:
        want = schedule.target(qty, now) - filled - working
    elif new_slice:
        want = schedule.slice_qty(qty, due - 1, market.lot)
    else:
        return Decision(wake_in_s=wake)
    want = min(want, qty - filled - working)
    if cap is not None:
        want = min(want, cap)
    child = floor_lot(want, market.lot)
    if child <= 0:
        return Decision(wake_in_s=wake)
    return Decision(actions=(Place(qty=child, price=price),), wake_in_s=wake)


def _interval_ns(params: TwapParams) -> float:
    return (params.interval_s if params.interval_s is not None else DEFAULT_INTERVAL_S) * NS


def _less_eager(side: Side, child: Decimal | None, wanted: Decimal) -> bool:
    if child is None:  # a market order is as eager as it gets
        return False
    return child < wanted if side == "buy" else child > wanted

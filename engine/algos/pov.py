"""Participation rate (POV): trade a fixed share of the market's volume.

The target is ``rate * market.volume`` (everything traded on the venue since the parent
started, its own fills included). Behind the band — filled plus working below
``target * (1 - tolerance)`` — a child for the shortfall goes out (between
``min_child_qty`` and ``max_child_qty``), priced by :func:`engine.algos.pricing.child_price`
with ``aggressiveness``. Ahead of it — filled above ``target * (1 + tolerance)`` — the
working children are cancelled until the market catches up. Within the band nothing
changes.

POV has no time schedule: :meth:`PovAlgorithm.expected` is None (the engine reports the
participation itself). It ends when filled, or ``end_time`` at ``end_at_ns`` /
``duration_s`` after the start when one is given.
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
from engine.algos.registry import register

MAX_RATE = 0.5


class PovParams(AlgoParams, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Participation-rate parameters."""

    rate: float
    """Target share of the market's volume, above 0 and at most 0.5."""
    tolerance: float = 0.2
    """Relative band around the target, at least 0 and below 1: behind ``target * (1 -
    tolerance)`` it places, ahead of ``target * (1 + tolerance)`` it cancels."""
    min_child_qty: Decimal | None = None
    """Smallest child (> 0): a shortfall below it is rounded up to it; None: no minimum."""
    max_child_qty: Decimal | None = None
    """Largest child (> 0, at least ``min_child_qty``); None: no maximum."""
    aggressiveness: Aggressiveness = "touch"
    """How children are priced (:data:`engine.algos.pricing.Aggressiveness`)."""
    check_interval_s: float = 1.0
    """Seconds between checks when no event comes (> 0)."""
    end_at_ns: int | None = None
    """When to stop (UTC ns, after the start); None: see ``duration_s``."""
    duration_s: float | None = None
    """Seconds after the start to stop (> 0); None with ``end_at_ns`` None: run until
    filled."""

    def check(self, parent: ParentSpec) -> None:
        super().check(parent)
        if not (math.isfinite(self.rate) and 0 < self.rate <= MAX_RATE):
            raise AlgoParamsError(
                "rate", f"must be above 0 and at most {MAX_RATE}, not {self.rate}"
            )
        if not (math.isfinite(self.tolerance) and 0 <= self.tolerance < 1):
            raise AlgoParamsError(
                "tolerance", f"must be at least 0 and below 1, not {self.tolerance}"
            )
        for name in ("min_child_qty", "max_child_qty"):
            value: Decimal | None = getattr(self, name)
            if value is not None and not (value.is_finite() and value > 0):
                raise AlgoParamsError(name, f"must be a positive quantity, not {value}")
        low, high = self.min_child_qty, self.max_child_qty
        if low is not None and high is not None and low > high:
            raise AlgoParamsError(
                "min_child_qty", f"must be at most max_child_qty {high}, not {low}"
            )
        if self.aggressiveness not in AGGRESSIVENESS:
            raise AlgoParamsError(
                "aggressiveness",
                f"must be one of {', '.join(AGGRESSIVENESS)}, not {self.aggressiveness!r}",
            )
        if not (math.isfinite(self.check_interval_s) and self.check_interval_s > 0):
            raise AlgoParamsError(
                "check_interval_s",
                f"must be a positive number of seconds, not {self.check_interval_s}",
            )
        if self.end_at_ns is not None and self.duration_s is not None:
            raise AlgoParamsError("duration_s", "give either end_at_ns or duration_s, not both")
        if self.end_at_ns is not None and self.end_at_ns <= parent.start_ns:
            raise AlgoParamsError(
                "end_at_ns", f"must be after the start {parent.start_ns}, not {self.end_at_ns}"
            )
        if self.duration_s is not None and not (
            math.isfinite(self.duration_s) and self.duration_s > 0
        ):
            raise AlgoParamsError(
                "duration_s", f"must be a positive number of seconds, not {self.duration_s}"
            )


@register
class PovAlgorithm(Algorithm[PovParams]):
    """Keeps filled quantity within ``tolerance`` of ``rate`` times the market volume (see
    the module docstring). Also, while behind the band on fills alone, it cancels working
    children older than ``check_interval_s`` whose price is no longer the one it would
    send now (the market left them), so the shortfall is re-placed at the current price.
    Waits while the market is halted."""

    kind = "pov"
    params_type = PovParams
    description = "Trades a fixed share (rate) of the market volume, within a tolerance band."

    def end_ns(self) -> int | None:
        p = self.params
        if p.end_at_ns is not None:
            return p.end_at_ns
        if p.duration_s is not None:
            return self.parent.start_ns + round(p.duration_s * NS)
        return None

    def target(self, market: Market) -> Decimal:
        """The quantity the rate asks for at this market volume (not capped by the
        parent's quantity)."""
        return Decimal(repr(self.params.rate)) * market.volume

    def decide(self, market: Market, progress: Progress, why: Why) -> Decision:
        p = self.params
        remaining = self.parent.qty - progress.filled
        if remaining <= 0:
            return Decision(done="filled")
        end = self.end_ns()
        if end is not None and market.now_ns >= end:
            return Decision(done="end_time")
        wake = p.check_interval_s
        if end is not None:
            wake = min(wake, (end - market.now_ns) / NS)
        if market.halted:
            return Decision(wake_in_s=wake)
        return Decision(actions=self._actions(market, progress, remaining), wake_in_s=wake)

    def _actions(
        self, market: Market, progress: Progress, remaining: Decimal
    ) -> tuple[Place | Cancel, ...]:
        p = self.params
        target = self.target(market)
        tolerance = Decimal(repr(p.tolerance))
        filled, working = progress.filled, progress.working_qty
        if filled > target * (1 + tolerance):
            return tuple(Cancel(client_order_id=c.client_order_id) for c in progress.working)
        behind = target * (1 - tolerance)
        price = child_price(self.parent.side, market, p.aggressiveness, limit=p.limit_price)
        if filled < behind and progress.working:
            stale = self._stale(progress, market.now_ns, price)
            if stale:
                return stale
        if filled + working >= behind or price is None:
            return ()
        qty = target - filled - working
        if p.min_child_qty is not None:
            qty = max(qty, p.min_child_qty)
        if p.max_child_qty is not None:
            qty = min(qty, p.max_child_qty)
        unplaced = remaining - working
        qty = min(qty, unplaced)
        if qty <= 0:
            return ()
        if p.min_child_qty is not None and qty < p.min_child_qty and qty < remaining:
            # a tail below the minimum waits for the working children: once they are done
            # it is the whole remaining quantity and goes out as the last child
            return ()
        return (Place(qty=qty, price=price),)

    def _stale(self, progress: Progress, now_ns: int, price: Decimal | None) -> tuple[Cancel, ...]:
        settle_ns = round(self.params.check_interval_s * NS)
        return tuple(
            Cancel(client_order_id=c.client_order_id)
            for c in progress.working
            if price is not None and c.price != price and now_ns - c.sent_ns >= settle_ns
        )

"""Sniper: stay hidden until the limit price is on offer, then take it at once.

Nothing rests on the book. When the opposite side's best reaches the limit (buy: ask at
or below it, sell: bid at or above it) the sniper sends one immediate-or-cancel child at
the limit price for what that best level shows (at most ``max_qty`` and the parent's
remaining); whatever does not trade is cancelled by the venue, and the sniper waits for
the level to come back. With ``expire_after_s`` the parent ends ``expired`` that long after
it started.
"""

from __future__ import annotations

import math
from decimal import Decimal

from engine.algos.base import (
    NS,
    AlgoParams,
    AlgoParamsError,
    Algorithm,
    Decision,
    Market,
    ParentSpec,
    Place,
    Progress,
    Why,
)
from engine.algos.registry import register


class SniperParams(AlgoParams, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Sniper parameters; ``limit_price`` is required (the price it waits for)."""

    max_qty: Decimal | None = None
    """Most one shot may take (> 0); None: all that remains."""
    expire_after_s: float | None = None
    """Seconds after the parent's start at which it ends ``expired`` (> 0); None: never."""

    def check(self, parent: ParentSpec) -> None:
        super().check(parent)
        if self.limit_price is None:
            raise AlgoParamsError("limit_price", "is required for a sniper")
        if self.max_qty is not None and not (self.max_qty.is_finite() and self.max_qty > 0):
            raise AlgoParamsError("max_qty", f"must be a positive quantity, not {self.max_qty}")
        if self.expire_after_s is not None and not (
            math.isfinite(self.expire_after_s) and self.expire_after_s > 0
        ):
            raise AlgoParamsError(
                "expire_after_s", f"must be a positive number of seconds, not {self.expire_after_s}"
            )


@register
class SniperAlgorithm(Algorithm[SniperParams]):
    """IOC children at the limit price whenever the opposite best reaches it; hidden
    otherwise. Waits while an IOC is in flight and while the market is halted; a best
    level without a size (0) is not taken."""

    kind = "sniper"
    params_type = SniperParams
    description = "Hidden until the limit price is on offer, then takes it with IOC orders."

    def end_ns(self) -> int | None:
        after = self.params.expire_after_s
        return None if after is None else self.parent.start_ns + round(after * NS)

    def decide(self, market: Market, progress: Progress, why: Why) -> Decision:
        remaining = self.parent.qty - progress.filled
        if remaining <= 0:
            return Decision(done="filled")
        end = self.end_ns()
        if end is not None and market.now_ns >= end:
            return Decision(done="expired")
        wake = None if end is None else (end - market.now_ns) / NS
        if progress.working or market.halted:
            return Decision(wake_in_s=wake)
        available = self.available(market)
        if available <= 0:
            return Decision(wake_in_s=wake)
        qty = min(remaining, available)
        if self.params.max_qty is not None:
            qty = min(qty, self.params.max_qty)
        place = Place(qty=qty, price=self.limit, tif="ioc")
        return Decision(actions=(place,), wake_in_s=wake)

    @property
    def limit(self) -> Decimal:
        """The limit price (a sniper's parameters without one fail the parent)."""
        if self.params.limit_price is None:
            raise AlgoParamsError("limit_price", "is required for a sniper")
        return self.params.limit_price

    def available(self, market: Market) -> Decimal:
        """The size of the opposite best when its price is within the limit, else 0."""
        limit = self.limit
        if self.parent.side == "buy":
            if market.ask is not None and market.ask <= limit:
                return market.ask_size
        elif market.bid is not None and market.bid >= limit:
            return market.bid_size
        return Decimal(0)

"""Iceberg: work the parent as one small visible child at the limit price at a time.

Only ``display_qty`` (a little less with ``variance``) shows on the book; when that child
is filled or leaves the book the next one goes out, until the parent is filled. With
``variance`` each refresh shows ``display_qty * (1 - u * variance)`` for a ``u`` in [0, 1)
drawn from :meth:`~engine.algos.base.Algorithm.rng` of the slice number — never more than
``display_qty``, and the same sizes after a restart.
"""

from __future__ import annotations

import math
from decimal import ROUND_FLOOR, Decimal

from engine.algos.base import (
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

MAX_VARIANCE = 0.5


class IcebergParams(AlgoParams, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Iceberg parameters; ``limit_price`` is required (every child rests at it)."""

    display_qty: Decimal
    """Most a child shows (> 0 and at most the parent's quantity)."""
    variance: float = 0.0
    """0 to 0.5: each child shows ``display_qty * (1 - u * variance)``, u uniform in [0, 1)
    (0: always ``display_qty``)."""

    def check(self, parent: ParentSpec) -> None:
        super().check(parent)
        if self.limit_price is None:
            raise AlgoParamsError("limit_price", "is required for an iceberg")
        if not (self.display_qty.is_finite() and self.display_qty > 0):
            raise AlgoParamsError(
                "display_qty", f"must be a positive quantity, not {self.display_qty}"
            )
        if self.display_qty > parent.qty:
            raise AlgoParamsError(
                "display_qty",
                f"must be at most the parent quantity {parent.qty}, not {self.display_qty}",
            )
        if not (math.isfinite(self.variance) and 0 <= self.variance <= MAX_VARIANCE):
            raise AlgoParamsError(
                "variance", f"must be between 0 and {MAX_VARIANCE}, not {self.variance}"
            )


@register
class IcebergAlgorithm(Algorithm[IcebergParams]):
    """One working child of at most ``display_qty`` at the limit price; the next one when
    it is gone. Waits (places nothing) while the market is halted."""

    kind = "iceberg"
    params_type = IcebergParams
    description = "Shows at most display_qty at the limit price; refreshes when filled."

    def decide(self, market: Market, progress: Progress, why: Why) -> Decision:
        remaining = self.parent.qty - progress.filled
        if remaining <= 0:
            return Decision(done="filled")
        if progress.working or market.halted:
            return Decision()
        qty = min(self.shown_qty(progress.slices, market.lot), remaining)
        return Decision(actions=(Place(qty=qty, price=self.limit),))

    @property
    def limit(self) -> Decimal:
        """The limit price (an iceberg's parameters without one fail the parent rather
        than send market orders)."""
        if self.params.limit_price is None:
            raise AlgoParamsError("limit_price", "is required for an iceberg")
        return self.params.limit_price

    def shown_qty(self, slice_index: int, lot: Decimal) -> Decimal:
        """What child ``slice_index`` shows (before the cut to the parent's remaining):
        ``display_qty`` less the slice's variance, rounded down to ``lot`` but at least one
        lot (unless ``display_qty`` itself is below a lot)."""
        display, variance = self.params.display_qty, self.params.variance
        shown = display
        if variance > 0:
            u = self.rng(slice_index).random()
            shown = display * (1 - Decimal(repr(u * variance)))
        if lot <= 0 or display < lot:
            return shown
        lots = (shown / lot).to_integral_value(rounding=ROUND_FLOOR)
        return max(lots, Decimal(1)) * lot

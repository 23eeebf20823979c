"""Net positions per (account, symbol) with exact ``Decimal`` arithmetic.

Average-cost accounting. A position keeps its signed quantity (negative when short),
its signed **cost basis** (what the open quantity cost: Σ side * qty * price of the open
part, so negative when short) and its realized P&L:

- a fill that opens or adds moves the cost by ``side * qty * price``; the average price
  is ``cost / qty``, the volume-weighted average of the open part;
- a fill that reduces realizes ``(price - avg) * closed * sign(position)`` and removes
  the closed part's share of the cost;
- a fill that crosses through zero closes the whole position (realizing on it) and opens
  the rest at the fill price; a flat position has cost 0 and average 0;
- a fill's fee is subtracted from realized P&L;
- ``unrealized(mark) = (mark - avg) * qty``, computed as ``mark * qty - cost``.

Why a cost basis rather than a stored average: an average price (100 at 1, 100.01 at 2)
is often a non-terminating decimal. Sums and products of decimals are exact (in
:data:`DECIMAL_CONTEXT`), divisions are not. The only division, the share of the cost a
partial reduction removes, is rounded and its realized P&L quantized to
:data:`PRICE_QUANTUM` (the scale of the ledger's ``Numeric(28, 10)`` columns); the
rounding remainder stays in the cost basis (so a reduction may move the quantized
average by 1e-10). Nothing is lost: for every sequence of fills

    realized + unrealized(M) == Σ -side * qty * price - Σ fee + qty_net * M

holds exactly. The ledger stores ``avg_price`` (quantized), not the cost: a position
restored from the table (:meth:`Position.from_avg`) has cost ``avg * qty``, which differs
from the in-memory cost by less than ``qty * 1e-10``.
"""

from __future__ import annotations

from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)

import msgspec

from engine.bus.events import Side

#: Scale of prices and money in the ledger (``Numeric(28, 10)``).
PRICE_QUANTUM = Decimal("1e-10")
#: Context of ledger arithmetic: wide enough that sums and products of ``Numeric(28, 10)``
#: values never round; invalid operations raise instead of producing NaN.
DECIMAL_CONTEXT = Context(
    prec=120, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)
ZERO = Decimal(0)


def side_sign(side: Side) -> int:
    """+1 for a buy, -1 for a sell."""
    return 1 if side == "buy" else -1


def quantize_price(value: Decimal) -> Decimal:
    """``value`` rounded (half even) to :data:`PRICE_QUANTUM`."""
    with localcontext(DECIMAL_CONTEXT):
        return value.quantize(PRICE_QUANTUM)


class Position(msgspec.Struct, frozen=True, kw_only=True):
    """The net position of an account in a symbol; immutable, :meth:`apply_fill` returns
    the next one."""

    account: str
    symbol: str
    qty: Decimal = ZERO
    """Net quantity, negative when short."""
    cost: Decimal = ZERO
    """Signed cost basis of the open quantity (``avg * qty``, exact)."""
    realized_pnl: Decimal = ZERO
    """P&L of closed quantity, net of fees."""
    ts_updated: int = 0
    """UTC ns of the last fill (0 for a position that never traded)."""

    @classmethod
    def from_avg(
        cls,
        account: str,
        symbol: str,
        *,
        qty: Decimal,
        avg_price: Decimal,
        realized_pnl: Decimal = ZERO,
        ts_updated: int = 0,
    ) -> Position:
        """A position as the ledger stores it (average price instead of cost basis)."""
        with localcontext(DECIMAL_CONTEXT):
            cost = avg_price * qty if qty else ZERO
        return cls(
            account=account,
            symbol=symbol,
            qty=qty,
            cost=cost,
            realized_pnl=realized_pnl,
            ts_updated=ts_updated,
        )

    @property
    def avg_price(self) -> Decimal:
        """Volume-weighted average price of the open quantity, quantized to
        :data:`PRICE_QUANTUM`; 0 when flat."""
        if not self.qty:
            return ZERO
        with localcontext(DECIMAL_CONTEXT):
            return (self.cost / self.qty).quantize(PRICE_QUANTUM)

    @property
    def is_flat(self) -> bool:
        return not self.qty

    def unrealized(self, mark: Decimal) -> Decimal:
        """P&L of the open quantity at ``mark``: ``(mark - avg) * qty`` (exact avg)."""
        with localcontext(DECIMAL_CONTEXT):
            return mark * self.qty - self.cost

    def apply_fill(
        self, side: Side, qty: Decimal, price: Decimal, *, fee: Decimal = ZERO, ts: int = 0
    ) -> Position:
        """The position after a fill of ``qty`` (> 0) at ``price``; ``fee`` (≥ 0 when paid)
        is subtracted from realized P&L. Raises ``ValueError`` for a non-positive qty
        (a caller's bug, never a venue's fact)."""
        if qty <= 0:
            raise ValueError(f"a fill's quantity must be positive, not {qty}")
        sign = side_sign(side)
        with localcontext(DECIMAL_CONTEXT):
            position_qty, cost, realized = self.qty, self.cost, self.realized_pnl - fee
            held = abs(position_qty)
            reducing = position_qty * sign < 0
            if not reducing:  # opens or adds
                position_qty += sign * qty
                cost += sign * qty * price
            elif qty < held:  # reduces, stays on the same side
                removed = cost * qty / held
                # the realized part is quantized; its rounding stays in the cost basis
                change = (-removed - sign * qty * price).quantize(PRICE_QUANTUM)
                realized += change
                cost += change + sign * qty * price
                position_qty += sign * qty
            else:  # closes (exactly, or through zero and opens the rest)
                realized += -cost - sign * held * price
                rest = qty - held
                position_qty = sign * rest
                cost = sign * rest * price
        return msgspec.structs.replace(
            self,
            qty=position_qty,
            cost=cost,
            realized_pnl=realized,
            ts_updated=ts or self.ts_updated,
        )

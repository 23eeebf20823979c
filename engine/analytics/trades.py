"""Round-trip trades from fills: FIFO lot matching with exact ``Decimal`` arithmetic.

A **lot** is an open part of a position: the quantity one fill opened, at that fill's
price. Fills of one symbol are matched in time order (stably sorted by ``ts``, so fills
with the same timestamp keep their order):

- a fill on the side of the open lots, or while flat, opens a new lot;
- a fill against the open lots closes them oldest first (FIFO); every (part of a lot,
  part of the fill) pair closed is one :class:`Trade`, so a partial close is a trade of
  the closed quantity and the rest of the lot stays open;
- what is left of the fill after every lot is closed opens a lot on its own side (a
  flip from long to short or back).

Per trade, with ``sign`` +1 for a long and -1 for a short::

    gross_pnl = sign * (exit_price - entry_price) * qty
    fees      = share of the entry fill's fee + share of the exit fill's fee
    pnl       = gross_pnl - fees

A fill's fee is spread over its quantity: a part ``q`` of a remaining quantity ``Q``
that still carries fee ``F`` takes ``F * q / Q`` rounded (half even) to
:data:`~engine.orders.positions.PRICE_QUANTUM`, and the last part takes all of what
remains, so the shares of a fee always add up to it exactly. Nothing else divides.

**Consistency with** :class:`engine.orders.positions.Position`, the live average-cost
arithmetic: FIFO and average cost split realized from unrealized P&L differently while a
position is open (and average cost charges a fee when it is paid), but for every mark
``M``::

    Σ trade.pnl - Σ lot.fee + Σ lot.sign * lot.qty * (M - lot.price)
        == position.realized_pnl + position.unrealized(M)

exactly, and once the position is flat ``Σ trade.pnl == position.realized_pnl``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from decimal import Decimal, localcontext
from typing import Literal

import msgspec

from engine.bus.events import Side
from engine.orders.positions import DECIMAL_CONTEXT, ZERO, quantize_price, side_sign

PositionSide = Literal["long", "short"]


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    """One execution, as the ledger records it."""

    symbol: str
    side: Side
    qty: Decimal
    """Traded quantity, > 0."""
    price: Decimal
    fee: Decimal = ZERO
    """Fee paid (negative for a rebate); in P&L it is a cost."""
    ts: int
    """UTC ns."""

    def __post_init__(self) -> None:
        if self.qty <= 0:
            raise ValueError(f"a fill's quantity must be positive, not {self.qty}")


class Lot(msgspec.Struct, frozen=True, kw_only=True):
    """An open part of a position: what one fill opened and is not closed yet."""

    symbol: str
    side: PositionSide
    qty: Decimal
    """Still open, > 0."""
    price: Decimal
    """The opening fill's price."""
    fee: Decimal
    """The part of the opening fill's fee not yet charged to a trade."""
    ts: int
    """UTC ns of the opening fill."""

    @property
    def sign(self) -> int:
        return 1 if self.side == "long" else -1


class Trade(msgspec.Struct, frozen=True, kw_only=True):
    """A round trip: ``qty`` opened by one fill and closed by a later one."""

    symbol: str
    side: PositionSide
    qty: Decimal
    entry_ts: int
    """UTC ns of the opening fill."""
    exit_ts: int
    """UTC ns of the closing fill."""
    entry_price: Decimal
    exit_price: Decimal
    gross_pnl: Decimal
    """``sign * (exit_price - entry_price) * qty``, before fees."""
    fees: Decimal
    """The entry and exit fills' fee shares of this quantity."""
    pnl: Decimal
    """``gross_pnl - fees``: P&L net of fees."""


class RoundTrips(msgspec.Struct, frozen=True, kw_only=True):
    """The result of matching: the closed trades and the lots still open."""

    trades: tuple[Trade, ...]
    """In the order they were closed."""
    open_lots: tuple[Lot, ...]
    """Oldest first; all on one side."""


def _share(total: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """``total * part / whole`` quantized; all of ``total`` when ``part`` is the whole."""
    if part == whole or not total:
        return total
    with localcontext(DECIMAL_CONTEXT):
        return quantize_price(total * part / whole)


def round_trips(fills: Iterable[Fill]) -> RoundTrips:
    """Match the fills of one symbol FIFO into round trips (see the module docstring).
    Raises ``ValueError`` when the fills are of more than one symbol."""
    ordered = sorted(fills, key=lambda f: f.ts)
    if len({f.symbol for f in ordered}) > 1:
        raise ValueError("round_trips matches the fills of one symbol; group them first")
    lots: deque[Lot] = deque()
    trades: list[Trade] = []
    with localcontext(DECIMAL_CONTEXT):
        for fill in ordered:
            sign = side_sign(fill.side)
            qty, fee = fill.qty, fill.fee
            while qty and lots and lots[0].sign != sign:
                lot = lots[0]
                closed = min(qty, lot.qty)
                entry_fee = _share(lot.fee, closed, lot.qty)
                exit_fee = _share(fee, closed, qty)
                gross = lot.sign * (fill.price - lot.price) * closed
                trades.append(
                    Trade(
                        symbol=fill.symbol,
                        side=lot.side,
                        qty=closed,
                        entry_ts=lot.ts,
                        exit_ts=fill.ts,
                        entry_price=lot.price,
                        exit_price=fill.price,
                        gross_pnl=gross,
                        fees=entry_fee + exit_fee,
                        pnl=gross - entry_fee - exit_fee,
                    )
                )
                qty -= closed
                fee -= exit_fee
                if closed == lot.qty:
                    lots.popleft()
                else:
                    lots[0] = msgspec.structs.replace(
                        lot, qty=lot.qty - closed, fee=lot.fee - entry_fee
                    )
            if qty:
                lots.append(
                    Lot(
                        symbol=fill.symbol,
                        side="long" if sign > 0 else "short",
                        qty=qty,
                        price=fill.price,
                        fee=fee,
                        ts=fill.ts,
                    )
                )
    return RoundTrips(trades=tuple(trades), open_lots=tuple(lots))


class TradeStats(msgspec.Struct, frozen=True, kw_only=True):
    """Statistics of closed trades. A win has ``pnl > 0``, a loss ``pnl < 0``; a trade
    with ``pnl == 0`` is neither. Averages are rounded (half even) to
    :data:`~engine.orders.positions.PRICE_QUANTUM`; what has no trade to average is
    None."""

    count: int
    wins: int
    losses: int
    win_rate: float | None
    """``wins / count``; None without trades."""
    net_pnl: Decimal
    """``Σ pnl``."""
    fees: Decimal
    """``Σ fees`` of the closed trades."""
    gross_profit: Decimal
    """``Σ pnl`` of the wins (≥ 0)."""
    gross_loss: Decimal
    """``-Σ pnl`` of the losses (≥ 0)."""
    profit_factor: float | None
    """``gross_profit / gross_loss``; None when there is no loss (the ratio would be
    infinite, or undefined without trades), 0.0 when there are losses and no wins."""
    best: Decimal | None
    """Largest ``pnl``."""
    worst: Decimal | None
    """Smallest ``pnl``."""
    average: Decimal | None
    """``net_pnl / count``."""
    average_win: Decimal | None
    """``gross_profit / wins``."""
    average_loss: Decimal | None
    """``-gross_loss / losses`` (negative)."""


def _mean(values: Sequence[Decimal]) -> Decimal | None:
    if not values:
        return None
    with localcontext(DECIMAL_CONTEXT):
        return quantize_price(sum(values, ZERO) / len(values))


def trade_stats(trades: Sequence[Trade]) -> TradeStats:
    """The statistics of ``trades`` (see :class:`TradeStats`)."""
    pnls = [t.pnl for t in trades]
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    with localcontext(DECIMAL_CONTEXT):
        gross_profit = sum(wins, ZERO)
        gross_loss = -sum(losses, ZERO)
        return TradeStats(
            count=len(pnls),
            wins=len(wins),
            losses=len(losses),
            win_rate=len(wins) / len(pnls) if pnls else None,
            net_pnl=sum(pnls, ZERO),
            fees=sum((t.fees for t in trades), ZERO),
            gross_profit=gross_profit,
            gross_loss=gross_loss,
            profit_factor=float(gross_profit / gross_loss) if gross_loss else None,
            best=max(pnls) if pnls else None,
            worst=min(pnls) if pnls else None,
            average=_mean(pnls),
            average_win=_mean(wins),
            average_loss=_mean(losses),
        )

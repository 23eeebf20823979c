"""The bar broker of a backtest: orders, fill models, cash and positions.

Fill models for bar data (documented choices, selectable per run):

- **Market orders** fill at the *next* bar's open, moved against the order by
  ``slippage_bps`` (buy higher, sell lower). Never inside the bar whose close made the
  strategy decide: an order placed while bar *t* closes is first looked at on bar *t+1*.
- **Limit orders** rest until a later bar trades through the price: a buy fills when the
  bar's low is at or below the limit, at the open if the bar opened below it (a gap) and
  else at the limit; a sell mirrors it. Unfilled limits rest until cancelled.
- **Commission**: ``commission`` as a fraction of notional (0 ≤ c < 1) plus
  ``commission_per_share`` per unit, charged on each fill (it lowers cash and realized
  P&L).
- **Sizing** when the strategy gives no quantity: ``cash_fraction`` (that share of
  equity at the signal bar's close, in whole units), ``fixed`` (``qty`` units) or
  ``all_cash`` (every unit the cash buys). A buy is cut at fill time to what the cash
  pays for (whole units); a sell without ``allow_short`` is cut to the position.

Every order passes the pre-trade risk gate (:class:`engine.risk.gate.RiskGate`, the
live code) when it is placed; a denied order never exists (the denial is kept in
``denied``). Positions and realized P&L use the live position arithmetic
(:class:`engine.orders.positions.Position`), exact in ``Decimal``.
"""

from __future__ import annotations

import itertools
import math
from decimal import ROUND_FLOOR, Decimal
from typing import Literal

import msgspec

from engine.bus.events import BarClosed, Side
from engine.orders.positions import Position
from engine.risk.decision import Decision, RiskOrder
from engine.risk.gate import RiskGate

ZERO = Decimal(0)
BPS = Decimal(10_000)
SizingMode = Literal["cash_fraction", "fixed", "all_cash"]
ACCOUNT = "backtest"


class FillModel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    commission: float = 0.0
    """Fraction of notional per fill, 0 ≤ c < 1."""
    commission_per_share: float = 0.0
    slippage_bps: float = 0.0
    sizing: SizingMode = "cash_fraction"
    fraction: float = 1.0
    """Share of equity per position (``cash_fraction``), 0 < f ≤ 1."""
    qty: Decimal = Decimal(1)
    """Units per order (``fixed``)."""
    allow_short: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.commission) and 0 <= self.commission < 1):
            raise ValueError(f"commission must be at least 0 and below 1, not {self.commission}")
        if not (math.isfinite(self.commission_per_share) and self.commission_per_share >= 0):
            raise ValueError("commission_per_share must not be negative")
        if not (math.isfinite(self.slippage_bps) and 0 <= self.slippage_bps < 10_000):
            raise ValueError("slippage_bps must be at least 0 and below 10000")
        if not (math.isfinite(self.fraction) and 0 < self.fraction <= 1):
            raise ValueError(f"fraction must be above 0 and at most 1, not {self.fraction}")
        if not (self.qty.is_finite() and self.qty > 0):
            raise ValueError(f"qty must be positive, not {self.qty}")


class Order(msgspec.Struct, kw_only=True):
    order_id: str
    symbol: str
    side: Side
    qty: Decimal | None
    """None: sized by the fill model at fill time."""
    limit: Decimal | None
    placed_ns: int
    """Close time of the bar it was placed on: it fills on a later bar."""
    sizing_price: float
    """The close it was decided on (for sizing)."""


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    commission: Decimal
    ts: int
    """Open time of the bar it filled in (UTC ns)."""


class Denial(msgspec.Struct, frozen=True, kw_only=True):
    ts: int
    symbol: str
    side: Side
    reason: str
    message: str


class Broker:
    def __init__(self, cash: Decimal, model: FillModel, gate: RiskGate) -> None:
        self.cash = cash
        self.model = model
        self.gate = gate
        self.positions: dict[str, Position] = {}
        self.last: dict[str, float] = {}
        self.orders: dict[str, Order] = {}
        self.fills: list[Fill] = []
        self.denied: list[Denial] = []
        self.now_ns = 0
        self._ids = itertools.count(1)
        self._slip = Decimal(repr(model.slippage_bps)) / BPS
        self._rate = Decimal(repr(model.commission))
        self._per_share = Decimal(repr(model.commission_per_share))

    # --- the strategy's side -------------------------------------------------------------

    def position(self, symbol: str) -> Decimal:
        p = self.positions.get(symbol)
        return ZERO if p is None else p.qty

    def equity(self) -> Decimal:
        """Cash plus positions at their last close."""
        value = self.cash
        for symbol, p in self.positions.items():
            if p.qty:
                value += p.qty * Decimal(repr(self.last[symbol]))
        return value

    def submit(
        self, symbol: str, side: Side, qty: Decimal | None = None, limit: Decimal | None = None
    ) -> str | None:
        """Place an order (filled from the next bar on); None when the risk gate denied
        it or there is nothing to trade."""
        price = self.last.get(symbol)
        if price is None:
            self._deny(symbol, side, "no_price", f"no bar of {symbol} yet")
            return None
        if qty is not None and qty <= 0:
            return None
        order_id = f"bt-{next(self._ids)}"
        check_qty = qty if qty is not None else self._size(side, symbol, Decimal(repr(price)))
        if check_qty <= 0:
            return None
        if not self._admit(order_id, symbol, side, check_qty, limit):
            return None
        self.orders[order_id] = Order(
            order_id=order_id,
            symbol=symbol,
            side=side,
            qty=qty,
            limit=limit,
            placed_ns=self.now_ns,
            sizing_price=price,
        )
        return order_id

    def _admit(
        self, order_id: str, symbol: str, side: Side, qty: Decimal, limit: Decimal | None
    ) -> bool:
        """The pre-trade risk gate's check of an order; a denial is kept in ``denied``."""
        decision: Decision = self.gate.check(
            RiskOrder(
                account=ACCOUNT,
                symbol=symbol,
                client_order_id=order_id,
                side=side,
                qty=qty,
                price=limit,
                order_type="market" if limit is None else "limit",
            ),
            self.now_ns,
        )
        self.gate.drain()
        if not decision.allowed:
            self._deny(symbol, side, decision.reason, decision.message)
        return decision.allowed

    def cancel(self, order_id: str) -> bool:
        return self.orders.pop(order_id, None) is not None

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self.orders.values() if symbol is None or o.symbol == symbol]

    # --- the runner's side ---------------------------------------------------------------

    def on_bar(self, bar: BarClosed, close_ns: int) -> list[Fill]:
        """A bar of ``bar.symbol`` traded (from its open to ``close_ns``): the orders
        placed before it that it fills."""
        fills = []
        for order in [o for o in self.orders.values() if o.symbol == bar.symbol]:
            if order.placed_ns > bar.ts:
                continue  # placed at this bar's close or later: next bar
            price = self._fill_price(order, bar)
            if price is None:
                continue
            qty = self._fill_qty(order, price)
            del self.orders[order.order_id]
            if qty <= 0:
                continue
            fills.append(self._fill(order, qty, price, bar.ts))
        self.last[bar.symbol] = bar.close
        self.now_ns = close_ns
        self.gate.on_mark(bar.symbol, bar.close, close_ns)
        self.gate.drain()
        return fills

    def _fill_price(self, order: Order, bar: BarClosed) -> Decimal | None:
        open_ = Decimal(repr(bar.open))
        if order.limit is None:
            move = open_ * self._slip
            return open_ + move if order.side == "buy" else open_ - move
        limit = order.limit
        if order.side == "buy":
            if bar.low > limit:
                return None
            return min(open_, limit)
        if bar.high < limit:
            return None
        return max(open_, limit)

    def _fill_qty(self, order: Order, price: Decimal) -> Decimal:
        qty = (
            order.qty
            if order.qty is not None
            else self._size(order.side, order.symbol, Decimal(repr(order.sizing_price)))
        )
        held = self.position(order.symbol)
        if order.side == "buy":
            unit_cost = price * (1 + self._rate) + self._per_share
            affordable = (self.cash / unit_cost).to_integral_value(rounding=ROUND_FLOOR)
            if held < 0:
                affordable += -held  # covering a short frees its margin here
            qty = min(qty, max(affordable, ZERO))
        elif not self.model.allow_short:
            qty = min(qty, max(held, ZERO))
        return qty

    def _size(self, side: Side, symbol: str, price: Decimal) -> Decimal:
        model = self.model
        held = self.position(symbol)
        if side == "sell":
            if model.sizing == "fixed":
                return model.qty
            return held if held > 0 else (ZERO if not model.allow_short else model.qty)
        if model.sizing == "fixed":
            return model.qty
        budget = (
            self.cash
            if model.sizing == "all_cash"
            else self.equity() * Decimal(repr(model.fraction)) - max(held, ZERO) * price
        )
        units = (budget / (price * (1 + self._rate) + self._per_share)).to_integral_value(
            rounding=ROUND_FLOOR
        )
        return max(units, ZERO)

    def _fill(self, order: Order, qty: Decimal, price: Decimal, ts: int) -> Fill:
        commission = qty * price * self._rate + qty * self._per_share
        notional = qty * price
        self.cash += -notional - commission if order.side == "buy" else notional - commission
        position = self.positions.get(order.symbol) or Position(
            account=ACCOUNT, symbol=order.symbol
        )
        self.positions[order.symbol] = position.apply_fill(
            order.side, qty, price, fee=commission, ts=ts
        )
        self.gate.on_fill(ACCOUNT, order.symbol, order.side, qty, price, ts_ns=ts, fee=commission)
        fill = Fill(
            order_id=order.order_id,
            symbol=order.symbol,
            side=order.side,
            qty=qty,
            price=price,
            commission=commission,
            ts=ts,
        )
        self.fills.append(fill)
        return fill

    def _deny(self, symbol: str, side: Side, reason: str, message: str) -> None:
        self.denied.append(
            Denial(ts=self.now_ns, symbol=symbol, side=side, reason=reason, message=message)
        )

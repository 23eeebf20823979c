"""What compliance rules see of the gate during one check (:class:`CheckView`, the
:class:`~engine.risk.compliance.RiskView` of the check), and how the gate holds a rule."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

from engine.bus.events import Side
from engine.risk.compliance import ComplianceRule, RestingOrder
from engine.risk.decision import OpenOrder, RiskOrder
from engine.risk.state import SymbolExposure, Working
from engine.risk.tracker import RiskTracker


class CheckView:
    """The read-only :class:`~engine.risk.compliance.RiskView` of one check. For a
    modify, the order it replaces (``old``) is left out of the working quantities and
    the resting orders: the new order takes its place."""

    __slots__ = (
        "_account",
        "_buys",
        "_gate",
        "_old",
        "_open",
        "_sells",
        "_sx",
        "_symbol",
        "now_ns",
    )

    def __init__(
        self,
        gate: RiskTracker,
        now_ns: int,
        open_orders: Sequence[OpenOrder] | None,
        order: RiskOrder,
        sx: SymbolExposure,
        buys: Decimal,
        sells: Decimal,
        old: Working | None,
    ) -> None:
        self._gate = gate
        self.now_ns = now_ns
        self._open = open_orders
        self._account, self._symbol, self._sx = order.account, order.symbol, sx
        self._buys, self._sells, self._old = buys, sells, old

    def _own(self, account: str, symbol: str) -> bool:
        return account == self._account and symbol == self._symbol

    def position(self, account: str, symbol: str) -> Decimal:
        if self._own(account, symbol):
            return self._sx.qty
        return self._gate.exposure(account, symbol).qty

    def working(self, account: str, symbol: str) -> tuple[Decimal, Decimal]:
        if self._own(account, symbol):
            return self._buys, self._sells
        sx = self._gate.exposure(account, symbol)
        return sx.buys, sx.sells

    def open_orders(self, account: str, symbol: str) -> Iterable[RestingOrder]:
        if self._open is not None:
            return [o for o in self._open if o.symbol == symbol]
        orders = self._gate.exposure(account, symbol).orders
        old = self._old
        if old is not None and self._own(account, symbol):
            return [w for w in orders.values() if w is not old]
        return orders.values()

    def best_price(self, account: str, symbol: str, side: Side) -> Decimal | None:
        old = self._old
        if self._open is None and (
            old is None or old.side != side or not self._own(account, symbol)
        ):
            return self._gate.exposure(account, symbol).best_price(side)
        prices = [
            o.price
            for o in self.open_orders(account, symbol)
            if o.side == side and o.price is not None
        ]
        if not prices:
            return None
        return max(prices) if side == "buy" else min(prices)

    def is_reducing(self, order: RiskOrder) -> bool:
        pos = self.position(order.account, order.symbol)
        buys, sells = self.working(order.account, order.symbol)
        return is_reducing(order.side == "buy", pos, buys, sells, order.qty)


Slot = tuple[ComplianceRule[Any], frozenset[str] | None, Callable[..., Any]]
"""A rule, its account scope (None: it has its own ``applies``) and its bound check."""


def slot(rule: ComplianceRule[Any]) -> Slot:
    own_scope = type(rule).applies is not ComplianceRule.applies
    return rule, None if own_scope else rule.params.accounts, rule.check


def is_reducing(buy: bool, pos: Decimal, buys: Decimal, sells: Decimal, qty: Decimal) -> bool:
    if buy:
        return pos < 0 and buys + qty <= -pos
    return pos > 0 and sells + qty <= pos

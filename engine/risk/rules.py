"""The built-in compliance rules: restricted list, wash trade, short sale, trading windows.

See :mod:`engine.risk.compliance` for the interface. Times are UTC.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

from engine.bus.events import Side
from engine.risk.compliance import ComplianceParams, ComplianceRule, RiskView, Violation
from engine.risk.decision import Reason, RiskOrder

ZERO = Decimal(0)
DAY_NS = 86_400 * 1_000_000_000
MINUTE_NS = 60 * 1_000_000_000
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
HhMm = Annotated[
    str,
    msgspec.Meta(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$", description="UTC HH:MM"),
]


class RestrictedListParams(ComplianceParams, frozen=True, kw_only=True):
    symbols: frozenset[str] = frozenset()
    """Symbols the accounts may not trade."""
    allow_reducing: bool = False
    """Let orders through that only reduce an existing position (e.g. to exit)."""


class RestrictedListRule(ComplianceRule[RestrictedListParams]):
    kind = "restricted_list"
    params_type = RestrictedListParams
    reason = Reason.RESTRICTED
    stage = "pre"
    description = "Deny orders in restricted symbols."

    def check(self, order: RiskOrder, view: RiskView, **kwargs: Any) -> Violation | None:
        if order.symbol not in self.params.symbols:
            return None
        if self.params.allow_reducing and view.is_reducing(order):
            return None
        return Violation(
            reason=self.reason, message=f"{order.symbol} is on the restricted list {self.name}"
        )


class WashTradeRule(ComplianceRule[ComplianceParams]):
    kind = "wash_trade"
    reason = Reason.WASH_TRADE
    description = "Deny orders that would cross one of the account's own resting orders."

    def check(self, order: RiskOrder, view: RiskView, **kwargs: Any) -> Violation | None:
        buy = order.side == "buy"
        opposite: Side = "sell" if buy else "buy"
        best = view.best_price(order.account, order.symbol, opposite)
        price = order.price
        if best is None or (price is not None and (price < best if buy else price > best)):
            return None
        resting = next(
            (
                o.client_order_id
                for o in view.open_orders(order.account, order.symbol)
                if o.side == opposite and o.price == best
            ),
            "?",
        )
        at = "market" if price is None else str(price)
        return Violation(
            reason=self.reason,
            message=(
                f"{order.side} {order.symbol} at {at} would trade against the account's own "
                f"{opposite} order {resting} at {best}"
            ),
            limit_value=best,
            observed=price,
        )


class ShortSaleParams(ComplianceParams, frozen=True, kw_only=True):
    allowed: dict[str, frozenset[str]] = {}
    """Account → symbols it may sell short (``"*"``: every symbol)."""


class ShortSaleRule(ComplianceRule[ShortSaleParams]):
    kind = "short_sale"
    params_type = ShortSaleParams
    reason = Reason.SHORT_SALE
    description = (
        "Deny sells beyond the long position (less working sells) unless the account may "
        "sell the symbol short."
    )

    def check(self, order: RiskOrder, view: RiskView, **kwargs: Any) -> Violation | None:
        if order.side != "sell":
            return None
        position = view.position(order.account, order.symbol)
        sells = view.working(order.account, order.symbol)[1]
        available = max(position, ZERO) - sells
        if order.qty <= available:
            return None
        allowed = self.params.allowed.get(order.account)
        if allowed is not None and (order.symbol in allowed or "*" in allowed):
            return None
        available = max(available, ZERO)
        return Violation(
            reason=self.reason,
            message=(
                f"selling {order.qty} {order.symbol} is a short sale ({available} held and "
                f"not already offered) and {order.account} may not sell it short"
            ),
            limit_value=available,
            observed=order.qty,
        )


class TradingWindow(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Trading allowed on ``days`` from ``start`` (inclusive) to ``end`` (exclusive), UTC."""

    days: frozenset[Weekday] = frozenset(("mon", "tue", "wed", "thu", "fri"))
    start: HhMm
    end: HhMm

    def __post_init__(self) -> None:
        if not self.days:
            raise ValueError("a trading window needs at least one day")
        if self.start >= self.end:
            raise ValueError(
                f"window start ({self.start}) must be before its end ({self.end}); split a "
                "window across midnight in two"
            )

    def minutes(self) -> tuple[frozenset[int], int, int]:
        """Weekday numbers (Monday 0) and the start/end minute of the day."""

        def minute(hhmm: str) -> int:
            return int(hhmm[:2]) * 60 + int(hhmm[3:])

        days = frozenset(WEEKDAYS.index(day) for day in self.days)
        return days, minute(self.start), minute(self.end)


class TradingWindowParams(ComplianceParams, frozen=True, kw_only=True):
    windows: tuple[TradingWindow, ...] = ()
    """When trading is allowed; none at all means never."""
    symbols: frozenset[str] = frozenset()
    """Symbols the windows apply to; empty: every symbol."""
    allow_reducing: bool = False
    """Let orders through outside the windows that only reduce a position."""


class TradingWindowRule(ComplianceRule[TradingWindowParams]):
    kind = "trading_window"
    params_type = TradingWindowParams
    reason = Reason.OUTSIDE_TRADING_WINDOW
    description = "Deny orders outside the configured UTC trading windows."

    def __init__(self, params: TradingWindowParams | None = None, /, **kw: Any) -> None:
        super().__init__(params, **kw)
        self._windows = [w.minutes() for w in self.params.windows]

    def check(self, order: RiskOrder, view: RiskView, **kwargs: Any) -> Violation | None:
        symbols = self.params.symbols
        if symbols and order.symbol not in symbols:
            return None
        now = view.now_ns
        day = (now // DAY_NS + 3) % 7  # 1970-01-01 was a Thursday
        minute = (now % DAY_NS) // MINUTE_NS
        for days, start, end in self._windows:
            if day in days and start <= minute < end:
                return None
        if self.params.allow_reducing and view.is_reducing(order):
            return None
        return Violation(
            reason=self.reason,
            message=(
                f"{WEEKDAYS[day]} {minute // 60:02d}:{minute % 60:02d} UTC is outside the "
                f"trading windows of {self.name}"
            ),
        )


class BrokenRule(ComplianceRule[ComplianceParams]):
    """Stands in for a configured rule that could not be built (unknown kind, bad
    parameters): it denies every order with ``compliance_error`` until the configuration
    is fixed or the rule disabled — a broken restricted list must not let orders pass.
    Not registered (it is never configured by kind)."""

    kind = "broken"
    reason = Reason.COMPLIANCE_ERROR
    stage = "pre"
    description = "A configured rule that could not be built; denies every order."

    def __init__(self, name: str, broken_kind: str, problem: str) -> None:
        super().__init__(name=name)
        self.broken_kind = broken_kind
        self.problem = problem

    def check(self, order: RiskOrder, view: RiskView, **kwargs: Any) -> Violation | None:
        return Violation(
            reason=self.reason,
            message=(
                f"compliance rule {self.name} ({self.broken_kind}) is misconfigured: {self.problem}"
            ),
        )

"""What the gate is asked about and what it answers: orders, decisions, reason codes.

A :class:`RiskOrder` is the gate's view of one order request (manual, an algorithm's child,
or an algorithm's parent for ``check_parent``). The gate answers with a :class:`Decision`:
``allowed``, and for a denial the stable :class:`Reason` code, the ``limit`` that was hit
(a profile field such as ``max_order_notional``, a compliance rule's name, or a state such
as ``kill_switch``), its configured ``limit_value`` and the ``observed`` value, plus
``warnings`` for limits used beyond the profile's ``warning_level``.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from engine.bus.events import OrderDenied, OrderType, RiskScope, Side

HaltScope = RiskScope
HALT_SCOPES: tuple[HaltScope, ...] = ("global", "account", "algo", "symbol")


class Reason:
    """Reason codes of denials (``Decision.reason``, ``OrderDenied.reason``). Stable:
    part of the wire contract. The alert of a denial is ``risk.<limit>``."""

    # input sanity
    INVALID_ORDER = "invalid_order"  # side, order type, account, symbol, ids, price/type mismatch
    INVALID_QTY = "invalid_qty"  # NaN, inf, <= 0, absurd, off the lot grid
    INVALID_PRICE = "invalid_price"  # NaN, inf, <= 0, absurd, off the tick grid
    NO_RISK_PROFILE = "no_risk_profile"
    # state
    ALGO_DISABLED = "algo_disabled"  # runaway protection disabled the algorithm
    HALTED = "halted"  # kill switch or daily loss HALTED: risk-increasing orders
    REDUCING_ONLY = "reducing_only"  # daily loss REDUCING: risk-increasing orders
    # prices
    NO_REFERENCE = "no_reference"
    STALE_REFERENCE = "stale_reference"
    PRICE_COLLAR = "price_collar"
    # size
    ORDER_QTY = "order_qty"  # max_order_qty / max_parent_qty
    ORDER_NOTIONAL = "order_notional"  # max_order_notional / max_parent_notional
    # flow
    RATE_LIMIT = "rate_limit"  # engine / account / algorithm orders per second
    DUPLICATE_ORDER = "duplicate_order"
    OPEN_ORDERS = "open_orders"  # max_open_orders_per_symbol / _per_algo
    # exposure
    POSITION_QTY = "position_qty"
    POSITION_NOTIONAL = "position_notional"
    GROSS_NOTIONAL = "gross_notional"
    PARTICIPATION = "participation"
    # compliance (built-in rules; plugins may add their own codes)
    RESTRICTED = "restricted"
    SHORT_SALE = "short_sale"
    WASH_TRADE = "wash_trade"
    OUTSIDE_TRADING_WINDOW = "outside_trading_window"
    COMPLIANCE_ERROR = "compliance_error"  # a rule raised: fail closed
    # algorithms
    UNKNOWN_ALGO = "unknown_algo"  # a child order of an algorithm without a parent plan
    RUNAWAY = "runaway"
    UNKNOWN_ORDER = "unknown_order"  # modify of an order the gate does not know
    RISK_ERROR = "risk_error"  # the gate itself failed: fail closed


class RiskOrder(msgspec.Struct, frozen=True, kw_only=True):
    """An order request as the gate sees it."""

    account: str
    symbol: str
    client_order_id: str
    side: Side
    qty: Decimal
    """Whole quantity of the order (> 0)."""
    price: Decimal | None = None
    """Limit price; None for a market order."""
    order_type: OrderType = "limit"
    algo_id: str = ""
    """The algorithm that sent it ("" for a manual order)."""
    parent: str = ""
    """The parent order of an algorithm's child order ("" otherwise)."""


class OpenOrder(msgspec.Struct, frozen=True, kw_only=True):
    """A resting order of the account at the venue (for the wash-trade check)."""

    client_order_id: str
    symbol: str
    side: Side
    price: Decimal | None
    """None for a market order (never resting)."""
    qty: Decimal
    """Quantity still working."""


class CancelRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A working order the caller must cancel (after a halt, a daily-loss halt or a
    runaway algorithm)."""

    account: str
    symbol: str
    client_order_id: str
    algo_id: str = ""
    reason: str
    """``kill_switch``, ``daily_loss`` or ``runaway``."""


class NearBreach(msgspec.Struct, frozen=True, kw_only=True):
    """A limit used beyond the profile's ``warning_level`` (the order still passed)."""

    limit: str
    limit_value: Decimal
    observed: Decimal
    usage: float
    """observed / limit_value."""


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """The gate's answer to one check."""

    allowed: bool
    reason: str = ""
    """A :class:`Reason` code ("" when allowed)."""
    limit: str = ""
    """The limit that was hit: a profile field, a rule name or a state."""
    limit_value: Decimal | None = None
    """Its configured value (None when it has none, e.g. the restricted list)."""
    observed: Decimal | None = None
    """What the order would have made of it (None when not a number)."""
    message: str = ""
    """Why, in words for the operator."""
    warnings: tuple[NearBreach, ...] = ()
    profile_version: int = 0
    """Version of the profile checked against (0: none)."""


def denied_event(order: RiskOrder, decision: Decision, ts: int) -> OrderDenied:
    """The ``OrderDenied`` event of a denial (hostile values are made encodable)."""
    return OrderDenied(
        ts_event=ts,
        account=_text(order.account),
        symbol=_text(order.symbol),
        client_order_id=_text(order.client_order_id),
        side=order.side if order.side in ("buy", "sell") else "buy",
        qty=_decimal(order.qty),
        price=None if order.price is None else _decimal(order.price),
        reason=decision.reason,
        limit=decision.limit,
        limit_value=decision.limit_value,
        observed=decision.observed,
        algo_id=_text(order.algo_id),
        message=decision.message,
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else repr(value)


def _decimal(value: object) -> Decimal:
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return Decimal("NaN")

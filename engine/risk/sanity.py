"""Input sanity: the first step of every check, and the only one that sees hostile input.

An order passes when its side is ``buy`` or ``sell``; account, symbol and
client_order_id are strings of 1 to 64 characters (algo_id at most 64, required for a
parent); a limit order has a price and a market order none; its quantity, then its
price, is a ``Decimal`` (not a float, string or bool), finite, > 0, below 1e18 and has at
most 10 decimal places — on the instrument's lot and tick grid when the gate knows the
instrument. Reason codes: ``invalid_order``, ``invalid_qty``, ``invalid_price``.
"""

from __future__ import annotations

from decimal import Decimal

from engine.risk.decision import Reason, RiskOrder
from engine.risk.profile import INTEGER_DIGITS
from engine.venue.instrument import InstrumentSpec

_MAX = Decimal(10) ** INTEGER_DIGITS
_QUANTUM = Decimal("1e-10")


def order_problem(
    order: RiskOrder, parent: bool, spec: InstrumentSpec | None, places: bool
) -> tuple[str, str, str] | None:
    """Step 1 of the gate: ``(reason, limit, message)`` of the first problem of ``order``
    or None. ``spec``: the instrument's grid, if known; ``places``: check that amounts
    have at most 10 decimal places (not needed on a grid that has at most 10)."""
    side = order.side
    if side != "buy" and side != "sell":
        return Reason.INVALID_ORDER, "side", f"side must be buy or sell, not {side!r}"
    account, symbol, cid = order.account, order.symbol, order.client_order_id
    if type(account) is not str or not 0 < len(account) <= 64:
        return Reason.INVALID_ORDER, "account", "account must be 1 to 64 characters"
    if type(symbol) is not str or not 0 < len(symbol) <= 64:
        return Reason.INVALID_ORDER, "symbol", "symbol must be 1 to 64 characters"
    if type(cid) is not str or not 0 < len(cid) <= 64:
        return (
            Reason.INVALID_ORDER,
            "client_order_id",
            "client_order_id must be 1 to 64 characters",
        )
    algo = order.algo_id
    if type(algo) is not str or len(algo) > 64 or (parent and not algo):
        return (
            Reason.INVALID_ORDER,
            "algo_id",
            "algo_id must be a string (a parent's is required)",
        )
    price, order_type = order.price, order.order_type
    if order_type == "limit":
        if price is None:
            return Reason.INVALID_ORDER, "price", "a limit order needs a price"
    elif order_type != "market":
        return (
            Reason.INVALID_ORDER,
            "order_type",
            f"order type must be limit or market, not {order_type!r}",
        )
    elif price is not None:
        return Reason.INVALID_ORDER, "price", "a market order takes no price"
    qty = order.qty
    problem = amount_problem(qty, "qty", places)
    if problem is not None:
        return Reason.INVALID_QTY, "qty", problem
    if spec is not None and qty % spec.lot_size:
        return Reason.INVALID_QTY, "lot_size", f"qty {qty} is not a multiple of {spec.lot_size}"
    if price is not None:
        problem = amount_problem(price, "price", places)
        if problem is not None:
            return Reason.INVALID_PRICE, "price", problem
        if spec is not None and price % spec.tick_size:
            return (
                Reason.INVALID_PRICE,
                "tick_size",
                f"price {price} is off the tick {spec.tick_size}",
            )
    return None


def amount_problem(value: object, what: str, places: bool = True) -> str | None:
    """What is wrong with a quantity or price; ``places``: also check the decimal places
    (not needed on an instrument's grid of at most 10 places)."""
    if type(value) is not Decimal:
        return f"{what} must be a decimal number, not {value!r}"
    if not value.is_finite():
        return f"{what} must be finite, not {value}"
    if value <= 0:
        return f"{what} must be positive, not {value}"
    if value >= _MAX:
        return f"{what} {value} is absurd (>= {_MAX:.0e})"
    if places and value.quantize(_QUANTUM) != value:
        return f"{what} {value} has more than 10 decimal places"
    return None


def places_of(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) else 99


def fine_grid(spec: InstrumentSpec) -> bool:
    """Whether the instrument's tick and lot have at most 10 decimal places (so amounts
    on its grid have too)."""
    return places_of(spec.tick_size) <= 10 and places_of(spec.lot_size) <= 10

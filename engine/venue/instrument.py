"""What a book trades and what it refuses: the instrument spec, the reason codes, and the
checks of an order's fields.

- :class:`InstrumentSpec` — ``tick_size`` and ``lot_size`` and the *checked* Decimal →
  ticks/lots conversions a gateway runs on protocol requests before it calls the book
  (``price_off_tick``, ``qty_off_lot``, ``price_not_finite`` …), plus the way back;
- :class:`Reason` — every reason code the book puts in a rejection or a cancel;
- :class:`DecimalCache` — ticks/lots → Decimal, memoized, so event emission stays cheap;
- :func:`new_order_problem`, :func:`restored_order_problem` — the checks of the book's
  integer inputs.
"""

from __future__ import annotations

from decimal import Decimal, DecimalException
from typing import TYPE_CHECKING, Literal

import msgspec

from engine.errors import ConfigError

if TYPE_CHECKING:
    from engine.venue.levels import OrderState

MAX_TICKS = 1 << 62
"""Largest price in ticks (and quantity in lots) the book takes; beyond is out of range."""

TIFS = frozenset(("day", "gtc", "ioc", "fok"))


class Reason:
    """Reason codes of the book's rejections (``OrderRejected.reason``) and cancels
    (``OrderCancelled.reason``). Stable: they are part of the wire contract."""

    # rejections of a new order, a replace or a cancel (nothing changed)
    HALTED = "halted"
    UNKNOWN_SYMBOL = "unknown_symbol"  # the venue (gateway/service) does not trade it
    ACCOUNT_REQUIRED = "account_required"
    CLIENT_ORDER_ID_REQUIRED = "client_order_id_required"
    DUPLICATE_CLIENT_ORDER_ID = "duplicate_client_order_id"
    DUPLICATE_VENUE_ORDER_ID = "duplicate_venue_order_id"  # restore only
    SIDE_INVALID = "side_invalid"
    ORDER_TYPE_INVALID = "order_type_invalid"
    TIF_INVALID = "tif_invalid"
    QTY_NOT_INTEGER = "qty_not_integer"
    QTY_NOT_FINITE = "qty_not_finite"
    QTY_NOT_POSITIVE = "qty_not_positive"
    QTY_OFF_LOT = "qty_off_lot"
    QTY_OUT_OF_RANGE = "qty_out_of_range"
    QTY_BELOW_FILLED = "qty_below_filled"
    PRICE_REQUIRED = "price_required"
    PRICE_NOT_ALLOWED = "price_not_allowed"
    PRICE_NOT_INTEGER = "price_not_integer"
    PRICE_NOT_FINITE = "price_not_finite"
    PRICE_NOT_POSITIVE = "price_not_positive"
    PRICE_OFF_TICK = "price_off_tick"
    PRICE_OUT_OF_RANGE = "price_out_of_range"
    UNKNOWN_ORDER = "unknown_order"
    ORDER_DONE = "order_done"
    WOULD_CROSS = "would_cross"  # restore only
    # why an order (or its remainder) left the book without trading
    REQUESTED = "requested"
    IOC_REMAINDER = "ioc_remainder"
    FOK_UNFILLED = "fok_unfilled"
    SELF_MATCH = "self_match"
    NO_LIQUIDITY = "no_liquidity"
    EXPIRED = "expired"


class InstrumentSpec(msgspec.Struct, frozen=True):
    """What the book trades: its symbol, price increment and quantity increment.

    The ``*_ticks``/``*_lots`` methods never raise: they return ``(value, "")`` or
    ``(0, reason)`` with a :class:`Reason` code, so a gateway turns a bad protocol
    request into an ``OrderRejected`` before it reaches the book.
    """

    symbol: str
    tick_size: Decimal
    """Smallest price increment; a price is ``ticks * tick_size``."""
    lot_size: Decimal
    """Smallest quantity increment; a quantity is ``lots * lot_size``."""

    def __post_init__(self) -> None:
        for name in ("tick_size", "lot_size"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
                raise ConfigError(
                    f"instrument.{self.symbol}.{name}", f"must be a positive Decimal, got {value!r}"
                )

    def price_ticks(self, price: Decimal | None) -> tuple[int, str]:
        """``price`` in ticks, or a reason: ``price_required``, ``price_not_finite``,
        ``price_not_positive``, ``price_off_tick``, ``price_out_of_range``."""
        if price is None:
            return 0, Reason.PRICE_REQUIRED
        return _units(price, self.tick_size, "price")

    def qty_lots(self, qty: Decimal) -> tuple[int, str]:
        """``qty`` in lots, or a reason: ``qty_not_finite``, ``qty_not_positive``,
        ``qty_off_lot``, ``qty_out_of_range``."""
        return _units(qty, self.lot_size, "qty")

    def price_of(self, ticks: int) -> Decimal:
        """The Decimal price of ``ticks`` (exponent of ``tick_size``: 10000 → ``100.00``)."""
        return self.tick_size * ticks

    def qty_of(self, lots: int) -> Decimal:
        """The Decimal quantity of ``lots``."""
        return self.lot_size * lots


_OFF_GRID = {"price": Reason.PRICE_OFF_TICK, "qty": Reason.QTY_OFF_LOT}


def _units(value: object, unit: Decimal, what: str) -> tuple[int, str]:
    """``value / unit`` as an exact positive int, or ``(0, "<what>_<problem>")``."""
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (DecimalException, ValueError, TypeError):
        return 0, f"{what}_not_finite"
    if not number.is_finite():
        return 0, f"{what}_not_finite"
    if number <= 0:
        return 0, f"{what}_not_positive"
    try:
        units, rest = divmod(number, unit)
    except DecimalException:  # the quotient has more digits than the context allows
        return 0, f"{what}_out_of_range"
    if rest:
        return 0, _OFF_GRID[what]
    count = int(units)
    if count > MAX_TICKS:
        return 0, f"{what}_out_of_range"
    return count, ""


class DecimalCache:
    """``cache[n] == unit * n``, computed once per ``n`` — a dict lookup instead of a
    Decimal multiplication.

    ``values`` is a plain dict the hot paths index directly (in CPython 3.11 a lookup in
    a dict *subclass* with ``__missing__`` costs about twice as much); a miss there
    raises ``KeyError``, and they fall back to ``cache[n]``, which computes and keeps the
    value. At ``limit`` values the cache starts over (so it stays bounded)."""

    __slots__ = ("limit", "unit", "values")

    def __init__(self, unit: Decimal, limit: int = 1 << 16) -> None:
        self.unit = unit
        self.limit = limit
        self.values: dict[int, Decimal] = {}

    def __getitem__(self, n: int) -> Decimal:
        try:
            return self.values[n]
        except KeyError:
            values = self.values
            if len(values) >= self.limit:
                values.clear()
            value = values[n] = self.unit * n
            return value


def int_problem(value: object, what: Literal["qty", "price"]) -> str:
    """Reason code when ``value`` is not a positive ``int`` of lots/ticks, else ""."""
    if type(value) is not int:
        if value is None:
            return Reason.PRICE_REQUIRED if what == "price" else Reason.QTY_NOT_INTEGER
        if isinstance(value, float | Decimal) and not _finite(value):
            return f"{what}_not_finite"
        return f"{what}_not_integer"
    if value <= 0:
        return f"{what}_not_positive"
    if value > MAX_TICKS:
        return f"{what}_out_of_range"
    return ""


def _finite(value: float | Decimal) -> bool:
    return value.is_finite() if isinstance(value, Decimal) else value - value == 0


def new_order_problem(
    account: str,
    client_order_id: str,
    side: object,
    order_type: object,
    tif: object,
    qty: object,
    price: object,
) -> tuple[str, str]:
    """The first thing wrong with a new order's fields, as (reason, message)."""
    if not account:
        return Reason.ACCOUNT_REQUIRED, "no account"
    if not client_order_id:
        return Reason.CLIENT_ORDER_ID_REQUIRED, "no client_order_id"
    if side not in ("buy", "sell"):
        return Reason.SIDE_INVALID, f"side {side!r} is not buy or sell"
    if order_type not in ("limit", "market"):
        return Reason.ORDER_TYPE_INVALID, f"order type {order_type!r} is not limit or market"
    if tif not in TIFS:
        return Reason.TIF_INVALID, f"time in force {tif!r} is not day, gtc, ioc or fok"
    problem = int_problem(qty, "qty")
    if problem:
        return problem, f"qty {qty!r} is not a positive number of lots"
    if order_type == "market":
        if price is not None:
            return Reason.PRICE_NOT_ALLOWED, "a market order has no price"
        return "", ""
    problem = int_problem(price, "price")
    if problem:
        return problem, f"price {price!r} is not a positive number of ticks"
    return "", ""


def restored_order_problem(state: OrderState) -> str:
    """The reason code of the first thing wrong with the fields of an order to restore
    (a resting limit day/gtc order, partly filled at most), else ""."""
    if not state.account:
        return Reason.ACCOUNT_REQUIRED
    if not state.client_order_id or not state.venue_order_id:
        return Reason.CLIENT_ORDER_ID_REQUIRED
    if state.side not in ("buy", "sell"):
        return Reason.SIDE_INVALID
    if state.order_type != "limit" or state.tif not in ("day", "gtc"):
        return Reason.TIF_INVALID
    problem = int_problem(state.qty, "qty") or int_problem(state.price, "price")
    if problem:
        return problem
    if type(state.cum_qty) is not int or not 0 <= state.cum_qty < state.qty:
        return Reason.QTY_BELOW_FILLED
    return ""

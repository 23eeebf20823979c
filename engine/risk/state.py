"""What the gate knows between checks: compiled limits, exposure, P&L, plans, halts.

Plain ``__slots__`` classes (the check path reads them on every order). All arithmetic
on their Decimals runs in the gate's wide context (see :mod:`engine.risk.gate`), so sums
of ledger-sized values are exact.

Exposure of an account in a symbol, counting working orders: long exposure =
position + working buys, short exposure = working sells - position; the symbol's
exposure is the larger of the two (never negative), its notional that times the
symbol's valuation price (last mark or fill). Gross notional is the sum over symbols.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from decimal import Decimal

import msgspec

from engine.bus.events import RiskState, Side
from engine.orders.positions import Position
from engine.risk.decision import HaltScope
from engine.risk.profile import RiskProfile
from engine.risk.window import NS, RateWindow, RecentKeys, RollingSum

ZERO = Decimal(0)
HUNDRED = Decimal(100)
DAY_NS = 86_400 * NS
TradingState = RiskState


def _dec(value: float) -> Decimal:
    return Decimal(repr(value))


def _warn(limit: Decimal | None, level: Decimal) -> Decimal | None:
    return None if limit is None else limit * level


class Limits:
    """A profile compiled for the check path: Decimals and warning thresholds."""

    __slots__ = (
        "collar",
        "collar_warn",
        "dup_all",
        "dup_ns",
        "fill_factor",
        "gross",
        "gross_warn",
        "level",
        "loss",
        "loss_halted",
        "loss_reducing",
        "loss_warn",
        "open_algo",
        "open_symbol",
        "order_notional",
        "order_notional_warn",
        "order_qty",
        "order_qty_warn",
        "parent_notional",
        "parent_notional_warn",
        "parent_qty",
        "parent_qty_warn",
        "participation",
        "participation_warn",
        "pos_notional",
        "pos_notional_warn",
        "pos_qty",
        "pos_qty_warn",
        "profile",
        "ref_age_ns",
        "runaway_ns",
        "submit_factor",
        "version",
    )

    def __init__(self, p: RiskProfile) -> None:
        self.profile = p
        self.version = p.version
        level = self.level = _dec(p.warning_level)
        self.order_qty, self.order_qty_warn = p.max_order_qty, _warn(p.max_order_qty, level)
        self.order_notional = p.max_order_notional
        self.order_notional_warn = _warn(p.max_order_notional, level)
        self.parent_qty, self.parent_qty_warn = p.max_parent_qty, _warn(p.max_parent_qty, level)
        self.parent_notional = p.max_parent_notional
        self.parent_notional_warn = _warn(p.max_parent_notional, level)
        self.pos_qty, self.pos_qty_warn = p.max_position_qty, _warn(p.max_position_qty, level)
        self.pos_notional = p.max_position_notional
        self.pos_notional_warn = _warn(p.max_position_notional, level)
        self.gross, self.gross_warn = p.max_gross_notional, _warn(p.max_gross_notional, level)
        self.loss = p.daily_loss_limit
        self.loss_warn = _warn(p.daily_loss_limit, level)
        self.loss_reducing = _warn(p.daily_loss_limit, _dec(p.reducing_at))
        self.loss_halted = _warn(p.daily_loss_limit, _dec(p.halted_at))
        self.participation = None if p.max_participation is None else _dec(p.max_participation)
        self.participation_warn = _warn(self.participation, level)
        self.collar = None if p.price_collar_pct is None else _dec(p.price_collar_pct)
        self.collar_warn = _warn(self.collar, level)
        self.ref_age_ns = int(p.max_reference_age_s * NS)
        window = p.duplicate_window_s
        self.dup_ns = None if window is None else max(1, int(window * NS))
        self.dup_all = p.duplicate_scope == "all"
        self.open_symbol = p.max_open_orders_per_symbol
        self.open_algo = p.max_open_orders_per_algo
        self.runaway_ns = int(p.runaway_window_s * NS)
        self.submit_factor = (
            None if p.runaway_submit_factor is None else _dec(p.runaway_submit_factor)
        )
        self.fill_factor = None if p.runaway_fill_factor is None else _dec(p.runaway_fill_factor)


class Working:
    """One working order as the gate tracks it."""

    __slots__ = (
        "account",
        "algo_id",
        "client_order_id",
        "filled",
        "price",
        "qty",
        "side",
        "symbol",
    )

    def __init__(
        self,
        account: str,
        symbol: str,
        client_order_id: str,
        side: Side,
        qty: Decimal,
        price: Decimal | None,
        algo_id: str,
    ) -> None:
        self.account = account
        self.symbol = symbol
        self.client_order_id = client_order_id
        self.side = side
        self.qty = qty
        self.filled = ZERO
        self.price = price
        self.algo_id = algo_id

    @property
    def leaves(self) -> Decimal:
        return max(self.qty - self.filled, ZERO)


class SymbolExposure:
    """An account's position, working quantities and their valuation in one symbol."""

    __slots__ = (
        "asks",
        "bids",
        "buys",
        "notional",
        "orders",
        "position",
        "qty",
        "sells",
        "unrealized",
    )

    def __init__(self, account: str, symbol: str) -> None:
        self.position = Position(account=account, symbol=symbol)
        self.qty = ZERO
        """Net position (``position.qty``)."""
        self.buys = ZERO
        self.sells = ZERO
        self.orders: dict[str, Working] = {}
        """Working orders by client_order_id."""
        self.bids: list[Decimal] = []
        """Limit prices of the working buys, ascending (the best is last)."""
        self.asks: list[Decimal] = []
        """Limit prices of the working sells, ascending (the best is first)."""
        self.unrealized = ZERO
        self.notional = ZERO
        """Exposure notional at the last valuation."""

    def exposure(self) -> Decimal:
        return max(self.qty + self.buys, self.sells - self.qty, ZERO)

    def add_order(self, w: Working) -> None:
        self.orders[w.client_order_id] = w
        if w.price is not None:
            insort(self.bids if w.side == "buy" else self.asks, w.price)

    def remove_order(self, w: Working) -> None:
        self.orders.pop(w.client_order_id, None)
        if w.price is not None:
            prices = self.bids if w.side == "buy" else self.asks
            at = bisect_left(prices, w.price)
            if at < len(prices) and prices[at] == w.price:
                del prices[at]

    def best_price(self, side: str) -> Decimal | None:
        """The highest working buy or the lowest working sell limit price."""
        if side == "buy":
            return self.bids[-1] if self.bids else None
        return self.asks[0] if self.asks else None


#: Read-only stand-in for a symbol the account never touched.
NO_EXPOSURE = SymbolExposure("", "")


class AccountState:
    """Everything the gate tracks for one account."""

    __slots__ = (
        "account",
        "algo_rates",
        "allowed",
        "day",
        "day_base",
        "gross",
        "limits",
        "loss_state",
        "rate",
        "realized",
        "recent",
        "symbols",
        "unrealized",
    )

    def __init__(self, account: str) -> None:
        self.account = account
        self.limits: Limits | None = None
        self.allowed: object = None
        """The cached allowed decision of this profile version (no warnings)."""
        self.symbols: dict[str, SymbolExposure] = {}
        self.gross = ZERO
        self.realized = ZERO
        self.unrealized = ZERO
        self.day = -1
        """UTC day number (ns // DAY_NS) the day's P&L counts from; -1 before any event."""
        self.day_base = ZERO
        """Total P&L (realized + unrealized) when the day started."""
        self.loss_state: TradingState = "ACTIVE"
        self.rate: RateWindow | None = None
        self.algo_rates: dict[str, RateWindow] = {}
        self.recent = RecentKeys()

    def set_profile(self, profile: RiskProfile) -> None:
        old = self.limits
        self.limits = Limits(profile)
        self.allowed = None
        rate = profile.max_orders_per_s
        if rate is None:
            self.rate = None
        elif self.rate is None or self.rate.rate != rate:
            self.rate = RateWindow(rate)
        if old is None or old.profile.max_algo_orders_per_s != profile.max_algo_orders_per_s:
            self.algo_rates.clear()

    def symbol(self, symbol: str) -> SymbolExposure:
        sx = self.symbols.get(symbol)
        if sx is None:
            sx = self.symbols[symbol] = SymbolExposure(self.account, symbol)
        return sx

    def algo_rate(self, algo_id: str) -> RateWindow | None:
        limits = self.limits
        rate = None if limits is None else limits.profile.max_algo_orders_per_s
        if rate is None:
            return None
        window = self.algo_rates.get(algo_id)
        if window is None:
            window = self.algo_rates[algo_id] = RateWindow(rate)
        return window

    @property
    def total_pnl(self) -> Decimal:
        return self.realized + self.unrealized

    @property
    def day_pnl(self) -> Decimal:
        return self.realized + self.unrealized - self.day_base

    def revalue(self, sx: SymbolExposure, price: Decimal) -> None:
        """Value ``sx`` at ``price``: unrealized P&L and exposure notional."""
        unrealized = price * sx.qty - sx.position.cost
        self.unrealized += unrealized - sx.unrealized
        sx.unrealized = unrealized
        notional = sx.exposure() * price
        self.gross += notional - sx.notional
        sx.notional = notional


class Plan:
    """An algorithm's parent order: what it may do and what it did within the window."""

    __slots__ = ("account", "algo_id", "filled", "qty", "submitted", "symbol")

    def __init__(self, account: str, algo_id: str, symbol: str, qty: Decimal, window_ns: int):
        self.account = account
        self.algo_id = algo_id
        self.symbol = symbol
        self.qty = qty
        self.submitted = RollingSum(window_ns)
        self.filled = RollingSum(window_ns)


class HaltRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A halted scope (kill switch) or a disabled algorithm (runaway)."""

    scope: HaltScope
    key: str = ""
    actor: str
    reason: str
    since_ns: int


def day_of(ts_ns: int) -> int:
    return ts_ns // DAY_NS


def finite_positive(value: object) -> bool:
    return isinstance(value, Decimal) and value.is_finite() and value > 0


def as_decimal(value: object) -> Decimal | None:
    """A finite positive Decimal from a Decimal, int or finite float; else None."""
    if isinstance(value, Decimal):
        return value if value.is_finite() and value > 0 else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value) if value > 0 else None
    if isinstance(value, float) and math.isfinite(value) and value > 0:
        return Decimal(repr(value))
    return None

"""The risk profile of one account: every pre-trade limit the gate applies to it.

``None`` means "no limit" for that check (as in the ``risk_profiles`` table); an account
*without* a profile trades nothing (``no_risk_profile``) unless the gate was given a
default profile on purpose. :data:`DEFAULT_PROFILE` holds the documented defaults.

Validation runs on construction (also when decoded with ``msgspec``) and raises
:class:`RiskProfileError` naming the account and the field, e.g.
``"risk profile acme: price_collar_pct must be > 0 and <= 100, not 150.0"``.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, Literal

import msgspec

from engine.errors import QSuiteError

#: Quantities and money the ledger can store: fewer than 18 integer digits, at most 10
#: decimal places (``Numeric(28, 10)``). Larger values are refused as absurd.
INTEGER_DIGITS = 18
SCALE = 10

DuplicateScope = Literal["manual", "all"]

_DECIMAL_LIMITS = (
    "max_order_qty",
    "max_order_notional",
    "max_parent_qty",
    "max_parent_notional",
    "max_position_qty",
    "max_position_notional",
    "max_gross_notional",
    "daily_loss_limit",
)
_POSITIVE_FLOATS = (
    "max_orders_per_s",
    "max_algo_orders_per_s",
    "duplicate_window_s",
)
_COUNTS = ("max_open_orders_per_symbol", "max_open_orders_per_algo")


class RiskProfileError(QSuiteError):
    """An invalid risk profile; ``field`` names the offending field.

    Deliberately not a ``ValueError``: msgspec passes it through unchanged when a profile
    is decoded, so the field name always reaches the operator."""

    def __init__(self, account: str, field: str, message: str) -> None:
        self.account = account
        self.field = field
        super().__init__(f"risk profile {account or '?'}: {field} {message}")


class RiskProfile(msgspec.Struct, frozen=True, kw_only=True):
    """Pre-trade limits of one account (see the module docstring; ``None`` = no limit).

    Quantities and money are ``Decimal``; ratios, rates and durations are ``float``.
    """

    account: str
    """The account these limits apply to (1 to 32 characters)."""
    version: int = 1
    """Edit counter of the stored profile; decisions cite it."""

    max_order_qty: Decimal | None = None
    """Largest quantity of one order (manual orders and algorithms' child orders)."""
    max_order_notional: Decimal | None = None
    """Largest ``qty * price`` of one order (a market order is valued at the reference)."""
    max_parent_qty: Decimal | None = None
    """Largest quantity of an algorithm's parent order (checked by ``check_parent``)."""
    max_parent_notional: Decimal | None = None
    """Largest notional of an algorithm's parent order."""

    max_position_qty: Decimal | None = None
    """Largest exposure in one symbol, in units, counting working orders: long exposure
    is position + working buys (+ the order), short exposure is working sells - position."""
    max_position_notional: Decimal | None = None
    """Largest exposure in one symbol valued at the symbol's last mark (or fill)."""
    max_gross_notional: Decimal | None = None
    """Largest sum over all symbols of the account's exposure notional."""

    daily_loss_limit: Decimal | None = None
    """Positive amount: the day's P&L (realized + unrealized, from UTC midnight) may fall
    to its negative. The account's state follows the loss: see ``reducing_at``."""
    reducing_at: float = 0.8
    """Share of ``daily_loss_limit`` lost at which the account turns REDUCING (only
    risk-reducing orders pass); in (0, ``halted_at``]."""
    halted_at: float = 1.0
    """Share lost at which it turns HALTED (risk-increasing orders denied, working ones
    cancelled); in (0, 1]. Both states hold for the rest of the day, or until resumed."""

    max_participation: float | None = None
    """Largest child order of an algorithm as a share of the symbol's market volume over
    the gate's participation window (0.1 is 10 %); in (0, 1]. No volume seen → denied."""

    price_collar_pct: float | None = None
    """Fat-finger check: a limit price may be at most this many percent away from the
    symbol's reference price (inclusive); in (0, 100]. With a collar, an order needs a
    reference no older than ``max_reference_age_s``."""
    max_reference_age_s: float = 60.0
    """Oldest usable reference price, seconds; older → denied ``stale_reference``."""

    max_orders_per_s: float | None = None
    """Submits and modifies per second of the account (cancels are never limited)."""
    max_algo_orders_per_s: float | None = None
    """Submits and modifies per second of each algorithm of the account."""

    max_open_orders_per_symbol: int | None = None
    """Largest number of working orders of the account in one symbol."""
    max_open_orders_per_algo: int | None = None
    """Largest number of working orders of one algorithm."""

    duplicate_window_s: float | None = None
    """An order with the same symbol, side, quantity and price as one sent within this
    many seconds is denied ``duplicate_order``."""
    duplicate_scope: DuplicateScope = "manual"
    """``manual``: only orders without ``algo_id`` (slicing algorithms legitimately repeat
    child orders); ``all``: every order."""

    runaway_window_s: float = 60.0
    """Window of the runaway check, seconds."""
    runaway_submit_factor: float | None = 3.0
    """An algorithm whose child orders submitted within the window would exceed this many
    times its planned quantity is disabled until a human re-enables it; >= 1."""
    runaway_fill_factor: float | None = 1.0
    """…and likewise when its fills within the window exceed this many times the plan."""

    warning_level: float = 0.8
    """Usage of a limit (observed / limit) from which the decision carries a near-breach
    warning and a ``warning`` alert is raised; in (0, 1)."""

    def __post_init__(self) -> None:
        _validate(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields (Decimals as strings)."""
        return msgspec.to_builtins(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RiskProfile:
        """A validated profile from JSON-able data (strings or numbers for Decimals);
        raises :class:`RiskProfileError`."""
        account = str(data.get("account", ""))
        try:
            return msgspec.convert(data, cls, strict=False)
        except msgspec.ValidationError as exc:
            field = _field_of(str(exc))
            raise RiskProfileError(account, field, f"is not valid: {exc}") from None


def _field_of(message: str) -> str:
    # msgspec: "Expected `decimal`, got `str` - at `$.max_order_qty`"
    marker = "at `$."
    if marker in message:
        return message.split(marker, 1)[1].split("`", 1)[0].split("[", 1)[0]
    return "?"


def _validate(p: RiskProfile) -> None:
    account = p.account
    if not isinstance(account, str) or not 1 <= len(account) <= 32:
        raise RiskProfileError(str(account), "account", "must be 1 to 32 characters")

    def bad(field: str, message: str) -> RiskProfileError:
        return RiskProfileError(account, field, message)

    if type(p.version) is not int or p.version < 1:
        raise bad("version", f"must be an integer >= 1, not {p.version!r}")
    for name in _DECIMAL_LIMITS:
        value = getattr(p, name)
        if value is None:
            continue
        if not isinstance(value, Decimal) or not value.is_finite():
            raise bad(name, f"must be a finite decimal or None, not {value!r}")
        if value <= 0:
            raise bad(name, f"must be > 0 (None for no limit), not {value}")
        if value.adjusted() >= INTEGER_DIGITS:
            raise bad(name, f"must be below 1e{INTEGER_DIGITS}, not {value}")
    for name in _POSITIVE_FLOATS:
        value = getattr(p, name)
        if value is not None and not (_finite(value) and value > 0):
            raise bad(name, f"must be > 0 (None for no limit), not {value!r}")
    for name in _COUNTS:
        value = getattr(p, name)
        if value is not None and (type(value) is not int or value < 1):
            raise bad(name, f"must be an integer >= 1 (None for no limit), not {value!r}")
    if not (_finite(p.halted_at) and 0 < p.halted_at <= 1):
        raise bad("halted_at", f"must be > 0 and <= 1, not {p.halted_at!r}")
    if not (_finite(p.reducing_at) and 0 < p.reducing_at <= p.halted_at):
        raise bad(
            "reducing_at", f"must be > 0 and <= halted_at ({p.halted_at}), not {p.reducing_at!r}"
        )
    if p.max_participation is not None and not (
        _finite(p.max_participation) and 0 < p.max_participation <= 1
    ):
        raise bad("max_participation", f"must be > 0 and <= 1, not {p.max_participation!r}")
    if p.price_collar_pct is not None and not (
        _finite(p.price_collar_pct) and 0 < p.price_collar_pct <= 100
    ):
        raise bad("price_collar_pct", f"must be > 0 and <= 100, not {p.price_collar_pct!r}")
    for name in ("max_reference_age_s", "runaway_window_s"):
        value = getattr(p, name)
        if not (_finite(value) and value > 0):
            raise bad(name, f"must be > 0 seconds, not {value!r}")
    for name in ("runaway_submit_factor", "runaway_fill_factor"):
        value = getattr(p, name)
        if value is not None and not (_finite(value) and value >= 1):
            raise bad(name, f"must be >= 1 (None for no check), not {value!r}")
    if not (_finite(p.warning_level) and 0 < p.warning_level < 1):
        raise bad("warning_level", f"must be > 0 and < 1, not {p.warning_level!r}")
    if p.duplicate_scope not in ("manual", "all"):
        raise bad("duplicate_scope", f"must be 'manual' or 'all', not {p.duplicate_scope!r}")


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


#: Sensible defaults for a single-trader desk on the simulated venue; used only where the
#: gate (or the store) is *configured* to fall back to them — a missing profile otherwise
#: denies every order of the account (``no_risk_profile``). Per order: 10,000 units and
#: 1,000,000 notional (parents: 100,000 and 10,000,000); per symbol 50,000 units and
#: 5,000,000 notional, 20,000,000 gross; a daily loss of 100,000 turns the account
#: REDUCING at 80 % and HALTED at 100 %; algorithms take at most 10 % of market volume;
#: limit prices within 5 % of a reference at most 60 s old; 20 orders/s per account and
#: 10/s per algorithm; 50 working orders per symbol and 100 per algorithm; the same manual
#: order twice within 2 s is a duplicate; an algorithm submitting more than 3x (filling
#: more than 1x) its plan within 60 s is disabled; warnings from 80 % of a limit.
DEFAULT_PROFILE = RiskProfile(
    account="default",
    max_order_qty=Decimal(10_000),
    max_order_notional=Decimal(1_000_000),
    max_parent_qty=Decimal(100_000),
    max_parent_notional=Decimal(10_000_000),
    max_position_qty=Decimal(50_000),
    max_position_notional=Decimal(5_000_000),
    max_gross_notional=Decimal(20_000_000),
    daily_loss_limit=Decimal(100_000),
    reducing_at=0.8,
    halted_at=1.0,
    max_participation=0.10,
    price_collar_pct=5.0,
    max_reference_age_s=60.0,
    max_orders_per_s=20.0,
    max_algo_orders_per_s=10.0,
    max_open_orders_per_symbol=50,
    max_open_orders_per_algo=100,
    duplicate_window_s=2.0,
    duplicate_scope="manual",
    runaway_window_s=60.0,
    runaway_submit_factor=3.0,
    runaway_fill_factor=1.0,
    warning_level=0.8,
)


def for_account(profile: RiskProfile, account: str) -> RiskProfile:
    """``profile`` (e.g. :data:`DEFAULT_PROFILE`) applied to ``account``."""
    return msgspec.structs.replace(profile, account=account)

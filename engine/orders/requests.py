"""Operator commands → order-entry requests: input checks and deterministic request ids.

Every check raises :class:`~engine.errors.CommandError` with ``ErrorCode.INVALID`` and a
sentence an operator can act on; nothing is recorded or sent for a refused command.

Ids (at most 64 characters, what the venue and the ledger's columns take):

- a new order: the caller's ``client_order_id``, else ``man-<command_id>`` — the same
  command retried makes the same id, and the ledger records an id once;
- a cancel: ``<order id>-c<n>``, ``n`` counting this process's cancels of the order (the
  venue does not require cancel ids to be unique; they name the request in reports);
- a replace: ``<root>-r<n+1>`` where the order's id is ``<root>-r<n>`` (else
  ``<id>-r1``): the order's id once replaced, so it is new for every replace the venue
  took, also after a restart of this process.

An id that would be longer than 64 characters keeps its start and gets 8 hex digits of a
hash of the whole in place of the rest, before the suffix.
"""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal

from engine.bus.commands.orders import SubmitOrder
from engine.errors import CommandError, ErrorCode
from engine.orders.lifecycle import OrderState, new_order
from engine.persistence.decimals import plain_decimal

MAX_ID = 64
ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,31}$")
"""Client accounts; the venue's internal ones start with ``_`` and are refused."""
SYMBOL = re.compile(r"^[A-Za-z0-9.\-=^_]{1,32}$")
CLIENT_ORDER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")
SCALE = 10
"""Decimal places the ledger stores (``Numeric(28, 10)``)."""
INTEGER_DIGITS = 18
_REPLACED = re.compile(r"^(.*)-r(\d+)$")


def invalid(message: str) -> CommandError:
    return CommandError(ErrorCode.INVALID, message)


def check_amount(value: object, what: str) -> Decimal:
    """``value`` as a positive, finite decimal the ledger can store exactly."""
    if not isinstance(value, Decimal):
        raise invalid(f"{what} must be a decimal number, not {value!r}")
    if not value.is_finite():
        raise invalid(f"{what} must be a finite number, not {value}")
    if value <= 0:
        raise invalid(f"{what} must be positive, not {value}")
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > SCALE:
        raise invalid(f"{what} {value} has more than {SCALE} decimal places")
    if normal.adjusted() >= INTEGER_DIGITS:
        raise invalid(f"{what} {value} is too large")
    return value


def check_account(account: str) -> None:
    if not ACCOUNT.match(account):
        raise invalid(
            f"account {account!r} is not valid: 1 to 32 letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )


def check_symbol(symbol: str) -> None:
    if not SYMBOL.match(symbol):
        raise invalid(
            f"symbol {symbol!r} is not valid: 1 to 32 letters, digits or . - = ^ _ "
            "(e.g. AAPL, BP.L)"
        )


def check_grid(
    symbol: str,
    qty: Decimal,
    price: Decimal | None,
    spec: tuple[Decimal, Decimal] | None,
    venue: str,
) -> None:
    """Refuse (``invalid``) what the venue would: a symbol it does not trade (``spec``
    None), a quantity off its lot, a price off its tick (``spec`` is (tick, lot))."""
    if spec is None:
        raise invalid(
            f"{symbol} is not traded on {venue}: the feed has not quoted it and no operator "
            f"added it (`qsuite ctl instrument {symbol}`)"
        )
    tick, lot = spec
    if qty % lot:
        raise invalid(f"qty {plain_decimal(qty)} is not a multiple of {symbol}'s lot {lot}")
    if price is not None and price % tick:
        raise invalid(f"price {plain_decimal(price)} is not on {symbol}'s tick {tick}")


def order_of(cmd: SubmitOrder, client_order_id: str, *, ts: int) -> OrderState:
    """The ``pending_new`` order a :class:`SubmitOrder` asks for, checked."""
    check_account(cmd.account)
    check_symbol(cmd.symbol)
    if not CLIENT_ORDER_ID.match(client_order_id):
        raise invalid(
            f"client_order_id {client_order_id!r} is not valid: 1 to 64 letters, digits "
            "or _ . : -, starting with a letter or digit"
        )
    if cmd.side not in ("buy", "sell"):
        raise invalid(f"side must be buy or sell, not {cmd.side!r}")
    if cmd.order_type not in ("limit", "market"):
        raise invalid(f"order type must be limit or market, not {cmd.order_type!r}")
    if cmd.tif not in ("day", "gtc", "ioc", "fok"):
        raise invalid(f"time in force must be day, gtc, ioc or fok, not {cmd.tif!r}")
    qty = check_amount(cmd.qty, "qty")
    if cmd.order_type == "limit":
        if cmd.price is None:
            raise invalid("a limit order needs a price (--price), or use --type market")
        price: Decimal | None = check_amount(cmd.price, "price")
    else:
        if cmd.price is not None:
            raise invalid("a market order takes no price: drop --price, or use --type limit")
        price = None
    return new_order(
        client_order_id,
        account=cmd.account,
        symbol=cmd.symbol,
        side=cmd.side,
        qty=qty,
        price=price,
        order_type=cmd.order_type,
        tif=cmd.tif,
        ts=ts,
    )


def same_order(a: OrderState, b: OrderState) -> bool:
    """Whether two orders ask for the same thing (a retried submit, not a reused id)."""
    fields = ("account", "symbol", "side", "order_type", "tif", "qty", "price")
    return all(getattr(a, f) == getattr(b, f) for f in fields)


def default_client_order_id(command_id: str) -> str:
    if not command_id:
        raise invalid("give the order a client_order_id (--id) or the command a command_id")
    return f"man-{command_id}"[:MAX_ID]


def cancel_id(client_order_id: str, n: int) -> str:
    return with_suffix(client_order_id, f"-c{n}")


def replace_id(client_order_id: str) -> str:
    match = _REPLACED.match(client_order_id)
    if match is None:
        return with_suffix(client_order_id, "-r1")
    return with_suffix(match.group(1), f"-r{int(match.group(2)) + 1}")


def with_suffix(base: str, suffix: str) -> str:
    if len(base) + len(suffix) <= MAX_ID:
        return base + suffix
    digest = hashlib.blake2b(base.encode(), digest_size=4).hexdigest()
    return f"{base[: MAX_ID - len(suffix) - len(digest) - 1]}.{digest}{suffix}"

"""The compliance-rule interface (version :data:`INTERFACE_VERSION`).

A compliance rule is a plugin with parameters that looks at one order and either lets
it pass (``None``) or returns a :class:`Violation` (reason code and message). Rules are
registered by ``kind`` in :mod:`engine.risk.registry`; a configured rule has a unique
``name`` (default: its kind) and can be enabled or disabled.

Contract for rule authors (built-in rules and plugins alike):

- ``check(order, view, **kwargs)`` is called on the gate's hot path, once per order
  (after the order passed the input checks and the account has a profile). It must be
  fast and must not block. ``**kwargs`` swallows arguments later versions may add, so a
  rule written for this interface keeps working.
- ``view`` (:class:`RiskView`) is read-only access to what the gate knows: positions,
  working quantities, the account's resting orders, whether an order reduces risk, the
  time of the check.
- Parameters are a frozen :class:`ComplianceParams` struct (with ``accounts``: the
  accounts the rule applies to, empty for all); invalid values raise
  :class:`ComplianceParamsError` whose message starts with the rule name.
- A rule that raises denies the order with ``compliance_error`` (fail closed), the
  failure is logged and alerted, and the gate goes on; the rule stays enabled (every
  order it fails on is denied) until an operator disables or fixes it.
- ``stage``: ``pre`` rules run right after the state checks (the restricted list: cheap
  and decisive), ``post`` rules after the limits (they need exposure: short sale, wash
  trade, trading windows). Within a stage, rules run in the order they were given.

Interface versions: 1 — this module. A rule states the version it was written for in
``INTERFACE_VERSION``; the registry refuses rules of another version.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar, cast

import msgspec

from engine.bus.events import Side
from engine.errors import QSuiteError
from engine.risk.decision import RiskOrder

#: The version of this interface; bumped when a change breaks existing rules.
INTERFACE_VERSION = 1

Stage = Literal["pre", "post"]


class ComplianceParamsError(QSuiteError, ValueError):
    """Invalid parameters of a compliance rule; the message names the rule and field."""


class ComplianceParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every rule's parameter struct."""

    accounts: frozenset[str] = frozenset()
    """Accounts the rule applies to; empty: every account."""


class Violation(msgspec.Struct, frozen=True, kw_only=True):
    """Why a rule denies an order."""

    reason: str
    """Reason code, e.g. ``restricted``; plugins may use their own (``[a-z_]``)."""
    message: str
    limit_value: Decimal | None = None
    observed: Decimal | None = None


class RestingOrder(Protocol):
    """A resting order of the account: :class:`~engine.risk.decision.OpenOrder` as the
    caller supplies them, or the gate's own record of a working order."""

    @property
    def client_order_id(self) -> str: ...

    @property
    def side(self) -> Side: ...

    @property
    def price(self) -> Decimal | None:
        """None for a market order."""


class RiskView(Protocol):
    """What a rule may ask the gate (read-only)."""

    @property
    def now_ns(self) -> int:
        """Time of the check, UTC ns."""

    def position(self, account: str, symbol: str) -> Decimal:
        """Net position (negative when short)."""

    def working(self, account: str, symbol: str) -> tuple[Decimal, Decimal]:
        """Working (open, unfilled) buy and sell quantity."""

    def open_orders(self, account: str, symbol: str) -> Iterable[RestingOrder]:
        """The account's resting orders in ``symbol``: as the caller supplied them for
        this check, else the working orders the gate tracks."""

    def best_price(self, account: str, symbol: str, side: Side) -> Decimal | None:
        """The most aggressive limit price among the account's resting orders of
        ``side`` in ``symbol`` (highest buy, lowest sell; None when there is none)."""

    def is_reducing(self, order: RiskOrder) -> bool:
        """Whether ``order`` only reduces the position (with the working orders on its
        side it cannot flip it)."""


P = TypeVar("P", bound=ComplianceParams)


class ComplianceRule(ABC, Generic[P]):
    """A compliance rule: subclass, set the class attributes and implement :meth:`check`.

    Construct with a params struct and/or keyword overrides (strings are accepted for
    numbers, as from a form or a TOML file)::

        RestrictedListRule(symbols=["XYZ"], name="restricted_2024q3")
    """

    INTERFACE_VERSION: ClassVar[int] = INTERFACE_VERSION
    kind: ClassVar[str]
    """Registry name (``[a-z][a-z0-9_]``, at most 64 characters)."""
    version: ClassVar[int] = 1
    """Version of the rule's logic; decisions and listings cite it."""
    params_type: ClassVar[type[ComplianceParams]] = ComplianceParams
    reason: ClassVar[str]
    """The reason code of its violations."""
    stage: ClassVar[Stage] = "post"
    description: ClassVar[str] = ""

    def __init__(
        self,
        params: P | None = None,
        /,
        *,
        name: str | None = None,
        enabled: bool = True,
        **overrides: Any,
    ) -> None:
        self.name = name or self.kind
        self.enabled = enabled
        self.params: P = cast(P, parse_params(self.name, self.params_type, params, overrides))
        self._accounts = self.params.accounts

    def applies(self, order: RiskOrder) -> bool:
        """Whether the rule looks at ``order`` at all (its ``accounts`` scope)."""
        return not self._accounts or order.account in self._accounts

    @abstractmethod
    def check(self, order: RiskOrder, view: RiskView, **kwargs: Any) -> Violation | None:
        """``None`` when ``order`` complies, else why not."""

    def describe(self) -> dict[str, Any]:
        """Name, kind, version, enabled and parameters, JSON-able."""
        return {
            "name": self.name,
            "kind": self.kind,
            "version": self.version,
            "enabled": self.enabled,
            "params": msgspec.to_builtins(self.params),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, {self.params!r})"


def parse_params(
    rule: str,
    params_type: type[P],
    params: ComplianceParams | None,
    overrides: Mapping[str, Any],
) -> P:
    """``params`` (or the defaults) with ``overrides`` applied, validated; raises
    :class:`ComplianceParamsError` ``"<rule>: <what is wrong>"``."""
    raw: dict[str, Any] = msgspec.to_builtins(params) if params is not None else {}
    raw.update(overrides)
    try:
        return msgspec.convert(raw, params_type, strict=False)
    except msgspec.ValidationError as exc:
        raise ComplianceParamsError(f"{rule}: {exc}") from None

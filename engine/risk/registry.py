"""Compliance rules by kind: the built-ins and plugins.

``create("restricted_list", symbols=["XYZ"])`` builds a configured rule; :func:`describe`
lists every kind with its version, stage and the JSON schema of its parameters. A plugin
registers its class once at import::

    @register
    class MyRule(ComplianceRule[MyParams]): ...
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from engine.errors import QSuiteError
from engine.risk.compliance import INTERFACE_VERSION, ComplianceRule
from engine.risk.rules import RestrictedListRule, ShortSaleRule, TradingWindowRule, WashTradeRule

R = TypeVar("R", bound=type[ComplianceRule[Any]])

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class UnknownComplianceRuleError(QSuiteError, LookupError):
    """No compliance rule of that kind is registered."""


class ComplianceRuleInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A registered rule kind as listed for operators."""

    kind: str
    version: int
    interface_version: int
    stage: str
    reason: str
    description: str
    params: dict[str, Any]
    """JSON schema of the parameters."""


class ComplianceRegistry:
    """Kind → rule class."""

    def __init__(self) -> None:
        self._rules: dict[str, type[ComplianceRule[Any]]] = {}

    def register(self, cls: R, *, replace: bool = False) -> R:
        """Add ``cls`` under ``cls.kind``; refuses another interface version, a bad kind
        or (unless ``replace``) a kind in use. Returns ``cls`` (usable as a decorator)."""
        kind = getattr(cls, "kind", "")
        if not isinstance(kind, str) or not _NAME.match(kind):
            raise ValueError(
                f"compliance rule {cls.__name__}: kind {kind!r} must match {_NAME.pattern}"
            )
        if cls.INTERFACE_VERSION != INTERFACE_VERSION:
            raise ValueError(
                f"compliance rule {kind}: written for interface version "
                f"{cls.INTERFACE_VERSION}, this QSuite has {INTERFACE_VERSION}"
            )
        if cls.stage not in ("pre", "post"):
            raise ValueError(f"compliance rule {kind}: stage must be 'pre' or 'post'")
        if not isinstance(getattr(cls, "reason", None), str) or not _NAME.match(cls.reason):
            raise ValueError(f"compliance rule {kind}: reason must match {_NAME.pattern}")
        if kind in self._rules and self._rules[kind] is not cls and not replace:
            raise ValueError(f"compliance rule {kind}: already registered by {self._rules[kind]!r}")
        self._rules[kind] = cls
        return cls

    def get(self, kind: str) -> type[ComplianceRule[Any]]:
        try:
            return self._rules[kind]
        except KeyError:
            known = ", ".join(sorted(self._rules))
            raise UnknownComplianceRuleError(
                f"unknown compliance rule {kind!r}; known: {known}"
            ) from None

    def create(
        self, kind: str, *, name: str | None = None, enabled: bool = True, **params: Any
    ) -> ComplianceRule[Any]:
        """A new rule of ``kind`` named ``name`` (default: the kind) with ``params``;
        raises :class:`UnknownComplianceRuleError` or
        :class:`~engine.risk.compliance.ComplianceParamsError`."""
        return self.get(kind)(name=name, enabled=enabled, **params)

    def kinds(self) -> list[str]:
        return sorted(self._rules)

    def describe(self) -> list[ComplianceRuleInfo]:
        """Every rule kind, sorted, with its parameter schema."""
        return [_info(self._rules[kind]) for kind in self.kinds()]


def _info(cls: type[ComplianceRule[Any]]) -> ComplianceRuleInfo:
    schema = msgspec.json.schema(cls.params_type)
    definition = schema["$defs"][cls.params_type.__name__]
    return ComplianceRuleInfo(
        kind=cls.kind,
        version=cls.version,
        interface_version=cls.INTERFACE_VERSION,
        stage=cls.stage,
        reason=cls.reason,
        description=cls.description,
        params=definition,
    )


#: The process-wide registry, holding the built-in rules.
REGISTRY = ComplianceRegistry()
for _builtin in (RestrictedListRule, WashTradeRule, ShortSaleRule, TradingWindowRule):
    REGISTRY.register(_builtin)


def register(cls: R) -> R:
    """Register a rule class in :data:`REGISTRY` (a class decorator)."""
    return REGISTRY.register(cls)


def create(kind: str, **kwargs: Any) -> ComplianceRule[Any]:
    """``REGISTRY.create``: a configured rule by kind."""
    return REGISTRY.create(kind, **kwargs)


def describe() -> list[ComplianceRuleInfo]:
    """``REGISTRY.describe``: every registered rule kind with its parameter schema."""
    return REGISTRY.describe()

"""Signal rules by name: the built-ins and plugins.

``create("rsi_cross", lower=25)`` builds a configured rule; :func:`describe` lists every
rule with its kinds and the JSON schema of its parameters (what
``qsuite ctl signals rules`` shows). A plugin registers its class once at import::

    @register
    class MyRule(SignalRule[MyParams]): ...
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from engine.errors import QSuiteError
from engine.signals.base import INTERFACE_VERSION, SignalRule
from engine.signals.rules import (
    BollingerBreakoutRule,
    MacdCrossRule,
    MacdDivergenceRule,
    MaCrossRule,
    RsiCrossRule,
)

R = TypeVar("R", bound=type[SignalRule[Any]])

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class UnknownRuleError(QSuiteError, LookupError):
    """No signal rule of that name is registered."""


class RuleInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A registered rule as listed for operators."""

    name: str
    version: int
    interface_version: int
    description: str
    kinds: list[str]
    params: dict[str, Any]
    """JSON schema of the parameters (properties with type, bounds, default, description)."""


class RuleRegistry:
    """Name → rule class."""

    def __init__(self) -> None:
        self._rules: dict[str, type[SignalRule[Any]]] = {}

    def register(self, cls: R, *, replace: bool = False) -> R:
        """Add ``cls`` under ``cls.name``; refuses another interface version, a bad name
        or (unless ``replace``) a name in use. Returns ``cls`` (usable as a decorator)."""
        name = getattr(cls, "name", "")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(
                f"signal rule {cls.__name__}: name {name!r} must match {_NAME.pattern}"
            )
        if cls.INTERFACE_VERSION != INTERFACE_VERSION:
            raise ValueError(
                f"signal rule {name}: written for interface version {cls.INTERFACE_VERSION}, "
                f"this QSuite has {INTERFACE_VERSION}"
            )
        if name in self._rules and self._rules[name] is not cls and not replace:
            raise ValueError(f"signal rule {name}: already registered by {self._rules[name]!r}")
        self._rules[name] = cls
        return cls

    def get(self, name: str) -> type[SignalRule[Any]]:
        try:
            return self._rules[name]
        except KeyError:
            known = ", ".join(sorted(self._rules))
            raise UnknownRuleError(f"unknown signal rule {name!r}; known: {known}") from None

    def create(self, name: str, **params: Any) -> SignalRule[Any]:
        """A new rule ``name`` with ``params`` over its defaults; raises
        :class:`UnknownRuleError` or :class:`~engine.signals.base.RuleParamsError`."""
        return self.get(name)(**params)

    def names(self) -> list[str]:
        return sorted(self._rules)

    def describe(self) -> list[RuleInfo]:
        """Every rule, sorted by name, with its parameter schema."""
        return [_info(self._rules[name]) for name in self.names()]


def _info(cls: type[SignalRule[Any]]) -> RuleInfo:
    schema = msgspec.json.schema(cls.params_type)
    definition = schema["$defs"][cls.params_type.__name__]
    return RuleInfo(
        name=cls.name,
        version=cls.version,
        interface_version=cls.INTERFACE_VERSION,
        description=cls.description,
        kinds=list(cls.kinds),
        params=definition,
    )


#: The process-wide registry, holding the built-in rules.
REGISTRY = RuleRegistry()
for _builtin in (
    RsiCrossRule,
    MacdCrossRule,
    MacdDivergenceRule,
    BollingerBreakoutRule,
    MaCrossRule,
):
    REGISTRY.register(_builtin)


def register(cls: R) -> R:
    """Register a rule class in :data:`REGISTRY` (a class decorator)."""
    return REGISTRY.register(cls)


def create(name: str, **params: Any) -> SignalRule[Any]:
    """``REGISTRY.create``: a configured rule by name."""
    return REGISTRY.create(name, **params)


def describe() -> list[RuleInfo]:
    """``REGISTRY.describe``: every registered rule with its parameter schema."""
    return REGISTRY.describe()

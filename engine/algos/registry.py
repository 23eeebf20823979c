"""Execution algorithms by kind: the built-ins and plugins.

A plugin registers its class once at import::

    @register
    class MyAlgo(Algorithm[MyParams]): ...

:meth:`AlgoRegistry.describe` lists every kind with its version and the JSON schema of
its parameters (``qsuite ctl algo kinds``).
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from engine.algos.base import INTERFACE_VERSION, Algorithm
from engine.errors import QSuiteError

A = TypeVar("A", bound=type[Algorithm[Any]])

_KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class UnknownAlgorithmError(QSuiteError, LookupError):
    """No algorithm of that kind is registered."""


class AlgorithmInfo(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    version: int
    description: str
    params: dict[str, Any]
    """JSON schema of the parameters."""


class AlgoRegistry:
    """Kind → algorithm class."""

    def __init__(self) -> None:
        self._algos: dict[str, type[Algorithm[Any]]] = {}

    def register(self, cls: A, *, replace: bool = False) -> A:
        """Add ``cls`` under ``cls.kind``; refuses another interface version, a bad kind
        or (unless ``replace``) a kind in use. Returns ``cls`` (usable as a decorator)."""
        kind = getattr(cls, "kind", "")
        if not isinstance(kind, str) or not _KIND.match(kind):
            raise ValueError(f"algorithm {cls.__name__}: kind {kind!r} must match {_KIND.pattern}")
        if cls.INTERFACE_VERSION != INTERFACE_VERSION:
            raise ValueError(
                f"algorithm {kind}: written for interface version {cls.INTERFACE_VERSION}, "
                f"this QSuite has {INTERFACE_VERSION}"
            )
        if kind in self._algos and self._algos[kind] is not cls and not replace:
            raise ValueError(f"algorithm {kind}: already registered by {self._algos[kind]!r}")
        self._algos[kind] = cls
        return cls

    def unregister(self, kind: str) -> None:
        """Forget ``kind`` (a plugin being reloaded, a test's own algorithm)."""
        self._algos.pop(kind, None)

    def get(self, kind: str) -> type[Algorithm[Any]]:
        try:
            return self._algos[kind]
        except KeyError:
            known = ", ".join(sorted(self._algos))
            raise UnknownAlgorithmError(f"unknown algorithm {kind!r}; known: {known}") from None

    def kinds(self) -> list[str]:
        return sorted(self._algos)

    def describe(self) -> list[AlgorithmInfo]:
        return [_info(self._algos[kind]) for kind in self.kinds()]


def _info(cls: type[Algorithm[Any]]) -> AlgorithmInfo:
    schema = msgspec.json.schema(cls.params_type)
    definition = schema.get("$defs", {}).get(cls.params_type.__name__, schema)
    return AlgorithmInfo(
        kind=cls.kind, version=cls.version, description=cls.description, params=definition
    )


#: The process-wide registry (the built-ins register themselves in engine.algos).
REGISTRY = AlgoRegistry()


def register(cls: A) -> A:
    """Register an algorithm class in :data:`REGISTRY` (a class decorator)."""
    return REGISTRY.register(cls)

"""Backtest strategies by name: the shipped examples, plugins registered at import, and a
class in a Python file (``path/to/file.py:ClassName``) for quants' own strategies."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any, TypeVar

from engine.backtest.strategy import INTERFACE_VERSION, Strategy, StrategyError

S = TypeVar("S", bound=type[Strategy[Any]])
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_STRATEGIES: dict[str, type[Strategy[Any]]] = {}


def register(cls: S) -> S:
    """Register a strategy class under ``cls.name`` (a class decorator)."""
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"strategy {cls.__name__}: name {name!r} must match {_NAME.pattern}")
    if cls.INTERFACE_VERSION != INTERFACE_VERSION:
        raise ValueError(
            f"strategy {name}: written for interface version {cls.INTERFACE_VERSION}, "
            f"this QSuite has {INTERFACE_VERSION}"
        )
    _STRATEGIES[name] = cls
    return cls


def names() -> list[str]:
    return sorted(_STRATEGIES)


def get(spec: str) -> type[Strategy[Any]]:
    """A registered strategy by name, or ``file.py:ClassName``; raises StrategyError."""
    if ":" in spec and spec.split(":", 1)[0].endswith(".py"):
        return _from_file(*spec.rsplit(":", 1))
    try:
        return _STRATEGIES[spec]
    except KeyError:
        raise StrategyError(
            f"unknown strategy {spec!r}; known: {', '.join(names())} (or file.py:ClassName)"
        ) from None


def _from_file(path: str, class_name: str) -> type[Strategy[Any]]:
    file = Path(path)
    if not file.is_file():
        raise StrategyError(f"no strategy file {path}")
    spec = importlib.util.spec_from_file_location(f"qsuite_strategy_{file.stem}", file)
    if spec is None or spec.loader is None:
        raise StrategyError(f"cannot load {path} as Python")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise StrategyError(f"{path} failed to load: {exc!r}") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise StrategyError(f"{path} has no Strategy class {class_name}")
    if cls.INTERFACE_VERSION != INTERFACE_VERSION:
        raise StrategyError(
            f"{class_name} is written for strategy interface {cls.INTERFACE_VERSION}, "
            f"this QSuite has {INTERFACE_VERSION}"
        )
    return cls

"""The indicator registry: name → class, validated creation, and the catalogue that
``qsuite ctl indicators list`` shows.

    registry = default_registry()                 # the built-ins
    load_plugins(registry, ["my_pkg.indicators"])  # engine.indicators.plugins
    rsi = registry.create("rsi", timeperiod=14)    # IndicatorError if unknown or invalid
    bb = registry.from_key("bbands_20_2p0_2p0")    # the same from an instance key

Classes registered from plugins are instantiated inside a
:class:`~engine.indicators.plugins.SafeIndicator`, so their failures stay theirs.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

import msgspec
import msgspec.inspect as mi

from engine.indicators.base import Indicator, check_class
from engine.indicators.builtins import BUILTINS
from engine.indicators.params import IndicatorError, parse_values, validate
from engine.indicators.plugins import SafeIndicator
from engine.stats import STATS, StatsRegistry

BUILTIN = "builtin"


class ParamInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One parameter of an indicator, with its constraints."""

    name: str
    type: str
    """``int``, ``float``, ``bool`` or ``str``."""
    default: int | float | bool | str | None = None
    required: bool = False
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    description: str = ""


class IndicatorInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What the registry knows about one indicator (a row of ``indicators list``)."""

    name: str
    summary: str
    source: str
    """``builtin``, or the plugin's module path or entry point."""
    inputs: list[str]
    outputs: list[str]
    params: list[ParamInfo]
    default_key: str | None
    """Key of the instance with default parameters (None when one is required)."""
    warmup: int | None
    """Warm-up bars of that default instance."""


class IndicatorRegistry:
    """Indicator classes by name. Not thread-safe: register at start-up."""

    def __init__(self, *, stats: StatsRegistry = STATS) -> None:
        self._classes: dict[str, type[Indicator]] = {}
        self._sources: dict[str, str] = {}
        self._stats = stats

    def register(
        self, cls: type[Indicator], *, source: str = BUILTIN, replace: bool = False
    ) -> None:
        """Add ``cls`` under ``cls.name``. Raises :class:`IndicatorError` for a malformed
        class, or a name already taken (unless ``replace``)."""
        problems = check_class(cls)
        if problems:
            raise IndicatorError(problems)
        if cls.name in self._classes and not replace and self._classes[cls.name] is not cls:
            raise IndicatorError(
                f"{cls.name}: already registered from {self._sources[cls.name]}; "
                f"cannot register {cls.__qualname__} from {source}"
            )
        self._classes[cls.name] = cls
        self._sources[cls.name] = source

    def unregister(self, name: str) -> None:
        self._classes.pop(name, None)
        self._sources.pop(name, None)

    def names(self) -> builtins.list[str]:
        return sorted(self._classes)

    def get(self, name: str) -> type[Indicator]:
        """The class registered as ``name``; the error lists the known names."""
        try:
            return self._classes[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise IndicatorError(f"unknown indicator {name!r}; known: {known}") from None

    def source(self, name: str) -> str:
        self.get(name)
        return self._sources[name]

    def create(self, name: str, /, **params: Any) -> Indicator:
        """A validated instance: ``create("macd", fastperiod=12, slowperiod=26)``.
        Raises :class:`IndicatorError` listing every problem."""
        cls = self.get(name)
        values = validate(name, cls.Params, params)
        if self._sources[name] == BUILTIN:
            return cls(values)
        return SafeIndicator.create(cls, values, stats=self._stats)

    def from_key(self, key: str) -> Indicator:
        """The instance a key names: ``rsi_14``, ``bbands_20_2p0_2p0``, ``obv``."""
        errors: builtins.list[str] = []
        for name in sorted(self._classes, key=len, reverse=True):
            if key == name or key.startswith(name + "_"):
                parts = key[len(name) + 1 :].split("_") if key != name else []
                try:
                    values = parse_values(name, self._classes[name].Params, parts)
                    return self.create(name, **values)
                except IndicatorError as exc:
                    errors.extend(exc.problems)
        if errors:
            raise IndicatorError(errors)
        known = ", ".join(self.names()) or "none"
        raise IndicatorError(f"unknown indicator in key {key!r}; known: {known}")

    def create_spec(self, spec: str | Mapping[str, Any]) -> Indicator:
        """From configuration: a key (``"rsi_14"``) or a table
        (``{name = "rsi", timeperiod = 14}``)."""
        if isinstance(spec, str):
            return self.from_key(spec)
        params = dict(spec)
        name = params.pop("name", None)
        if not isinstance(name, str):
            raise IndicatorError(f"indicator spec {dict(spec)!r} has no 'name'")
        return self.create(name, **params)

    def info(self, name: str) -> IndicatorInfo:
        cls = self.get(name)
        params = _param_infos(cls.Params)
        key: str | None = None
        warmup: int | None = None
        if not any(p.required for p in params):
            try:  # plugin code, outside a SafeIndicator: listing must not count failures
                default = cls(validate(name, cls.Params, {}))
                key, warmup = default.key, int(default.warmup)
            except Exception:
                pass
        return IndicatorInfo(
            name=name,
            summary=cls.summary,
            source=self._sources[name],
            inputs=builtins.list(cls.inputs),
            outputs=builtins.list(cls.outputs),
            params=params,
            default_key=key,
            warmup=warmup,
        )

    def list(self) -> builtins.list[IndicatorInfo]:
        """Every registered indicator, by name."""
        return [self.info(name) for name in self.names()]


def _param_infos(params_type: type[msgspec.Struct]) -> list[ParamInfo]:
    info = mi.type_info(params_type)
    assert isinstance(info, mi.StructType)
    out = []
    for field in info.fields:
        kind: Any = field.type
        description = ""
        while isinstance(kind, mi.Metadata):
            description = (kind.extra_json_schema or {}).get("description", description)
            kind = kind.type
        bounds = {b: getattr(kind, b, None) for b in ("ge", "gt", "le", "lt")}
        default = None if field.default is msgspec.NODEFAULT else field.default
        out.append(
            ParamInfo(
                name=field.name,
                type=_TYPE_NAMES.get(type(kind), "any"),
                default=default,
                required=field.required,
                description=description,
                **bounds,
            )
        )
    return out


_TYPE_NAMES: dict[type, str] = {
    mi.IntType: "int",
    mi.FloatType: "float",
    mi.BoolType: "bool",
    mi.StrType: "str",
}


def default_registry(*, stats: StatsRegistry = STATS) -> IndicatorRegistry:
    """A registry holding the built-ins."""
    registry = IndicatorRegistry(stats=stats)
    for cls in BUILTINS:
        registry.register(cls)
    return registry

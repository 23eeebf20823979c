"""Custom indicators: loading them, and running them so that their failures stay theirs.

Plugins are :class:`~engine.indicators.base.Indicator` subclasses found in

- a module named by a path string: ``"my_pkg.indicators"`` (imported) or
  ``"path/to/file.py"`` (executed as a module of its own); the module's ``INDICATORS``
  list if it has one, else every concrete Indicator subclass it defines;
- the ``qsuite.indicators`` entry-point group of installed distributions; an entry
  point may name a class, a module, or a list of classes::

      [project.entry-points."qsuite.indicators"]
      donchian = "my_pkg.indicators:DonchianIndicator"

:func:`load_plugins` never raises: a plugin that cannot be imported or is malformed is
logged (``Cannot load indicator plugin …``) and reported, and the rest load.

The registry creates plugin instances inside a :class:`SafeIndicator`. The first
exception from plugin code (``batch``, ``stream``, ``update``, ``peek``, or an output
of the wrong shape) disables that instance: the reason is recorded in
:attr:`SafeIndicator.failure`, logged, counted in
``qsuite_indicator_failures_total{indicator=<name>}`` and passed to the listeners (the
bank, which raises the alert); from then on it yields NaN. It never raises.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, cast

import numpy as np
from loguru import logger

from engine.indicators.base import (
    Array,
    Indicator,
    IndicatorStream,
    InsufficientHistory,
    check_class,
)
from engine.indicators.params import IndicatorError, IndicatorParams
from engine.stats import STATS, StatsRegistry

if TYPE_CHECKING:
    from engine.indicators.registry import IndicatorRegistry

ENTRY_POINT_GROUP = "qsuite.indicators"
FAILURES = "qsuite_indicator_failures_total"
FAILURES_HELP = "Indicator instances disabled (or not created) because their code raised"
_log = logger.bind(component="indicators")


class PluginError(IndicatorError):
    """A plugin module or entry point could not be loaded."""


class SafeIndicator(Indicator):
    """A plugin instance behind a guard; a subclass per plugin class carries its
    name, inputs, outputs and parameter schema."""

    plugin: ClassVar[type[Indicator]]
    _subclasses: ClassVar[dict[type[Indicator], type[SafeIndicator]]] = {}

    def __init__(self, inner: Indicator, warmup: int, stats: StatsRegistry = STATS) -> None:
        super().__init__(inner.params)
        self.inner = inner
        self.failure: str | None = None
        """Why the instance was disabled (None while it runs)."""
        self.listeners: list[Callable[[SafeIndicator, str], None]] = []
        """Called once, with the instance and the reason, when it is disabled."""
        self._warmup = warmup
        self._failures = stats.counter(FAILURES, FAILURES_HELP, indicator=self.name)

    @classmethod
    def create(
        cls, plugin: type[Indicator], params: IndicatorParams, *, stats: StatsRegistry = STATS
    ) -> SafeIndicator:
        """Instantiate ``plugin`` guarded; :class:`IndicatorError` if that fails."""
        wrapper = cls._subclasses.get(plugin)
        if wrapper is None:
            names = ("name", "summary", "Params", "inputs", "outputs")
            attrs = {a: getattr(plugin, a) for a in names}
            wrapper = cast(
                "type[SafeIndicator]",
                type(f"Safe{plugin.__name__}", (cls,), {**attrs, "plugin": plugin}),
            )
            cls._subclasses[plugin] = wrapper
        try:
            inner = plugin(params)
            warmup = inner.warmup
            if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
                raise TypeError(f"warmup must be an int >= 0, not {warmup!r}")
        except Exception as exc:
            stats.counter(FAILURES, FAILURES_HELP, indicator=plugin.name).inc()
            raise IndicatorError(f"{plugin.name}: cannot create: {_reason(exc)}") from exc
        return wrapper(inner, warmup, stats)

    @property
    def disabled(self) -> bool:
        return self.failure is not None

    @property
    def warmup(self) -> int:
        return self._warmup

    def fail(self, action: str, exc: BaseException) -> None:
        """Disable this instance because ``action`` raised ``exc``."""
        self.disable(f"{action}: {_reason(exc)}", exc)

    def disable(self, reason: str, exc: BaseException | None = None) -> None:
        """Disable this instance (once): record, log, count, tell the listeners."""
        if self.failure is not None:
            return
        self.failure = reason
        self._failures.inc()
        _log.bind(indicator=self.key).opt(exception=exc).error(
            "Cannot run indicator {}: {}; disabled", self.key, reason
        )
        for listener in list(self.listeners):
            try:
                listener(self, reason)
            except Exception:
                _log.exception("Cannot report the failure of indicator {}", self.key)

    def batch(self, *inputs: Array) -> tuple[Array, ...]:
        n = len(inputs[0]) if inputs else 0
        if self.failure is None:
            try:
                return self._arrays(self.inner.batch(*inputs), n)
            except Exception as exc:
                self.fail("batch", exc)
        return tuple(np.full(n, np.nan) for _ in self.outputs)

    def stream(self, *history: Array) -> IndicatorStream:
        if self.failure is None:
            try:
                return _SafeStream(self, self.inner.stream(*history))
            except InsufficientHistory:
                raise
            except Exception as exc:
                self.fail("stream", exc)
        return _SafeStream(self, None)

    def stream_and_fill(self, *history: Array) -> tuple[IndicatorStream, tuple[Array, ...]]:
        if self.failure is None:
            try:
                inner, out = self.inner.stream_and_fill(*history)
                return _SafeStream(self, inner), self._arrays(out, len(history[0]))
            except InsufficientHistory:
                raise
            except Exception as exc:
                self.fail("stream", exc)
        return _SafeStream(self, None), self.batch(*history)

    def _arrays(self, out: Any, n: int) -> tuple[Array, ...]:
        arrays = tuple(np.asarray(a, dtype=np.float64) for a in out)
        if len(arrays) != len(self.outputs) or any(a.shape != (n,) for a in arrays):
            shapes = [a.shape for a in arrays]
            raise ValueError(
                f"batch returned shapes {shapes}, expected {len(self.outputs)} of ({n},)"
            )
        return arrays

    def shape(self, value: Any) -> Any:
        """A stream result checked and converted to float / tuple of floats."""
        n = len(self.outputs)
        if n == 1:
            if isinstance(value, tuple):
                raise ValueError(f"stream returned a tuple for one output: {value!r}")
            return float(value)
        out = tuple(float(v) for v in value)
        if len(out) != n:
            raise ValueError(f"stream returned {len(out)} values, expected {n}")
        return out

    def nan(self) -> Any:
        n = len(self.outputs)
        return float("nan") if n == 1 else (float("nan"),) * n


class _SafeStream:
    """A plugin's stream behind its :class:`SafeIndicator`'s guard."""

    __slots__ = ("_inner", "_owner")

    def __init__(self, owner: SafeIndicator, inner: IndicatorStream | None) -> None:
        self._owner = owner
        self._inner = inner

    @property
    def value(self) -> Any:
        return self._call("value", None, ())

    def update(self, *values: float) -> Any:
        return self._call("update", self._inner.update if self._inner else None, values)

    def peek(self, *values: float) -> Any:
        return self._call("peek", self._inner.peek if self._inner else None, values)

    def _call(self, action: str, fn: Callable[..., Any] | None, values: tuple[float, ...]) -> Any:
        owner = self._owner
        if owner.failure is None and self._inner is not None:
            try:
                out = fn(*values) if fn is not None else self._inner.value
                return owner.shape(out)
            except Exception as exc:
                owner.fail(action, exc)
        return owner.nan()


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# --- loading ---------------------------------------------------------------------------


@dataclass
class PluginReport:
    """What :func:`load_plugins` did: names registered and one line per failure."""

    loaded: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def import_plugin_module(spec: str) -> ModuleType:
    """Import ``"package.module"`` or execute ``"path/to/file.py"``."""
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        path = Path(spec).expanduser().resolve()
        if not path.is_file():
            raise PluginError(f"cannot load indicator plugin {spec!r}: no such file")
        digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
        module_name = f"_qsuite_indicator_plugin_{path.stem}_{digest}"
        loaded = sys.modules.get(module_name)
        if loaded is not None:
            return loaded
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        if module_spec is None or module_spec.loader is None:
            raise PluginError(f"cannot load indicator plugin {spec!r}: not a Python file")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module  # annotations resolve through sys.modules
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
        return module
    return importlib.import_module(spec)


def indicator_classes(module: ModuleType) -> list[type[Indicator]]:
    """The module's ``INDICATORS``, else the concrete Indicator subclasses it defines."""
    explicit = getattr(module, "INDICATORS", None)
    if explicit is not None:
        return list(explicit)
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, Indicator)
        and obj.__module__ == module.__name__
        and not getattr(obj, "__abstractmethods__", None)
    ]


def register_classes(registry: IndicatorRegistry, classes: Iterable[Any], source: str) -> list[str]:
    """Register plugin classes; :class:`PluginError` listing every malformed one."""
    classes = list(classes)
    problems = [p for cls in classes for p in check_class(cls)]
    if problems:
        raise PluginError(problems)
    if not classes:
        raise PluginError(f"{source}: defines no indicator classes")
    for cls in classes:
        registry.register(cls, source=source)
    return [cls.name for cls in classes]


def load_module(registry: IndicatorRegistry, spec: str) -> list[str]:
    """Register the indicators of one module path; raises :class:`PluginError`."""
    try:
        module = import_plugin_module(spec)
    except PluginError:
        raise
    except Exception as exc:
        raise PluginError(f"cannot import indicator plugin {spec!r}: {_reason(exc)}") from exc
    return register_classes(registry, indicator_classes(module), spec)


def load_entry_points(registry: IndicatorRegistry, group: str = ENTRY_POINT_GROUP) -> PluginReport:
    """Register the indicators of every entry point in ``group``."""
    report = PluginReport()
    for ep in importlib.metadata.entry_points(group=group):
        source = f"entry point {ep.name} = {ep.value}"
        try:
            obj = ep.load()
            if isinstance(obj, ModuleType):
                classes = indicator_classes(obj)
            elif isinstance(obj, type):
                classes = [obj]
            else:
                classes = list(obj)
            report.loaded += register_classes(registry, classes, source)
        except Exception as exc:
            report.errors.append(_load_failed(source, exc))
    return report


def load_plugins(
    registry: IndicatorRegistry,
    modules: Iterable[str] = (),
    *,
    entry_points: bool = True,
    group: str = ENTRY_POINT_GROUP,
) -> PluginReport:
    """Load every configured module path, then (optionally) the entry points; never
    raises — failures are logged and listed in the report."""
    report = PluginReport()
    for spec in modules:
        try:
            report.loaded += load_module(registry, spec)
        except Exception as exc:
            report.errors.append(_load_failed(spec, exc))
    if entry_points:
        found = load_entry_points(registry, group)
        report.loaded += found.loaded
        report.errors += found.errors
    return report


def _load_failed(source: str, exc: Exception) -> str:
    reason = str(exc) if isinstance(exc, IndicatorError) else _reason(exc)
    _log.error("Cannot load indicator plugin {}: {}", source, reason)
    return f"{source}: {reason}"

"""The signal engine of one symbol and interval: rules in, ``SignalRaised`` out.

The analysis process keeps one :class:`SignalEngine` per (symbol, interval) and calls
:meth:`SignalEngine.on_bar` for every *closed* bar, in time order, with the values of
the indicator outputs in :attr:`SignalEngine.required` at that bar (NaN while warming
up; an absent value counts as NaN and in ``qsuite_signal_inputs_missing_total{rule}``,
since it means the feeding process forgot it). The engine remembers the previous bar's
values, builds each rule's :class:`~engine.signals.base.RuleInput` and stamps the
rule's answers into :class:`~engine.bus.events.SignalRaised` events (``ts_event`` = the
bar's close time).

Exactly once per (symbol, interval, ts, rule, kind):

- A bar at or before the last bar fed is skipped (a re-published or replayed bar), so
  feeding the same bars twice raises their signals once; :meth:`SignalEngine.reset`
  rewinds deliberately (to re-evaluate history after a backfill).
- Every key raised is remembered in a bounded memory (``memory`` most recent keys), and
  a key not in it is checked with the injected ``seen(key)`` predicate (backed by the
  signal store, see :func:`engine.signals.store.seen_in`), so a rewound, restored or
  restarted engine re-fed the same history raises nothing it raised before. If the
  predicate fails (database down) the signal is raised anyway, logged and counted: the
  store's insert is idempotent, so the worst case is a repeated event, never a lost one.

A rule that raises, or answers with something invalid (an undeclared kind, a strength
outside 0 … 1), is disabled for this symbol with the reason recorded, logged and counted
in ``qsuite_signal_rule_failures_total{rule}``; the other rules go on. ``on_bar`` never
raises. An operator re-enables a rule with :meth:`SignalEngine.enable` (it then starts
fresh).

:meth:`SignalEngine.state` is a JSON-able snapshot (previous values, every rule's state,
enabled flags and reasons); :meth:`SignalEngine.restore` continues from it exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import msgspec
from loguru import logger

from engine.bus.events import SignalRaised
from engine.intervals import interval_ns
from engine.signals.base import IndicatorSpec, RuleInput, RuleSignal, SignalRule
from engine.stats import STATS, Cell, StatsRegistry

#: Version of the :meth:`SignalEngine.state` layout; a snapshot of another is discarded.
STATE_VERSION = 1
DEFAULT_MEMORY = 4096
_MAX_KIND = 32  # the width of signals.kind


class SignalKey(NamedTuple):
    """What makes a signal unique (the unique key of the ``signals`` table)."""

    symbol: str
    interval: str
    ts: int
    rule: str
    kind: str


SeenPredicate = Callable[[SignalKey], bool]


class BarLike(Protocol):
    """A closed bar (e.g. :class:`~engine.bus.events.BarClosed`); ``ts`` is its open time."""

    @property
    def ts(self) -> int: ...
    @property
    def open(self) -> float: ...
    @property
    def high(self) -> float: ...
    @property
    def low(self) -> float: ...
    @property
    def close(self) -> float: ...
    @property
    def volume(self) -> float: ...


class RuleStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One rule of one engine, as shown to operators."""

    rule: str
    enabled: bool
    reason: str
    """Why it is disabled (empty when enabled)."""
    failures: int
    params: dict[str, Any]


@dataclass(slots=True, eq=False)
class _Entry:
    rule: SignalRule[Any]
    inputs: dict[str, IndicatorSpec]
    raised: Cell
    duplicates: Cell
    failed: Cell
    missing: Cell
    enabled: bool = True
    reason: str = ""
    failures: int = 0
    params: dict[str, Any] = field(default_factory=dict)


class SignalEngine:
    """The rules of one symbol and interval (see the module docstring)."""

    def __init__(
        self,
        symbol: str,
        interval: str,
        rules: Iterable[SignalRule[Any]] = (),
        *,
        seen: SeenPredicate | None = None,
        stats: StatsRegistry = STATS,
        memory: int = DEFAULT_MEMORY,
        on_failure: Callable[[str, str], None] | None = None,
    ) -> None:
        if memory < 1:
            raise ValueError(f"memory ({memory}) must be >= 1")
        self.symbol = symbol
        self.interval = interval
        self._bar_ns = interval_ns(interval)
        self._seen = seen
        self.on_failure = on_failure
        """Called with ``(rule, reason)`` when a rule is disabled by a failure (raise the
        alert)."""
        self._stats = stats
        self._memory = memory
        self._recent: dict[SignalKey, None] = {}
        self._entries: dict[str, _Entry] = {}
        self._specs: set[IndicatorSpec] = set()
        self._prev: dict[IndicatorSpec, float] = {}
        self._prev_close = math.nan
        self._last_ts: int | None = None
        self._log = logger.bind(component="signals", symbol=symbol, interval=interval)
        self._skipped = stats.counter(
            "qsuite_signal_bars_skipped_total", "Bars at or before the last bar fed, skipped"
        )
        self._seen_errors = stats.counter(
            "qsuite_signal_seen_errors_total", "Failed checks of the signal store for a duplicate"
        )
        for rule in rules:
            self.add(rule)

    # -- configuration -------------------------------------------------------------

    def add(self, rule: SignalRule[Any], *, enabled: bool = True) -> None:
        """Add ``rule``; one rule per name per engine (the name is part of the key)."""
        name = rule.name
        if name in self._entries:
            raise ValueError(f"signal rule {name} is already on {self.symbol} {self.interval}")
        inputs = dict(rule.required)
        counter = self._stats.counter
        self._entries[name] = _Entry(
            rule=rule,
            inputs=inputs,
            raised=counter("qsuite_signal_raised_total", "Signals raised", rule=name),
            duplicates=counter(
                "qsuite_signal_duplicates_total", "Signals suppressed as duplicates", rule=name
            ),
            failed=counter(
                "qsuite_signal_rule_failures_total", "Signal rules disabled by a failure", rule=name
            ),
            missing=counter(
                "qsuite_signal_inputs_missing_total",
                "Bars fed without a value a rule requires",
                rule=name,
            ),
            enabled=enabled,
            reason="" if enabled else "disabled by configuration",
            params=msgspec.to_builtins(rule.params),
        )
        self._specs.update(inputs.values())

    def enable(self, name: str) -> None:
        """Enable rule ``name`` again; it starts fresh (its running state is reset)."""
        entry = self._entry(name)
        if not entry.enabled:
            entry.rule.reset()
            entry.enabled, entry.reason = True, ""

    def disable(self, name: str, reason: str = "disabled by operator") -> None:
        entry = self._entry(name)
        entry.enabled, entry.reason = False, reason

    @property
    def seen(self) -> SeenPredicate | None:
        """The store-backed duplicate check (None: memory only). A caller replaying history
        whose signals it only stores (idempotently) may switch it off meanwhile."""
        return self._seen

    @seen.setter
    def seen(self, predicate: SeenPredicate | None) -> None:
        self._seen = predicate

    def rule(self, name: str) -> SignalRule[Any]:
        return self._entry(name).rule

    def statuses(self) -> list[RuleStatus]:
        return [
            RuleStatus(
                rule=name,
                enabled=e.enabled,
                reason=e.reason,
                failures=e.failures,
                params=e.params,
            )
            for name, e in self._entries.items()
        ]

    @property
    def required(self) -> frozenset[IndicatorSpec]:
        """Every indicator output some rule of this engine reads (enabled or not, so a
        re-enabled rule has its previous values)."""
        return frozenset(self._specs)

    # -- bars ----------------------------------------------------------------------

    def on_bar(
        self, bar: BarLike, values: Mapping[IndicatorSpec, float], *, ts_event: int | None = None
    ) -> list[SignalRaised]:
        """Feed one closed bar and its indicator values; returns the new signals.

        ``values`` maps (at least) the specs of :attr:`required` to their value at this
        bar. ``ts_event`` defaults to the bar's close time (``ts`` + the interval).
        """
        ts = bar.ts
        if self._last_ts is not None and ts <= self._last_ts:
            self._skipped.inc()
            return []
        current = {spec: _as_float(values.get(spec, math.nan)) for spec in self._specs}
        stamp = ts + self._bar_ns if ts_event is None else ts_event
        out: list[SignalRaised] = []
        for entry in self._entries.values():
            if entry.enabled:
                out.extend(self._evaluate(entry, bar, current, stamp, values))
        self._prev, self._prev_close, self._last_ts = current, float(bar.close), ts
        return out

    def _evaluate(
        self,
        entry: _Entry,
        bar: BarLike,
        current: dict[IndicatorSpec, float],
        stamp: int,
        values: Mapping[IndicatorSpec, float],
    ) -> list[SignalRaised]:
        rule = entry.rule
        if any(spec not in values for spec in entry.inputs.values()):
            entry.missing.inc()
        ctx = RuleInput(
            symbol=self.symbol,
            interval=self.interval,
            ts=bar.ts,
            open=float(bar.open),
            high=float(bar.high),
            low=float(bar.low),
            close=float(bar.close),
            volume=float(bar.volume),
            prev_close=self._prev_close,
            current={name: current[spec] for name, spec in entry.inputs.items()},
            previous={name: self._prev.get(spec, math.nan) for name, spec in entry.inputs.items()},
        )
        try:
            signals = _checked(rule, rule.on_bar(ctx))
            indicator = rule.indicator
        except Exception as exc:
            self._fail(entry, exc)
            return []
        out: list[SignalRaised] = []
        for signal in signals:
            key = SignalKey(self.symbol, self.interval, bar.ts, rule.name, signal.kind)
            if self._duplicate(key):
                entry.duplicates.inc()
                continue
            entry.raised.inc()
            out.append(
                SignalRaised(
                    ts_event=stamp,
                    symbol=self.symbol,
                    interval=self.interval,
                    ts=bar.ts,
                    rule=rule.name,
                    kind=signal.kind,
                    indicator=indicator,
                    strength=signal.strength,
                    details=signal.details,
                )
            )
        return out

    def _duplicate(self, key: SignalKey) -> bool:
        """Whether ``key`` was raised before; remembers it either way."""
        if key in self._recent:
            return True
        seen = False
        if self._seen is not None:
            try:
                seen = bool(self._seen(key))
            except Exception as exc:
                self._seen_errors.inc()
                self._log.warning(
                    "Cannot check the signal store for {}: {}; raising it anyway", key, exc
                )
        self._recent[key] = None
        if len(self._recent) > self._memory:
            del self._recent[next(iter(self._recent))]
        return seen

    def _fail(self, entry: _Entry, exc: BaseException) -> None:
        entry.enabled = False
        entry.reason = f"failed: {type(exc).__name__}: {exc}"
        entry.failures += 1
        entry.failed.inc()
        self._log.bind(rule=entry.rule.name).error(
            "Cannot evaluate signal rule {}: {}; disabled for {} {}",
            entry.rule.name,
            entry.reason,
            self.symbol,
            self.interval,
        )
        if self.on_failure is not None:
            try:
                self.on_failure(entry.rule.name, entry.reason)
            except Exception:
                self._log.exception("Cannot report the failure of rule {}", entry.rule.name)

    def _entry(self, name: str) -> _Entry:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self._entries) or "none"
            raise KeyError(
                f"no signal rule {name!r} on {self.symbol} {self.interval} (has: {known})"
            ) from None

    # -- snapshots -----------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """A JSON-able snapshot to continue from after a restart (see :meth:`restore`)."""
        return {
            "version": STATE_VERSION,
            "symbol": self.symbol,
            "interval": self.interval,
            "last_ts": self._last_ts,
            "prev_close": _json_float(self._prev_close),
            "prev": {spec.key: _json_float(v) for spec, v in self._prev.items()},
            "rules": {
                name: {
                    "version": e.rule.version,
                    "params": e.params,
                    "enabled": e.enabled,
                    "reason": e.reason,
                    "failures": e.failures,
                    "state": e.rule.state(),
                }
                for name, e in self._entries.items()
            },
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state` snapshot of this symbol and interval.

        A snapshot of another layout version is discarded (the engine starts fresh);
        a rule whose version or parameters changed since the snapshot starts fresh; the
        enabled flags and reasons of the snapshot win over the configuration (an
        operator's or a failure's "disabled" survives a restart). Rules not in the
        snapshot start fresh. A rule whose ``restore`` raises is disabled.
        """
        if (state.get("symbol"), state.get("interval")) != (self.symbol, self.interval):
            raise ValueError(
                f"snapshot of {state.get('symbol')} {state.get('interval')} "
                f"cannot restore {self.symbol} {self.interval}"
            )
        self.reset()
        if state.get("version") != STATE_VERSION:
            self._log.warning(
                "Cannot restore signal state of version {}: starting fresh", state.get("version")
            )
            return
        last_ts = state.get("last_ts")
        self._last_ts = None if last_ts is None else int(last_ts)
        self._prev_close = _float(state.get("prev_close"))
        by_key = {spec.key: spec for spec in self._specs}
        saved = state.get("prev", {})
        self._prev = {spec: _float(saved.get(key)) for key, spec in by_key.items()}
        for name, snap in state.get("rules", {}).items():
            entry = self._entries.get(name)
            if entry is None:
                continue
            entry.enabled = bool(snap.get("enabled", True))
            entry.reason = str(snap.get("reason", ""))
            entry.failures = int(snap.get("failures", 0))
            if snap.get("version") != entry.rule.version or snap.get("params") != entry.params:
                self._log.info("Signal rule {} changed since the snapshot: starts fresh", name)
                continue
            try:
                entry.rule.restore(snap.get("state", {}))
            except Exception as exc:
                self._fail(entry, exc)

    def reset(self) -> None:
        """Forget the bars fed (previous values, rule states) but not the keys raised:
        re-feeding history after a reset raises only what is new."""
        self._last_ts = None
        self._prev = {}
        self._prev_close = math.nan
        for entry in self._entries.values():
            try:
                entry.rule.reset()
            except Exception as exc:
                self._fail(entry, exc)


def _checked(rule: SignalRule[Any], signals: Any) -> list[RuleSignal]:
    """The rule's answer with plain-Python details, or ``ValueError`` saying what is wrong
    with it."""
    if not isinstance(signals, list):
        raise ValueError(f"on_bar returned {type(signals).__name__}, not a list")
    out: list[RuleSignal] = []
    for signal in signals:
        if not isinstance(signal, RuleSignal):
            raise ValueError(f"on_bar returned a {type(signal).__name__}, not a RuleSignal")
        if not 0 < len(signal.kind) <= _MAX_KIND or (rule.kinds and signal.kind not in rule.kinds):
            raise ValueError(f"on_bar returned an undeclared kind {signal.kind!r}")
        if not 0.0 <= signal.strength <= 1.0:
            raise ValueError(f"on_bar returned strength {signal.strength!r} outside 0 … 1")
        details = {str(k): _detail(k, v) for k, v in signal.details.items()}
        out.append(RuleSignal(kind=signal.kind, strength=float(signal.strength), details=details))
    return out


def _detail(name: Any, value: Any) -> float | str:
    if type(value) in (str, int, float):
        return value
    if type(value) is not bool and hasattr(value, "item"):  # a NumPy scalar
        item = value.item()
        if type(item) in (int, float):
            return item
    raise ValueError(f"on_bar returned detail {name!r} of type {type(value).__name__}")


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _json_float(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)

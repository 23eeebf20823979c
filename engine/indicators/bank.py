"""The indicators of one symbol and interval, fed bar by bar (or as arrays).

    bank = IndicatorBank("AAPL", "1m", [registry.create("rsi"), registry.create("macd")])
    bank.warm(history)                  # Bars from the store: opens every stream
    bank.update(Bar(ts, o, h, l, c, v)) # a closed bar: {"rsi_14": {"value": 56.1}, …}
    bank.preview(forming)               # the same for a forming bar; commits nothing
    bank.step(bar)                      # update, as a tuple in bank.keys order: (56.1, (…), …)
    bank.batch(bars)                    # {"rsi_14": {"value": array([...])}, …}

Semantics, for every indicator of the bank:

- **Warm-up.** Until an indicator has ``warmup + 1`` bars its outputs are NaN, at the
  same bars where the batch form reports NaN; it opens its stream on the bars so far
  as soon as there are enough (history given to :meth:`IndicatorBank.warm`, then
  bars from :meth:`~IndicatorBank.update`). After that each bar costs O(1).
- **Non-finite input.** A bar with a NaN or infinite value in an indicator's inputs
  does not exist for that indicator: streaming skips it (no values for it that bar,
  counted in ``qsuite_indicator_bars_rejected_total{reason="nonfinite"}``), and batch
  computes over the finite bars only and reports NaN at the others — so the two forms
  still agree. (TA-Lib itself would turn every value after a NaN into NaN.)
- **Order.** A bar whose ``ts`` is not after the last committed one is rejected
  (``reason="stale"``): a replayed or duplicated bar is never counted twice.
- **Failures.** Nothing raises out of ``update``, ``preview`` or ``batch``. An indicator
  whose code raises is disabled in this bank (plugins through their
  :class:`~engine.indicators.plugins.SafeIndicator`), its reason kept in
  :attr:`IndicatorBank.failures` and passed to ``on_failure(key, reason)``; the others
  keep running. A malformed bar is rejected (``reason="invalid"``).

The per-bar path is generated code (:mod:`engine.indicators.stepper`): one
straight-line function per bank, rebuilt when an indicator opens, is added or removed,
or fails. Built-ins stream through TA-Lib's own handles, so after warm-up the streamed
values are TA-Lib's batch values bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from loguru import logger

from engine.indicators.base import Array, Bar, Bars, Indicator
from engine.indicators.params import IndicatorError
from engine.indicators.plugins import FAILURES, FAILURES_HELP, SafeIndicator
from engine.indicators.slot import Slot, batch_rows, finite_rows, scatter
from engine.indicators.stepper import Values, compile_step
from engine.stats import STATS, StatsRegistry

Series = dict[str, dict[str, Array]]
Native = tuple[Any, ...]
"""What :meth:`IndicatorBank.step` returns."""
_NEVER = -(2**63)
_SKIPPED = object()
_log = logger.bind(component="indicators")


class IndicatorBank:
    """The indicator instances of one ``(symbol, interval)``; see the module docstring.

    Give each bank its own instances (``registry.create`` per bank) so that a failing
    plugin is disabled for this symbol only.

    The per-bar calls are generated functions bound as attributes (see
    :mod:`engine.indicators.stepper`); none of them raises:

    ``update(bar) -> Values``
        Commit a closed bar; its values by key and output (``{}`` if rejected).
    ``preview(bar) -> Values``
        The values a forming bar would have now; commits nothing.
    ``step(bar) -> Native``
        ``update`` without building dicts, for hot paths: each running indicator's
        result in the order of :attr:`layout` *as it was before the call* (an indicator
        that fails during the call is removed from it after) — a float, or a tuple in
        the order of its ``outputs`` — or None for an indicator that skipped a
        non-finite bar; ``()`` when the bar was rejected.
    """

    update: Callable[[Bar], Values]
    preview: Callable[[Bar], Values]
    step: Callable[[Bar], Native]

    def __init__(
        self,
        symbol: str,
        interval: str,
        indicators: Iterable[Indicator] = (),
        *,
        stats: StatsRegistry = STATS,
        on_failure: Callable[[str, str], None] | None = None,
    ) -> None:
        self.symbol = symbol
        self.interval = interval
        self.on_failure = on_failure
        """Called with ``(key, reason)`` when an indicator is disabled (raise the alert)."""
        self.failures: dict[str, str] = {}
        """Disabled indicators: key → reason."""
        self._stats = stats
        self._slots: dict[str, Slot] = {}
        self._last = [_NEVER]
        self._log = _log.bind(symbol=symbol, interval=interval)
        help_ = "Bars an indicator bank did not apply, by reason"
        self._stale = stats.counter("qsuite_indicator_bars_rejected_total", help_, reason="stale")
        self._nonfinite = stats.counter(
            "qsuite_indicator_bars_rejected_total", help_, reason="nonfinite"
        )
        self._invalid = stats.counter(
            "qsuite_indicator_bars_rejected_total", help_, reason="invalid"
        )
        for indicator in indicators:
            self.add(indicator, rebuild=False)
        self._rebuild()

    # --- membership --------------------------------------------------------------------

    @property
    def keys(self) -> tuple[str, ...]:
        """Keys of the running (not disabled) indicators, in the order added."""
        return tuple(self._slots)

    @property
    def layout(self) -> tuple[str, ...]:
        """The keys :meth:`step` answers for; the same object until the bank changes."""
        return self._layout

    @property
    def indicators(self) -> dict[str, Indicator]:
        return {key: slot.indicator for key, slot in self._slots.items()}

    @property
    def last_ts(self) -> int | None:
        """Open time of the last committed bar (None before any)."""
        return None if self._last[0] == _NEVER else self._last[0]

    def add(
        self, indicator: Indicator, history: Bars | None = None, *, rebuild: bool = True
    ) -> str:
        """Add an instance (warming it on ``history`` if given); returns its key.
        :class:`IndicatorError` if the key is already in the bank."""
        key = indicator.key
        if key in self._slots:
            raise IndicatorError(f"{key}: already in the bank of {self.symbol} {self.interval}")
        slot = Slot(indicator, self._rebuild)
        self._slots[key] = slot
        self.failures.pop(key, None)
        if isinstance(indicator, SafeIndicator):
            indicator.listeners.append(self._plugin_failed)
            if indicator.failure is not None:
                self._disable(slot, indicator.failure)
        if history is not None and key in self._slots:
            self._guarded(slot, "warm", slot.warm, history.columns(indicator.inputs), False)
        if rebuild:
            self._rebuild()
        return key

    def remove(self, key: str) -> None:
        slot = self._slots.pop(key, None)
        if slot is not None and isinstance(slot.indicator, SafeIndicator):
            slot.indicator.listeners.remove(self._plugin_failed)
        self.failures.pop(key, None)
        self._rebuild()

    # --- history -----------------------------------------------------------------------

    def warm(self, history: Bars) -> None:
        """Reset every indicator and open it on ``history`` (oldest first); the next
        :meth:`update` must be a later bar."""
        for slot in list(self._slots.values()):
            self._guarded(slot, "warm", slot.warm, history.columns(slot.indicator.inputs), False)
        self._last[0] = int(history.ts[-1]) if len(history) else _NEVER
        self._rebuild()

    def warm_and_fill(self, history: Bars) -> Series:
        """:meth:`warm`, also returning every output over ``history`` (one pass for
        TA-Lib's built-ins) — what :meth:`batch` would return."""
        out: Series = {}
        for slot in list(self._slots.values()):
            cols = history.columns(slot.indicator.inputs)
            arrays = self._guarded(slot, "warm", slot.warm, cols, True)
            if arrays is not None and slot.key in self._slots:
                out[slot.key] = dict(zip(slot.outputs, arrays, strict=True))
        self._last[0] = int(history.ts[-1]) if len(history) else _NEVER
        self._rebuild()
        return out

    def batch(self, bars: Bars) -> Series:
        """Every output of every running indicator over ``bars``; commits nothing."""
        out: Series = {}
        masks: dict[tuple[str, ...], Any] = {}
        for slot in list(self._slots.values()):
            cols = bars.columns(slot.indicator.inputs)
            mask = masks.get(slot.indicator.inputs, False)
            if mask is False:
                mask = masks[slot.indicator.inputs] = finite_rows(cols)
            rows = cols if mask is None else tuple(c[mask] for c in cols)
            arrays = self._guarded(slot, "batch", batch_rows, slot.indicator, rows)
            if arrays is None:
                continue
            if mask is not None:
                arrays = scatter(arrays, mask, len(bars))
            out[slot.key] = dict(zip(slot.outputs, arrays, strict=True))
        return out

    # --- bars --------------------------------------------------------------------------

    def current(self) -> Values:
        """Values at the last committed bar (NaN while warming)."""
        out: Values = {}
        for slot in self._slots.values():
            stream = slot.stream
            value = slot.nan
            if stream is not None:
                value = self._guarded(slot, "value", getattr, stream, "value", default=slot.nan)
            out[slot.key] = slot.pack(value)
        return out

    # --- internals ---------------------------------------------------------------------

    def _rebuild(self) -> None:
        slots = list(self._slots.values())
        self._layout = tuple(self._slots)
        failed = self._failed_at(slots)
        last, stale, bad = self._last, self._stale_bar, self._bad_bar
        self.update = compile_step(slots, True, last, stale, self._partial, failed, bad)
        self.preview = compile_step(slots, False, last, stale, self._partial, failed, bad)
        self.step = compile_step(
            slots,
            True,
            last,
            self._stale_step,
            self._partial_step,
            self._failed_at(slots, False),
            self._bad_step,
            packed=False,
        )

    def _failed_at(self, slots: list[Slot], packed: bool = True) -> Callable[[int, Exception], Any]:
        def failed(index: int, exc: Exception) -> Any:
            slot = slots[index]
            self._disable(slot, f"update: {type(exc).__name__}: {exc}", exc)
            return slot.pack(slot.nan) if packed else slot.nan

        return failed

    def _stale_bar(self, bar: Any) -> Values:
        self._stale.inc()
        return {}

    def _stale_step(self, bar: Any) -> Native:
        self._stale.inc()
        return ()

    def _partial(self, bar: Any, commit: bool) -> Values:
        """A bar with a non-finite value: each indicator takes it only if its own
        inputs are finite."""
        out: Values = {}
        for slot, value in self._partial_values(bar, commit):
            if value is not _SKIPPED:
                out[slot.key] = slot.pack(value)
        return out

    def _partial_step(self, bar: Any, commit: bool) -> Native:
        values = [None if v is _SKIPPED else v for _, v in self._partial_values(bar, commit)]
        return tuple(values) if any(v is not None for v in values) else ()

    def _partial_values(self, bar: Any, commit: bool) -> list[tuple[Slot, Any]]:
        self._nonfinite.inc()
        out: list[tuple[Slot, Any]] = []
        took = False
        for slot in list(self._slots.values()):
            value: Any = _SKIPPED
            if all(bar[i] - bar[i] == 0.0 for i in slot.fields):
                fn = slot.update_fn if commit else slot.peek_fn
                args = [bar[i] for i in slot.fields]
                value = self._guarded(slot, "update", fn, *args, default=slot.nan)
                took = True
            out.append((slot, value))
        if took and commit:
            self._last[0] = bar[0]
        return out

    def _guarded(
        self, slot: Slot, action: str, fn: Callable[..., Any], *args: Any, default: Any = None
    ) -> Any:
        """``fn(*args)``, or ``default`` after disabling ``slot`` if it raises."""
        try:
            return fn(*args)
        except Exception as exc:
            self._disable(slot, f"{action}: {type(exc).__name__}: {exc}", exc)
            return default

    def _bad_bar(self, bar: Any, exc: Exception) -> Values:
        self._invalid.inc()
        self._log.warning("Cannot apply bar {!r}: {}: {}", bar, type(exc).__name__, exc)
        return {}

    def _bad_step(self, bar: Any, exc: Exception) -> Native:
        self._bad_bar(bar, exc)
        return ()

    def _plugin_failed(self, indicator: SafeIndicator, reason: str) -> None:
        slot = self._slots.get(indicator.key)
        if slot is not None and slot.indicator is indicator:
            self._disable(slot, reason)

    def _disable(self, slot: Slot, reason: str, exc: Exception | None = None) -> None:
        if self._slots.get(slot.key) is not slot:
            return
        indicator = slot.indicator
        if isinstance(indicator, SafeIndicator):
            if indicator.failure is None:  # it logs, counts, and calls _plugin_failed
                indicator.disable(reason, exc)
                return
        else:
            self._stats.counter(FAILURES, FAILURES_HELP, indicator=indicator.name).inc()
            self._log.opt(exception=exc).error(
                "Cannot run indicator {}: {}; disabled", slot.key, reason
            )
        del self._slots[slot.key]
        self.failures[slot.key] = reason
        self._rebuild()
        if self.on_failure is not None:
            try:
                self.on_failure(slot.key, reason)
            except Exception:
                self._log.exception("Cannot report the failure of indicator {}", slot.key)

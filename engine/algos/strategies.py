"""Custom strategies: operator rules "when signal S fires on symbol X (and a condition
holds), start algorithm A with parameters P", run by the execution process.

Definition (``custom_strategies``, one writer: this process; see
:class:`StrategyStore`): a name, the signal rule and optionally one symbol (None: every
symbol the rule fires on), a condition, the algorithm (kind and parameters, validated
when the strategy is stored), the parent's account, side and quantity, a cooldown in
seconds between two starts and a maximum number of starts per UTC day.

Condition (a JSON object; every key optional, any other key is refused):

``kind``          the signal's kind must be this (e.g. ``"oversold_entry"``)
``min_strength``  the signal's strength must be at least this (0 … 1)
``indicator``     an indicator of the signal's symbol and interval, named as published in
                  ``IndicatorUpdated.indicator`` (``"rsi_14"``), or ``"<key>.<output>"``
                  for one output of a multi-output indicator (``"macd_12_26_9.macdhist"``;
                  without an output: ``value``, or the only output), tested with
``below``         … its latest closed-bar value must be strictly below this, and/or
``above``         … strictly above this (no value yet, or NaN: the condition fails)
``real_only``     true: signals of the synthetic market (``simulated``) are skipped

Simulated signals *do* trigger by default: offline the platform is a simulator whose
only market is the synthetic one, and trading it is the point. A strategy meant for real
market data only says ``"real_only": true``.

Triggering (:class:`StrategyRunner`): on a ``SignalRaised`` every enabled strategy of
its rule and symbol whose condition holds, that is not in its cooldown (since its last
start) and has not reached its maximum for the UTC day, starts its algorithm through
:meth:`~engine.algos.engine.AlgoEngine.create` — the same risk check as an operator's
start — with ``command_id`` ``strategy:<name>:<signal event id>``: the same signal
delivered again never starts a second parent. Each start updates the strategy's
counters and publishes ``AlgorithmTriggered`` on ``exec.trigger.<name>``. A start the
engine refuses (risk denial, parameters that do not fit the symbol …) is logged and
raised as an ``AlertRaised`` of kind ``strategy.start_failed``; it does not count as a
trigger. Nothing a strategy does is raised into the bus handler.

Indicator values: the runner keeps the latest value of each (symbol, interval,
indicator) from ``IndicatorUpdated`` on closed bars (previews of forming bars are
ignored), at most :data:`MAX_INDICATOR_VALUES` of them (the oldest is forgotten). The
analysis process publishes a bar's indicators before the signals of that bar, so a
condition sees the values the rule saw.
"""

from __future__ import annotations

import hashlib
from typing import Any

from loguru import logger
from sqlalchemy import Engine

from engine.algos.engine import AlgoEngine
from engine.algos.strategy_store import Condition, Strategy, StrategyStore
from engine.bus import topics
from engine.bus.events import AlertRaised, AlgorithmTriggered, IndicatorUpdated, SignalRaised
from engine.errors import CommandError
from engine.orders import requests
from engine.service import ServiceContext

MAX_INDICATOR_VALUES = 10_000
"""Latest indicator values kept (one per symbol, interval and indicator)."""


class StrategyRunner:
    """Starts the algorithms of the custom strategies when their signals fire (see the
    module docstring). ``algos`` is the execution process's algorithm engine."""

    def __init__(self, algos: AlgoEngine, *, engine: Engine) -> None:
        self.algos = algos
        self.store = StrategyStore(engine)
        self.values: dict[tuple[str, str, str], dict[str, float]] = {}
        """(symbol, interval, indicator) → its latest outputs (closed bars)."""
        self._ctx: ServiceContext | None = None
        self._log = logger.bind(component="strategies")

    def start(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._results = {
            result: ctx.stats.counter(
                "qsuite_strategy_signals_total",
                "Signals that matched a custom strategy, by what became of them",
                result=result,
            )
            for result in ("started", "skipped", "failed")
        }
        for problem in self.store.load():
            self._log.warning("Cannot load a strategy: {}", problem)
        ctx.subscribe(topics.SIGNALS, self._on_signal)
        ctx.subscribe(topics.INDICATORS, self._on_indicator)
        self._log.info("{} custom strategies loaded", len(self.store.all()))

    def now(self) -> int:
        assert self._ctx is not None
        return self._ctx.clock.time_ns()

    # --- events ----------------------------------------------------------------------------

    def _on_indicator(self, _topic: str, event: Any) -> None:
        if not isinstance(event, IndicatorUpdated) or event.forming:
            return
        key = (event.symbol, event.interval, event.indicator)
        if key not in self.values and len(self.values) >= MAX_INDICATOR_VALUES:
            del self.values[next(iter(self.values))]
        self.values[key] = event.values

    def _on_signal(self, _topic: str, event: Any) -> None:
        if not isinstance(event, SignalRaised):
            return
        for strategy in self.store.matching(event.rule, event.symbol):
            try:
                self._consider(strategy, event)
            except Exception as exc:  # one strategy must not stop the others or the loop
                self._results["failed"].inc()
                self._log.opt(exception=exc).bind(symbol=event.symbol).error(
                    "Cannot run strategy {} on {} {}: {!r}",
                    strategy.name,
                    event.rule,
                    event.symbol,
                    exc,
                )

    def _consider(self, strategy: Strategy, signal: SignalRaised) -> None:
        log = self._log.bind(symbol=signal.symbol, strategy=strategy.name)
        now = self.now()
        why = strategy.condition.refuses(signal, self._value(strategy.condition, signal))
        why = why or strategy.waits(now)
        command_id = trigger_command_id(strategy.name, signal)
        if not why and self.algos.store.by_command(command_id) is not None:
            why = f"signal {signal.event_id} started its algorithm already"
        if why:
            self._results["skipped"].inc()
            log.debug(
                "Strategy {} skips {} {} on {}: {}",
                strategy.name,
                signal.rule,
                signal.kind,
                signal.symbol,
                why,
            )
            return
        try:
            row = self.algos.create(
                algo_type=strategy.algo_type,
                account=strategy.account,
                symbol=signal.symbol,
                side=strategy.side,
                qty=strategy.qty,
                params=dict(strategy.algo_params),
                start_at_ns=None,
                command_id=command_id,
                actor=f"strategy:{strategy.name}",
                strategy_id=strategy.id,
            )
        except CommandError as exc:
            self._results["failed"].inc()
            self._start_failed(strategy, signal, exc)
            return
        self._results["started"].inc()
        row.strategy = strategy.name  # the live row, read by ListAlgos (create knows the id only)
        try:
            self.store.record_trigger(strategy, now)
        except Exception as exc:  # counted in memory: the loop goes on
            log.opt(exception=exc).error(
                "Cannot record the trigger of strategy {} in the database: {!r}",
                strategy.name,
                exc,
            )
        assert self._ctx is not None
        self._ctx.publish(
            topics.algo_trigger(strategy.name),
            AlgorithmTriggered(
                ts_event=now,
                strategy=strategy.name,
                signal_rule=signal.rule,
                symbol=signal.symbol,
                algo_id=row.algo_id,
                algo_type=row.algo_type,
                signal_event_id=signal.event_id,
            ),
        )
        log.bind(algo_id=row.algo_id).info(
            "Strategy {} started {} ({} {} {} {}) on {} {} ({})",
            strategy.name,
            row.algo_id,
            row.algo_type,
            row.side,
            row.qty,
            row.symbol,
            signal.rule,
            signal.kind,
            signal.event_id or "no event id",
        )

    def _start_failed(self, strategy: Strategy, signal: SignalRaised, exc: CommandError) -> None:
        message = (
            f"Cannot start {strategy.algo_type} for strategy {strategy.name} on {signal.rule} "
            f"{signal.kind} {signal.symbol}: {exc.message}"
        )
        self._log.bind(symbol=signal.symbol, strategy=strategy.name).warning(message)
        self.algos.port.alert(
            AlertRaised(
                ts_event=self.now(),
                severity="warning",
                kind="strategy.start_failed",
                message=f"{message}; fix the strategy (`qsuite ctl strategy set`) or the "
                "risk limits",
                symbol=signal.symbol,
                account=strategy.account,
                details={
                    "strategy": strategy.name,
                    "signal_rule": signal.rule,
                    "signal_event_id": signal.event_id,
                    "code": exc.code,
                },
            )
        )

    def _value(self, condition: Condition, signal: SignalRaised) -> float | None:
        if condition.indicator is None:
            return None
        key, _, output = condition.indicator.partition(".")
        outputs = self.values.get((signal.symbol, signal.interval, key))
        if not outputs:
            return None
        if output:
            return outputs.get(output)
        if "value" in outputs:
            return outputs["value"]
        return next(iter(outputs.values())) if len(outputs) == 1 else None


def trigger_command_id(name: str, signal: SignalRaised) -> str:
    """``strategy:<name>:<signal event id>`` (at most 64 characters: a longer one keeps
    its start and ends with a hash of the whole). A signal without an event id is named
    by its rule, kind, symbol, interval and bar."""
    key = signal.event_id or (
        f"{signal.rule}:{signal.kind}:{signal.symbol}:{signal.interval}:{signal.ts}"
    )
    full = f"strategy:{name}:{key}"
    if len(full) <= requests.MAX_ID:
        return full
    digest = hashlib.blake2b(full.encode(), digest_size=8).hexdigest()
    return f"{full[: requests.MAX_ID - len(digest) - 1]}~{digest}"


# --- internals ---------------------------------------------------------------------------

"""The analysis process: closed bars in, indicator and signal events out.

- Subscribes to ``md.bar`` and follows every symbol of the configured intervals: each
  new ``(symbol, interval)`` is warmed from the stored bars, then updated in O(1) per
  indicator per bar, publishing ``IndicatorUpdated`` (``ind.<key>.<symbol>.<interval>``)
  and ``SignalRaised`` (``sig.<rule>.<symbol>``); values and signals are persisted
  (values in batches every ``flush_interval_s``, off the loop).
- Subscribes to ``md.backfill``: a finished backfill of a symbol (the hand-off of the
  scheduler's job chain) recomputes that symbol in batch over its stored history,
  persists every indicator value and the signals the history holds, and continues
  streaming from there.
- Subscribes to ``md.trade`` and ``md.quote`` to follow each pair's forming bar, and
  every ``preview_interval_s`` previews the indicators on the bars that moved
  (``IndicatorUpdated`` with ``forming=True``; nothing is committed or stored).
- Serves a late joiner a snapshot (``GetIndicators``: the latest values with ``as_of``),
  after which it applies newer ``IndicatorUpdated`` events only; ``GetSignals``,
  ``ListAnalysis`` and ``SetRuleEnabled`` for the operator.

A failing indicator plugin or signal rule is disabled for that symbol with a reason:
health turns degraded and says which, an ``AlertRaised`` (``alert.warning``, kind
``analysis.indicator_disabled`` or ``analysis.rule_disabled``) tells the operator, and
the rest keep running.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import msgspec
from loguru import logger
from sqlalchemy import Engine

from app.settings import AnalysisSettings
from engine.analysis.forming import FormingBars
from engine.analysis.track import Row, Track, bank_for, bars_of
from engine.bus import topics
from engine.bus.commands.analysis import (
    AnalysisCatalog,
    CatalogEntry,
    GetIndicators,
    GetSignals,
    IndicatorSeries,
    IndicatorSnapshot,
    ListAnalysis,
    ParamInfo,
    RuleToggled,
    SetRuleEnabled,
    SignalList,
    SignalRow,
)
from engine.bus.events import (
    AlertRaised,
    BackfillCompleted,
    BarClosed,
    IndicatorUpdated,
    QuoteUpdated,
    SignalRaised,
    TradeReported,
)
from engine.errors import CommandError, ConfigError, ErrorCode
from engine.indicators.base import Bar, Indicator
from engine.indicators.registry import IndicatorRegistry
from engine.persistence.bars import load_bars
from engine.persistence.indicators import upsert_indicator_values
from engine.persistence.models import BarFlag
from engine.service import HealthStatus, ServiceContext
from engine.signals import registry as rules_registry
from engine.signals.engine import SignalEngine
from engine.signals.store import load_signals, save_signals, seen_in

#: Stored bars a backfill re-evaluation reads at most.
REEVALUATE_BARS = 200_000


class AnalysisService:
    def __init__(
        self,
        settings: AnalysisSettings,
        *,
        engine: Engine,
        registry: IndicatorRegistry,
        rule_factory: Callable[[str], Any] = rules_registry.create,
        persist: bool = True,
    ) -> None:
        self.settings = settings
        self.persist = persist
        """False (backtests): nothing is written or read back — indicator values and
        signals live in events only, and a signal is unique within the run."""
        self.engine = engine
        self.registry = registry
        self.rule_factory = rule_factory
        self.tracks: dict[tuple[str, str], Track] = {}
        self.disabled: dict[str, str] = {}
        """``<symbol>/<key or rule>`` → why it is disabled."""
        self._rules_off: dict[str, set[str]] = {}
        self._pending: list[Row] = []
        self._topics: dict[tuple[str, str, str], str] = {}
        self._flushing = False
        self.forming = FormingBars(settings.intervals)
        self._ctx: ServiceContext | None = None
        self._log = logger.bind(component="analysis")

    def check_configuration(self) -> None:
        """Refuse to start on an indicator or rule the registries cannot build."""
        for spec in self.settings.indicators:
            try:
                self._indicator(spec)
            except Exception as exc:
                raise ConfigError("analysis.indicators", f"{spec!r}: {exc}") from None
        for name in self.settings.rules:
            try:
                self.rule_factory(name)
            except Exception as exc:
                raise ConfigError("analysis.rules", f"{name!r}: {exc}") from None

    # --- Service -----------------------------------------------------------------------
    def start(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        ctx.subscribe(topics.BARS, self._on_bar)
        ctx.subscribe(topics.BACKFILLS, self._on_backfill)
        ctx.register_command(GetIndicators, self._indicators)
        ctx.register_command(GetSignals, self._signals)
        ctx.register_command(ListAnalysis, self._catalog)
        ctx.register_command(SetRuleEnabled, self._toggle)
        ctx.call_every(self.settings.flush_interval_s, self._flush, "analysis-flush")
        if self.settings.preview_interval_s > 0:
            ctx.subscribe(topics.TRADES, self._on_price)
            ctx.subscribe(topics.QUOTES, self._on_price)
            ctx.call_every(self.settings.preview_interval_s, self._preview, "analysis-preview")

    def health(self) -> tuple[HealthStatus, str]:
        if self.disabled:
            first = next(iter(self.disabled.items()))
            return "degraded", f"{len(self.disabled)} disabled, e.g. {first[0]}: {first[1]}"
        return "up", f"{len(self.tracks)} symbol/interval pair(s) followed"

    def stop(self) -> None:
        if self._pending:
            upsert_indicator_values(self.engine, self._pending)
            self._pending = []
        self.engine.dispose()

    # --- bars --------------------------------------------------------------------------
    def _on_bar(self, _topic: str, event: Any) -> None:
        if not isinstance(event, BarClosed) or event.interval not in self.settings.intervals:
            return
        track = self._track(event.symbol, event.interval)
        self.forming.closed(event.symbol, event.interval, event.ts)
        values, rows, signals = track.update(Bar.of(event), event.ts_event)
        self._publish_values(event.symbol, event.interval, event.ts, event.ts_event, values)
        if self.persist:
            self._pending += rows
        if event.simulated:
            signals = [msgspec.structs.replace(s, simulated=True) for s in signals]
        self._raise(signals, publish=True)

    def _publish_values(
        self,
        symbol: str,
        interval: str,
        ts: int,
        ts_event: int,
        values: dict[str, dict[str, float]],
        forming: bool = False,
    ) -> None:
        assert self._ctx is not None
        for key, outputs in values.items():
            topic = self._topics.get((key, symbol, interval))
            if topic is None:
                topic = self._topics[(key, symbol, interval)] = topics.indicator(
                    key, symbol, interval
                )
            self._ctx.publish(
                topic,
                IndicatorUpdated(
                    ts_event=ts_event,
                    symbol=symbol,
                    interval=interval,
                    ts=ts,
                    indicator=key,
                    values=outputs,
                    forming=forming,
                ),
            )

    def _on_price(self, _topic: str, event: Any) -> None:
        if isinstance(event, TradeReported):
            self.forming.price(event.symbol, event.ts_event, event.price, event.size)
        elif isinstance(event, QuoteUpdated):
            self.forming.price(event.symbol, event.ts_event, event.last)

    def _preview(self) -> None:
        """Indicators on every forming bar that moved; commits nothing."""
        assert self._ctx is not None
        now = self._ctx.clock.time_ns()
        for symbol, interval, bar in list(self.forming.changed()):
            track = self._track(symbol, interval)
            last = track.bank.last_ts
            if last is not None and bar.ts <= last:
                continue
            values = track.bank.preview(bar)
            self._publish_values(symbol, interval, bar.ts, now, values, forming=True)

    def _on_backfill(self, _topic: str, event: Any) -> None:
        if (
            not isinstance(event, BackfillCompleted)
            or event.interval not in self.settings.intervals
        ):
            return
        started = len(self._pending)
        track = self._track(
            event.symbol, event.interval, fresh=True, limit=REEVALUATE_BARS, store_rows=True
        )
        self._log.bind(symbol=event.symbol).info(
            "Re-evaluated {} {} after backfill run {}: {} value(s) to store",
            event.symbol,
            event.interval,
            event.run_id,
            len(self._pending) - started,
        )
        del track

    def _track(
        self,
        symbol: str,
        interval: str,
        *,
        fresh: bool = False,
        limit: int | None = None,
        store_rows: bool = False,
    ) -> Track:
        key = (symbol, interval)
        track = self.tracks.get(key)
        if track is not None and not fresh:
            return track
        indicators = [self._indicator(spec) for spec in self.settings.indicators]
        rules = [self.rule_factory(name) for name in self.settings.rules]
        signals = SignalEngine(
            symbol,
            interval,
            rules,
            seen=seen_in(self.engine) if self.persist else None,
            on_failure=lambda rule, why: self._disabled(symbol, interval, "rule", rule, why),
        )
        for rule in self._rules_off.get(symbol, ()):
            signals.disable(rule, "disabled by operator")
        specs: dict[Any, tuple[str, str]] = {}
        for spec in signals.required:
            indicator: Indicator = self.registry.create(spec.indicator, **spec.params_dict)
            indicators.append(indicator)
            specs[spec] = (indicator.key, spec.output)
        bank = bank_for(
            symbol,
            interval,
            indicators,
            lambda key, why: self._disabled(symbol, interval, "indicator", key, why),
        )
        track = Track(
            symbol, interval, bank, signals, specs, snapshot_bars=self.settings.snapshot_bars
        )
        history = (
            load_bars(
                self.engine,
                symbol,
                interval,
                limit=limit or self.settings.history_bars,
                newest=True,
            )
            if self.persist
            else []
        )
        rows, raised = track.warm(bars_of(history))
        simulated = {b.ts for b in history if b.flags & BarFlag.SIMULATED}
        raised = [msgspec.structs.replace(s, simulated=s.ts in simulated) for s in raised]
        if store_rows:
            self._pending += rows
        self._raise(raised, publish=False)
        self.tracks[key] = track
        return track

    def _indicator(self, spec: str) -> Indicator:
        """A configured indicator: a bare name means its default parameters."""
        if spec in self.registry.names():
            return self.registry.create(spec)
        return self.registry.create_spec(spec)

    def _raise(self, signals: list[SignalRaised], *, publish: bool) -> None:
        if not signals:
            return
        if self.persist:
            save_signals(self.engine, signals)
        if publish and self._ctx is not None:
            for signal in signals:
                self._ctx.publish(topics.signal(signal.rule, signal.symbol), signal)

    def _disabled(self, symbol: str, interval: str, what: str, name: str, why: str) -> None:
        self.disabled[f"{symbol}/{name}"] = why
        self._log.bind(symbol=symbol).error(
            "{} {} disabled for {} {}: {}", what.capitalize(), name, symbol, interval, why
        )
        if what == "indicator":
            todo = "fix the plugin and restart the analysis process"
        else:
            todo = f"fix the rule, then `qsuite ctl rule {symbol} {name} on`"
        if self._ctx is not None:
            self._ctx.publish(
                topics.alert("warning"),
                AlertRaised(
                    ts_event=self._ctx.clock.time_ns(),
                    severity="warning",
                    kind=f"analysis.{what}_disabled",
                    message=f"{what.capitalize()} {name} stopped for {symbol} {interval}: "
                    f"{why}. The others keep running; {todo}.",
                    symbol=symbol,
                    details={"interval": interval, what: name, "reason": why},
                ),
            )

    def _flush(self) -> None:
        if self._flushing or not self._pending or self._ctx is None:
            return
        rows, self._pending = self._pending, []
        self._flushing = True
        self._ctx.run_in_worker(lambda: upsert_indicator_values(self.engine, rows), self._flushed)

    def _flushed(self, future: Future[int]) -> None:
        self._flushing = False
        if future.exception() is not None:
            self._log.opt(exception=future.exception()).error("Cannot store indicator values")

    # --- commands ----------------------------------------------------------------------
    def _indicators(self, cmd: GetIndicators) -> IndicatorSnapshot:
        if cmd.interval not in self.settings.intervals:
            analysed = ", ".join(self.settings.intervals)
            raise CommandError(
                ErrorCode.INVALID, f"interval {cmd.interval} is not analysed; analysed: {analysed}"
            )
        track = self._track(cmd.symbol, cmd.interval)
        series = []
        for key, recent in track.recent.items():
            entries = list(recent)[-cmd.last :]
            outputs = sorted({o for _, values in entries for o in values})
            series.append(
                IndicatorSeries(
                    indicator=key,
                    ts=[ts for ts, _ in entries],
                    values={
                        o: [values.get(o, float("nan")) for _, values in entries] for o in outputs
                    },
                )
            )
        return IndicatorSnapshot(
            symbol=cmd.symbol, interval=cmd.interval, as_of=track.bank.last_ts, series=series
        )

    def _signals(self, cmd: GetSignals) -> SignalList:
        rows = load_signals(
            self.engine, symbol=cmd.symbol, interval=cmd.interval, since=cmd.since, limit=cmd.limit
        )
        return SignalList(
            signals=[
                SignalRow(
                    simulated=r.simulated,
                    symbol=r.symbol,
                    interval=r.interval,
                    ts=r.ts,
                    rule=r.rule,
                    kind=r.kind,
                    indicator=r.indicator,
                    strength=r.strength,
                    details=r.details,
                )
                for r in rows
            ]
        )

    def _catalog(self, _cmd: ListAnalysis) -> AnalysisCatalog:
        indicators = [
            CatalogEntry(
                name=i.name,
                description=i.summary,
                outputs=i.outputs,
                source=i.source,
                params=[
                    ParamInfo(
                        name=p.name, type=p.type, default=p.default, description=p.description
                    )
                    for p in i.params
                ],
            )
            for i in self.registry.list()
        ]
        rules = [
            CatalogEntry(
                name=r.name,
                description=r.description,
                outputs=r.kinds,
                params=[
                    ParamInfo(
                        name=n,
                        type=str(p.get("type", "")),
                        default=p.get("default"),
                        description=str(p.get("description", "")),
                    )
                    for n, p in r.params.get("properties", {}).items()
                ],
            )
            for r in rules_registry.describe()
        ]
        return AnalysisCatalog(indicators=indicators, rules=rules, disabled=dict(self.disabled))

    def _toggle(self, cmd: SetRuleEnabled) -> RuleToggled:
        if cmd.rule not in self.settings.rules:
            raise CommandError(
                ErrorCode.NOT_FOUND,
                f"rule {cmd.rule!r} is not evaluated here; rules: {', '.join(self.settings.rules)}",
            )
        off = self._rules_off.setdefault(cmd.symbol, set())
        (off.discard if cmd.enabled else off.add)(cmd.rule)
        for (symbol, _), track in self.tracks.items():
            if symbol == cmd.symbol:
                if cmd.enabled:
                    track.signals.enable(cmd.rule)
                else:
                    track.signals.disable(cmd.rule, f"disabled by {cmd.actor or 'an operator'}")
        self._log.bind(symbol=cmd.symbol, command_id=cmd.command_id).info(
            "Rule {} {} for {} by {}",
            cmd.rule,
            "enabled" if cmd.enabled else "disabled",
            cmd.symbol,
            cmd.actor or "unknown",
        )
        return RuleToggled(symbol=cmd.symbol, rule=cmd.rule, enabled=cmd.enabled)

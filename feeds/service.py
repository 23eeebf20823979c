"""The feed process: live market data in, one bus and one cache out, degrading visibly.

Modes (published as ``FeedStateChanged`` on ``md.feed.<source>`` and shown in health):

``live``       the configured source answers; its bars and quotes are published.
``simulated``  the source is unreachable (or not answered yet) and ``feed.fallback`` is
               ``synthetic``: a synthetic market seeded from the last known prices
               publishes bars, quotes and trades, every one flagged ``simulated``;
               a symbol without a trade for ``feed.quote_refresh_s`` has its
               prevailing quote published again, stamped now.
``cached``     the source is unreachable and the fallback is ``cached`` (or ``none``):
               nothing new is published; readers get the last cached data and its age.

The source is only reached through its circuit breaker; a poll runs in a worker thread
so the loop keeps serving queries. When the breaker lets a trial call through and it
succeeds, the feed goes back to ``live`` by itself. A feed configured with
``source = "synthetic"`` is simulated by design and healthy.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import cast

import msgspec
import pandas as pd
from loguru import logger

from app.settings import FeedSettings
from engine.bus import topics
from engine.bus.commands.market import (
    FeedStatus,
    GetFeedStatus,
    Scenario,
    ScenarioSet,
    SetScenario,
)
from engine.bus.events import BreakerState, FeedMode, FeedStateChanged, Origin, QuoteUpdated
from engine.intervals import interval_ns
from engine.persistence.bars import BAR_COLUMNS, latest_ts
from engine.service import HealthStatus, ServiceContext
from feeds.breaker import FAILURES, CircuitBreaker
from feeds.cache import PriceCache
from feeds.ingest import Ingestor
from feeds.normalizer import QuoteRejected, normalize_quote
from feeds.queries import MarketQueries
from feeds.replay import ReplaySource
from feeds.schema import NS, Quote, quote_event, quote_of
from feeds.source import MarketSource
from feeds.synthetic import SyntheticMarket

#: How many bar intervals of history a live poll asks for (catches up short outages).
POLL_LOOKBACK_BARS = 5
STATE_INTERVAL_S = 10.0
"""How often the feed re-announces its state (FeedStateChanged) for late joiners."""
#: Bars handed to the loop at once when a replay runs at full speed.
REPLAY_BATCH = 20_000
#: How much synthetic history a symbol gets when the simulated market starts without it.
SIMULATED_HISTORY_NS = 86_400 * 1_000_000_000


@dataclass(slots=True)
class _Poll:
    bars: dict[str, pd.DataFrame]
    quotes: list[Quote]


class FeedService:
    """Hosts the live source, the fallback market, the price cache and the queries."""

    def __init__(
        self,
        settings: FeedSettings,
        *,
        ingestor: Ingestor,
        cache: PriceCache,
        queries: MarketQueries,
        market: SyntheticMarket,
        source: MarketSource | None,
        breaker: CircuitBreaker,
        stopping: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.ingestor = ingestor
        self.cache = cache
        self.queries = queries
        self.market = market
        self.source = source  # None: the synthetic market is the configured source
        self.breaker = breaker
        self.mode: FeedMode = (
            "simulated" if source is None or settings.fallback == "synthetic" else "cached"
        )
        if isinstance(source, ReplaySource):
            self.mode = "delayed"  # set with its reason when the replay starts
        self.reason = (
            "synthetic market (configured)" if source is None else "waiting for the first answer"
        )
        self._ctx: ServiceContext | None = None
        self.stopping = stopping or threading.Event()
        self._polling = False
        self._last_live_at: int | None = None
        self._quoted: dict[str, int] = {}
        """Symbol → when its last simulated quote was published (the refresh's clock)."""
        self._log = logger.bind(component="feed")

    # --- Service -----------------------------------------------------------------------
    def start(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self.queries.register(ctx)
        ctx.register_command(GetFeedStatus, self._status)
        ctx.register_command(SetScenario, self._set_scenario)
        self.breaker.on_change.append(self._on_breaker_change)
        if self.mode == "simulated":
            self._enter_simulated(self.reason)
        ctx.call_every(self.settings.tick_interval_s, self._tick, "feed-tick")
        if isinstance(self.source, ReplaySource):
            self._start_replay(self.source)
        elif self.source is not None:
            ctx.call_every(self.settings.poll_interval_s, self._poll, "feed-poll")
            self._poll()
        self._publish_state()
        ctx.call_every(STATE_INTERVAL_S, self._publish_state, "feed-state")

    def health(self) -> tuple[HealthStatus, str]:
        if self.source is None or self.mode == "live":
            return "up", self.reason if self.source is None else ""
        if isinstance(self.source, ReplaySource):
            return "up", self.reason
        breaker = f"{self.breaker.name} breaker {self.breaker.state}"
        return "degraded", f"{self.mode.upper()}: {self.reason} ({breaker})"

    def stop(self) -> None:
        self.stopping.set()  # a replay worker stops between bars (its sleeps wait on this)
        self.cache.close()
        self.ingestor.log.close()

    # --- commands ----------------------------------------------------------------------
    def _status(self, _cmd: GetFeedStatus) -> FeedStatus:
        return FeedStatus(
            mode=self.mode,
            breaker=self.breaker.state,
            reason=self.reason,
            watchlist=list(self.settings.watchlist),
            interval=self.settings.interval,
            scenario=cast(Scenario, self.market.scenario),
            last_live_at=self._last_live_at,
        )

    def _set_scenario(self, cmd: SetScenario) -> ScenarioSet:
        assert self._ctx is not None
        previous = cast(Scenario, self.market.scenario)
        self.market.switch(cmd.scenario)
        self._log.bind(command_id=cmd.command_id).info(
            "Scenario {} → {} by {}", previous, cmd.scenario, cmd.actor or "unknown"
        )
        self._publish_state()
        return ScenarioSet(
            previous=previous, current=cmd.scenario, applied_at=self._ctx.clock.time_ns()
        )

    # --- live source -------------------------------------------------------------------
    def _poll(self) -> None:
        assert self._ctx is not None
        if self._polling or self.source is None or not self.breaker.allow():
            return
        self._polling = True
        self._ctx.run_in_worker(self._fetch, self._polled)

    def _fetch(self) -> _Poll:
        """In a worker thread: only the source is touched here."""
        assert self.source is not None and self._ctx is not None
        now = self._ctx.clock.time_ns()
        start = now - POLL_LOOKBACK_BARS * interval_ns(self.settings.interval)
        bars = {
            s: self.source.history(s, self.settings.interval, start, now)
            for s in self.settings.watchlist
        }
        return _Poll(bars=bars, quotes=self.source.quotes(self.settings.watchlist))

    def _polled(self, future: Future[_Poll]) -> None:
        """Back on the loop: account the outcome, then ingest and publish."""
        self._polling = False
        exc = future.exception()
        if exc is not None:
            if isinstance(exc, FAILURES):
                self.breaker.record_failure(exc)
                self._degrade(f"{self.breaker.name} unreachable: {exc}")
            else:
                self.breaker.release()
                self._log.opt(exception=exc).error("Cannot poll {}", self.breaker.name)
            return
        self.breaker.record_success()
        assert self._ctx is not None
        self._last_live_at = self._ctx.clock.time_ns()
        if self.mode != "live":
            self._set_mode("live", f"{self.breaker.name} answering")
        poll = future.result()
        assert self.source is not None
        for symbol, raw in poll.bars.items():
            self.ingestor.ingest(
                raw,
                symbol=symbol,
                interval=self.settings.interval,
                origin=self.source.name,
                publish=self._ctx.publish,
            )
        self._quotes(poll.quotes, "live")

    def _on_breaker_change(self, old: BreakerState, new: BreakerState, reason: str) -> None:
        self._log.info("Breaker of {}: {} → {} ({})", self.breaker.name, old, new, reason)
        if self._ctx is not None:  # may fire from a worker thread: publish on the loop
            self._ctx.call_soon_threadsafe(self._publish_state)

    # --- replay ------------------------------------------------------------------------
    def _start_replay(self, source: ReplaySource) -> None:
        """Stream the file through the ingest path at ``feed.replay_speed`` (0: at once)."""
        assert self._ctx is not None
        speed = self.settings.replay_speed or None
        pace = f"{speed:g}x" if speed else "full speed"
        self._set_mode("delayed", f"replaying {source.path.name} at {pace}")
        self._ctx.run_in_worker(lambda: self._replay(source, speed), self._replayed)

    def _replay(self, source: ReplaySource, speed: float | None) -> int:
        """In a worker thread: hand bars to the loop as they fall due (in batches when
        there is no pacing)."""
        assert self._ctx is not None
        batch: list[tuple[object, ...]] = []
        sent = 0
        for bar in source.replay(speed):
            if self.stopping.is_set():
                break
            batch.append(tuple(bar))
            if speed is not None or len(batch) >= REPLAY_BATCH:
                rows, batch = batch, []
                self._ctx.call_soon_threadsafe(partial(self._ingest_rows, rows, source.name))
                sent += len(rows)
        if batch:
            self._ctx.call_soon_threadsafe(partial(self._ingest_rows, batch, source.name))
            sent += len(batch)
        return sent

    def _replayed(self, future: Future[int]) -> None:
        exc = future.exception()
        if exc is not None:
            self._log.opt(exception=exc).error("Cannot replay {}", self.reason)
            self._set_mode("cached", f"replay failed: {exc}")
            return
        self._set_mode("cached", f"replay finished ({future.result()} bars); serving cached data")

    def _ingest_rows(
        self, rows: list[tuple[object, ...]], origin: Origin, *, simulated: bool = False
    ) -> None:
        assert self._ctx is not None
        frame = pd.DataFrame(rows, columns=list(BAR_COLUMNS))
        for (symbol, interval), raw in frame.groupby(["symbol", "interval"], sort=False):
            self.ingestor.ingest(
                raw,
                symbol=str(symbol),
                interval=str(interval),
                origin=origin,
                simulated=simulated,
                publish=self._ctx.publish,
            )

    # --- fallback ----------------------------------------------------------------------
    def _degrade(self, reason: str) -> None:
        if self.settings.fallback == "synthetic":
            if self.mode != "simulated":
                self._enter_simulated(reason)
            self.reason = f"{reason}; serving a simulated market"
        else:
            self._set_mode("cached", f"{reason}; serving cached data")
        self._publish_state()

    def _enter_simulated(self, reason: str) -> None:
        """Seed the synthetic market from the last known prices and give every symbol
        recent history (only after its newest stored bar: real bars are never replaced)."""
        assert self._ctx is not None
        now = self._ctx.clock.time_ns()
        for symbol in self.settings.watchlist:
            known = self.cache.latest_quote(symbol)
            bar = self.cache.latest_bar(symbol, self.settings.interval)
            price = known.last if known else bar.close if bar else self.settings.start_price
            self.market.add_symbol(symbol, price)
            newest = latest_ts(self.ingestor.engine, symbol, self.settings.interval)
            start = max(
                now - SIMULATED_HISTORY_NS, (newest or 0) + interval_ns(self.settings.interval)
            )
            if start < now:
                raw = self.market.history(symbol, self.settings.interval, start, now)
                self.ingestor.ingest(
                    raw,
                    symbol=symbol,
                    interval=self.settings.interval,
                    origin="synthetic",
                    simulated=True,
                )
        self.market.next_bars(now)  # bars before now came from history above
        self.market.ticks(now)
        self._set_mode("simulated", reason)

    def _tick(self) -> None:
        """Simulated mode: publish the synthetic tape and its closed bars."""
        if self.mode != "simulated" or self._ctx is None:
            return
        now = self._ctx.clock.time_ns()
        quotes = []
        for event in self.market.ticks(now):
            topic = (
                topics.quote(event.symbol)
                if isinstance(event, QuoteUpdated)
                else topics.trade(event.symbol)
            )
            self._ctx.publish(topic, event)
            if isinstance(event, QuoteUpdated):
                quotes.append(event)
                self._quoted[event.symbol] = now
        quotes.extend(self._refresh_quotes(now))
        self.cache.put_quotes([quote_of(q) for q in quotes], mode="simulated")
        rows = self.market.next_bars(now)
        if rows:
            self._ingest_rows([tuple(r) for r in rows], "synthetic", simulated=True)

    def _refresh_quotes(self, now: int) -> list[QuoteUpdated]:
        """Publish again, stamped ``now``, the prevailing quote of every symbol without a
        quote for ``quote_refresh_s`` (the synthetic market quotes with its trades only)."""
        assert self._ctx is not None
        refresh_ns = int(self.settings.quote_refresh_s * NS)
        if refresh_ns <= 0:
            return []
        stale = [s for s in self.settings.watchlist if now - self._quoted.get(s, 0) >= refresh_ns]
        out = []
        for quote in self.market.quotes(stale) if stale else ():
            event = quote_event(msgspec.structs.replace(quote, ts=now))
            self._ctx.publish(topics.quote(event.symbol), event)
            self._quoted[event.symbol] = now
            out.append(event)
        return out

    # --- helpers ------------------------------------------------------------------------
    def _quotes(self, quotes: list[Quote], mode: FeedMode) -> None:
        assert self._ctx is not None
        good = []
        for quote in quotes:
            checked = normalize_quote(quote)
            if isinstance(checked, QuoteRejected):
                continue
            good.append(checked)
            self._ctx.publish(topics.quote(checked.symbol), quote_event(checked))
        self.cache.put_quotes(good, mode=mode)

    def _set_mode(self, mode: FeedMode, reason: str) -> None:
        changed = mode != self.mode
        self.mode, self.reason = mode, reason
        if changed:
            self._log.warning("Feed mode {}: {}", mode.upper(), reason)
            self._publish_state()

    def _publish_state(self) -> None:
        if self._ctx is None:
            return
        name = self.source.name if self.source is not None else "synthetic"
        self._ctx.publish(
            topics.feed_state(name),
            FeedStateChanged(
                ts_event=self._ctx.clock.time_ns(),
                feed=name,
                mode=self.mode,
                breaker=self.breaker.state,
                reason=self.reason,
                scenario=self.market.scenario,
            ),
        )

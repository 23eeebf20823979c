"""The algorithm engine: works every parent order of the execution process.

Hosted by :class:`~engine.orders.service.OrderService` (same loop), which sends the
children through the same path as manual orders — the risk gate, the ledger's
write-ahead intent, the venue session — via the :class:`ChildPort` it implements, and
hands back each execution report of a child (:meth:`AlgoEngine.on_child`).

Per parent (:class:`Live`): the algorithm (a pure decision function, see
:mod:`engine.algos.base`) is asked what to do on its start, on every book update and
trade of its symbol, on its own fills and ended children, at the wake-up time it asked
for, and after a resume or a modify. The engine then enforces the hard rules before
anything is sent:

- a child never takes the parent over its quantity: ``filled + working + child <= qty``
  (cut, then rounded down to the lot); nothing below one lot is sent;
- prices are rounded to the tick away from the market (buy down, sell up) and never
  beyond the parent's ``limit_price``; a market child of a parent with a limit becomes a
  limit order at the limit;
- ids are deterministic: ``<algo_id>-<slice>-0`` with the slice number persisted
  (:mod:`engine.algos.store`), written in the same transaction as the ledger's intent;
- a child the risk gate refuses for a passing reason (throttle, stale reference,
  participation, open orders, duplicate, not connected) is tried again after
  ``algos.retry_s``; any other refusal pauses the parent with the reason;
- an exception of the algorithm fails that parent (its working children are cancelled);
  the process and the other parents go on.

Lifecycle: pending (until ``start_at_ns``) → running ⇄ paused → completed | cancelled |
failed; pause, cancel and fail cancel the working children (compensation), then the state
is written. A kill switch that halts a parent's scope pauses it (``risk halt …``); a human
resumes it once the risk halt is lifted.

After a restart (:meth:`AlgoEngine.start`) every active parent is rebuilt from its row
and the ledger (children's fills and working orders) and resumed once the order manager
is connected and has reconciled with the venue; market volume seen before the crash is
restored from the last progress save (volume during the outage is not seen).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import Future
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, Protocol

import msgspec
from loguru import logger
from sqlalchemy import Connection, Engine

from app.settings import AlgoSettings
from engine.algos.base import (
    AlgoParamsError,
    Algorithm,
    Cancel,
    Child,
    Decision,
    History,
    Market,
    ParentSpec,
    Place,
    Progress,
    Why,
)
from engine.algos.live import Live
from engine.algos.market import MarketBoard, SymbolMarket
from engine.algos.monitor import AlgoMonitor
from engine.algos.registry import REGISTRY, UnknownAlgorithmError
from engine.algos.store import ACTIVE_STATES, AlgoStore, Parent, Slice, slice_id
from engine.algos.tca import analyse
from engine.bus import topics
from engine.bus.commands.algos import AlgoTca
from engine.bus.events import (
    AlertRaised,
    AlgoState,
    BookUpdated,
    OrderFilled,
    RiskStateChanged,
    Side,
    TradePrinted,
)
from engine.errors import CommandError, ErrorCode
from engine.orders.lifecycle import ExecutionReport, OrderState, new_order
from engine.risk.decision import Decision as RiskDecision
from engine.risk.decision import RiskOrder
from engine.service import ServiceContext

ZERO = Decimal(0)
NS = 1_000_000_000
TRANSIENT = frozenset(
    {
        "rate_limit",
        "participation",
        "open_orders",
        "no_reference",
        "stale_reference",
        "duplicate_order",
        "not_sent",
        "unavailable",
    }
)
"""Risk refusals of a child that pass by themselves: the algorithm is asked again."""


class ChildPort(Protocol):
    """What the engine needs of the order manager."""

    def ready(self) -> bool:
        """Connected to the venue and reconciled: children may be sent."""

    def place_child(self, order: OrderState, also: Callable[[Connection], None]) -> RiskDecision:
        """Risk-check, record (``also`` in the intent's transaction) and send a child;
        the gate's decision (``not_sent`` when it could not leave)."""

    def cancel_child(self, client_order_id: str) -> bool:
        """Ask the venue to cancel a working child; False when it cannot be sent now."""

    def children(self, algo_id: str) -> list[OrderState]:
        """Every child order of the parent in the ledger, oldest first."""

    def check_parent(self, order: RiskOrder) -> RiskDecision:
        """The risk gate's check of a parent (its plan is registered when allowed)."""

    def accept_parent(self, order: RiskOrder) -> None:
        """Register a parent's plan with the gate without a check (after a restart, or
        to keep the plan of a refused modification)."""

    def parent_done(self, algo_id: str) -> None:
        """The parent ended: the gate forgets its plan."""

    def alert(self, event: AlertRaised) -> None:
        """Store and publish an alert."""

    def mark(self, symbol: str) -> Decimal | None:
        """The order manager's mark of ``symbol`` (the feed's quote mid or its last own
        fill), or None."""


class AlgoEngine:
    def __init__(
        self,
        settings: AlgoSettings,
        *,
        engine: Engine,
        port: ChildPort,
        history: History,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.store = AlgoStore(engine)
        self.port = port
        self.history = history
        self.live: dict[str, Live] = {}
        self._by_symbol: dict[str, dict[str, Live]] = {}
        self._settled: list[tuple[str, str, int]] = []
        self._saving = False
        """Ended children whose slice is written with the next progress save."""
        self.board = MarketBoard(engine)
        self.monitor = AlgoMonitor(settings, port)
        self._ctx: ServiceContext | None = None
        self._log = logger.bind(component="algos")

    # --- start -------------------------------------------------------------------------

    def start(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._decisions = ctx.stats.counter(
            "qsuite_algo_decisions_total", "Decisions asked of execution algorithms"
        )
        self._children = ctx.stats.counter(
            "qsuite_algo_children_total", "Child orders sent by execution algorithms"
        )
        self.monitor.start(ctx)
        ctx.subscribe(topics.BOOKS, self._on_book)
        ctx.subscribe(topics.VENUE_TRADES, self._on_trade)
        ctx.call_every(self.settings.tick_s, self._tick, "algo-tick")
        ctx.call_every(self.settings.progress_interval_s, self._monitor, "algo-progress")
        ctx.call_every(self.settings.save_interval_s, self._save_all, "algo-save")
        for row in self.store.active():
            try:
                self._restore(row)
            except Exception as exc:  # one broken row must not stop the others
                self._log.opt(exception=exc).error("Cannot restore algorithm {}", row.algo_id)
                self.store.update(row.algo_id, state="failed", reason=f"cannot restore: {exc}")

    def stop(self) -> None:
        """Save the progress of every parent (the process is stopping)."""
        try:
            self._save_all(wait=True)
        except Exception as exc:
            self._log.opt(exception=exc).error("Cannot save the algorithms' progress")

    def _restore(self, row: Parent) -> None:
        algo = _build(row)
        live = Live(row=row, algo=algo)
        live.slices = self.store.next_slice(row.algo_id)
        for child in self.port.children(row.algo_id):
            live.filled += child.filled_qty
            live.notional += child.notional
            if child.is_open:
                live.working[child.client_order_id] = _child(child)
            live.last_child_ns = max(live.last_child_ns, child.ts_created)
        market = self._market(row.symbol)
        live.volume_base = market.volume - Decimal(row.progress.get("market_volume", "0"))
        live.notional_base = market.notional - Decimal(row.progress.get("market_notional", "0"))
        live.last_fill_ns = self._now()
        self._add(live)
        self.port.accept_parent(self._risk_order(live))
        self._log.bind(algo_id=row.algo_id).info(
            "Restored algorithm {} ({} {} {} {}): {}, filled {}, {} working",
            row.algo_id,
            row.algo_type,
            row.side,
            row.qty,
            row.symbol,
            live.row.state,
            live.filled,
            len(live.working),
        )
        if live.row.state == "running":
            live.wake_ns = self._now()

    # --- operator actions ----------------------------------------------------------------

    def create(
        self,
        *,
        algo_type: str,
        account: str,
        symbol: str,
        side: Side,
        qty: Decimal,
        params: dict[str, Any],
        start_at_ns: int | None,
        command_id: str,
        actor: str,
        strategy_id: int | None = None,
    ) -> Parent:
        """Validate, risk-check and start (or schedule) a parent; raises CommandError."""
        if command_id:
            existing = self.store.by_command(command_id)
            if existing is not None:
                return existing
        try:
            cls = REGISTRY.get(algo_type)
        except UnknownAlgorithmError as exc:
            raise CommandError(ErrorCode.INVALID, str(exc)) from None
        market = self.board.known(symbol)
        if qty % market.lot != 0:
            raise CommandError(
                ErrorCode.INVALID, f"qty {qty} is not a multiple of {symbol}'s lot {market.lot}"
            )
        now = self._now()
        start = now if start_at_ns is None or start_at_ns <= now else start_at_ns
        algo_id = _algo_id(algo_type, command_id or f"{now}")
        spec = ParentSpec(
            algo_id=algo_id, account=account, symbol=symbol, side=side, qty=qty, start_ns=start
        )
        try:
            parsed = cls.parse(spec, params)
            prepared = cls.prepare(spec, parsed, self.history)
        except AlgoParamsError as exc:
            raise CommandError(ErrorCode.INVALID, f"{algo_type} parameters: {exc}") from None
        row = Parent(
            algo_id=algo_id,
            algo_type=algo_type,
            account=account,
            symbol=symbol,
            side=side,
            qty=qty,
            params=msgspec.to_builtins(prepared),
            state="pending" if start > now else "running",
            command_id=command_id or None,
            strategy_id=strategy_id,
            ts_created=now,
            ts_started=start,
            ts_updated=now,
            arrival_price=self._mid(symbol) if start <= now else None,
        )
        live = Live(row=row, algo=cls(spec, prepared))
        decision = self.port.check_parent(self._risk_order(live))
        if not decision.allowed:
            raise CommandError(
                ErrorCode.DENIED,
                f"risk denied algorithm {algo_id}: {decision.reason} ({decision.limit}): "
                f"{decision.message}",
            )
        stored = self.store.create(row)
        if stored is not row:  # the same command made it before
            return stored
        live.volume_base, live.notional_base = market.volume, market.notional
        live.last_fill_ns = now
        self._add(live)
        self.monitor.state(live, actor, "")
        self._log.bind(algo_id=algo_id, actor=actor).info(
            "Started algorithm {}: {} {} {} {} for {} ({})",
            algo_id,
            algo_type,
            side,
            qty,
            symbol,
            account,
            row.state,
        )
        if row.state == "running":
            self._decide(live, "start")
        return row

    def pause(self, algo_id: str, reason: str, actor: str) -> Parent:
        live = self._live(algo_id, "pause")
        if live.row.state == "paused":
            return live.row
        self._set_state(live, "paused", reason or "paused by the operator", actor)
        return live.row

    def resume(self, algo_id: str, actor: str) -> Parent:
        live = self._live(algo_id, "resume")
        if live.row.state == "running":
            return live.row
        if live.row.state == "pending":
            raise CommandError(ErrorCode.CONFLICT, f"{algo_id} has not started yet (pending)")
        self._set_state(live, "running", "resumed", actor)
        self._decide(live, "resume")
        return live.row

    def modify(
        self, algo_id: str, qty: Decimal | None, changes: dict[str, Any], actor: str
    ) -> Parent:
        live = self._live(algo_id, "modify")
        row = live.row
        new_qty = row.qty if qty is None else qty
        market = self._market(row.symbol)
        if not (new_qty.is_finite() and new_qty > 0) or new_qty % market.lot != 0:
            raise CommandError(
                ErrorCode.INVALID, f"qty must be a positive multiple of the lot {market.lot}"
            )
        if new_qty <= live.filled:
            raise CommandError(
                ErrorCode.INVALID,
                f"qty {new_qty} is not above what {algo_id} filled ({live.filled}); cancel it",
            )
        cls = type(live.algo)
        params = {**row.params}
        if any(name not in cls.prepared for name in changes):
            for name in cls.prepared:  # prepared again for the new parameters
                params.pop(name, None)
        for name, value in changes.items():
            if value is None:
                params.pop(name, None)
            else:
                params[name] = value
        spec = msgspec.structs.replace(live.algo.parent, qty=new_qty)
        try:
            parsed = cls.prepare(spec, cls.parse(spec, params), self.history)
        except AlgoParamsError as exc:
            raise CommandError(ErrorCode.INVALID, f"{row.algo_type} parameters: {exc}") from None
        candidate = Live(row=msgspec.structs.replace(row, qty=new_qty), algo=cls(spec, parsed))
        check = self.port.check_parent(self._risk_order(candidate))
        if not check.allowed:
            self.port.accept_parent(self._risk_order(live))  # keep the old plan
            raise CommandError(
                ErrorCode.DENIED, f"risk denied the change: {check.reason}: {check.message}"
            )
        live.algo = candidate.algo
        row.qty, row.params = new_qty, msgspec.to_builtins(parsed)
        self.store.update(
            algo_id, qty=new_qty, params=row.params, ts_updated=self._now(), reason=row.reason
        )
        self._log.bind(algo_id=algo_id, actor=actor).info(
            "Modified algorithm {} by {}: qty {}, {}", algo_id, actor, new_qty, changes
        )
        for cid in list(live.working):
            self._cancel_child(live, cid)
        if row.state == "running":
            self._decide(live, "modify")
        return row

    def cancel(self, algo_id: str, reason: str, actor: str) -> Parent:
        live = self._live(algo_id, "cancel")
        self._end(live, "cancelled", reason or "cancelled by the operator", actor)
        return live.row

    # --- reads ---------------------------------------------------------------------------

    def view(self, algo_id: str) -> tuple[Parent, Live | None]:
        live = self.live.get(algo_id)
        if live is not None:
            return live.row, live
        row = self.store.get(algo_id)
        if row is None:
            raise CommandError(
                ErrorCode.NOT_FOUND, f"no algorithm {algo_id}; `qsuite ctl algo list` lists them"
            )
        return row, None

    def expected(self, live: Live) -> Decimal | None:
        try:
            return live.algo.expected(self._now())
        except Exception:
            return None

    def tca(self, algo_id: str) -> AlgoTca:
        row, live = self.view(algo_id)
        if live is not None:
            filled, notional = live.filled, live.notional
            volume, market_notional = self._seen(live)
            children = live.slices
        else:
            kids = self.port.children(algo_id)
            filled = sum((c.filled_qty for c in kids), ZERO)
            notional = sum((c.notional for c in kids), ZERO)
            volume = Decimal(row.progress.get("market_volume", "0"))
            market_notional = Decimal(row.progress.get("market_notional", "0"))
            children = len(kids)
        start = row.ts_started or row.ts_created
        end = row.ts_finished or self._now()
        return analyse(
            algo_id=algo_id,
            side=row.side,
            qty=row.qty,
            filled=filled,
            notional=notional,
            arrival_price=row.arrival_price,
            market_volume=volume,
            market_notional=market_notional,
            start_ns=start,
            end_ns=end,
            children=children,
            final=row.state not in ACTIVE_STATES,
        )

    # --- facts ---------------------------------------------------------------------------

    def on_child(self, report: ExecutionReport, order: OrderState | None) -> None:
        """An execution report the ledger applied to a child of a parent."""
        if order is None or not order.algo_id:
            return
        live = self.live.get(order.algo_id)
        if live is None:
            if not order.is_open:  # a late end of a finished parent's child
                self._settled.append((order.client_order_id, order.status, self._now()))
            return
        cid = order.client_order_id
        if isinstance(report, OrderFilled):
            self._market(report.symbol).trade(report.trade_id, report.qty, report.price)
            live.filled += report.qty
            live.notional += report.qty * report.price
            live.last_fill_ns = self._now()
            live.alerted.discard("algo.stalled")
        if order.is_open:
            if cid in live.working:
                live.working[cid] = _child(order)
        else:
            live.working.pop(cid, None)
            live.cancelling.discard(cid)
            self._settled.append((cid, order.status, self._now()))
        filled = isinstance(report, OrderFilled)
        if filled:
            self.monitor.progress(live, self._seen(live)[0], self.expected(live))
        if live.row.state == "running":
            if live.filled >= live.row.qty:
                self._end(live, "completed", "filled", "engine")
            elif filled or not order.is_open:  # an accept or a replace changes nothing
                self._decide(live, "fill" if filled else "child_done")

    def on_risk_state(self, event: RiskStateChanged) -> None:
        """A kill switch (or runaway/daily-loss halt) pauses the parents in its scope."""
        if event.state != "HALTED":
            return
        for live in list(self.live.values()):
            row = live.row
            hit = (
                event.scope == "global"
                or (event.scope == "account" and row.account == event.key)
                or (event.scope == "symbol" and row.symbol == event.key)
                or (event.scope == "algo" and row.algo_id == event.key)
            )
            if hit and row.state == "running":
                what = "all trading" if event.scope == "global" else f"{event.scope} {event.key}"
                self._set_state(
                    live, "paused", f"risk halt of {what} ({event.reason}): {event.message}", "risk"
                )

    def _on_book(self, _topic: str, event: Any) -> None:
        if not isinstance(event, BookUpdated):
            return
        self._market(event.symbol).book.on_update(event)
        self._market_event(event.symbol)

    def _on_trade(self, _topic: str, event: Any) -> None:
        if isinstance(event, TradePrinted) and self._market(event.symbol).trade(
            event.trade_id, event.qty, event.price
        ):
            self._market_event(event.symbol)

    def _market_event(self, symbol: str) -> None:
        if not self.port.ready():
            return
        for live in list(self._by_symbol.get(symbol, {}).values()):
            if live.row.state == "running":
                self._decide(live, "market")

    # --- timers --------------------------------------------------------------------------

    def _tick(self) -> None:
        now = self._now()
        ready = self.port.ready()
        for live in list(self.live.values()):
            row = live.row
            if row.state == "pending" and now >= (row.ts_started or 0):
                row.arrival_price = self._mid(row.symbol)
                market = self._market(row.symbol)
                live.volume_base, live.notional_base = market.volume, market.notional
                self.store.update(row.algo_id, arrival_price=row.arrival_price)
                self._set_state(live, "running", "start time reached", "engine")
                live.wake_ns = now
            if (
                ready
                and row.state == "running"
                and live.wake_ns is not None
                and live.wake_ns <= now
            ):
                self._decide(live, "timer")

    def _monitor(self) -> None:
        now = self._now()
        for live in list(self.live.values()):
            if live.row.state == "running":
                self.monitor.progress(live, self._seen(live)[0], self.expected(live))
                self.monitor.check(live, self.expected(live), now)

    def _save_all(self, *, wait: bool = False) -> None:
        """Market progress of the parents and the ended slices: one transaction, written
        off the loop (``wait``: here and now, when stopping). What it carries is taken on
        the loop; a save still running skips this turn (the next one has it all)."""
        if self._saving and not wait:
            return
        now = self._now()
        rows = [self._progress_row(live, now) for live in self.live.values()]
        settled, self._settled = self._settled, []
        if not (rows or settled):
            return
        if wait:
            self.store.save(rows, settled)
            return
        self._saving = True
        assert self._ctx is not None
        self._ctx.run_in_worker(lambda: self.store.save(rows, settled), self._saved)

    def _saved(self, future: Future[None]) -> None:
        self._saving = False
        if future.exception() is not None:
            self._log.opt(exception=future.exception()).error(
                "Cannot save the algorithms' progress; it is saved again next time"
            )

    # --- deciding ------------------------------------------------------------------------

    def _decide(self, live: Live, why: Why) -> None:
        if not self.port.ready() and why != "start":
            live.wake_ns = self._now() + int(self.settings.retry_s * NS)
            return
        self._decisions.inc()
        market = self._market_view(live)
        progress = Progress(
            filled=live.filled,
            avg_price=live.notional / live.filled if live.filled > 0 else None,
            working=tuple(live.working.values()),
            slices=live.slices,
            last_child_ns=live.last_child_ns,
        )
        try:
            decision = live.algo.decide(market, progress, why)
            if not isinstance(decision, Decision):
                raise TypeError(f"decide returned {decision!r}, not a Decision")
        except Exception as exc:
            self._log.opt(exception=exc).bind(algo_id=live.algo_id).error(
                "Algorithm {} failed; its working children are cancelled", live.algo_id
            )
            self._end(live, "failed", f"algorithm error: {exc!r}", "engine")
            return
        self._apply(live, decision, market)

    def _apply(self, live: Live, decision: Decision, market: Market) -> None:
        now = market.now_ns
        live.wake_ns = None if decision.wake_in_s is None else now + int(decision.wake_in_s * NS)
        for action in decision.actions:
            if live.row.state != "running":
                return
            if isinstance(action, Cancel):
                self._cancel_child(live, action.client_order_id)
            elif isinstance(action, Place):
                self._place(live, action, market)
        if decision.done and live.row.state == "running":
            self._end(live, "completed", decision.done, "engine")

    def _place(self, live: Live, action: Place, market: Market) -> None:
        row = live.row
        room = row.qty - live.filled - live.working_qty
        qty = _floor(min(action.qty, room), market.lot)
        if qty <= 0:
            return
        limit = live.algo.params.limit_price
        price = action.price
        order_type: Any = "limit"
        if price is None and limit is None:
            order_type = "market"
        else:
            if price is None or (
                limit is not None and (price > limit if row.side == "buy" else price < limit)
            ):
                price = limit
            assert price is not None
            price = _to_tick(price, market.tick, row.side)
            if price <= 0:
                return
        cid = slice_id(row.algo_id, live.slices)
        order = new_order(
            cid,
            account=row.account,
            symbol=row.symbol,
            side=row.side,
            qty=qty,
            price=price,
            order_type=order_type,
            tif=action.tif if order_type == "limit" or action.tif in ("ioc", "fok") else "ioc",
            algo_id=row.algo_id,
            ts=market.now_ns,
        )
        piece = Slice(
            algo_id=row.algo_id,
            slice_index=live.slices,
            attempt=0,
            client_order_id=cid,
            qty=qty,
            price=price,
            intent_state="sent",
            ts_created=market.now_ns,
        )
        decision = self.port.place_child(order, lambda conn: self.store.record_slice(conn, piece))
        if decision.allowed:
            live.slices += 1
            live.last_child_ns = market.now_ns
            live.working[cid] = Child(
                client_order_id=cid, qty=qty, price=price, leaves=qty, sent_ns=market.now_ns
            )
            self._children.inc()
            return
        if decision.reason == "not_sent":  # recorded, then lost: a new slice next time
            live.slices += 1
        if decision.reason in TRANSIENT:
            retry = market.now_ns + int(self.settings.retry_s * NS)
            live.wake_ns = retry if live.wake_ns is None else min(live.wake_ns, retry)
            return
        self._set_state(
            live,
            "paused",
            f"risk denied a child: {decision.reason} ({decision.limit}): {decision.message}",
            "risk",
        )

    def _cancel_child(self, live: Live, cid: str) -> None:
        """Cancel a working child once (a cancel that could not be sent is retried)."""
        if cid in live.working and cid not in live.cancelling and self.port.cancel_child(cid):
            live.cancelling.add(cid)

    # --- state ---------------------------------------------------------------------------

    def _set_state(self, live: Live, state: AlgoState, reason: str, actor: str) -> None:
        row = live.row
        if state == "paused":
            for cid in list(live.working):
                self._cancel_child(live, cid)
        row.state, row.reason = state, reason
        now = self._now()
        row.ts_updated = now
        self.store.update(row.algo_id, state=state, reason=reason[:256] or None, ts_updated=now)
        self.monitor.state(live, actor, reason)
        self._log.bind(algo_id=row.algo_id, actor=actor).info(
            "Algorithm {} is {}: {}", row.algo_id, state, reason
        )

    def _end(self, live: Live, state: AlgoState, reason: str, actor: str) -> None:
        """Compensation first (cancel the working children), then the final state."""
        for cid in list(live.working):
            self._cancel_child(live, cid)
        row = live.row
        now = self._now()
        row.state, row.reason, row.ts_finished, row.ts_updated = state, reason, now, now
        volume, notional = self._seen(live)
        row.progress = {"market_volume": str(volume), "market_notional": str(notional)}
        self.store.update(
            row.algo_id,
            state=state,
            reason=reason[:256],
            ts_finished=now,
            ts_updated=now,
            filled_qty=live.filled,
            avg_price=live.notional / live.filled if live.filled > 0 else None,
            progress=row.progress,
        )
        self._forget(live)
        self.port.parent_done(row.algo_id)
        self.monitor.progress(live, self._seen(live)[0], self.expected(live))
        self.monitor.state(live, actor, reason)
        if state == "failed":
            self.monitor.alert(live, "algo.failed", f"{row.algo_id} failed: {reason}", "critical")
        self._log.bind(algo_id=row.algo_id, actor=actor).info(
            "Algorithm {} {}: {} (filled {} of {})",
            row.algo_id,
            state,
            reason,
            live.filled,
            row.qty,
        )

    def _progress_row(self, live: Live, now: int) -> tuple[str, dict[str, Any]]:
        volume, notional = self._seen(live)
        progress = {"market_volume": str(volume), "market_notional": str(notional)}
        live.row.progress = progress
        return live.algo_id, {
            "progress": progress,
            "filled_qty": live.filled,
            "avg_price": live.notional / live.filled if live.filled > 0 else None,
            "ts_updated": now,
        }

    # --- helpers -------------------------------------------------------------------------

    def _add(self, live: Live) -> None:
        self.live[live.algo_id] = live
        self._by_symbol.setdefault(live.row.symbol, {})[live.algo_id] = live

    def _forget(self, live: Live) -> None:
        del self.live[live.algo_id]
        self._by_symbol.get(live.row.symbol, {}).pop(live.algo_id, None)

    def _live(self, algo_id: str, action: str) -> Live:
        live = self.live.get(algo_id)
        if live is not None:
            return live
        row = self.store.get(algo_id)
        if row is None:
            raise CommandError(
                ErrorCode.NOT_FOUND, f"no algorithm {algo_id}; `qsuite ctl algo list` lists them"
            )
        raise CommandError(
            ErrorCode.CONFLICT, f"cannot {action} {algo_id}: it is {row.state} already"
        )

    def _market(self, symbol: str) -> SymbolMarket:
        return self.board.get(symbol)

    def _market_view(self, live: Live) -> Market:
        market = self._market(live.row.symbol)
        bid, ask = market.book.best_bid(), market.book.best_ask()
        volume, _ = self._seen(live)
        return Market(
            now_ns=self._now(),
            bid=bid[0] if bid else None,
            ask=ask[0] if ask else None,
            bid_size=bid[1] if bid else ZERO,
            ask_size=ask[1] if ask else ZERO,
            last=market.last,
            tick=market.tick,
            lot=market.lot,
            volume=volume,
        )

    def _seen(self, live: Live) -> tuple[Decimal, Decimal]:
        market = self._market(live.row.symbol)
        return market.volume - live.volume_base, market.notional - live.notional_base

    def _mid(self, symbol: str) -> Decimal | None:
        """The venue book's mid (or last trade) of ``symbol``; before this process has
        seen the venue's book (just after a start), the order manager's mark."""
        mid = self._market(symbol).mid()
        return mid if mid is not None else self.port.mark(symbol)

    def _risk_order(self, live: Live) -> RiskOrder:
        row = live.row
        price = live.algo.params.limit_price
        return RiskOrder(
            account=row.account,
            symbol=row.symbol,
            client_order_id=row.algo_id,
            side=row.side,
            qty=row.qty,
            price=price,
            order_type="market" if price is None else "limit",  # valued at the reference
            algo_id=row.algo_id,
        )

    def _now(self) -> int:
        assert self._ctx is not None
        return self._ctx.clock.time_ns()


def _build(row: Parent) -> Algorithm[Any]:
    cls = REGISTRY.get(row.algo_type)
    spec = ParentSpec(
        algo_id=row.algo_id,
        account=row.account,
        symbol=row.symbol,
        side=row.side,
        qty=row.qty,
        start_ns=row.ts_started or row.ts_created,  # the scheduled start while pending
    )
    return cls(spec, cls.parse(spec, row.params))


def _child(order: OrderState) -> Child:
    return Child(
        client_order_id=order.client_order_id,
        qty=order.qty,
        price=order.price,
        leaves=order.leaves_qty,
        sent_ns=order.ts_created,
    )


def _algo_id(algo_type: str, key: str) -> str:
    return f"{algo_type}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def _floor(qty: Decimal, lot: Decimal) -> Decimal:
    return (qty / lot).to_integral_value(rounding=ROUND_FLOOR) * lot


def _to_tick(price: Decimal, tick: Decimal, side: Side) -> Decimal:
    rounding = ROUND_FLOOR if side == "buy" else ROUND_CEILING
    return (price / tick).to_integral_value(rounding=rounding) * tick

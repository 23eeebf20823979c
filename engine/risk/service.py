"""The risk gate at work in the execution process: every order the order manager sends
passes it, and the operator drives it from the control plane.

Hosted by :class:`~engine.orders.service.OrderService` (same loop, same thread), which
calls, in this order:

- :meth:`RiskService.start` with the ledger's open orders, positions and today's
  realized P&L: profiles, rules and kill-switch halts are loaded from the database (the
  accounts of ``risk.default_accounts`` without a profile get QSuite's defaults,
  stored and audited), the working orders and positions seed the gate;
- :meth:`RiskService.check_new` / :meth:`RiskService.check_replace` before an order or
  a replace is sent — a denial raises ``CommandError(denied)`` whose message names the
  reason code, the limit and what was observed, and publishes ``OrderDenied``
  (``risk.denied.<account>``); nothing is sent;
- :meth:`RiskService.sent` once it went out, :meth:`RiskService.not_sent` when it could
  not leave;
- :meth:`RiskService.on_reports` with every execution report the ledger applied
  (fills, replaces, ends — live or from reconciliation), :meth:`RiskService.on_mark`
  with every quote's mid (the collar's reference and the valuation of positions).

What the gate decides on its own — a daily-loss state, a runaway algorithm, a halt —
leaves through its outbox after each call: events are published (``RiskStateChanged``
on ``risk.state`` also appended to the audit log, so halts survive a restart;
``AlertRaised`` stored in ``alerts``) and working orders to cancel go to the order
manager's ``cancel`` callback. The venue's trade prints (``venue.trade``) are the
market volume of the participation limit. Alerts other processes raise (``alert.*``)
are stored here too: the execution process keeps the alert table. The operator's
commands are in :mod:`engine.risk.control`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import msgspec
from loguru import logger
from sqlalchemy import Engine

from app.settings import RiskSettings
from engine.bus import topics
from engine.bus.events import (
    AlertRaised,
    OrderFilled,
    OrderReplaced,
    RiskStateChanged,
    TradePrinted,
)
from engine.errors import CommandError, ErrorCode
from engine.orders.lifecycle import ExecutionReport, OrderState
from engine.orders.positions import Position
from engine.risk import store
from engine.risk.decision import CancelRequest, Decision, RiskOrder
from engine.risk.gate import GateSettings, RiskGate
from engine.risk.profile import DEFAULT_PROFILE, for_account
from engine.service import ServiceContext

ZERO = Decimal(0)
NO_LIMIT = frozenset({"", "none", "null", "off"})
"""Texts that mean "no limit" in a profile edit."""
FIXED_FIELDS = frozenset({"account", "version"})


def risk_order(order: OrderState, *, client_order_id: str = "") -> RiskOrder:
    """The gate's view of an order of the ledger."""
    return RiskOrder(
        account=order.account,
        symbol=order.symbol,
        client_order_id=client_order_id or order.client_order_id,
        side=order.side,
        qty=order.qty,
        price=order.price,
        order_type=order.order_type,
        algo_id=order.algo_id or "",
    )


class RiskService:
    """The pre-trade gate of the execution process (see the module docstring).

    ``cancel``: sends the cancel of a working order the gate wants gone (the order
    manager's), returns whether it went out.
    """

    def __init__(
        self,
        settings: RiskSettings,
        *,
        engine: Engine,
        cancel: Callable[[CancelRequest], bool],
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.cancel = cancel
        self.gate = RiskGate(
            settings=GateSettings(
                max_orders_per_s=settings.engine_orders_per_s,
                participation_window_s=settings.participation_window_s,
                alert_interval_s=settings.alert_interval_s,
            )
        )
        self.on_state: list[Callable[[RiskStateChanged], None]] = []
        """Told of every trading-state change the gate makes (after it is published)."""
        self.problems: list[str] = []
        """What could not be loaded (a profile or rule), for the health detail."""
        self._ctx: ServiceContext | None = None
        self._log = logger.bind(component="risk")

    # --- start -------------------------------------------------------------------------

    def start(
        self,
        ctx: ServiceContext,
        *,
        open_orders: Iterable[OrderState],
        positions: Iterable[Position],
        realized_today: dict[tuple[str, str], Decimal],
    ) -> None:
        self._ctx = ctx
        self._load()
        now = ctx.clock.time_ns()
        for order in open_orders:
            self.gate.restore_working(risk_order(order), filled=order.filled_qty)
        for p in positions:
            today = realized_today.get((p.account, p.symbol), ZERO)
            if p.qty != 0 or today != 0:
                self.gate.seed_position(
                    p.account,
                    p.symbol,
                    qty=p.qty,
                    avg_price=p.avg_price,
                    realized_today=today,
                    ts_ns=now,
                )
        ctx.subscribe(topics.VENUE_TRADES, self._on_trade)
        ctx.subscribe(topics.ALERTS, self._on_alert)
        self.flush()

    def _load(self) -> None:
        loaded = store.load_profiles(self.engine)
        profiles = dict(loaded.profiles)
        for account in self.settings.default_accounts:
            if account not in profiles:
                profiles[account] = store.save_profile(
                    self.engine, for_account(DEFAULT_PROFILE, account), actor="config"
                )
                self._log.info("Risk profile of {} set to QSuite's defaults", account)
        for profile in profiles.values():
            self.gate.set_profile(profile)
        rules = store.load_rules(self.engine)
        self.gate.set_rules(rules.rules)
        for halt in store.load_halts(self.engine):
            self.gate.restore_halt(halt.record, runaway=halt.runaway)
        self.problems = [*loaded.problems, *rules.problems]
        for problem in self.problems:
            self._log.error("{}", problem)
        self._log.info(
            "Risk gate ready: {} profiles, {} compliance rules, {} halts in force",
            len(profiles),
            len(rules.rules),
            len(self.gate.halts()),
        )

    def health(self) -> str:
        """ "" when all is well, else what the operator should know."""
        halts = self.gate.halts()
        parts = []
        if halts:
            names = ", ".join(scope_text(h.scope, h.key) for h in halts)
            parts.append(f"risk halt in force: {names}")
        if self.problems:
            parts.append(f"{len(self.problems)} risk configuration problems (see the log)")
        return "; ".join(parts)

    # --- the check path ----------------------------------------------------------------

    def decide_new(self, order: OrderState) -> Decision:
        """The gate's decision on ``order`` (an algorithm's child: ``order.algo_id``)."""
        child = risk_order(order)
        if order.algo_id:
            child = msgspec.structs.replace(child, parent=order.algo_id)
        decision = self.gate.check(child, self._now())
        self.flush()
        return decision

    def check_new(self, order: OrderState) -> None:
        """Raise ``CommandError(denied)`` unless the gate allows ``order``."""
        _require(self.decide_new(order), order.client_order_id)

    def check_parent(self, order: RiskOrder) -> Decision:
        """Whether an algorithm may start on the parent ``order``; when allowed its plan
        is registered (its children are checked against it)."""
        now = self._now()
        decision = self.gate.check_parent(order, now)
        if decision.allowed:
            self.gate.on_parent_accepted(order, now)
        self.flush()
        return decision

    def alert(self, event: AlertRaised) -> None:
        """Store and publish an alert of this process."""
        self._store_alert(event)
        assert self._ctx is not None
        self._ctx.publish(topics.alert(event.severity), event)

    def sent(self, order: OrderState) -> None:
        self.gate.on_submitted(risk_order(order), self._now())
        self.flush()

    def not_sent(self, order: OrderState) -> None:
        self.gate.on_done(order.account, order.client_order_id)
        self.flush()

    def check_replace(
        self, order: OrderState, request_id: str, qty: Decimal, price: Decimal | None
    ) -> None:
        """Raise ``CommandError(denied)`` unless ``order`` may become ``qty`` at
        ``price`` under the id ``request_id``."""
        new = msgspec.structs.replace(risk_order(order, client_order_id=request_id), qty=qty)
        if price is not None:
            new = msgspec.structs.replace(new, price=price)
        decision = self.gate.check_modify(
            new, self._now(), orig_client_order_id=order.client_order_id
        )
        self.flush()
        _require(decision, order.client_order_id)

    # --- facts -------------------------------------------------------------------------

    def on_reports(self, applied: Iterable[tuple[ExecutionReport, OrderState | None]]) -> None:
        """Execution reports the ledger applied, each with the order after it."""
        gate = self.gate
        for report, order in applied:
            if isinstance(report, OrderReplaced):
                if order is not None:
                    gate.on_modified(report.orig_client_order_id, risk_order(order), self._now())
            elif isinstance(report, OrderFilled):
                cid = order.client_order_id if order is not None else report.client_order_id
                gate.on_fill(
                    report.account,
                    report.symbol,
                    report.side,
                    report.qty,
                    report.price,
                    ts_ns=report.ts_event,
                    client_order_id=cid,
                    algo_id=(order.algo_id or "") if order is not None else "",
                )
            if order is not None and not order.is_open:
                gate.on_done(order.account, order.client_order_id)
        self.flush()

    def on_mark(self, symbol: str, price: float, ts_ns: int) -> None:
        """A quote's mid (or last): the collar's reference and the valuation."""
        self.gate.on_mark(symbol, price, ts_ns)
        self.flush()

    def _on_trade(self, _topic: str, event: Any) -> None:
        if isinstance(event, TradePrinted):
            self.gate.on_market_volume(event.symbol, event.qty, event.ts_event)

    def _on_alert(self, _topic: str, event: Any) -> None:
        if isinstance(event, AlertRaised) and event.source != self._process():
            self._store_alert(event)  # this process's own are stored as they are raised

    # --- outbox ------------------------------------------------------------------------

    def flush(self) -> None:
        """Publish, store and act on what the gate decided since the last flush."""
        out = self.gate.drain()
        if not (out.events or out.cancels):
            return
        assert self._ctx is not None
        for topic, event in out.events:
            if isinstance(event, RiskStateChanged):
                try:
                    store.record_state_change(self.engine, event)
                except Exception as exc:
                    self._log.opt(exception=exc).error(
                        "Cannot record the risk state change of {} {} in the audit log: it "
                        "will not survive a restart",
                        event.scope,
                        event.key,
                    )
            elif isinstance(event, AlertRaised):
                self._store_alert(event)
            self._ctx.publish(topic, event)
            if isinstance(event, RiskStateChanged):
                for listener in self.on_state:
                    listener(event)
        for request in out.cancels:
            if not self.cancel(request):
                self._log.bind(account=request.account, symbol=request.symbol).error(
                    "Cannot cancel {} ({}) now: not connected to the venue; it is cancelled "
                    "after the next logon",
                    request.client_order_id,
                    request.reason,
                )

    def _store_alert(self, event: AlertRaised) -> None:
        try:
            store.save_alert(self.engine, event)
        except Exception as exc:
            self._log.opt(exception=exc).error("Cannot store alert {}: {}", event.kind, exc)

    # --- helpers -----------------------------------------------------------------------

    def _now(self) -> int:
        assert self._ctx is not None
        return self._ctx.clock.time_ns()

    def _process(self) -> str:
        assert self._ctx is not None
        return self._ctx.process


def _require(decision: Decision, client_order_id: str) -> None:
    if decision.allowed:
        return
    limit = decision.limit
    if decision.limit_value is not None:
        limit += f" {decision.limit_value}"
    raise CommandError(
        ErrorCode.DENIED,
        f"risk denied {client_order_id}: {decision.reason} ({limit}): {decision.message}",
    )


def scope_text(scope: str, key: str) -> str:
    """How a kill-switch scope reads for an operator."""
    return "all trading" if scope == "global" else f"{scope} {key}"

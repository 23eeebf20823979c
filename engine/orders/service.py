"""The execution process's order manager: operator orders to the venue, the venue's
execution reports into the ledger, positions out on the bus.

- **Session** (:mod:`engine.orders.session`): the order-entry channel to
  ``venue.order_entry``, logged on as ``execution.session``. While it is not logged on
  the health is degraded and orders, cancels and replaces are refused (``unavailable``).
- **Orders** (:mod:`engine.bus.commands.orders`): ``SubmitOrder`` checks its input
  (:mod:`engine.orders.requests`), records the order (``pending_new``) in the ledger and
  only then sends ``NewOrder``; the reply is ``pending_new`` — the venue answers with
  execution reports. A retried command finds its order by its id and is not sent twice
  (the venue refuses a duplicate id anyway). ``RequestCancel`` / ``RequestReplace``
  send a cancel/replace with a new deterministic id; one replace per order at a time.
- **Reports**: each execution report is applied to the ledger on the loop (one short
  transaction). A fill that moved a position publishes ``PositionChanged``
  (``exec.position.<account>``) — once, however often the venue repeats it. The venue
  itself publishes its execution reports on the bus; this service does not repeat them.
  Refused and ignored reports are logged (warning / debug) with the reason; a report
  that applied but does not add up (``cum_qty_mismatch``, ``fills_missing``) reconciles.
- **Reconciliation** (:mod:`engine.orders.reconciler`) after every logon, venue restart
  and sequence gap, every ``execution.reconcile_interval_s`` and after a failed ledger
  write: a ``StatusRequest`` naming every open order and the session's open orders, the
  answer planned and applied in one transaction. Venue orders this ledger does not
  know, and discrepancies a plan cannot fix, raise ``AlertRaised`` (``alert.warning``).
  Decision: a ``pending_new`` order the venue does not know never reached it (lost on
  the way, or sent to a venue that then restarted): it ends ``rejected`` with reason
  ``unknown_at_venue`` and is **not** sent again — the operator submits it again if it
  is still wanted (a warning says so).
- **Marks** for unrealized P&L and the risk gate's reference prices: the mid of the
  last ``md.quote`` of a symbol, or the price of this service's last fill in it,
  whichever came last. At start the latest quotes the feed cached (``recent_quotes``)
  seed them, at their own timestamps, so that a restarted order manager has references
  before the next quote of a slow market (the gate's age limit still applies).
- **Risk** (:mod:`engine.risk.service`): every new order and every replace passes the
  pre-trade gate before it is recorded or sent; a denial is the command's error
  (``denied``) and an ``OrderDenied`` event, and nothing reaches the venue. Cancels are
  never checked. Applied reports and quotes feed the gate; the orders the gate wants
  gone (kill switch, daily-loss halt, runaway algorithm) are cancelled here — at once,
  or after the next logon when the venue is not connected.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from loguru import logger
from sqlalchemy import Connection, Engine

from app.settings import AlgoSettings, ExecutionSettings, RiskSettings, VenueSettings
from engine.algos.control import AlgoControl
from engine.algos.engine import AlgoEngine
from engine.algos.history import BarHistory
from engine.algos.strategies import StrategyRunner
from engine.algos.strategy_control import StrategyControl
from engine.bus import topics
from engine.bus.commands.orders import (
    GetPositions,
    ListOrders,
    OrderAck,
    OrderList,
    PositionList,
    RequestCancel,
    RequestReplace,
    SubmitOrder,
)
from engine.bus.events import (
    AlertRaised,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    PositionChanged,
    QuoteUpdated,
)
from engine.errors import CommandError, ErrorCode
from engine.orders import requests, views
from engine.orders.ledger import FeeModel, OrderLedger, Recorded
from engine.orders.lifecycle import ExecutionReport, OrderState
from engine.orders.positions import quantize_price
from engine.orders.reconciler import Reconciler
from engine.orders.session import VenueSession
from engine.persistence.decimals import plain_decimal
from engine.risk.control import RiskControl
from engine.risk.decision import CancelRequest, Decision, RiskOrder
from engine.risk.service import RiskService
from engine.risk.state import DAY_NS
from engine.service import HealthStatus, ServiceContext
from engine.venue.protocol import CancelOrder, ReplaceOrder
from feeds.cache import read_recent

#: ``applied`` hints of the lifecycle after which the ledger and the venue may disagree.
RECONCILE_HINTS = frozenset({"cum_qty_mismatch", "fills_missing"})


class OrderService:
    def __init__(
        self,
        settings: ExecutionSettings,
        venue: VenueSettings,
        risk: RiskSettings,
        algos: AlgoSettings,
        *,
        engine: Engine,
        fee_of: FeeModel | None = None,
        recent_quotes: Callable[[], Iterable[QuoteUpdated]] | None = None,
    ) -> None:
        self.settings = settings
        self._recent_quotes = recent_quotes
        self.venue_settings = venue
        self.engine = engine
        self.ledger = OrderLedger(engine, fee_of=fee_of)
        self.session = VenueSession(
            settings,
            venue.order_entry,
            on_report=self._on_report,
            on_status=lambda report: self.reconciler.on_status(report),
            on_resync=self._on_resync,
        )
        self.reconciler = Reconciler(
            settings,
            self.ledger,
            self.session,
            venue=venue.name,
            on_applied=self._on_reconciled,
            on_failure=self._ledger_failed,
        )
        self.risk = RiskService(risk, engine=engine, cancel=self._risk_cancel)
        self.algos = AlgoEngine(algos, engine=engine, port=self, history=BarHistory(engine))
        self.risk.on_state.append(self.algos.on_risk_state)
        self._risk_cancels: dict[str, CancelRequest] = {}
        """Order id → the gate's cancel that could not be sent yet (sent after logon)."""
        self.marks: dict[str, Decimal] = {}
        """Symbol → last mark price (quote mid or own fill)."""
        self._cancels: dict[str, int] = {}
        self._replacing: dict[str, tuple[str, float]] = {}
        """Order id → (replace request id, when sent): one replace in flight per order."""
        self._ledger_error = ""
        self._ctx: ServiceContext | None = None
        self._log = logger.bind(component="execution")

    # --- Service -----------------------------------------------------------------------
    def start(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._reports = {
            result: ctx.stats.counter(
                "qsuite_execution_reports_total", "Execution reports applied", result=result
            )
            for result in ("applied", "ignored", "refused")
        }
        ctx.register_command(SubmitOrder, self._submit)
        ctx.register_command(RequestCancel, self._cancel)
        ctx.register_command(RequestReplace, self._replace)
        ctx.register_command(ListOrders, self._list)
        ctx.register_command(GetPositions, self._positions)
        ctx.subscribe(topics.QUOTES, self._on_quote)
        self.risk.start(
            ctx,
            open_orders=self.ledger.open_orders(),
            positions=self.ledger.positions(),
            realized_today=self.ledger.realized_since(_day_start(ctx.clock.time_ns())),
        )
        self._seed_marks()
        RiskControl(self.risk).start(ctx)
        self.algos.start(ctx)
        AlgoControl(self.algos).start(ctx)
        strategies = StrategyRunner(self.algos, engine=self.engine)
        strategies.start(ctx)
        StrategyControl(strategies).start(ctx)
        self.reconciler.start(ctx)
        self.session.open(ctx)
        if self.settings.reconcile_interval_s > 0:
            ctx.call_every(
                self.settings.reconcile_interval_s,
                lambda: self.reconciler.request("periodic"),
                "execution-reconcile",
            )

    def health(self) -> tuple[HealthStatus, str]:
        if not self.session.logged_on:
            return (
                "degraded",
                f"not connected to venue at {self.session.endpoint}; orders cannot be sent",
            )
        if self._ledger_error:
            return "degraded", f"the order ledger failed ({self._ledger_error}); reconciling"
        venue = self.session.venue or self.venue_settings.name
        risk = self.risk.health()
        if risk:
            return "degraded", risk
        return "up", f"logged on to venue {venue} (run {self.session.epoch})"

    def stop(self) -> None:
        self.algos.stop()
        self.engine.dispose()

    # --- commands ----------------------------------------------------------------------
    def _submit(self, cmd: SubmitOrder) -> OrderAck:
        cid = cmd.client_order_id or requests.default_client_order_id(cmd.command_id)
        order = requests.order_of(cmd, cid, ts=self._ts())
        self._require_venue("submit the order")
        existing = self.ledger.order(cid)  # the only writer of orders: no race
        if existing is None:
            spec = self.algos.board.spec(order.symbol)
            requests.check_grid(
                order.symbol, order.qty, order.price, spec, self.venue_settings.name
            )
            self.risk.check_new(order)  # raises when denied: nothing recorded, nothing sent
            self.ledger.record_intent(order)
            self.risk.sent(order)
        elif not requests.same_order(existing, order):
            raise CommandError(
                ErrorCode.CONFLICT,
                f"client_order_id {cid} is already used by another order; choose another",
            )
        elif existing.status != "pending_new":
            return views.order_ack(existing, cid, "new", "already sent (the same command again)")
        # else a retry before the venue answered: sent again, the venue refuses a duplicate id
        log = self._log.bind(command_id=cmd.command_id, client_order_id=cid, symbol=cmd.symbol)
        if not self.session.send(order.to_request(ts=self._ts())):
            self.ledger.apply(self._not_sent(order))  # it never left: rejected, not pending
            self.risk.not_sent(order)
            log.warning("Cannot send order {}: the order-entry channel dropped it", cid)
            return views.order_ack(
                self.ledger.order(cid) or order, cid, "new", "the channel dropped it: rejected"
            )
        log.info(
            "Sent order {}: {} {} {} {} @ {} for {}",
            cid,
            order.side,
            order.qty,
            order.symbol,
            order.order_type,
            order.price if order.price is not None else "market",
            order.account,
        )
        return views.order_ack(order, cid, "new", f"sent to {self.venue_settings.name}")

    def _cancel(self, cmd: RequestCancel) -> OrderAck:
        order = self._open_order(cmd.client_order_id, "cancel")
        self._require_venue("cancel the order")
        request = self._cancel_request(order)
        self._send(request, f"the cancel of {order.client_order_id}")
        return views.order_ack(order, request.client_order_id, "cancel", "cancel sent")

    def _cancel_request(self, order: OrderState) -> CancelOrder:
        n = self._cancels[order.client_order_id] = self._cancels.get(order.client_order_id, 0) + 1
        return CancelOrder(
            ts=self._ts(),
            account=order.account,
            client_order_id=requests.cancel_id(order.client_order_id, n),
            orig_client_order_id=order.client_order_id,
            symbol=order.symbol,
        )

    def _risk_cancel(self, cancel: CancelRequest) -> bool:
        """Cancel an order the risk gate wants gone; False (kept for after the next
        logon) when it cannot be sent now."""
        order = self.ledger.find_order(cancel.client_order_id)
        if order is None or not order.is_open:
            self._risk_cancels.pop(cancel.client_order_id, None)
            return True  # gone already
        if self.session.logged_on and self.session.send(self._cancel_request(order)):
            self._risk_cancels.pop(cancel.client_order_id, None)
            self._log.bind(client_order_id=order.client_order_id, account=order.account).info(
                "Cancel of {} sent for the risk gate ({})", order.client_order_id, cancel.reason
            )
            return True
        self._risk_cancels[cancel.client_order_id] = cancel
        return False

    def _replace(self, cmd: RequestReplace) -> OrderAck:
        order = self._open_order(cmd.client_order_id, "replace")
        qty = requests.check_amount(cmd.qty, "qty")
        if cmd.price is not None:
            if order.order_type == "market":
                raise requests.invalid(f"{order.client_order_id} is a market order: no price")
            requests.check_amount(cmd.price, "price")
        if qty <= order.filled_qty:
            raise requests.invalid(
                f"cannot replace {order.client_order_id} to qty {qty}: "
                f"{plain_decimal(order.filled_qty)} is filled already (cancel it to stop the rest)"
            )
        price = order.price if cmd.price is None else cmd.price
        if qty == order.qty and price == order.price:
            at = "" if price is None else f" at {plain_decimal(price)}"
            raise requests.invalid(
                f"{order.client_order_id} already has qty {plain_decimal(qty)}{at}"
            )
        in_flight = self._replacing.get(order.client_order_id)
        if in_flight is not None and self._now() - in_flight[1] < self.settings.timeout_s:
            raise CommandError(
                ErrorCode.CONFLICT,
                f"a replace of {order.client_order_id} is on its way ({in_flight[0]}); "
                "wait for the venue's answer (qsuite ctl order list)",
            )
        self._require_venue("replace the order")
        spec = self.algos.board.spec(order.symbol)
        requests.check_grid(order.symbol, qty, cmd.price, spec, self.venue_settings.name)
        request_id = requests.replace_id(order.client_order_id)
        self.risk.check_replace(order, request_id, qty, cmd.price)
        request = ReplaceOrder(
            ts=self._ts(),
            account=order.account,
            client_order_id=request_id,
            orig_client_order_id=order.client_order_id,
            symbol=order.symbol,
            qty=qty,
            price=cmd.price,
        )
        self._send(request, f"the replace of {order.client_order_id}")
        self._replacing[order.client_order_id] = (request_id, self._now())
        return views.order_ack(
            order, request_id, "replace", f"the order is {request_id} once replaced"
        )

    def _list(self, cmd: ListOrders) -> OrderList:
        orders = self.ledger.orders(cmd.account, open_only=cmd.open_only, limit=cmd.limit)
        return OrderList(orders=[views.order_row(o) for o in orders])

    def _positions(self, cmd: GetPositions) -> PositionList:
        positions = self.ledger.positions(cmd.account)
        return PositionList(positions=[views.position_row(p, self.marks) for p in positions])

    def _open_order(self, client_order_id: str, action: str) -> OrderState:
        if not client_order_id:
            raise requests.invalid(f"name the order to {action} (its client_order_id)")
        order = self.ledger.find_order(client_order_id)
        if order is None:
            raise CommandError(
                ErrorCode.NOT_FOUND,
                f"no order {client_order_id}; `qsuite ctl order list --all` lists them",
            )
        if not order.is_open:
            raise CommandError(
                ErrorCode.CONFLICT,
                f"cannot {action} {order.client_order_id}: it is {order.status} already",
            )
        return order

    def _require_venue(self, action: str) -> None:
        if not self.session.logged_on:
            raise CommandError(
                ErrorCode.UNAVAILABLE,
                f"cannot {action}: not connected to venue at {self.session.endpoint}; "
                "orders cannot be sent (see `qsuite ctl health`)",
            )

    def _send(self, request: CancelOrder | ReplaceOrder, what: str) -> None:
        if not self.session.send(request):
            raise CommandError(
                ErrorCode.UNAVAILABLE,
                f"cannot send {what}: the order-entry channel dropped it; try again",
            )

    # --- the algorithm engine's port (engine.algos.engine.ChildPort) ----------------------

    def ready(self) -> bool:
        return self.session.logged_on and self.reconciler.synced

    def place_child(self, order: OrderState, also: Callable[[Connection], None]) -> Decision:
        decision = self.risk.decide_new(order)
        if not decision.allowed:
            return decision
        if not self.ledger.record_intent(order, also=also):
            return Decision(allowed=False, reason="duplicate_order", message="already recorded")
        self.risk.sent(order)
        if self.session.send(order.to_request(ts=self._ts())):
            return decision
        self.ledger.apply(self._not_sent(order))
        self.risk.not_sent(order)
        return Decision(allowed=False, reason="not_sent", message="the channel dropped it")

    def cancel_child(self, client_order_id: str) -> bool:
        order = self.ledger.order(client_order_id)
        if order is None or not order.is_open:
            return True
        return self.session.logged_on and self.session.send(self._cancel_request(order))

    def children(self, algo_id: str) -> list[OrderState]:
        return self.ledger.children(algo_id)

    def check_parent(self, order: RiskOrder) -> Decision:
        return self.risk.check_parent(order)

    def accept_parent(self, order: RiskOrder) -> None:
        self.risk.gate.on_parent_accepted(order, self._ts())

    def parent_done(self, algo_id: str) -> None:
        self.risk.gate.on_parent_done(algo_id)

    def alert(self, event: AlertRaised) -> None:
        self.risk.alert(event)

    def mark(self, symbol: str) -> Decimal | None:
        return self.marks.get(symbol)

    # --- reports -----------------------------------------------------------------------
    def _on_report(self, report: ExecutionReport) -> None:
        try:
            recorded = self.ledger.apply(report)
        except Exception as exc:  # the database failed: the report is lost to the ledger
            self._ledger_failed(exc, f"apply {type(report).__name__} of {report.client_order_id}")
            self.reconciler.request("ledger failure")  # the venue still has it
            return
        self._ledger_error = ""
        self._reports[recorded.result].inc()
        self._settle(report, recorded)
        log = self._log.bind(
            client_order_id=report.client_order_id, account=report.account, symbol=report.symbol
        )
        kind = type(report).__name__
        if recorded.result == "refused":
            log.warning("Cannot apply {} of {}: {}", kind, report.client_order_id, recorded.reason)
        elif recorded.result == "ignored":
            log.debug("Ignored {} of {}: {}", kind, report.client_order_id, recorded.reason)
        elif recorded.reason in RECONCILE_HINTS:
            log.warning(
                "{} of {} does not add up ({})", kind, report.client_order_id, recorded.reason
            )
            self.reconciler.request(recorded.reason)
        elif recorded.reason == "late_fill":
            log.warning(
                "A fill of {} arrived after it ended; the position took it", report.client_order_id
            )
        if isinstance(report, OrderRejected) and (
            recorded.result == "applied" or recorded.reason == "request_rejected"
        ):
            log.info(
                "The venue refused the {} request {}: {}{}",
                report.request,
                report.client_order_id,
                report.reason,
                f" ({report.message})" if report.message else "",
            )
        if isinstance(report, OrderFilled):
            self.marks[report.symbol] = report.price
        self._publish_positions([recorded])
        if recorded.result == "applied":
            self.risk.on_reports([(report, recorded.order)])
            if recorded.order is not None and recorded.order.algo_id:
                self.algos.on_child(report, recorded.order)

    def _settle(self, report: ExecutionReport, recorded: Recorded) -> None:
        """Forget the requests in flight that this report answered."""
        if isinstance(report, OrderReplaced):
            self._replacing.pop(report.orig_client_order_id, None)
        elif isinstance(report, OrderRejected) and report.request == "replace":
            in_flight = self._replacing.get(report.orig_client_order_id)
            if in_flight is not None and in_flight[0] == report.client_order_id:
                del self._replacing[report.orig_client_order_id]
        order = recorded.order
        if order is not None and not order.is_open:
            for key in (order.client_order_id, order.orig_client_order_id):
                self._replacing.pop(key, None)
                self._cancels.pop(key, None)

    def _seed_marks(self) -> None:
        """Marks and references from the quotes the feed cached (module docstring)."""
        quotes = read_recent(self._recent_quotes, self._log, "to seed marks from")
        for quote in quotes:
            self._on_quote("", quote)
        if quotes:
            self._log.info("Marks seeded from {} cached quote(s)", len(quotes))

    def _on_quote(self, _topic: str, event: Any) -> None:
        if not isinstance(event, QuoteUpdated):
            return
        if event.bid > 0 and event.ask >= event.bid and math.isfinite(event.ask):
            mark = (event.bid + event.ask) / 2
        elif event.last > 0 and math.isfinite(event.last):
            mark = event.last
        else:
            return
        self.marks[event.symbol] = quantize_price(Decimal(repr(mark)))
        self.risk.on_mark(event.symbol, mark, event.ts_event)

    def _publish_positions(self, recorded: Iterable[Recorded]) -> None:
        assert self._ctx is not None
        for r in recorded:
            changed: PositionChanged | None = r.position_changed
            if changed is not None:
                self._ctx.publish(topics.position(changed.account), changed)

    # --- reconciliation ----------------------------------------------------------------
    def _on_resync(self, why: str) -> None:
        if why != "sequence gap":  # a new logon: requests in flight went to a gone session
            self._replacing.clear()
            self.reconciler.reset()
            for cancel in list(self._risk_cancels.values()):
                self._risk_cancel(cancel)
        self.reconciler.request(why)

    def _on_reconciled(self, reports: list[ExecutionReport], recorded: list[Recorded]) -> None:
        self._ledger_error = ""
        self._publish_positions(recorded)
        applied = [
            (report, r.order)
            for report, r in zip(reports, recorded, strict=True)
            if r.result == "applied"
        ]
        self.risk.on_reports(applied)
        for report, order in applied:
            if order is not None and order.algo_id:
                self.algos.on_child(report, order)

    def _ledger_failed(self, exc: Exception, what: str) -> None:
        self._ledger_error = f"{type(exc).__name__}: {exc}"
        self._log.opt(exception=exc).error("Cannot {}: the ledger failed", what)

    def _not_sent(self, order: OrderState) -> OrderRejected:
        return OrderRejected(
            ts_event=self._ts(),
            source="execution",
            venue=self.venue_settings.name,
            account=order.account,
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            reason="not_sent",
            message="the order-entry channel dropped the request",
        )

    def _now(self) -> float:
        assert self._ctx is not None
        return self._ctx.clock.monotonic()

    def _ts(self) -> int:
        assert self._ctx is not None
        return self._ctx.clock.time_ns()


def _day_start(ts_ns: int) -> int:
    """00:00 UTC of the day of ``ts_ns``, in ns."""
    return ts_ns - ts_ns % DAY_NS

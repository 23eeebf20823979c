"""Reconciling the order ledger with the venue over the order-entry session.

:meth:`Reconciler.request` sends a ``StatusRequest`` (id ``rc-<n>``) naming every open
order of the ledger as ``<account>/<client_order_id>`` and asking for the session's open
orders too; one request is in flight at a time (a reason that comes up meanwhile runs
one more afterwards; a request unanswered for ``execution.timeout_s`` is given up).

The answer is planned (:func:`engine.orders.reconcile.reconcile`) against the orders it
can speak for: those that were open when it was asked for — an order sent after the
request reaches the venue after it, so the answer cannot know it yet and it must not be
closed as unknown — and closed orders of the ledger that the venue names (so a venue
order the ledger ended shows as a discrepancy, not as a stranger). The plan is applied
in one ledger transaction; its position changes go to the owner to publish.

Venue orders the ledger does not know and discrepancies the plan cannot fix are logged
and raise one ``AlertRaised`` each (``alert.warning``, kinds
``execution.unknown_venue_order`` and ``execution.reconcile_discrepancy``) per process
run, however often reconciling finds them again. An order the venue does not know ends
``rejected`` (``pending_new``) or ``expired`` with reason ``unknown_at_venue`` and is
not sent again (a warning names it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from loguru import logger

from app.settings import ExecutionSettings
from engine.bus import topics
from engine.bus.events import AlertRaised, OrderRejected
from engine.orders.ledger import OrderLedger, Recorded
from engine.orders.lifecycle import UNKNOWN_AT_VENUE, ExecutionReport, OrderState
from engine.orders.reconcile import ReconcilePlan, reconcile
from engine.orders.session import VenueSession
from engine.service import ServiceContext
from engine.venue.protocol import StatusReport, StatusRequest


class _InFlight(msgspec.Struct):
    request_id: str
    named: frozenset[str]
    why: str
    sent_at: float


class Reconciler:
    """``on_applied(reports, recorded)``: an applied plan's reports and the ledger's
    record of each (to publish position changes, to inform the risk gate);
    ``on_failure(exc, what)``: the ledger failed (nothing was applied)."""

    def __init__(
        self,
        settings: ExecutionSettings,
        ledger: OrderLedger,
        session: VenueSession,
        *,
        venue: str,
        on_applied: Callable[[list[ExecutionReport], list[Recorded]], None],
        on_failure: Callable[[Exception, str], None],
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.session = session
        self.venue = venue
        self.on_applied = on_applied
        self.on_failure = on_failure
        self.synced = False
        """A reconciliation completed since the last logon: the ledger agrees with the venue."""
        self.alerted: set[str] = set()
        """Keys of the alerts raised in this run (each is raised once)."""
        self._in_flight: _InFlight | None = None
        self._again = ""
        self._sent = 0
        self._ctx: ServiceContext | None = None
        self._log = logger.bind(component="execution")

    def start(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._runs = ctx.stats.counter(
            "qsuite_execution_reconciles_total", "Reconciliations with the venue applied"
        )

    def reset(self) -> None:
        """Forget the request in flight (it went to a session that is gone); the ledger
        is not in sync until the next reconciliation."""
        self._in_flight = None
        self.synced = False

    def request(self, why: str) -> None:
        """Reconcile now (or after the request in flight); ``why`` is for the log."""
        if not self.session.logged_on:
            return  # the next logon reconciles
        pending = self._in_flight
        if pending is not None and self._now() - pending.sent_at < self.settings.timeout_s:
            self._again = self._again or why
            return
        try:
            orders = self.ledger.open_orders()
        except Exception as exc:
            self.on_failure(exc, "read the open orders")
            return
        self._sent += 1
        request = StatusRequest(
            ts=self._ts(),
            request_id=f"rc-{self._sent}",
            client_order_ids=[f"{o.account}/{o.client_order_id}" for o in orders],
            open_orders=True,
        )
        named = frozenset(o.client_order_id for o in orders)
        self._in_flight = _InFlight(request.request_id, named, why, self._now())
        self._again = ""
        self._log.debug("Reconciling {} open order(s) with the venue ({})", len(orders), why)
        if not self.session.send(request):
            self._in_flight = None

    def on_status(self, report: StatusReport) -> None:
        """The venue's answer to a status request."""
        pending = self._in_flight
        if pending is None or report.request_id != pending.request_id:
            self._log.debug("Dropped the status report of request {}", report.request_id)
            return
        self._in_flight = None
        try:
            orders = self._orders_for(pending.named, report)
            plan = reconcile(orders, report.orders, ts=self._ts(), venue=self.venue)
            recorded = self.ledger.apply_plan(plan)
        except Exception as exc:
            self.on_failure(exc, "apply a reconciliation")
            return
        self._runs.inc()
        self.synced = True
        self.on_applied(plan.reports(), recorded)
        self._report(plan, recorded, pending.why)
        if self._again:
            why, self._again = self._again, ""
            self.request(why)

    def _orders_for(self, named: frozenset[str], report: StatusReport) -> list[OrderState]:
        orders = {
            o.client_order_id: o
            for o in self.ledger.open_orders()
            if o.client_order_id in named or o.orig_client_order_id in named
        }
        venue_ids = {o.venue_order_id for o in orders.values() if o.venue_order_id}
        for status in report.orders:
            if status.status == "unknown" or status.client_order_id in orders:
                continue
            if status.venue_order_id in venue_ids:
                continue
            found = self.ledger.find_order(status.client_order_id)
            if found is not None:
                orders[found.client_order_id] = found
        return list(orders.values())

    def _report(self, plan: ReconcilePlan, recorded: list[Recorded], why: str) -> None:
        applied = sum(r.result == "applied" for r in recorded)
        if not plan.is_empty:
            (self._log.info if applied else self._log.debug)(
                "Reconciled with the venue ({}): {} report(s) applied, {} unknown venue "
                "order(s), {} discrepancy(ies)",
                why,
                applied,
                len(plan.unknown_orders),
                len(plan.discrepancies),
            )
        for close in plan.closes:
            if close.reason == UNKNOWN_AT_VENUE:
                self._log.bind(client_order_id=close.client_order_id).warning(
                    "Order {} is unknown at the venue: it ended {} and is not sent again",
                    close.client_order_id,
                    "rejected" if isinstance(close, OrderRejected) else "expired",
                )
        for status in plan.unknown_orders:
            self._alert(
                f"venue:{status.venue_order_id}",
                "execution.unknown_venue_order",
                f"The venue has order {status.client_order_id} ({status.side} {status.qty} "
                f"{status.symbol} for {status.account}, {status.status}) that the order "
                "manager does not know; check it, and cancel it at the venue if it is not ours",
                account=status.account,
                symbol=status.symbol,
                details={"venue_order_id": status.venue_order_id, "status": status.status},
            )
        for d in plan.discrepancies:
            self._alert(
                f"discrepancy:{d.client_order_id}:{d.reason}",
                "execution.reconcile_discrepancy",
                f"Order {d.client_order_id} differs from the venue ({d.reason}: {d.detail}) "
                "and reconciling cannot fix it; check it with `qsuite ctl order list --all`",
                details={"client_order_id": d.client_order_id, "reason": d.reason},
            )

    def _alert(self, key: str, kind: str, message: str, **fields: Any) -> None:
        assert self._ctx is not None
        if key in self.alerted:
            self._log.debug("{}", message)
            return
        self._log.warning("{}", message)
        self.alerted.add(key)
        alert = AlertRaised(
            ts_event=self._ts(), severity="warning", kind=kind, message=message, **fields
        )
        self._ctx.publish(topics.alert("warning"), alert)

    def _now(self) -> float:
        assert self._ctx is not None
        return self._ctx.clock.monotonic()

    def _ts(self) -> int:
        assert self._ctx is not None
        return self._ctx.clock.time_ns()

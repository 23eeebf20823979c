"""The execution monitor: what the algorithm engine tells the operator about each parent.

- ``AlgoStateChanged`` (``exec.algo.<id>``) on every transition, with reason and actor;
- ``AlgoProgress`` (same topic) after each fill and every ``algos.progress_interval_s``
  while it runs: filled, remaining, working, average price, what the schedule expects
  and the deviation from it, market volume and participation, arrival price and
  implementation shortfall;
- alerts (stored and published through the port): ``algo.behind_schedule`` when the
  parent is behind its schedule by more than ``algos.behind_threshold`` of its quantity
  for ``algos.behind_grace_s`` (raised again only after it caught up once),
  ``algo.stalled`` after ``algos.stall_after_s`` without a fill (again after the next
  fill), ``algo.failed`` (critical) when the algorithm failed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from app.settings import AlgoSettings
from engine.algos.live import Live
from engine.algos.tca import signed_bps
from engine.bus import topics
from engine.bus.events import AlertRaised, AlertSeverity, AlgoProgress, AlgoStateChanged
from engine.service import ServiceContext

if TYPE_CHECKING:
    from engine.algos.engine import ChildPort

NS = 1_000_000_000


class AlgoMonitor:
    def __init__(self, settings: AlgoSettings, port: ChildPort) -> None:
        self.settings = settings
        self.port = port
        self._behind = Decimal(repr(settings.behind_threshold))
        self._ctx: ServiceContext | None = None

    def start(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def state(self, live: Live, actor: str, reason: str) -> None:
        row = live.row
        self._publish(
            live,
            AlgoStateChanged(
                ts_event=self._now(),
                algo_id=row.algo_id,
                algo_type=row.algo_type,
                account=row.account,
                symbol=row.symbol,
                side=row.side,
                state=row.state,
                reason=reason,
                actor=actor,
            ),
        )

    def progress(self, live: Live, volume: Decimal, expected: Decimal | None) -> None:
        row = live.row
        avg = live.notional / live.filled if live.filled > 0 else None
        self._publish(
            live,
            AlgoProgress(
                ts_event=self._now(),
                algo_id=row.algo_id,
                algo_type=row.algo_type,
                symbol=row.symbol,
                side=row.side,
                state=row.state,
                qty=row.qty,
                filled=live.filled,
                remaining=row.qty - live.filled,
                working=live.working_qty,
                avg_price=avg,
                expected=expected,
                schedule_deviation=None
                if expected is None
                else float((live.filled - expected) / row.qty),
                market_volume=volume,
                participation=float(live.filled / volume) if volume > 0 else None,
                arrival_price=row.arrival_price,
                shortfall_bps=signed_bps(row.side, avg, row.arrival_price),
                children=live.slices,
            ),
        )

    def check(self, live: Live, expected: Decimal | None, now: int) -> None:
        """Behind-schedule and stall alerts of a running parent."""
        row = live.row
        if expected is not None and expected - live.filled > self._behind * row.qty:
            live.behind_since = live.behind_since or now
            if now - live.behind_since >= self.settings.behind_grace_s * NS:
                self.alert(
                    live,
                    "algo.behind_schedule",
                    f"{row.algo_id} is behind schedule: filled {live.filled} of {expected} "
                    f"expected by now (qty {row.qty}); check the book, its limit price and "
                    "the risk alerts",
                )
        else:
            live.behind_since = None
            live.alerted.discard("algo.behind_schedule")
        if now - live.last_fill_ns >= self.settings.stall_after_s * NS:
            self.alert(
                live,
                "algo.stalled",
                f"{row.algo_id} has had no fill for {self.settings.stall_after_s:.0f} s "
                f"(filled {live.filled} of {row.qty}); check its limit price and the book",
            )

    def alert(
        self, live: Live, kind: str, message: str, severity: AlertSeverity = "warning"
    ) -> None:
        """Raise ``kind`` for the parent once (until it is cleared from ``alerted``)."""
        if kind in live.alerted:
            return
        live.alerted.add(kind)
        row = live.row
        self.port.alert(
            AlertRaised(
                ts_event=self._now(),
                severity=severity,
                kind=kind,
                message=message,
                symbol=row.symbol,
                account=row.account,
                algo_id=row.algo_id,
            )
        )

    def _publish(self, live: Live, event: AlgoStateChanged | AlgoProgress) -> None:
        assert self._ctx is not None
        self._ctx.publish(topics.algo(live.algo_id), event)

    def _now(self) -> int:
        assert self._ctx is not None
        return self._ctx.clock.time_ns()

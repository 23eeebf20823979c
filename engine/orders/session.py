"""The order manager's session with the venue on the order-entry channel.

What the protocol (:mod:`engine.venue.protocol`) asks of a client, and nothing else:

- **Logon** on start and again every ``logon_retry_s`` until ``LoggedOn`` arrives (the
  venue may start later than the order manager, or be restarting).
- **Sequence**: every ``SessionReport`` carries the venue's run (``venue_epoch``) and
  the session's ``seq``. A new run means the venue restarted; a jump in ``seq`` means
  reports were lost. Either, and every (re)logon, asks the owner to reconcile
  (``on_resync(reason)``) — the reports themselves are still handed on.
- **Liveness**: an idle venue says nothing, so after ``heartbeat_s`` of silence the
  session asks for an empty status (``StatusRequest`` naming no order, request id
  ``hb-<n>``); nothing heard for ``timeout_s`` → not logged on (the owner's health says
  so and it refuses orders) and the session logs on again.
- A request refused with ``not_logged_on`` (a report outside any session: the venue
  restarted and forgot this one) → log on again; the refusal is still handed on.

Reports that cannot be decoded are counted (``qsuite_execution_reports_malformed_total``)
and dropped; nothing the venue sends stops the process.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from loguru import logger

from app.settings import ExecutionSettings
from engine.bus.channel import Channel
from engine.bus.events import OrderRejected
from engine.orders.lifecycle import ExecutionReport
from engine.service import ServiceContext
from engine.venue.protocol import (
    ENCODER,
    REPORT_DECODER,
    LoggedOn,
    Logon,
    Request,
    StatusReport,
    StatusRequest,
)

PROBE_PREFIX = "hb-"
"""Request ids of the liveness probes (their answers are not the owner's business)."""


class VenueSession:
    """Logon, sequence and liveness of the order-entry session (see the module doc).

    ``endpoint``: the venue's ``venue.order_entry``. ``on_report``: each execution report
    received; ``on_status``: each answer to the owner's own ``StatusRequest``;
    ``on_resync(reason)``: the owner should reconcile (``logged on``, ``venue restarted``
    or ``sequence gap``).
    """

    def __init__(
        self,
        settings: ExecutionSettings,
        endpoint: str,
        *,
        on_report: Callable[[ExecutionReport], None],
        on_status: Callable[[StatusReport], None],
        on_resync: Callable[[str], None],
    ) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.on_report = on_report
        self.on_status = on_status
        self.on_resync = on_resync
        self.logged_on = False
        self.epoch = ""
        """The venue run the session is logged on to ("" before the first logon)."""
        self.venue = ""
        """The venue's name, from ``LoggedOn``."""
        self._seq = 0
        self._heard = -math.inf
        self._logon_sent = -math.inf
        self._probe_sent = -math.inf
        self._probes = 0
        self._channel: Channel | None = None
        self._ctx: ServiceContext | None = None
        self._log = logger.bind(component="execution", session=settings.session)

    def open(self, ctx: ServiceContext) -> None:
        """Connect the channel, log on, and start the logon/liveness timer."""
        self._ctx = ctx
        stats = ctx.stats
        self._malformed = stats.counter(
            "qsuite_execution_reports_malformed_total", "Venue reports that could not be decoded"
        )
        self._gaps = stats.counter(
            "qsuite_execution_sequence_gaps_total", "Gaps in the venue session's report seq"
        )
        self._channel = ctx.open_channel(
            "order_entry", "connect", self.endpoint, self._on_message, "venue.order_entry"
        )
        self._logon()
        tick = min(self.settings.logon_retry_s, self.settings.heartbeat_s) / 2
        ctx.call_every(tick, self._tick, "execution-session")

    def send(self, request: Request) -> bool:
        """Send one request; False when the channel dropped it (it never left)."""
        assert self._channel is not None, "open() first"
        return self._channel.send([ENCODER.encode(request)])

    # --- timers ------------------------------------------------------------------------
    def _tick(self) -> None:
        now = self._now()
        if not self.logged_on:
            if now - self._logon_sent >= self.settings.logon_retry_s:
                self._logon()
            return
        quiet = now - self._heard
        if quiet >= self.settings.timeout_s:
            self._lost(f"nothing heard for {quiet:.0f} s")
        elif (
            quiet >= self.settings.heartbeat_s
            and now - self._probe_sent >= self.settings.heartbeat_s
        ):
            self._probes += 1
            self._probe_sent = now
            self.send(
                StatusRequest(
                    ts=self._ts(), request_id=f"{PROBE_PREFIX}{self._probes}", open_orders=False
                )
            )

    def _logon(self) -> None:
        self._logon_sent = self._now()
        self.send(Logon(ts=self._ts(), session=self.settings.session))

    def _lost(self, why: str) -> None:
        self.logged_on = False
        self._log.warning(
            "Cannot reach the venue at {}: {}; orders are refused until it answers a logon",
            self.endpoint,
            why,
        )
        self._logon()

    # --- reports -----------------------------------------------------------------------
    def _on_message(self, _peer: bytes, frames: list[bytes]) -> None:
        try:
            if len(frames) != 1:
                raise ValueError(f"{len(frames)} frames, expected 1")
            report = REPORT_DECODER.decode(frames[0])
        except Exception as exc:
            self._malformed.inc()
            self._log.warning("Cannot decode a report from the venue: {}", exc)
            return
        self._heard = self._now()
        body = report.body
        if isinstance(body, LoggedOn):
            self._logged_on(report.venue_epoch, report.seq, body)
            return
        if not report.session:  # answered outside any session: the venue forgot this one
            if isinstance(body, OrderRejected) and body.reason == "not_logged_on":
                if self.logged_on:
                    self._log.warning(
                        "The venue (run {}) does not know session {}; logging on again",
                        report.venue_epoch,
                        self.settings.session,
                    )
                self.logged_on = False
                self._logon()
            if isinstance(body, OrderRejected) and body.client_order_id:
                self.on_report(body)
            return
        resync = ""
        if report.venue_epoch != self.epoch:  # only after a logon, normally (a safety net)
            self._log.warning(
                "The venue is on another run ({} → {})", self.epoch, report.venue_epoch
            )
            self.epoch, resync = report.venue_epoch, "venue restarted"
        elif report.seq > self._seq + 1:
            self._gaps.inc()
            self._log.warning(
                "Missed {} report(s) from the venue (seq {} to {})",
                report.seq - self._seq - 1,
                self._seq + 1,
                report.seq - 1,
            )
            resync = "sequence gap"
        elif report.seq <= self._seq:
            self._log.debug("Report seq {} after {}: a repeat", report.seq, self._seq)
        self._seq = report.seq if resync == "venue restarted" else max(self._seq, report.seq)
        if isinstance(body, StatusReport):
            if not body.request_id.startswith(PROBE_PREFIX):
                self.on_status(body)
        else:
            self.on_report(body)
        if resync:
            self.on_resync(resync)

    def _logged_on(self, epoch: str, seq: int, body: LoggedOn) -> None:
        restarted = bool(self.epoch) and epoch != self.epoch
        was_logged_on = self.logged_on
        self.epoch, self._seq, self.venue, self.logged_on = epoch, seq, body.venue, True
        if restarted:
            self._log.warning("The venue {} restarted (run {}); logged on again", body.venue, epoch)
            self.on_resync("venue restarted")
        elif not was_logged_on:
            self._log.info("Logged on to venue {} (run {}) at {}", body.venue, epoch, self.endpoint)
            self.on_resync("logged on")
        # else: the answer to a Logon sent again while the first answer was on its way

    def _now(self) -> float:
        assert self._ctx is not None
        return self._ctx.clock.monotonic()

    def _ts(self) -> int:
        assert self._ctx is not None
        return self._ctx.clock.time_ns()

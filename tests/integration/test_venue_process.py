"""The venue as a real process: books that follow the synthetic feed, orders over the
order-entry channel (real ZeroMQ), and a kill -9 that loses and duplicates nothing."""

from __future__ import annotations

import os
import signal
import time
from decimal import Decimal
from typing import Any

import pytest
import zmq
from harness import Sandbox, running, wait_until

from app.client import QSuiteClient
from engine.bus.commands.venue import BookSnapshot, GetBook, GetVenueStatus, VenueStatus
from engine.bus.events import OrderAccepted, OrderFilled
from engine.venue.protocol import (
    ENCODER,
    REPORT_DECODER,
    LoggedOn,
    Logon,
    NewOrder,
    SessionReport,
    StatusReport,
    StatusRequest,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


class Session:
    """A raw order-entry client: a DEALER on the venue's channel."""

    def __init__(self, ctx: zmq.Context[Any], endpoint: str, name: str = "it") -> None:
        self.socket = ctx.socket(zmq.DEALER)
        self.socket.linger = 0
        self.socket.connect(endpoint)
        self.name = name
        self.reports: list[SessionReport] = []

    def pump(self, timeout_s: float = 0.2) -> None:
        while self.socket.poll(int(timeout_s * 1000)):
            self.reports.append(REPORT_DECODER.decode(self.socket.recv()))
            timeout_s = 0.02

    def send(self, request: Any) -> None:
        self.socket.send(ENCODER.encode(request))

    def logon(self) -> None:
        def answered() -> bool:
            self.send(Logon(session=self.name))
            self.pump(0.5)
            return any(isinstance(r.body, LoggedOn) for r in self.reports)

        wait_until(answered, 30, "the venue to answer a logon")

    def bodies(self, kind: type) -> list[Any]:
        return [r.body for r in self.reports if isinstance(r.body, kind)]

    def close(self) -> None:
        self.socket.close(linger=0)


def venue_pid(client: QSuiteClient) -> int:
    states = {p.process: p for p in client.health().processes}
    venue = states["venue"]
    assert venue.state == "up"
    return int(venue.pid)


def test_venue_trades_against_feed_liquidity_and_restores_after_kill(sandbox: Sandbox) -> None:
    ctx: zmq.Context[Any] = zmq.Context()
    try:
        with running(sandbox, "run", "--headless"), QSuiteClient(sandbox.settings) as client:
            book = wait_until(
                lambda: client.send(GetBook(symbol="AAA")), 60, "a book following the feed"
            )
            assert isinstance(book, BookSnapshot) and book.bids and book.asks
            assert book.bids[0][0] < book.asks[0][0]
            session = Session(ctx, sandbox.settings.venue.order_entry)
            session.logon()
            best_ask = book.asks[0][0]
            session.send(
                NewOrder(
                    account="desk1",
                    client_order_id="it-take",
                    symbol="AAA",
                    side="buy",
                    qty=Decimal(10),
                    price=best_ask + Decimal("1.00"),
                )
            )
            far = book.bids[-1][0] - Decimal("5.00")
            session.send(
                NewOrder(
                    account="desk1",
                    client_order_id="it-rest",
                    symbol="AAA",
                    side="buy",
                    qty=Decimal(7),
                    price=far,
                )
            )
            wait_until(
                lambda: (session.pump(), len(session.bodies(OrderAccepted)) == 2)[1],
                10,
                "both orders accepted",
            )
            fills = session.bodies(OrderFilled)
            assert sum(f.qty for f in fills) == Decimal(10)
            assert [r.seq for r in session.reports] == list(range(1, len(session.reports) + 1))
            epoch = session.reports[0].venue_epoch

            old = venue_pid(client)
            os.kill(old, signal.SIGKILL)
            wait_until(lambda: venue_pid(client) != old, 60, "the venue restarted")
            status = wait_until(
                lambda: client.send(GetVenueStatus()), 30, "the restarted venue answers"
            )
            assert isinstance(status, VenueStatus) and status.epoch != epoch

            again = Session(ctx, sandbox.settings.venue.order_entry)
            again.logon()
            again.send(StatusRequest(request_id="rc", client_order_ids=["desk1/it-take"]))
            wait_until(lambda: (again.pump(), again.bodies(StatusReport))[1], 10, "status")
            (report,) = again.bodies(StatusReport)
            by_id = {o.client_order_id: o for o in report.orders}
            assert by_id["it-take"].status == "filled"
            assert [f.exec_id for f in by_id["it-take"].fills] == [f.exec_id for f in fills]
            assert by_id["it-rest"].status == "accepted" and by_id["it-rest"].leaves_qty == 7
            time.sleep(0.5)
            restored = client.send(GetBook(symbol="AAA", depth=100))
            assert isinstance(restored, BookSnapshot)
            assert any(p == far and q >= 7 for p, q in restored.bids)
            session.close()
            again.close()
    finally:
        ctx.term()

"""A fake venue speaking the order-entry protocol and the order manager on one fake
network: the world of the order manager's unit tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from fakes import FakeChannel, FakeContext, FakeNetwork
from sqlalchemy import Engine

from app import database
from app.settings import Settings, load_settings
from engine.bus import topics
from engine.bus.commands.orders import (
    OrderAck,
    SubmitOrder,
)
from engine.bus.events import (
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    QuoteUpdated,
)
from engine.clock import FakeClock
from engine.errors import CommandError
from engine.orders.service import OrderService
from engine.risk.profile import RiskProfile
from engine.risk.store import save_profile
from engine.venue.protocol import (
    ENCODER,
    REQUEST_DECODER,
    CancelOrder,
    LoggedOn,
    Logon,
    NewOrder,
    OrderStatus,
    ReplaceOrder,
    Report,
    SessionReport,
    StatusReport,
    StatusRequest,
)
from engine.venue.service import instrument_defaults
from engine.venue.store import VenueStore

D = Decimal
VENUE = "SIM"


class SpyNetwork(FakeNetwork):
    """A fake network that lets a test look at the world the moment a message is sent."""

    def __init__(self) -> None:
        super().__init__()
        self.on_send: Callable[[FakeChannel, list[bytes]], None] | None = None

    def send(self, sender: FakeChannel, frames: list[bytes], peer: bytes) -> bool:
        if self.on_send is not None:
            self.on_send(sender, frames)
        return super().send(sender, frames, peer)


class FakeVenue:
    """Just enough of a venue: logon, accept, fill on demand, cancel, replace, status.

    Its orders survive :meth:`restart` (like the real venue's store); its sessions and
    sequence numbers do not (a new ``venue_epoch``)."""

    def __init__(
        self, network: FakeNetwork, endpoint: str, clock: FakeClock, *, up: bool = True
    ) -> None:
        self.network, self.endpoint, self.clock = network, endpoint, clock
        self.orders: dict[str, OrderStatus] = {}
        """Venue order id → status (client_order_id is the order's current id)."""
        self.requests: list[Any] = []
        self.drop_new = False
        """Lose every NewOrder (it never reaches a book)."""
        self.epoch = ""
        self.runs = 0
        self.sessions: dict[bytes, str] = {}
        self.peers: dict[str, bytes] = {}
        self.seq: dict[str, int] = {}
        self._execs = 0
        if up:
            self.restart()

    def restart(self, *, down: bool = False) -> None:
        """A new run: sessions and seq start over; ``down`` leaves it stopped."""
        old = self.network.servers.get(self.endpoint)
        if old is not None:
            old.closed = True
        if down:
            return
        self.runs += 1
        self.epoch = f"run{self.runs}"
        self.sessions, self.peers, self.seq = {}, {}, {}
        ctx = FakeContext("venue", clock=self.clock, network=self.network)
        self.channel = ctx.open_channel("order_entry", "serve", self.endpoint, self._got, "x")

    # --- the protocol ------------------------------------------------------------------
    def _got(self, peer: bytes, frames: list[bytes]) -> None:
        request = REQUEST_DECODER.decode(frames[0])
        self.requests.append(request)
        if isinstance(request, Logon):
            self.sessions[peer] = request.session
            self.peers[request.session] = peer
            self.report(request.session, LoggedOn(session=request.session, venue=VENUE))
            return
        session = self.sessions.get(peer)
        if session is None:
            body = OrderRejected(
                ts_event=self.clock.time_ns(),
                venue=VENUE,
                account=getattr(request, "account", ""),
                client_order_id=getattr(request, "client_order_id", ""),
                symbol=getattr(request, "symbol", ""),
                reason="not_logged_on",
            )
            report = SessionReport(session="", venue_epoch=self.epoch, seq=0, body=body)
            self.channel.send([ENCODER.encode(report)], peer)
        elif isinstance(request, StatusRequest):
            self.report(session, self.status(request))
        elif isinstance(request, NewOrder):
            if not self.drop_new:
                self.accept(session, request)
        elif isinstance(request, CancelOrder):
            self.cancel(session, request)
        elif isinstance(request, ReplaceOrder):
            self.replace(session, request)

    def report(self, session: str, body: Report, *, skip: int = 0) -> None:
        seq = self.seq[session] = self.seq.get(session, 0) + 1 + skip
        report = SessionReport(session=session, venue_epoch=self.epoch, seq=seq, body=body)
        self.channel.send([ENCODER.encode(report)], self.peers[session])

    def accept(self, session: str, request: NewOrder) -> None:
        if any(o.client_order_id == request.client_order_id for o in self.orders.values()):
            self.report(session, self._refusal(request, "new", "duplicate_client_order_id"))
            return
        vid = f"v{len(self.orders) + 1}"
        self.orders[vid] = OrderStatus(
            account=request.account,
            client_order_id=request.client_order_id,
            venue_order_id=vid,
            symbol=request.symbol,
            side=request.side,
            order_type=request.order_type,
            tif=request.tif,
            qty=request.qty,
            price=request.price,
            cum_qty=D(0),
            leaves_qty=request.qty,
            status="accepted",
        )
        self.report(
            session,
            OrderAccepted(
                ts_event=self.clock.time_ns(),
                venue=VENUE,
                account=request.account,
                client_order_id=request.client_order_id,
                venue_order_id=vid,
                symbol=request.symbol,
                side=request.side,
                order_type=request.order_type,
                tif=request.tif,
                qty=request.qty,
                price=request.price,
            ),
        )

    def cancel(self, session: str, request: CancelOrder) -> None:
        order = self.find(request.orig_client_order_id)
        if order is None or order.status not in ("accepted", "partially_filled"):
            self.report(session, self._refusal(request, "cancel", "unknown_order"))
            return
        self.orders[order.venue_order_id] = msgspec.structs.replace(
            order, status="cancelled", leaves_qty=D(0)
        )
        self.report(
            session,
            OrderCancelled(
                ts_event=self.clock.time_ns(),
                venue=VENUE,
                account=order.account,
                client_order_id=order.client_order_id,
                venue_order_id=order.venue_order_id,
                symbol=order.symbol,
                cancelled_qty=order.leaves_qty,
                cum_qty=order.cum_qty,
                reason="requested",
                cancel_client_order_id=request.client_order_id,
            ),
        )

    def replace(self, session: str, request: ReplaceOrder) -> None:
        order = self.find(request.orig_client_order_id)
        if order is None:
            self.report(session, self._refusal(request, "replace", "unknown_order"))
            return
        price = order.price if request.price is None else request.price
        new = msgspec.structs.replace(
            order,
            client_order_id=request.client_order_id,
            qty=request.qty,
            price=price,
            leaves_qty=request.qty - order.cum_qty,
        )
        self.orders[order.venue_order_id] = new
        self.report(
            session,
            OrderReplaced(
                ts_event=self.clock.time_ns(),
                venue=VENUE,
                account=order.account,
                client_order_id=request.client_order_id,
                orig_client_order_id=order.client_order_id,
                venue_order_id=order.venue_order_id,
                symbol=order.symbol,
                qty=request.qty,
                price=price,
                leaves_qty=new.leaves_qty,
                priority_kept=False,
            ),
        )

    def status(self, request: StatusRequest) -> StatusReport:
        found: dict[str, OrderStatus] = {}
        unknown = []
        for name in request.client_order_ids:
            account, _, cid = name.rpartition("/")
            order = self.find(cid)
            if order is None or order.account != account:
                unknown.append((account, cid))
            else:
                found[order.venue_order_id] = order
        if request.open_orders:
            for vid, order in self.orders.items():
                if order.status in ("accepted", "partially_filled"):
                    found.setdefault(vid, order)
        orders = list(found.values())
        for account, cid in unknown:
            orders.append(self._unknown(account, cid))
        return StatusReport(request_id=request.request_id, orders=orders)

    # --- what a test makes happen ------------------------------------------------------
    def fill(
        self, cid: str, qty: str, price: str, *, send: bool = True, cum: str | None = None
    ) -> OrderFilled:
        """Fill (part of) an order; ``send=False`` records it without telling anyone
        (a report lost on the way)."""
        order = self.find(cid)
        assert order is not None, cid
        self._execs += 1
        cum_qty = order.cum_qty + D(qty)
        fill = OrderFilled(
            ts_event=self.clock.time_ns(),
            venue=VENUE,
            account=order.account,
            client_order_id=order.client_order_id,
            venue_order_id=order.venue_order_id,
            symbol=order.symbol,
            side=order.side,
            exec_id=f"x{self._execs}",
            trade_id=f"t{self._execs}",
            qty=D(qty),
            price=D(price),
            liquidity="maker",
            leaves_qty=order.qty - cum_qty,
            cum_qty=D(cum) if cum is not None else cum_qty,
        )
        self.orders[order.venue_order_id] = msgspec.structs.replace(
            order,
            cum_qty=cum_qty,
            leaves_qty=order.qty - cum_qty,
            status="filled" if cum_qty == order.qty else "partially_filled",
            fills=[*order.fills, fill],
        )
        if send:
            self.report("execution", fill)
        return fill

    def find(self, cid: str) -> OrderStatus | None:
        return next((o for o in self.orders.values() if o.client_order_id == cid), None)

    def received(self, kind: type) -> list[Any]:
        return [r for r in self.requests if isinstance(r, kind)]

    def _refusal(self, request: Any, kind: Any, reason: str) -> OrderRejected:
        return OrderRejected(
            ts_event=self.clock.time_ns(),
            venue=VENUE,
            account=request.account,
            client_order_id=request.client_order_id,
            symbol=request.symbol,
            request=kind,
            orig_client_order_id=getattr(request, "orig_client_order_id", ""),
            reason=reason,
        )

    @staticmethod
    def _unknown(account: str, cid: str) -> OrderStatus:
        return OrderStatus(
            account=account,
            client_order_id=cid,
            venue_order_id="",
            symbol="",
            side="buy",
            order_type="limit",
            tif="day",
            qty=D(0),
            price=None,
            cum_qty=D(0),
            leaves_qty=D(0),
            status="unknown",
        )


def permit(engine: Engine, *accounts: str) -> None:
    """Risk profiles without limits for ``accounts`` (the gate's own tests are in
    tests/unit/risk; here it mostly has to let the orders through)."""
    for account in accounts:
        save_profile(engine, RiskProfile(account=account), actor="test")


INSTRUMENTS = ("AAPL", "MSFT", "S")
"""The symbols the venue trades in these tests (tick 0.01, lot 1)."""


class World:
    """The order manager (``execution``) and a fake venue on one fake network.

    ``profiles``: the risk profiles stored before the start (default: no limits for the
    accounts ``acc`` and ``a``); ``environ``: more settings; ``recent_quotes``: what the
    feed's price cache holds at each start."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        venue_up: bool = True,
        profiles: Sequence[RiskProfile] | None = None,
        environ: dict[str, str] | None = None,
        recent_quotes: Callable[[], Iterable[QuoteUpdated]] | None = None,
    ) -> None:
        self.recent_quotes = recent_quotes
        self.settings: Settings = load_settings(
            environ={"QSUITE__APP__DATA_DIR": str(tmp_path), **(environ or {})}
        )
        self.network = SpyNetwork()
        self.clock = FakeClock()
        endpoint = self.settings.venue.order_entry
        self.venue = FakeVenue(self.network, endpoint, self.clock, up=venue_up)
        self.engine = database.open_database(self.settings)
        store = VenueStore(self.engine)
        for symbol in INSTRUMENTS:  # what the venue trades (the feed quoted them)
            store.instrument(symbol, instrument_defaults(self.settings.venue))
        if profiles is None:
            permit(self.engine, "acc", "a")
        for profile in profiles or ():
            save_profile(self.engine, profile, actor="test")
        self.start()

    def start(self) -> None:
        """Start (again) the order manager, on the same database and network."""
        self.service = OrderService(
            self.settings.execution,
            self.settings.venue,
            self.settings.risk,
            self.settings.algos,
            engine=self.engine,
            recent_quotes=self.recent_quotes,
        )
        self.ctx = FakeContext("execution", clock=self.clock, network=self.network)
        self.service.start(self.ctx)
        self.run()

    def restart(self) -> None:
        """The execution process dies and comes back (its session to the venue too)."""
        for channel in self.network.clients.values():
            if channel.peer_id.startswith(b"execution-"):
                channel.closed = True
        self.service.stop()
        self.start()
        self.advance(1)

    def run(self) -> None:
        self.network.run()

    def advance(self, seconds: float) -> None:
        """Time passes; messages sent on the way are delivered as they go."""
        for _ in range(int(seconds * 10)):
            self.ctx.advance(0.1)
            self.run()

    def send(self, command: Any) -> Any:
        result = self.ctx.send(command)
        self.run()
        return result

    def submit(self, cid: str = "o1", **fields: Any) -> OrderAck:
        ack = self.send(self.order(cid, **fields))
        assert isinstance(ack, OrderAck)
        return ack

    @staticmethod
    def order(cid: str = "o1", **fields: Any) -> SubmitOrder:
        """A ``SubmitOrder`` of a limit buy of 10 AAPL at 100 for ``acc``, changed by
        ``fields``."""
        values: dict[str, Any] = {
            "account": "acc",
            "symbol": "AAPL",
            "side": "buy",
            "qty": D(10),
            "price": D(100),
            "command_id": f"cmd-{cid}",
            "client_order_id": cid,
        }
        values.update(fields)
        return SubmitOrder(**values)

    def events(self, kind: type[Event]) -> list[Any]:
        return self.ctx.events(kind)

    def quote(self, *, bid: float, ask: float, symbol: str = "AAPL") -> None:
        self.ctx.deliver(
            topics.quote(symbol),
            QuoteUpdated(
                ts_event=self.clock.time_ns(),
                symbol=symbol,
                bid=bid,
                ask=ask,
                bid_size=1.0,
                ask_size=1.0,
                last=ask,
                origin="synthetic",
            ),
        )

    def status_of(self, cid: str) -> str:
        order = self.service.ledger.find_order(cid)
        assert order is not None, cid
        return order.status


def refused(world: World, command: Any) -> CommandError:
    with pytest.raises(CommandError) as info:
        world.send(command)
    return info.value

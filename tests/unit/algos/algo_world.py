"""The real venue (matching engine, market makers, flow) and the real order manager with
its algorithm engine, on one fake network and one fake clock: algorithms run in
compressed time against a real book."""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path
from typing import Any

from fakes import FakeContext, FakeNetwork

from app import database
from app.settings import Settings, load_settings
from engine.bus import topics
from engine.bus.commands.algos import AlgoView, StartAlgo
from engine.bus.events import Event, QuoteUpdated, TradeReported
from engine.clock import FakeClock
from engine.orders.lifecycle import OrderState
from engine.orders.service import OrderService
from engine.risk.profile import RiskProfile
from engine.risk.store import save_profile
from engine.venue.service import VenueService

D = Decimal
SYMBOL = "AAPL"
QUOTE_EVERY_NS = 5 * 10**9
SPREAD = D("0.02")


class AlgoWorld:
    """``profile``: the risk profile of account ``acc`` (default: no limits)."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        profile: RiskProfile | None = None,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.settings: Settings = load_settings(
            environ={"QSUITE__APP__DATA_DIR": str(tmp_path), **(environ or {})}
        )
        self.network, self.clock = FakeNetwork(), FakeClock()
        self.engine = database.open_database(self.settings)
        save_profile(self.engine, profile or RiskProfile(account="acc"), actor="test")
        self.venue_ctx = FakeContext("venue", clock=self.clock, network=self.network)
        self.venue = VenueService(self.settings.venue, engine=self.engine)
        self.venue.start(self.venue_ctx)
        self._seen = 0
        self._quoted = 0
        self._starts = itertools.count()
        self.mid = D(100)
        self.start_execution()

    def start_execution(self) -> None:
        """Start (again) the execution process on the same database and network."""
        s = self.settings
        self.service = OrderService(s.execution, s.venue, s.risk, s.algos, engine=self.engine)
        self.ctx = FakeContext("execution", clock=self.clock, network=self.network)
        self.down = False
        self.service.start(self.ctx)
        self._seen = len(self.venue_ctx.published)  # it sees the venue's events from now
        self.pump()

    def kill_execution(self) -> None:
        """kill -9 of the execution process: its channel dies, its memory is gone."""
        for channel in self.network.clients.values():
            if channel.peer_id.startswith(b"execution-"):
                channel.closed = True
        self.down = True
        self.service.stop()

    # --- the market ----------------------------------------------------------------------

    def quote(self, mid: Decimal | None = None, spread: Decimal = SPREAD) -> None:
        """The feed quotes ``mid``: the venue's market makers follow, the gate marks it."""
        self.mid = mid if mid is not None else self.mid
        self._quoted = self.clock.time_ns()
        event = QuoteUpdated(
            ts_event=self.clock.time_ns(),
            symbol=SYMBOL,
            bid=float(self.mid - spread / 2),
            ask=float(self.mid + spread / 2),
            bid_size=1000.0,
            ask_size=1000.0,
            last=float(self.mid),
            origin="synthetic",
        )
        self.venue_ctx.deliver(topics.quote(SYMBOL), event)
        if not self.down:
            self.ctx.deliver(topics.quote(SYMBOL), event)
        self.pump()

    def tape(self, qty: float, aggressor: Any = "buy") -> None:
        """A trade on the feed's tape at the touch: the venue replays it as flow (an IOC
        at that price) against its book."""
        event = TradeReported(
            ts_event=self.clock.time_ns(),
            symbol=SYMBOL,
            price=float(self.mid + SPREAD / 2 if aggressor == "buy" else self.mid - SPREAD / 2),
            size=qty,
            aggressor=aggressor,
            origin="synthetic",
        )
        self.venue_ctx.deliver(topics.trade(SYMBOL), event)
        self.pump()

    # --- driving -------------------------------------------------------------------------

    def pump(self) -> None:
        """Deliver messages and the venue's bus events until nothing moves."""
        for _ in range(1_000):
            moved = self.network.run()
            new = self.venue_ctx.published[self._seen :]
            self._seen += len(new)
            for topic, event in new:
                if not self.down:
                    self.ctx.deliver(topic, event)
            if not moved and not new:
                return
        raise AssertionError("the world did not settle")

    def advance(self, seconds: float, *, step: float = 0.1, every: Any = None) -> None:
        """Time passes in steps; ``every(world)`` runs after each step."""
        for _ in range(round(seconds / step)):
            self.clock.advance(step)
            self.venue_ctx.run_due()
            if not self.down:
                self.ctx.run_due()
            self.pump()
            if self.clock.time_ns() - self._quoted >= QUOTE_EVERY_NS:
                self.quote()  # the feed keeps quoting: fresh references, live makers
            if every is not None:
                every(self)

    def send(self, command: Any) -> Any:
        result = self.ctx.send(command)
        self.pump()
        return result

    def start(self, algo_type: str, qty: int | str, side: Any = "buy", **params: Any) -> AlgoView:
        import msgspec

        view = self.send(
            StartAlgo(
                algo_type=algo_type,
                account="acc",
                symbol=SYMBOL,
                side=side,
                qty=D(qty),
                params=msgspec.json.encode(params).decode(),
                command_id=f"start-{algo_type}-{next(self._starts)}",
                actor="test",
            )
        )
        assert isinstance(view, AlgoView)
        return view

    def children(self, algo_id: str) -> list[OrderState]:
        return self.service.ledger.children(algo_id)

    def events(self, kind: type[Event]) -> list[Any]:
        return self.ctx.events(kind)

"""The console's link to the engine: one bus subscription feeding the view state, one
control client and the UI's own heartbeat.

Pages never open sockets; they read the view state and call the bridge. Commands are
sent on behalf of the logged-in user (actor and role), so the control plane enforces
roles server-side too.

Late joiners (the Clone pattern): the subscription runs first; :meth:`Bridge.sync` then
fills in what the bus alone cannot give — the orders and positions so far, and a
snapshot of each book that is missing or stale — so a tab opened late starts complete.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, TypeVar

import zmq
import zmq.asyncio
from loguru import logger

from app import __version__
from app.client import AsyncQSuiteClient
from app.settings import Settings
from engine.bus import topics
from engine.bus.commands import Command, HealthReport, Result
from engine.bus.commands.orders import (
    GetPositions,
    ListOrders,
    OrderAck,
    OrderList,
    PositionList,
    SubmitOrder,
)
from engine.bus.commands.venue import BookSnapshot, GetBook
from engine.bus.events import Heartbeat
from engine.bus.publisher import Publisher
from engine.bus.subscriber import AsyncSubscriber
from engine.errors import CommandError, EngineUnreachable, ErrorCode
from ui import session
from ui.algo_state import AlgoBoard
from ui.chart_state import ChartBoard
from ui.risk_state import RiskBoard
from ui.session import Forbidden, require
from ui.state import MAX_SYMBOLS, MarketView
from ui.trading_state import MAX_ORDERS, TradingView

R = TypeVar("R", bound=Result)


class View(Protocol):
    def apply(self, event: object) -> None: ...


SYNC_INTERVAL_S = 1.0
RETRY_S = 2.0
"""A failed or stale fetch is tried again after this long (per book, per kind)."""
BOOK_DEPTH = 100
"""Levels per side asked of ``GetBook`` (its maximum)."""


class Bridge:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = AsyncQSuiteClient(settings, actor="console", role="viewer")
        self._zmq = zmq.Context()
        self._publisher = Publisher(self._zmq, settings.bus.xsub, "ui", hwm=settings.bus.hwm)
        self._started_at = time.time_ns()
        self.last_error = ""
        self.market = MarketView()
        self.trading = TradingView()
        self.algos = AlgoBoard()
        self.risk = RiskBoard()
        self.charts = ChartBoard()
        self.views: tuple[View, ...] = (
            self.market,
            self.trading,
            self.algos,
            self.risk,
            self.charts,
        )
        """Every view state the bus feeds; one with ``async sync(bridge)`` is also
        completed from the control plane every second (late joiners)."""
        self.sync_error = ""
        """Why the last fetch of orders, positions or a book failed ("" when it worked)."""
        self._watched: set[str] = set()
        self._next_try: dict[str, float] = {}
        self._errors: dict[str, str] = {}
        self._async_zmq = zmq.asyncio.Context()
        self._stopping = False
        self._subscriber: AsyncSubscriber | None = None

    async def listen(self) -> None:
        """The console's one bus subscription: quotes, feed state, books, venue trades,
        execution reports and positions into the view state. Runs for the life of the
        process (started at app start-up)."""
        self._subscriber = subscriber = AsyncSubscriber(
            self._async_zmq,
            self.settings.bus.xpub,
            [
                topics.QUOTES,
                topics.FEED_STATES,
                topics.BOOKS,
                topics.VENUE_TRADES,
                topics.ORDERS,
                topics.POSITIONS,
                topics.ALGOS,
                topics.TRIGGERS,
                topics.RISK_STATES,
                topics.RISK_DENIED,
                topics.ALERTS,
                topics.BARS,
                topics.INDICATORS,
                topics.SIGNALS,
            ],
            hwm=self.settings.bus.hwm,
        )
        try:
            while not self._stopping:
                message = await subscriber.recv(timeout_ms=500)
                if message is not None:
                    for view in self.views:
                        view.apply(message[1])
        except zmq.ZMQError:  # closed by close() at shutdown
            pass
        finally:
            subscriber.close()

    async def maintain(self) -> None:
        """Keep the trading view complete (start-up, gaps, restarts): :meth:`sync` every
        second for the watchlist and the books pages watch. Started at app start-up."""
        try:
            while not self._stopping:
                await self.health()
                await self.sync()
                for view in self.views:
                    sync = getattr(view, "sync", None)
                    if sync is not None:
                        await sync(self)
                await asyncio.sleep(SYNC_INTERVAL_S)
        except zmq.ZMQError:  # the client was closed by close() at shutdown
            pass

    def symbols(self) -> list[str]:
        """The symbols a page offers: the watchlist, then any other book the venue has."""
        watchlist = list(self.settings.feed.watchlist)
        return watchlist + sorted(set(self.trading.books) - set(watchlist))

    def watch(self, symbol: str) -> None:
        """A page shows ``symbol``'s book: keep it complete too (bounded like the view)."""
        if symbol in self._watched or len(self._watched) < MAX_SYMBOLS:
            self._watched.add(symbol)

    async def sync(self, symbols: Iterable[str] = ()) -> None:
        """Fetch what the bus alone cannot give: the orders and positions so far (once),
        and a snapshot of each book (of ``symbols``, the watchlist and the watched ones)
        that is missing or stale. Each fetch that fails is retried after
        ``RETRY_S``, its reason kept in ``sync_error`` (a refusal or no answer never
        raises)."""
        view = self.trading
        jobs: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        if not view.blotter.loaded:
            jobs.append(("orders", self._load_orders))
        if not view.positions_loaded:
            jobs.append(("positions", self._load_positions))
        for symbol in dict.fromkeys([*symbols, *self.settings.feed.watchlist, *self._watched]):
            book = view.books.get(symbol)
            if book is None or book.status != "live":
                jobs.append((f"the book of {symbol}", functools.partial(self._load_book, symbol)))
        for what in set(self._errors) - {what for what, _ in jobs}:
            del self._errors[what]  # fetched, or the bus made it whole meanwhile
        for what, job in jobs:
            if not self._due(what):
                continue
            try:
                await job()
            except EngineUnreachable as exc:
                self._errors[what] = f"Cannot load {what}: {exc}"
            except CommandError as exc:
                self._errors[what] = f"Cannot load {what} ({exc.code}): {exc.message}"
            else:
                self._errors.pop(what, None)
        self.sync_error = "; ".join(self._errors.values())

    async def _load_orders(self) -> None:
        reply = await self.client.send(ListOrders(open_only=False, limit=MAX_ORDERS))
        self.trading.blotter.load(self.client.expect(reply, OrderList).orders)

    async def _load_positions(self) -> None:
        reply = await self.client.send(GetPositions())
        self.trading.load_positions(self.client.expect(reply, PositionList).positions)

    async def _load_book(self, symbol: str) -> None:
        reply = await self.client.send(GetBook(symbol=symbol, depth=BOOK_DEPTH))
        self.trading.load_book(self.client.expect(reply, BookSnapshot))

    def _due(self, what: str) -> bool:
        now = time.monotonic()
        if self._next_try.get(what, 0.0) > now:
            return False
        self._next_try[what] = now + RETRY_S
        return True

    async def act(self, command: Command, kind: type[R]) -> tuple[R | None, str]:
        """Send ``command`` as the logged-in user (checked here against the command's
        ``min_role``, and again by the control plane): ``(result, "")``, or ``(None, why
        not)`` in words for the operator — never raises for a refusal. A mutating command
        (an action, not a query) is audited: who, its type tag, its target, ok / denied /
        error and why."""
        await session.confirm()  # renews the session; ends it if expired or disabled
        try:
            user = require(command.min_role)
        except Forbidden as exc:
            problem = f"Not allowed: {exc}."
            if command.mutating:
                who = session.current_user()
                actor = who.name if who is not None else "anonymous"
                await session.audit_action(actor, command, None, "denied", problem)
            return None, problem
        result: R | None = None
        outcome, problem = "error", ""
        try:
            result = self.client.expect(
                await self.client.send(command, actor=user.name, role=user.role), kind
            )
            outcome = "ok"
        except EngineUnreachable as exc:
            problem = str(exc)
        except CommandError as exc:
            outcome = "denied" if exc.code in (ErrorCode.FORBIDDEN, ErrorCode.DENIED) else "error"
            if exc.code == ErrorCode.FORBIDDEN:
                problem = f"Not allowed for {user.name} ({user.role}): {exc.message}"
            else:
                problem = f"Refused ({exc.code}): {exc.message}"
        if command.mutating:
            await session.audit_action(user.name, command, result, outcome, problem or None)
        return result, problem

    async def submit_order(self, order: SubmitOrder) -> tuple[bool, str]:
        """Send an order ticket as the console's user: (True, what was sent) or (False,
        why not, in words for the operator)."""
        ack, problem = await self.act(order, OrderAck)
        if ack is None:
            return False, problem
        return True, f"Sent {ack.client_order_id} ({ack.status})"

    def status(self) -> tuple[str, str, str]:
        """For the status bar: (why the engine is unreachable or "", feed mode, trading
        state)."""
        return self.last_error, self.market.feed_mode.upper(), self.risk.trading_state

    def beat(self) -> None:
        self._publisher.publish(
            topics.heartbeat("ui"),
            Heartbeat(
                ts_event=time.time_ns(),
                process="ui",
                pid=os.getpid(),
                version=__version__,
                started_at=self._started_at,
            ),
        )

    async def health(self) -> HealthReport | None:
        """The supervisor's health report, or None with ``last_error`` saying why."""
        try:
            report = await self.client.health()
        except EngineUnreachable as exc:
            self.last_error = str(exc)
            return None
        except CommandError as exc:
            self.last_error = f"Health request refused ({exc.code}): {exc.message}"
            return None
        self.last_error = ""
        return report

    def close(self) -> None:
        logger.info("Console bridge closing")
        self._stopping = True
        if self._subscriber is not None:
            self._subscriber.close()
        self.client.close()
        self._publisher.close()
        self._zmq.term()
        self._async_zmq.term()

"""The simulated venue process: order books behind the order-entry protocol.

- **Order entry** (:mod:`engine.venue.protocol`): a ROUTER channel on
  ``venue.order_entry``. A client logs on with its session name; its requests are
  checked (a known symbol: one the feed quoted or an operator added with
  ``SetInstrument``, stored in ``simulated_instruments``; account, duplicate ids, price
  on the tick, quantity on the lot) and applied to the symbol's
  :class:`~engine.venue.book.OrderBook`; every execution report of an order goes to the
  session that entered it, numbered per session (``seq``) within this run
  (``venue_epoch``).
- **Write-ahead**: the client-facing reports of a request are stored
  (:class:`~engine.venue.store.VenueStore`) before any is sent or published. After a
  restart the books get their resting client orders back in time priority, and a
  client reconciles with a ``StatusRequest``.
- **Bus**: execution reports of client accounts on ``venue.order.<account>``, prints on
  ``venue.trade.<symbol>``, L2 deltas on ``venue.book.<symbol>`` and a snapshot of every
  book each ``snapshot_interval_s`` (``GetBook`` gives one to a late joiner).
- **Liquidity** (:mod:`engine.venue.liquidity`): market makers follow ``md.quote``, the
  flow replays ``md.trade``, and the scenario of ``md.feed`` scales them. At start they
  quote at once around the feed's cached quotes (``recent_quotes``) no older than
  ``venue.seed_quote_max_age_s``.
- **Control**: ``GetBook``, ``GetVenueStatus``, ``SetHalt``.

A request that cannot be decoded is counted (``qsuite_venue_requests_rejected_total``)
and answered with ``OrderRejected(reason="malformed")`` when the peer is logged on;
nothing a client sends stops the process.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from loguru import logger
from sqlalchemy import Engine

from app.settings import VenueSettings
from engine.bus import topics
from engine.bus.commands.venue import (
    BookSnapshot,
    BookSummary,
    GetBook,
    GetVenueStatus,
    HaltSet,
    InstrumentSet,
    SetHalt,
    SetInstrument,
    VenueStatus,
)
from engine.bus.events import (
    BookUpdated,
    Event,
    FeedStateChanged,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    QuoteUpdated,
    TradePrinted,
    TradeReported,
)
from engine.errors import CommandError, ErrorCode
from engine.service import HealthStatus, ServiceContext
from engine.venue.book import OrderBook, OrderState
from engine.venue.gateway import ACCOUNT, OrderEntryGateway, Session
from engine.venue.instrument import InstrumentSpec, Reason
from engine.venue.liquidity import (
    INTERNAL_ACCOUNTS,
    Flow,
    LiquidityParams,
    MarketMaker,
)
from engine.venue.protocol import (
    CancelOrder,
    NewOrder,
    ReplaceOrder,
    Report,
    StatusReport,
    StatusRequest,
)
from engine.venue.store import VenueStore, plain_decimal
from feeds.cache import read_recent

_ORDER_REPORTS = (OrderAccepted, OrderFilled, OrderCancelled, OrderReplaced)
_CLIENT_REPORTS = (*_ORDER_REPORTS, OrderRejected)
_KINDS: dict[type, str] = {NewOrder: "new", CancelOrder: "cancel", ReplaceOrder: "replace"}


class VenueService:
    def __init__(
        self,
        settings: VenueSettings,
        *,
        engine: Engine,
        recent_quotes: Callable[[], Iterable[QuoteUpdated]] | None = None,
    ) -> None:
        self.settings = settings
        self._recent_quotes = recent_quotes
        self.store = VenueStore(engine)
        self.engine = engine
        self.epoch = secrets.token_hex(3)
        self.books: dict[str, OrderBook] = {}
        self.makers: dict[str, MarketMaker] = {}
        self.flows: dict[str, Flow] = {}
        self.scenario = "calm"
        self._owner: dict[str, str] = {}
        """Venue order id → the session of a client order."""
        self._ids: set[tuple[str, str]] = set()
        self._ctx: ServiceContext | None = None
        self._log = logger.bind(component="venue")

    # --- Service -----------------------------------------------------------------------
    def start(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        rejected = ctx.stats.counter(
            "qsuite_venue_requests_rejected_total", "Order-entry requests refused"
        )
        self.gateway = OrderEntryGateway(
            self.settings.name,
            self.epoch,
            ctx.clock,
            rejected,
            lambda account, cid: (account, cid) in self._ids,
        )
        self.gateway.on_request = self._on_request
        self.gateway.on_status = self._answer_status
        self._restore()
        self.gateway.channel = ctx.open_channel(
            "order_entry",
            "serve",
            self.settings.order_entry,
            self.gateway.on_message,
            "venue.order_entry",
        )
        ctx.subscribe(topics.QUOTES, self._on_quote)
        self._seed_quotes()
        ctx.subscribe(topics.FEED_STATES, self._on_feed_state)
        if self.settings.flow:
            ctx.subscribe(topics.TRADES, self._on_trade)
        ctx.register_command(GetBook, self._get_book)
        ctx.register_command(GetVenueStatus, self._status)
        ctx.register_command(SetHalt, self._set_halt)
        ctx.register_command(SetInstrument, self._set_instrument)
        ctx.call_every(self.settings.snapshot_interval_s, self._snapshots, "venue-snapshots")
        self._day_end = next_day_end(self._now(), self.settings.day_end_utc)
        ctx.call_every(1.0, self._expire_day_orders, "venue-day-end")
        self._log.info(
            "Venue {} (run {}) on {}: {} book(s), {} resting client order(s) restored",
            self.settings.name,
            self.epoch,
            self.gateway.channel.endpoint,
            len(self.books),
            len(self._owner),
        )

    def health(self) -> tuple[HealthStatus, str]:
        halted = [s for s, b in self.books.items() if b.halted]
        if halted:
            return "degraded", f"halted: {', '.join(sorted(halted))}"
        return "up", f"{len(self.books)} book(s), {len(self.gateway.sessions)} session(s)"

    def stop(self) -> None:
        self.engine.dispose()

    # --- books -------------------------------------------------------------------------
    def book(self, symbol: str) -> OrderBook:
        book = self.books.get(symbol)
        if book is not None:
            return book
        return self._open_book(self.store.instrument(symbol, instrument_defaults(self.settings)))

    def _traded(self, symbol: str) -> OrderBook | None:
        """The book of ``symbol`` when it is an instrument of this venue (one the feed
        quoted or an operator added, stored in ``simulated_instruments``), else None:
        orders for anything else are refused ``unknown_symbol``."""
        book = self.books.get(symbol)
        if book is None:
            row = self.store.find_instrument(symbol)
            if row is not None:
                book = self._open_book(row)
        return book

    def _open_book(self, row: Any) -> OrderBook:
        """A new, empty book (and its market maker and flow) from an instrument row."""
        s, symbol = self.settings, row.symbol
        spec = InstrumentSpec(symbol, plain_decimal(row.tick_size), plain_decimal(row.lot_size))
        book = OrderBook(
            spec,
            venue=s.name,
            self_match_default=s.self_match,
            deltas=True,
            id_prefix=f"{symbol}-{self.epoch}",
        )
        self.books[symbol] = book
        self.makers[symbol] = MarketMaker(book, self._liquidity(row, spec), self.scenario)
        self.flows[symbol] = Flow(book)
        return book

    def _liquidity(self, row: Any, spec: InstrumentSpec) -> LiquidityParams:
        s = self.settings
        return LiquidityParams(
            levels=s.levels,
            spacing_ticks=s.level_spacing_ticks,
            size_lots=max(1, int(Decimal(str(row.base_liquidity)) / spec.lot_size)),
            refill_ns=int(s.refill_s * 1e9),
        )

    def _restore(self) -> None:
        rows, self._ids = self.store.load()
        by_symbol: dict[str, list[Any]] = {}
        for row in rows:
            by_symbol.setdefault(row.symbol, []).append(row)
        now = self._now()
        for symbol, orders in by_symbol.items():
            book = self.book(symbol)
            states = []
            for r in orders:
                price = (
                    None if r.price is None else book.spec.price_ticks(plain_decimal(r.price))[0]
                )
                states.append(
                    OrderState(
                        account=r.account,
                        client_order_id=r.client_order_id,
                        venue_order_id=r.venue_order_id,
                        side=r.side,
                        order_type=r.order_type,
                        tif=r.tif,
                        price=price,
                        qty=book.spec.qty_lots(plain_decimal(r.qty))[0],
                        cum_qty=book.spec.qty_lots(plain_decimal(r.cum_qty))[0]
                        if plain_decimal(r.cum_qty) > 0
                        else 0,
                        ts=r.ts_created,
                    )
                )
                self._owner[r.venue_order_id] = r.session
            for refused in book.restore(states, ts=now):
                self._log.error("Cannot restore an order: {}", getattr(refused, "message", refused))

    # --- order entry -------------------------------------------------------------------
    def _on_request(self, session: Session, request: Any) -> None:
        self._dispatch(self._apply(session, request), session.name)

    def _apply(self, session: Session, request: Any) -> list[Event]:
        ts = self._now()
        account, cid = request.account, request.client_order_id
        kind = _KINDS[type(request)]
        orig = getattr(request, "orig_client_order_id", "")
        book = self._traded(request.symbol)
        if book is None:
            why = (
                f"{request.symbol} is not traded here: the feed has not quoted it and it is not "
                f"a simulated instrument (`qsuite ctl instrument {request.symbol}` adds it)"
            )
            return [self.gateway.refusal(request, kind, Reason.UNKNOWN_SYMBOL, why)]
        spec = book.spec
        if isinstance(request, CancelOrder):
            return book.cancel(account, orig, client_order_id=cid, ts=ts)
        lots, why = spec.qty_lots(request.qty)
        price: int | None = None
        if not why and request.price is not None:
            price, why = spec.price_ticks(request.price)
        if why:
            message = f"{request.symbol}: tick {spec.tick_size}, lot {spec.lot_size}"
            return [self.gateway.refusal(request, kind, why, message)]
        if isinstance(request, ReplaceOrder):
            events = book.replace(account, orig, cid, lots, price, ts=ts)
        else:
            events = book.submit(
                account,
                cid,
                request.side,
                lots,
                price,
                order_type=request.order_type,
                tif=request.tif,
                ts=ts,
            )
        for event in events:
            if isinstance(event, OrderAccepted) and event.client_order_id == cid:
                self._owner[event.venue_order_id] = session.name
        return events

    def _answer_status(self, session: Session, request: StatusRequest) -> None:
        wanted = [(a, c) for a, c in (_split(i) for i in request.client_order_ids)]
        orders = self.store.statuses(session.name, wanted, request.open_orders)
        self.gateway.send(session, StatusReport(request_id=request.request_id, orders=orders))

    # --- events out --------------------------------------------------------------------
    def _dispatch(self, events: Iterable[Event], requester: str | None = None) -> None:
        """Store the client-facing events, then report them to their sessions and publish
        everything (write-ahead: nothing leaves before it is recorded)."""
        events = list(events)
        items: list[tuple[str, Event]] = []
        priorities: dict[str, int] = {}
        routed: list[tuple[str, Report]] = []
        for event in events:
            if isinstance(event, OrderRejected):
                if requester is not None:
                    routed.append((requester, event))
                continue
            if not isinstance(event, _ORDER_REPORTS) or event.account in INTERNAL_ACCOUNTS:
                continue
            owner = self._owner.get(event.venue_order_id)
            if owner is None:
                continue
            routed.append((owner, event))
            items.append((owner, event))
            if isinstance(event, OrderAccepted):
                self._ids.add((event.account, event.client_order_id))
                priorities[event.venue_order_id] = self.store.next_priority()
            elif isinstance(event, OrderReplaced):
                self._ids.add((event.account, event.client_order_id))
                if not event.priority_kept:
                    priorities[event.venue_order_id] = self.store.next_priority()
        self.store.record(items, priorities)
        for name, report in routed:
            session = self.gateway.sessions.get(name)
            if session is not None:
                self.gateway.send(session, report)
        self._publish(events)
        for symbol in {getattr(e, "symbol", "") for e in events}:
            maker = self.makers.get(symbol)
            if maker is not None:
                maker.on_events(events, self._now())

    def _publish(self, events: list[Event]) -> None:
        assert self._ctx is not None
        for event in events:
            if isinstance(event, TradePrinted):
                self._ctx.publish(topics.venue_trade(event.symbol), event)
            elif isinstance(event, BookUpdated):
                self._ctx.publish(topics.book(event.symbol), event)
            elif (
                isinstance(event, _CLIENT_REPORTS)
                and event.account not in INTERNAL_ACCOUNTS
                and ACCOUNT.match(event.account)
            ):
                self._ctx.publish(topics.order(event.account), event)

    # --- market ------------------------------------------------------------------------
    def _on_quote(self, _topic: str, event: Any) -> None:
        if isinstance(event, QuoteUpdated):
            self.book(event.symbol)
            self._dispatch(self.makers[event.symbol].quote(event.bid, event.ask, self._now()))

    def _seed_quotes(self) -> None:
        """The market makers quote around the feed's cached quotes that are recent
        enough (``venue.seed_quote_max_age_s``), without waiting for the next quote."""
        max_age_ns = int(self.settings.seed_quote_max_age_s * 1e9)
        if max_age_ns <= 0:
            return
        quotes = read_recent(self._recent_quotes, self._log, "to quote around")
        now = self._now()
        fresh = [q for q in quotes if now - q.ts_event <= max_age_ns]
        for quote in fresh:
            self._on_quote("", quote)
        self._log.info(
            "Market makers quoting around {} cached quote(s) ({} older than {:g} s left out)",
            len(fresh),
            len(quotes) - len(fresh),
            self.settings.seed_quote_max_age_s,
        )

    def _on_trade(self, _topic: str, event: Any) -> None:
        if isinstance(event, TradeReported) and event.symbol in self.books:
            flow = self.flows[event.symbol]
            self._dispatch(flow.trade(event.price, event.size, event.aggressor, self._now()))

    def _on_feed_state(self, _topic: str, event: Any) -> None:
        if not isinstance(event, FeedStateChanged) or not event.scenario:
            return
        if event.scenario == self.scenario:
            return
        self._log.info("Scenario {} → {}", self.scenario, event.scenario)
        self.scenario = event.scenario
        for maker in self.makers.values():
            self._dispatch(maker.set_scenario(event.scenario, self._now()))

    def _expire_day_orders(self) -> None:
        now = self._now()
        if now < self._day_end:
            return
        self._day_end = next_day_end(now, self.settings.day_end_utc)
        expired = 0
        for book in self.books.values():
            events = book.cancel_all(tif="day", reason=Reason.EXPIRED, ts=now)
            expired += sum(
                1
                for e in events
                if isinstance(e, OrderCancelled) and e.account not in INTERNAL_ACCOUNTS
            )
            self._dispatch(events)
        self._log.info("Trading day ended: {} day order(s) expired", expired)

    def _snapshots(self) -> None:
        assert self._ctx is not None
        now = self._now()
        for symbol, book in self.books.items():
            self._ctx.publish(topics.book(symbol), book.snapshot(now))

    # --- commands ----------------------------------------------------------------------
    def _get_book(self, cmd: GetBook) -> BookSnapshot:
        book = self.books.get(cmd.symbol)
        if book is None:
            known = ", ".join(sorted(self.books)) or "none yet"
            raise CommandError(ErrorCode.NOT_FOUND, f"no book for {cmd.symbol}; books: {known}")
        bids, asks = book.depth(cmd.depth)
        return BookSnapshot(
            symbol=cmd.symbol,
            book_seq=book.book_seq,
            bids=bids,
            asks=asks,
            halted=book.halted,
            tick_size=book.tick_size,
            lot_size=book.lot_size,
        )

    def _status(self, _cmd: GetVenueStatus) -> VenueStatus:
        books = []
        for symbol, book in sorted(self.books.items()):
            books.append(
                BookSummary(
                    symbol=symbol,
                    best_bid=book.best_bid_price(),
                    best_ask=book.best_ask_price(),
                    open_orders=sum(
                        1 for o in book.open_orders() if o.account not in INTERNAL_ACCOUNTS
                    ),
                    halted=book.halted,
                    tick_size=book.tick_size,
                    lot_size=book.lot_size,
                )
            )
        return VenueStatus(
            venue=self.settings.name,
            epoch=self.epoch,
            scenario=self.scenario,
            sessions=sorted(self.gateway.sessions),
            books=books,
        )

    def _set_halt(self, cmd: SetHalt) -> HaltSet:
        if cmd.symbol and cmd.symbol not in self.books:
            raise CommandError(ErrorCode.NOT_FOUND, f"no book for {cmd.symbol}")
        symbols = [cmd.symbol] if cmd.symbol else sorted(self.books)
        changed, cancelled = [], 0
        for symbol in symbols:
            book = self.books[symbol]
            if book.halted != cmd.halted:
                book.halted = cmd.halted
                changed.append(symbol)
            if cmd.halted and cmd.cancel_open:
                events = book.cancel_all(reason="halted", ts=self._now())
                cancelled += sum(
                    1
                    for e in events
                    if isinstance(e, OrderCancelled) and e.account not in INTERNAL_ACCOUNTS
                )
                self._dispatch(events)
        self._log.bind(command_id=cmd.command_id).warning(
            "Trading {} on {} by {}: {}",
            "halted" if cmd.halted else "resumed",
            ", ".join(symbols) or "no book",
            cmd.actor or "unknown",
            cmd.reason or "no reason given",
        )
        return HaltSet(symbols=changed, halted=cmd.halted, cancelled=cancelled)

    def _set_instrument(self, cmd: SetInstrument) -> InstrumentSet:
        for name in ("tick_size", "lot_size"):
            value = getattr(cmd, name)
            if value is not None and (not value.is_finite() or value <= 0):
                raise CommandError(
                    ErrorCode.INVALID, f"{name} must be a positive number, got {value}"
                )
        book = self.book(cmd.symbol)
        grid = {
            k: v
            for k, v in (("tick_size", cmd.tick_size), ("lot_size", cmd.lot_size))
            if v is not None and v != getattr(book.spec, k)
        }
        resting = [o for o in book.open_orders() if o.account not in INTERNAL_ACCOUNTS]
        if grid and resting:
            raise CommandError(
                ErrorCode.CONFLICT,
                f"{len(resting)} client order(s) rest on {cmd.symbol} at tick {book.tick_size}, "
                f"lot {book.lot_size}: cancel them before changing the tick or lot size",
            )
        values: dict[str, Any] = dict(grid)
        if cmd.base_liquidity is not None:
            values["base_liquidity"] = cmd.base_liquidity
        if cmd.volatility is not None:
            values["volatility"] = cmd.volatility
        row = self.store.update_instrument(cmd.symbol, values)
        if grid:  # an empty book of client orders: start it afresh on the new grid
            self._dispatch(book.cancel_all(reason="requested", ts=self._now()))
            assert self._ctx is not None
            fresh = self._open_book(row)
            self._ctx.publish(topics.book(cmd.symbol), fresh.snapshot(self._now()))
        else:
            self.makers[cmd.symbol].params = self._liquidity(row, book.spec)
        self._log.bind(command_id=cmd.command_id).info(
            "Instrument {} set by {}: {}", cmd.symbol, cmd.actor or "unknown", values or "no change"
        )
        return InstrumentSet(
            symbol=cmd.symbol,
            tick_size=plain_decimal(row.tick_size),
            lot_size=plain_decimal(row.lot_size),
            base_liquidity=float(row.base_liquidity),
            volatility=float(row.volatility),
            applied="now",
        )

    def _now(self) -> int:
        assert self._ctx is not None
        return self._ctx.clock.time_ns()


def next_day_end(now_ns: int, at: str) -> int:
    """The first ``HH:MM`` UTC strictly after ``now_ns``, in ns."""
    hours, minutes = (int(x) for x in at.split(":"))
    day = 86_400 * 1_000_000_000
    offset = (hours * 3600 + minutes * 60) * 1_000_000_000
    candidate = now_ns - now_ns % day + offset
    return candidate if candidate > now_ns else candidate + day


def _split(item: str) -> tuple[str, str]:
    """``account/client_order_id`` in a status request (the id alone: any account)."""
    account, _, cid = item.rpartition("/")
    return account, cid


def instrument_defaults(settings: VenueSettings) -> dict[str, Any]:
    """How a new instrument is traded until an operator changes it (``venue.*``)."""
    return {
        "tick_size": settings.tick_size,
        "lot_size": settings.lot_size,
        "base_liquidity": settings.base_liquidity,
        "volatility": settings.volatility,
    }

"""Execution-algorithm engine: the cost of one market event decided, and 100 algorithms
under a sustained stream of market events.

Arrangement (no processes, no sockets): the real :class:`~engine.algos.engine.AlgoEngine`
on a SQLite database in a temporary directory, migrated as a process's is; a
``ServiceContext`` stand-in (the real ``StatsRegistry``, a simulated clock, ``publish``
stamping and encoding every event as the bus publisher does, without the socket); and a
``ChildPort`` stand-in for the order manager: ready, every child allowed at once and
nothing sent — **the risk gate and the ledger's write-ahead commit of a child are not in
these figures** (``bench_risk.py`` and ``bench_venue.py`` measure them); the slice row the
engine hands to that commit is written later, untimed, so that settling it costs what it
does in production. Instruments are ``simulated_instruments`` rows (tick 0.01, lot 1);
each book mirror starts from a snapshot of 10 levels a side. Loguru is removed (the
engine logs state changes only). The garbage collector stays on.

1. Decision cost. One parent on each of four symbols; the unit is **one market event ->
   one algorithm decided**: the engine's ``venue.book`` handler called with one
   ``BookUpdated`` delta (one level's size changes, prices stay) for a symbol with one
   running parent — the mirror update, the scan for the symbol's running parents, the
   ``Market`` view and ``Progress``, the algorithm's ``decide`` and ``_apply``. Series:
   ``twap`` between slices (the slice's child working, nothing due), ``pov`` within its
   band (a child working), ``iceberg`` with its child working — these three send nothing,
   the common case — and ``iceberg_send``, whose child is removed (untimed) before each
   event so that every decision places one child through the stand-in port. Baseline: one
   matching-engine operation as ``bench_risk.py`` times it — ``OrderBook`` with execution
   reports (as the venue runs it), 5,000 resting orders, a non-marketable limit submit —
   and its cancel, each timed as one operation. Algorithm events and book operations
   alternate one by one, each timed alone with ``perf_counter_ns``; p50 and p99 of each
   and the ratio at p50 (target: <= 10x one matching operation when nothing is sent).

2. Sustained load. ``--algos`` parents (TWAP with 5 s slices, POV at 5-20 %, iceberg at
   the touch, in turn; buy and sell; passive and touch pricing) spread evenly over
   ``--symbols`` instruments; market events arrive at ``--rate`` per second per instrument
   (Poisson, fixed seed) for ``--seconds`` of simulated time: 70 % book deltas (5 % of
   them move the touch a tick), 30 % trade prints at the touch (1-200 lots); each decides
   every running parent of its symbol. A simulated venue (untimed) answers the children:
   accepted, filled from the opposite touch when they reach it (at most the size shown
   there per market event), by later prints that reach their price, cancelled when asked;
   each report arrives 1 ms after the work that caused it and goes to
   ``AlgoEngine.on_child`` as the order manager hands it. The engine's own timers
   (wake-up tick, progress events, progress save) run at their configured intervals. Work
   is processed in arrival order as one loop would: an item starts at max(its arrival, the
   end of the previous item) and takes its measured real time; the engine's clock reads
   that simulated start. Reported: the lag of market events (end of processing -
   arrival) p50/p99/max, the share of the loop's capacity used, and what was sent, by
   source (market events, execution reports, timers). It **keeps up** when the capacity
   used is below 100 % (the backlog cannot grow) and the lag p99 stays below one event
   interval of an instrument (``1 / --rate``).

    .venv/bin/python scripts/bench_algos.py [--seconds 60] [--algos 100] [--symbols 10]
                                            [--rate 10] [--decisions 20000] [--json]
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
sys.path.insert(0, str(ROOT / "scripts"))

import msgspec  # noqa: E402
from bench_risk import make_book, pct, timer_overhead  # noqa: E402
from loguru import logger  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from app import database  # noqa: E402
from app.settings import load_settings  # noqa: E402
from engine.algos.engine import AlgoEngine  # noqa: E402
from engine.algos.live import Live  # noqa: E402
from engine.bus import codec, topics  # noqa: E402
from engine.bus.events import (  # noqa: E402
    BookUpdated,
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    Side,
    TradePrinted,
)
from engine.clock import Clock  # noqa: E402
from engine.orders.lifecycle import ExecutionReport, OrderState, apply_report  # noqa: E402
from engine.persistence.models.market import SimulatedInstrument  # noqa: E402
from engine.risk.decision import Decision  # noqa: E402
from engine.stats import StatsRegistry  # noqa: E402

WORKER = ThreadPoolExecutor(1, thread_name_prefix="worker")

T0 = 1_700_000_000 * 1_000_000_000
NS = 1_000_000_000
LEVELS = 10
MID = 10_000  # best bid in ticks of 0.01
LATENCY_NS = 1_000_000  # a child's report reaches the engine 1 ms after the work that sent it
ACCOUNT = "desk"
KINDS = ("twap", "pov", "iceberg")
SERIES = ("twap", "pov", "iceberg", "iceberg_send")
ALLOW = Decision(allowed=True)


def px(ticks: int) -> Decimal:
    return Decimal(ticks).scaleb(-2)


# --- the process around the engine ---------------------------------------------------------


class SimClock:
    """The engine's clock, set by the benchmark (simulated time)."""

    def __init__(self) -> None:
        self.ns = T0

    def time_ns(self) -> int:
        return self.ns

    def monotonic(self) -> float:
        return (self.ns - T0) / NS


class BenchContext:
    """A ``ServiceContext`` without sockets: handlers and timers are kept for the
    benchmark to call; ``publish`` stamps and encodes like the bus publisher."""

    def __init__(self, clock: SimClock) -> None:
        self.process = "execution"
        self.clock: Clock = clock
        self.stats = StatsRegistry()
        self.handlers: dict[str, Callable[[str, Any], None]] = {}
        self.timers: dict[str, tuple[float, Callable[[], object]]] = {}
        self.published = 0
        self._seq: dict[str, int] = {}

    def publish(self, topic: str, event: Event) -> Event:
        seq = self._seq[topic] = self._seq.get(topic, 0) + 1
        self.published += 1
        stamped = msgspec.structs.replace(
            event,
            source=self.process,
            seq=seq,
            event_id=f"execution:bench:{self.published}",
            ts_init=event.ts_init or self.clock.time_ns(),
        )
        codec.encode(stamped)
        return stamped

    def register_command(self, command_type: Any, handler: Any) -> None:
        pass

    def subscribe(self, prefix: str, handler: Callable[[str, Any], None]) -> None:
        self.handlers[prefix] = handler

    def call_every(self, interval_s: float, fn: Callable[[], object], name: str) -> None:
        self.timers[name] = (interval_s, fn)

    def call_soon_threadsafe(self, fn: Callable[[], object]) -> None:
        fn()

    def run_in_worker(
        self, fn: Callable[[], Any], on_done: Callable[[Future[Any]], object]
    ) -> None:
        # a worker thread, like the runtime's: the progress save leaves the loop
        WORKER.submit(fn).add_done_callback(on_done)

    def open_channel(self, *args: Any) -> Any:
        raise NotImplementedError("the benchmark opens no channels")


class BenchPort:
    """The order manager as the engine sees it: ready, every child allowed, nothing sent;
    the children and cancels asked for wait here for the simulated venue."""

    def __init__(self) -> None:
        self.placed: list[OrderState] = []
        self.intents: list[Callable[[Any], None]] = []
        self.cancels: list[str] = []
        self.alerts = 0

    def ready(self) -> bool:
        return True

    def place_child(self, order: OrderState, also: Callable[[Any], None]) -> Decision:
        self.placed.append(order)
        self.intents.append(also)  # the slice row, written by the venue (untimed)
        return ALLOW

    def cancel_child(self, client_order_id: str) -> bool:
        self.cancels.append(client_order_id)
        return True

    def children(self, algo_id: str) -> list[OrderState]:
        return []

    def check_parent(self, order: Any) -> Decision:
        return ALLOW

    def accept_parent(self, order: Any) -> None:
        pass

    def parent_done(self, algo_id: str) -> None:
        pass

    def alert(self, event: Any) -> None:
        self.alerts += 1

    def mark(self, symbol: str) -> Decimal | None:
        return None


class NoHistory:
    def intraday_volumes(self, symbol: str, *, days: int, now_ns: int) -> list[Any]:
        return []


# --- the market ------------------------------------------------------------------------------


class SymbolBook:
    """A venue book's L2 as the bus shows it: a snapshot, then deltas and prints."""

    def __init__(self, symbol: str, rng: random.Random) -> None:
        self.symbol, self.rng = symbol, rng
        self.bid = MID  # best bid; the best ask is one tick above
        self.bids = {MID - k: rng.randint(100, 1000) for k in range(LEVELS)}
        self.asks = {MID + 1 + k: rng.randint(100, 1000) for k in range(LEVELS)}
        self.seq = 1
        self.trades = 0

    def snapshot(self) -> BookUpdated:
        return BookUpdated(
            ts_event=T0,
            venue="SIM",
            symbol=self.symbol,
            book_seq=self.seq,
            snapshot=True,
            bids=[(px(p), Decimal(q)) for p, q in sorted(self.bids.items(), reverse=True)],
            asks=[(px(p), Decimal(q)) for p, q in sorted(self.asks.items())],
        )

    def delta(self, ts: int, move: float) -> BookUpdated:
        """One level's size changes; with probability ``move`` the touch moves a tick."""
        rng = self.rng
        bids: list[tuple[Decimal, Decimal]] = []
        asks: list[tuple[Decimal, Decimal]] = []
        if rng.random() < move:
            b = self.bid
            if rng.random() < 0.5:  # up: the best ask becomes the best bid
                gone_bid, new_bid, gone_ask, new_ask = b - LEVELS + 1, b + 1, b + 1, b + 1 + LEVELS
                self.bid += 1
            else:
                gone_bid, new_bid, gone_ask, new_ask = b, b - LEVELS, b + LEVELS, b
                self.bid -= 1
            del self.bids[gone_bid], self.asks[gone_ask]
            self.bids[new_bid] = self.asks[new_ask] = rng.randint(100, 1000)
            bids += [(px(gone_bid), Decimal(0)), (px(new_bid), Decimal(self.bids[new_bid]))]
            asks += [(px(gone_ask), Decimal(0)), (px(new_ask), Decimal(self.asks[new_ask]))]
        else:
            k = min(int(rng.expovariate(0.5)), LEVELS - 1)
            qty = rng.randint(100, 1000)
            if rng.random() < 0.5:
                self.bids[self.bid - k] = qty
                bids.append((px(self.bid - k), Decimal(qty)))
            else:
                self.asks[self.bid + 1 + k] = qty
                asks.append((px(self.bid + 1 + k), Decimal(qty)))
        self.seq += 1
        return BookUpdated(
            ts_event=ts,
            venue="SIM",
            symbol=self.symbol,
            book_seq=self.seq,
            snapshot=False,
            bids=bids,
            asks=asks,
        )

    def trade(self, ts: int) -> TradePrinted:
        self.trades += 1
        buy = self.rng.random() < 0.5
        return TradePrinted(
            ts_event=ts,
            venue="SIM",
            symbol=self.symbol,
            trade_id=f"{self.symbol}-t{self.trades}",
            price=px(self.bid + 1 if buy else self.bid),
            qty=Decimal(self.rng.randint(1, 200)),
            aggressor="buy" if buy else "sell",
        )


class SimVenue:
    """Answers the children the port collected with execution reports (untimed), and
    keeps them as the order manager's ledger would: each report with the order after it.

    Liquidity: a child that reaches the opposite touch takes at most what the touch shows,
    less what children took since the symbol's last market event (the makers refill on
    every event); its rest works on. Prints trade with the resting children they reach.
    """

    def __init__(self, port: BenchPort, engine: AlgoEngine) -> None:
        self.port, self.engine = port, engine
        self.open: dict[str, dict[str, OrderState]] = {}  # symbol -> id -> order
        self.room: dict[tuple[str, str], Decimal] = {}  # (symbol, side) -> left to take
        self.fills = self.cancelled = 0
        self._n = 0

    def take(self, ts: int) -> list[tuple[ExecutionReport, OrderState]]:
        """Reports for the children and cancels asked for since the last call."""
        out: list[tuple[ExecutionReport, OrderState]] = []
        if self.port.intents:  # the ledger's transaction: the slices exist to be settled
            with self.engine.engine.begin() as conn:
                for also in self.port.intents:
                    also(conn)
        for order in self.port.placed:
            self.open.setdefault(order.symbol, {})[order.client_order_id] = order
            self._report(out, _accepted(order, ts))
            self._cross(out, order.client_order_id, order.symbol, ts)
        for cid in self.port.cancels:
            for orders in self.open.values():
                if cid in orders:
                    self._cancel(out, orders[cid], "requested", ts)
        self.port.placed.clear()
        self.port.intents.clear()
        self.port.cancels.clear()
        return out

    def on_market(self, event: Any, ts: int) -> list[tuple[ExecutionReport, OrderState]]:
        """After a market event of a symbol: the touch is refilled, crossing children
        take from it, a print trades with the resting children it reaches."""
        symbol = event.symbol
        book = self.engine.board.get(symbol).book
        ask, bid = book.best_ask(), book.best_bid()
        self.room[symbol, "buy"] = ask[1] if ask else Decimal(0)
        self.room[symbol, "sell"] = bid[1] if bid else Decimal(0)
        out: list[tuple[ExecutionReport, OrderState]] = []
        for cid in list(self.open.get(symbol, ())):
            self._cross(out, cid, symbol, ts)
        if isinstance(event, TradePrinted):
            left = event.qty
            for order in list(self.open.get(symbol, {}).values()):
                price = order.price
                if left <= 0 or price is None:
                    continue
                if (event.aggressor == "sell") == (order.side == "buy") and (
                    event.price <= price if order.side == "buy" else event.price >= price
                ):
                    qty = min(left, order.leaves_qty)
                    left -= qty
                    self._fill(out, order, qty, price, "maker", event.trade_id, ts)
        return out

    def _cross(self, out: list[Any], cid: str, symbol: str, ts: int) -> None:
        order = self.open[symbol].get(cid)
        if order is None:
            return
        book = self.engine.board.get(symbol).book
        touch = book.best_ask() if order.side == "buy" else book.best_bid()
        room = self.room.get((symbol, order.side), Decimal(0))
        price = order.price
        crosses = touch is not None and (
            price is None or (price >= touch[0] if order.side == "buy" else price <= touch[0])
        )
        if crosses and room > 0:
            assert touch is not None
            qty = min(room, order.leaves_qty)
            self.room[symbol, order.side] = room - qty
            self._n += 1
            self._fill(out, order, qty, touch[0], "taker", f"x{self._n}", ts)
            order = self.open[symbol].get(cid)
        if order is not None and (order.tif in ("ioc", "fok") or order.order_type == "market"):
            self._cancel(out, order, "ioc_remainder", ts)

    def _fill(
        self,
        out: list[Any],
        order: OrderState,
        qty: Decimal,
        price: Decimal,
        liq: Any,
        trade: str,
        ts: int,
    ) -> None:
        self._n += 1
        self.fills += 1
        cum = order.filled_qty + qty
        report = OrderFilled(
            ts_event=ts,
            venue="SIM",
            account=order.account,
            client_order_id=order.client_order_id,
            venue_order_id=f"v-{order.client_order_id}",
            symbol=order.symbol,
            side=order.side,
            exec_id=f"e{self._n}",
            trade_id=trade,
            qty=qty,
            price=price,
            liquidity=liq,
            leaves_qty=order.qty - cum,
            cum_qty=cum,
        )
        self._report(out, report)

    def _cancel(self, out: list[Any], order: OrderState, reason: str, ts: int) -> None:
        self.cancelled += 1
        report = OrderCancelled(
            ts_event=ts,
            venue="SIM",
            account=order.account,
            client_order_id=order.client_order_id,
            venue_order_id=f"v-{order.client_order_id}",
            symbol=order.symbol,
            cancelled_qty=order.leaves_qty,
            cum_qty=order.filled_qty,
            reason=reason,
        )
        self._report(out, report)

    def _report(self, out: list[Any], report: ExecutionReport) -> None:
        orders = self.open[report.symbol]
        cid = report.client_order_id
        state = apply_report(orders[cid], report).state
        if state.is_open:
            orders[cid] = state
        else:
            del orders[cid]
        out.append((report, state))


def _accepted(order: OrderState, ts: int) -> OrderAccepted:
    return OrderAccepted(
        ts_event=ts,
        venue="SIM",
        account=order.account,
        client_order_id=order.client_order_id,
        venue_order_id=f"v-{order.client_order_id}",
        symbol=order.symbol,
        side=order.side,
        order_type=order.order_type,
        tif=order.tif,
        qty=order.qty,
        price=order.price,
    )


# --- the world ----------------------------------------------------------------------------


class World:
    """The engine, its database, context, port, simulated venue and the symbols' books."""

    def __init__(self, tmp: str, symbols: list[str], seed: int) -> None:
        settings = load_settings(environ={"QSUITE__APP__DATA_DIR": tmp})
        self.db = database.open_database(settings)
        rows = [
            {
                "symbol": s,
                "tick_size": Decimal("0.01"),
                "lot_size": Decimal(1),
                "base_liquidity": 1000.0,
                "volatility": 0.2,
                "reference_price": px(MID),
            }
            for s in symbols
        ]
        with self.db.begin() as conn:
            conn.execute(insert(SimulatedInstrument), rows)
        self.clock = SimClock()
        self.ctx = BenchContext(self.clock)
        self.port = BenchPort()
        self.engine = AlgoEngine(
            settings.algos, engine=self.db, port=self.port, history=NoHistory()
        )
        self.engine.start(self.ctx)
        self.on_book = self.ctx.handlers[topics.BOOKS]
        self.on_trade = self.ctx.handlers[topics.VENUE_TRADES]
        self.venue = SimVenue(self.port, self.engine)
        rng = random.Random(seed)
        self.books = {s: SymbolBook(s, random.Random(rng.random())) for s in symbols}
        for s, book in self.books.items():
            self.on_book(topics.book(s), book.snapshot())

    def start(
        self, kind: str, symbol: str, i: int, rng: random.Random, seconds: float, interval: float
    ) -> Live:
        side: Side = "buy" if i % 2 == 0 else "sell"
        touch = ("passive", "touch")[(i // 2) % 2]
        book = self.books[symbol]
        params: dict[str, Any]
        if kind == "twap":
            interval = min(interval, 2 * seconds)
            slices = max(1, round(2 * seconds / interval))
            qty = 100 * slices
            params = {"duration_s": 2 * seconds, "interval_s": interval, "aggressiveness": touch}
            params["randomize"] = 0.2
        elif kind == "pov":
            qty = 1_000_000
            params = {"rate": rng.choice((0.05, 0.1, 0.2)), "aggressiveness": touch}
            params["max_child_qty"] = "500"
        else:
            qty = 1_000_000
            limit = px(book.bid if side == "buy" else book.bid + 1)
            params = {"display_qty": str(rng.choice((100, 200, 500))), "limit_price": str(limit)}
            params["variance"] = 0.2
        row = self.engine.create(
            algo_type=kind,
            account=ACCOUNT,
            symbol=symbol,
            side=side,
            qty=Decimal(qty),
            params=params,
            start_at_ns=None,
            command_id=f"bench-{kind}-{i}",
            actor="bench",
        )
        return self.engine.live[row.algo_id]

    def settle(self) -> None:
        """Deliver the venue's answers at once (untimed): setup only."""
        while self.port.placed or self.port.cancels:
            for report, state in self.venue.take(self.clock.ns):
                self.engine.on_child(report, state)

    def decisions(self) -> int:
        return int(self.ctx.stats.total("qsuite_algo_decisions_total"))

    def close(self) -> None:
        self.db.dispose()


# --- 1. the cost of one decision ---------------------------------------------------------------


def decision_cost(samples: int, seed: int) -> dict[str, Any]:
    symbols = [f"D{i}" for i in range(len(SERIES))]
    with tempfile.TemporaryDirectory(prefix="qsuite-bench-algos-") as tmp:
        world = World(tmp, symbols, seed)
        try:
            return _decision_cost(world, symbols, samples, seed)
        finally:
            world.close()


def _decision_cost(world: World, symbols: list[str], samples: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    lives = {}
    for i, (name, symbol) in enumerate(zip(SERIES, symbols, strict=True)):
        kind = "iceberg" if name == "iceberg_send" else name
        # buys; TWAP passive (60 s slices over an hour), POV at the touch
        lives[name] = world.start(kind, symbol, 2 * i, rng, 3600.0, 60.0)
    world.settle()  # TWAP's first slice and the icebergs' children rest (no liquidity taken)
    pov = world.books[symbols[1]]
    world.on_trade(topics.venue_trade(symbols[1]), pov.trade(T0))
    world.settle()  # POV's child for its share of that print rests: it is within its band
    state = {n: (str(v.filled), len(v.working)) for n, v in lives.items()}
    deltas = {
        n: [world.books[s].delta(T0, move=0.0) for _ in range(samples)]
        for n, s in zip(SERIES, symbols, strict=True)
    }
    book_topics = {n: topics.book(s) for n, s in zip(SERIES, symbols, strict=True)}
    book = make_book(5_000)
    brng = random.Random(3)
    on_book, port, clock = world.on_book, world.port, time.perf_counter_ns
    times: dict[str, list[int]] = {n: [] for n in SERIES}
    submits: list[int] = []
    cancels: list[int] = []
    sent = dict.fromkeys(SERIES, 0)
    decided = world.decisions()
    n_ops = 0
    gc.collect()
    step = min(1_000_000, 40 * NS // samples)  # TWAP's next slice is due after 48 s at the earliest
    for i in range(samples):
        world.clock.ns += step
        for name in SERIES:
            if name == "iceberg_send":
                lives[name].working.clear()  # its child is gone: this decision sends one
            before = len(port.placed) + len(port.cancels)
            event = deltas[name][i]
            t0 = clock()
            on_book(book_topics[name], event)
            times[name].append(clock() - t0)
            sent[name] += len(port.placed) + len(port.cancels) - before
            n_ops += 1
            if n_ops % 2:
                side: Side = "buy" if brng.random() < 0.5 else "sell"
                behind = brng.randint(1, 50)
                price = 10_000 - behind if side == "buy" else 10_001 + behind
                t0 = clock()
                book.submit("taker", f"b{n_ops}", side, brng.randint(1, 10), price, ts=T0)
                submits.append(clock() - t0)
            else:
                t0 = clock()
                book.cancel("taker", f"b{n_ops - 1}", ts=T0)
                cancels.append(clock() - t0)
        port.placed.clear()
        port.intents.clear()
    decided = world.decisions() - decided
    ops = sorted(submits + cancels)
    op_p50 = pct(ops, 50)
    out: dict[str, Any] = {
        "samples": samples,
        "decisions": decided,
        "state_before": state,
        "book_op_ns": spread(ops),
        "book_submit_ns": spread(submits),
        "book_cancel_ns": spread(cancels),
        "series": {},
        "timer_overhead_ns": timer_overhead(),
    }
    for name in SERIES:
        values = sorted(times[name])
        p50, p99 = pct(values, 50), pct(values, 99)
        out["series"][name] = {
            "p50_ns": p50,
            "p99_ns": p99,
            "ratio_p50": p50 / op_p50,
            "ratio_p99": p99 / pct(ops, 99),
            "sent_per_event": sent[name] / samples,
        }
    return out


# --- 2. sustained load ---------------------------------------------------------------------------

MARKET, REPORT, TIMER = 0, 1, 2
SOURCES = ("market", "report", "timer")


def sustained(args: argparse.Namespace) -> dict[str, Any]:
    symbols = [f"S{i:02d}" for i in range(args.symbols)]
    with tempfile.TemporaryDirectory(prefix="qsuite-bench-algos-") as tmp:
        world = World(tmp, symbols, args.seed)
        try:
            return _sustained(world, symbols, args)
        finally:
            world.close()


def _sustained(world: World, symbols: list[str], args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed + 1)
    for i in range(args.algos):
        world.start(KINDS[i % len(KINDS)], symbols[i % len(symbols)], i, rng, args.seconds, 5.0)
    end_ns = T0 + int(args.seconds * NS)
    queue: list[tuple[int, int, int, Any]] = []  # (arrival, order, kind, payload)
    order = 0
    for symbol in symbols:  # Poisson arrivals per instrument, generated in time order
        book, t = world.books[symbol], float(T0)
        while True:
            t += rng.expovariate(args.rate) * NS
            if t >= end_ns:
                break
            ts = int(t)
            event = book.trade(ts) if rng.random() < 0.3 else book.delta(ts, move=0.05)
            queue.append((ts, order, MARKET, event))
            order += 1
    for name, (interval, _) in world.ctx.timers.items():
        queue.append((T0 + int(interval * NS), order, TIMER, name))
        order += 1
    heapq.heapify(queue)
    for report, state in world.venue.take(T0):  # the children the starts sent
        heapq.heappush(queue, (T0 + LATENCY_NS, order, REPORT, (report, state)))
        order += 1

    engine, venue, port, clock = world.engine, world.venue, world.port, time.perf_counter_ns
    on_book, on_trade, timers = world.on_book, world.on_trade, world.ctx.timers
    book_topics = {s: topics.book(s) for s in symbols}
    trade_topics = {s: topics.venue_trade(s) for s in symbols}
    tally = {name: Tally() for name in SOURCES}
    lags: list[int] = []
    quiet: list[int] = []  # market events that sent nothing
    sending: list[int] = []  # … and those that sent a child or a cancel
    ended: list[int] = []  # execution reports that ended a child
    timer_ns: dict[str, list[int]] = {name: [] for name in timers}
    free_at = 0
    gc.collect()
    while queue and queue[0][0] < end_ns:
        arrival, _, kind, payload = heapq.heappop(queue)
        start = max(arrival, free_at)
        world.clock.ns = start
        before = world.decisions()
        if kind == MARKET:
            handler = on_trade if isinstance(payload, TradePrinted) else on_book
            topic = (trade_topics if handler is on_trade else book_topics)[payload.symbol]
            t0 = clock()
            handler(topic, payload)
            took = clock() - t0
        elif kind == REPORT:
            report, state = payload
            t0 = clock()
            engine.on_child(report, state)
            took = clock() - t0
        else:
            fn = timers[payload][1]
            t0 = clock()
            fn()
            took = clock() - t0
        free_at = start + took
        # untimed from here: what the engine sent, the venue's answers, the next timer
        source = tally[SOURCES[kind]]
        source.ns.append(took)
        source.decisions += world.decisions() - before
        source.placed += len(port.placed)
        source.cancels += len(port.cancels)
        sent = bool(port.placed or port.cancels)
        source.sent += sent
        made = venue.take(free_at)
        if kind == MARKET:
            lags.append(free_at - arrival)
            (sending if sent else quiet).append(took)
            made += venue.on_market(payload, free_at)
        elif kind == REPORT:
            if not payload[1].is_open:
                ended.append(took)
        else:
            timer_ns[payload].append(took)
            heapq.heappush(queue, (arrival + int(timers[payload][0] * NS), order, TIMER, payload))
            order += 1
        for item in made:
            heapq.heappush(queue, (free_at + LATENCY_NS, order, REPORT, item))
            order += 1

    span = end_ns - T0
    busy = sum(sum(t.ns) for t in tally.values())
    market = tally["market"]
    lags.sort()
    return {
        "seconds": args.seconds,
        "algos": args.algos,
        "symbols": args.symbols,
        "rate_per_symbol": args.rate,
        "running_at_end": sum(1 for v in engine.live.values() if v.row.state == "running"),
        "market_event_ns": spread(market.ns),
        "market_event_quiet_ns": spread(quiet),
        "market_event_sent_ns": spread(sending),
        "per_decision_mean_ns": sum(market.ns) / max(1, market.decisions),
        "report_ns": spread(tally["report"].ns),
        "report_ended_ns": spread(ended),
        "timers": {name: spread(v) | {"max": max(v, default=0)} for name, v in timer_ns.items()},
        "lag_ns": {"p50": pct(lags, 50), "p99": pct(lags, 99), "max": lags[-1] if lags else 0},
        "capacity_used": busy / span,
        "busy_s": {name: sum(t.ns) / NS for name, t in tally.items()},
        "keeps_up": busy < span and pct(lags, 99) < NS / args.rate,
        "by_source": {
            name: {
                "items": len(t.ns),
                "decisions": t.decisions,
                "children_placed": t.placed,
                "cancels_sent": t.cancels,
                "items_that_sent": t.sent,
            }
            for name, t in tally.items()
        },
        "fills": venue.fills,
        "events_published": world.ctx.published,
    }


@dataclass
class Tally:
    """What one source of work (market events, execution reports, timers) cost and did."""

    ns: list[int] = field(default_factory=list)
    decisions: int = 0
    placed: int = 0
    cancels: int = 0
    sent: int = 0
    """Items after which at least one child or cancel was sent."""


def spread(values: list[int]) -> dict[str, int]:
    ordered = sorted(values)
    return {"p50": pct(ordered, 50), "p99": pct(ordered, 99)}


# --- main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="load: simulated seconds")
    parser.add_argument("--algos", type=int, default=100, help="load: running parents")
    parser.add_argument("--symbols", type=int, default=10, help="load: instruments")
    parser.add_argument("--rate", type=float, default=10.0, help="load: events/s per instrument")
    parser.add_argument("--decisions", type=int, default=20_000, help="cost: events per series")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logger.remove()  # state changes log; the benchmark times the engine, not the log sink
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "cost": decision_cost(args.decisions, args.seed),
        "load": sustained(args),
        "python": sys.version.split()[0],
    }
    result["wall_s"] = time.perf_counter() - t0
    if args.json:
        print(json.dumps(result, indent=2))
        return
    report(result)


def us(ns: float) -> str:
    return f"{ns / 1e3:.1f}"


def report(r: dict[str, Any]) -> None:
    c, ld = r["cost"], r["load"]
    op, sub, can = c["book_op_ns"], c["book_submit_ns"], c["book_cancel_ns"]
    lines = [
        f"python {r['python']}; {r['wall_s']:.1f} s",
        f"1. one market event (a BookUpdated delta) -> one algorithm decided, {c['samples']:,} "
        f"per series, alternating with book operations (includes ~{c['timer_overhead_ns']} ns "
        "of timer)",
        f"  matching op (submit or cancel, 5,000 resting) p50 {us(op['p50'])} us  "
        f"p99 {us(op['p99'])} us  (submit {us(sub['p50'])}/{us(sub['p99'])}, "
        f"cancel {us(can['p50'])}/{us(can['p99'])})",
    ]
    for name, s in c["series"].items():
        lines.append(
            f"  {name:<13} p50 {us(s['p50_ns']):>6} us  p99 {us(s['p99_ns']):>6} us  "
            f"{s['ratio_p50']:5.1f}x p50{' (target <= 10x)' if s['sent_per_event'] == 0 else ''}"
            f", {s['ratio_p99']:5.1f}x p99; sent {s['sent_per_event']:.2f} per event"
        )
    lag, ev, src = ld["lag_ns"], ld["market_event_ns"], ld["by_source"]
    m = src["market"]
    per_symbol = ld["algos"] // ld["symbols"]
    lines += [
        f"2. {ld['algos']} algorithms on {ld['symbols']} instruments, {ld['rate_per_symbol']:g} "
        f"events/s each, {ld['seconds']:g} s simulated: {m['items']:,} market events, "
        f"{src['report']['items']:,} execution reports; {ld['running_at_end']} running at the end",
        f"  market event (~{per_symbol} parents decided) p50 {us(ev['p50'])} us  "
        f"p99 {us(ev['p99'])} us; sending nothing {us(ld['market_event_quiet_ns']['p50'])}, "
        f"sending {us(ld['market_event_sent_ns']['p50'])} us p50; "
        f"{us(ld['per_decision_mean_ns'])} us per decision (mean)",
        f"  execution report p50 {us(ld['report_ns']['p50'])} us  "
        f"p99 {us(ld['report_ns']['p99'])} us; ending a child (slice settled in SQLite) "
        f"p50 {us(ld['report_ended_ns']['p50'])} us  p99 {us(ld['report_ended_ns']['p99'])} us",
        "  timers: "
        + ", ".join(
            f"{n} p50 {us(t['p50'])} us max {us(t['max'])} us" for n, t in ld["timers"].items()
        ),
        f"  lag of market events (end of processing - arrival) p50 {lag['p50'] / 1e6:.2f} ms  "
        f"p99 {lag['p99'] / 1e6:.2f} ms  max {lag['max'] / 1e6:.1f} ms; capacity used "
        f"{ld['capacity_used']:.1%} ("
        + ", ".join(f"{n} {v:.2f} s" for n, v in ld["busy_s"].items())
        + "): "
        + ("keeps up" if ld["keeps_up"] else "FALLS BEHIND"),
    ]
    for name, t in src.items():
        lines.append(
            f"  {name:<6}: {t['decisions']:>7,} decisions, {t['children_placed']:>6,} children "
            f"({t['children_placed'] / max(1, t['decisions']):5.1%} of them), "
            f"{t['cancels_sent']:>5,} cancels; {t['items_that_sent'] / max(1, t['items']):5.1%} "
            f"of {t['items']:,} items sent something"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Pre-trade risk gate cost per order, against one matching-engine operation in the same run.

Gate (fixed seed): ``RiskGate`` with :data:`~engine.risk.profile.DEFAULT_PROFILE` for the
desk account — throttles and the per-algorithm open-order cap raised so that the stream
is not throttled (the checks still run) — all four built-in compliance rules (a
restricted list of 50 other symbols, wash trade, short sale with half the symbols
allowed, a Monday-Sunday 00:00-24:00 trading window), tick/lot specs for ``--symbols``
instruments, each with a fresh mark, a long position, market volume and
``--working`` working orders kept per symbol (the oldest is cancelled, untimed, as a
new one is accepted), and 5 algorithms with parent plans. The engine-wide throttle is on.

Stream: ``--orders`` orders (default 200,000): 70 % children of the algorithms, 30 %
manual; 5 % market, the rest limit orders up to 1 % from the mark on the passive side
(so they never cross the account's own orders); 1-100 lots; 1 ms apart. About 95 % pass
— what a live gate mostly sees, and its costly path (every step runs); the market orders
are denied ``wash_trade`` (the account rests orders on both sides, so they would cross).

Book: ``OrderBook`` with execution reports on (as the venue runs it) for one instrument
with ``--depth`` resting orders (default 5,000) over 100 ticks per side from 50 maker
accounts. The operation: submit a non-marketable limit order (1-10 lots, 1-50 ticks
behind the touch); it is cancelled again untimed so the depth stays as it was.

Timing: gate checks and book submits alternate one by one, each timed alone with
``perf_counter_ns`` (garbage collector on), so machine noise hits both alike; the figures
are p50 and p99 of each and their ratios (target: gate <= 5x one book operation at
p50). ``check+submit`` also times ``on_submitted``, the state update an accepted order
costs. Every sample includes the timer's own cost, printed next to them.

    .venv/bin/python scripts/bench_risk.py [--orders 200000] [--symbols 20] [--working 30]
                                           [--depth 5000] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import msgspec  # noqa: E402
from loguru import logger  # noqa: E402

from engine.risk import DEFAULT_PROFILE, GateSettings, RiskGate, RiskOrder, create  # noqa: E402
from engine.risk.profile import for_account  # noqa: E402
from engine.venue.book import OrderBook  # noqa: E402
from engine.venue.instrument import InstrumentSpec  # noqa: E402

ACCOUNT = "desk"
ALGOS = tuple(f"algo-{i}" for i in range(5))
TICK, LOT = Decimal("0.01"), Decimal("1")
T0 = 1_700_000_000 * 1_000_000_000
MS = 1_000_000


def make_gate(symbols: list[str]) -> RiskGate:
    profile = msgspec.structs.replace(
        for_account(DEFAULT_PROFILE, ACCOUNT),
        max_orders_per_s=1e6,
        max_algo_orders_per_s=1e6,
        max_open_orders_per_algo=10_000,
    )
    rules = [
        create("restricted_list", symbols=[f"R{i}" for i in range(50)]),
        create("wash_trade"),
        create("short_sale", allowed={ACCOUNT: symbols[::2]}),
        create(
            "trading_window",
            windows=[
                {
                    "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                    "start": "00:00",
                    "end": "24:00",
                }
            ],
        ),
    ]
    specs = {s: InstrumentSpec(s, TICK, LOT) for s in symbols}
    gate = RiskGate(
        [profile], rules, settings=GateSettings(max_orders_per_s=1e6), instruments=specs
    )
    for s in symbols:
        gate.on_mark(s, Decimal(100), T0)
        gate.on_market_volume(s, Decimal(1_000_000), T0)
        gate.on_fill(ACCOUNT, s, "buy", Decimal(5_000), Decimal(100), ts_ns=T0)
    for algo in ALGOS:
        parent = RiskOrder(
            account=ACCOUNT,
            symbol=symbols[0],
            client_order_id=f"parent-{algo}",
            side="buy",
            qty=Decimal(10_000_000),
            price=Decimal(100),
            algo_id=algo,
        )
        gate.on_parent_accepted(parent, T0)
    gate.drain()
    return gate


def make_orders(n: int, symbols: list[str], seed: int = 7) -> list[RiskOrder]:
    rng = random.Random(seed)
    orders = []
    for i in range(n):
        side = rng.choice(("buy", "sell"))
        market = rng.random() < 0.05
        ticks = rng.randint(1, 100)
        price = None if market else Decimal(10_000 + (ticks if side == "sell" else -ticks)) * TICK
        orders.append(
            RiskOrder(
                account=ACCOUNT,
                symbol=rng.choice(symbols),
                client_order_id=f"c{i}",
                side=side,
                qty=Decimal(rng.randint(1, 100)),
                price=price,
                order_type="market" if market else "limit",
                algo_id=rng.choice(ALGOS) if rng.random() < 0.7 else "",
                parent="",
            )
        )
    return orders


def make_book(depth: int, seed: int = 11) -> OrderBook:
    rng = random.Random(seed)
    book = OrderBook(InstrumentSpec("BENCH", TICK, LOT))
    for i in range(depth):
        buy = i % 2 == 0
        price = 10_000 - rng.randint(1, 100) if buy else 10_001 + rng.randint(0, 99)
        book.submit(
            f"m{i % 50}", f"d{i}", "buy" if buy else "sell", rng.randint(1, 10), price, ts=1
        )
    return book


def run(args: argparse.Namespace) -> dict[str, Any]:
    symbols = [f"S{i:02d}" for i in range(args.symbols)]
    gate = make_gate(symbols)
    orders = make_orders(args.orders, symbols)
    book = make_book(args.depth)
    rng = random.Random(3)
    book_ops = [
        ("buy" if i % 2 == 0 else "sell", rng.randint(1, 10), rng.randint(1, 50))
        for i in range(args.orders)
    ]
    working: dict[str, list[str]] = {s: [] for s in symbols}
    clock = time.perf_counter_ns
    checks, submits, books = [], [], []
    allowed = 0
    check, on_submitted, on_done = gate.check, gate.on_submitted, gate.on_done
    gc.collect()
    for i, order in enumerate(orders):
        now = T0 + (i + 1) * MS
        if i % 100 == 0:
            for s in symbols:
                gate.on_mark(s, Decimal(100), now)
            gate.drain()
        t0 = clock()
        decision = check(order, now)
        t1 = clock()
        if decision.allowed:
            on_submitted(order, now)
            t2 = clock()
            allowed += 1
            submits.append(t2 - t0)
            queue = working[order.symbol]
            queue.append(order.client_order_id)
            if len(queue) > args.working:
                on_done(ACCOUNT, queue.pop(0))
        checks.append(t1 - t0)
        side, lots, behind = book_ops[i]
        price = 10_000 - behind if side == "buy" else 10_001 + behind
        t0 = clock()
        book.submit("taker", f"b{i}", side, lots, price, ts=now)  # type: ignore[arg-type]
        t1 = clock()
        books.append(t1 - t0)
        book.cancel("taker", f"b{i}", ts=now)
    for samples in (checks, submits, books):
        samples.sort()
    gate_p50, gate_p99 = pct(checks, 50), pct(checks, 99)
    book_p50, book_p99 = pct(books, 50), pct(books, 99)
    return {
        "orders": args.orders,
        "allowed": allowed,
        "denied": dict(sorted((k, v) for k, v in gate.counters.items() if k.startswith("denied."))),
        "symbols": args.symbols,
        "working_per_symbol": args.working,
        "book_depth": args.depth,
        "gate_check_ns": {"p50": gate_p50, "p99": gate_p99},
        "gate_check_and_submit_ns": {"p50": pct(submits, 50), "p99": pct(submits, 99)},
        "book_submit_ns": {"p50": book_p50, "p99": book_p99},
        "ratio_p50": gate_p50 / book_p50,
        "ratio_p99": gate_p99 / book_p99,
        "check_and_submit_ratio_p50": pct(submits, 50) / book_p50,
        "timer_overhead_ns": timer_overhead(),
        "python": sys.version.split()[0],
    }


def pct(values: list[int], q: int) -> int:
    return values[min(len(values) - 1, len(values) * q // 100)] if values else 0


def timer_overhead() -> int:
    clock = time.perf_counter_ns
    times = []
    for _ in range(10_000):
        t0 = clock()
        times.append(clock() - t0)
    return pct(sorted(times), 50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=200_000, help="orders in the stream")
    parser.add_argument("--symbols", type=int, default=20, help="instruments of the account")
    parser.add_argument("--working", type=int, default=30, help="working orders per symbol")
    parser.add_argument("--depth", type=int, default=5_000, help="resting orders in the book")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logger.remove()  # denials log; the benchmark times the gate, not the log sink
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    report(result)


def report(r: dict[str, Any]) -> None:
    g, s, b = r["gate_check_ns"], r["gate_check_and_submit_ns"], r["book_submit_ns"]
    lines = [
        f"python {r['python']}: {r['orders']:,} orders over {r['symbols']} symbols "
        f"({r['working_per_symbol']} working each), {r['allowed']:,} allowed; "
        f"denied: {r['denied'] or 'none'}",
        f"one by one, alternating, perf_counter_ns (includes ~{r['timer_overhead_ns']} ns "
        "of timer)",
        f"  gate check             p50 {g['p50'] / 1e3:6.2f} us  p99 {g['p99'] / 1e3:6.2f} us",
        f"  gate check+on_submitted p50 {s['p50'] / 1e3:5.2f} us  p99 {s['p99'] / 1e3:6.2f} us",
        f"  book submit ({r['book_depth']:,} resting) p50 {b['p50'] / 1e3:5.2f} us  "
        f"p99 {b['p99'] / 1e3:6.2f} us",
        f"  gate / book: p50 {r['ratio_p50']:.2f}x (target <= 5x), p99 {r['ratio_p99']:.2f}x; "
        f"with on_submitted p50 {r['check_and_submit_ratio_p50']:.2f}x",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()

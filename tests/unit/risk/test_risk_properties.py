"""Random order streams against an independent oracle of the documented rules.

Hypothesis draws a risk profile (any mix of limits on or off), the compliance rules, a
seed and a handful of hostile orders (NaN, infinities, zero, negatives, 1e30, floats,
strings, off-grid prices, bad sides and types). Each example then runs
:data:`ORDERS_PER_EXAMPLE` orders from the seed — interleaved with marks, fills, cancels,
symbol halts and resumes, and time moving by nanoseconds to seconds — through the gate
and through :class:`Oracle`, a plain re-statement of the rules that recomputes exposure
from scratch at every order (the gate keeps it incrementally). Over all examples that is
more than 100,000 orders. Checked at every order:

- the decision's reason is the oracle's: every order that breaches a limit is denied
  with the reason of the first breached step, every order the oracle allows is allowed;
- after every accepted order no limit is violated, recomputed from the oracle's state
  (order size and notional, collar and reference age, rate, open orders, exposure per
  symbol and gross, restricted list, short sale, wash trade);
- the gate's positions, working quantities and gross notional equal the oracle's.
"""

from __future__ import annotations

import math
import random
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal, localcontext
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.risk import GateSettings, Reason, RiskGate, RiskOrder, RiskProfile, create
from engine.venue.instrument import InstrumentSpec

D = Decimal
NS = 1_000_000_000
ACCOUNT = "acc"
SYMBOLS = ("AAA", "BBB", "CCC", "DDD")
TICK, LOT = D("0.01"), D("1")
ORDERS_PER_EXAMPLE = 1_000
EXAMPLES = 110
T0 = 1_700_000_000 * NS
WIDE = Context(prec=100)
ZERO = D(0)


# --- the oracle ---------------------------------------------------------------------------

Book = dict[str, list[Any]]
"""Per symbol: [working buys, working sells, number of working orders]."""


class Oracle:
    """The rules of engine/risk/gate.py, written plainly: exposure is recomputed from the
    working orders at every question (the gate keeps it incrementally)."""

    def __init__(self, p: RiskProfile, restricted: set[str], short_ok: set[str] | None, wash: bool):
        self.p = p
        self.restricted = restricted
        self.short_ok = short_ok  # None: no short-sale rule
        self.wash = wash
        self.position = dict.fromkeys(SYMBOLS, ZERO)
        self.working: dict[str, list[Any]] = {}  # cid -> [symbol, side, leaves, price]
        self.values: dict[str, Decimal] = {}
        self.refs: dict[str, tuple[Decimal, int]] = {}
        self.sent: list[int] = []
        self.last_seen: dict[tuple[Any, ...], int] = {}
        self.halted: set[str] = set()

    def book(self) -> Book:
        book = {sym: [ZERO, ZERO, 0] for sym in SYMBOLS}
        for symbol, side, leaves, _ in self.working.values():
            row = book[symbol]
            row[0 if side == "buy" else 1] += leaves
            row[2] += 1
        return book

    def exposure(self, book: Book, s: str, side: str = "", extra: Decimal = ZERO) -> Decimal:
        buys = book[s][0] + (extra if side == "buy" else ZERO)
        sells = book[s][1] + (extra if side == "sell" else ZERO)
        return max(self.position[s] + buys, sells - self.position[s], ZERO)

    def gross(self, book: Book, skip: str = "") -> Decimal:
        with localcontext(WIDE):
            held = [s for s in SYMBOLS if s in self.values and s != skip]
            return sum((self.exposure(book, s) * self.values[s] for s in held), ZERO)

    def sent_within(self, now: int) -> tuple[int, float]:
        rate = self.p.max_orders_per_s
        assert rate is not None
        allowed = max(1, math.ceil(rate))
        span = int(allowed / rate * NS)
        return sum(1 for t in self.sent if t > now - span), allowed

    def reason(self, o: RiskOrder, now: int) -> str | None:
        with localcontext(WIDE):
            return self._reason(o, now)

    def _reason(self, o: RiskOrder, now: int) -> str | None:
        p = self.p
        # 1 sanity
        if o.side not in ("buy", "sell"):
            return Reason.INVALID_ORDER
        for text in (o.account, o.symbol, o.client_order_id):
            if not isinstance(text, str) or not text or len(text) > 64:
                return Reason.INVALID_ORDER
        if o.order_type not in ("limit", "market") or (o.order_type == "limit") != (
            o.price is not None
        ):
            return Reason.INVALID_ORDER
        if not plausible(o.qty) or o.qty % LOT != 0:
            return Reason.INVALID_QTY
        if o.price is not None and (not plausible(o.price) or o.price % TICK != 0):
            return Reason.INVALID_PRICE
        # 2 profile
        if o.account != ACCOUNT:
            return Reason.NO_RISK_PROFILE
        s, qty, price, buy = o.symbol, o.qty, o.price, o.side == "buy"
        pos = self.position[s]
        book = self.book()
        buys, sells, open_n = book[s]
        reducing = (pos < 0 and buys + qty <= -pos) if buy else (pos > 0 and sells + qty <= pos)
        # 3 halts
        if s in self.halted and not reducing:
            return Reason.HALTED
        # 4 restricted list
        if s in self.restricted:
            return Reason.RESTRICTED
        # 5 reference and collar
        ref = self.refs.get(s)
        collar = None if p.price_collar_pct is None else D(repr(p.price_collar_pct))
        if collar is not None or price is None:
            if ref is None:
                return Reason.NO_REFERENCE
            if now - ref[1] > int(p.max_reference_age_s * NS):
                return Reason.STALE_REFERENCE
            off = collar is not None and price is not None
            if off and abs(price - ref[0]) * 100 > collar * ref[0]:  # type: ignore[operator]
                return Reason.PRICE_COLLAR
        value = price if price is not None else ref[0]  # type: ignore[index]
        # 6 size
        if p.max_order_qty is not None and qty > p.max_order_qty:
            return Reason.ORDER_QTY
        if p.max_order_notional is not None and qty * value > p.max_order_notional:
            return Reason.ORDER_NOTIONAL
        # 7 rate
        if p.max_orders_per_s is not None:
            count, allowed = self.sent_within(now)
            if count >= allowed:
                return Reason.RATE_LIMIT
        # 8 duplicates
        if p.duplicate_window_s is not None:
            seen = self.last_seen.get((s, o.side, qty, price))
            if seen is not None and now - seen < max(1, int(p.duplicate_window_s * NS)):
                return Reason.DUPLICATE_ORDER
        # 9 open orders
        cap = p.max_open_orders_per_symbol
        if cap is not None and open_n + 1 > cap:
            return Reason.OPEN_ORDERS
        # 10 exposure
        side_exposure = (pos + buys + qty) if buy else (sells + qty - pos)
        val = self.values.get(s, value)
        if p.max_position_qty is not None and side_exposure > p.max_position_qty:
            return Reason.POSITION_QTY
        if p.max_position_notional is not None and side_exposure * val > p.max_position_notional:
            return Reason.POSITION_NOTIONAL
        if p.max_gross_notional is not None:
            new = self.exposure(book, s, o.side, qty)
            gross = self.gross(book, skip=s) + new * val
            if gross > p.max_gross_notional and new > self.exposure(book, s):
                return Reason.GROSS_NOTIONAL
        # 12 compliance, in the configured order: short sale, then wash trade
        short = self.short_ok is not None and not buy and s not in self.short_ok
        if short and qty > max(pos, ZERO) - sells:
            return Reason.SHORT_SALE
        if self.wash:
            for ws, wside, _, wprice in self.working.values():
                if ws != s or wside == o.side or wprice is None:
                    continue
                if price is None or (price >= wprice if buy else price <= wprice):
                    return Reason.WASH_TRADE
        return None

    # facts, mirrored
    def submitted(self, o: RiskOrder, now: int) -> None:
        self.working[o.client_order_id] = [o.symbol, o.side, o.qty, o.price]
        if o.symbol not in self.values:
            self.values[o.symbol] = o.price if o.price is not None else self.refs[o.symbol][0]
        self.sent.append(now)
        self.last_seen[(o.symbol, o.side, o.qty, o.price)] = now

    def filled(self, cid: str, qty: Decimal, price: Decimal) -> None:
        w = self.working[cid]
        self.position[w[0]] += qty if w[1] == "buy" else -qty
        w[2] -= qty
        if w[2] <= 0:
            del self.working[cid]
        self.values[w[0]] = price

    def marked(self, symbol: str, price: Decimal, now: int) -> None:
        self.refs[symbol] = (price, now)
        self.values[symbol] = price

    def check_invariants(self, o: RiskOrder, now: int) -> None:
        """After ``o`` was accepted and recorded: no limit is violated."""
        p, s = self.p, o.symbol
        ref = self.refs.get(s)
        value = o.price if o.price is not None else ref[0]  # type: ignore[index]
        assert o.account == ACCOUNT and s not in self.restricted
        if p.max_order_qty is not None:
            assert o.qty <= p.max_order_qty
        if p.max_order_notional is not None:
            assert o.qty * value <= p.max_order_notional
        if p.price_collar_pct is not None:
            assert ref is not None and now - ref[1] <= p.max_reference_age_s * NS
            if o.price is not None:
                distance = abs(o.price / ref[0] - 1) * 100
                assert distance <= D(repr(p.price_collar_pct)) + D("1e-20")
        pos = self.position[s]
        buys, sells, open_n = self.book()[s]
        side_exposure = pos + buys if o.side == "buy" else sells - pos
        if s in self.halted:  # only risk-reducing orders: their side cannot flip the position
            assert (pos < 0 and buys <= -pos) if o.side == "buy" else (pos > 0 and sells <= pos)
        if p.max_position_qty is not None:
            assert side_exposure <= p.max_position_qty
        if p.max_position_notional is not None:
            assert side_exposure * self.values[s] <= p.max_position_notional
        if p.max_open_orders_per_symbol is not None:
            assert open_n <= p.max_open_orders_per_symbol
        if p.max_orders_per_s is not None:
            count, allowed = self.sent_within(now)
            assert count <= allowed
        if self.short_ok is not None and o.side == "sell" and s not in self.short_ok:
            assert sells <= max(pos, ZERO)
        if self.wash:
            opposite = [w for w in self.working.values() if w[0] == s and w[1] != o.side]
            for w in opposite:
                assert w[3] is None or (
                    o.price is not None and (o.price < w[3] if o.side == "buy" else o.price > w[3])
                )


def plausible(x: object) -> bool:
    if not isinstance(x, Decimal):
        return False
    if x.is_nan() or x.is_infinite() or x <= 0 or x >= D("1e18"):
        return False
    return x == x.quantize(D("1e-10"), context=WIDE)


# --- hypothesis inputs ---------------------------------------------------------------------


def optional(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | values


profiles = st.builds(
    RiskProfile,
    account=st.just(ACCOUNT),
    max_order_qty=optional(st.integers(1, 250).map(D)),
    max_order_notional=optional(st.integers(2_000, 30_000).map(D)),
    max_position_qty=optional(st.integers(20, 600).map(D)),
    max_position_notional=optional(st.integers(2_000, 60_000).map(D)),
    max_gross_notional=optional(st.integers(5_000, 150_000).map(D)),
    price_collar_pct=optional(st.sampled_from([0.5, 1.0, 2.5, 5.0, 12.5])),
    max_reference_age_s=st.sampled_from([0.2, 1.0, 5.0]),
    max_orders_per_s=optional(st.sampled_from([0.5, 2.0, 5.0, 7.5, 50.0])),
    max_open_orders_per_symbol=optional(st.integers(1, 8)),
    duplicate_window_s=optional(st.sampled_from([0.05, 0.5, 2.0])),
)
HOSTILE: list[Any] = [
    D("NaN"), D("sNaN"), D("Infinity"), D("-Infinity"), D(0), D("-0"), D(-3), D("1e30"),
    D("1e18"), D("1e-11"), D("0.5"), D("100.005"), D("99.999999999999"), 10.0,
    float("nan"), "10", None, True,
]  # fmt: skip
hostile_amounts = st.sampled_from(HOSTILE)
hostile_orders = st.builds(
    RiskOrder,
    account=st.sampled_from([ACCOUNT, ACCOUNT, "", "x" * 65, "nobody"]),
    symbol=st.sampled_from([*SYMBOLS, ""]),
    client_order_id=st.sampled_from(["h", "", "h" * 70]),
    side=st.sampled_from(["buy", "sell", "BUY", "", None]),
    qty=hostile_amounts | st.integers(1, 50).map(D),
    price=hostile_amounts | st.integers(9_000, 11_000).map(lambda n: D(n).scaleb(-2)),
    order_type=st.sampled_from(["limit", "market", "stop"]),
)


# --- the driver ----------------------------------------------------------------------------


class Run:
    """One example: the gate and the oracle fed the same facts and orders."""

    def __init__(self, p: RiskProfile, rules: Any, oracle: Oracle, seed: int) -> None:
        specs = {s: InstrumentSpec(s, TICK, LOT) for s in SYMBOLS}
        settings = GateSettings(max_orders_per_s=None)
        self.gate = RiskGate([p], rules, settings=settings, instruments=specs)
        self.oracle = oracle
        self.rng = random.Random(seed)
        self.now = T0
        self.mid = dict.fromkeys(SYMBOLS, D(100))
        self.n = 0
        self.last: RiskOrder | None = None
        for s in SYMBOLS[:3]:  # DDD has no reference until its first mark
            self.mark(s)

    def mark(self, s: str) -> None:
        mid = max(D(1), self.mid[s] + D(self.rng.randint(-150, 150)).scaleb(-2))
        if self.rng.random() < 0.3:  # whole numbers put more collar edges on the tick grid
            mid = mid.to_integral_value()
        self.mid[s] = mid
        self.gate.on_mark(s, self.mid[s], self.now)
        self.oracle.marked(s, self.mid[s], self.now)

    def step(self, hostile: RiskOrder | None) -> None:
        rng, gate, oracle = self.rng, self.gate, self.oracle
        self.now += rng.choice(
            [0, 1, 1_000_000, 50_000_000, 150_000_000, 400_000_000, 1_600_000_000]
        )
        roll = rng.random()
        if roll < 0.25:
            self.mark(rng.choice(SYMBOLS))
        elif roll < 0.33 and oracle.working:
            cid = rng.choice(sorted(oracle.working))
            symbol, side, leaves, price = oracle.working[cid]
            qty = D(rng.randint(1, int(leaves)))
            at = price if price is not None else self.mid[symbol]
            gate.on_fill(ACCOUNT, symbol, side, qty, at, ts_ns=self.now, client_order_id=cid)
            oracle.filled(cid, qty, at)
        elif roll < 0.40 and oracle.working:
            cid = rng.choice(sorted(oracle.working))
            gate.on_done(ACCOUNT, cid)
            del oracle.working[cid]
        elif roll < 0.41:
            self.halt_or_resume()
        order = self.next_order(hostile)
        expected = oracle.reason(order, self.now)
        decision = gate.check(order, self.now)
        assert decision.reason == (expected or ""), (order, decision, expected)
        assert decision.allowed is (expected is None)
        if decision.allowed:
            gate.on_submitted(order, self.now)
            oracle.submitted(order, self.now)
            oracle.check_invariants(order, self.now)
        gate.drain()
        self.compare_state()

    def halt_or_resume(self) -> None:
        gate, oracle = self.gate, self.oracle
        if oracle.halted:
            s = sorted(oracle.halted)[0]
            assert gate.resume("symbol", s, actor="prop", reason="test", now_ns=self.now)
            oracle.halted.discard(s)
            return
        s = self.rng.choice(SYMBOLS)
        for cancel in gate.halt("symbol", s, actor="prop", reason="test", now_ns=self.now):
            gate.on_done(cancel.account, cancel.client_order_id)
            del oracle.working[cancel.client_order_id]
        oracle.halted.add(s)

    def next_order(self, hostile: RiskOrder | None) -> RiskOrder:
        self.n += 1
        if hostile is not None:
            if hostile.client_order_id == "h":  # accepted ones need an id of their own
                return msgspec.structs.replace(hostile, client_order_id=f"h{self.n}")
            return hostile
        rng = self.rng
        roll = rng.random()
        if self.last is not None and roll < 0.06:  # the same order again
            order = msgspec.structs.replace(self.last, client_order_id=f"o{self.n}")
        elif roll < 0.3:
            order = self.boundary_order()
        else:
            order = self.random_order()
        self.last = order
        return order

    def boundary_order(self) -> RiskOrder:
        """An order exactly at one of the limits, or one tick / one lot beyond it."""
        rng, oracle, p = self.rng, self.oracle, self.oracle.p
        s, side = rng.choice(SYMBOLS), rng.choice(("buy", "sell"))
        ref = oracle.refs.get(s)
        price = ref[0] if ref is not None else self.mid[s]
        qty = D(rng.choice([1, 5, 10]))
        beyond = rng.random() < 0.5
        what = rng.choice(["collar", "qty", "notional", "position", "notional_position"])
        with localcontext(WIDE):
            if what == "collar" and p.price_collar_pct is not None:
                sign = rng.choice([1, -1])
                edge = price + sign * price * D(repr(p.price_collar_pct)) / 100
                inside = edge.quantize(TICK, rounding=ROUND_FLOOR if sign > 0 else ROUND_CEILING)
                price = max(TICK, inside + sign * TICK * beyond)
            elif what == "qty" and p.max_order_qty is not None:
                qty = p.max_order_qty + beyond
            elif what == "notional" and p.max_order_notional is not None:
                qty = max(
                    D(1), (p.max_order_notional / price).to_integral_value(ROUND_FLOOR) + beyond
                )
            elif what.endswith("position") and p.max_position_qty is not None:
                pos = oracle.position[s]
                buys, sells, _ = oracle.book()[s]
                room = p.max_position_qty - (pos + buys if side == "buy" else sells - pos)
                if what == "notional_position" and p.max_position_notional is not None:
                    value = oracle.values.get(s, price)
                    room = (p.max_position_notional / value).to_integral_value(ROUND_FLOOR) - (
                        pos + buys if side == "buy" else sells - pos
                    )
                qty = max(D(1), room + beyond)
        return RiskOrder(
            account=ACCOUNT,
            symbol=s,
            client_order_id=f"o{self.n}",
            side=side,
            qty=qty,
            price=price,
        )

    def random_order(self) -> RiskOrder:
        rng = self.rng
        s = rng.choice(SYMBOLS)
        market = rng.random() < 0.08
        offset = rng.choice([0, 1, 5, 50, 100, 250, 500, 1300])
        cents = int(self.mid[s] * 100) + rng.randint(-offset, offset)
        price = None if market else D(max(1, cents)).scaleb(-2)
        qty = D(rng.choice([1, 2, 5, 10, 25, 50, 100, 120, 251]))
        if rng.random() < 0.01:
            qty = rng.choice(HOSTILE)
        elif rng.random() < 0.01 and price is not None:
            price = rng.choice(HOSTILE)
        return RiskOrder(
            account=ACCOUNT if rng.random() > 0.02 else "stranger",
            symbol=s,
            client_order_id=f"o{self.n}",
            side=rng.choice(("buy", "sell")),
            qty=qty,
            price=price,
            order_type="market" if market else "limit",
        )

    def compare_state(self) -> None:
        oracle = self.oracle
        book = oracle.book()
        for s in SYMBOLS:
            sx = self.gate.exposure(ACCOUNT, s)
            assert (sx.qty, sx.buys, sx.sells, len(sx.orders)) == (oracle.position[s], *book[s])
        state = self.gate.account_state(ACCOUNT)
        assert state is not None and state.gross == oracle.gross(book)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    p=profiles,
    restricted=st.sets(st.sampled_from(SYMBOLS), max_size=2),
    short_ok=st.none() | st.sets(st.sampled_from(SYMBOLS), max_size=4),
    wash=st.booleans(),
    seed=st.integers(0, 2**32),
    hostile=st.lists(
        st.tuples(st.integers(0, ORDERS_PER_EXAMPLE - 1), hostile_orders), max_size=12
    ),
)
def test_gate_when_random_orders_then_decisions_match_oracle_and_no_limit_violated(
    p: RiskProfile,
    restricted: set[str],
    short_ok: set[str] | None,
    wash: bool,
    seed: int,
    hostile: list[tuple[int, RiskOrder]],
) -> None:
    rules: list[Any] = [create("restricted_list", symbols=sorted(restricted))]
    if short_ok is not None:
        rules.append(create("short_sale", allowed={ACCOUNT: sorted(short_ok)}))
    if wash:
        rules.append(create("wash_trade"))
    run = Run(p, rules, Oracle(p, restricted, short_ok, wash), seed)
    at = dict(hostile)

    for i in range(ORDERS_PER_EXAMPLE):
        run.step(at.get(i))

    checks = run.gate.counters["checks"]
    assert checks == ORDERS_PER_EXAMPLE

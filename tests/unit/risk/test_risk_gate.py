"""The pre-trade risk gate rule by rule, at the boundaries: exactly at a limit passes,
one lot (one tick, one nanosecond) beyond is denied with the reason and the limit.

Time is a :class:`~engine.clock.FakeClock`; nothing sleeps.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest

from engine.bus import codec
from engine.bus.events import AlertRaised, OrderDenied, RiskStateChanged
from engine.clock import FakeClock
from engine.errors import CommandError, ConfigError
from engine.risk import (
    DEFAULT_PROFILE,
    ComplianceParams,
    ComplianceParamsError,
    ComplianceRegistry,
    ComplianceRule,
    Decision,
    GateSettings,
    OpenOrder,
    Reason,
    RiskGate,
    RiskOrder,
    RiskProfile,
    RiskProfileError,
    Violation,
    create,
    describe,
)
from engine.risk.profile import for_account
from engine.risk.registry import UnknownComplianceRuleError
from engine.risk.rules import BrokenRule
from engine.venue.instrument import InstrumentSpec

D = Decimal
NS = 1_000_000_000
ACCOUNT = "acc"
SYMBOL = "AAPL"
SPEC = InstrumentSpec(SYMBOL, D("0.01"), D("1"))
_ids = iter(range(10**9))


def profile(**limits: Any) -> RiskProfile:
    return RiskProfile(account=ACCOUNT, **limits)


def order(side: str = "buy", qty: Any = 10, price: Any = "100", **kw: Any) -> RiskOrder:
    fields: dict[str, Any] = {
        "account": ACCOUNT,
        "symbol": SYMBOL,
        "client_order_id": f"o{next(_ids)}",
        "side": side,
        "qty": D(qty) if isinstance(qty, (int, str)) else qty,
        "price": D(price) if isinstance(price, (int, str)) else price,
    }
    if fields["price"] is None:
        fields["order_type"] = "market"
    fields.update(kw)
    return RiskOrder(**fields)


class Desk:
    """A gate, a fake clock and a fresh mark of 100 for AAPL."""

    def __init__(self, limits: RiskProfile | None = None, rules: Any = (), **kw: Any) -> None:
        self.clock = FakeClock()
        settings = kw.pop("settings", GateSettings(max_orders_per_s=None))
        profiles = [limits if limits is not None else profile()]
        self.gate = RiskGate(profiles, rules, settings=settings, instruments={SYMBOL: SPEC}, **kw)
        self.mark(SYMBOL, "100")

    @property
    def now(self) -> int:
        return self.clock.time_ns()

    def mark(self, symbol: str, price: str) -> None:
        self.gate.on_mark(symbol, D(price), self.now)

    def check(self, o: RiskOrder, **kw: Any) -> Decision:
        return self.gate.check(o, self.now, **kw)

    def send(self, o: RiskOrder) -> Decision:
        decision = self.check(o)
        if decision.allowed:
            self.gate.on_submitted(o, self.now)
        return decision

    def fill(self, side: str, qty: Any, price: Any, cid: str = "", **kw: Any) -> None:
        self.gate.on_fill(
            kw.pop("account", ACCOUNT), kw.pop("symbol", SYMBOL), side, D(qty), D(price),
            ts_ns=self.now, client_order_id=cid, **kw,
        )  # fmt: skip

    def hold(self, qty: int, price: str = "100") -> None:
        """A position of ``qty`` (negative: short) from a fill at ``price``."""
        self.fill("buy" if qty > 0 else "sell", abs(qty), price)

    def events(self, kind: type | None = None) -> list[Any]:
        out = self.gate.drain()
        self.cancels = out.cancels
        return [e for _, e in out.events if kind is None or isinstance(e, kind)]


def denied(decision: Decision, reason: str, limit: str | None = None) -> bool:
    assert not decision.allowed, decision
    assert decision.reason == reason, decision
    if limit is not None:
        assert decision.limit == limit, decision
    return True


# --- input sanity and configuration --------------------------------------------------------


@pytest.mark.parametrize(
    ("qty", "price", "reason"),
    [
        (D("NaN"), D(100), Reason.INVALID_QTY),
        (D("Infinity"), D(100), Reason.INVALID_QTY),
        (D("-Infinity"), D(100), Reason.INVALID_QTY),
        (D(0), D(100), Reason.INVALID_QTY),
        (D(-5), D(100), Reason.INVALID_QTY),
        (D("1e30"), D(100), Reason.INVALID_QTY),
        (D("1.5"), D(100), Reason.INVALID_QTY),  # off the lot grid
        (D("1e-11"), D(100), Reason.INVALID_QTY),  # beyond 10 decimal places
        (10.0, D(100), Reason.INVALID_QTY),  # a float, not a Decimal
        ("10", D(100), Reason.INVALID_QTY),
        (D(10), D("NaN"), Reason.INVALID_PRICE),
        (D(10), D("sNaN"), Reason.INVALID_PRICE),
        (D(10), D(0), Reason.INVALID_PRICE),
        (D(10), D("-100"), Reason.INVALID_PRICE),
        (D(10), D("1e30"), Reason.INVALID_PRICE),
        (D(10), D("100.005"), Reason.INVALID_PRICE),  # off the tick grid
        (D(10), 100.0, Reason.INVALID_PRICE),
    ],
)
def test_check_when_hostile_qty_or_price_then_denied_invalid(
    qty: Any, price: Any, reason: str
) -> None:
    desk = Desk()
    hostile = RiskOrder(
        account=ACCOUNT, symbol=SYMBOL, client_order_id="h1", side="buy", qty=qty, price=price
    )

    decision = desk.check(hostile)

    assert denied(decision, reason)
    (event,) = desk.events(OrderDenied)
    assert event.reason == reason
    codec.decode_event(codec.encode(event))  # a hostile order still makes a valid event


@pytest.mark.parametrize(
    "fields",
    [
        {"side": "hold"},
        {"side": None},
        {"account": ""},
        {"symbol": ""},
        {"client_order_id": ""},
        {"order_type": "stop"},
        {"order_type": "market"},  # with a price
        {"price": None, "order_type": "limit"},
        {"account": "x" * 65},
        {"algo_id": 7},
        {"symbol": ["AAPL"]},  # unhashable
        {"account": {"a": 1}},
    ],
)
def test_check_when_malformed_order_then_denied_invalid_order(fields: dict[str, Any]) -> None:
    desk = Desk()

    assert denied(desk.check(order(**fields)), Reason.INVALID_ORDER)


def test_check_when_account_has_no_profile_then_denied_no_risk_profile() -> None:
    desk = Desk()

    decision = desk.check(order(account="stranger"))

    assert denied(decision, Reason.NO_RISK_PROFILE, "risk_profile")
    assert decision.profile_version == 0


def test_check_when_default_profile_configured_then_unknown_account_gets_it() -> None:
    desk = Desk(default_profile=DEFAULT_PROFILE)

    assert desk.check(order(account="stranger")).allowed
    assert desk.gate.profile("stranger") == for_account(DEFAULT_PROFILE, "stranger")


def test_check_when_profile_removed_then_fails_closed() -> None:
    desk = Desk()
    desk.gate.remove_profile(ACCOUNT)

    assert denied(desk.check(order()), Reason.NO_RISK_PROFILE)


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        ({"max_order_qty": D(-1)}, "max_order_qty"),
        ({"max_order_notional": D(0)}, "max_order_notional"),
        ({"max_gross_notional": D("NaN")}, "max_gross_notional"),
        ({"daily_loss_limit": D("1e20")}, "daily_loss_limit"),
        ({"max_position_qty": 5}, "max_position_qty"),  # an int, not a Decimal
        ({"price_collar_pct": 150.0}, "price_collar_pct"),
        ({"price_collar_pct": 0.0}, "price_collar_pct"),
        ({"warning_level": 1.0}, "warning_level"),
        ({"warning_level": 0.0}, "warning_level"),
        ({"warning_level": float("nan")}, "warning_level"),
        ({"reducing_at": 0.9, "halted_at": 0.8}, "reducing_at"),
        ({"halted_at": 1.5}, "halted_at"),
        ({"max_participation": 1.5}, "max_participation"),
        ({"max_orders_per_s": -1.0}, "max_orders_per_s"),
        ({"max_open_orders_per_symbol": 0}, "max_open_orders_per_symbol"),
        ({"runaway_submit_factor": 0.5}, "runaway_submit_factor"),
        ({"max_reference_age_s": 0.0}, "max_reference_age_s"),
        ({"duplicate_scope": "some"}, "duplicate_scope"),
        ({"version": 0}, "version"),
    ],
)
def test_profile_when_invalid_then_error_names_the_field(
    limits: dict[str, Any], field: str
) -> None:
    with pytest.raises(RiskProfileError) as info:
        profile(**limits)

    assert info.value.field == field
    assert field in str(info.value) and ACCOUNT in str(info.value)


def test_profile_from_dict_when_wrong_type_then_error_names_the_field() -> None:
    with pytest.raises(RiskProfileError) as info:
        RiskProfile.from_dict({"account": ACCOUNT, "max_order_qty": "lots"})

    assert info.value.field == "max_order_qty"


def test_profile_from_dict_when_strings_and_numbers_then_decimals() -> None:
    data = {"account": ACCOUNT, "max_order_qty": "100", "max_order_notional": 5000}

    loaded = RiskProfile.from_dict(data)

    assert loaded.max_order_qty == D(100) and loaded.max_order_notional == D(5000)
    assert RiskProfile.from_dict(loaded.to_dict()) == loaded


def test_default_profile_when_decoded_from_json_then_equal() -> None:
    assert msgspec.json.decode(msgspec.json.encode(DEFAULT_PROFILE), type=RiskProfile) == (
        DEFAULT_PROFILE
    )


# --- reference price and collar ------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "price", "allowed"),
    [
        ("buy", "105.00", True),  # exactly 5 % away
        ("buy", "105.01", False),  # one tick outside
        ("sell", "95.00", True),
        ("sell", "94.99", False),
        ("buy", "94.99", False),  # a collar is symmetric
    ],
)
def test_check_when_price_around_collar_then_boundary_inclusive(
    side: str, price: str, allowed: bool
) -> None:
    desk = Desk(profile(price_collar_pct=5.0))
    desk.hold(1000)  # so that sells are not short sales (no rule anyway)

    decision = desk.check(order(side, price=price))

    assert decision.allowed is allowed
    if not allowed:
        assert denied(decision, Reason.PRICE_COLLAR, "price_collar_pct")
        assert decision.limit_value == D(5)
        assert decision.observed == abs(D(price) - 100)


def test_check_when_outside_collar_of_a_float_mid_then_message_shows_it_to_4_decimals() -> None:
    desk = Desk(profile(price_collar_pct=5.0))
    desk.gate.on_mark(SYMBOL, 100.00446753189698, desk.now)

    decision = desk.check(order(price="90"))

    assert denied(decision, Reason.PRICE_COLLAR, "price_collar_pct")
    assert decision.message == (
        "limit price 90 is more than 5.0 % away from the reference 100.0045"
    )


def test_check_when_reference_ages_then_stale_one_nanosecond_after_max_age() -> None:
    desk = Desk(profile(price_collar_pct=5.0, max_reference_age_s=10.0))

    desk.clock.advance(10)
    assert desk.check(order()).allowed
    desk.clock._ns += 1

    decision = desk.check(order())

    assert denied(decision, Reason.STALE_REFERENCE, "max_reference_age_s")
    assert decision.limit_value == 10 and decision.observed == D("10.000000001")


def test_check_when_no_reference_then_denied_with_collar_allowed_without() -> None:
    with_collar = Desk(profile(price_collar_pct=5.0))
    without = Desk(profile())

    decision = with_collar.check(order(symbol="MSFT"))
    assert denied(decision, Reason.NO_REFERENCE)
    assert decision.message == (
        "no reference price for MSFT (needed for the collar): no quote of it has reached "
        "the order manager yet; is it on feed.watchlist?"
    )
    assert without.check(order(symbol="MSFT")).allowed


def test_check_when_market_order_then_needs_a_fresh_reference_even_without_collar() -> None:
    desk = Desk(profile(max_order_notional=D(1000)))

    assert desk.check(order(price=None)).allowed  # 10 at the reference 100
    assert denied(desk.check(order(price=None, symbol="MSFT")), Reason.NO_REFERENCE)
    assert denied(desk.check(order(price=None, qty=11)), Reason.ORDER_NOTIONAL)
    desk.clock.advance(61)
    assert denied(desk.check(order(price=None)), Reason.STALE_REFERENCE)


def test_on_mark_when_older_than_the_last_then_ignored() -> None:
    desk = Desk(profile(price_collar_pct=1.0))

    desk.gate.on_mark(SYMBOL, D(200), desk.now - 1)

    assert desk.check(order(price="100.50")).allowed


@pytest.mark.parametrize("price", [D("NaN"), D(0), D(-1), float("inf"), "100", None])
def test_on_mark_when_bad_price_then_counted_and_ignored(price: Any) -> None:
    desk = Desk(profile(price_collar_pct=1.0))

    desk.gate.on_mark(SYMBOL, price, desk.now + 1)

    assert desk.gate.counters["bad_updates"] == 1
    assert desk.check(order(price="100.50")).allowed


# --- order size ----------------------------------------------------------------------------


def test_check_when_qty_at_limit_then_allowed_one_lot_over_denied() -> None:
    desk = Desk(profile(max_order_qty=D(100)))

    assert desk.check(order(qty=100)).allowed
    decision = desk.check(order(qty=101))

    assert denied(decision, Reason.ORDER_QTY, "max_order_qty")
    assert (decision.limit_value, decision.observed) == (D(100), D(101))
    assert decision.profile_version == 1


def test_check_when_notional_at_limit_then_allowed_one_lot_over_denied() -> None:
    desk = Desk(profile(max_order_notional=D(10_000)))

    assert desk.check(order(qty=100, price="100")).allowed
    decision = desk.check(order(qty=101, price="100"))

    assert denied(decision, Reason.ORDER_NOTIONAL, "max_order_notional")
    assert decision.observed == D(10_100)


def test_check_parent_when_parent_limits_then_checked_against_them_not_child_ones() -> None:
    desk = Desk(profile(max_order_qty=D(10), max_parent_qty=D(1000)))
    parent = order(qty=1000, algo_id="twap-1")

    assert desk.gate.check_parent(parent, desk.now).allowed
    decision = desk.gate.check_parent(order(qty=1001, algo_id="twap-1"), desk.now)

    assert denied(decision, Reason.ORDER_QTY, "max_parent_qty")
    assert denied(desk.gate.check_parent(order(qty=5), desk.now), Reason.INVALID_ORDER)


def test_check_when_near_limit_then_allowed_with_warning_and_one_warning_alert() -> None:
    desk = Desk(profile(max_order_qty=D(100), warning_level=0.8))

    quiet = desk.check(order(qty=80))
    loud = desk.check(order(qty=81))
    desk.check(order(qty=90))

    assert quiet.allowed and quiet.warnings == ()
    assert loud.allowed
    (near,) = loud.warnings
    assert (near.limit, near.limit_value, near.observed) == ("max_order_qty", D(100), D(81))
    assert near.usage == pytest.approx(0.81)
    alerts = desk.events(AlertRaised)
    assert [(a.severity, a.kind) for a in alerts] == [("warning", "risk.max_order_qty")]


# --- throttle, duplicates, open orders -----------------------------------------------------


def test_check_when_burst_beyond_rate_then_denied_until_the_window_moves() -> None:
    desk = Desk(profile(max_orders_per_s=5.0))
    sent = [desk.send(order(qty=i + 1)) for i in range(5)]

    burst = desk.check(order(qty=50))
    desk.clock.advance(0.999)
    still = desk.check(order(qty=50))
    desk.clock.advance(0.001)
    later = desk.check(order(qty=50))

    assert all(d.allowed for d in sent)
    assert denied(burst, Reason.RATE_LIMIT, "max_orders_per_s")
    assert burst.limit_value == 5 and burst.observed == 6
    assert denied(still, Reason.RATE_LIMIT)
    assert later.allowed


def test_check_cancel_when_throttled_or_halted_then_always_allowed() -> None:
    desk = Desk(profile(max_orders_per_s=1.0))
    first = order()
    desk.send(first)
    desk.gate.halt("global", actor="ops", reason="drill", now_ns=desk.now)

    assert denied(desk.check(order(qty=3)), Reason.HALTED)
    assert desk.gate.check_cancel(ACCOUNT, first.client_order_id, desk.now).allowed
    desk.gate.on_cancelled(ACCOUNT, first.client_order_id)
    assert desk.gate.exposure(ACCOUNT, SYMBOL).orders == {}


def test_check_when_algo_rate_exceeded_then_only_that_algo_throttled() -> None:
    desk = Desk(profile(max_algo_orders_per_s=2.0))
    for algo in ("a1", "a2"):
        desk.gate.on_parent_accepted(order(qty=1000, algo_id=algo), desk.now)
    for qty in (1, 2):
        assert desk.send(order(qty=qty, algo_id="a1")).allowed

    assert denied(
        desk.check(order(qty=3, algo_id="a1")), Reason.RATE_LIMIT, "max_algo_orders_per_s"
    )
    assert desk.check(order(qty=3, algo_id="a2")).allowed
    assert desk.check(order(qty=3)).allowed


def test_check_when_engine_rate_exceeded_then_every_account_throttled() -> None:
    desk = Desk(settings=GateSettings(max_orders_per_s=2.0))
    desk.gate.set_profile(RiskProfile(account="other"))
    desk.send(order(qty=1))
    desk.send(order(qty=2, account="other"))

    assert denied(desk.check(order(qty=3)), Reason.RATE_LIMIT, "engine_orders_per_s")
    assert denied(desk.check(order(qty=3, account="other")), Reason.RATE_LIMIT)


def test_check_modify_when_throttled_then_modifies_count_too() -> None:
    desk = Desk(profile(max_orders_per_s=2.0))
    working = order(qty=10)
    desk.send(working)
    replaced = order(qty=5, client_order_id=f"{working.client_order_id}-r1")
    assert desk.gate.check_modify(
        replaced, desk.now, orig_client_order_id=working.client_order_id
    ).allowed
    desk.gate.on_modified(working.client_order_id, replaced, desk.now)

    again = order(qty=4, client_order_id=f"{working.client_order_id}-r2")
    decision = desk.gate.check_modify(
        again, desk.now, orig_client_order_id=replaced.client_order_id
    )

    assert denied(decision, Reason.RATE_LIMIT)
    assert desk.gate.exposure(ACCOUNT, SYMBOL).buys == 5


def test_check_when_same_order_within_window_then_duplicate_until_window_ends() -> None:
    desk = Desk(profile(duplicate_window_s=2.0))
    desk.send(order(qty=10, price="100"))

    desk.clock.advance(1.999)
    within = desk.check(order(qty=10, price="100"))
    other_price = desk.check(order(qty=10, price="100.01"))
    other_side = desk.check(order("sell", qty=10, price="100"))
    desk.clock.advance(0.001)
    after = desk.check(order(qty=10, price="100"))

    assert denied(within, Reason.DUPLICATE_ORDER, "duplicate_window_s")
    assert within.observed == D("1.999")
    assert other_price.allowed and other_side.allowed and after.allowed


def test_check_when_algo_repeats_child_then_not_a_duplicate_unless_scope_all() -> None:
    manual = Desk(profile(duplicate_window_s=2.0))
    everything = Desk(profile(duplicate_window_s=2.0, duplicate_scope="all"))
    for desk in (manual, everything):
        desk.gate.on_parent_accepted(order(qty=1000, algo_id="twap"), desk.now)
        desk.send(order(algo_id="twap"))

    assert manual.check(order(algo_id="twap")).allowed
    assert denied(everything.check(order(algo_id="twap")), Reason.DUPLICATE_ORDER)


def test_check_when_open_orders_at_cap_then_next_denied_and_freed_by_done() -> None:
    desk = Desk(profile(max_open_orders_per_symbol=2))
    first = order(qty=1)
    desk.send(first)
    desk.send(order(qty=2))

    full = desk.check(order(qty=3))
    other_symbol = desk.check(order(qty=3, symbol="MSFT"))
    desk.gate.on_done(ACCOUNT, first.client_order_id)

    assert denied(full, Reason.OPEN_ORDERS, "max_open_orders_per_symbol")
    assert (full.limit_value, full.observed) == (2, 3)
    assert other_symbol.allowed
    assert desk.check(order(qty=3)).allowed


def test_check_when_algo_open_orders_at_cap_then_denied() -> None:
    desk = Desk(profile(max_open_orders_per_algo=1))
    desk.gate.on_parent_accepted(order(qty=1000, algo_id="pov"), desk.now)
    desk.send(order(qty=1, algo_id="pov"))

    decision = desk.check(order(qty=2, algo_id="pov", symbol=SYMBOL))

    assert denied(decision, Reason.OPEN_ORDERS, "max_open_orders_per_algo")


# --- exposure ------------------------------------------------------------------------------


def test_check_when_position_plus_working_at_limit_then_allowed_one_lot_over_denied() -> None:
    desk = Desk(profile(max_position_qty=D(100)))
    desk.hold(60)
    desk.send(order(qty=30, price="99"))

    at_limit = desk.check(order(qty=10))
    over = desk.check(order(qty=11))

    assert at_limit.allowed
    assert denied(over, Reason.POSITION_QTY, "max_position_qty")
    assert over.observed == 101


def test_check_when_working_sells_then_they_count_as_short_exposure() -> None:
    desk = Desk(profile(max_position_qty=D(100)))
    desk.hold(20)
    desk.send(order("sell", qty=100, price="101"))

    assert desk.check(order("sell", qty=20, price="101")).allowed  # 100 + 20 - 20
    decision = desk.check(order("sell", qty=21, price="101"))
    assert denied(decision, Reason.POSITION_QTY)
    assert desk.check(order("buy", qty=80, price="99")).allowed  # long side: 20 + 80


def test_check_when_position_beyond_a_lowered_limit_then_reducing_orders_still_pass() -> None:
    desk = Desk(profile(max_position_qty=D(50), max_gross_notional=D(5_000)))
    desk.hold(100)

    assert desk.check(order("sell", qty=30)).allowed
    assert denied(desk.check(order("buy", qty=1)), Reason.POSITION_QTY)


def test_check_when_position_notional_at_limit_then_allowed_over_denied() -> None:
    desk = Desk(profile(max_position_notional=D(10_000)))
    desk.hold(50)  # valued at the mark 100

    assert desk.check(order(qty=50)).allowed
    decision = desk.check(order(qty=51))
    assert denied(decision, Reason.POSITION_NOTIONAL, "max_position_notional")
    assert decision.observed == D(10_100)


def test_check_when_gross_notional_across_symbols_then_limited() -> None:
    desk = Desk(profile(max_gross_notional=D(20_000)))
    desk.mark("MSFT", "200")
    desk.fill("buy", 50, "200", symbol="MSFT")  # 10,000
    desk.hold(-50)  # short 50 AAPL: 5,000

    assert desk.check(order("sell", qty=50)).allowed  # short 100 AAPL: 10,000 → 20,000
    decision = desk.check(order("sell", qty=51))
    assert denied(decision, Reason.GROSS_NOTIONAL, "max_gross_notional")
    assert decision.observed == D(20_100)
    desk.mark("MSFT", "220")  # marks move the gross: 11,000 + 5,000
    assert denied(desk.check(order("sell", qty=41)), Reason.GROSS_NOTIONAL)
    assert desk.check(order("sell", qty=40)).allowed


# --- participation -------------------------------------------------------------------------


def test_check_when_algo_child_vs_market_volume_then_participation_limited() -> None:
    desk = Desk(profile(max_participation=0.1), settings=GateSettings(participation_window_s=60))
    desk.gate.on_parent_accepted(order(qty=10_000, algo_id="pov"), desk.now)

    none_yet = desk.check(order(qty=1, algo_id="pov"))
    desk.gate.on_market_volume(SYMBOL, D(600), desk.now)
    desk.gate.on_market_volume(SYMBOL, 400.0, desk.now)

    assert denied(none_yet, Reason.PARTICIPATION, "max_participation")
    assert desk.check(order(qty=100, algo_id="pov")).allowed
    over = desk.check(order(qty=101, algo_id="pov"))
    assert denied(over, Reason.PARTICIPATION)
    assert over.observed == D("0.101")
    assert desk.check(order(qty=500)).allowed  # manual orders are not limited
    desk.clock.advance(60)
    assert denied(desk.check(order(qty=1, algo_id="pov")), Reason.PARTICIPATION)


# --- daily loss ----------------------------------------------------------------------------


def test_daily_loss_when_reducing_then_halted_then_only_risk_reducing_orders_pass() -> None:
    desk = Desk(profile(daily_loss_limit=D(1000), reducing_at=0.8, halted_at=1.0))
    desk.hold(100)  # at 100
    working_buy, working_sell = order(qty=5, price="95"), order("sell", qty=10, price="105")
    desk.send(working_buy)
    desk.send(working_sell)
    desk.events()

    desk.mark(SYMBOL, "92.01")  # lost 799
    assert desk.events(RiskStateChanged) == []
    desk.mark(SYMBOL, "92")  # lost 800: REDUCING
    (reducing,) = desk.events(RiskStateChanged)

    assert (reducing.scope, reducing.key, reducing.state, reducing.reason) == (
        "account", ACCOUNT, "REDUCING", "daily_loss",
    )  # fmt: skip
    assert denied(desk.check(order(qty=1, price="92")), Reason.REDUCING_ONLY, "daily_loss_limit")
    assert desk.check(order("sell", qty=50, price="92")).allowed
    assert denied(
        desk.check(order("sell", qty=91, price="92")), Reason.REDUCING_ONLY
    )  # 10 + 91 > 100

    desk.mark(SYMBOL, "90")  # lost 1000: HALTED
    events = desk.events()
    (halted,) = [e for e in events if isinstance(e, RiskStateChanged)]
    assert halted.state == "HALTED"
    assert [c.client_order_id for c in desk.cancels] == [working_buy.client_order_id]
    assert any(isinstance(e, AlertRaised) and e.severity == "critical" for e in events)
    decision = desk.check(order(qty=1, price="90"))
    assert denied(decision, Reason.HALTED, "daily_loss_limit")
    assert (decision.limit_value, decision.observed) == (D(1000), D(1000))
    assert desk.check(order("sell", qty=90, price="90")).allowed


def test_daily_loss_when_marks_recover_then_state_holds_until_next_utc_day() -> None:
    desk = Desk(profile(daily_loss_limit=D(1000)))
    desk.hold(100)
    desk.mark(SYMBOL, "89")
    desk.mark(SYMBOL, "100")

    assert denied(desk.check(order(qty=1)), Reason.HALTED)
    desk.clock.advance(86_400)
    desk.mark(SYMBOL, "100")

    assert desk.check(order(qty=1)).allowed
    states = [(e.state, e.reason) for e in desk.events(RiskStateChanged)]
    assert states == [("HALTED", "daily_loss"), ("ACTIVE", "day_start")]


def test_daily_loss_when_realized_then_counts_too() -> None:
    desk = Desk(profile(daily_loss_limit=D(100), reducing_at=1.0))
    desk.hold(10, "100")
    desk.fill("sell", 10, "90")  # realized -100

    assert desk.gate.account_state(ACCOUNT).day_pnl == -100
    assert denied(desk.check(order(qty=1)), Reason.HALTED)


def test_resume_when_account_loss_still_beyond_then_halted_again() -> None:
    desk = Desk(profile(daily_loss_limit=D(100)))
    desk.hold(10)
    desk.mark(SYMBOL, "89")

    desk.gate.resume("account", ACCOUNT, actor="ops", reason="checked", now_ns=desk.now)

    states = [e.state for e in desk.events(RiskStateChanged)]
    assert states == ["HALTED", "ACTIVE", "HALTED"]


# --- kill switch ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "key", "hit", "spared"),
    [
        ("global", "", {}, None),
        ("account", ACCOUNT, {}, {"account": "other"}),
        ("symbol", SYMBOL, {}, {"symbol": "MSFT"}),
        ("algo", "twap", {"algo_id": "twap"}, {"algo_id": "vwap"}),
    ],
)
def test_halt_when_scope_then_all_working_cancelled_increasing_denied_others_untouched(
    scope: Any, key: str, hit: dict[str, str], spared: dict[str, str] | None
) -> None:
    desk = Desk()
    desk.gate.set_profile(RiskProfile(account="other"))
    desk.mark("MSFT", "50")
    for algo in ("twap", "vwap"):
        desk.gate.on_parent_accepted(order(qty=1000, algo_id=algo), desk.now)
    desk.hold(100)
    increasing, reducing = order(qty=5, price="99", **hit), order("sell", qty=5, price="101", **hit)
    desk.send(increasing)
    desk.send(reducing)

    cancels = desk.gate.halt(scope, key, actor="ops", reason="drill", now_ns=desk.now)

    working = [increasing.client_order_id, reducing.client_order_id]
    assert [c.client_order_id for c in cancels] == working
    assert denied(desk.check(order(qty=1, **hit)), Reason.HALTED, "kill_switch")
    assert desk.check(order("sell", qty=1, price="101", **hit)).allowed
    if spared is not None:
        assert desk.check(
            order(qty=1, price="50" if "symbol" in spared else "100", **spared)
        ).allowed
    (event,) = desk.events(RiskStateChanged)
    assert (event.scope, event.key, event.state, event.actor) == (scope, key, "HALTED", "ops")
    assert [c.client_order_id for c in desk.cancels] == working


@pytest.mark.parametrize(
    ("actor", "reason"), [("", "fixed"), ("ops", ""), ("  ", "x"), ("ops", None)]
)
def test_resume_when_actor_or_reason_missing_then_refused(actor: str, reason: Any) -> None:
    desk = Desk()
    desk.gate.halt("global", now_ns=desk.now)

    with pytest.raises(CommandError) as info:
        desk.gate.resume("global", actor=actor, reason=reason, now_ns=desk.now)

    assert info.value.code == "invalid"
    assert denied(desk.check(order()), Reason.HALTED)


def test_resume_when_actor_and_reason_then_trading_again_and_event() -> None:
    desk = Desk()
    desk.gate.halt("symbol", SYMBOL, actor="ops", reason="news", now_ns=desk.now)

    assert desk.gate.resume("symbol", SYMBOL, actor="lead", reason="news out", now_ns=desk.now)

    assert desk.check(order()).allowed
    assert [(e.state, e.actor) for e in desk.events(RiskStateChanged)] == [
        ("HALTED", "ops"), ("ACTIVE", "lead"),
    ]  # fmt: skip
    assert not desk.gate.resume("symbol", SYMBOL, actor="lead", reason="again", now_ns=desk.now)


@pytest.mark.parametrize(("scope", "key"), [("desk", "x"), ("global", "x"), ("account", "")])
def test_halt_when_bad_scope_or_key_then_refused(scope: Any, key: str) -> None:
    with pytest.raises(CommandError):
        Desk().gate.halt(scope, key, now_ns=0)


# --- runaway -------------------------------------------------------------------------------


def test_runaway_when_children_exceed_plan_factor_then_algo_disabled_until_resumed() -> None:
    desk = Desk(profile(runaway_submit_factor=3.0, runaway_window_s=60.0))
    desk.gate.on_parent_accepted(order(qty=100, algo_id="twap"), desk.now)
    children = [order(qty=100, algo_id="twap") for _ in range(3)]
    for child in children:
        assert desk.send(child).allowed
    desk.events()

    decision = desk.check(order(qty=1, algo_id="twap"))

    assert denied(decision, Reason.RUNAWAY, "runaway_submit_factor")
    assert (decision.limit_value, decision.observed) == (D(300), D(301))
    (event,) = desk.events(RiskStateChanged)
    assert (event.scope, event.key, event.state, event.reason) == (
        "algo",
        "twap",
        "HALTED",
        "runaway",
    )
    assert {c.client_order_id for c in desk.cancels} == {c.client_order_id for c in children}
    desk.clock.advance(3600)
    assert denied(desk.check(order(qty=1, algo_id="twap")), Reason.ALGO_DISABLED)
    assert desk.check(order(qty=1)).allowed  # manual orders go on
    assert desk.gate.resume("algo", "twap", actor="ops", reason="fixed", now_ns=desk.now)
    assert desk.check(order(qty=1, algo_id="twap")).allowed


def test_runaway_when_window_passes_then_submitted_quantity_frees_up() -> None:
    desk = Desk(profile(runaway_submit_factor=1.0, runaway_window_s=10.0))
    desk.gate.on_parent_accepted(order(qty=100, algo_id="twap"), desk.now)
    desk.send(order(qty=100, algo_id="twap"))

    desk.clock.advance(10)

    assert desk.check(order(qty=100, algo_id="twap")).allowed


def test_runaway_when_fills_exceed_plan_then_algo_disabled() -> None:
    desk = Desk(profile(runaway_fill_factor=1.0))
    desk.gate.on_parent_accepted(order(qty=100, algo_id="twap"), desk.now)
    child = order(qty=100, algo_id="twap")
    desk.send(child)
    desk.fill("buy", 100, "100", child.client_order_id)
    assert desk.events(RiskStateChanged) == []

    desk.fill("buy", 1, "100", algo_id="twap")  # a fill nobody planned

    (event,) = desk.events(RiskStateChanged)
    assert (event.key, event.reason) == ("twap", "runaway")
    assert denied(desk.check(order(qty=1, algo_id="twap")), Reason.ALGO_DISABLED)


def test_check_when_algo_child_without_parent_plan_then_unknown_algo() -> None:
    desk = Desk()

    assert denied(desk.check(order(algo_id="ghost")), Reason.UNKNOWN_ALGO, "algo_plan")
    desk.gate.on_parent_accepted(order(qty=100, algo_id="ghost"), desk.now)
    assert desk.check(order(algo_id="ghost")).allowed
    desk.gate.on_parent_done("ghost")
    assert denied(desk.check(order(algo_id="ghost")), Reason.UNKNOWN_ALGO)


# --- compliance ----------------------------------------------------------------------------


def test_restricted_list_when_symbol_listed_then_denied_unless_reducing_allowed() -> None:
    strict = Desk(rules=[create("restricted_list", symbols=[SYMBOL])])
    lenient = Desk(rules=[create("restricted_list", symbols=[SYMBOL], allow_reducing=True)])
    lenient.hold(10)

    assert denied(strict.check(order()), Reason.RESTRICTED, "restricted_list")
    assert strict.check(order(symbol="MSFT")).allowed
    assert lenient.check(order("sell", qty=10)).allowed
    assert denied(lenient.check(order("buy")), Reason.RESTRICTED)


def test_restricted_list_when_accounts_scoped_then_other_accounts_pass() -> None:
    desk = Desk(rules=[create("restricted_list", symbols=[SYMBOL], accounts=["other"])])

    assert desk.check(order()).allowed


def test_wash_trade_when_crossing_own_resting_order_then_denied() -> None:
    desk = Desk(rules=[create("wash_trade")])
    desk.hold(100)
    desk.send(order("sell", qty=10, price="101"))

    assert desk.check(order("buy", price="100.99")).allowed
    decision = desk.check(order("buy", price="101"))
    assert denied(decision, Reason.WASH_TRADE, "wash_trade")
    assert denied(desk.check(order("buy", price=None)), Reason.WASH_TRADE)
    assert desk.check(order("buy", price="101", account="acc", symbol="MSFT")).allowed


def test_wash_trade_when_caller_supplies_open_orders_then_those_count() -> None:
    desk = Desk(rules=[create("wash_trade")])
    resting = [OpenOrder(client_order_id="v1", symbol=SYMBOL, side="buy", price=D(99), qty=D(5))]

    assert denied(desk.check(order("sell", price="99"), open_orders=resting), Reason.WASH_TRADE)
    assert desk.check(order("sell", price="99.01"), open_orders=resting).allowed
    assert desk.check(order("sell", price="99"), open_orders=[]).allowed


def test_short_sale_when_selling_beyond_long_then_denied_unless_allowed() -> None:
    rules = [create("short_sale", allowed={"other": ["*"], ACCOUNT: ["MSFT"]})]
    desk = Desk(rules=rules)
    desk.gate.set_profile(RiskProfile(account="other"))
    desk.mark("MSFT", "100")
    desk.hold(10)
    desk.send(order("sell", qty=4, price="101"))

    assert desk.check(order("sell", qty=6)).allowed  # 10 held, 4 offered
    decision = desk.check(order("sell", qty=7))
    assert denied(decision, Reason.SHORT_SALE, "short_sale")
    assert (decision.limit_value, decision.observed) == (D(6), D(7))
    assert desk.check(order("sell", qty=7, symbol="MSFT")).allowed
    assert desk.check(order("sell", qty=7, account="other")).allowed


@pytest.mark.parametrize(
    ("hhmm", "allowed"),
    [("14:29", False), ("14:30", True), ("20:59", True), ("21:00", False)],
)
def test_trading_window_when_at_edges_then_start_inclusive_end_exclusive(
    hhmm: str, allowed: bool
) -> None:
    desk = Desk(rules=[create("trading_window", windows=[{"start": "14:30", "end": "21:00"}])])
    monday = 1_700_438_400 * NS  # 2023-11-20 00:00 UTC, a Monday
    now = monday + (int(hhmm[:2]) * 60 + int(hhmm[3:])) * 60 * NS
    desk.gate.on_mark(SYMBOL, D(100), now)

    decision = desk.gate.check(order(), now)

    assert decision.allowed is allowed
    if not allowed:
        assert denied(decision, Reason.OUTSIDE_TRADING_WINDOW, "trading_window")
    saturday = now + 5 * 86_400 * NS
    desk.gate.on_mark(SYMBOL, D(100), saturday)
    assert not desk.gate.check(order(), saturday).allowed


def test_trading_window_when_params_invalid_then_error_names_rule() -> None:
    with pytest.raises(ComplianceParamsError, match=r"^hours: "):
        create("trading_window", name="hours", windows=[{"start": "21:00", "end": "14:30"}])
    with pytest.raises(ComplianceParamsError):
        create("trading_window", windows=[{"start": "25:00", "end": "26:00"}])
    with pytest.raises(ComplianceParamsError):
        create("restricted_list", symbol=["typo"])


class Exploding(ComplianceRule[ComplianceParams]):
    kind = "exploding"
    reason = "exploding"

    def check(self, order: RiskOrder, view: Any, **kwargs: Any) -> Violation | None:
        raise RuntimeError("plugin bug")


class Garbage(ComplianceRule[ComplianceParams]):
    kind = "garbage"
    reason = "garbage"

    def check(self, order: RiskOrder, view: Any, **kwargs: Any) -> Any:
        return "nope"


@pytest.mark.parametrize("rule", [Exploding(), Garbage()], ids=["raises", "returns_garbage"])
def test_compliance_when_plugin_fails_then_denied_compliance_error_and_reported(
    rule: ComplianceRule[Any],
) -> None:
    desk = Desk(rules=[rule])

    decision = desk.check(order())
    again = desk.check(order(qty=3))

    assert denied(decision, Reason.COMPLIANCE_ERROR, rule.name)
    assert denied(again, Reason.COMPLIANCE_ERROR)
    assert desk.gate.counters["compliance_errors"] == 2
    alerts = desk.events(AlertRaised)
    assert [(a.severity, a.kind) for a in alerts] == [("critical", f"risk.{rule.name}")]


def test_compliance_when_rule_disabled_then_skipped_and_enabled_again() -> None:
    desk = Desk(rules=[Exploding()])

    assert desk.gate.enable_rule("exploding", False)
    assert desk.check(order()).allowed
    assert desk.gate.enable_rule("exploding", True)
    assert denied(desk.check(order()), Reason.COMPLIANCE_ERROR)
    assert not desk.gate.enable_rule("missing")


def test_compliance_when_broken_rule_loaded_then_every_order_denied() -> None:
    desk = Desk(rules=[BrokenRule("restricted", "restricted_list", "symbols: expected a list")])

    assert denied(desk.check(order()), Reason.COMPLIANCE_ERROR, "restricted")


def test_registry_when_registering_then_versions_and_names_checked() -> None:
    registry = ComplianceRegistry()
    registry.register(Exploding)

    class Old(Exploding):
        kind = "old"
        INTERFACE_VERSION = 0

    class BadName(Exploding):
        kind = "Bad-Name"

    class Taken(Exploding):
        pass

    with pytest.raises(ValueError, match="interface version"):
        registry.register(Old)
    with pytest.raises(ValueError, match="must match"):
        registry.register(BadName)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Taken)
    with pytest.raises(UnknownComplianceRuleError, match="known: exploding"):
        registry.create("nope")
    assert registry.create("exploding", name="x").name == "x"


def test_describe_when_builtins_then_listed_with_schema_stage_and_reason() -> None:
    listed = {info.kind: info for info in describe()}

    assert set(listed) >= {"restricted_list", "wash_trade", "short_sale", "trading_window"}
    assert listed["restricted_list"].stage == "pre"
    assert listed["trading_window"].reason == Reason.OUTSIDE_TRADING_WINDOW
    assert "symbols" in listed["restricted_list"].params["properties"]
    assert listed["wash_trade"].interface_version == 1


def test_set_rules_when_names_repeat_then_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        Desk(rules=[create("wash_trade"), create("wash_trade")])


# --- state, events, status ---------------------------------------------------------------


def test_check_modify_when_replace_grows_exposure_then_checked_without_the_old_order() -> None:
    desk = Desk(profile(max_position_qty=D(100)))
    working = order(qty=60)
    desk.send(working)
    desk.fill("buy", 20, "100", working.client_order_id)  # 40 left working, 20 held

    grown = order(qty=100, client_order_id="r1")  # 80 left: 20 + 80
    too_big = order(qty=101, client_order_id="r2")

    assert desk.gate.check_modify(
        grown, desk.now, orig_client_order_id=working.client_order_id
    ).allowed
    decision = desk.gate.check_modify(
        too_big, desk.now, orig_client_order_id=working.client_order_id
    )
    assert denied(decision, Reason.POSITION_QTY)
    unknown = desk.gate.check_modify(grown, desk.now, orig_client_order_id="nope")
    assert denied(unknown, Reason.UNKNOWN_ORDER)
    desk.gate.on_modified(working.client_order_id, grown, desk.now)
    sx = desk.gate.exposure(ACCOUNT, SYMBOL)
    assert (sx.qty, sx.buys, list(sx.orders)) == (D(20), D(80), ["r1"])


def test_check_modify_when_covered_sell_repriced_then_not_a_short_sale() -> None:
    desk = Desk(rules=[create("short_sale"), create("wash_trade")])
    desk.hold(10)
    working = order("sell", qty=10, price="101")
    desk.send(working)
    desk.send(order("buy", qty=5, price="99"))

    repriced = order("sell", qty=10, price="100.50", client_order_id="r1")
    crossing = order("sell", qty=10, price="99", client_order_id="r2")
    bigger = order("sell", qty=11, price="101", client_order_id="r3")

    orig = {"orig_client_order_id": working.client_order_id}
    assert desk.gate.check_modify(repriced, desk.now, **orig).allowed
    assert denied(desk.gate.check_modify(crossing, desk.now, **orig), Reason.WASH_TRADE)
    assert denied(desk.gate.check_modify(bigger, desk.now, **orig), Reason.SHORT_SALE)


def test_on_fill_when_working_order_fills_then_position_and_working_follow() -> None:
    desk = Desk()
    working = order(qty=10, price="100")
    desk.send(working)

    desk.fill("buy", 4, "100", working.client_order_id)
    desk.fill("buy", 6, "100", working.client_order_id)
    desk.fill("sell", 5, "110")

    sx = desk.gate.exposure(ACCOUNT, SYMBOL)
    assert (sx.qty, sx.buys, sx.orders) == (D(5), D(0), {})
    state = desk.gate.account_state(ACCOUNT)
    assert (state.realized, state.unrealized) == (D(50), D(50))  # valued at the last fill


def test_denial_when_repeated_then_one_alert_per_interval_with_count() -> None:
    desk = Desk(profile(max_order_qty=D(1)), settings=GateSettings(alert_interval_s=60))
    for _ in range(5):
        desk.check(order(qty=2))
    first = desk.events()
    desk.clock.advance(60)
    desk.check(order(qty=2))
    later = desk.events(AlertRaised)

    assert [type(e).__name__ for e in first].count("OrderDenied") == 5
    assert [type(e).__name__ for e in first].count("AlertRaised") == 1
    (alert,) = later
    assert alert.details == {"count": "6"}
    status = desk.gate.status(desk.now)
    (account,) = status.accounts
    assert [(a.kind, a.count) for a in account.alerts] == [("risk.max_order_qty", 6)]
    assert desk.gate.acknowledge_alert(ACCOUNT) == 1
    assert desk.gate.status(desk.now).accounts[0].alerts == []


def test_denial_when_published_then_event_carries_limit_and_observed_on_account_topic() -> None:
    desk = Desk(profile(max_order_qty=D(100)))
    o = order(qty=150, algo_id="", parent="")

    desk.check(o)

    topic, event = desk.gate.drain().events[0]
    assert topic == "risk.denied.acc"
    assert isinstance(event, OrderDenied)
    assert (event.client_order_id, event.reason, event.limit) == (
        o.client_order_id,
        "order_qty",
        "max_order_qty",
    )
    assert (event.limit_value, event.observed, event.qty, event.price) == (
        D(100),
        D(150),
        D(150),
        D(100),
    )
    assert codec.decode_event(codec.encode(event)) == event


def test_status_when_positions_and_limits_then_usage_and_json() -> None:
    desk = Desk(
        profile(max_position_qty=D(100), max_gross_notional=D(100_000), daily_loss_limit=D(1000))
    )
    desk.hold(50)
    desk.send(order(qty=30, price="99"))
    desk.mark(SYMBOL, "98")

    status = desk.gate.status(desk.now)

    (account,) = status.accounts
    usage = {u.limit: u for u in account.limits}
    assert usage["max_position_qty"].observed == 80
    assert usage["max_position_qty"].usage == pytest.approx(0.8)
    assert usage["max_gross_notional"].observed == D(80 * 98)
    assert usage["daily_loss_limit"].observed == D(100)
    assert (account.state, account.working_orders, account.day_pnl) == ("ACTIVE", 1, D(-100))
    decoded = msgspec.json.decode(msgspec.json.encode(status))
    assert decoded["accounts"][0]["account"] == ACCOUNT


def test_seed_position_when_restarted_then_day_pnl_continues() -> None:
    desk = Desk(profile(daily_loss_limit=D(1000)))

    desk.gate.seed_position(
        ACCOUNT, SYMBOL, qty=D(100), avg_price=D(95), realized_today=D(-300), ts_ns=desk.now
    )
    desk.mark(SYMBOL, "95")  # unrealized since the seed: -500

    assert desk.gate.account_state(ACCOUNT).day_pnl == D(-800)
    assert denied(desk.check(order(qty=1, price="95")), Reason.REDUCING_ONLY)


def test_check_when_gate_internals_fail_then_denied_risk_error_never_raised() -> None:
    desk = Desk()
    desk.gate._refs = None  # type: ignore[assignment]  # sabotage

    decision = desk.check(order())

    assert denied(decision, Reason.RISK_ERROR, "risk_gate")


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"max_orders_per_s": 0.0}, "risk.max_orders_per_s"),
        ({"participation_window_s": -1.0}, "risk.participation_window_s"),
        ({"alert_interval_s": 0}, "risk.alert_interval_s"),
    ],
)
def test_gate_settings_when_invalid_then_config_error_names_the_setting(
    settings: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError) as info:
        GateSettings(**settings)

    assert info.value.key == key

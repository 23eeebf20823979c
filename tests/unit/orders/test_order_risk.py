"""The risk gate in the order manager: nothing reaches the venue without passing it,
denials are clear and visible, the kill switch cancels and blocks, state survives a
restart, limits and alerts are managed from the control plane."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from order_world import D, World, refused

from app.settings import load_settings
from engine.bus import topics
from engine.bus.commands.orders import RequestReplace
from engine.bus.commands.risk import (
    AcknowledgeAlert,
    EnableComplianceRule,
    GetRiskProfile,
    GetRiskStatus,
    HaltTrading,
    ListAlerts,
    ListComplianceRules,
    ResumeTrading,
    SetComplianceRule,
    SetRiskProfile,
)
from engine.bus.events import (
    AlertRaised,
    OrderDenied,
    QuoteUpdated,
    RiskStateChanged,
    TradePrinted,
)
from engine.errors import ErrorCode
from engine.risk import store
from engine.risk.decision import RiskOrder
from engine.risk.profile import DEFAULT_PROFILE, RiskProfile
from engine.venue.protocol import CancelOrder, NewOrder, ReplaceOrder
from feeds.cache import PriceCache, cached_quotes
from feeds.schema import NS, quote_of

LIMITED = RiskProfile(
    account="acc", max_order_qty=D(100), max_position_qty=D(1000), daily_loss_limit=D(500)
)


@pytest.fixture
def limited(tmp_path: Path) -> World:
    return World(tmp_path, profiles=[LIMITED])


def test_submit_when_denied_then_clear_error_event_alert_and_nothing_recorded_or_sent(
    limited: World,
) -> None:
    error = refused(limited, limited.order("big", qty=D(101)))

    assert error.code == ErrorCode.DENIED
    assert "order_qty (max_order_qty 100)" in error.message
    assert "quantity 101 is above max_order_qty 100" in error.message
    assert limited.service.ledger.order("big") is None
    assert limited.venue.received(NewOrder) == []
    (denied,) = limited.events(OrderDenied)
    assert (denied.client_order_id, denied.reason, denied.limit, denied.limit_value) == (
        "big",
        "order_qty",
        "max_order_qty",
        100,
    )
    assert [t for t, e in limited.ctx.published if isinstance(e, OrderDenied)] == [
        topics.risk_denied("acc")
    ]
    (stored,) = store.unacknowledged_alerts(limited.engine)
    assert (stored.severity, stored.kind, stored.account) == (
        "critical",
        "risk.max_order_qty",
        "acc",
    )


def test_submit_when_account_has_no_profile_then_denied_fail_closed(limited: World) -> None:
    error = refused(limited, limited.order("x", account="nobody"))

    assert error.code == ErrorCode.DENIED
    assert "no_risk_profile" in error.message
    assert limited.venue.received(NewOrder) == []


def test_start_when_default_account_without_profile_then_defaults_stored_and_audited(
    tmp_path: Path,
) -> None:
    world = World(tmp_path, profiles=[], environ={"QSUITE__RISK__DEFAULT_ACCOUNTS": '["desk9"]'})

    view = world.send(GetRiskProfile(account="desk9"))

    assert view.version == 1
    assert view.limits["max_order_qty"] == str(DEFAULT_PROFILE.max_order_qty)
    assert store.load_profiles(world.engine).profiles["desk9"].price_collar_pct == 5.0
    error = refused(world, world.order("d1", account="desk9"))
    assert "no_reference" in error.message  # defaults have a collar: a quote is needed
    world.quote(bid=99.9, ask=100.1)
    world.submit("d2", account="desk9")
    assert [o.client_order_id for o in world.venue.received(NewOrder)] == ["d2"]


def test_submit_when_same_command_retried_then_not_checked_again(limited: World) -> None:
    limited.send(SetRiskProfile(account="acc", changes={"duplicate_window_s": "10"}, actor="a"))
    limited.submit("o1")

    again = limited.submit("o1")  # the same command: no duplicate-order denial

    assert again.client_order_id == "o1"
    assert limited.events(OrderDenied) == []


def test_replace_when_above_limit_then_denied_and_not_sent(limited: World) -> None:
    limited.submit("o1", qty=D(50))

    error = refused(limited, RequestReplace(client_order_id="o1", qty=D(150), command_id="r1"))

    assert error.code == ErrorCode.DENIED and "order_qty" in error.message
    assert limited.venue.received(ReplaceOrder) == []


def test_position_limit_when_filled_then_counts_position_and_working_orders(
    limited: World,
) -> None:
    for n in range(9):
        limited.submit(f"o{n}", qty=D(100))
        limited.venue.fill(f"o{n}", "100", "100")
    limited.run()
    limited.submit("w", qty=D(100))  # 900 held + 100 working = the limit

    error = refused(limited, limited.order("over", qty=D(1)))

    assert "position_qty (max_position_qty 1000)" in error.message
    limited.submit("reduce", side="sell", qty=D(100), price=D(101))  # reducing passes


def test_halt_when_orders_working_then_all_cancelled_new_denied_reducing_allowed(
    limited: World,
) -> None:
    limited.submit("b1", qty=D(10))
    limited.venue.fill("b1", "10", "100")
    limited.submit("b2", qty=D(10), price=D(99))
    limited.submit("s1", side="sell", qty=D(5), price=D(105))
    limited.run()

    result = limited.send(HaltTrading(reason="drill", actor="ops", command_id="h1"))

    assert (result.state, result.changed, sorted(result.cancels)) == ("HALTED", True, ["b2", "s1"])
    cancelled = {c.orig_client_order_id for c in limited.venue.received(CancelOrder)}
    assert cancelled == {"b2", "s1"}
    assert limited.status_of("b2") == limited.status_of("s1") == "cancelled"
    error = refused(limited, limited.order("b3"))
    assert "halted (kill_switch)" in error.message and "drill" in error.message
    limited.submit("s2", side="sell", qty=D(10), price=D(101))  # closes the position: passes
    (changed,) = limited.events(RiskStateChanged)
    assert (changed.scope, changed.state, changed.actor, changed.reason) == (
        "global",
        "HALTED",
        "ops",
        "kill_switch",
    )


def test_halt_when_restarted_then_still_halted_until_resumed_with_reason(limited: World) -> None:
    limited.send(HaltTrading(scope="symbol", key="AAPL", reason="news", actor="ops"))

    limited.restart()

    assert "halted" in refused(limited, limited.order("a1")).message
    assert refused(limited, ResumeTrading(scope="symbol", key="AAPL", reason=" ", actor="lead"))
    assert refused(limited, ResumeTrading(scope="symbol", key="AAPL", reason="ok", actor=""))
    resumed = limited.send(ResumeTrading(scope="symbol", key="AAPL", reason="ok", actor="lead"))
    assert (resumed.state, resumed.changed) == ("ACTIVE", True)
    limited.submit("a2")
    limited.restart()
    limited.submit("a3")
    assert limited.send(GetRiskStatus()).halts == []


def test_halt_when_venue_down_then_cancels_sent_after_logon(limited: World) -> None:
    limited.submit("b1")
    limited.venue.restart(down=True)

    limited.send(HaltTrading(reason="drill", actor="ops"))
    assert limited.venue.received(CancelOrder) == []
    limited.venue.restart()
    limited.advance(limited.settings.execution.timeout_s + 2)

    assert [c.orig_client_order_id for c in limited.venue.received(CancelOrder)] == ["b1"]
    assert limited.status_of("b1") == "cancelled"


def test_daily_loss_when_marks_fall_then_reducing_then_halted_and_working_cancelled(
    limited: World,
) -> None:
    limited.quote(bid=99.9, ask=100.1)
    limited.submit("b1", qty=D(100))
    limited.venue.fill("b1", "100", "100")
    limited.submit("b2", qty=D(10), price=D(95))
    limited.run()

    limited.quote(bid=95.9, ask=96.1)  # 100 x -4 = -400: 80 % of 500
    assert limited.send(GetRiskStatus(account="acc")).accounts[0].state == "REDUCING"
    assert "reducing_only" in refused(limited, limited.order("b3")).message
    limited.quote(bid=94.9, ask=95.1)  # -500: HALTED

    (acct,) = limited.send(GetRiskStatus(account="acc")).accounts
    assert (acct.state, acct.state_reason, acct.day_pnl) == ("HALTED", "daily_loss", -500)
    assert limited.status_of("b2") == "cancelled"
    assert [e.state for e in limited.events(RiskStateChanged)] == ["REDUCING", "HALTED"]


def test_restart_when_loss_realized_today_then_daily_loss_remembered(limited: World) -> None:
    limited.submit("b1", qty=D(100))
    limited.venue.fill("b1", "100", "100")
    limited.submit("s1", side="sell", qty=D(100), price=D(96))
    limited.venue.fill("s1", "100", "96")
    limited.submit("b2", qty=D(10))
    limited.run()

    limited.restart()

    (acct,) = limited.send(GetRiskStatus(account="acc")).accounts
    assert (acct.realized_pnl, acct.state, acct.working_orders) == (-400, "REDUCING", 1)


def test_set_profile_when_valid_then_versioned_and_used_at_once(limited: World) -> None:
    view = limited.send(
        SetRiskProfile(
            account="acc", changes={"max_order_qty": "5", "daily_loss_limit": "none"}, actor="r"
        )
    )

    assert (view.version, view.limits["max_order_qty"], view.limits["daily_loss_limit"]) == (
        2,
        "5",
        None,
    )
    assert "max_order_qty 5" in refused(limited, limited.order("o", qty=D(6))).message
    assert store.load_profiles(limited.engine).profiles["acc"].max_order_qty == 5


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"max_order_qty": "-1"}, "max_order_qty must be > 0"),
        ({"price_collar_pct": "150"}, "price_collar_pct must be > 0 and <= 100"),
        ({"max_order_qty": "lots"}, "max_order_qty is not valid"),
        ({"max_wealth": "1"}, "'max_wealth' is not a risk limit"),
        ({"account": "other"}, "'account' is not a risk limit"),
    ],
)
def test_set_profile_when_nonsense_then_invalid_and_profile_unchanged(
    limited: World, changes: dict[str, Any], expected: str
) -> None:
    error = refused(limited, SetRiskProfile(account="acc", changes=changes, actor="r"))

    assert error.code == ErrorCode.INVALID and expected in error.message
    assert limited.send(GetRiskProfile(account="acc")).version == 1


def test_set_profile_when_stale_version_then_conflict(limited: World) -> None:
    edit = SetRiskProfile(
        account="acc", changes={"max_order_qty": "7"}, expected_version=5, actor="r"
    )

    assert refused(limited, edit).code == ErrorCode.CONFLICT


def test_alerts_when_listed_and_acknowledged_then_closed_once(limited: World) -> None:
    refused(limited, limited.order("big", qty=D(101)))
    limited.ctx.deliver(
        topics.alert("warning"),
        AlertRaised(
            ts_event=limited.clock.time_ns(),
            source="analysis",
            severity="warning",
            kind="analysis.rule_disabled",
            message="rule x disabled",
            details={"rule": "x"},
        ),
    )
    alerts = limited.send(ListAlerts()).alerts
    assert [a.kind for a in alerts] == ["analysis.rule_disabled", "risk.max_order_qty"]
    assert alerts[0].details == {"rule": "x"}
    risk_alert = alerts[1]

    first = limited.send(AcknowledgeAlert(alert_id=risk_alert.id, actor="ops"))
    again = limited.send(AcknowledgeAlert(alert_id=risk_alert.id, actor="other"))

    assert (first.already, first.alert.acknowledged_by) == (False, "ops")
    assert (again.already, again.alert.acknowledged_by) == (True, "ops")
    assert [a.kind for a in limited.send(ListAlerts()).alerts] == ["analysis.rule_disabled"]
    assert limited.send(GetRiskStatus(account="acc")).accounts[0].alerts == []
    assert limited.send(GetRiskStatus()).unacknowledged == 1
    assert refused(limited, AcknowledgeAlert(alert_id=999, actor="ops")).code == "not_found"


def test_rules_when_set_then_enforced_stored_and_switchable(limited: World) -> None:
    restricted = SetComplianceRule(
        name="restricted", kind="restricted_list", params='{"symbols": ["AAPL"]}', actor="c"
    )

    listed = limited.send(restricted)

    assert [(r.name, r.kind, r.enabled) for r in listed.rules] == [
        ("restricted", "restricted_list", True)
    ]
    assert {"restricted_list", "trading_window"} <= {k.kind for k in listed.kinds}
    error = refused(limited, limited.order("r1"))
    assert "restricted (restricted)" in error.message
    limited.send(EnableComplianceRule(name="restricted", enabled=False, actor="c"))
    limited.submit("r2")
    limited.restart()
    assert not limited.send(ListComplianceRules()).rules[0].enabled
    limited.send(EnableComplianceRule(name="restricted", enabled=True, actor="c"))
    assert "restricted" in refused(limited, limited.order("r3")).message


@pytest.mark.parametrize(
    ("kind", "params", "expected"),
    [
        ("restricted_list", "[1]", "params must be a JSON object"),
        ("restricted_list", "{", "params are not JSON"),
        ("restricted_list", '{"symbols": 5}', "symbols"),
        ("best_execution", "{}", "unknown compliance rule kind"),
    ],
)
def test_rules_when_bad_then_invalid_and_nothing_stored(
    limited: World, kind: str, params: str, expected: str
) -> None:
    bad = SetComplianceRule(name="bad", kind=kind, params=params, actor="c")

    error = refused(limited, bad)

    assert error.code == ErrorCode.INVALID and expected in error.message
    assert limited.send(ListComplianceRules()).rules == []
    enable = EnableComplianceRule(name="nothing", enabled=True, actor="c")
    assert refused(limited, enable).code == ErrorCode.NOT_FOUND


def test_participation_when_venue_prints_then_algo_child_sized_by_market_volume(
    limited: World,
) -> None:
    limited.send(SetRiskProfile(account="acc", changes={"max_participation": "0.1"}, actor="r"))
    now = limited.clock.time_ns()
    limited.ctx.deliver(
        topics.venue_trade("AAPL"),
        TradePrinted(
            ts_event=now,
            venue="SIM",
            symbol="AAPL",
            trade_id="t1",
            price=D(100),
            qty=D(500),
            aggressor="buy",
        ),
    )
    gate = limited.service.risk.gate
    parent = RiskOrder(account="acc", symbol="AAPL", client_order_id="p", side="buy", qty=D(1e3))
    gate.on_parent_accepted(msgspec.structs.replace(parent, algo_id="pov1"), now)

    def child(qty: int) -> RiskOrder:
        return RiskOrder(
            account="acc",
            symbol="AAPL",
            client_order_id=f"c{qty}",
            side="buy",
            qty=D(qty),
            price=D(100),
            algo_id="pov1",
        )

    assert gate.check(child(50), now).allowed
    denied = gate.check(child(51), now)
    assert (denied.reason, denied.observed) == ("participation", D("0.102"))


def _cached(age_s: float, *, symbol: str = "AAPL") -> QuoteUpdated:
    """A quote the feed cached ``age_s`` before the order manager's fake clock's start."""
    ts = 1_700_000_000 * NS - int(age_s * NS)
    return QuoteUpdated(
        ts_event=ts,
        symbol=symbol,
        bid=99.9,
        ask=100.1,
        bid_size=5.0,
        ask_size=5.0,
        last=100.0,
        origin="synthetic",
    )


DESK9 = {"QSUITE__RISK__DEFAULT_ACCOUNTS": '["desk9"]'}


def test_start_when_feed_cached_a_recent_quote_then_orders_pass_the_collar_before_any_quote(
    tmp_path: Path,
) -> None:
    world = World(tmp_path, profiles=[], environ=DESK9, recent_quotes=lambda: [_cached(30)])

    world.submit("d1", account="desk9")

    assert [o.client_order_id for o in world.venue.received(NewOrder)] == ["d1"]
    assert world.service.marks["AAPL"] == D(100)


def test_start_when_cached_quote_is_older_than_the_reference_age_then_denied_stale(
    tmp_path: Path,
) -> None:
    world = World(tmp_path, profiles=[], environ=DESK9, recent_quotes=lambda: [_cached(61)])

    error = refused(world, world.order("d1", account="desk9"))

    assert "stale_reference" in error.message
    world.quote(bid=99.9, ask=100.1)
    world.submit("d2", account="desk9")


def test_start_when_price_cache_unreadable_then_starts_and_waits_for_quotes(
    tmp_path: Path,
) -> None:
    def broken() -> list[QuoteUpdated]:
        raise OSError("disk I/O error")

    world = World(tmp_path, profiles=[], environ=DESK9, recent_quotes=broken)

    assert "no_reference" in refused(world, world.order("d1", account="desk9")).message
    world.quote(bid=99.9, ask=100.1)
    world.submit("d2", account="desk9")


def test_cached_quotes_when_feed_wrote_quotes_then_read_back_as_events(tmp_path: Path) -> None:
    settings = load_settings(environ={"QSUITE__APP__DATA_DIR": str(tmp_path)})
    assert cached_quotes(settings.price_cache_path) == []  # no feed yet: an empty cache, no error
    quote = _cached(5)
    with PriceCache(settings.price_cache_path) as cache:
        cache.put_quote(quote_of(quote), mode="simulated")

    assert cached_quotes(settings.price_cache_path) == [quote]

"""The risk store on a real SQLite file and a real PostgreSQL schema: profiles with
versions and audit entries, compliance rules of every registered kind that fail closed,
alerts with their details and acknowledgement, halts that survive a restart, and
migration 0004 that made room for them."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from conftest_db import db_fixture, migrated_fixture  # noqa: F401  (fixtures)
from sqlalchemy import Engine, delete, insert, select

from app.database import current_revision, downgrade, head_revision, upgrade, writer
from engine.bus.events import AlertRaised, RiskStateChanged
from engine.errors import CommandError, ErrorCode
from engine.persistence.models import Alert, AuditEntry, ComplianceRule, RiskProfile
from engine.risk import DEFAULT_PROFILE, Reason, RiskGate, RiskOrder, RiskProfileError
from engine.risk import RiskProfile as Profile
from engine.risk.profile import for_account
from engine.risk.registry import REGISTRY, ComplianceRegistry
from engine.risk.rules import BrokenRule, RestrictedListRule, TradingWindowRule
from engine.risk.store import (
    acknowledge_alert,
    alerts,
    get_alert,
    load_halts,
    load_profiles,
    load_rules,
    record_state_change,
    save_alert,
    save_profile,
    save_rule,
    set_rule_enabled,
    unacknowledged_alerts,
)

pytestmark = pytest.mark.integration

D = Decimal
T0 = 1_700_000_000 * 1_000_000_000  # Tuesday 2023-11-14 22:13:20 UTC


def audit(db: Engine) -> list[tuple[str, str, str | None, str]]:
    t = AuditEntry.__table__.c
    with db.connect() as conn:
        rows = conn.execute(select(t.actor, t.action, t.target, t.result).order_by(t.id))
        return [tuple(row) for row in rows]  # type: ignore[misc]


def order(**kw: Any) -> RiskOrder:
    fields = {"account": "acme", "symbol": "AAPL", "client_order_id": "c1", "side": "buy"}
    return RiskOrder(**{**fields, "qty": D(10), "price": D(100), **kw})


# --- profiles ------------------------------------------------------------------------------


def test_save_profile_when_new_then_version_1_loaded_equal_and_audited(migrated: Engine) -> None:
    profile = for_account(DEFAULT_PROFILE, "acme")

    saved = save_profile(migrated, profile, actor="alice", command_id="cmd-1")

    assert saved.version == 1
    loaded = load_profiles(migrated)
    assert loaded.problems == []
    assert loaded.profiles == {"acme": profile}
    assert audit(migrated) == [("alice", "SaveRiskProfile", "acme", "ok")]


def test_save_profile_when_edited_then_next_version_and_stale_edit_conflicts(
    migrated: Engine,
) -> None:
    save_profile(migrated, Profile(account="acme", max_order_qty=D(10)), actor="alice")

    second = save_profile(
        migrated, Profile(account="acme", max_order_qty=D(20)), actor="bob", expected_version=1
    )
    with pytest.raises(CommandError) as info:
        save_profile(
            migrated, Profile(account="acme", max_order_qty=D(30)), actor="eve", expected_version=1
        )

    assert second.version == 2 and info.value.code == "conflict"
    assert load_profiles(migrated).profiles["acme"].max_order_qty == D(20)
    assert load_profiles(migrated).profiles["acme"].version == 2
    assert [row[3] for row in audit(migrated)] == ["ok", "ok", "denied"]


def test_save_profile_when_another_writer_holds_the_database_then_waits_and_saves(
    migrated: Engine,
) -> None:
    save_profile(migrated, Profile(account="acc", max_order_qty=Decimal(5)), actor="t")
    held = threading.Event()

    def other_writer() -> None:  # another process's transaction holds the lock:
        with writer(migrated).begin() as conn:  # SQLite's write lock, PostgreSQL's row lock
            table = RiskProfile.__table__
            conn.execute(select(table.c.version).with_for_update()).all()
            held.set()
            time.sleep(0.5)

    thread = threading.Thread(target=other_writer)
    thread.start()
    held.wait(5)
    try:
        saved = save_profile(migrated, Profile(account="acc", max_order_qty=Decimal(6)), actor="t")
    finally:
        thread.join(5)

    assert saved.version == 2 and saved.max_order_qty == 6


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"account": "acme", "max_order_qty": "-5"}, "max_order_qty"),
        ({"account": "acme", "price_collar_pct": 150}, "price_collar_pct"),
        ({"account": "acme", "warning_level": 1.5}, "warning_level"),
        ({"account": "acme", "max_gross_notional": "lots"}, "max_gross_notional"),
    ],
)
def test_save_profile_when_invalid_then_refused_naming_field_and_audited_denied(
    migrated: Engine, data: dict[str, Any], field: str
) -> None:
    with pytest.raises(RiskProfileError) as info:
        save_profile(migrated, data, actor="alice")

    assert info.value.field == field
    assert load_profiles(migrated).profiles == {}
    assert audit(migrated) == [("alice", "SaveRiskProfile", "acme", "denied")]


def test_save_profile_when_extra_has_custom_keys_then_they_are_kept(migrated: Engine) -> None:
    table = RiskProfile.__table__
    with migrated.begin() as conn:
        conn.execute(insert(table).values(account="acme", extra={"my_check": {"limit": 3}}))

    save_profile(migrated, Profile(account="acme", max_parent_qty=D(500)), actor="alice")

    with migrated.connect() as conn:
        extra = conn.execute(select(table.c.extra)).scalar_one()
    assert extra["my_check"] == {"limit": 3}
    assert extra["max_parent_qty"] == "500"
    assert load_profiles(migrated).profiles["acme"].max_parent_qty == D(500)


def test_load_profiles_when_row_invalid_then_skipped_and_reported(migrated: Engine) -> None:
    table = RiskProfile.__table__
    with migrated.begin() as conn:
        conn.execute(insert(table).values(account="bad", price_collar_pct=150.0, extra={}))
        conn.execute(insert(table).values(account="good", max_order_qty=D(5), extra={}))

    loaded = load_profiles(migrated)

    assert list(loaded.profiles) == ["good"]
    (problem,) = loaded.problems
    assert "bad" in problem and "price_collar_pct" in problem
    gate = RiskGate(loaded.profiles.values())
    assert gate.check(order(account="bad"), T0).reason == Reason.NO_RISK_PROFILE


# --- compliance rules ----------------------------------------------------------------------


def test_save_rule_when_valid_then_loaded_through_registry(migrated: Engine) -> None:
    save_rule(
        migrated,
        name="restricted",
        kind="restricted_list",
        params={"symbols": ["XYZ"]},
        actor="alice",
    )
    save_rule(migrated, name="shorts", kind="short_sale", params={}, actor="alice")

    loaded = load_rules(migrated)

    assert loaded.problems == []
    restricted, shorts = loaded.rules
    assert isinstance(restricted, RestrictedListRule)
    assert restricted.params.symbols == frozenset({"XYZ"})
    assert shorts.kind == "short_sale" and shorts.enabled
    gate = RiskGate([Profile(account="acme")], loaded.rules)
    assert gate.check(order(symbol="XYZ"), T0).reason == Reason.RESTRICTED


def test_save_rule_when_edited_then_updated_in_place(migrated: Engine) -> None:
    for symbols in (["XYZ"], ["XYZ", "ABC"]):
        save_rule(
            migrated,
            name="restricted",
            kind="restricted_list",
            params={"symbols": symbols},
            actor="alice",
        )

    (rule,) = load_rules(migrated).rules

    assert rule.params.symbols == frozenset({"XYZ", "ABC"})


def test_save_rule_when_trading_window_then_stored_and_loaded_back(migrated: Engine) -> None:
    params = {"windows": [{"start": "14:30", "end": "21:00"}], "symbols": ["AAPL"]}

    save_rule(migrated, name="us-hours", kind="trading_window", params=params, actor="alice")

    loaded = load_rules(migrated)
    assert loaded.problems == []
    (rule,) = loaded.rules
    assert isinstance(rule, TradingWindowRule)
    assert (rule.name, rule.enabled) == ("us-hours", True)
    (window,) = rule.params.windows
    assert (window.start, window.end, rule.params.symbols) == ("14:30", "21:00", {"AAPL"})
    gate = RiskGate([Profile(account="acme")], loaded.rules)
    assert gate.check(order(), T0).reason == Reason.OUTSIDE_TRADING_WINDOW  # 22:13 UTC
    assert audit(migrated) == [("alice", "SaveComplianceRule", "us-hours", "ok")]


class AcmeRestrictedRule(RestrictedListRule):
    kind = "acme_restricted"


def test_save_rule_when_plugin_kind_registered_then_stored_and_loaded_by_its_registry(
    migrated: Engine,
) -> None:
    plugins = ComplianceRegistry()
    plugins.register(AcmeRestrictedRule)

    save_rule(
        migrated,
        name="acme",
        kind="acme_restricted",
        params={"symbols": ["XYZ"]},
        actor="alice",
        registry=plugins,
    )

    (rule,) = load_rules(migrated, plugins).rules
    assert isinstance(rule, AcmeRestrictedRule) and rule.params.symbols == {"XYZ"}
    elsewhere = load_rules(migrated)  # a process without the plugin fails closed
    assert isinstance(elsewhere.rules[0], BrokenRule)
    assert "acme_restricted" in elsewhere.problems[0]


def test_save_rule_when_params_bad_or_kind_unknown_then_refused_and_audited(
    migrated: Engine,
) -> None:
    with pytest.raises(Exception, match="restricted: "):
        save_rule(
            migrated,
            name="restricted",
            kind="restricted_list",
            params={"symbol": ["XYZ"]},
            actor="alice",
        )
    with pytest.raises(CommandError) as info:
        save_rule(migrated, name="hours", kind="market_hours", params={}, actor="alice")

    assert info.value.code == ErrorCode.INVALID
    assert "'market_hours'" in info.value.message
    assert all(kind in info.value.message for kind in REGISTRY.kinds())
    assert "trading_window" in info.value.message
    assert load_rules(migrated).rules == []
    assert [(a, t, r) for _, a, t, r in audit(migrated)] == [
        ("SaveComplianceRule", "restricted", "denied"),
        ("SaveComplianceRule", "hours", "denied"),
    ]


def test_load_rules_when_stored_params_broken_then_rule_fails_closed(migrated: Engine) -> None:
    with migrated.begin() as conn:
        conn.execute(
            insert(ComplianceRule.__table__).values(
                name="restricted", kind="restricted_list", params={"symbols": 42}, enabled=True
            )
        )

    loaded = load_rules(migrated)

    (rule,) = loaded.rules
    assert isinstance(rule, BrokenRule)
    assert "restricted" in loaded.problems[0]
    gate = RiskGate([Profile(account="acme")], loaded.rules)
    assert gate.check(order(), T0).reason == Reason.COMPLIANCE_ERROR


def test_set_rule_enabled_when_disabled_then_loaded_disabled(migrated: Engine) -> None:
    save_rule(migrated, name="washes", kind="wash_trade", params={}, actor="alice")

    assert set_rule_enabled(migrated, "washes", False, actor="bob")
    assert not set_rule_enabled(migrated, "missing", False, actor="bob")

    (rule,) = load_rules(migrated).rules
    assert not rule.enabled
    assert [row[3] for row in audit(migrated)] == ["ok", "ok", "denied"]


# --- alerts --------------------------------------------------------------------------------


def alert(n: int, account: str = "acme", **kw: Any) -> AlertRaised:
    fields = {"severity": "critical", "kind": "risk.max_order_qty", "message": f"breach {n}"}
    return AlertRaised(ts_event=T0 + n * 1_000_000_000, account=account, **{**fields, **kw})


def test_alerts_when_saved_then_unacknowledged_newest_first_until_acknowledged(
    migrated: Engine,
) -> None:
    ids = [save_alert(migrated, alert(n)) for n in range(3)]
    other = save_alert(migrated, alert(9, account="other", details={"count": "4"}))

    listed = unacknowledged_alerts(migrated)
    assert [a.id for a in listed] == [other, *reversed(ids)]
    assert (listed[0].message, listed[0].details) == ("breach 9", {"count": "4"})
    assert listed[0].created_at == datetime.fromtimestamp(T0 / 1e9 + 9, tz=UTC)
    assert [a.id for a in unacknowledged_alerts(migrated, account="acme", limit=2)] == [
        ids[2],
        ids[1],
    ]

    at = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert acknowledge_alert(migrated, ids[1], actor="bob", at=at)
    assert not acknowledge_alert(migrated, ids[1], actor="eve")
    with pytest.raises(CommandError):
        acknowledge_alert(migrated, ids[0], actor="")

    assert [a.id for a in unacknowledged_alerts(migrated, account="acme")] == [ids[2], ids[0]]
    acknowledged = get_alert(migrated, ids[1])
    assert acknowledged is not None
    assert (acknowledged.acknowledged_by, acknowledged.acknowledged_at) == ("bob", at)
    assert [row[3] for row in audit(migrated)] == ["ok", "denied"]


def test_alert_when_details_given_then_round_trip_as_json_and_none_as_null(
    migrated: Engine,
) -> None:
    details = {"limit": "100", "observed": "150.5", "note": 'naïve "quotes" [x=y]'}
    with_details = save_alert(migrated, alert(1, details=details))
    without = save_alert(migrated, alert(2))

    listed = {a.id: a for a in alerts(migrated, open_only=False, limit=10)}

    assert (listed[with_details].message, listed[with_details].details) == ("breach 1", details)
    assert (listed[without].message, listed[without].details) == ("breach 2", {})
    t = Alert.__table__.c
    with migrated.connect() as conn:
        stored = {row.id: row.details for row in conn.execute(select(t.id, t.details))}
    assert stored == {with_details: details, without: None}  # SQL NULL, not JSON null


def test_alerts_when_listed_then_open_or_all_newest_first_within_limit(migrated: Engine) -> None:
    ids = [save_alert(migrated, alert(n, account="acme" if n % 2 else "other")) for n in range(5)]
    acknowledge_alert(migrated, ids[3], actor="bob")
    acknowledge_alert(migrated, ids[0], actor="bob")

    def listed(**kw: Any) -> list[int]:
        return [a.id for a in alerts(migrated, **kw)]

    assert listed(open_only=False, limit=10) == ids[::-1]
    assert listed(open_only=True, limit=10) == [ids[4], ids[2], ids[1]]
    assert listed(open_only=False, limit=2) == [ids[4], ids[3]]
    assert listed(open_only=False, limit=10, account="acme") == [ids[3], ids[1]]
    assert listed(open_only=True, limit=10, account="acme") == [ids[1]]
    assert listed(open_only=True, limit=0) == []
    assert [a.id for a in unacknowledged_alerts(migrated)] == listed(open_only=True, limit=10)
    with pytest.raises(CommandError) as info:
        alerts(migrated, open_only=True, limit=-1)
    assert info.value.code == ErrorCode.INVALID


def test_acknowledge_alert_when_id_unknown_then_not_found_audited_and_nothing_changes(
    migrated: Engine,
) -> None:
    known = save_alert(migrated, alert(1))

    with pytest.raises(CommandError) as info:
        acknowledge_alert(migrated, known + 1000, actor="eve", command_id="cmd-9")

    assert info.value.code == ErrorCode.NOT_FOUND
    assert str(known + 1000) in info.value.message
    assert [a.id for a in unacknowledged_alerts(migrated)] == [known]
    assert get_alert(migrated, known + 1000) is None
    assert audit(migrated) == [("eve", "AcknowledgeAlert", str(known + 1000), "denied")]


def test_alerts_when_gate_raises_them_then_stored_as_they_come(migrated: Engine) -> None:
    gate = RiskGate([Profile(account="acme", max_order_qty=D(1))])
    gate.check(order(), T0)

    for _, event in gate.drain().events:
        if isinstance(event, AlertRaised):
            save_alert(migrated, event)

    (stored,) = unacknowledged_alerts(migrated)
    assert (stored.kind, stored.severity, stored.account) == (
        "risk.max_order_qty",
        "critical",
        "acme",
    )


# --- migration 0004 ------------------------------------------------------------------------


def test_downgrade_below_0004_when_rules_unstorable_then_refused_else_details_kept_in_message(
    migrated: Engine,
) -> None:
    params = {"windows": [{"start": "14:30", "end": "21:00"}]}
    save_rule(migrated, name="us-hours", kind="trading_window", params=params, actor="alice")
    save_alert(migrated, alert(1, details={"count": "4", "at": "x"}))
    save_alert(migrated, alert(2))

    with pytest.raises(RuntimeError, match=r"us-hours \(trading_window\).*delete them first"):
        downgrade(migrated, "0003")
    assert current_revision(migrated) == head_revision()  # nothing was downgraded

    with migrated.begin() as conn:
        conn.execute(delete(ComplianceRule.__table__))
    assert downgrade(migrated, "0003") == "0003"
    t = Alert.__table__.c
    with migrated.connect() as conn:
        messages = conn.execute(select(t.message).order_by(t.id)).scalars().all()
    assert messages == ["breach 1 [at=x, count=4]", "breach 2"]

    assert upgrade(migrated) == head_revision()
    assert [a.details for a in alerts(migrated, open_only=False, limit=10)] == [{}, {}]


# --- halts ---------------------------------------------------------------------------------


def state(scope: Any, key: str, value: Any, reason: str, ts: int = T0) -> RiskStateChanged:
    return RiskStateChanged(
        ts_event=ts, scope=scope, key=key, state=value, reason=reason, actor="ops", message="m"
    )


def test_load_halts_when_halted_resumed_and_runaway_then_only_those_in_force(
    migrated: Engine,
) -> None:
    for event in (
        state("account", "acme", "HALTED", "kill_switch", T0),
        state("symbol", "AAPL", "HALTED", "kill_switch", T0 + 1),
        state("symbol", "AAPL", "ACTIVE", "resumed", T0 + 2),
        state("algo", "twap-1", "HALTED", "runaway", T0 + 3),
        state("account", "other", "HALTED", "daily_loss", T0 + 4),  # recomputed, not stored
    ):
        record_state_change(migrated, event)

    halts = load_halts(migrated)

    assert [(h.record.scope, h.record.key, h.runaway) for h in halts] == [
        ("account", "acme", False),
        ("algo", "twap-1", True),
    ]
    gate = RiskGate([Profile(account="acme")])
    for halt in halts:
        gate.restore_halt(halt.record, runaway=halt.runaway)
    assert gate.check(order(), T0).reason == Reason.HALTED
    assert gate.drain().events[0][1].reason == Reason.HALTED
    assert {h.scope: h.key for h in gate.status(T0).disabled_algos} == {"algo": "twap-1"}

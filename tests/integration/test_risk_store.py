"""The risk store on a real SQLite file and a real PostgreSQL schema: profiles with
versions and audit entries, compliance rules that fail closed, alerts and their
acknowledgement, halts that survive a restart."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from conftest_db import db_fixture, migrated_fixture  # noqa: F401  (fixtures)
from sqlalchemy import Engine, insert, select

from engine.bus.events import AlertRaised, RiskStateChanged
from engine.errors import CommandError
from engine.persistence.models import AuditEntry, ComplianceRule, RiskProfile
from engine.risk import DEFAULT_PROFILE, Reason, RiskGate, RiskOrder, RiskProfileError
from engine.risk import RiskProfile as Profile
from engine.risk.profile import for_account
from engine.risk.rules import BrokenRule, RestrictedListRule
from engine.risk.store import (
    acknowledge_alert,
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
T0 = 1_700_000_000 * 1_000_000_000


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


def test_save_rule_when_params_bad_or_kind_not_storable_then_refused_and_audited(
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
    with pytest.raises(CommandError, match="trading_window"):
        save_rule(
            migrated,
            name="hours",
            kind="trading_window",
            params={"windows": [{"start": "14:30", "end": "21:00"}]},
            actor="alice",
        )

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
    assert listed[0].message == "breach 9 [count=4]"
    assert listed[0].created_at == datetime.fromtimestamp(T0 / 1e9 + 9, tz=UTC)
    assert [a.id for a in unacknowledged_alerts(migrated, account="acme", limit=2)] == [
        ids[2],
        ids[1],
    ]

    at = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert acknowledge_alert(migrated, ids[1], actor="bob", at=at)
    assert not acknowledge_alert(migrated, ids[1], actor="eve")
    assert not acknowledge_alert(migrated, 999_999, actor="eve")
    with pytest.raises(CommandError):
        acknowledge_alert(migrated, ids[0], actor="")

    assert [a.id for a in unacknowledged_alerts(migrated, account="acme")] == [ids[2], ids[0]]
    assert [row[3] for row in audit(migrated)] == ["ok", "denied", "denied"]


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

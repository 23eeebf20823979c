"""The Risk page rendered in-process by NiceGUI's simulated ``User``, against a fake bridge
that holds a real ``RiskBoard`` and sends through the real ``Bridge.act`` to a fake
control plane (which checks roles as the real one does): no sockets, no browser."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest
from nicegui import ui
from nicegui.testing import User, user_simulation

from app.client import QSuiteClient
from engine.bus.commands import Command, Result
from engine.bus.commands.base import ROLE_RANK
from engine.bus.commands.risk import (
    AccountStatus,
    AcknowledgeAlert,
    AlertAcknowledged,
    AlertRow,
    ComplianceRules,
    EnableComplianceRule,
    GetRiskProfile,
    HaltTrading,
    HaltView,
    LimitUsage,
    ListComplianceRules,
    ResumeTrading,
    RiskHaltSet,
    RiskProfileView,
    RiskStatus,
    RuleKind,
    RuleRow,
    SetComplianceRule,
    SetRiskProfile,
)
from engine.bus.events import OrderDenied
from engine.errors import CommandError, ErrorCode
from ui import session
from ui.bridge import Bridge
from ui.components import risk_actions
from ui.pages import risk
from ui.risk_state import RiskBoard
from ui.session import SessionUser

pytestmark = pytest.mark.timeout(30)

D = Decimal
LIMITS: dict[str, str | int | float | None] = {
    "max_order_qty": "10000",
    "price_collar_pct": 5.0,
    "daily_loss_limit": None,
    "warning_level": 0.8,
}


class FakeClient:
    """The control plane as far as the page needs it: role checks, canned answers."""

    expect = staticmethod(QSuiteClient.expect)

    def __init__(self) -> None:
        self.sent: list[tuple[Command, str, str]] = []
        self.rules = [
            RuleRow(
                name="restricted",
                kind="restricted_list",
                version=1,
                enabled=True,
                params='{"symbols": ["ZZZ"]}',
            )
        ]

    def mutations(self) -> list[Command]:
        return [c for c, _, _ in self.sent if c.mutating]

    async def send(self, command: Command, *, actor: str = "", role: str = "viewer") -> Result:
        self.sent.append((command, actor, role))
        name = type(command).__name__
        if ROLE_RANK[role] < ROLE_RANK[command.min_role]:
            raise CommandError(
                ErrorCode.FORBIDDEN,
                f"{name}.v1 needs role {command.min_role}; the caller acts as {role}",
            )
        if isinstance(command, HaltTrading | ResumeTrading):
            halted = isinstance(command, HaltTrading)
            what = command.key or "trading"
            return RiskHaltSet(
                scope=command.scope,
                key=command.key,
                state="HALTED" if halted else "ACTIVE",
                changed=True,
                cancels=[],
                message=f"{what} {'halted' if halted else 'resumed'}",
            )
        if isinstance(command, AcknowledgeAlert):
            return AlertAcknowledged(alert=alert(command.alert_id, "critical"), already=False)
        if isinstance(command, GetRiskProfile):
            return RiskProfileView(account=command.account, version=3, limits=LIMITS)
        if isinstance(command, SetRiskProfile):
            if command.changes.get("price_collar_pct") == "150":
                raise CommandError(
                    ErrorCode.INVALID,
                    f"risk profile {command.account}: price_collar_pct must be > 0 and <= 100, "
                    "not 150.0",
                )
            limits = LIMITS | dict(command.changes)
            return RiskProfileView(account=command.account, version=4, limits=limits)
        if isinstance(command, EnableComplianceRule):
            self.rules = [
                RuleRow(
                    name=r.name,
                    kind=r.kind,
                    version=r.version + 1,
                    enabled=command.enabled,
                    params=r.params,
                )
                for r in self.rules
            ]
        if isinstance(command, ListComplianceRules | EnableComplianceRule | SetComplianceRule):
            kind = RuleKind(
                kind="restricted_list",
                stage="pre",
                reason="restricted",
                description="symbols nobody may trade",
                params_schema="{}",
            )
            return ComplianceRules(rules=self.rules, kinds=[kind])
        raise AssertionError(f"unexpected {name}")


class FakeBridge:
    """Stands in for ``ui.bridge.Bridge``: a real ``RiskBoard`` and the real ``act``."""

    def __init__(self) -> None:
        self.risk = RiskBoard()
        self.client = FakeClient()

    act = Bridge.act


@pytest.fixture
def bridge() -> FakeBridge:
    return FakeBridge()


@pytest.fixture
def login(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    names = {"viewer": "vic", "operator": "olga", "admin": "ada"}

    def as_role(role: str) -> None:
        monkeypatch.setattr(session, "current_user", lambda: SessionUser(names[role], role))  # type: ignore[arg-type]

    return as_role


@pytest.fixture
async def user(bridge: FakeBridge, caplog: pytest.LogCaptureFixture) -> AsyncIterator[User]:
    async with user_simulation(lambda: risk.build(bridge)) as simulated:
        yield simulated
    errors = [r.getMessage() for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    assert not errors, f"the page logged errors: {errors}"


async def eventually(predicate: Callable[[], Any], timeout_s: float = 3.0) -> Any:
    for _ in range(int(timeout_s / 0.05)):
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("the page did not get there in time")


def only(user: User, marker: str) -> Any:
    (element,) = user.find(marker=marker).elements
    return element


async def sees(user: User, marker: str, text: str) -> None:
    """``text`` somewhere inside the element marked ``marker``."""
    for _ in range(60):
        with user.scope(marker=marker):
            if user._sees(text):
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{text!r} not in {marker}")


def alert(alert_id: int, severity: str, kind: str = "risk.kill_switch") -> AlertRow:
    return AlertRow(
        id=alert_id,
        severity=severity,  # type: ignore[arg-type]
        kind=kind,
        message=f"alert number {alert_id}",
        account="desk1",
        ts=1_700_000_000_000_000_000 + alert_id,
    )


def usage(limit: str, used: float) -> LimitUsage:
    return LimitUsage(limit=limit, limit_value=D(1000), observed=D(str(used * 1000)), usage=used)


def status(*, halted: bool = False) -> RiskStatus:
    return RiskStatus(
        ts=10,
        halts=[HaltView(scope="global", key="", actor="olga", reason="fat finger", since_ns=5)]
        if halted
        else [],
        disabled_algos=[],
        accounts=[
            AccountStatus(
                account="desk1",
                state="HALTED" if halted else "ACTIVE",
                state_reason="kill_switch" if halted else "",
                profile_version=3,
                day_pnl=D("-120.5"),
                realized_pnl=D(0),
                unrealized_pnl=D("-120.5"),
                gross_notional=D(900),
                working_orders=2,
                limits=[
                    usage("max_gross_notional", 0.85),
                    usage("daily_loss_limit", 1.2),
                    usage("max_orders_per_s", 0.1),
                ],
                alerts=[],
            )
        ],
        rules=[],
        counters={},
    )


def denial() -> OrderDenied:
    return OrderDenied(
        ts_event=1_700_000_000_000_000_000,
        account="desk1",
        symbol="AAA",
        client_order_id="o9",
        side="buy",
        qty=D(50_000),
        price=D("100.5"),
        reason="order_qty",
        limit="max_order_qty",
        limit_value=D(10_000),
        observed=D(50_000),
    )


async def test_risk_page_when_halted_then_states_usage_alerts_and_denials_shown(
    user: User, bridge: FakeBridge, login: Callable[[str], None]
) -> None:
    login("operator")
    bridge.risk.load_status(status(halted=True))
    bridge.risk.load_alerts([alert(7, "critical"), alert(8, "warning", "risk.near_limit")])
    bridge.risk.apply(denial())

    await user.open("/")

    await user.should_see(marker="risk-state", content="TRADING HALTED")
    assert only(user, "state-global").text == "HALTED"
    await sees(user, "scope-global", "fat finger")
    bars = {
        lim: only(user, f"bar-desk1-{lim}")
        for lim in ("max_gross_notional", "daily_loss_limit", "max_orders_per_s")
    }
    assert {k: b.props["color"] for k, b in bars.items()} == {
        "max_gross_notional": "warning",  # 85 % with the warning level at 80 %
        "daily_loss_limit": "negative",
        "max_orders_per_s": "positive",
    }
    with user.scope(marker="pinned-alerts"):
        await user.should_see("alert number 7")
        await user.should_not_see("alert number 8")
    await sees(user, "alerts", "alert number 8")
    table = only(user, "denials")
    assert [(r["symbol"], r["reason"], r["observed"]) for r in table.rows] == [
        ("AAA", "order_qty", "50000 / 10000")
    ]


async def test_risk_page_kill_switch_needs_confirmation_and_a_reason_then_sends_halt(
    user: User, bridge: FakeBridge, login: Callable[[str], None]
) -> None:
    login("operator")
    await user.open("/")
    dialog = only(user, "halt-confirm")
    while not isinstance(dialog, ui.dialog):
        dialog = dialog.parent_slot.parent
    assert not dialog.value

    user.find(marker="kill-switch").click()
    assert dialog.value  # asks first: nothing is sent by the button itself
    assert bridge.client.mutations() == []

    user.find(marker="halt-confirm").click()
    await user.should_see(marker="halt-message", content="A reason is required")
    only(user, "halt-scope").value = "account"
    user.find(marker="halt-reason").type("runaway desk")
    user.find(marker="halt-confirm").click()
    await user.should_see(marker="halt-message", content="Name the account")
    assert bridge.client.mutations() == []

    user.find(marker="halt-key").type("desk1")
    user.find(marker="halt-confirm").click()

    await eventually(lambda: not dialog.value)
    ((sent, actor, role),) = [s for s in bridge.client.sent if s[0].mutating]
    assert sent == HaltTrading(scope="account", key="desk1", reason="runaway desk")
    assert (actor, role) == ("olga", "operator")
    await user.should_see("desk1 halted")


async def test_risk_page_when_operator_then_no_resume_and_a_direct_resume_is_refused(
    user: User, bridge: FakeBridge, login: Callable[[str], None]
) -> None:
    login("operator")
    bridge.risk.load_status(status(halted=True))
    await user.open("/")
    await user.should_see(marker="state-global", content="HALTED")
    await user.should_not_see(marker="resume-global")

    ok, why = await risk_actions.resume(bridge, "global", "", "all clear")

    assert not ok
    assert why == "Not allowed: this needs the admin role; you are olga (operator)."
    assert bridge.client.mutations() == []


async def test_risk_page_when_admin_resumes_then_reason_required_and_resume_sent(
    user: User, bridge: FakeBridge, login: Callable[[str], None]
) -> None:
    login("admin")
    bridge.risk.load_status(status(halted=True))
    await user.open("/")

    user.find(marker="resume-global").click()
    user.find(marker="resume-confirm").click()
    await user.should_see(marker="resume-message", content="A reason is required")
    assert bridge.client.mutations() == []
    user.find(marker="resume-reason").type("all clear")
    user.find(marker="resume-confirm").click()

    await eventually(bridge.client.mutations)
    ((sent, actor, role),) = [s for s in bridge.client.sent if s[0].mutating]
    assert sent == ResumeTrading(scope="global", key="", reason="all clear")
    assert (actor, role) == ("ada", "admin")


async def test_risk_page_acknowledge_sends_it_and_the_pinned_alert_goes(
    user: User, bridge: FakeBridge, login: Callable[[str], None]
) -> None:
    login("operator")
    bridge.risk.load_alerts([alert(7, "critical")])
    await user.open("/")
    await sees(user, "pinned-alerts", "alert number 7")

    user.find(marker="ack-7").click()

    await user.should_see("Alert 7 acknowledged")
    assert bridge.client.mutations() == [AcknowledgeAlert(alert_id=7)]
    await user.should_not_see(marker="pinned-alerts")  # no critical alert left to pin
    await user.should_not_see("alert number 7")


async def test_risk_page_profile_edit_sends_only_changed_fields_and_shows_refusals(
    user: User, bridge: FakeBridge, login: Callable[[str], None]
) -> None:
    login("admin")
    await user.open("/")
    user.find(marker="profile-account").type("desk1")
    user.find(marker="profile-load").click()
    await user.should_see(marker="profile-version", content="version 3")
    assert only(user, "profile-daily_loss_limit").value == ""  # no limit

    user.find(marker="profile-max_order_qty").clear().type("500")
    user.find(marker="profile-price_collar_pct").clear()  # emptied: no limit
    user.find(marker="profile-save").click()

    await user.should_see(marker="profile-message", content="Saved desk1 version 4")
    assert bridge.client.mutations() == [
        SetRiskProfile(
            account="desk1",
            changes={"max_order_qty": "500", "price_collar_pct": None},
            expected_version=3,
        )
    ]

    user.find(marker="profile-daily_loss_limit").type("150")
    user.find(marker="profile-price_collar_pct").type("150")
    user.find(marker="profile-save").click()

    await user.should_see(marker="profile-message", content="price_collar_pct must be > 0")
    assert "text-negative" in only(user, "profile-message").classes
    assert bridge.client.mutations()[-1] == SetRiskProfile(
        account="desk1",
        changes={"daily_loss_limit": "150", "price_collar_pct": "150"},
        expected_version=4,
    )


async def test_risk_page_rules_when_admin_toggles_then_enable_sent_and_bad_json_refused(
    user: User, bridge: FakeBridge, login: Callable[[str], None]
) -> None:
    login("admin")
    await user.open("/")
    await sees(user, "rule-restricted", "enabled")

    user.find(marker="rule-toggle-restricted").click()
    await sees(user, "rule-restricted", "disabled")
    assert bridge.client.mutations() == [EnableComplianceRule(name="restricted", enabled=False)]

    user.find(marker="rule-edit-restricted").click()
    assert only(user, "rule-name").value == "restricted"
    only(user, "rule-params").value = '{"symbols": '
    user.find(marker="rule-save").click()
    await user.should_see(marker="rules-message", content="Parameters are not JSON")
    assert len(bridge.client.mutations()) == 1


async def test_risk_page_when_viewer_then_everything_shown_no_controls_and_handlers_refuse(
    user: User, bridge: FakeBridge, login: Callable[[str], None]
) -> None:
    login("viewer")
    bridge.risk.load_status(status(halted=True))
    bridge.risk.load_alerts([alert(7, "critical")])
    await user.open("/")

    await sees(user, "pinned-alerts", "alert number 7")
    await sees(user, "rule-restricted", "restricted_list")  # reads work
    for control in (
        "kill-switch",
        "halt-confirm",
        "ack-7",
        "resume-global",
        "profile-save",
        "rule-toggle-restricted",
        "rule-save",
    ):
        await user.should_not_see(marker=control)
    user.find(marker="profile-account").type("desk1")
    user.find(marker="profile-load").click()
    await user.should_see(marker="profile-version", content="version 3")
    assert only(user, "profile-max_order_qty").props.get("readonly") is True

    refusals = [
        await risk_actions.halt(bridge, "global", "", "just looking"),
        await risk_actions.acknowledge(bridge, 7),
        await risk_actions.enable_rule(bridge, "restricted", False),
    ]

    assert all(result in (False, None) for result, _ in refusals)
    assert all("this needs the" in why and "vic (viewer)" in why for _, why in refusals)
    assert bridge.client.mutations() == []


@pytest.mark.parametrize(
    ("scope", "key", "reason", "problem"),
    [
        ("global", "", "", "A reason is required"),
        ("global", "", "   ", "A reason is required"),
        ("symbol", " ", "fat finger", "Name the symbol"),
        ("planet", "", "why", "Scope must be one of"),
        ("global", "", "x" * 501, "longer than 500"),
    ],
)
def test_check_halt_when_incomplete_then_names_the_problem(
    scope: str, key: str, reason: str, problem: str
) -> None:
    (said,) = risk_actions.check_halt(scope, key, reason)
    assert problem in said


def test_profile_changes_when_fields_edited_then_only_those_and_empty_means_no_limit() -> None:
    shown = {"max_order_qty": "10000", "price_collar_pct": "5.0", "daily_loss_limit": ""}
    edited = {"max_order_qty": " 10000 ", "price_collar_pct": "", "daily_loss_limit": "2500"}
    assert risk_actions.profile_changes(shown, edited) == {
        "price_collar_pct": None,
        "daily_loss_limit": "2500",
    }


def test_shown_limits_when_no_profile_then_the_defaults_it_would_start_from() -> None:
    shown = risk_actions.shown_limits(RiskProfileView(account="new", version=0, limits={}))
    assert shown["max_order_qty"] == "10000" and shown["warning_level"] == "0.8"
    assert "account" not in shown and "version" not in shown

"""``qsuite ctl risk …``: arguments → commands, and the status and alert tables."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.cli import build_parser
from app.ctl import VERBS, render
from engine.bus.commands.risk import (
    AccountStatus,
    AcknowledgeAlert,
    AlertList,
    AlertRow,
    EnableComplianceRule,
    GetRiskProfile,
    GetRiskStatus,
    HaltTrading,
    HaltView,
    LimitUsage,
    ListAlerts,
    ListComplianceRules,
    ResumeTrading,
    RiskStatus,
    SetComplianceRule,
    SetRiskProfile,
)

D = Decimal
NS = 1_700_000_000 * 10**9


def command(*argv: str) -> object:
    args = build_parser().parse_args(["ctl", *argv])
    built, process = VERBS[args.verb].build(args)
    assert process is None
    return built


def test_risk_halt_when_no_scope_then_global() -> None:
    assert command("risk", "halt", "--reason", "drill", "--command-id", "k") == HaltTrading(
        scope="global", key="", reason="drill", command_id="k"
    )


def test_risk_halt_and_resume_when_scoped_then_scope_and_key() -> None:
    assert command("risk", "halt", "symbol", "AAPL", "--reason", "news") == HaltTrading(
        scope="symbol", key="AAPL", reason="news"
    )
    assert command("risk", "resume", "algo", "twap-1", "--reason", "fixed") == ResumeTrading(
        scope="algo", key="twap-1", reason="fixed"
    )


def test_risk_halt_when_no_reason_then_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        command("risk", "halt", "account", "desk1")

    assert "--reason" in capsys.readouterr().err


def test_risk_status_alerts_ack_then_commands() -> None:
    assert command("risk", "status", "--account", "desk1") == GetRiskStatus(account="desk1")
    assert command("risk", "alerts", "--all", "--limit", "5") == ListAlerts(
        open_only=False, limit=5
    )
    assert command("risk", "ack", "42") == AcknowledgeAlert(alert_id=42)


def test_risk_profile_when_set_then_edit_else_show() -> None:
    edit = ["--set", "max_order_qty=500", "--set", "daily_loss_limit = none"]

    built = command("risk", "profile", "desk1", *edit, "--expected-version", "3")

    assert built == SetRiskProfile(
        account="desk1",
        changes={"max_order_qty": "500", "daily_loss_limit": "none"},
        expected_version=3,
    )
    assert command("risk", "profile", "desk1") == GetRiskProfile(account="desk1")


def test_risk_profile_when_set_not_an_assignment_then_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        command("risk", "profile", "desk1", "--set", "max_order_qty")

    assert "is not like max_order_qty=500" in capsys.readouterr().err


def test_risk_rule_when_kind_then_set_else_enable_or_disable() -> None:
    params = '{"symbols": ["XYZ"]}'

    assert command(
        "risk", "rule", "restricted", "--kind", "restricted_list", "--params", params
    ) == SetComplianceRule(name="restricted", kind="restricted_list", params=params)
    assert command("risk", "rule", "restricted", "--disable") == EnableComplianceRule(
        name="restricted", enabled=False
    )
    assert command("risk", "rules") == ListComplianceRules()
    with pytest.raises(SystemExit, match="give --kind"):
        command("risk", "rule", "restricted")


def test_render_risk_status_when_halted_then_halt_accounts_and_usage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = RiskStatus(
        ts=NS,
        halts=[HaltView(scope="symbol", key="AAPL", actor="ops", reason="news", since_ns=NS)],
        disabled_algos=[],
        accounts=[
            AccountStatus(
                account="desk1",
                state="REDUCING",
                state_reason="daily_loss",
                profile_version=2,
                day_pnl=D(-850),
                realized_pnl=D(-800),
                unrealized_pnl=D(-50),
                gross_notional=D(12000),
                working_orders=1,
                limits=[
                    LimitUsage(
                        limit="daily_loss_limit",
                        limit_value=D(1000),
                        observed=D(850),
                        usage=0.85,
                    )
                ],
                alerts=[],
            )
        ],
        rules=[],
        counters={"checks": 10, "allowed": 8, "denied": 2},
        unacknowledged=3,
    )

    render(status)

    out = capsys.readouterr().out
    assert "HALTED symbol AAPL since 2023-11-14 22:13 by ops: news" in out
    assert "REDUCING (daily_loss)" in out
    assert "daily_loss_limit" in out and "85%" in out
    assert "denied: 2; unacknowledged alerts: 3 (qsuite ctl risk alerts)" in out


def test_render_alerts_then_one_row_each(capsys: pytest.CaptureFixture[str]) -> None:
    render(
        AlertList(
            alerts=[
                AlertRow(
                    id=7,
                    severity="critical",
                    kind="risk.max_order_qty",
                    message="Denied buy 101 AAPL",
                    account="desk1",
                    ts=NS,
                )
            ]
        )
    )

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["ID", "RAISED", "SEVERITY", "KIND"]
    assert lines[1].startswith("7") and "CRITICAL" in lines[1] and "Denied buy 101" in lines[1]

"""The Risk page's view state: trading-state rules, the snapshot with later events on top,
bounded lists, and the fetches of ``RiskBoard.sync`` (a fake client, a fake clock)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from app.client import QSuiteClient
from engine.bus.commands import Command, Result
from engine.bus.commands.risk import (
    AccountStatus,
    AlertList,
    AlertRow,
    GetRiskProfile,
    GetRiskStatus,
    HaltView,
    ListAlerts,
    RiskProfileView,
    RiskStatus,
)
from engine.bus.events import AlertRaised, OrderDenied, RiskStateChanged
from engine.errors import EngineUnreachable
from ui.risk_state import (
    ALERTS_EVERY_S,
    DEFAULT_WARNING_LEVEL,
    MAX_ALERTS,
    MAX_CHANGES,
    MAX_DENIALS,
    MAX_LIVE_ALERTS,
    STATUS_EVERY_S,
    RiskBoard,
)

D = Decimal


def change(scope: Any, key: str, state: Any, ts: int = 1, reason: str = "kill_switch") -> Any:
    return RiskStateChanged(
        ts_event=ts, scope=scope, key=key, state=state, reason=reason, actor="olga", message="m"
    )


def account(name: str, state: str = "ACTIVE", reason: str = "") -> AccountStatus:
    return AccountStatus(
        account=name,
        state=state,  # type: ignore[arg-type]
        state_reason=reason,
        profile_version=1,
        day_pnl=D(0),
        realized_pnl=D(0),
        unrealized_pnl=D(0),
        gross_notional=D(0),
        working_orders=0,
        limits=[],
        alerts=[],
    )


def halt(scope: str, key: str = "") -> HaltView:
    return HaltView(scope=scope, key=key, actor="olga", reason="fat finger", since_ns=5)  # type: ignore[arg-type]


def status(ts: int, halts: list[HaltView], accounts: list[AccountStatus]) -> RiskStatus:
    return RiskStatus(
        ts=ts, halts=halts, disabled_algos=[], accounts=accounts, rules=[], counters={}
    )


def row(alert_id: int, severity: str = "warning", ts: int = 0, kind: str = "risk.x") -> AlertRow:
    return AlertRow(
        id=alert_id,
        severity=severity,  # type: ignore[arg-type]
        kind=kind,
        message=f"alert {alert_id}",
        ts=ts or alert_id,
    )


def raised(kind: str = "risk.x", message: str = "m", severity: str = "warning") -> AlertRaised:
    return AlertRaised(ts_event=1, severity=severity, kind=kind, message=message)  # type: ignore[arg-type]


def denied(cid: str) -> OrderDenied:
    return OrderDenied(
        ts_event=1,
        account="desk1",
        symbol="AAA",
        client_order_id=cid,
        side="buy",
        qty=D(1),
        reason="order_qty",
    )


def test_trading_state_when_nothing_happened_then_active() -> None:
    assert RiskBoard().trading_state == "ACTIVE"


def test_trading_state_when_an_account_reduces_then_reducing() -> None:
    board = RiskBoard()
    board.apply(change("account", "desk1", "REDUCING", reason="daily_loss"))
    assert board.trading_state == "REDUCING"


def test_trading_state_when_global_halt_then_halted_and_resume_falls_back_to_accounts() -> None:
    board = RiskBoard()
    board.apply(change("account", "desk1", "REDUCING", ts=1, reason="daily_loss"))
    board.apply(change("global", "", "HALTED", ts=2))
    assert board.trading_state == "HALTED"

    board.apply(change("global", "", "ACTIVE", ts=3, reason="resumed"))

    assert board.trading_state == "REDUCING"
    assert set(board.scopes) == {("account", "desk1")}


def test_trading_state_when_only_a_symbol_or_algo_halted_then_still_active() -> None:
    board = RiskBoard()
    board.apply(change("symbol", "AAA", "HALTED"))
    board.apply(change("algo", "a-1", "HALTED", reason="runaway"))

    assert board.trading_state == "ACTIVE"
    assert board.scopes[("symbol", "AAA")].actor == "olga"
    assert set(board.scopes) == {("symbol", "AAA"), ("algo", "a-1")}


def test_load_status_when_halts_and_accounts_then_scopes_and_state() -> None:
    board = RiskBoard()
    board.load_status(
        status(
            10,
            [halt("account", "desk2"), halt("symbol", "AAA")],
            [account("desk1", "REDUCING", "daily_loss"), account("desk2", "HALTED", "kill_switch")],
        )
    )

    assert board.trading_state == "HALTED"
    assert board.scopes[("account", "desk1")].state == "REDUCING"
    assert board.scopes[("account", "desk2")].reason == "kill_switch"
    assert board.scopes[("symbol", "AAA")].message == "fat finger"


def test_load_status_when_accounts_halted_by_the_global_halt_then_resume_clears_them() -> None:
    board = RiskBoard()
    board.load_status(status(10, [halt("global")], [account("desk1", "HALTED", "kill_switch")]))
    assert board.trading_state == "HALTED"

    board.apply(change("global", "", "ACTIVE", ts=11, reason="resumed"))

    assert board.trading_state == "ACTIVE"  # not stuck HALTED until the next snapshot


def test_load_status_when_events_newer_than_the_snapshot_then_they_stay_applied() -> None:
    board = RiskBoard()
    board.apply(change("global", "", "HALTED", ts=5))
    board.apply(change("global", "", "ACTIVE", ts=20, reason="resumed"))  # before the reply

    board.load_status(status(10, [halt("global")], []))  # taken at 10, between the two

    assert board.trading_state == "ACTIVE"


def test_load_status_when_older_than_the_one_held_then_ignored() -> None:
    board = RiskBoard()
    board.load_status(status(10, [], []))
    board.load_status(status(5, [halt("global")], []))
    assert board.trading_state == "ACTIVE" and board.status is not None
    assert board.status.ts == 10


def test_apply_when_an_event_older_than_the_snapshot_then_not_applied_again() -> None:
    board = RiskBoard()
    board.load_status(status(10, [], []))
    board.apply(change("global", "", "HALTED", ts=8))  # late; the snapshot already has it
    assert board.trading_state == "ACTIVE"


def test_denials_and_changes_when_many_then_only_the_latest_kept() -> None:
    board = RiskBoard()
    for i in range(MAX_DENIALS + 10):
        board.apply(denied(f"o{i}"))
    for i in range(MAX_CHANGES + 10):
        board.apply(change("symbol", f"S{i}", "HALTED", ts=i + 1))

    assert len(board.denials) == MAX_DENIALS
    assert board.denials[0].client_order_id == "o10"
    assert board.denials[-1].client_order_id == f"o{MAX_DENIALS + 9}"
    assert len(board.changes) == MAX_CHANGES


def test_live_alerts_when_many_then_bounded_and_a_fetch_is_due() -> None:
    board = RiskBoard(clock=lambda: 100.0)
    board._next["alerts"] = 1e9
    for i in range(MAX_LIVE_ALERTS + 5):
        board.apply(raised(message=f"m{i}"))

    assert len(board.live_alerts) == MAX_LIVE_ALERTS
    assert board._next["alerts"] == 0.0  # the next sync fetches their stored rows


def test_load_alerts_when_window_full_then_older_critical_ones_stay() -> None:
    board = RiskBoard()
    board.load_alerts([row(1, "critical", ts=1), row(2, "warning", ts=2)])

    board.load_alerts([row(1000 + i, ts=100 + i) for i in range(MAX_ALERTS)])

    assert 1 in board.alerts  # beyond the window, never acknowledged: still pinned
    assert 2 not in board.alerts


def test_load_alerts_when_a_critical_one_is_missing_from_a_partial_list_then_dropped() -> None:
    board = RiskBoard()
    board.load_alerts([row(1, "critical"), row(2)])
    board.load_alerts([row(2)])  # acknowledged elsewhere (the CLI)
    assert set(board.alerts) == {2}


def test_load_alerts_when_the_live_alert_is_listed_then_it_goes() -> None:
    board = RiskBoard()
    board.apply(raised(kind="risk.a", message="alert 1"))
    asked = board.asking_alerts()
    board.apply(raised(kind="risk.b", message="later"))

    board.load_alerts([row(1, kind="risk.a")], asked)

    assert [a.kind for _, a in board.live_alerts] == ["risk.b"]


def test_load_alerts_when_never_listed_then_gone_after_two_lists() -> None:
    board = RiskBoard()
    board.apply(raised(kind="risk.lost"))
    board.load_alerts([], board.asking_alerts())
    assert len(board.live_alerts) == 1  # maybe not stored yet: one more list
    board.load_alerts([], board.asking_alerts())
    assert len(board.live_alerts) == 0


def test_acknowledged_when_known_then_removed() -> None:
    board = RiskBoard()
    board.load_alerts([row(7, "critical")])
    version = board.alerts_version
    board.acknowledged(7)
    assert board.alerts == {} and board.alerts_version == version + 1


def test_warning_level_when_profile_known_then_its_level() -> None:
    board = RiskBoard()
    assert board.warning_level("desk1") == DEFAULT_WARNING_LEVEL
    board.load_profile(RiskProfileView(account="desk1", version=2, limits={"warning_level": 0.6}))
    assert board.warning_level("desk1") == 0.6


class FakeClient:
    expect = staticmethod(QSuiteClient.expect)

    def __init__(self) -> None:
        self.sent: list[Command] = []
        self.down = False

    async def send(self, command: Command, **_as_user: Any) -> Result:
        self.sent.append(command)
        if self.down:
            raise EngineUnreachable("ipc:///tmp/qs/execution", 3, 2500)
        if isinstance(command, GetRiskStatus):
            return status(10, [halt("global")], [account("desk1", "HALTED", "kill_switch")])
        if isinstance(command, ListAlerts):
            return AlertList(alerts=[row(3, "critical")])
        assert isinstance(command, GetRiskProfile)
        return RiskProfileView(account=command.account, version=1, limits={"warning_level": 0.5})


class FakeBridge:
    def __init__(self) -> None:
        self.client = FakeClient()


async def test_sync_when_due_then_fetches_status_alerts_and_profiles_once() -> None:
    now = [1000.0]
    board, bridge = RiskBoard(clock=lambda: now[0]), FakeBridge()

    await board.sync(bridge)
    await board.sync(bridge)  # nothing due yet

    kinds = [type(c).__name__ for c in bridge.client.sent]
    assert kinds == ["GetRiskStatus", "ListAlerts", "GetRiskProfile"]
    assert board.trading_state == "HALTED" and set(board.alerts) == {3}
    assert board.warning_level("desk1") == 0.5 and board.error == ""

    now[0] += max(STATUS_EVERY_S, ALERTS_EVERY_S)
    await board.sync(bridge)
    assert [type(c).__name__ for c in bridge.client.sent[3:]] == ["GetRiskStatus", "ListAlerts"]


async def test_sync_when_engine_unreachable_then_says_why_and_retries_later() -> None:
    now = [1000.0]
    board, bridge = RiskBoard(clock=lambda: now[0]), FakeBridge()
    bridge.client.down = True

    await board.sync(bridge)

    assert "Cannot load the risk status: Engine unreachable" in board.error
    bridge.client.down = False
    board.refresh_soon()
    await board.sync(bridge)
    assert board.error == "" and board.trading_state == "HALTED"


@pytest.mark.parametrize("state", ["ACTIVE", "REDUCING", "HALTED"])
def test_trading_state_when_one_account_then_its_state(state: str) -> None:
    board = RiskBoard()
    board.apply(change("account", "desk1", state, reason="daily_loss"))
    assert board.trading_state == state

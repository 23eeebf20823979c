"""Login, the page guard, session expiry, role checks in the handler and the audit log:
the console's real ``/login`` and guarded pages rendered in-process by NiceGUI's simulated
``User``, against a fake bridge and users on an SQLite file (no sockets, no browser)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from audit_log import audit_rows
from nicegui import ui
from nicegui.testing import User, user_simulation
from sqlalchemy import Engine

from app.client import QSuiteClient
from app.database import make_engine, upgrade
from app.login_guard import LoginGuard
from app.users import UserStore
from engine.bus.commands import Command, Result
from engine.bus.commands.orders import OrderAck, SubmitOrder
from ui import main, session
from ui.bridge import Bridge
from ui.pages import login, trading
from ui.session import Accounts, SessionUser
from ui.trading_state import TradingView

pytestmark = pytest.mark.timeout(30)

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
TIMEOUT_MIN = 30


class FakeClient:
    """The control client: acknowledges every order (the control plane's role check is
    tested in the engine; here the console's own check must stop a viewer first)."""

    role = "viewer"
    expect = staticmethod(QSuiteClient.expect)

    def __init__(self) -> None:
        self.sent: list[tuple[Command, dict[str, Any]]] = []

    async def send(self, command: Command, **as_user: Any) -> Result:
        self.sent.append((command, as_user))
        return OrderAck(
            client_order_id="man-1", request_id="man-1", request="new", status="pending_new"
        )


class FakeBridge:
    def __init__(self) -> None:
        self.trading = TradingView()
        self.sync_error = ""
        self.client = FakeClient()

    def symbols(self) -> list[str]:
        return ["AAA"]

    def watch(self, symbol: str) -> None:
        pass

    async def sync(self, symbols: Iterable[str] = ()) -> None:
        pass

    def status(self) -> tuple[str, str, str]:
        return "", "SIMULATED", "ACTIVE"

    act = Bridge.act
    submit_order = Bridge.submit_order


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(name="engine")
def engine_fixture(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'console.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> UserStore:
    return UserStore(engine, FAST)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(session, "clock", clock)
    return clock


@pytest.fixture
def accounts(store: UserStore, clock: Clock) -> Iterator[Accounts]:
    accounts = Accounts(store=store, timeout_min=TIMEOUT_MIN)
    session.configure(accounts)
    yield accounts
    session.configure(None)


@pytest.fixture
def bridge() -> FakeBridge:
    return FakeBridge()


@pytest.fixture
async def user(
    bridge: FakeBridge, accounts: Accounts, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[User]:
    def dashboard() -> None:
        ui.label("dashboard").mark("dashboard")

    async with user_simulation(lambda: ui.label("no such page")) as simulated:
        login.register()  # the console's pages as ui.main.register adds them
        main._register("/trading", lambda: trading.build(bridge), bridge)
        main._register("/", dashboard, bridge)
        yield simulated
    errors = [r.getMessage() for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    assert not errors, f"the pages logged errors: {errors}"


async def audited(engine: Engine, rows: int) -> None:
    """Wait (up to 5 s) until the audit log has ``rows`` rows."""
    for _ in range(500):
        if len(audit_rows(engine)) >= rows:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the audit log never got {rows} rows: {audit_rows(engine)}")


async def log_in(user: User, name: str, password: str) -> None:
    user.find(marker="login-name").type(name)
    user.find(marker="login-password").type(password)
    user.find(marker="login-submit").click()


async def send_order(user: User) -> None:
    user.find(marker="ticket-qty").type("5")
    user.find(marker="ticket-price").type("99.5")
    user.find(marker="ticket-send").click()


async def test_page_when_not_logged_in_then_login_page_that_returns_there(
    user: User, store: UserStore
) -> None:
    store.add("olga", "operator", "correct horse")

    await user.open("/trading")

    await user.should_see(marker="login-name")
    await user.should_not_see(marker="ticket-send")
    await user.should_not_see(marker="first-admin")
    await log_in(user, "olga", "correct horse")
    await user.should_see(marker="ticket-send")  # back on the page asked for
    await user.should_see("olga (operator)")


async def test_login_when_password_wrong_then_says_so_and_stays(
    user: User, store: UserStore, engine: Engine
) -> None:
    store.add("olga", "operator", "correct horse")
    await user.open("/trading")

    await log_in(user, "olga", "wrong horse")

    await user.should_see(login.REFUSED)
    await user.should_not_see(marker="ticket-send")
    assert audit_rows(engine) == [("olga", "login", None, "denied", "wrong password")]


async def test_login_when_user_disabled_then_refused_like_a_wrong_password(
    user: User, store: UserStore
) -> None:
    store.add("vic", "viewer", "correct horse")
    store.disable("vic")
    await user.open("/login")

    await log_in(user, "vic", "correct horse")

    await user.should_see(login.REFUSED)


async def test_login_when_no_users_then_says_how_to_create_the_first_admin(user: User) -> None:
    await user.open("/")

    await user.should_see(marker="first-admin")
    await user.should_see(login.FIRST_ADMIN)


async def test_login_when_next_is_another_site_then_goes_home_instead(
    user: User, store: UserStore
) -> None:
    store.add("olga", "operator", "correct horse")
    await user.open("/login?next=//evil.example/x")

    await log_in(user, "olga", "correct horse")

    await user.should_see(marker="dashboard")
    assert login.safe_next("https://evil.example") == "/"
    assert login.safe_next("/trading?symbol=AAA") == "/trading?symbol=AAA"
    assert login.safe_next("/logout") == "/"


async def test_order_when_viewer_then_refused_in_the_handler_nothing_sent_and_audited(
    user: User, store: UserStore, bridge: FakeBridge, engine: Engine
) -> None:
    store.add("vic", "viewer", "correct horse")
    await user.open("/trading")
    await log_in(user, "vic", "correct horse")
    await user.should_see(marker="ticket-send")

    await send_order(user)

    await user.should_see("this needs the operator role; you are vic (viewer)")
    # the handler itself refuses, whatever the page shows: call it directly too
    with user:
        ack, problem = await bridge.act(
            SubmitOrder(account="desk1", symbol="AAA", side="buy", qty=Decimal(1)), OrderAck
        )
    assert ack is None and "this needs the operator role" in problem
    assert bridge.client.sent == []
    denied = [r for r in audit_rows(engine) if r[1] == "SubmitOrder.v1"]
    assert len(denied) == 2
    assert all(r[:4] == ("vic", "SubmitOrder.v1", "AAA", "denied") for r in denied)


async def test_order_when_operator_then_sent_as_that_user_and_audited(
    user: User, store: UserStore, bridge: FakeBridge, engine: Engine
) -> None:
    store.add("olga", "operator", "correct horse")
    await user.open("/trading")
    await log_in(user, "olga", "correct horse")
    await user.should_see(marker="ticket-send")

    await send_order(user)

    await user.should_see("Sent man-1 (pending_new)")
    ((order, as_user),) = bridge.client.sent
    assert isinstance(order, SubmitOrder) and as_user == {"actor": "olga", "role": "operator"}
    assert audit_rows(engine) == [
        ("olga", "login", None, "ok", "role operator"),
        ("olga", "SubmitOrder.v1", "man-1", "ok", None),
    ]


async def test_session_when_idle_past_the_timeout_then_back_to_login_and_actions_refused(
    user: User, store: UserStore, clock: Clock, bridge: FakeBridge
) -> None:
    store.add("olga", "operator", "correct horse")
    await user.open("/trading")
    await log_in(user, "olga", "correct horse")
    await user.should_see(marker="ticket-send")

    clock.now += TIMEOUT_MIN * 60 - 1  # still inside: an action renews it
    with user:
        assert await session.confirm() == SessionUser("olga", "operator")
    clock.now += TIMEOUT_MIN * 60 - 1
    with user:
        assert session.current_user() == SessionUser("olga", "operator")

    clock.now += 2  # idle for the whole timeout
    await send_order(user)
    await user.should_see("Not allowed: log in first")
    assert bridge.client.sent == []
    await user.open("/trading")
    await user.should_see(marker="login-expired")
    await user.should_see(marker="login-name")
    await user.should_not_see(marker="ticket-send")


async def test_session_when_it_expires_in_an_open_tab_then_the_tab_goes_to_login(
    user: User, store: UserStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(main, "EXPIRY_CHECK_S", 0.05)
    store.add("olga", "operator", "correct horse")
    await user.open("/trading")
    await log_in(user, "olga", "correct horse")
    await user.should_see(marker="ticket-send")

    clock.now += TIMEOUT_MIN * 60 + 1

    await user.should_see(marker="login-expired")
    await user.should_see(marker="login-name")


async def test_session_when_user_disabled_meanwhile_then_ended_at_the_next_check(
    user: User, store: UserStore, accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.add("olga", "operator", "correct horse")
    await user.open("/trading")
    await log_in(user, "olga", "correct horse")
    await user.should_see(marker="ticket-send")

    store.disable("olga")
    monkeypatch.setattr(session, "RECHECK_S", 0.0)  # the console asks the database again

    await user.open("/trading")
    await user.should_see(marker="login-name")


async def test_logout_when_logged_in_then_session_gone_and_audited(
    user: User, store: UserStore, engine: Engine
) -> None:
    store.add("olga", "operator", "correct horse")
    await user.open("/login")
    await log_in(user, "olga", "correct horse")
    await user.should_see(marker="dashboard")

    await user.open("/logout")

    await user.should_see(marker="login-name")
    await user.open("/trading")
    await user.should_see(marker="login-name")
    assert [r[1:4] for r in audit_rows(engine)] == [
        ("login", None, "ok"),
        ("logout", None, "ok"),
    ]


async def test_login_when_name_keeps_failing_then_locked_out_even_with_the_right_password(
    user: User, store: UserStore, accounts: Accounts, engine: Engine
) -> None:
    store.add("olga", "operator", "correct horse")
    now = [0.0]
    accounts.guard = LoginGuard(2, 30.0, clock=lambda: now[0])
    await user.open("/login")

    for attempt in range(1, 3):
        await log_in(user, "olga", "wrong horse")
        await audited(engine, attempt)  # this attempt is over
        await user.should_see(login.REFUSED)
        user.find(marker="login-name").clear()
    await log_in(user, "olga", "correct horse")

    await user.should_see("Too many failed logins as olga; try again in 30 s.")
    await user.should_not_see("olga (operator)")
    assert [row[3:] for row in audit_rows(engine)] == [
        ("denied", "wrong password"),
        ("denied", "wrong password"),
        ("denied", "locked out"),
    ]
    now[0] = 31.0
    user.find(marker="login-name").clear()
    await log_in(user, "olga", "correct horse")
    await user.should_see("dashboard")

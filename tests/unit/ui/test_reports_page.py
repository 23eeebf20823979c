"""The Reports page rendered in-process by NiceGUI's simulated ``User``: the account's
performance from a fake scheduler (its real ``Bridge.act``, checking roles as the control
plane does), and backtests over bars stored in a test database, run in a thread
(``backtest_runs.in_thread``, the worker's own code without the process)."""

from __future__ import annotations

import asyncio
import logging
import math
import pickle
import random
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from audit_log import audit_payloads, audit_rows
from nicegui.testing import User, user_simulation
from sqlalchemy import Engine

from app import database
from app.client import QSuiteClient
from app.settings import Settings, load_settings
from app.users import UserStore
from engine.bus.commands import Command, Result
from engine.bus.commands.analytics import (
    AccountPerformance,
    GetPerformance,
    PerformanceFigures,
    SnapshotRow,
)
from engine.bus.commands.base import ROLE_RANK
from engine.bus.commands.orders import PositionRow
from engine.errors import CommandError, EngineUnreachable, ErrorCode
from engine.persistence.bars import BarRow, upsert_bars
from ui import backtest_runs, session
from ui.backtest_runs import BacktestRequest, BacktestSummary
from ui.bridge import Bridge
from ui.components import backtest_form
from ui.components.backtest_form import check_backtest
from ui.pages import reports
from ui.session import SessionUser
from ui.trading_state import TradingView

pytestmark = pytest.mark.timeout(60)

NS = 1_000_000_000
DAY = 86_400 * NS
T0 = 1_577_836_800 * NS  # 2020-01-01 UTC
D = Decimal


def snapshot(i: int, pnl: str, account: str = "desk1") -> SnapshotRow:
    return SnapshotRow(
        ts=T0 + i * 300 * NS,
        account=account,
        realized_pnl=D(0),
        unrealized_pnl=D(pnl),
        total_pnl=D(pnl),
        gross_exposure=D(50_000),
        net_exposure=D(50_000),
        positions=1,
        fills=2,
        marks_missing=0,
    )


FIGURES = PerformanceFigures(
    start_ts=T0,
    end_ts=T0 + 600 * NS,
    points=3,
    periods_per_year=105_120.0,
    initial_equity=1_000_000.0,
    final_equity=1_001_500.0,
    pnl=D("1500.00"),
    total_return=0.0015,
    annualized_return=0.42,
    annualized_volatility=0.1,
    sharpe=1.25,
    sortino=2.5,
    calmar=None,
    max_drawdown=0.0005,
    max_drawdown_start_ts=T0 + 300 * NS,
    max_drawdown_trough_ts=T0 + 300 * NS,
    max_drawdown_end_ts=T0 + 600 * NS,
    max_drawdown_duration_s=300.0,
    max_drawdown_recovered=True,
)


class FakeClient:
    """The scheduler as far as the page needs it."""

    expect = staticmethod(QSuiteClient.expect)

    def __init__(self) -> None:
        self.sent: list[tuple[Command, str, str]] = []
        self.unreachable = False

    async def send(self, command: Command, *, actor: str = "", role: str = "viewer") -> Result:
        self.sent.append((command, actor, role))
        if self.unreachable:
            raise EngineUnreachable("ipc:///tmp/qsuite-control", 3, 1500)
        if ROLE_RANK[role] < ROLE_RANK[command.min_role]:
            raise CommandError(ErrorCode.FORBIDDEN, f"needs role {command.min_role}")
        assert isinstance(command, GetPerformance), type(command).__name__
        if command.account == "desk1":
            snaps = [snapshot(0, "1000"), snapshot(1, "500"), snapshot(2, "1500")]
            return AccountPerformance(
                account="desk1", capital=command.capital, snapshots=snaps, performance=FIGURES
            )
        if command.account == "fresh":
            snaps = [snapshot(0, "0", "fresh")]
            return AccountPerformance(account="fresh", capital=command.capital, snapshots=snaps)
        raise CommandError(
            ErrorCode.INVALID, f"Cannot compute the performance of {command.account}: too small"
        )


class FakeBridge:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = FakeClient()
        self.trading = TradingView()
        self.trading.load_positions(
            [
                PositionRow(
                    account="acme",
                    symbol="AAA",
                    qty=D(10),
                    avg_price=D(100),
                    realized_pnl=D(0),
                    unrealized_pnl=None,
                    mark_price=None,
                    ts_updated=T0,
                )
            ]
        )

    def symbols(self) -> list[str]:
        return list(self.settings.feed.watchlist)

    act = Bridge.act


def bars(n: int, symbol: str, seed: int = 1) -> list[BarRow]:
    rng, price, out = random.Random(seed), 100.0, []
    for i in range(n):
        open_ = price
        price *= math.exp(rng.gauss(0, 0.015))
        high, low = max(open_, price) * 1.003, min(open_, price) * 0.997
        out.append(BarRow(symbol, "1d", T0 + i * DAY, open_, high, low, price, 1e4, "replay", 0))
    return out


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        environ={"QSUITE__APP__DATA_DIR": str(tmp_path)},
        overrides={"feed": {"watchlist": ["AAA", "BBB"]}},
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = database.open_database(settings)
    upsert_bars(engine, bars(250, "AAA"))
    yield engine
    engine.dispose()


@pytest.fixture
def audited(engine: Engine) -> Iterator[None]:
    """The console writes its audit log to the test database (its users exist there)."""
    users = UserStore(engine, PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    for name, role in (("vic", "viewer"), ("olga", "operator"), ("ada", "admin")):
        users.add(name, role, "correct horse")
    session.configure(session.Accounts(store=users))
    yield
    session.configure(None)


@pytest.fixture
def bridge(settings: Settings) -> FakeBridge:
    return FakeBridge(settings)


@pytest.fixture
def login(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    names = {"viewer": "vic", "operator": "olga", "admin": "ada"}

    def as_role(role: str) -> None:
        monkeypatch.setattr(session, "current_user", lambda: SessionUser(names[role], role))  # type: ignore[arg-type]

    return as_role


@pytest.fixture
async def user(
    bridge: FakeBridge,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> AsyncIterator[User]:
    monkeypatch.setattr(backtest_runs, "offload", backtest_runs.in_thread)
    async with user_simulation(lambda: reports.build(bridge, lambda: engine)) as simulated:
        yield simulated
    errors = [r.getMessage() for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    assert not errors, f"the page logged errors: {errors}"


async def eventually(predicate: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    for _ in range(int(timeout_s / 0.05)):
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("the page did not get there in time")


def only(user: User, marker: str) -> Any:
    (element,) = user.find(marker=marker).elements
    return element


def type_account(user: User, account: str) -> None:
    """Type an account the select does not offer (as the browser sends a new value)."""
    user.find(marker="perf-account").trigger("update:modelValue", account)


def fill_form(user: User, symbols: list[str], fast: str = "5", slow: str = "20") -> None:
    assert only(user, "bt-strategy").value == "ma_crossover"  # the one shown first
    user.find(marker="bt-param-fast").type(fast)
    user.find(marker="bt-param-slow").type(slow)
    only(user, "bt-symbols").value = symbols
    user.find(marker="bt-commission").clear().type("0.001")


# --- account performance ---------------------------------------------------------------------


async def test_reports_page_when_viewer_then_shows_the_accounts_figures_and_equity_line(
    user: User, bridge: FakeBridge, login: Callable[[str], None]
) -> None:
    login("viewer")
    await user.open("/")

    figures = only(user, "perf-figures")
    await eventually(lambda: figures.rows)
    shown = {row["key"]: row["value"] for row in figures.rows}
    assert shown["total_return"] == "+0.1%"
    assert shown["annualized_return"] == "+42.0%"
    assert (shown["sharpe"], shown["sortino"]) == ("1.25", "2.50")
    assert shown["max_drawdown"] == "0.1%"
    assert shown["pnl"] == "1500.00"
    await user.should_see(marker="perf-note", content="3 snapshots")
    (line,) = only(user, "perf-chart").figure["data"]
    assert line["y"] == [1_001_000.0, 1_000_500.0, 1_001_500.0]  # capital + total P&L
    assert list(only(user, "perf-account").options) == ["desk1", "acme"]  # config, positions
    ((sent, actor, role),) = bridge.client.sent[:1]
    assert (sent, actor, role) == (GetPerformance(account="desk1"), "vic", "viewer")
    # a viewer reads reports but gets no backtest form
    await user.should_see(marker="bt-not-allowed", content="you are vic (viewer)")
    await user.should_not_see(marker="bt-run")


async def test_reports_page_when_fewer_than_two_snapshots_then_says_how_to_take_one(
    user: User, login: Callable[[str], None]
) -> None:
    login("viewer")
    await user.open("/")
    figures = only(user, "perf-figures")
    await eventually(lambda: figures.rows)

    type_account(user, "fresh")

    await user.should_see(marker="perf-note", content="1 snapshot of fresh so far")
    note = only(user, "perf-note").text
    assert "every sync.snapshot_every_s (300 s) by the scheduler" in note
    assert "run `qsuite ctl jobs run analytics_snapshot`" in note
    assert figures.rows == []


async def test_reports_page_when_refused_or_unreachable_then_says_why(
    user: User, bridge: FakeBridge, login: Callable[[str], None]
) -> None:
    login("viewer")
    await user.open("/")
    await eventually(lambda: only(user, "perf-figures").rows)

    type_account(user, "tiny")
    await user.should_see(
        marker="perf-error", content="Cannot load the performance of tiny: Refused (invalid)"
    )

    bridge.client.unreachable = True
    user.find(marker="perf-refresh").click()
    await user.should_see(marker="perf-error", content="Engine unreachable at ipc://")


async def test_load_performance_when_nobody_logged_in_then_refused_in_words(
    bridge: FakeBridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session, "current_user", lambda: None)
    monkeypatch.setattr(session, "confirm", _nobody)

    report, why = await reports.load_performance(bridge, "desk1", "1000000")

    assert report is None
    assert why == "Cannot load the performance of desk1: Not allowed: log in first."
    assert bridge.client.sent == []


async def _nobody() -> None:
    return None


# --- backtests -------------------------------------------------------------------------------


async def test_backtest_form_runs_over_stored_bars_and_shows_metrics_chart_and_report(
    user: User,
    settings: Settings,
    login: Callable[[str], None],
    engine: Engine,
    audited: None,
) -> None:
    login("operator")
    await user.open("/")
    fill_form(user, ["AAA"])

    user.find(marker="bt-run").click()

    await user.should_see(marker="bt-message", content="trades, total return", retries=100)
    metrics = {row["key"]: row["value"] for row in only(user, "bt-metrics").rows}
    assert {"total_return", "sharpe", "sortino", "max_drawdown", "trades"} <= set(metrics)
    strategy, hold = only(user, "bt-chart").figure["data"]
    assert (strategy["name"], hold["name"]) == ("Strategy", "Buy and hold")
    assert len(strategy["y"]) == len(hold["y"]) > 100
    title = only(user, "bt-title").text
    assert "ma_crossover" in title and "250 bars" in title and "AAA" in title
    (report,) = (settings.data_path / "reports").glob("bt-*.html")
    assert report.name.split(".")[0] in title
    assert report.read_text().lstrip().lower().startswith("<!doctype html")
    await user.should_not_see(marker="bt-running")
    assert only(user, "bt-run").enabled

    user.find(marker="bt-download").click()
    response = await user.download.next()
    assert str(response.request.url).endswith(report.name)
    ((actor, action, target, result, detail),) = audit_rows(engine)
    assert (actor, action, target, result) == ("olga", "backtest", report.stem, "ok")
    assert detail is not None and detail.startswith(f"{report.stem}: 250 bars")
    ((payload),) = audit_payloads(engine)
    assert payload["strategy"] == "ma_crossover" and payload["symbols"] == ["AAA"]


async def test_backtest_form_when_no_bars_then_says_so_in_words(
    user: User, login: Callable[[str], None], engine: Engine, audited: None
) -> None:
    login("operator")
    await user.open("/")
    fill_form(user, ["BBB"])

    user.find(marker="bt-run").click()

    await user.should_see(
        marker="bt-message",
        content="Cannot run the backtest: the database has no 1d bars of BBB",
        retries=100,
    )
    await user.should_not_see(marker="bt-metrics")  # no results to show
    ((actor, action, _, result, detail),) = audit_rows(engine)
    assert (actor, action, result) == ("olga", "backtest", "error")
    assert detail is not None and "no 1d bars of BBB" in detail


async def test_backtest_form_when_a_run_is_going_then_a_second_is_refused(
    user: User, monkeypatch: pytest.MonkeyPatch, login: Callable[[str], None]
) -> None:
    release, calls = asyncio.Event(), []

    async def slow(request: BacktestRequest, engine: Engine, path: Path) -> str:
        calls.append(request.run_id)
        await release.wait()
        return "stopped by the test"

    monkeypatch.setattr(backtest_runs, "offload", slow)
    login("operator")
    await user.open("/")
    fill_form(user, ["AAA"])
    form = user.find(marker="bt-run")

    form.click()
    await user.should_see(marker="bt-message", content="Running ma_crossover over AAA (1d)")
    await user.should_see(marker="bt-running")
    assert not only(user, "bt-run").enabled
    only(user, "bt-run").enable()  # a click that left the browser before the button went off
    form.click()

    await user.should_see(marker="bt-message", content="A backtest is running in this tab")
    release.set()
    await user.should_see(marker="bt-message", content="Cannot run the backtest: stopped by")
    assert len(calls) == 1
    await user.should_not_see(marker="bt-running")
    assert only(user, "bt-run").enabled


async def test_start_backtest_when_viewer_then_refused_before_anything_runs(
    user: User, settings: Settings, engine: Engine, login: Callable[[str], None]
) -> None:
    login("viewer")
    await user.open("/")
    request = check_backtest("ma_crossover", {}, **FORM)
    assert isinstance(request, BacktestRequest)
    reports_dir = settings.data_path / "reports"

    summary, why = await backtest_form.start_backtest(request, lambda: engine, reports_dir)

    assert summary is None
    assert why == "Not allowed: this needs the operator role; you are vic (viewer)."
    assert not reports_dir.exists()


FORM: dict[str, Any] = {
    "symbols": ["AAA"],
    "interval": "1d",
    "start": "",
    "end": "",
    "cash": "100000",
    "commission": "0",
    "slippage_bps": "0",
}


@pytest.mark.parametrize(
    ("strategy", "values", "fields", "problem"),
    [
        ("evil.py:Strategy", {}, {}, "Strategy must be one of"),
        ("ma_crossover", {"fast": "five"}, {}, "Fast must be a whole number"),
        ("ma_crossover", {"fast": "30", "slow": "20"}, {}, "need 1 < fast < slow"),
        ("ma_crossover", {}, {"symbols": []}, "Symbols: choose at least one"),
        ("ma_crossover", {}, {"symbols": ["AA A"]}, "Symbols: not a symbol: AA A"),
        ("ma_crossover", {}, {"interval": "7m"}, "Interval must be one of"),
        ("ma_crossover", {}, {"start": "last year"}, "Start 'last year' is not a date"),
        ("ma_crossover", {}, {"start": "2021-01-01", "end": "2020-01-01"}, "Start must be before"),
        ("ma_crossover", {}, {"cash": "-5"}, "Cash must be a positive number"),
        ("ma_crossover", {}, {"commission": "1.5"}, "Commission must be a fraction"),
        ("ma_crossover", {}, {"slippage_bps": "x"}, "Slippage must be between"),
    ],
)
def test_check_backtest_when_a_field_is_wrong_then_names_it(
    strategy: str, values: dict[str, str], fields: dict[str, Any], problem: str
) -> None:
    problems = check_backtest(strategy, values, **(FORM | fields))

    assert isinstance(problems, list) and len(problems) == 1, problems
    assert problem in problems[0]


def test_check_backtest_when_filled_in_then_request_with_utc_bounds_and_typed_params() -> None:
    request = check_backtest(
        "rsi_reversion",
        {"period": "10", "lower": "25.5", "upper": ""},
        **(FORM | {"start": "2020-02-01", "end": "2020-06-01", "slippage_bps": "2.5"}),
    )

    assert isinstance(request, BacktestRequest)
    assert request.params == {"period": 10, "lower": 25.5}  # empty: the strategy's default
    assert (request.start, request.end) == (T0 + 31 * DAY, T0 + 152 * DAY)
    assert (request.cash, request.slippage_bps) == (D(100_000), 2.5)


def test_run_when_more_bars_than_the_cap_then_refused_before_loading(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backtest_runs, "MAX_BARS", 100)
    request = check_backtest("ma_crossover", {}, **FORM)
    assert isinstance(request, BacktestRequest)

    outcome = backtest_runs.attempt(request, engine, settings.data_path / "reports")

    assert outcome == (
        "250 bars match, more than the 100 a console backtest may use; choose fewer "
        "symbols, a shorter period or a longer interval"
    )


def test_run_gives_a_summary_that_crosses_to_and_from_a_worker(
    settings: Settings, engine: Engine
) -> None:
    request = check_backtest("ma_crossover", {"fast": "5", "slow": "20"}, **FORM)
    assert isinstance(request, BacktestRequest)
    assert pickle.loads(pickle.dumps(request)) == request

    summary = backtest_runs.attempt(request, engine, settings.data_path / "reports")

    assert isinstance(summary, BacktestSummary)
    assert pickle.loads(pickle.dumps(summary)) == summary
    assert summary.bars == 250 and summary.fills > 0
    assert Path(summary.report).is_file()

"""The console's health page rendered in-process by NiceGUI's simulated ``User``.

No sockets and no browser: the page is built by ``ui.main.console`` against a fake
bridge, exactly as ``qsuite ui`` builds it against the real one.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from nicegui import ui
from nicegui.testing import User, user_simulation

from engine.bus.commands import HealthReport, ProcessHealth
from engine.errors import EngineUnreachable
from ui.main import console
from ui.pages.health import Rates

pytestmark = pytest.mark.timeout(30)


class FakeBridge:
    """Stands in for ``ui.bridge.Bridge``: a canned health report or a failure."""

    def __init__(self) -> None:
        self.report: HealthReport | None = None
        self.last_error = ""

    async def health(self) -> HealthReport | None:
        return self.report


@pytest.fixture
def bridge() -> FakeBridge:
    return FakeBridge()


@pytest.fixture
async def user(bridge: FakeBridge, caplog: pytest.LogCaptureFixture) -> AsyncIterator[User]:
    # Like nicegui.testing.user_plugin's fixture, but with the page as a root function, so
    # it needs neither a main file (the `main_file` ini option) nor the plugin loaded
    # for the whole suite.
    async with user_simulation(lambda: console(bridge)) as simulated:
        yield simulated
    errors = [r.getMessage() for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    assert not errors, f"the page logged errors: {errors}"


def _table(user: User) -> ui.table:
    (table,) = user.find(marker="health-table").elements
    assert isinstance(table, ui.table)
    return table


async def test_health_page_when_one_process_down_then_overall_down_and_its_row_says_why(
    user: User, bridge: FakeBridge
) -> None:
    bridge.report = HealthReport(
        overall="down",
        generated_at=1,
        processes=[
            ProcessHealth(
                process="bus",
                state="up",
                pid=101,
                version="0.1.0",
                heartbeat_age_s=0.2,
                counters={
                    "qsuite_bus_received_total": 1000.0,
                    "qsuite_bus_gaps_total": 3.0,
                    "qsuite_control_commands_total": 12.0,
                },
            ),
            ProcessHealth(process="venue", state="down", restarts=2, detail="exited with code -9"),
        ],
    )

    await user.open("/")

    await user.should_see("QSuite")
    await user.should_see(marker="overall", content="DOWN")
    (overall,) = user.find(marker="overall").elements
    assert overall.props["color"] == "negative"
    await user.should_not_see(marker="problem", content="qsuite run")
    rows = {row["process"]: row for row in _table(user).rows}
    assert rows["bus"] == {
        "process": "bus",
        "state": "up",
        "pid": 101,
        "age": "0.2s",
        "restarts": 0,
        "version": "0.1.0",
        "detail": "",
        "in": "-",  # a rate needs two reports
        "out": "-",
        "gaps": "3",
        "drops": "-",
        "commands": "12",
        "errors": "-",
    }
    assert rows["venue"] == {
        "process": "venue",
        "state": "down",
        "pid": "-",
        "age": "-",
        "restarts": 2,
        "version": "-",
        "detail": "exited with code -9",
        **dict.fromkeys(("in", "out", "gaps", "drops", "commands", "errors"), "-"),
    }
    await user.should_see(marker="control-latency", content="answered the console in")


def test_rates_when_two_reports_then_messages_per_second_and_none_after_a_restart() -> None:
    rates = Rates()
    rates.of("feed", {"qsuite_bus_published_total": 100.0}, now=10.0)

    assert rates.of("feed", {"qsuite_bus_published_total": 350.0}, now=12.5)["out"] == "100.0"
    assert rates.of("feed", {"qsuite_bus_published_total": 5.0}, now=13.5)["out"] == "-"
    assert rates.of("feed", {"qsuite_bus_published_total": 25.0}, now=14.5)["out"] == "20.0"


async def test_health_page_when_engine_unreachable_then_unreachable_and_tells_to_run_qsuite(
    user: User, bridge: FakeBridge
) -> None:
    bridge.last_error = str(EngineUnreachable("ipc:///tmp/qs/sup", 2, 1500))

    await user.open("/")

    await user.should_see(marker="overall", content="UNREACHABLE")
    await user.should_see(marker="problem", content=bridge.last_error)
    await user.should_see(marker="problem", content="`qsuite run`")
    (overall,) = user.find(marker="overall").elements
    assert overall.props["color"] == "negative"
    assert _table(user).rows == []

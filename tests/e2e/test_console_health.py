"""The console's health page in Debian's chromium against the real system."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from console_login import log_in
from harness import Sandbox, running, wait_until
from playwright.sync_api import Page, expect

from app.client import QSuiteClient

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

# The page polls health once a second, and a killed venue is usually back within a
# second; a longer restart backoff keeps it DOWN long enough for the page to show it.
RESTART_BACKOFF_S = 2.5
PROCESSES = ("bus", "feed", "analysis", "execution", "venue", "scheduler", "ui", "supervisor")
START_MS = 60_000
HEAL_S = 20

# Truthy (the badge's text) once venue's badge shows anything but UP. Polled on every
# animation frame, so the few seconds of DOWN cannot fall between expect()'s 1 s polls.
VENUE_LEFT_UP = """() => {
  const badge = document.querySelector('[data-testid="state-venue"]');
  const text = badge ? badge.textContent.trim() : '';
  return text !== '' && text !== 'UP' && text;
}"""


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox(
        tmp_path / "qsuite",
        extra={
            "supervisor": {
                "restart_backoff_initial_s": RESTART_BACKOFF_S,
                "restart_backoff_max_s": 2 * RESTART_BACKOFF_S,
            }
        },
    )
    yield box
    box.cleanup()


def _open_console(page: Page, sandbox: Sandbox, proc: subprocess.Popen[bytes]) -> None:
    url = f"http://{sandbox.settings.ui.host}:{sandbox.settings.ui.port}/health"

    def serving() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"qsuite exited with {proc.returncode}; see {sandbox.data_dir}")
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200

    wait_until(serving, START_MS / 1000, f"the console serving {url}", every_s=0.2)
    log_in(page, url, "vic")


def test_console_health_when_system_runs_then_all_up_and_a_killed_venue_comes_back(
    sandbox: Sandbox,
    console_users: dict[str, tuple[str, str]],
    page: Page,
    screenshot: Callable[[str], Path],
) -> None:
    with running(sandbox, "run") as proc, QSuiteClient(sandbox.settings) as client:
        _open_console(page, sandbox, proc)
        for name in PROCESSES:
            expect(page.get_by_test_id(f"state-{name}")).to_have_text("UP", timeout=START_MS)
        expect(page.get_by_test_id("overall")).to_have_text("UP", timeout=START_MS)
        screenshot("health-up.png")

        old_pid = {p.process: p for p in client.health().processes}["venue"].pid
        expect(page.get_by_test_id("pid-venue")).to_have_text(str(old_pid))
        expect(page.get_by_test_id("restarts-venue")).to_have_text("0")
        killed_at = time.monotonic()
        os.kill(old_pid, signal.SIGKILL)

        left = page.wait_for_function(VENUE_LEFT_UP, polling="raf", timeout=HEAL_S * 1000)
        assert left.json_value() in ("DOWN", "STARTING")
        screenshot("health-venue-killed.png")

        expect(page.get_by_test_id("state-venue")).to_have_text("UP", timeout=HEAL_S * 1000)
        expect(page.get_by_test_id("restarts-venue")).to_have_text("1", timeout=5_000)
        new_pid = {p.process: p for p in client.health().processes}["venue"].pid
        assert new_pid != old_pid
        expect(page.get_by_test_id("pid-venue")).to_have_text(str(new_pid), timeout=5_000)
        expect(page.get_by_test_id("overall")).to_have_text("UP", timeout=5_000)
        assert time.monotonic() - killed_at < HEAL_S
        screenshot("health-venue-restarted.png")


def test_console_health_when_engine_not_running_then_unreachable_and_names_qsuite_run(
    sandbox: Sandbox,
    console_users: dict[str, tuple[str, str]],
    page: Page,
    screenshot: Callable[[str], Path],
) -> None:
    with running(sandbox, "ui", log_name="ui.log") as proc:
        _open_console(page, sandbox, proc)
        expect(page.get_by_test_id("overall")).to_have_text("UNREACHABLE", timeout=30_000)
        problem = page.get_by_test_id("problem")
        expect(problem).to_contain_text("Engine unreachable")
        expect(problem).to_contain_text("`qsuite run`")
        screenshot("health-unreachable.png")

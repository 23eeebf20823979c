"""The console's end-to-end scenario in Debian's chromium against the real system started
by `qsuite run` in a subprocess: an admin relaxes desk1's participation limit on the Risk
page; an operator logs in, sees the Dashboard's chart take a new bar and the venue's book
go live, starts a TWAP from the Algorithms form, sees it progress, pauses, resumes and
cancels it, and finds its children and fills in the Orders blotter; the admin triggers
the kill switch; the Health page shows an engine process killed with SIGKILL down (red)
and up (green) again once the supervisor has restarted it. Every stage leaves a
screenshot under test-artifacts/e2e/."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from console_login import log_in
from harness import Sandbox, running, wait_until
from playwright.sync_api import Locator, Page, expect

from app.client import QSuiteClient

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

OPERATOR, ADMIN = "olga", "ada"
ACCOUNT, SYMBOL = "desk1", "AAA"
TWAP_QTY = 20
TWAP_DURATION_S = 120  # long enough to pause, resume and cancel it before it completes
TWAP_INTERVAL_S = 10
KILLED = "analysis"  # the engine process killed on the Health page
# The Health page polls once a second; a longer restart backoff than the sandbox's keeps
# the killed process DOWN long enough for the page to show it (as in the health test).
RESTART_BACKOFF_S = 2.5
START_S = 60
BAR_S = 75  # one 1m bar (the shortest interval QSuite knows) closes within this
BOOK_MS = 60_000
UI_MS = 15_000

# Truthy once the chart (Plotly's graph div) holds candles: their count and last time.
CANDLES = """() => {
  const gd = document.querySelector('[data-testid="chart"]');
  const c = gd && gd.data && gd.data.find(t => t.type === 'candlestick');
  return c && c.x.length ? {count: c.x.length, last: c.x[c.x.length - 1]} : null;
}"""
# Truthy (the candles) once the chart's last candle is later than ``last``.
NEWER_CANDLE = """(last) => {
  const gd = document.querySelector('[data-testid="chart"]');
  const c = gd && gd.data && gd.data.find(t => t.type === 'candlestick');
  return c && c.x.length && c.x[c.x.length - 1] > last
    && {count: c.x.length, last: c.x[c.x.length - 1]};
}"""
# Truthy ([text, class]) once the process's state badge shows anything but UP; polled on
# every animation frame so the few seconds of DOWN cannot fall between two polls.
LEFT_UP = """(process) => {
  const badge = document.querySelector(`[data-testid="state-${process}"]`);
  const text = badge ? badge.textContent.trim() : '';
  return text !== '' && text !== 'UP' && [text, badge.className];
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


def test_console_flow_when_system_runs_then_trade_a_twap_halt_and_heal_from_the_browser(
    sandbox: Sandbox,
    console_users: dict[str, tuple[str, str]],
    page: Page,
    screenshot: Callable[[str], Path],
) -> None:
    base = f"http://{sandbox.settings.ui.host}:{sandbox.settings.ui.port}"
    with running(sandbox, "run") as proc, QSuiteClient(sandbox.settings) as client:
        _wait_serving(proc, sandbox, f"{base}/login")

        # 1. an admin lifts desk1's participation limit (the synthetic market's volume is
        # low at first, and a denied child would pause the TWAP)
        log_in(page, f"{base}/risk", ADMIN)
        _relax_participation(page)
        screenshot("flow-01-risk-profile.png")
        page.goto(f"{base}/logout")

        # 2. the operator logs in and the chart takes a new bar
        log_in(page, f"{base}/", OPERATOR)
        expect(page.get_by_test_id("symbol")).to_contain_text(SYMBOL)
        badge = page.get_by_test_id("chart-data")  # "SIMULATED · <last bar's minute> UTC"
        expect(badge).to_contain_text("SIMULATED", timeout=BAR_S * 1000)
        first = page.wait_for_function(CANDLES, timeout=BAR_S * 1000).json_value()
        screenshot("flow-02-chart.png")
        newer = page.wait_for_function(NEWER_CANDLE, arg=first["last"], timeout=BAR_S * 1000)
        latest = newer.json_value()
        assert latest["count"] >= first["count"]
        # the badge names the newest bar (epoch ms on the chart's date axis)
        minute = time.strftime("%H:%M UTC", time.gmtime(latest["last"] / 1000))
        expect(badge).to_contain_text(minute, timeout=5_000)
        screenshot("flow-03-chart-new-bar.png")

        # 3. the venue's book of the symbol is live: the venue opens it at the symbol's first
        # synthetic quote, which may come many seconds after the start (StartAlgo is refused
        # with "AAA has no book on the venue" until then)
        page.goto(f"{base}/trading")
        expect(page.get_by_test_id("book-state")).to_contain_text("LIVE", timeout=BOOK_MS)
        expect(page.get_by_test_id("ladder-ask-0")).to_be_visible()
        expect(page.get_by_test_id("ladder-bid-0")).to_be_visible()
        screenshot("flow-04-book-live.png")

        # 4. a TWAP from the form, followed as it fills
        page.goto(f"{base}/algos")
        algo_id = _start_twap(page)
        row = _grid_row(page, "algos", algo_id)
        state = page.get_by_test_id(f"state-{algo_id}")
        expect(state).to_have_text("RUNNING", timeout=UI_MS)
        filled_cell = row.locator('[col-id="filled"]')
        children_cell = row.locator('[col-id="children"]')
        wait_until(lambda: _filled(filled_cell) > 0, 30, "the TWAP's first fill", 0.2)
        bar = row.locator('[col-id="progress"] [style*="border-radius:5px;width:"]')
        expect(bar).to_have_attribute("style", re.compile(r"width:(?!0%)[\d.]+%"), timeout=UI_MS)
        expect(page.get_by_test_id("algo-fills")).to_contain_text(f"{algo_id}-", timeout=UI_MS)
        screenshot("flow-05-twap-progress.png")

        # 5. pause: no child goes out while it is paused, not even at its next slice
        page.get_by_test_id(f"pause-{algo_id}").click()
        expect(_said(page, f"Paused {algo_id} (paused)")).to_be_visible(timeout=UI_MS)
        expect(state).to_have_text("PAUSED", timeout=UI_MS)
        expect(page.get_by_test_id(f"pause-{algo_id}")).to_have_text("Resume", timeout=UI_MS)
        paused_at, sent = _filled(filled_cell), children_cell.inner_text()
        page.wait_for_timeout((TWAP_INTERVAL_S + 1) * 1000)  # a slice falls due meanwhile
        expect(state).to_have_text("PAUSED")
        assert (_filled(filled_cell), children_cell.inner_text()) == (paused_at, sent)
        screenshot("flow-06-twap-paused.png")

        # 6. resume: it trades again (catching up on the slice it missed)
        page.get_by_test_id(f"pause-{algo_id}").click()
        expect(_said(page, f"Resumed {algo_id} (running)")).to_be_visible(timeout=UI_MS)
        expect(state).to_have_text("RUNNING", timeout=UI_MS)
        wait_until(
            lambda: _filled(filled_cell) > paused_at,
            TWAP_INTERVAL_S + 20,
            "a fill after resuming",
            0.2,
        )
        screenshot("flow-07-twap-resumed.png")

        # 7. cancel, with a reason, from the row's dialog
        page.get_by_test_id(f"cancel-{algo_id}").click()
        page.get_by_test_id("cancel-reason").fill("e2e flow: done")
        page.get_by_test_id("cancel-confirm").click()
        expect(_said(page, f"Cancelled {algo_id} (cancelled)")).to_be_visible(timeout=UI_MS)
        expect(state).to_have_text("CANCELLED", timeout=UI_MS)
        expect(page.get_by_test_id(f"cancel-{algo_id}")).to_have_count(0)  # no controls left
        done = _filled(filled_cell)
        assert 0 < done < TWAP_QTY, f"cancelled with {done} of {TWAP_QTY} done"
        tca = page.get_by_test_id("tca")
        expect(tca.locator("tr", has_text="Status")).to_contain_text("final", timeout=UI_MS)
        expect(tca.locator("tr", has_text="Filled")).to_contain_text(f"{done} of {TWAP_QTY}")
        children = _algo_fills(page, done)
        screenshot("flow-08-twap-cancelled.png")

        # 8. its children and their fills in the blotter, and the position they built
        page.goto(f"{base}/trading")
        fills = page.get_by_test_id("fills")
        for child, qty in children.items():
            order = _grid_row(page, "blotter", child)
            expect(order.locator('[col-id="status"]')).to_have_text("filled", timeout=UI_MS)
            expect(order.locator('[col-id="account"]')).to_have_text(ACCOUNT)
            expect(order.locator('[col-id="filled"]')).to_have_text(str(qty))
            expect(fills.locator("tbody tr", has_text=child)).not_to_have_count(0)
        position = page.get_by_test_id("positions").locator("tbody tr", has_text=ACCOUNT)
        expect(position.locator("td").nth(2)).to_have_text(str(done), timeout=UI_MS)
        screenshot("flow-09-blotter-fills.png")
        page.goto(f"{base}/logout")

        # 9. the admin pulls the kill switch
        log_in(page, f"{base}/risk", ADMIN)
        expect(page.get_by_test_id("risk-state")).to_have_text("TRADING ACTIVE", timeout=UI_MS)
        page.get_by_test_id("kill-switch").click()
        dialog = page.get_by_test_id("halt-dialog")
        expect(dialog).to_be_visible(timeout=UI_MS)
        page.get_by_test_id("halt-reason").fill("e2e flow: kill switch")
        page.get_by_test_id("halt-confirm").click()
        expect(dialog).to_be_hidden(timeout=UI_MS)
        expect(page.get_by_test_id("risk-state")).to_have_text("TRADING HALTED", timeout=UI_MS)
        expect(page.get_by_test_id("state-global")).to_have_text("HALTED", timeout=UI_MS)
        halted_by = re.compile(rf"^kill_switch by {ADMIN} since .+: e2e flow: kill switch$")
        expect(page.get_by_text(halted_by)).to_be_visible(timeout=UI_MS)
        expect(page.get_by_test_id("pinned-alerts")).to_contain_text(
            f"trading is HALTED (kill_switch, {ADMIN}): e2e flow: kill switch", timeout=UI_MS
        )
        screenshot("flow-10-kill-switch.png")

        # 10. an engine process killed: red on the Health page, green once restarted
        page.goto(f"{base}/health")
        badge = page.get_by_test_id(f"state-{KILLED}")
        expect(badge).to_have_text("UP", timeout=UI_MS)
        expect(badge).to_have_class(re.compile(r"\bbg-positive\b"))
        old_pid = _pid(client, KILLED)
        expect(page.get_by_test_id(f"pid-{KILLED}")).to_have_text(str(old_pid), timeout=UI_MS)
        restarts = int(page.get_by_test_id(f"restarts-{KILLED}").inner_text())
        os.kill(old_pid, signal.SIGKILL)
        left = page.wait_for_function(LEFT_UP, arg=KILLED, polling="raf", timeout=20_000)
        text, classes = left.json_value()
        assert text == "DOWN", f"{KILLED} showed {text} after SIGKILL, not DOWN"
        assert "bg-negative" in classes.split(), f"DOWN is not red: {classes}"
        screenshot("flow-11-health-down.png")
        expect(badge).to_have_text("UP", timeout=20_000)
        expect(badge).to_have_class(re.compile(r"\bbg-positive\b"))
        expect(page.get_by_test_id(f"restarts-{KILLED}")).to_have_text(
            str(restarts + 1), timeout=5_000
        )
        new_pid = _pid(client, KILLED)
        assert new_pid not in (0, old_pid)
        expect(page.get_by_test_id(f"pid-{KILLED}")).to_have_text(str(new_pid), timeout=5_000)
        screenshot("flow-12-health-restarted.png")


# --- steps -------------------------------------------------------------------------------------


def _wait_serving(proc: subprocess.Popen[bytes], sandbox: Sandbox, url: str) -> None:
    def serving() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"qsuite exited with {proc.returncode}; see {sandbox.data_dir}")
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200

    wait_until(serving, START_S, f"the console serving {url}", every_s=0.2)


def _relax_participation(page: Page) -> None:
    """desk1's max_participation set to "no limit" with the Risk page's profile editor."""
    editor = page.get_by_test_id("profile-editor")
    editor.get_by_label("Account", exact=True).fill(ACCOUNT)
    editor.get_by_role("button", name="Load").click()
    limit = editor.get_by_label("max_participation", exact=True)
    expect(limit).to_have_value("0.1", timeout=UI_MS)
    limit.fill("")
    editor.get_by_role("button", name="Save changes").click()
    expect(editor).to_contain_text(
        re.compile(rf"Saved {ACCOUNT} version \d+: max_participation=no limit"), timeout=UI_MS
    )
    expect(limit).to_have_value("")


def _start_twap(page: Page) -> str:
    """Fill in and send the start form; the new parent's id."""
    form = page.get_by_test_id("start-form")
    expect(page.get_by_test_id("param-duration_s")).to_be_visible(timeout=UI_MS)  # kinds loaded
    expect(form).to_contain_text("TWAP")
    page.get_by_test_id("algo-account").fill(ACCOUNT)
    page.get_by_test_id("algo-symbol").fill(SYMBOL)
    page.get_by_test_id("algo-qty").fill(str(TWAP_QTY))
    page.get_by_test_id("param-duration_s").fill(str(TWAP_DURATION_S))
    page.get_by_test_id("param-interval_s").fill(str(TWAP_INTERVAL_S))
    page.get_by_test_id("param-aggressiveness").click()
    page.get_by_role("option", name="cross", exact=True).click()
    expect(page.get_by_test_id("param-aggressiveness")).to_contain_text("cross")
    page.get_by_test_id("algo-start").click()
    started = page.get_by_test_id("start-message")
    expect(started).to_have_text(re.compile(r"^Started \S+ \((pending|running)\)$"), timeout=UI_MS)
    return started.inner_text().split()[1]


def _said(page: Page, text: str) -> Locator:
    """The page's message line (it has no test id) once it says ``text``."""
    return page.get_by_text(text, exact=True)


def _grid_row(page: Page, grid: str, key: str) -> Locator:
    return page.get_by_test_id(grid).locator(f'.ag-center-cols-container [row-id="{key}"]')


def _filled(cell: Locator) -> Decimal:
    """The parents grid's "Filled / qty" cell: what is filled."""
    return Decimal(cell.inner_text(timeout=5_000).split("/")[0].strip())


def _algo_fills(page: Page, filled: Decimal) -> dict[str, Decimal]:
    """Child order → quantity filled, from the selected parent's fills in its detail panel,
    once they add up to ``filled``."""
    table = page.get_by_test_id("algo-fills")

    def rows() -> dict[str, Decimal] | None:
        got: dict[str, Decimal] = {}
        for row in table.locator("tbody tr").all():
            cells = row.locator("td").all_inner_texts()  # time, child order, qty, price, …
            if len(cells) >= 3 and cells[1].strip():
                got[cells[1]] = got.get(cells[1], Decimal(0)) + Decimal(cells[2])
        return got if sum(got.values(), Decimal(0)) == filled else None

    return wait_until(rows, 15, f"the detail panel's fills adding up to {filled}", 0.3)


def _pid(client: QSuiteClient, process: str) -> int:
    state = {p.process: p for p in client.health().processes}[process]
    return int(state.pid or 0) if state.state == "up" else 0

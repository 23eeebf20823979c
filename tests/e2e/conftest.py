"""Browser fixtures: Debian's chromium driven by Playwright (its own browser download is
not used), one browser per module and a new context per test; console users created in
the sandbox's database with `qsuite users add` before the system starts, and a helper
that logs the browser in."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest
from console_login import USERS, add_user
from harness import REPO, Sandbox
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "test-artifacts" / "e2e"
_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        if os.environ.get("QSUITE_SKIP_E2E") == "1":
            pytest.skip(f"QSUITE_SKIP_E2E=1 is set and {CHROMIUM} is missing")
        pytest.fail(
            f"The browser tests need Debian's chromium at {CHROMIUM}: run "
            "`scripts/install.sh --browsers` (or set QSUITE_SKIP_E2E=1 to skip them).",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a new browser context; a failed test leaves its screenshot behind."""
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        yield page
        if request.node.stash.get(_FAILED, False):
            _save(page, "failed-" + re.sub(r"[^\w.-]+", "_", request.node.name) + ".png")
    finally:
        context.close()


@pytest.fixture
def screenshot(page: Page) -> Callable[[str], Path]:
    """``screenshot("name.png")`` saves the page under test-artifacts/e2e/."""
    return lambda name: _save(page, name)


def _save(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def console_users(sandbox: Sandbox) -> dict[str, tuple[str, str]]:
    """:data:`~console_login.USERS`, created in the sandbox's database before the system
    starts, as an operator would (the CLI migrates the new database itself)."""
    for name, (role, password) in USERS.items():
        add_user(sandbox, name, role, password)
    return USERS

"""Console users for the browser tests: created with `qsuite users add` in a sandbox's
database, and a helper that logs the browser in."""

from __future__ import annotations

import subprocess

from harness import REPO, Sandbox, clean_env
from playwright.sync_api import Page, expect

USERS = {
    "olga": ("operator", "olga-e2e-password"),
    "vic": ("viewer", "vic-e2e-password"),
    "ada": ("admin", "ada-e2e-password"),
}
"""The console users of the browser tests (``console_users``): name → (role, password)."""


def add_user(sandbox: Sandbox, name: str, role: str, password: str) -> None:
    """``qsuite users add NAME --role ROLE --password-stdin`` on the sandbox's database."""
    out = subprocess.run(
        sandbox.command("users", "add", name, "--role", role, "--password-stdin"),
        input=password + "\n",
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        cwd=REPO,
    )
    assert out.returncode == 0, f"qsuite users add {name}: {out.stderr}"


def log_in(page: Page, url: str, name: str) -> None:
    """Open ``url``, which sends the browser to the login page, log in as ``name`` (one
    of :data:`USERS`) and wait until the browser is back on ``url``."""
    page.goto(url)
    form = page.get_by_test_id("login")
    expect(form).to_be_visible(timeout=30_000)
    page.get_by_test_id("login-name").fill(name)  # the <input> itself (Quasar)
    page.get_by_test_id("login-password").fill(USERS[name][1])
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(url, timeout=15_000)
    expect(page.get_by_test_id("user")).to_contain_text(f"{name} ({USERS[name][0]})")

"""``qsuite ui``: the NiceGUI console process (browser tab or native window).

Every page but ``/login`` and ``/logout`` needs a session: without one (or with an
expired one) the browser is sent to ``/login?next=<the page>``. Roles are enforced in
the handlers and in the control plane, not here (see :mod:`ui.session`).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable

from fastapi import Request
from fastapi.responses import RedirectResponse
from loguru import logger
from nicegui import app, background_tasks, ui

from app.logs import configure_logging
from app.settings import Settings
from ui import layout, session
from ui.bridge import Bridge
from ui.layout import frame
from ui.pages import algos, dashboard, data, health, login, market, reports, risk, trading

EXPIRY_CHECK_S = 15.0
"""An open tab notices that its session has ended (and goes to the login) this soon."""


def console(bridge: health.HealthSource) -> None:
    """The health page; the in-process UI tests render it against a fake bridge."""
    frame()
    health.build(bridge)


def routes(bridge: Bridge) -> list[tuple[str, Callable[[], None]]]:
    """Every page of the console: its path and what builds it."""
    return [
        ("/", lambda: dashboard.build(bridge)),
        ("/algos", lambda: algos.build(bridge)),
        ("/trading", lambda: trading.build(bridge)),
        ("/risk", lambda: risk.build(bridge)),
        ("/market", lambda: market.build(bridge.market)),
        ("/data", lambda: data.build(bridge)),
        ("/reports", lambda: reports.build(bridge)),
        ("/health", lambda: health.build(bridge)),
    ]


def _register(path: str, build: Callable[[], None], bridge: layout.StatusSource) -> None:
    """Add the page at ``path``, for logged-in users only."""

    @ui.page(path)
    async def page(request: Request) -> RedirectResponse | None:
        wanted = path + (f"?{request.url.query}" if request.url.query else "")
        if await session.confirm() is None:
            return RedirectResponse(login.url(wanted))
        frame(bridge)
        build()

        def check() -> None:
            if session.current_user() is None:
                timer.deactivate()
                ui.navigate.to(login.url(wanted))

        timer = ui.timer(EXPIRY_CHECK_S, check)
        return None


def register(bridge: Bridge) -> None:
    """Add every page of the console (guarded) and the login and logout pages."""
    login.register()
    for path, build in routes(bridge):
        _register(path, build, bridge)


def _storage_secret(settings: Settings) -> str:
    if settings.ui.storage_secret:
        return settings.ui.storage_secret
    path = settings.data_path / "ui-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _watch_parent() -> None:
    parent = os.environ.get("QSUITE_SUPERVISOR_PID")
    if parent and os.getppid() != int(parent):
        logger.warning("Supervisor is gone; stopping the console")
        app.shutdown()


def run_ui(settings: Settings, *, native: bool) -> int:
    configure_logging("ui", settings.log.level, settings.log_path)
    bridge = Bridge(settings)
    accounts = session.Accounts(settings)  # opens the database at the first login
    session.configure(accounts)
    register(bridge)

    app.on_startup(
        lambda: logger.info("Console on http://{}:{}", settings.ui.host, settings.ui.port)
    )
    app.on_startup(lambda: background_tasks.create(bridge.listen(), name="bus-listener"))
    app.on_startup(lambda: background_tasks.create(bridge.maintain(), name="trading-sync"))
    app.on_shutdown(bridge.close)
    app.on_shutdown(accounts.close)
    app.timer(settings.supervisor.heartbeat_interval_s, bridge.beat)
    app.timer(0.5, _watch_parent)
    ui.run(
        host=settings.ui.host,
        port=settings.ui.port,
        title="QSuite",
        native=native,
        reload=False,
        show=False,
        storage_secret=_storage_secret(settings),
        show_welcome_message=False,
        uvicorn_logging_level="warning",
    )
    return 0

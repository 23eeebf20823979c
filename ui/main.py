"""``qsuite ui``: the NiceGUI console process (browser tab or native window)."""

from __future__ import annotations

import os
import secrets

from loguru import logger
from nicegui import app, background_tasks, ui

from app.logs import configure_logging
from app.settings import Settings
from ui.bridge import Bridge
from ui.pages import health, market, trading


def frame() -> None:
    """The shared layout: title and navigation."""
    with ui.header().classes("items-center gap-6"):
        ui.label("QSuite").classes("text-h6")
        ui.link("Health", "/").classes("text-white")
        ui.link("Market", "/market").classes("text-white")
        ui.link("Orders & book", "/trading").classes("text-white")


def console(bridge: health.HealthSource) -> None:
    """The health page; the in-process UI tests render it against a fake bridge."""
    frame()
    health.build(bridge)


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

    @ui.page("/")
    def index() -> None:
        console(bridge)

    @ui.page("/market")
    def market_page() -> None:
        frame()
        market.build(bridge.market)

    @ui.page("/trading")
    def trading_page() -> None:
        frame()
        trading.build(bridge)

    app.on_startup(
        lambda: logger.info("Console on http://{}:{}", settings.ui.host, settings.ui.port)
    )
    app.on_startup(lambda: background_tasks.create(bridge.listen(), name="bus-listener"))
    app.on_startup(lambda: background_tasks.create(bridge.maintain(), name="trading-sync"))
    app.on_shutdown(bridge.close)
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

"""Which service each process hosts, built by constructor injection in one place."""

from __future__ import annotations

import zmq

from app.settings import Settings
from engine.bus.proxy import BusProxy
from engine.service import HealthStatus, ServiceContext


class BusService:
    """The bus process: the XSUB/XPUB proxy that is the one well-known bus address."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._proxy: BusProxy | None = None

    def start(self, ctx: ServiceContext) -> None:
        bus = self._settings.bus
        self._zmq = zmq.Context()  # the proxy's own context: its thread outlives no socket of ours
        self._proxy = BusProxy(self._zmq, bus.xsub, bus.xpub, bus.capture, hwm=bus.hwm)
        self._proxy.start()

    def health(self) -> tuple[HealthStatus, str]:
        return ("up", "") if self._proxy is not None else ("degraded", "proxy not started")

    def stop(self) -> None:
        if self._proxy is not None:
            self._proxy.stop()
            self._zmq.term()


class SlotService:
    """A process slot whose trading service lands in a later release: it beats, serves the
    common commands (ping, status, log level) and says in its health detail what it hosts."""

    def __init__(self, name: str, purpose: str) -> None:
        self.name = name
        self.purpose = purpose

    def start(self, ctx: ServiceContext) -> None:
        pass

    def health(self) -> tuple[HealthStatus, str]:
        return "up", self.purpose

    def stop(self) -> None:
        pass


SLOT_PURPOSES: dict[str, str] = {}


def build_service(name: str, settings: Settings) -> object:
    """The service of engine process ``name``."""
    if name == "bus":
        return BusService(settings)
    if name == "feed":  # imported here: pandas, yfinance and SQLAlchemy only where needed
        from app.market import build_feed

        return build_feed(settings)
    if name == "analysis":
        from app.analysis import build_analysis

        return build_analysis(settings)
    if name == "execution":
        from app.execution import build_execution

        return build_execution(settings)
    if name == "venue":
        from app import database
        from engine.venue.service import VenueService
        from feeds.cache import cached_quotes

        return VenueService(
            settings.venue,
            engine=database.open_database(settings),
            recent_quotes=lambda: cached_quotes(settings.price_cache_path),
        )
    if name == "scheduler":
        from app.market import build_scheduler

        return build_scheduler(settings)
    return SlotService(name, SLOT_PURPOSES[name])

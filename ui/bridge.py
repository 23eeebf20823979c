"""The console's link to the engine: one control client and the UI's own heartbeat.

Pages never open sockets; they call the bridge. Commands are sent on behalf of the
logged-in user (actor and role), so the control plane enforces roles server-side too.
"""

from __future__ import annotations

import os
import time

import zmq
from loguru import logger

from app import __version__
from app.client import AsyncQSuiteClient
from app.settings import Settings
from engine.bus import topics
from engine.bus.commands import HealthReport
from engine.bus.events import Heartbeat
from engine.bus.publisher import Publisher
from engine.errors import CommandError, EngineUnreachable


class Bridge:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = AsyncQSuiteClient(settings, actor="console", role="viewer")
        self._zmq = zmq.Context()
        self._publisher = Publisher(self._zmq, settings.bus.xsub, "ui", hwm=settings.bus.hwm)
        self._started_at = time.time_ns()
        self.last_error = ""

    def beat(self) -> None:
        self._publisher.publish(
            topics.heartbeat("ui"),
            Heartbeat(
                ts_event=time.time_ns(),
                process="ui",
                pid=os.getpid(),
                version=__version__,
                started_at=self._started_at,
            ),
        )

    async def health(self) -> HealthReport | None:
        """The supervisor's health report, or None with ``last_error`` saying why."""
        try:
            report = await self.client.health()
        except EngineUnreachable as exc:
            self.last_error = str(exc)
            return None
        except CommandError as exc:
            self.last_error = f"Health request refused ({exc.code}): {exc.message}"
            return None
        self.last_error = ""
        return report

    def close(self) -> None:
        logger.info("Console bridge closing")
        self.client.close()
        self._publisher.close()
        self._zmq.term()

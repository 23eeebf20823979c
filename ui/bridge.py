"""The console's link to the engine: one control client and the UI's own heartbeat.

Pages never open sockets; they call the bridge. Commands are sent on behalf of the
logged-in user (actor and role), so the control plane enforces roles server-side too.
"""

from __future__ import annotations

import os
import time

import zmq
import zmq.asyncio
from loguru import logger

from app import __version__
from app.client import AsyncQSuiteClient
from app.settings import Settings
from engine.bus import topics
from engine.bus.commands import HealthReport
from engine.bus.events import Heartbeat
from engine.bus.publisher import Publisher
from engine.bus.subscriber import AsyncSubscriber
from engine.errors import CommandError, EngineUnreachable
from ui.state import MarketView


class Bridge:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = AsyncQSuiteClient(settings, actor="console", role="viewer")
        self._zmq = zmq.Context()
        self._publisher = Publisher(self._zmq, settings.bus.xsub, "ui", hwm=settings.bus.hwm)
        self._started_at = time.time_ns()
        self.last_error = ""
        self.market = MarketView()
        self._async_zmq = zmq.asyncio.Context()
        self._stopping = False
        self._subscriber: AsyncSubscriber | None = None

    async def listen(self) -> None:
        """The console's one bus subscription: quotes and feed state into the view state.
        Runs for the life of the process (started at app start-up)."""
        self._subscriber = subscriber = AsyncSubscriber(
            self._async_zmq,
            self.settings.bus.xpub,
            [topics.QUOTES, topics.FEED_STATES],
            hwm=self.settings.bus.hwm,
        )
        try:
            while not self._stopping:
                message = await subscriber.recv(timeout_ms=500)
                if message is not None:
                    self.market.apply(message[1])
        except zmq.ZMQError:  # closed by close() at shutdown
            pass
        finally:
            subscriber.close()

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
        self._stopping = True
        if self._subscriber is not None:
            self._subscriber.close()
        self.client.close()
        self._publisher.close()
        self._zmq.term()
        self._async_zmq.term()

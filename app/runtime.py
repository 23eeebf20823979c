"""The loop every engine process runs: one thread, one ZeroMQ context, one poller.

It owns the process's sockets — a bus publisher, a bus subscriber (created when a
service first subscribes), the control server — plus timers, the heartbeat, the
metrics endpoint and signal handling, and hosts one :class:`engine.service.Service`.
Crash-only: state that matters is persisted by services; SIGTERM/SIGINT stop the loop,
and the process also stops by itself when its supervisor (parent) disappears.
"""

from __future__ import annotations

import heapq
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import zmq
from loguru import logger

from app import __version__
from app.inbox import Inbox
from app.logs import configure_logging, current_level, set_level
from app.metrics import start_metrics_server
from app.settings import Settings
from engine.bus import topics
from engine.bus.channel import Channel, ChannelRole, MessageHandler, ZmqChannel
from engine.bus.commands import (
    Command,
    GetStatus,
    LogLevelSet,
    Ping,
    Pong,
    ProcessStatus,
    Result,
    SetLogLevel,
    tag_of,
)
from engine.bus.control import CommandJournal, ControlServer
from engine.bus.events import Event, Heartbeat, LogLevelChanged
from engine.bus.publisher import Publisher
from engine.bus.subscriber import Subscriber
from engine.clock import Clock, LiveClock
from engine.service import CommandHandler, EventHandler, Service
from engine.stats import STATS, StatsRegistry

T = TypeVar("T")

#: Counters carried in every heartbeat (summed over labels) for the health panel.
HEARTBEAT_COUNTERS = (
    "qsuite_bus_published_total",
    "qsuite_bus_received_total",
    "qsuite_bus_dropped_total",
    "qsuite_bus_gaps_total",
    "qsuite_bus_malformed_total",
    "qsuite_control_commands_total",
    "qsuite_runtime_errors_total",
)

#: How often the idempotency journal drops entries past their time-to-live.
JOURNAL_EXPIRY_S = 3600.0


@dataclass(order=True)
class _Timer:
    due: float
    name: str = field(compare=False)
    interval: float = field(compare=False)
    fn: Callable[[], object] = field(compare=False)


class ProcessRuntime:
    """Hosts one service in one process. Implements :class:`engine.service.ServiceContext`."""

    def __init__(
        self,
        process: str,
        settings: Settings,
        service: Service,
        *,
        control_endpoint: str,
        metrics_port: int | None,
        clock: Clock | None = None,
        stats: StatsRegistry = STATS,
        parent_pid: int | None = None,
    ) -> None:
        self.process = process
        self.settings = settings
        self.service = service
        self.clock: Clock = clock or LiveClock()
        self.stats = stats
        self._control_endpoint = control_endpoint
        self._metrics_port = metrics_port
        self._parent_pid = parent_pid
        self._started_at = self.clock.time_ns()
        self._timers: list[_Timer] = []
        self._handlers: list[tuple[str, EventHandler]] = []
        self._stopping = False
        self._commands: list[str] = []
        self._inbox = Inbox(name=f"{process}-worker")
        self._errors = stats.counter(
            "qsuite_runtime_errors_total", "Exceptions caught on the process loop", process=process
        )
        self._ctx = zmq.Context()
        self._publisher = Publisher(
            self._ctx,
            settings.bus.xsub,
            process,
            hwm=settings.bus.hwm,
            clock=self.clock,
            stats=stats,
        )
        self._subscriber: Subscriber | None = None
        self._channels: list[ZmqChannel] = []
        self._journal = CommandJournal(settings.data_path / "journal" / process)
        self._control = ControlServer(
            self._ctx,
            control_endpoint,
            process,
            journal=self._journal,
            max_message_bytes=settings.control.max_message_bytes,
            clock=self.clock,
            stats=stats,
        )
        self.register_command(Ping, self._ping)
        self.register_command(GetStatus, self._status)
        self.register_command(SetLogLevel, self._set_log_level)

    # --- ServiceContext ----------------------------------------------------------------
    def publish(self, topic: str, event: Event) -> Event:
        return self._publisher.publish(topic, event)

    def register_command(self, command_type: type[Command], handler: CommandHandler) -> None:
        self._control.register(command_type, handler)
        self._commands.append(tag_of(command_type))

    def subscribe(self, prefix: str, handler: EventHandler) -> None:
        if self._subscriber is None:
            self._subscriber = Subscriber(
                self._ctx, self.settings.bus.xpub, (), hwm=self.settings.bus.hwm, stats=self.stats
            )
        self._subscriber.subscribe(prefix)
        self._handlers.append((prefix, handler))

    def call_every(self, interval_s: float, fn: Callable[[], object], name: str) -> None:
        heapq.heappush(
            self._timers, _Timer(self.clock.monotonic() + interval_s, name, interval_s, fn)
        )

    def call_soon_threadsafe(self, fn: Callable[[], object]) -> None:
        self._inbox.call_soon_threadsafe(fn)

    def run_in_worker(self, fn: Callable[[], T], on_done: Callable[[Future[T]], object]) -> None:
        self._inbox.run_in_worker(fn, on_done)

    # --- built-in commands -------------------------------------------------------------
    def open_channel(
        self, name: str, role: ChannelRole, endpoint: str, on_message: MessageHandler, setting: str
    ) -> Channel:
        def guarded(peer: bytes, frames: list[bytes]) -> None:
            try:
                on_message(peer, frames)
            except Exception:
                self._errors.inc()
                logger.opt(exception=True).error("Cannot handle a message on channel {}", name)

        channel = ZmqChannel(
            self._ctx,
            name,
            role,
            endpoint,
            guarded,
            setting=setting,
            max_message_bytes=self.settings.control.max_message_bytes,
            stats=self.stats,
        )
        self._channels.append(channel)
        return channel

    def _ping(self, _cmd: Ping) -> Result:
        uptime = (self.clock.time_ns() - self._started_at) / 1e9
        return Pong(process=self.process, pid=os.getpid(), version=__version__, uptime_s=uptime)

    def _status(self, _cmd: GetStatus) -> Result:
        return ProcessStatus(
            process=self.process,
            pid=os.getpid(),
            version=__version__,
            started_at=self._started_at,
            log_level=current_level(),
            commands=sorted(self._commands),
            counters=self.stats.snapshot(),
        )

    def _set_log_level(self, cmd: SetLogLevel) -> Result:
        previous = set_level(cmd.level)
        now = self.clock.time_ns()
        logger.bind(command_id=cmd.command_id).info(
            "Log level changed from {} to {} by {}", previous, cmd.level, cmd.actor or "unknown"
        )
        self.publish(
            topics.log_level(self.process),
            LogLevelChanged(
                ts_event=now,
                process=self.process,
                previous=previous,
                current=cmd.level,
                command_id=cmd.command_id,
            ),
        )
        return LogLevelSet(
            process=self.process, previous=previous, current=cmd.level, applied_at=now
        )

    # --- loop ----------------------------------------------------------------------------
    def _heartbeat(self) -> None:
        status, detail = self.service.health()
        counters = {name: self.stats.total(name) for name in HEARTBEAT_COUNTERS}
        self.publish(
            topics.heartbeat(self.process),
            Heartbeat(
                ts_event=self.clock.time_ns(),
                process=self.process,
                pid=os.getpid(),
                version=__version__,
                started_at=self._started_at,
                status=status,
                detail=detail,
                counters=counters,
            ),
        )

    def _watch_parent(self) -> None:
        if self._parent_pid is not None and os.getppid() != self._parent_pid:
            logger.warning("Supervisor (pid {}) is gone; stopping", self._parent_pid)
            self._stopping = True

    def _dispatch(self, topic: str, event: Any) -> None:
        for prefix, handler in self._handlers:
            if not prefix or topic == prefix or topic.startswith(prefix + "."):
                try:
                    handler(topic, event)
                except Exception:
                    self._errors.inc()
                    logger.opt(exception=True).error("Cannot handle event on {}", topic)

    def _run_timers(self) -> None:
        now = self.clock.monotonic()
        while self._timers and self._timers[0].due <= now:
            timer = heapq.heappop(self._timers)
            try:
                timer.fn()
            except Exception:
                self._errors.inc()
                logger.opt(exception=True).error("Timer {} failed", timer.name)
            timer.due = max(timer.due + timer.interval, now)
            heapq.heappush(self._timers, timer)

    def request_stop(self, *_: Any) -> None:
        self._stopping = True

    def run(self) -> int:
        """Run until SIGTERM/SIGINT (or the parent disappears). Returns the exit code."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        if self.settings.metrics.enabled and self._metrics_port is not None:
            _server, port = start_metrics_server(
                self.stats,
                self.settings.metrics.host,
                self._metrics_port,
                f"processes.{self.process}.metrics_port",
            )
            logger.info("Metrics on http://{}:{}/metrics", self.settings.metrics.host, port)
        self.service.start(self)
        self.call_every(self.settings.supervisor.heartbeat_interval_s, self._heartbeat, "heartbeat")
        self.call_every(0.5, self._watch_parent, "watch-parent")
        self.call_every(JOURNAL_EXPIRY_S, lambda: self._journal.expire(), "journal-expiry")
        self._heartbeat()
        logger.info(
            "{} started (pid {}), control on {}", self.process, os.getpid(), self._control_endpoint
        )
        poller = zmq.Poller()
        poller.register(self._control.socket, zmq.POLLIN)
        poller.register(self._inbox.fd, zmq.POLLIN)
        polled_sub: Subscriber | None = None
        polled: dict[Any, ZmqChannel] = {}
        try:
            while not self._stopping:
                if self._subscriber is not None and polled_sub is None:
                    polled_sub = self._subscriber
                    poller.register(polled_sub.socket, zmq.POLLIN)
                if len(polled) != len(self._channels):
                    for channel in self._channels[len(polled) :]:
                        polled[channel.socket] = channel
                        poller.register(channel.socket, zmq.POLLIN)
                wait_s = self._timers[0].due - self.clock.monotonic() if self._timers else 0.1
                ready = dict(poller.poll(int(min(max(wait_s, 0.0), 0.1) * 1000)))
                if self._control.socket in ready:
                    self._control.handle_ready()
                if polled_sub is not None and polled_sub.socket in ready:
                    polled_sub.handle_ready(self._dispatch)
                for sock, channel in polled.items():
                    if sock in ready:
                        channel.handle_ready()
                if self._inbox.fd in ready:
                    self._inbox.drain()
                self._run_timers()
        finally:
            self.close()
        return 0

    def close(self) -> None:
        self._inbox.close()  # workers finish and hand back before the service stops
        try:
            self.service.stop()
        except Exception:
            logger.opt(exception=True).error("Service {} failed to stop cleanly", self.process)
        for channel in self._channels:
            channel.close()
        self._control.close()
        self._journal.close()
        if self._subscriber is not None:
            self._subscriber.close()
        self._publisher.close()
        self._ctx.term()
        logger.info("{} stopped", self.process)


def run_process(
    process: str,
    settings: Settings,
    build: Callable[[], Service],
    *,
    control_endpoint: str,
    metrics_port: int | None,
) -> int:
    """Entry point used by the CLI for one engine process; ``build`` makes its service."""
    configure_logging(process, settings.log.level, settings.log_path)
    parent = os.environ.get("QSUITE_SUPERVISOR_PID")
    runtime = ProcessRuntime(
        process,
        settings,
        build(),  # after logging is set up: building may already log
        control_endpoint=control_endpoint,
        metrics_port=metrics_port,
        parent_pid=int(parent) if parent else None,
    )
    started = time.monotonic()
    code = runtime.run()
    logger.info("{} ran for {:.1f}s", process, time.monotonic() - started)
    return code

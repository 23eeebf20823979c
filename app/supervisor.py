"""``qsuite run``: start every process as a subprocess, keep them alive, stop them in order.

The supervisor is itself a process runtime (it beats, serves control commands and
exports metrics) hosting :class:`SupervisorService`. Children are started with
``subprocess.Popen`` (fork + exec: nothing of this process's ZeroMQ context survives in
them) in their own session, so Ctrl-C reaches only the supervisor, which then stops
them in order: the UI, the engine processes, the bus last. A child that exits or stops
beating is restarted with exponential backoff; children exit by themselves if the
supervisor dies (they watch their parent pid).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from loguru import logger

from app.health import HealthMonitor
from app.settings import ENGINE_PROCESSES, Settings
from engine.bus import topics
from engine.bus.commands import GetHealth, ProcessRestarted, RestartProcess, Result
from engine.bus.endpoints import remove_ipc_file
from engine.bus.events import Heartbeat, ProcessStateChanged, ProcessTransition
from engine.errors import CommandError, ErrorCode
from engine.service import HealthStatus, ServiceContext

#: A child that stayed up this long has its backoff reset.
STABLE_AFTER_S = 30.0
#: How long the rest waits for the bus's first heartbeat before starting anyway.
BUS_WAIT_S = 5.0


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    failures: int = 0
    next_start: float = 0.0
    started_mono: float = 0.0
    launches: int = 0
    tier: int = 1  # 0 = bus, 1 = engine, 2 = ui: started in this order, stopped in reverse
    extra: dict[str, str] = field(default_factory=dict)


def child_argv(config_file: str | None, *args: str) -> list[str]:
    base = [sys.executable, "-m", "app"]
    if config_file:
        base += ["--config", str(Path(config_file).resolve())]
    return [*base, *args]


class SupervisorService:
    """Launches, watches and restarts the platform's processes."""

    def __init__(
        self,
        settings: Settings,
        config_file: str | None,
        *,
        headless: bool,
        native: bool = False,
    ) -> None:
        self.settings = settings
        sup = settings.supervisor
        self.children: dict[str, Child] = {}
        for name in ENGINE_PROCESSES:
            if settings.processes[name].enabled:
                argv = (
                    child_argv(config_file, "bus")
                    if name == "bus"
                    else child_argv(config_file, "engine", name)
                )
                self.children[name] = Child(name, argv, tier=0 if name == "bus" else 1)
        if not headless:
            ui_args = ["ui", "--native"] if native else ["ui"]
            self.children["ui"] = Child("ui", child_argv(config_file, *ui_args), tier=2)
        self._ctx: ServiceContext | None = None
        self.monitor: HealthMonitor | None = None
        self._began = 0.0
        self._sup = sup

    # --- Service -----------------------------------------------------------------------
    def start(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        sup = self._sup
        self.monitor = HealthMonitor(
            ctx.clock, sup.heartbeat_interval_s, sup.heartbeat_timeout_s, sup.startup_grace_s
        )
        for name in self.children:
            self.monitor.expect(name)
        ctx.subscribe(topics.HEARTBEATS, self._on_heartbeat)
        ctx.register_command(GetHealth, self._health)
        ctx.register_command(RestartProcess, self._restart)
        self._began = ctx.clock.monotonic()
        ctx.call_every(0.2, self._check, "supervise")
        self._check()

    def health(self) -> tuple[HealthStatus, str]:
        down = [n for n, c in self.children.items() if c.proc is None]
        return (
            ("degraded", f"restarting: {', '.join(down)}") if down and self._began else ("up", "")
        )

    def stop(self) -> None:
        for tier in (2, 1, 0):
            group = [c for c in self.children.values() if c.tier == tier and c.proc is not None]
            for child in group:
                self._signal(child, signal.SIGTERM)
            for child in group:
                self._reap(child, self._sup.stop_timeout_s)
                self._emit(child, "stopped")
                if self.monitor:
                    self.monitor.stopped(child.name)
        self._remove_ipc_files()

    # --- commands ------------------------------------------------------------------------
    def _health(self, _cmd: GetHealth) -> Result:
        assert self.monitor is not None
        return self.monitor.report()

    def _restart(self, cmd: RestartProcess) -> Result:
        child = self.children.get(cmd.process)
        if child is None:
            raise CommandError(
                ErrorCode.NOT_FOUND,
                f"no supervised process {cmd.process!r}; known: {', '.join(self.children)}",
            )
        old_pid = child.proc.pid if child.proc else 0
        if child.proc is not None:
            self._signal(child, signal.SIGTERM)
            self._reap(child, self._sup.stop_timeout_s)
        logger.bind(command_id=cmd.command_id).info(
            "Restarting {} on request of {}", child.name, cmd.actor or "unknown"
        )
        self._launch(child, restart=True, reason=f"restart requested by {cmd.actor or 'unknown'}")
        assert child.proc is not None
        return ProcessRestarted(process=child.name, old_pid=old_pid, new_pid=child.proc.pid)

    # --- supervision -------------------------------------------------------------------
    def _on_heartbeat(self, _topic: str, event: object) -> None:
        if isinstance(event, Heartbeat) and self.monitor is not None:
            self.monitor.beat(event)

    def _bus_ready(self, now: float) -> bool:
        if "bus" not in self.children or now - self._began > BUS_WAIT_S:
            return True
        assert self.monitor is not None
        return self.monitor.heartbeat_age("bus") is not None

    def _check(self) -> None:
        assert self._ctx is not None and self.monitor is not None
        now = self._ctx.clock.monotonic()
        for child in self.children.values():
            if child.proc is not None:
                code = child.proc.poll()
                if code is not None:
                    self._lost(child, now, f"exited with code {code}", code)
                elif self.monitor.is_overdue(child.name):
                    logger.warning("{} stopped beating; killing pid {}", child.name, child.proc.pid)
                    self._signal(child, signal.SIGKILL)
                    self._reap(child, 2.0)
                    self._lost(child, now, "stopped beating", None)
                elif child.failures and now - child.started_mono > STABLE_AFTER_S:
                    child.failures = 0
            elif now >= child.next_start and (child.tier == 0 or self._bus_ready(now)):
                self._launch(child, restart=child.launches > 0, reason="")

    def _lost(self, child: Child, now: float, why: str, code: int | None) -> None:
        assert self.monitor is not None
        child.proc = None
        delay = min(
            self._sup.restart_backoff_initial_s * 2**child.failures, self._sup.restart_backoff_max_s
        )
        child.failures += 1
        child.next_start = now + delay
        self.monitor.exited(child.name, f"{why}; restarting in {delay:.1f}s")
        logger.error("{} {}; restarting in {:.1f}s", child.name, why, delay)
        self._emit(child, "exited", exit_code=code, reason=why)

    def _launch(self, child: Child, *, restart: bool, reason: str) -> None:
        assert self._ctx is not None and self.monitor is not None
        env = {**os.environ, "QSUITE_SUPERVISOR_PID": str(os.getpid()), **child.extra}
        child.proc = subprocess.Popen(child.argv, env=env, start_new_session=True)
        child.started_mono = self._ctx.clock.monotonic()
        child.launches += 1
        self.monitor.launched(child.name, child.proc.pid)
        if restart:
            self.monitor.restarted(child.name)
        logger.info(
            "{} {} (pid {})", "Restarted" if restart else "Started", child.name, child.proc.pid
        )
        self._emit(child, "restarting" if restart else "starting", reason=reason)

    def _signal(self, child: Child, sig: int) -> None:
        if child.proc is not None and child.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.proc.pid, sig)

    def _reap(self, child: Child, timeout_s: float) -> None:
        if child.proc is None:
            return
        try:
            child.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            logger.warning("{} did not stop within {:.1f}s; killing it", child.name, timeout_s)
            self._signal(child, signal.SIGKILL)
            child.proc.wait(timeout=5)
        child.proc = None

    def _emit(
        self,
        child: Child,
        state: ProcessTransition,
        *,
        exit_code: int | None = None,
        reason: str = "",
    ) -> None:
        assert self._ctx is not None and self.monitor is not None
        restarts = self.monitor.state_of(child.name).restarts
        self._ctx.publish(
            topics.process_state(child.name),
            ProcessStateChanged(
                ts_event=self._ctx.clock.time_ns(),
                process=child.name,
                state=state,
                pid=child.proc.pid if child.proc else 0,
                exit_code=exit_code,
                restarts=restarts,
                reason=reason,
            ),
        )

    def _remove_ipc_files(self) -> None:
        s = self.settings
        endpoints = [
            s.bus.xsub,
            s.bus.xpub,
            s.bus.capture,
            *(p.control for p in s.processes.values()),
        ]
        for endpoint in endpoints:
            remove_ipc_file(endpoint)


def run_supervisor(
    settings: Settings, config_file: str | None, *, headless: bool, native: bool
) -> int:
    """``qsuite run``: migrate the database, then supervise every process until stopped."""
    from app import database
    from app.logs import configure_logging
    from app.runtime import ProcessRuntime

    configure_logging("supervisor", settings.log.level, settings.log_path)
    if settings.database.auto_migrate:
        database.upgrade(settings)
    service = SupervisorService(settings, config_file, headless=headless, native=native)
    runtime = ProcessRuntime(
        "supervisor",
        settings,
        service,
        control_endpoint=settings.supervisor.control,
        metrics_port=settings.supervisor.metrics_port,
    )
    logger.info(
        "QSuite starting {} process(es){}; data in {}",
        len(service.children),
        " headless" if headless else f", console on http://{settings.ui.host}:{settings.ui.port}",
        settings.data_path,
    )
    return runtime.run()

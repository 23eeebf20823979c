"""The health monitor: heartbeats and supervisor facts in, up/degraded/down out.

Pure logic over an injected clock, so every rule is unit-tested without sockets:

- ``starting``: launched, no heartbeat yet, still inside the start-up grace;
- ``up``: last heartbeat younger than ``stale_after_s`` and reporting ``up``;
- ``degraded``: the process says so (with a reason), or its heartbeat is late
  (older than ``stale_after_s`` but not yet ``timeout_s``);
- ``down``: not running, no heartbeat within the grace, or heartbeat older than ``timeout_s``;
- ``stopped``: stopped on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from engine.bus.commands import HealthReport, ProcessHealth
from engine.bus.events import Heartbeat
from engine.clock import Clock

HealthState = Literal["up", "degraded", "down", "starting", "stopped"]
Overall = Literal["up", "degraded", "down"]


@dataclass
class _Entry:
    running: bool = False
    launched_at: float | None = None
    stopped: bool = False
    pid: int = 0
    restarts: int = 0
    last_beat_mono: float | None = None
    last_beat: Heartbeat | None = None
    note: str = ""


@dataclass
class HealthMonitor:
    clock: Clock
    interval_s: float
    timeout_s: float
    startup_grace_s: float
    _entries: dict[str, _Entry] = field(default_factory=dict)

    def expect(self, process: str) -> None:
        """Track a process (it shows as down until it is launched)."""
        self._entries.setdefault(process, _Entry())

    def launched(self, process: str, pid: int) -> None:
        entry = self._entries.setdefault(process, _Entry())
        entry.running, entry.stopped, entry.pid = True, False, pid
        entry.launched_at = self.clock.monotonic()
        entry.last_beat_mono, entry.last_beat, entry.note = None, None, ""

    def exited(self, process: str, note: str) -> None:
        entry = self._entries.setdefault(process, _Entry())
        entry.running, entry.note = False, note

    def restarted(self, process: str) -> None:
        self._entries.setdefault(process, _Entry()).restarts += 1

    def stopped(self, process: str) -> None:
        entry = self._entries.setdefault(process, _Entry())
        entry.running, entry.stopped = False, True

    def beat(self, heartbeat: Heartbeat) -> None:
        entry = self._entries.get(heartbeat.process)
        if entry is None:  # an unsupervised process on the same bus: report it too
            entry = self._entries[heartbeat.process] = _Entry(running=True, pid=heartbeat.pid)
        if entry.running and entry.pid and heartbeat.pid != entry.pid:
            return  # a late beat of a previous incarnation
        entry.last_beat, entry.last_beat_mono = heartbeat, self.clock.monotonic()

    def heartbeat_age(self, process: str) -> float | None:
        entry = self._entries.get(process)
        if entry is None or entry.last_beat_mono is None:
            return None
        return self.clock.monotonic() - entry.last_beat_mono

    def is_overdue(self, process: str) -> bool:
        """True when a running process should have beaten by now and has not (restart it)."""
        entry = self._entries.get(process)
        if entry is None or not entry.running:
            return False
        now = self.clock.monotonic()
        if entry.last_beat_mono is None:
            return entry.launched_at is not None and now - entry.launched_at > self.startup_grace_s
        return now - entry.last_beat_mono > self.timeout_s

    def state_of(self, process: str) -> ProcessHealth:
        entry = self._entries.get(process, _Entry())
        age = self.heartbeat_age(process)
        beat = entry.last_beat
        state, detail = self._classify(process, entry, age)
        return ProcessHealth(
            process=process,
            state=state,
            pid=entry.pid,
            version=beat.version if beat else "",
            heartbeat_age_s=None if age is None else round(age, 3),
            restarts=entry.restarts,
            detail=detail,
            counters=dict(beat.counters) if beat else {},
        )

    def _classify(self, process: str, entry: _Entry, age: float | None) -> tuple[HealthState, str]:
        beat = entry.last_beat
        if entry.stopped:
            return "stopped", "stopped by the supervisor"
        if not entry.running:
            return "down", entry.note or "not running"
        if age is None:
            if self.is_overdue(process):
                return "down", "no heartbeat since start"
            return "starting", "waiting for the first heartbeat"
        if age > self.timeout_s:
            return "down", f"no heartbeat for {age:.1f}s"
        if age > 2.5 * self.interval_s:
            return "degraded", f"heartbeat late ({age:.1f}s)"
        if beat is not None and beat.status == "degraded":
            return "degraded", beat.detail
        return "up", beat.detail if beat else ""

    def report(self) -> HealthReport:
        states = [self.state_of(name) for name in self._entries]
        kinds = {s.state for s in states}
        overall: Overall = "up"
        if not states or kinds & {"down", "starting"}:
            overall = "down"
        elif "degraded" in kinds:
            overall = "degraded"
        return HealthReport(overall=overall, processes=states, generated_at=self.clock.time_ns())

from __future__ import annotations

from app.health import HealthMonitor
from engine.bus.events import Heartbeat
from engine.clock import FakeClock


def _monitor(clock: FakeClock) -> HealthMonitor:
    return HealthMonitor(clock, interval_s=1.0, timeout_s=5.0, startup_grace_s=10.0)


def _beat(process: str, pid: int, status: str = "up", detail: str = "") -> Heartbeat:
    return Heartbeat(
        ts_event=0,
        process=process,
        pid=pid,
        version="1",
        started_at=0,
        status=status,
        detail=detail,
    )  # type: ignore[arg-type]


def test_state_when_launched_without_beat_then_starting_until_grace_then_down() -> None:
    clock = FakeClock()
    mon = _monitor(clock)
    mon.launched("feed", 10)
    assert mon.state_of("feed").state == "starting"
    clock.advance(10.5)
    assert mon.state_of("feed").state == "down"
    assert mon.is_overdue("feed")


def test_state_when_beats_then_up_late_then_degraded_then_down() -> None:
    clock = FakeClock()
    mon = _monitor(clock)
    mon.launched("feed", 10)
    mon.beat(_beat("feed", 10))
    assert mon.state_of("feed").state == "up"
    clock.advance(3.0)
    assert mon.state_of("feed").state == "degraded"
    assert not mon.is_overdue("feed")
    clock.advance(2.5)
    state = mon.state_of("feed")
    assert state.state == "down" and "no heartbeat" in state.detail
    assert mon.is_overdue("feed")


def test_state_when_process_reports_degraded_then_detail_shown() -> None:
    clock = FakeClock()
    mon = _monitor(clock)
    mon.launched("feed", 10)
    mon.beat(_beat("feed", 10, "degraded", "Yahoo breaker open"))
    state = mon.state_of("feed")
    assert (state.state, state.detail) == ("degraded", "Yahoo breaker open")
    assert mon.report().overall == "degraded"


def test_beat_when_from_previous_incarnation_then_ignored() -> None:
    clock = FakeClock()
    mon = _monitor(clock)
    mon.launched("feed", 10)
    mon.exited("feed", "killed")
    mon.launched("feed", 11)
    mon.restarted("feed")
    mon.beat(_beat("feed", 10))
    assert mon.state_of("feed").state == "starting"
    mon.beat(_beat("feed", 11))
    state = mon.state_of("feed")
    assert (state.state, state.pid, state.restarts) == ("up", 11, 1)


def test_report_when_one_down_then_overall_down_and_stopped_does_not_count() -> None:
    clock = FakeClock()
    mon = _monitor(clock)
    for name, pid in (("bus", 1), ("feed", 2)):
        mon.launched(name, pid)
        mon.beat(_beat(name, pid))
    assert mon.report().overall == "up"
    mon.stopped("feed")
    assert mon.report().overall == "up"
    mon.exited("bus", "exited with code 1")
    report = mon.report()
    assert report.overall == "down"
    assert {p.process: p.state for p in report.processes} == {"bus": "down", "feed": "stopped"}

"""Injected time. Services never call ``time.time()`` directly so tests can drive time."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def time_ns(self) -> int:
        """Wall-clock UTC time in nanoseconds since the epoch."""

    def monotonic(self) -> float:
        """Monotonic seconds, for intervals and deadlines."""


class LiveClock:
    """The real clock."""

    def time_ns(self) -> int:
        return time.time_ns()

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that only moves when told to (tests, backtests)."""

    def __init__(self, start_ns: int = 1_700_000_000 * 1_000_000_000) -> None:
        self._ns = start_ns
        self._mono = 0.0

    def time_ns(self) -> int:
        return self._ns

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot move backwards")
        self._ns += int(seconds * 1_000_000_000)
        self._mono += seconds

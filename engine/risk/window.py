"""Sliding time windows on injected time (UTC ns): rates, rolling sums, recent orders.

All of them take ``now_ns`` from the caller and never read a clock. Entries older than
the window are dropped lazily, so every operation is amortized O(1). A clock that goes
backwards keeps the newer entries (they count until they are old enough): conservative.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable
from decimal import Context, Decimal

NS = 1_000_000_000
ZERO = Decimal(0)
#: Wide enough that sums of ledger-sized values never round.
CONTEXT = Context(prec=80)


class RateWindow:
    """At most ``rate`` events per second: ``ceil(rate)`` events in any window of
    ``ceil(rate) / rate`` seconds (10/s → 10 per 1 s; 0.5/s → 1 per 2 s)."""

    __slots__ = ("_times", "allowed", "rate", "span_ns")

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.allowed = max(1, math.ceil(rate))
        self.span_ns = int(self.allowed / rate * NS)
        self._times: deque[int] = deque()

    def count(self, now_ns: int) -> int:
        """Events within the window ending at ``now_ns``."""
        times = self._times
        edge = now_ns - self.span_ns
        while times and times[0] <= edge:
            times.popleft()
        return len(times)

    def would_exceed(self, now_ns: int) -> bool:
        return self.count(now_ns) >= self.allowed

    def observed_rate(self, now_ns: int, extra: int = 1) -> Decimal:
        """Events per second within the window with ``extra`` more."""
        return Decimal(self.count(now_ns) + extra) * NS / Decimal(self.span_ns)

    def add(self, now_ns: int) -> None:
        self._times.append(now_ns)


class RollingSum:
    """The sum of the quantities added within the last ``window_ns``."""

    __slots__ = ("_entries", "_total", "window_ns")

    def __init__(self, window_ns: int) -> None:
        self.window_ns = window_ns
        self._entries: deque[tuple[int, Decimal]] = deque()
        self._total = ZERO

    def total(self, now_ns: int) -> Decimal:
        entries = self._entries
        edge = now_ns - self.window_ns
        if entries and entries[0][0] <= edge:
            total = self._total
            while entries and entries[0][0] <= edge:
                total = CONTEXT.subtract(total, entries.popleft()[1])
            self._total = total if entries else ZERO
        return self._total

    def add(self, now_ns: int, qty: Decimal) -> None:
        self._entries.append((now_ns, qty))
        self._total = CONTEXT.add(self._total, qty)


class RecentKeys:
    """Keys seen within a window, e.g. ``(account, symbol, side, qty, price)`` of sent
    orders for the duplicate check; each key remembers when it was last seen."""

    __slots__ = ("_last", "_order")

    def __init__(self) -> None:
        self._last: dict[Hashable, int] = {}
        self._order: deque[tuple[int, Hashable]] = deque()

    def seen_within(self, key: Hashable, now_ns: int, window_ns: int) -> int | None:
        """When ``key`` was last seen, if within ``window_ns`` before ``now_ns``."""
        ts = self._last.get(key)
        if ts is None or now_ns - ts >= window_ns:
            return None
        return ts

    def add(self, key: Hashable, now_ns: int, keep_ns: int) -> None:
        """Remember ``key`` at ``now_ns``; forget keys older than ``keep_ns``."""
        self._last[key] = now_ns
        order = self._order
        order.append((now_ns, key))
        edge = now_ns - keep_ns
        while order and order[0][0] <= edge:
            ts, old = order.popleft()
            if self._last.get(old) == ts:
                del self._last[old]

    def __len__(self) -> int:
        return len(self._last)

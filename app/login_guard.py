"""Login throttling: a user name that keeps failing is locked out, for longer each time.

After ``max_failures`` failed logins in a row for one user name, every login as that
name is refused without its password being checked (so a guessed password cannot get in
during the lock) for ``lockout_s`` seconds; each further failure locks it again at once,
twice as long as before, up to ``MAX_LOCKOUT_S``. A success forgets the failures, and
so does ``FORGET_S`` without a failure once a lock has ended. Known and unknown names
are treated alike, so the lock tells nobody which users exist.

The state is in memory, per console process (a restart forgets it), and bounded: at
most ``max_names`` names are tracked, the least recently failed forgotten first.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from engine.errors import QSuiteError

MAX_NAMES = 10_000
MAX_LOCKOUT_S = 900.0
FORGET_S = 900.0


class LockedOut(QSuiteError):
    """Too many failed logins for a user name; ``retry_after_s`` until the next try."""

    def __init__(self, name: str, retry_after_s: float) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(
            f"Too many failed logins as {name}; try again in {math.ceil(retry_after_s)} s"
        )


@dataclass(slots=True)
class _Failures:
    count: int
    last: float


class LoginGuard:
    """See the module docstring; ``clock`` is monotonic seconds (tests inject one)."""

    def __init__(
        self,
        max_failures: int,
        lockout_s: float,
        *,
        max_names: int = MAX_NAMES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_failures < 1 or not lockout_s > 0 or max_names < 1:
            raise ValueError("max_failures, lockout_s and max_names must be positive")
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self._max_names = max_names
        self._clock = clock
        self._failures: OrderedDict[str, _Failures] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, name: str) -> None:
        """Raise :class:`LockedOut` while ``name`` is locked out."""
        key = _key(name)
        with self._lock:
            entry = self._failures.get(key)
            left = 0.0 if entry is None else entry.last + self._lock_s(entry) - self._clock()
        if left > 0:
            raise LockedOut(key, left)

    def failed(self, name: str) -> float:
        """Count a failed login as ``name``; the seconds it is locked out for now (0: not
        locked)."""
        key, now = _key(name), self._clock()
        with self._lock:
            entry = self._failures.pop(key, None)
            if entry is None or now - entry.last >= self._lock_s(entry) + FORGET_S:
                entry = _Failures(0, now)
            entry.count += 1
            entry.last = now
            self._failures[key] = entry
            while len(self._failures) > self._max_names:
                self._failures.popitem(last=False)
            return self._lock_s(entry)

    def succeeded(self, name: str) -> None:
        """A login as ``name`` succeeded: its failures are forgotten."""
        with self._lock:
            self._failures.pop(_key(name), None)

    def _lock_s(self, entry: _Failures) -> float:
        over = entry.count - self.max_failures
        if over < 0:
            return 0.0
        return min(self.lockout_s * 2.0 ** min(over, 32), MAX_LOCKOUT_S)


def _key(name: str) -> str:
    return name.strip().lower()[:64] or "?"

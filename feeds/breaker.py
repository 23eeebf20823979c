"""A circuit breaker around one external market-data source.

States (:data:`engine.bus.events.BreakerState`)::

    closed ──N consecutive failures──▶ open ──cool-down elapsed──▶ half_open
      ▲                                 ▲                             │
      └──────── trial call succeeded ───┼─────────────────────────────┤
                                        └── trial call failed ────────┘
                                            (cool-down doubled, capped)

- **closed**: every call goes through; ``failure_threshold`` consecutive failures open
  the breaker. A success resets the count.
- **open**: calls are refused (:meth:`CircuitBreaker.allow` is false,
  :meth:`~CircuitBreaker.before_call` raises :class:`BreakerOpen`) until the cool-down
  has elapsed; then the next ``allow`` moves to half_open.
- **half_open**: up to ``half_open_max_calls`` trial calls go through at once. A
  success closes the breaker and resets the cool-down to ``cool_down_s``; a failure
  opens it again with the cool-down doubled (at most ``max_cool_down_s``).

Rate limits: a :class:`~feeds.source.RateLimited` error that names a ``retry_after_s``
opens the breaker at once (the source told us to stop), for at least that long (at most
``max_cool_down_s``); without ``retry_after_s`` it counts as an ordinary failure.

Which errors count is the source contract (:mod:`feeds.source`): ``SourceUnavailable``,
``RateLimited`` and ``SourceDataError`` are failures of the source; ``SymbolNotFound`` is
the caller's mistake and leaves the breaker alone, as does any other exception (a bug
here is not an outage there). Neutral outcomes still release a half-open trial slot.

Time comes from the injected clock (``monotonic`` for cool-downs, ``time_ns`` for
:attr:`CircuitBreaker.opened_at`), so tests drive every transition with a FakeClock.
Thread-safe; ``on_change`` callbacks run after the state changed, outside the lock, and
their exceptions are logged, never raised into the caller.

Metrics: gauge ``qsuite_feed_breaker_state{source}`` (0 closed, 1 half_open, 2 open),
counters ``qsuite_feed_breaker_transitions_total{source,to}`` and
``qsuite_feed_breaker_rejected_total{source}`` (calls refused while open).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Final, ParamSpec, TypeVar

from loguru import logger

from engine.bus.events import BreakerState
from engine.clock import Clock, LiveClock
from engine.errors import TransientError
from engine.stats import STATS, StatsRegistry
from feeds.source import RateLimited, SourceDataError, SourceUnavailable

P = ParamSpec("P")
R = TypeVar("R")

#: Gauge value of each state.
STATE_VALUES: Final[dict[BreakerState, int]] = {"closed": 0, "half_open": 1, "open": 2}
#: Exceptions that count as a failure of the source (see the module docstring).
FAILURES: Final[tuple[type[BaseException], ...]] = (
    SourceUnavailable,
    RateLimited,
    SourceDataError,
)

ChangeCallback = Callable[[BreakerState, BreakerState, str], None]


class BreakerOpen(TransientError):
    """A call was refused because the breaker of ``source`` is open (or its half-open
    trial slots are taken); try again in ``retry_in_s`` seconds."""

    def __init__(self, source: str, retry_in_s: float, last_error: str = "") -> None:
        self.source = source
        self.retry_in_s = retry_in_s
        cause = f" after: {last_error}" if last_error else ""
        super().__init__(
            f"Cannot call {source}: circuit breaker open{cause}; retry in {retry_in_s:.1f} s"
        )


class CircuitBreaker:
    """Closed/open/half-open breaker of one source; see the module docstring.

    :param name: the source (``yahoo`` …); the ``source`` label of the metrics.
    :param failure_threshold: consecutive failures that open a closed breaker.
    :param cool_down_s: how long the breaker stays open the first time.
    :param max_cool_down_s: cap of the doubled cool-down after failed trials.
    :param half_open_max_calls: trial calls let through at once while half-open.
    :param clock: injected time.
    :param stats: the registry of this process's metrics.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 3,
        cool_down_s: float = 30.0,
        max_cool_down_s: float = 300.0,
        half_open_max_calls: int = 1,
        clock: Clock | None = None,
        stats: StatsRegistry = STATS,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if cool_down_s <= 0 or max_cool_down_s < cool_down_s:
            raise ValueError("need 0 < cool_down_s <= max_cool_down_s")
        if half_open_max_calls < 1:
            raise ValueError("half_open_max_calls must be at least 1")
        self.name = name
        self.failure_threshold = failure_threshold
        self.cool_down_s = cool_down_s
        self.max_cool_down_s = max_cool_down_s
        self.half_open_max_calls = half_open_max_calls
        self.on_change: list[ChangeCallback] = []
        """Called as ``callback(old, new, reason)`` after every transition."""
        self._clock: Clock = clock if clock is not None else LiveClock()
        self._lock = threading.Lock()
        self._state: BreakerState = "closed"
        self._failures = 0
        self._trials = 0
        self._current_cool_down = cool_down_s
        self._open_until = 0.0  # monotonic
        self._opened_at: int | None = None
        self._last_error: BaseException | None = None
        self._gauge = stats.gauge(
            "qsuite_feed_breaker_state",
            "Circuit breaker state of a source: 0 closed, 1 half_open, 2 open",
            source=name,
        )
        self._transitions = {
            to: stats.counter(
                "qsuite_feed_breaker_transitions_total",
                "Circuit breaker transitions of a source, by target state",
                source=name,
                to=to,
            )
            for to in STATE_VALUES
        }
        self._rejected = stats.counter(
            "qsuite_feed_breaker_rejected_total",
            "Calls refused because the source's circuit breaker was open",
            source=name,
        )
        self._gauge.set(STATE_VALUES["closed"])

    # -- read side -------------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker whose cool-down elapsed still says
        ``open`` until the next :meth:`allow`)."""
        return self._state

    @property
    def last_error(self) -> BaseException | None:
        """The last failure recorded (kept after recovery, for the health panel)."""
        return self._last_error

    @property
    def opened_at(self) -> int | None:
        """When the breaker last opened (UTC ns); ``None`` while closed."""
        return self._opened_at

    @property
    def retry_in_s(self) -> float:
        """Seconds until an open breaker lets a trial call through; 0 otherwise."""
        if self._state != "open":
            return 0.0
        return max(0.0, self._open_until - self._clock.monotonic())

    @property
    def failures(self) -> int:
        """Consecutive failures while closed."""
        return self._failures

    @property
    def current_cool_down_s(self) -> float:
        """The cool-down the next (or current) opening uses."""
        return self._current_cool_down

    # -- write side ------------------------------------------------------------------

    def allow(self) -> bool:
        """Whether a call may go to the source now. A true answer while half-open takes
        a trial slot: the caller must then record the outcome (success, failure, or
        :meth:`release` when neither)."""
        fired: list[tuple[BreakerState, BreakerState, str]] = []
        with self._lock:
            allowed = self._allow(fired)
            if not allowed:
                self._rejected.inc()
        self._fire(fired)
        return allowed

    def before_call(self) -> None:
        """Like :meth:`allow`, but raises :class:`BreakerOpen` instead of returning false."""
        if not self.allow():
            raise BreakerOpen(self.name, self.retry_in_s, self._error_text())

    def record_success(self) -> None:
        """The source answered: reset the failure count; a half-open breaker closes.

        A success while open (a call that started before the breaker opened) changes
        nothing: the cool-down still runs its course.
        """
        fired: list[tuple[BreakerState, BreakerState, str]] = []
        with self._lock:
            if self._state == "half_open":
                self._current_cool_down = self.cool_down_s
                self._failures = 0
                self._transition("closed", "trial call succeeded", fired)
            elif self._state == "closed":
                self._failures = 0
        self._fire(fired)

    def record_failure(self, exc: BaseException) -> None:
        """The source failed with ``exc`` (one of :data:`FAILURES`, by contract)."""
        fired: list[tuple[BreakerState, BreakerState, str]] = []
        with self._lock:
            self._last_error = exc
            retry_after = exc.retry_after_s if isinstance(exc, RateLimited) else 0.0
            if self._state == "half_open":
                cool_down = min(self._current_cool_down * 2, self.max_cool_down_s)
                self._open(cool_down, retry_after, "trial call failed", fired)
            elif self._state == "closed":
                self._failures += 1
                if retry_after > 0:
                    self._open(self._current_cool_down, retry_after, "rate limited", fired)
                elif self._failures >= self.failure_threshold:
                    reason = f"{self._failures} consecutive failures"
                    self._open(self._current_cool_down, 0.0, reason, fired)
            # open: a late failure of a call that started earlier; the cool-down stands
        self._fire(fired)

    def release(self) -> None:
        """Give back a half-open trial slot taken by :meth:`allow` without an outcome
        (the call was not made, or ended in a neutral error such as SymbolNotFound)."""
        with self._lock:
            if self._state == "half_open" and self._trials > 0:
                self._trials -= 1

    def call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """``fn(*args, **kwargs)`` through the breaker: raises :class:`BreakerOpen` when
        refused; records the outcome; re-raises whatever ``fn`` raised."""
        self.before_call()
        try:
            result = fn(*args, **kwargs)
        except FAILURES as exc:
            self.record_failure(exc)
            raise
        except BaseException:
            self.release()  # SymbolNotFound, bugs, cancellation: not the source's fault
            raise
        self.record_success()
        return result

    # -- internals (called under the lock) -------------------------------------------

    def _allow(self, fired: list[tuple[BreakerState, BreakerState, str]]) -> bool:
        if self._state == "closed":
            return True
        if self._state == "open":
            if self._clock.monotonic() < self._open_until:
                return False
            self._trials = 0
            reason = f"cool-down of {self._current_cool_down:g} s elapsed; trying the source"
            self._transition("half_open", reason, fired)
        if self._trials >= self.half_open_max_calls:
            return False
        self._trials += 1
        return True

    def _open(
        self,
        cool_down: float,
        retry_after: float,
        why: str,
        fired: list[tuple[BreakerState, BreakerState, str]],
    ) -> None:
        self._current_cool_down = cool_down
        wait = min(max(cool_down, retry_after), self.max_cool_down_s)
        self._open_until = self._clock.monotonic() + wait
        self._opened_at = self._clock.time_ns()
        self._failures = 0
        self._trials = 0
        self._transition("open", f"{why}: {self._error_text()}; retry in {wait:g} s", fired)

    def _transition(
        self,
        new: BreakerState,
        reason: str,
        fired: list[tuple[BreakerState, BreakerState, str]],
    ) -> None:
        old = self._state
        self._state = new
        if new == "closed":
            self._opened_at = None
        self._gauge.set(STATE_VALUES[new])
        self._transitions[new].inc()
        fired.append((old, new, reason))

    def _error_text(self) -> str:
        exc = self._last_error
        return "" if exc is None else f"{type(exc).__name__}: {exc}"

    def _fire(self, fired: list[tuple[BreakerState, BreakerState, str]]) -> None:
        for old, new, reason in fired:
            log = logger.bind(component="breaker", source=self.name)
            if new == "open":
                log.warning("Circuit breaker of {} opened: {}", self.name, reason)
            else:
                log.info("Circuit breaker of {} {} -> {}: {}", self.name, old, new, reason)
            for callback in list(self.on_change):
                try:
                    callback(old, new, reason)
                except Exception:
                    log.exception("Cannot notify a breaker listener of {}", self.name)

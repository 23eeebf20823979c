"""The circuit breaker: every transition, backoff doubling and error classification,
on a fake clock."""

from __future__ import annotations

import pytest

from engine.clock import FakeClock
from engine.stats import StatsRegistry
from feeds.breaker import BreakerOpen, CircuitBreaker
from feeds.source import RateLimited, SourceDataError, SourceUnavailable, SymbolNotFound

Change = tuple[str, str, str]


def make(
    clock: FakeClock, stats: StatsRegistry | None = None, **options: float
) -> tuple[CircuitBreaker, list[Change]]:
    settings: dict = {"failure_threshold": 3, "cool_down_s": 30.0, "max_cool_down_s": 100.0}
    settings.update(options)
    breaker = CircuitBreaker("yahoo", clock=clock, stats=stats or StatsRegistry(), **settings)
    changes: list[Change] = []
    breaker.on_change.append(lambda old, new, reason: changes.append((old, new, reason)))
    return breaker, changes


def down() -> SourceUnavailable:
    return SourceUnavailable("timeout")


def fail_times(breaker: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        assert breaker.allow()
        breaker.record_failure(down())


def opened(clock: FakeClock) -> tuple[CircuitBreaker, list[Change]]:
    breaker, changes = make(clock)
    fail_times(breaker, 3)
    return breaker, changes


def test_breaker_when_new_then_closed_and_allows() -> None:
    breaker, changes = make(FakeClock())

    assert breaker.state == "closed"
    assert breaker.allow() and breaker.allow()
    assert breaker.retry_in_s == 0.0
    assert breaker.opened_at is None and breaker.last_error is None
    assert changes == []


def test_breaker_when_failures_below_threshold_then_stays_closed() -> None:
    breaker, changes = make(FakeClock())

    fail_times(breaker, 2)

    assert breaker.state == "closed" and breaker.failures == 2
    assert changes == []


def test_breaker_when_success_between_failures_then_count_resets() -> None:
    breaker, _ = make(FakeClock())

    fail_times(breaker, 2)
    breaker.record_success()
    fail_times(breaker, 2)

    assert breaker.state == "closed" and breaker.failures == 2


def test_breaker_when_threshold_reached_then_opens_and_refuses() -> None:
    clock = FakeClock()
    breaker, changes = opened(clock)

    assert breaker.state == "open"
    assert breaker.opened_at == clock.time_ns()
    assert isinstance(breaker.last_error, SourceUnavailable)
    assert breaker.retry_in_s == 30.0
    assert not breaker.allow()
    [(old, new, reason)] = changes
    assert (old, new) == ("closed", "open")
    assert "3 consecutive failures" in reason and "timeout" in reason


def test_before_call_when_open_then_breaker_open_with_retry_in() -> None:
    clock = FakeClock()
    breaker, _ = opened(clock)
    clock.advance(10)

    with pytest.raises(BreakerOpen, match="Cannot call yahoo: circuit breaker open") as info:
        breaker.before_call()

    assert info.value.retry_in_s == pytest.approx(20.0)
    assert "SourceUnavailable: timeout" in str(info.value)


def test_breaker_when_cool_down_elapsed_then_half_open_lets_one_trial_through() -> None:
    clock = FakeClock()
    breaker, changes = opened(clock)

    clock.advance(29.9)
    assert not breaker.allow()
    clock.advance(0.1)
    assert breaker.allow()

    assert breaker.state == "half_open"
    assert not breaker.allow(), "a second concurrent trial is refused"
    assert changes[-1][:2] == ("open", "half_open")


def test_breaker_when_half_open_max_calls_two_then_two_trials() -> None:
    clock = FakeClock()
    breaker, _ = make(clock, half_open_max_calls=2)
    fail_times(breaker, 3)
    clock.advance(30)

    assert [breaker.allow() for _ in range(3)] == [True, True, False]


def test_breaker_when_trial_succeeds_then_closes_and_resets() -> None:
    clock = FakeClock()
    breaker, changes = opened(clock)
    clock.advance(30)
    assert breaker.allow()

    breaker.record_success()

    assert breaker.state == "closed" and breaker.opened_at is None
    assert breaker.failures == 0 and breaker.current_cool_down_s == 30.0
    assert changes[-1][:2] == ("half_open", "closed")
    assert breaker.allow() and breaker.allow()


def test_breaker_when_trial_fails_then_reopens_with_doubled_cool_down() -> None:
    clock = FakeClock()
    breaker, changes = opened(clock)
    clock.advance(30)
    assert breaker.allow()

    breaker.record_failure(down())

    assert breaker.state == "open" and breaker.retry_in_s == 60.0
    assert changes[-1][:2] == ("half_open", "open")
    clock.advance(59)
    assert not breaker.allow()
    clock.advance(1)
    assert breaker.allow() and breaker.state == "half_open"


def test_breaker_when_trials_keep_failing_then_cool_down_doubles_up_to_cap() -> None:
    clock = FakeClock()
    breaker, _ = opened(clock)
    waits = []
    for _ in range(4):
        clock.advance(breaker.retry_in_s)
        assert breaker.allow()
        breaker.record_failure(down())
        waits.append(breaker.retry_in_s)

    assert waits == [60.0, 100.0, 100.0, 100.0]


def test_breaker_when_recovered_after_backoff_then_next_opening_uses_base_cool_down() -> None:
    clock = FakeClock()
    breaker, _ = opened(clock)
    clock.advance(30)
    breaker.allow()
    breaker.record_failure(down())  # 60 s now
    clock.advance(60)
    breaker.allow()
    breaker.record_success()

    fail_times(breaker, 3)

    assert breaker.retry_in_s == 30.0


def test_breaker_when_rate_limited_with_retry_after_then_opens_at_once_for_that_long() -> None:
    clock = FakeClock()
    breaker, changes = make(clock)

    assert breaker.allow()
    breaker.record_failure(RateLimited("429", retry_after_s=45.0))

    assert breaker.state == "open" and breaker.retry_in_s == 45.0
    assert "rate limited" in changes[-1][2]


def test_breaker_when_retry_after_beyond_cap_then_capped() -> None:
    breaker, _ = make(FakeClock())

    breaker.record_failure(RateLimited("429", retry_after_s=3600.0))

    assert breaker.retry_in_s == 100.0


def test_breaker_when_rate_limited_without_retry_after_then_ordinary_failure() -> None:
    breaker, _ = make(FakeClock())

    breaker.record_failure(RateLimited("429"))

    assert breaker.state == "closed" and breaker.failures == 1


def test_breaker_when_late_outcome_while_open_then_nothing_changes() -> None:
    clock = FakeClock()
    breaker, changes = opened(clock)

    breaker.record_success()
    breaker.record_failure(SourceDataError("late"))

    assert breaker.state == "open" and breaker.retry_in_s == 30.0
    assert len(changes) == 1
    assert isinstance(breaker.last_error, SourceDataError)


def test_call_when_fn_succeeds_then_returns_its_value() -> None:
    breaker, _ = make(FakeClock())

    def add(a: int, b: int = 0) -> int:
        return a + b

    assert breaker.call(add, 1, b=2) == 3


@pytest.mark.parametrize(
    "error",
    [SourceUnavailable("refused"), RateLimited("slow down"), SourceDataError("no 'Close'")],
    ids=["unavailable", "rate_limited", "data_error"],
)
def test_call_when_source_error_then_counts_as_failure_and_reraises(error: Exception) -> None:
    breaker, _ = make(FakeClock(), failure_threshold=1)

    def fetch() -> None:
        raise error

    with pytest.raises(type(error)):
        breaker.call(fetch)

    assert breaker.state == "open" and breaker.last_error is error


def test_call_when_symbol_not_found_then_reraised_and_breaker_stays_closed() -> None:
    breaker, changes = make(FakeClock(), failure_threshold=1)

    def fetch() -> None:
        raise SymbolNotFound("yahoo", "APPL")

    for _ in range(5):
        with pytest.raises(SymbolNotFound):
            breaker.call(fetch)

    assert breaker.state == "closed" and breaker.failures == 0
    assert breaker.last_error is None and changes == []


def test_call_when_symbol_not_found_during_trial_then_slot_released() -> None:
    clock = FakeClock()
    breaker, _ = opened(clock)
    clock.advance(30)

    def fetch() -> None:
        raise SymbolNotFound("yahoo", "APPL")

    with pytest.raises(SymbolNotFound):
        breaker.call(fetch)

    assert breaker.state == "half_open"
    assert breaker.call(lambda: "ok") == "ok"
    assert breaker.state == "closed"


def test_call_when_open_then_fn_not_called() -> None:
    clock = FakeClock()
    breaker, _ = opened(clock)
    calls: list[int] = []

    with pytest.raises(BreakerOpen):
        breaker.call(calls.append, 1)

    assert calls == []


def test_metrics_when_transitions_then_gauge_and_counters_follow() -> None:
    clock, stats = FakeClock(), StatsRegistry()
    breaker, _ = make(clock, stats)
    gauge = "qsuite_feed_breaker_state{source=yahoo}"

    assert stats.snapshot()[gauge] == 0
    fail_times(breaker, 3)
    assert stats.snapshot()[gauge] == 2
    assert not breaker.allow()
    clock.advance(30)
    breaker.allow()
    assert stats.snapshot()[gauge] == 1
    breaker.record_success()

    snap = stats.snapshot()
    assert snap[gauge] == 0
    assert snap["qsuite_feed_breaker_transitions_total{source=yahoo,to=open}"] == 1
    assert snap["qsuite_feed_breaker_transitions_total{source=yahoo,to=half_open}"] == 1
    assert snap["qsuite_feed_breaker_transitions_total{source=yahoo,to=closed}"] == 1
    assert snap["qsuite_feed_breaker_rejected_total{source=yahoo}"] == 1


def test_on_change_when_listener_raises_then_breaker_still_transitions() -> None:
    breaker, changes = make(FakeClock(), failure_threshold=1)

    def broken(old: str, new: str, reason: str) -> None:
        raise RuntimeError("listener bug")

    breaker.on_change.insert(0, broken)
    breaker.record_failure(down())

    assert breaker.state == "open"
    assert changes[-1][:2] == ("closed", "open"), "later listeners still run"


@pytest.mark.parametrize(
    "options",
    [
        {"failure_threshold": 0},
        {"cool_down_s": 0},
        {"cool_down_s": 500.0},
        {"half_open_max_calls": 0},
    ],
)
def test_breaker_when_bad_options_then_value_error(options: dict) -> None:
    with pytest.raises(ValueError):
        make(FakeClock(), **options)

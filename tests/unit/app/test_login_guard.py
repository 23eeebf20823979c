"""Login throttling: locks after repeated failures, doubling, forgetting, bounded."""

from __future__ import annotations

import pytest

from app.login_guard import FORGET_S, MAX_LOCKOUT_S, LockedOut, LoginGuard


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def locked_for(guard: LoginGuard, name: str) -> float:
    with pytest.raises(LockedOut) as info:
        guard.check(name)
    return info.value.retry_after_s


def test_failed_when_below_the_limit_then_not_locked(clock: Clock) -> None:
    guard = LoginGuard(3, 30.0, clock=clock)

    assert guard.failed("olga") == 0.0
    assert guard.failed("olga") == 0.0

    guard.check("olga")  # does not raise


def test_failed_when_limit_reached_then_locked_for_lockout_then_free(clock: Clock) -> None:
    guard = LoginGuard(3, 30.0, clock=clock)
    for _ in range(2):
        guard.failed("olga")

    assert guard.failed("olga") == 30.0
    assert locked_for(guard, "olga") == 30.0
    clock.now += 29.5
    assert locked_for(guard, "olga") == pytest.approx(0.5)
    clock.now += 0.5
    guard.check("olga")


def test_failed_when_failing_again_after_a_lock_then_locked_twice_as_long_up_to_the_cap(
    clock: Clock,
) -> None:
    guard = LoginGuard(1, 30.0, clock=clock)
    locks = []
    for _ in range(8):
        locks.append(guard.failed("olga"))
        clock.now += locks[-1]  # waits out each lock, then fails again

    assert locks == [30.0, 60.0, 120.0, 240.0, 480.0, MAX_LOCKOUT_S, MAX_LOCKOUT_S, MAX_LOCKOUT_S]


def test_failed_when_quiet_long_after_the_lock_then_failures_forgotten(clock: Clock) -> None:
    guard = LoginGuard(2, 30.0, clock=clock)
    guard.failed("olga")
    guard.failed("olga")
    clock.now += 30.0 + FORGET_S

    assert guard.failed("olga") == 0.0


def test_succeeded_when_failures_before_then_count_starts_over(clock: Clock) -> None:
    guard = LoginGuard(2, 30.0, clock=clock)
    guard.failed("olga")
    guard.succeeded("olga")

    assert guard.failed("olga") == 0.0


def test_check_when_name_differs_in_case_or_spaces_then_same_lock(clock: Clock) -> None:
    guard = LoginGuard(1, 30.0, clock=clock)
    guard.failed(" Olga ")

    with pytest.raises(LockedOut, match="Too many failed logins as olga; try again in 30 s"):
        guard.check("OLGA")
    guard.check("vic")  # another name is not affected


def test_failed_when_more_names_than_tracked_then_oldest_forgotten(clock: Clock) -> None:
    guard = LoginGuard(1, 30.0, max_names=2, clock=clock)
    for name in ("a", "b", "c"):
        guard.failed(name)

    guard.check("a")  # forgotten: memory stays bounded
    assert locked_for(guard, "c") == 30.0


def test_init_when_limits_not_positive_then_value_error() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        LoginGuard(0, 30.0)

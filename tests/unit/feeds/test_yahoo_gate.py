"""RequestGate: one request at a time across processes, spaced, backing off with jitter."""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import msgspec
import pytest
from curl_cffi import requests as curl_requests
from curl_cffi.requests.headers import Headers
from curl_cffi.requests.models import Response

from engine.clock import FakeClock
from engine.stats import StatsRegistry
from feeds.ratelimit import (
    RATE_LIMITED_METRIC,
    REQUESTS_METRIC,
    GatedSession,
    GateState,
    RequestGate,
    retry_after_s,
)
from feeds.schema import NS
from feeds.source import RateLimited, SourceUnavailable

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        pytest.fail("a test tried to reach the network", pytrace=False)

    monkeypatch.setattr(curl_requests.Session, "request", refuse)


class Jitter:
    """A random source whose uniform(a, b) is ``a + share * (b - a)``; records the bounds."""

    def __init__(self, share: float) -> None:
        self.share = share
        self.bounds: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.bounds.append((a, b))
        return a + self.share * (b - a)


class Rig:
    def __init__(self, state_dir: Path, clock: FakeClock | None = None, **kw: float) -> None:
        self.clock = clock or FakeClock()
        self.sleeps: list[float] = []
        self.stats = StatsRegistry()
        self.jitter = Jitter(0.5)
        options = {"min_interval_s": 0.5, "backoff_base_s": 10.0, "backoff_max_s": 100.0}
        options.update(kw)
        self.gate = RequestGate(
            state_dir,
            clock=self.clock,
            sleep=self.sleep,
            rng=self.jitter,  # type: ignore[arg-type]
            stats=self.stats,
            **options,  # type: ignore[arg-type]
        )

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)

    def ok(self, took_s: float = 0.0) -> str:
        def request() -> str:
            self.clock.advance(took_s)
            return "answer"

        return self.gate.call(request)

    def too_many(self, retry_after: float = 0.0) -> RateLimited:
        def request() -> str:
            raise RateLimited("429", retry_after_s=retry_after)

        with pytest.raises(RateLimited) as caught:
            self.gate.call(request)
        return caught.value

    def count(self, outcome: str) -> float:
        key = f"{REQUESTS_METRIC}{{outcome={outcome},source=yahoo}}"
        return self.stats.snapshot().get(key, 0.0)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


def test_call_when_first_request_then_no_wait(rig: Rig) -> None:
    assert rig.ok() == "answer"
    assert rig.sleeps == []
    assert rig.count("ok") == 1


def test_call_when_requests_follow_each_other_then_spaced_from_the_end_of_the_last(
    rig: Rig,
) -> None:
    rig.ok(took_s=2.0)
    rig.ok()
    rig.clock.advance(0.2)
    rig.ok()

    assert rig.sleeps == [pytest.approx(0.5), pytest.approx(0.3)]


def test_call_when_spacing_already_elapsed_then_no_wait(rig: Rig) -> None:
    rig.ok()
    rig.clock.advance(0.6)
    rig.ok()

    assert rig.sleeps == []


def test_call_when_rate_limited_then_full_jitter_backoff_doubling_per_strike(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, max_wait_s=1000.0)

    delays = [rig.too_many().retry_after_s for _ in range(4)]

    assert rig.jitter.bounds == [(0.0, 10.0), (0.0, 20.0), (0.0, 40.0), (0.0, 80.0)]
    assert delays == [5.0, 10.0, 20.0, 40.0]
    # Each request waited out the backoff the previous 429 set.
    assert rig.sleeps == [pytest.approx(d) for d in delays[:-1]]
    assert rig.gate.state().strikes == 4
    assert rig.stats.total(RATE_LIMITED_METRIC) == 4
    assert rig.count("rate_limited") == 4


def test_call_when_many_strikes_then_backoff_capped(tmp_path: Path) -> None:
    rig = Rig(tmp_path, max_wait_s=1000.0)

    for _ in range(8):
        rig.too_many()

    assert max(b for _, b in rig.jitter.bounds) == 100.0


def test_call_when_retry_after_longer_than_jitter_then_retry_after_wins(rig: Rig) -> None:
    assert rig.too_many(retry_after=30.0).retry_after_s == 30.0
    assert rig.gate.state().not_before_ns == rig.clock.time_ns() + 30 * NS


def test_call_when_retry_after_absurd_then_capped_at_backoff_max(rig: Rig) -> None:
    assert rig.too_many(retry_after=86_400.0).retry_after_s == 100.0


def test_call_when_jitter_below_spacing_then_spacing_still_holds(tmp_path: Path) -> None:
    rig = Rig(tmp_path, backoff_base_s=0.1)

    assert rig.too_many().retry_after_s == 0.5


def test_call_when_answer_after_429s_then_strikes_reset(tmp_path: Path) -> None:
    rig = Rig(tmp_path, max_wait_s=1000.0)
    rig.too_many()
    rig.too_many()

    rig.ok()

    assert rig.gate.state().strikes == 0
    rig.too_many()
    assert rig.jitter.bounds[-1] == (0.0, 10.0)


def test_call_when_backoff_beyond_max_wait_then_rate_limited_without_calling(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, max_wait_s=10.0)
    rig.too_many(retry_after=60.0)
    rig.clock.advance(15.0)
    called = []

    with pytest.raises(RateLimited, match=r"next request allowed in 45\.0 s") as caught:
        rig.gate.call(lambda: called.append(1))

    assert called == [] and rig.sleeps == []
    assert caught.value.retry_after_s == pytest.approx(45.0)


def test_call_when_source_unavailable_then_spaced_and_strikes_kept(rig: Rig) -> None:
    rig.too_many()
    rig.clock.advance(100.0)

    def down() -> None:
        raise SourceUnavailable("timeout")

    with pytest.raises(SourceUnavailable):
        rig.gate.call(down)

    state = rig.gate.state()
    assert state.strikes == 1
    assert state.not_before_ns == rig.clock.time_ns() + NS // 2
    assert rig.count("unavailable") == 1


def test_call_when_request_raises_anything_else_then_counted_as_error_and_reraised(
    rig: Rig,
) -> None:
    def broken() -> None:
        raise KeyError("chart")

    with pytest.raises(KeyError):
        rig.gate.call(broken)

    assert rig.count("error") == 1
    assert rig.gate.state().last_request_ns == rig.clock.time_ns()


def test_call_when_outcome_given_then_metric_uses_it(rig: Rig) -> None:
    rig.gate.call(lambda: 404, outcome=lambda status: "not_found")

    assert rig.count("not_found") == 1 and rig.count("ok") == 0


def test_gates_on_one_state_dir_share_the_backoff(tmp_path: Path) -> None:
    clock = FakeClock()
    first, second = Rig(tmp_path, clock), Rig(tmp_path, clock)

    backoff = first.too_many(retry_after=3.0).retry_after_s
    second.ok()

    assert second.sleeps == [pytest.approx(backoff)]
    assert first.gate.state() == second.gate.state()


def write_state(directory: Path, state: GateState) -> None:
    (directory / "yahoo.gate.json").write_bytes(msgspec.json.encode(state))


def test_call_when_another_process_queued_first_then_it_goes_first(
    rig: Rig, tmp_path: Path
) -> None:
    other = (f"{os.getppid()}:1:1", rig.clock.time_ns())  # a live process, queued earlier
    write_state(tmp_path, GateState(queue=(other,)))
    ran: list[int] = []

    def sleep(seconds: float) -> None:
        rig.sleep(seconds)
        if len(rig.sleeps) == 3:  # meanwhile the other process had its turn and left
            state = rig.gate.state()
            assert state.queue[0] == other and len(state.queue) == 2
            write_state(tmp_path, msgspec.structs.replace(state, queue=state.queue[1:]))

    rig.gate._sleep = sleep
    rig.gate.call(lambda: ran.append(len(rig.sleeps)))

    assert ran == [3]
    assert rig.gate.state().queue == ()


def test_call_when_queued_waiter_is_dead_or_stale_then_skipped(rig: Rig, tmp_path: Path) -> None:
    now = rig.clock.time_ns()
    dead = ("999999999:1:1", now)  # above any pid_max
    stale = (f"{os.getppid()}:1:1", now - 3600 * NS)
    write_state(tmp_path, GateState(queue=(dead, stale)))

    assert rig.ok() == "answer"

    assert rig.sleeps == [] and rig.gate.state().queue == ()


def test_call_when_giving_up_while_queued_then_leaves_the_queue(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, max_wait_s=10.0)
    backoff = rig.too_many(retry_after=8.0).retry_after_s
    rig.clock.advance(backoff - 7.0)  # 7 s to go: wait in the queue
    other = (f"{os.getppid()}:1:1", rig.clock.time_ns())

    def sleep(seconds: float) -> None:
        rig.sleep(seconds)
        state = rig.gate.state()  # the other arrives and a new 429 pushes the backoff out
        write_state(
            tmp_path,
            msgspec.structs.replace(
                state, queue=(*state.queue, other), not_before_ns=rig.clock.time_ns() + 60 * NS
            ),
        )

    rig.gate._sleep = sleep
    with pytest.raises(RateLimited):
        rig.gate.call(lambda: None)

    assert rig.gate.state().queue == (other,)


def test_state_when_file_corrupt_then_clean_state(rig: Rig, tmp_path: Path) -> None:
    (tmp_path / "yahoo.gate.json").write_text("{not json")

    assert rig.gate.state() == GateState()
    assert rig.ok() == "answer"


def test_gate_when_settings_inconsistent_then_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backoff_base_s"):
        RequestGate(tmp_path, backoff_base_s=10.0, backoff_max_s=1.0)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "1.5"}, 1.5),
        (
            {
                "Retry-After": format_datetime(
                    datetime(2023, 11, 14, 22, 14, 50, tzinfo=UTC), usegmt=True
                )
            },
            30.0,
        ),
        ({"Retry-After": "soon"}, 0.0),
        ({"Retry-After": "-3"}, 0.0),
        ({"Retry-After": "inf"}, 0.0),
        ({}, 0.0),
        (None, 0.0),
    ],
)
def test_retry_after_s_reads_seconds_and_http_dates(
    header: dict[str, str] | None, expected: float
) -> None:
    now = int(datetime(2023, 11, 14, 22, 14, 20, tzinfo=UTC).timestamp()) * NS

    assert retry_after_s(header, now) == pytest.approx(expected)


# --- the gated HTTP session -------------------------------------------------------------


def answer(status: int, headers: dict[str, str] | None = None) -> Response:
    r = Response()
    r.status_code, r.ok, r.content = status, status < 400, b"{}"
    r.headers = Headers(headers or {})
    return r


def raising(exc: Exception) -> Callable[..., Response]:
    def transport(*args: object, **kwargs: object) -> Response:
        raise exc

    return transport


def session_with(rig: Rig, transport: Callable[..., Response]) -> GatedSession:
    return GatedSession(
        rig.gate,
        label="Yahoo",
        connect_timeout_s=2.0,
        read_timeout_s=9.0,
        optional_hosts={"fc.yahoo.com"},
        clock=rig.clock,
        transport=transport,
    )


def test_session_when_429_then_rate_limited_and_the_gate_backs_off(rig: Rig) -> None:
    session = session_with(rig, lambda *a, **k: answer(429, {"Retry-After": "42"}))

    with pytest.raises(RateLimited, match="429") as caught:
        session.get("https://query2.finance.yahoo.com/v8/finance/chart/AAPL")

    assert caught.value.retry_after_s == 42.0
    assert rig.gate.state().strikes == 1


def test_session_when_server_error_or_transport_failure_then_source_unavailable(
    rig: Rig,
) -> None:
    failures: list[Callable[..., Response]] = [
        lambda *a, **k: answer(503),
        raising(curl_requests.exceptions.Timeout("slow", 28)),
        raising(curl_requests.exceptions.ConnectionError("refused", 7)),
    ]
    for transport in failures:
        with pytest.raises(SourceUnavailable, match="Yahoo"):
            session_with(rig, transport).get("https://query2.finance.yahoo.com/v7/finance/quote")

    assert rig.count("unavailable") == 3


def test_session_when_optional_host_unresolvable_then_left_to_the_library(rig: Rig) -> None:
    no_dns = raising(curl_requests.exceptions.DNSError("Could not resolve host", 6))

    with pytest.raises(curl_requests.exceptions.DNSError):
        session_with(rig, no_dns).get("https://fc.yahoo.com")
    with pytest.raises(SourceUnavailable, match="cannot resolve"):
        session_with(rig, no_dns).get("https://query2.finance.yahoo.com/v8/finance/chart/AAPL")


def test_session_when_client_error_then_answer_returned_and_counted(rig: Rig) -> None:
    seen: list[dict[str, object]] = []

    def transport(method: str, url: str, **kwargs: object) -> Response:
        seen.append(kwargs)
        return answer(404)

    response = session_with(rig, transport).get("https://x.yahoo.com/a", timeout=30)

    assert response.status_code == 404
    assert seen[0]["timeout"] == (2.0, 9.0)  # ours, not the library's 30 s
    assert rig.count("not_found") == 1


# --- across processes -------------------------------------------------------------------


@pytest.fixture
def held_lock(tmp_path: Path) -> Iterator[Path]:
    fd = os.open(tmp_path / "yahoo.gate.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield tmp_path
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@pytest.mark.integration
def test_call_when_another_holder_keeps_the_lock_then_source_unavailable(held_lock: Path) -> None:
    gate = RequestGate(held_lock, lock_timeout_s=0.05, stats=StatsRegistry())
    called = []

    with pytest.raises(SourceUnavailable, match="another process has held"):
        gate.call(lambda: called.append(1))
    assert called == []


_WORKER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from engine.stats import StatsRegistry
    from feeds.ratelimit import RequestGate

    state_dir, out, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    gate = RequestGate(state_dir, min_interval_s=0.05, stats=StatsRegistry())
    (state_dir / f"ready-{out.stem}").touch()
    go = state_dir / "go"
    while not go.exists():
        time.sleep(0.001)
    spans = []
    def request():
        start = time.time()
        time.sleep(0.02)
        spans.append((start, time.time()))
    for _ in range(n):
        gate.call(request)
    out.write_text(json.dumps(spans))
    """
)


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_gate_serializes_and_spaces_requests_of_two_processes(tmp_path: Path) -> None:
    state_dir, n = tmp_path / "state", 8
    state_dir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(state_dir), str(tmp_path / f"w{i}.json"), str(n)],
            cwd=REPO,
            env=env,
        )
        for i in range(2)
    ]
    try:
        # Start both at once, after their (slow) imports.
        deadline = time.monotonic() + 40
        while len(list(state_dir.glob("ready-*"))) < 2 and time.monotonic() < deadline:
            assert all(p.poll() is None for p in procs), "a worker died before starting"
            time.sleep(0.01)
        (state_dir / "go").touch()
        assert [p.wait(timeout=50) for p in procs] == [0, 0]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    spans = sorted(
        (start, end, i)
        for i in range(2)
        for start, end in json.loads((tmp_path / f"w{i}.json").read_text())
    )
    assert len(spans) == 2 * n
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(spans)]
    assert min(gaps) >= 0.05 - 1e-3, gaps  # never overlapping, always spaced
    # Both processes really competed for the turns.
    owners = [i for *_, i in spans]
    assert sum(a != b for a, b in itertools.pairwise(owners)) >= 4

"""One gate every request to an external market-data source goes through, across processes.

Yahoo throttles by client, not by process: the feed, the scheduler's backfills and an
operator's fundamentals refresh all share one allowance. A :class:`RequestGate` makes
their requests take turns:

- **one at a time**: an exclusive ``fcntl.flock`` on ``<state_dir>/<name>.gate.lock`` is
  held for the whole request, so no two requests of any process overlap (POSIX only);
- **first come, first served**: a caller that must wait joins a queue in the shared
  state and sleeps with the lock released; turns go in arrival order, so a process
  firing requests back to back cannot starve the others (waiters of a dead process
  are dropped);
- **spaced**: after each request the next may start no sooner than ``min_interval_s``
  after it ended;
- **backing off**: after :class:`~feeds.source.RateLimited` the next request waits a
  random delay in ``[0, min(backoff_max_s, backoff_base_s * 2**(strikes-1))]`` ("full
  jitter"), and never less than the source's ``Retry-After`` (up to ``backoff_max_s``);
  ``strikes`` counts 429s in a row and resets on the first answer that is not a 429.

The "not before" time and the strike count live in ``<state_dir>/<name>.gate.json``,
read and written under the lock, so every process sees the same backoff. A caller whose
turn is more than ``max_wait_s`` away because of a backoff is not put to sleep: it gets
:class:`RateLimited` at once (with ``retry_after_s``), and no request is sent — the
feed's circuit breaker decides what to do with that. Time and sleep are injected.

:class:`GatedSession` is the ``curl_cffi`` session that puts every HTTP request of a
client library (yfinance) through a gate, with a short connect timeout, and turns what
goes wrong on the wire into the errors of :mod:`feeds.source` before the library sees
it: timeouts, refused connections and HTTP 5xx become :class:`SourceUnavailable`, HTTP
429 :class:`RateLimited` (``retry_after_s`` from ``Retry-After``); other answers, 4xx
included, are returned for the library to read.

Metrics (``engine.stats``): ``qsuite_feed_requests_total{source,outcome}`` per request
sent (outcome ``ok``, ``not_found``, ``client_error``, ``rate_limited``, ``unavailable``
or ``error``) and ``qsuite_feed_rate_limited_total{source}`` per 429.
"""

from __future__ import annotations

import contextlib
import email.utils
import fcntl
import itertools
import math
import os
import random
import threading
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec
from curl_cffi import requests as curl_requests
from loguru import logger

from engine.clock import Clock, LiveClock
from engine.stats import STATS, StatsRegistry
from feeds.schema import NS
from feeds.source import RateLimited, SourceUnavailable

T = TypeVar("T")

REQUESTS_METRIC = "qsuite_feed_requests_total"
RATE_LIMITED_METRIC = "qsuite_feed_rate_limited_total"
_LOCK_POLL_S = 0.005
_TICKETS = itertools.count(1)


class GateState(msgspec.Struct, frozen=True, kw_only=True):
    """What every process sharing a gate must agree on."""

    not_before_ns: int = 0
    """No request may start before this wall-clock time (UTC ns)."""
    strikes: int = 0
    """Rate-limit answers in a row (0 after any other answer)."""
    last_request_ns: int = 0
    """When the last request ended (UTC ns); 0 before the first one."""
    queue: tuple[tuple[str, int], ...] = ()
    """Callers waiting for a turn, in arrival order: ``(pid:thread:ticket, seen_ns)``."""


class RequestGate:
    """Serializes, spaces and backs off requests to one source across processes.

    ``state_dir`` must be shared by every process that talks to the source (the data
    dir). ``lock_timeout_s`` bounds how long a caller waits for its turn before it
    gets :class:`SourceUnavailable`; ``sleep`` and ``clock`` are injected for tests.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        name: str = "yahoo",
        min_interval_s: float = 0.5,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 300.0,
        max_wait_s: float = 10.0,
        lock_timeout_s: float = 60.0,
        clock: Clock | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        stats: StatsRegistry = STATS,
    ) -> None:
        if min_interval_s < 0 or backoff_base_s <= 0 or backoff_max_s < backoff_base_s:
            raise ValueError(
                "need min_interval_s >= 0 and 0 < backoff_base_s <= backoff_max_s, got "
                f"{min_interval_s}, {backoff_base_s}, {backoff_max_s}"
            )
        self.name = name
        self.min_interval_s = min_interval_s
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.max_wait_s = max_wait_s
        self.lock_timeout_s = lock_timeout_s
        self._clock: Clock = clock or LiveClock()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._stats = stats
        state_dir.mkdir(parents=True, exist_ok=True)
        # A waiter refreshes its place at least this often, unless it died.
        self._stale_ns = int((lock_timeout_s + max(max_wait_s, min_interval_s) + 1.0) * NS)
        self._lock_path = state_dir / f"{name}.gate.lock"
        self._state_path = state_dir / f"{name}.gate.json"
        self._rate_limited = stats.counter(
            RATE_LIMITED_METRIC, "Rate-limit answers (HTTP 429) from a source", source=name
        )
        self._log = logger.bind(component=f"feed.{name}.gate")

    def state(self) -> GateState:
        """The shared state as last written (for health panels and tests)."""
        with self._locked(self.lock_timeout_s):
            return self._load()

    def call(self, fn: Callable[[], T], *, outcome: Callable[[T], str] | None = None) -> T:
        """Run one request ``fn`` in this source's turn and return what it returns.

        ``outcome`` names the metric outcome of a returned value (default ``ok``).
        :class:`RateLimited` from ``fn`` starts a backoff; its ``retry_after_s`` is
        raised to the backoff the gate chose, so the caller knows when to come back.
        """
        me = f"{os.getpid()}:{threading.get_ident()}:{next(_TICKETS)}"
        queued = False
        try:
            while True:
                with self._locked(self.lock_timeout_s):
                    state = self._load()
                    now = self._clock.time_ns()
                    # Arrival order, without waiters that are gone; a waiter keeps its place.
                    queue = [w for w in state.queue if w[0] == me or self._alive(w, now)]
                    others = tuple(w for w in queue if w[0] != me)
                    wait_s = (state.not_before_ns - now) / NS
                    if wait_s <= 0 and (not queue or queue[0][0] == me):
                        queued = False
                        return self._run(fn, msgspec.structs.replace(state, queue=others), outcome)
                    if state.strikes and wait_s > self.max_wait_s:
                        raise RateLimited(
                            f"{self.name} is rate limiting us ({state.strikes} in a row); "
                            f"next request allowed in {wait_s:.1f} s",
                            retry_after_s=wait_s,
                        )
                    if not queued:
                        queue.append((me, now))
                        queued = True
                    queue = [(me, now) if w[0] == me else w for w in queue]
                    self._save(msgspec.structs.replace(state, queue=tuple(queue)))
                # Wait with the lock released, so the others can queue up meanwhile.
                self._sleep(max(wait_s, _LOCK_POLL_S))
        finally:
            if queued:
                self._leave(me)

    def _run(self, fn: Callable[[], T], state: GateState, outcome: Callable[[T], str] | None) -> T:
        try:
            result = fn()
        except RateLimited as exc:
            strikes = state.strikes + 1
            delay_s = self._backoff_s(strikes, exc.retry_after_s)
            exc.retry_after_s = delay_s
            self._finish(state, strikes, delay_s, "rate_limited")
            self._rate_limited.inc()
            self._log.warning(
                "Cannot fetch from {}: rate limited ({} in a row); backing off {:.2f} s",
                self.name,
                strikes,
                delay_s,
            )
            raise
        except SourceUnavailable:
            self._finish(state, state.strikes, self.min_interval_s, "unavailable")
            raise
        except BaseException:
            self._finish(state, state.strikes, self.min_interval_s, "error")
            raise
        self._finish(state, 0, self.min_interval_s, outcome(result) if outcome else "ok")
        return result

    def _backoff_s(self, strikes: int, retry_after_s: float) -> float:
        cap = min(self.backoff_max_s, self.backoff_base_s * 2 ** (strikes - 1))
        # Retry-After is honoured up to backoff_max_s: a silly header must not stop us for days.
        retry_after_s = min(retry_after_s, self.backoff_max_s)
        return max(self._rng.uniform(0.0, cap), retry_after_s, self.min_interval_s)

    def _finish(self, state: GateState, strikes: int, delay_s: float, outcome: str) -> None:
        end = self._clock.time_ns()
        self._save(
            GateState(
                not_before_ns=end + int(delay_s * NS),
                strikes=strikes,
                last_request_ns=end,
                queue=state.queue,  # nobody can join while we hold the lock
            )
        )
        self._stats.counter(
            REQUESTS_METRIC,
            "Requests sent to a market-data source",
            source=self.name,
            outcome=outcome,
        ).inc()

    def _alive(self, waiter: tuple[str, int], now_ns: int) -> bool:
        token, seen_ns = waiter
        if now_ns - seen_ns > self._stale_ns:
            return False
        pid = int(token.split(":", 1)[0])
        if pid == os.getpid():
            return int(token.split(":")[1]) in {t.ident for t in threading.enumerate()}
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True

    def _leave(self, me: str) -> None:
        # Best effort: if the lock stays busy, the entry expires as stale instead.
        with contextlib.suppress(SourceUnavailable), self._locked(1.0):
            state = self._load()
            queue = tuple(w for w in state.queue if w[0] != me)
            self._save(msgspec.structs.replace(state, queue=queue))

    @contextlib.contextmanager
    def _locked(self, timeout_s: float) -> Iterator[None]:
        # A fresh descriptor per turn: flock conflicts between descriptors, so threads of
        # one process take turns exactly like processes do.
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    # Real time on purpose: the holder is another process, not the test clock.
                    if time.monotonic() >= deadline:
                        raise SourceUnavailable(
                            f"Cannot send a request to {self.name}: another process has held "
                            f"{self._lock_path} for over {timeout_s:g} s"
                        ) from None
                    time.sleep(_LOCK_POLL_S)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _load(self) -> GateState:
        try:
            return msgspec.json.decode(self._state_path.read_bytes(), type=GateState)
        except FileNotFoundError:
            return GateState()
        except (msgspec.DecodeError, OSError) as exc:
            # A torn or foreign file must not wedge every process: start over, loudly.
            self._log.warning(
                "Cannot read {}: {}; starting from a clean state", self._state_path, exc
            )
            return GateState()

    def _save(self, state: GateState) -> None:
        tmp = self._state_path.with_name(f"{self._state_path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(msgspec.json.encode(state))
        os.replace(tmp, self._state_path)


class GatedSession(curl_requests.Session):
    """An HTTP session whose every request waits its turn at ``gate``.

    ``label`` names the source in messages ("Yahoo"). A DNS failure for a host in
    ``optional_hosts`` is raised as is, for the library's own fallback. ``transport(method,
    url, **kwargs)`` replaces the network in tests: it returns a ``curl_cffi`` response
    or raises ``curl_cffi`` request exceptions.
    """

    def __init__(
        self,
        gate: RequestGate,
        *,
        label: str,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 15.0,
        optional_hosts: Collection[str] = (),
        clock: Clock | None = None,
        transport: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(impersonate="chrome")
        self.gate = gate
        self._label = label
        self._timeout = (connect_timeout_s, read_timeout_s)
        self._optional_hosts = frozenset(optional_hosts)
        self._clock: Clock = clock or LiveClock()
        self._transport = transport

    def request(self, method: Any, url: str, *args: Any, **kwargs: Any) -> Any:
        kwargs["timeout"] = self._timeout  # ours, whatever the library asked for
        return self.gate.call(lambda: self._send(method, url, *args, **kwargs), outcome=_outcome)

    def _send(self, method: Any, url: str, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(url)
        where = f"{parts.hostname}{parts.path}"
        try:
            if self._transport is not None:
                response = self._transport(method, url, *args, **kwargs)
            else:
                response = curl_requests.Session.request(self, method, url, *args, **kwargs)
        except curl_requests.exceptions.DNSError as exc:
            if parts.hostname in self._optional_hosts:
                raise
            raise SourceUnavailable(
                f"Cannot reach {self._label}: cannot resolve {parts.hostname}"
            ) from exc
        except curl_requests.exceptions.Timeout as exc:
            connect, read = self._timeout
            raise SourceUnavailable(
                f"Cannot reach {self._label}: no answer from {where} within "
                f"{connect:g} s (connect) / {read:g} s (read)"
            ) from exc
        except curl_requests.exceptions.RequestException as exc:
            raise SourceUnavailable(f"Cannot reach {self._label} ({where}): {exc}") from exc
        status = response.status_code
        if status == 429:
            raise RateLimited(
                f"{self._label} answered 429 Too Many Requests ({where})",
                retry_after_s=retry_after_s(response.headers, self._clock.time_ns()),
            )
        if status >= 500:
            raise SourceUnavailable(f"{self._label} answered HTTP {status} ({where})")
        return response


def retry_after_s(headers: Any, now_ns: int) -> float:
    """Seconds to wait according to a ``Retry-After`` header (seconds or HTTP date)."""
    value = (headers or {}).get("Retry-After")
    if not value:
        return 0.0
    try:
        seconds = float(value)
        return seconds if math.isfinite(seconds) and seconds > 0 else 0.0
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, when.timestamp() - now_ns / NS)


def _outcome(response: Any) -> str:
    status = int(response.status_code)
    return "ok" if status < 400 else "not_found" if status == 404 else "client_error"

from __future__ import annotations

import select
import threading
from concurrent.futures import Future

from app.inbox import Inbox


def _readable(fd: int, timeout_s: float) -> bool:
    return bool(select.select([fd], [], [], timeout_s)[0])


def test_call_soon_threadsafe_when_called_from_thread_then_fd_wakes_and_drain_runs_it() -> None:
    inbox = Inbox(workers=1)
    ran: list[str] = []
    try:
        assert not _readable(inbox.fd, 0)
        t = threading.Thread(
            target=lambda: inbox.call_soon_threadsafe(
                lambda: ran.append(threading.current_thread().name)
            )
        )
        t.start()
        t.join()
        assert _readable(inbox.fd, 1.0)
        assert ran == []  # nothing runs before the loop drains
        assert inbox.drain() == 1
        assert ran == [threading.current_thread().name]
        assert not _readable(inbox.fd, 0)
    finally:
        inbox.close()


def test_run_in_worker_when_fn_raises_then_on_done_gets_the_exception_on_loop_thread() -> None:
    inbox = Inbox(workers=1)
    seen: list[tuple[str, object]] = []

    def boom() -> int:
        raise ValueError("source down")

    def on_done(f: Future[int]) -> None:
        seen.append((threading.current_thread().name, f.exception()))

    try:
        inbox.run_in_worker(boom, on_done)
        assert _readable(inbox.fd, 2.0)
        inbox.drain()
        ((thread, exc),) = seen
        assert thread == threading.current_thread().name
        assert isinstance(exc, ValueError)
    finally:
        inbox.close()


def test_drain_when_callback_raises_then_others_still_run() -> None:
    inbox = Inbox(workers=1)
    ran: list[int] = []
    try:
        inbox.call_soon_threadsafe(lambda: 1 / 0)
        inbox.call_soon_threadsafe(lambda: ran.append(2))
        assert inbox.drain() == 2
        assert ran == [2]
    finally:
        inbox.close()


def test_close_when_worker_running_then_waits_and_runs_its_callback() -> None:
    inbox = Inbox(workers=1)
    release = threading.Event()
    done: list[int] = []
    inbox.run_in_worker(lambda: release.wait(5) and 7, lambda f: done.append(f.result()))
    threading.Timer(0.05, release.set).start()
    inbox.close()
    assert done == [7]

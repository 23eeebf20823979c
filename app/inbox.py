"""How work from other threads reaches a process loop.

Sockets belong to the loop's thread. A service that must block (a Yahoo request, a
backfill, an APScheduler job) runs that work in a worker thread and hands the result
back as a callable the loop runs; publishing from a thread goes the same way. An
``eventfd`` registered in the loop's poller wakes it at once.
"""

from __future__ import annotations

import contextlib
import os
import queue
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from loguru import logger

T = TypeVar("T")


class Inbox:
    def __init__(self, workers: int = 2, name: str = "worker") -> None:
        self._queue: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
        self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._closed = False

    def call_soon_threadsafe(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the loop thread soon; safe from any thread."""
        if self._closed:
            return
        self._queue.put(fn)
        os.eventfd_write(self.fd, 1)

    def run_in_worker(
        self, fn: Callable[[], T], on_done: Callable[[Future[T]], object]
    ) -> Future[T]:
        """Run ``fn`` in a worker thread; ``on_done(future)`` then runs on the loop thread."""
        future = self._executor.submit(fn)
        future.add_done_callback(lambda f: self.call_soon_threadsafe(lambda: on_done(f)))
        return future

    def drain(self, max_items: int = 1000) -> int:
        """Run what is waiting (called by the loop when ``fd`` is readable)."""
        with contextlib.suppress(BlockingIOError):  # woken without a write: nothing to reset
            os.eventfd_read(self.fd)
        done = 0
        while done < max_items:
            try:
                fn = self._queue.get_nowait()
            except queue.Empty:
                break
            done += 1
            try:
                fn()
            except Exception:
                logger.opt(exception=True).error("Cannot run a callback handed to the loop")
        if done == max_items:
            os.eventfd_write(self.fd, 1)  # more is waiting: come back after other sockets
        return done

    def close(self, wait: bool = True) -> None:
        """Stop accepting work, wait for running workers, then run what they handed back."""
        self._executor.shutdown(wait=wait, cancel_futures=True)
        self.drain(max_items=1_000_000)
        self._closed = True
        os.close(self.fd)

    def __repr__(self) -> str:
        return f"Inbox(fd={self.fd}, pending={self._queue.qsize()})"

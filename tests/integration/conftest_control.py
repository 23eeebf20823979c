"""Helpers of the control-plane integration tests (imported explicitly, not a conftest).

Every socket made here is closed with linger 0, every context is terminated with a
deadline and every subprocess is killed and waited for, whatever the test did.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import zmq

from engine.bus.commands import Command, Pong, Result
from engine.bus.control import ControlServer
from engine.bus.journal import CommandJournal
from engine.stats import StatsRegistry

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 10.0


def free_tcp_endpoint() -> str:
    """A loopback endpoint on a port that was free a moment ago (for late binders)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


def term_with_deadline(ctx: zmq.Context[Any], seconds: float = 5.0) -> None:
    """Terminate ``ctx``; fails the test when a socket left open makes ``term`` hang."""
    done = threading.Thread(target=ctx.term, daemon=True)
    done.start()
    done.join(seconds)
    assert not done.is_alive(), "zmq context did not terminate: a socket was left open"


def pong_handler(process: str = "test") -> Callable[[Command], Result]:
    return lambda _command: Pong(process=process, pid=os.getpid(), version="test", uptime_s=1.0)


@contextmanager
def running_server(
    ctx: zmq.Context[Any],
    handlers: Mapping[Any, Callable[..., Result]],
    *,
    endpoint: str = "tcp://127.0.0.1:*",
    journal: CommandJournal | None = None,
    stats: StatsRegistry | None = None,
    max_message_bytes: int = 64 * 1024,
) -> Iterator[ControlServer]:
    """A :class:`ControlServer` answering in a background thread until the block ends."""
    own_journal = journal is None
    journal = CommandJournal(None) if journal is None else journal
    server = ControlServer(
        ctx,
        endpoint,
        "test",
        journal=journal,
        max_message_bytes=max_message_bytes,
        stats=StatsRegistry() if stats is None else stats,
    )
    for command_type, handler in handlers.items():
        server.register(command_type, handler)
    stop = threading.Event()
    thread = threading.Thread(target=server.serve, args=(stop,), kwargs={"poll_ms": 20})
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join(DEADLINE_S)
        server.close()
        if own_journal:
            journal.close()
    assert not thread.is_alive(), "the server thread did not stop"


def raw_exchange(
    ctx: zmq.Context[Any], endpoint: str, frames: list[bytes], *, timeout_ms: int = 3000
) -> list[bytes] | None:
    """Send ``frames`` from a DEALER; the reply frames, or ``None`` on timeout."""
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    try:
        dealer.connect(endpoint)
        dealer.send_multipart(frames)
        if not dealer.poll(timeout_ms, zmq.POLLIN):
            return None
        return dealer.recv_multipart()
    finally:
        dealer.close(linger=0)


SERVER_SCRIPT = """
import os, sys, threading, time
import zmq
from engine.bus.commands import LogLevelSet, Ping, Pong, SetLogLevel
from engine.bus.control import ControlServer
from engine.bus.journal import CommandJournal
from pathlib import Path

endpoint, journal_dir, actions = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
level = ["INFO"]

def set_level(command):
    with actions.open("a") as fh:  # one line per action, visible across a kill -9
        fh.write(f"{command.command_id} {command.level}\\n")
    previous, level[0] = level[0], command.level
    return LogLevelSet(process="child", previous=previous, current=command.level,
                       applied_at=time.time_ns())

ctx = zmq.Context()
journal = CommandJournal(journal_dir)
server = ControlServer(ctx, endpoint, "child", journal=journal, max_message_bytes=65536)
server.register(Ping, lambda c: Pong(process="child", pid=os.getpid(), version="t", uptime_s=0.0))
server.register(SetLogLevel, set_level)
print("READY", flush=True)
server.serve(threading.Event())
"""


def start_server_process(
    endpoint: str, journal_dir: Path, actions: Path, log: Path
) -> subprocess.Popen[bytes]:
    """Run :data:`SERVER_SCRIPT` in a child process and wait until it has bound."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("ab") as log_fh:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER_SCRIPT, endpoint, str(journal_dir), str(actions)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log_fh,
        )
    assert proc.stdout is not None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], DEADLINE_S)
        line = proc.stdout.readline() if ready else b""
        if line.strip() != b"READY":
            raise AssertionError(f"server process did not start: {log.read_text()[-2000:]}")
    except BaseException:
        stop_process(proc)
        raise
    return proc


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``proc`` (a crash, not a shutdown) and reap it."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(DEADLINE_S)
    if proc.stdout is not None:
        proc.stdout.close()

"""Test harness: a private QSuite (own endpoints, own data dir) started as real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.settings import ENGINE_PROCESSES, Settings, load_settings

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def dump_toml(tree: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    for section, body in tree.items():
        scalars = {k: v for k, v in body.items() if not isinstance(v, dict)}
        nested = {k: v for k, v in body.items() if isinstance(v, dict)}
        if scalars:
            lines.append(f"[{section}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in scalars.items()]
        for name, sub in nested.items():
            lines.append(f"[{section}.{name}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in sub.items()]
    return "\n".join(lines) + "\n"


class Sandbox:
    """A config file with ipc endpoints in a short temp dir, a data dir and free ports."""

    def __init__(self, data_dir: Path, extra: dict[str, dict[str, Any]] | None = None) -> None:
        self.ipc_dir = Path(tempfile.mkdtemp(prefix="qs", dir="/tmp"))
        self.data_dir = data_dir
        ipc = lambda name: f"ipc://{self.ipc_dir}/{name}"  # noqa: E731
        tree: dict[str, dict[str, Any]] = {
            "app": {"data_dir": str(data_dir)},
            "bus": {"xsub": ipc("xsub"), "xpub": ipc("xpub")},
            "metrics": {"enabled": True},
            "supervisor": {
                "control": ipc("sup"),
                "metrics_port": 0,
                "heartbeat_interval_s": 0.3,
                "heartbeat_timeout_s": 3.0,
                "startup_grace_s": 20.0,
                "restart_backoff_initial_s": 0.2,
                "restart_backoff_max_s": 2.0,
                "stop_timeout_s": 5.0,
            },
            "control": {"timeout_ms": 1500, "retries": 2},
            "ui": {"port": free_port()},
            "processes": {
                name: {"control": ipc(name), "metrics_port": 0} for name in ENGINE_PROCESSES
            },
            # offline and deterministic unless a test asks for a live source
            "feed": {"source": "synthetic", "watchlist": ["AAA", "BBB.L"], "tick_interval_s": 0.5},
            "sync": {"backfill_on_start": False},
            "venue": {"order_entry": ipc("orders")},
        }
        for section, body in (extra or {}).items():
            tree.setdefault(section, {}).update(body)
        self.config = data_dir / "qsuite-test.toml"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(dump_toml(tree))
        self.settings: Settings = load_settings(self.config, environ={})

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "app", "--config", str(self.config), *args]

    def leftover_ipc(self) -> list[str]:
        return sorted(p.name for p in self.ipc_dir.iterdir()) if self.ipc_dir.exists() else []

    def cleanup(self) -> None:
        for path in self.ipc_dir.glob("*"):
            path.unlink(missing_ok=True)
        self.ipc_dir.rmdir()


def clean_env() -> dict[str, str]:
    # PYTEST_CURRENT_TEST would make NiceGUI in a child believe it runs inside pytest
    return {k: v for k, v in os.environ.items() if not k.startswith(("QSUITE", "PYTEST_"))}


def processes_using(marker: str) -> list[int]:
    """Pids of live processes whose command line mentions ``marker`` (orphan check)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().split(") ", 1)[1][0]
        except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
            continue
        if marker in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


def wait_until(
    predicate: Callable[[], Any], timeout_s: float, what: str, every_s: float = 0.1
) -> Any:
    deadline = time.monotonic() + timeout_s
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the system may not be up yet
            last_exc = exc
        time.sleep(every_s)
    raise AssertionError(
        f"timed out after {timeout_s}s waiting for {what} (last error: {last_exc!r})"
    )


@contextmanager
def running(
    sandbox: Sandbox, *args: str, log_name: str = "run.log"
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``qsuite <args>`` and always stop it (SIGINT, then SIGKILL of the group)."""
    log = (sandbox.data_dir / log_name).open("ab")
    proc = subprocess.Popen(
        sandbox.command(*args),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=clean_env(),
        start_new_session=True,
        cwd=REPO,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        for pid in processes_using(str(sandbox.config)):
            os.kill(pid, signal.SIGKILL)
        log.close()

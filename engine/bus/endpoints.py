"""ZeroMQ endpoints: the ipc socket files that binders own.

libzmq silently replaces an existing ipc socket file on bind — stealing a live peer's
address — and leaves the file behind when a process dies. Every binder therefore checks
before binding (:func:`ensure_ipc_free`) and removes its file on close
(:func:`remove_ipc_file`).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import zmq

from engine.errors import OperationalError


def ipc_path(endpoint: str) -> Path | None:
    """The socket file of an ``ipc://`` endpoint (None for tcp, abstract or wildcard)."""
    path = endpoint.removeprefix("ipc://")
    if path == endpoint or path.startswith("@") or path in ("", "*"):
        return None
    return Path(path)


def ensure_ipc_free(endpoint: str, what: str, setting: str) -> None:
    """Refuse to bind ``endpoint`` when a live process listens on its socket file.

    ``what`` names the socket for the operator ("the bus proxy"), ``setting`` the key.
    A stale file from a dead process is left for libzmq to replace.
    """
    path = ipc_path(endpoint)
    if path is None or not path.exists():
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return
    raise OperationalError(
        f"Cannot bind {what} to {endpoint} (setting `{setting}`): another process "
        f"is listening there. Stop it, or choose another endpoint for `{setting}`."
    )


def remove_ipc_file(endpoint: str) -> None:
    path = ipc_path(endpoint)
    if path is not None:
        path.unlink(missing_ok=True)


def open_socket(
    ctx: Any, kind: int, endpoint: str, hwm: int, bind: bool, opts: dict[int, int]
) -> Any:
    """A bus socket with its high-water mark and options, bound or connected."""
    socket = ctx.socket(kind)
    try:
        socket.setsockopt(zmq.SNDHWM if kind == zmq.PUB else zmq.RCVHWM, hwm)
        for option, value in opts.items():
            socket.setsockopt(option, value)
        (socket.bind if bind else socket.connect)(endpoint)
    except zmq.ZMQError as exc:
        socket.close(linger=0)
        verb = "bind" if bind else "connect"
        raise OperationalError(f"Cannot {verb} a bus socket to {endpoint}: {exc}") from None
    return socket

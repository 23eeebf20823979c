"""The bus proxy: the one well-known address of the bus (ZeroMQ XSUB/XPUB).

Publishers connect to ``bus.xsub``, subscribers to ``bus.xpub``. Messages flow from
XSUB to XPUB and subscriptions the other way; frames cross untouched (the wire format
is documented in :mod:`engine.bus.events`). An optional PUB socket on ``bus.capture``
mirrors everything the proxy receives: every two-frame bus message, and every
subscription change as one frame ``b"\\x01" + prefix`` (subscribe) or ``b"\\x00" +
prefix`` (unsubscribe).

The forwarding loop is libzmq's ``zmq_proxy_steerable``, run in a daemon thread; it
holds no Python code in the hot path and counts nothing. Its XPUB drops messages for a
subscriber whose pipe is full (see :mod:`engine.bus.subscriber` for how losses are counted).
``stop()`` sends ``TERMINATE`` on an inproc PAIR control socket, closes every socket
with linger 0 and removes ipc socket files.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from typing import Any

import zmq
from loguru import logger

from engine.bus.endpoints import ensure_ipc_free, remove_ipc_file
from engine.errors import OperationalError

_ids = itertools.count(1)


class BusProxy:
    """XSUB/XPUB forwarder with an optional capture socket; use as a context manager.

    ``hwm`` is the send and receive high-water mark of every proxy socket. Endpoints
    may use a wildcard port (``tcp://127.0.0.1:*``); the ``*_address`` attributes give
    the bound ones once started.
    """

    def __init__(
        self,
        ctx: zmq.Context[Any],
        xsub_endpoint: str,
        xpub_endpoint: str,
        capture_endpoint: str = "",
        *,
        hwm: int = 100_000,
    ) -> None:
        self._ctx = ctx
        self._endpoints = {
            "bus.xsub": (zmq.XSUB, xsub_endpoint),
            "bus.xpub": (zmq.XPUB, xpub_endpoint),
        }
        if capture_endpoint:
            self._endpoints["bus.capture"] = (zmq.PUB, capture_endpoint)
        self._hwm = hwm
        self._thread: threading.Thread | None = None
        self._command: zmq.Socket[bytes] | None = None
        self._bound: dict[str, str] = {}

    @property
    def xsub_address(self) -> str:
        return self._bound["bus.xsub"]

    @property
    def xpub_address(self) -> str:
        return self._bound["bus.xpub"]

    @property
    def capture_address(self) -> str:
        return self._bound.get("bus.capture", "")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _bind(self, setting: str, opened: list[zmq.Socket[bytes]]) -> zmq.Socket[bytes]:
        kind, endpoint = self._endpoints[setting]
        ensure_ipc_free(endpoint, "the bus proxy", setting)
        sock = self._ctx.socket(kind)
        opened.append(sock)
        sock.setsockopt(zmq.SNDHWM, self._hwm)
        sock.setsockopt(zmq.RCVHWM, self._hwm)
        try:
            sock.bind(endpoint)
        except zmq.ZMQError as exc:
            hint = " Is another bus proxy running?" if exc.errno == zmq.EADDRINUSE else ""
            raise OperationalError(
                f"Cannot bind the bus proxy to {endpoint} (setting `{setting}`): "
                f"{exc.strerror}.{hint}"
            ) from None
        self._bound[setting] = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        return sock

    def start(self) -> BusProxy:
        """Bind every socket (raising :class:`OperationalError` naming the setting on
        failure) and start forwarding in a daemon thread."""
        if self._thread is not None:
            raise RuntimeError("the bus proxy is already started")
        opened: list[zmq.Socket[bytes]] = []
        control_address = f"inproc://qsuite-bus-proxy-{next(_ids)}"
        try:
            xsub = self._bind("bus.xsub", opened)
            xpub = self._bind("bus.xpub", opened)
            capture = (
                self._bind("bus.capture", opened) if "bus.capture" in self._endpoints else None
            )
            control = self._ctx.socket(zmq.PAIR)
            opened.append(control)
            control.bind(control_address)
            command = self._ctx.socket(zmq.PAIR)
            opened.append(command)
            command.connect(control_address)
        except BaseException:
            for sock in opened:
                sock.close(linger=0)
            self._remove_ipc_files()
            raise
        self._command = command
        # The sockets move to the proxy thread; Thread.start() is the memory barrier
        # ZeroMQ asks for when a socket changes threads.
        self._thread = threading.Thread(
            target=self._run, args=(xsub, xpub, capture, control), name="bus-proxy", daemon=True
        )
        self._thread.start()
        logger.bind(component="bus.proxy").info(
            "Bus proxy forwarding {} -> {}", self.xsub_address, self.xpub_address
        )
        return self

    @staticmethod
    def _run(
        xsub: zmq.Socket[bytes],
        xpub: zmq.Socket[bytes],
        capture: zmq.Socket[bytes] | None,
        control: zmq.Socket[bytes],
    ) -> None:
        try:
            zmq.proxy_steerable(xsub, xpub, capture, control)
        except zmq.ContextTerminated:
            pass
        except zmq.ZMQError as exc:
            logger.bind(component="bus.proxy").error("Cannot run the bus proxy: {}", exc)
        finally:
            for sock in (xsub, xpub, capture, control):
                if sock is not None:
                    sock.close(linger=0)

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the forwarding thread and close every socket. Idempotent."""
        thread, command = self._thread, self._command
        if thread is None or command is None:
            return
        with contextlib.suppress(zmq.ZMQError):  # the loop may have ended already
            command.send(b"TERMINATE", zmq.NOBLOCK)
        thread.join(timeout)
        if thread.is_alive():
            raise OperationalError(f"Cannot stop the bus proxy: still running after {timeout} s")
        command.close(linger=0)
        self._thread = self._command = None
        self._remove_ipc_files()

    def _remove_ipc_files(self) -> None:
        for endpoint in self._bound.values():
            remove_ipc_file(endpoint)

    def __enter__(self) -> BusProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

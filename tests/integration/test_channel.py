"""Point-to-point channels over real ZeroMQ: routing by peer, drops counted, cleanup."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest_bus import Bus

from engine.bus.channel import ZmqChannel
from engine.errors import OperationalError
from engine.stats import StatsRegistry

pytestmark = pytest.mark.integration


@pytest.fixture
def bus() -> Iterator[Bus]:
    with Bus() as bus:
        yield bus


@pytest.fixture
def short_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="qs", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def pump(channels: list[ZmqChannel], until: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not until() and time.monotonic() < deadline:  # type: ignore[operator]
        for channel in channels:
            if channel.socket.poll(10):
                channel.handle_ready()
    assert until(), "channel message did not arrive in time"  # type: ignore[operator]


def test_served_channel_answers_each_peer_on_its_own_route(bus: Bus, short_dir: Path) -> None:
    stats = StatsRegistry()
    got: dict[str, list[list[bytes]]] = {"server": [], "a": [], "b": []}

    def serve(peer: bytes, frames: list[bytes]) -> None:
        got["server"].append(frames)
        server.send([b"echo:" + frames[0]], peer)

    endpoint = f"ipc://{short_dir}/venue.sock"
    server = bus.track(
        ZmqChannel(
            bus.ctx,
            "orders",
            "serve",
            endpoint,
            serve,
            setting="venue.order_entry",
            max_message_bytes=1 << 16,
            stats=stats,
        )
    )
    a = bus.track(
        ZmqChannel(
            bus.ctx,
            "orders",
            "connect",
            endpoint,
            lambda _p, f: got["a"].append(f),
            setting="s",
            max_message_bytes=1 << 16,
        )
    )
    b = bus.track(
        ZmqChannel(
            bus.ctx,
            "orders",
            "connect",
            endpoint,
            lambda _p, f: got["b"].append(f),
            setting="s",
            max_message_bytes=1 << 16,
        )
    )
    assert a.send([b"from-a"]) and b.send([b"from-b"])
    pump([server, a, b], lambda: len(got["a"]) == 1 and len(got["b"]) == 1)
    assert got["a"] == [[b"echo:from-a"]] and got["b"] == [[b"echo:from-b"]]
    assert not server.send([b"lost"], b"no-such-peer")
    assert stats.total("qsuite_channel_dropped_total") == 1
    assert (short_dir / "venue.sock").exists()
    server.close()
    assert not (short_dir / "venue.sock").exists()
    bus._open.remove(server.close)


def test_serve_when_endpoint_taken_then_operational_error_names_the_setting(
    bus: Bus, short_dir: Path
) -> None:
    endpoint = f"ipc://{short_dir}/taken.sock"
    bus.track(
        ZmqChannel(
            bus.ctx,
            "orders",
            "serve",
            endpoint,
            lambda p, f: None,
            setting="venue.order_entry",
            max_message_bytes=1024,
        )
    )
    with pytest.raises(OperationalError, match=r"venue\.order_entry"):
        ZmqChannel(
            bus.ctx,
            "orders",
            "serve",
            endpoint,
            lambda p, f: None,
            setting="venue.order_entry",
            max_message_bytes=1024,
        )

"""BusProxy with real sockets: forwarding, capture, clean stop, clear bind errors."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
from conftest_bus import LOOPBACK, Bus, heartbeat, recv_until

from engine.bus import codec, topics
from engine.bus.proxy import BusProxy
from engine.bus.publisher import Publisher
from engine.bus.subscriber import Subscriber, wait_for_subscription
from engine.errors import OperationalError

pytestmark = pytest.mark.integration


@pytest.fixture
def bus() -> Iterator[Bus]:
    with Bus() as bus:
        yield bus


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """ipc paths must stay under ~100 bytes, shorter than pytest's tmp_path allows."""
    path = Path(tempfile.mkdtemp(prefix="qs", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _publisher(bus: Bus, proxy: BusProxy, source: str) -> Publisher:
    publisher = Publisher(bus.ctx, proxy.xsub_address, source, hwm=1000, stats=bus.stats)
    return bus.track(publisher)


def _subscriber(bus: Bus, address: str, prefixes: list[str]) -> Subscriber:
    return bus.track(Subscriber(bus.ctx, address, prefixes, hwm=1000, stats=bus.stats))


def test_proxy_when_two_publishers_and_two_subscribers_then_each_gets_its_topics(
    bus: Bus,
) -> None:
    proxy = bus.proxy()
    feed, execution = _publisher(bus, proxy, "feed"), _publisher(bus, proxy, "execution")
    bars = _subscriber(bus, proxy.xpub_address, ["md.bar"])
    everything = _subscriber(bus, proxy.xpub_address, [""])
    for pub in (feed, execution):
        for sub in (bars, everything):
            wait_for_subscription(pub, sub)

    feed.publish("md.bar.AAPL.1m", heartbeat(1))
    execution.publish("exec.algo.a1", heartbeat(2))
    feed.publish("md.quote.AAPL", heartbeat(3))

    got_bars = recv_until(bars, lambda got: len(got) == 1)
    got_all = recv_until(everything, lambda got: len(got) == 3)
    assert [(t, e.source) for t, e in got_bars] == [("md.bar.AAPL.1m", "feed")]
    assert sorted(e.ts_event for _, e in got_all) == [1, 2, 3]


def test_capture_when_enabled_then_mirrors_messages_and_subscriptions(bus: Bus) -> None:
    proxy = bus.proxy(capture=True)
    capture = bus.socket(zmq.SUB)
    capture.subscribe(b"")
    capture.connect(proxy.capture_address)
    pub = _publisher(bus, proxy, "feed")
    wait_for_subscription(pub, _subscriber(bus, proxy.xpub_address, ["md.bar"]))
    wire = topics.to_wire("md.bar.X")
    mirrored: list[list[bytes]] = []
    while not any(frames[0] == wire for frames in mirrored):  # the capture link joins late
        pub.publish("md.bar.X", heartbeat(7))
        while capture.poll(20):
            mirrored.append(capture.recv_multipart())

    _subscriber(bus, proxy.xpub_address, ["risk.alert"])
    while [b"\x01risk.alert."] not in mirrored:
        assert capture.poll(5000), f"no subscription frame mirrored: {mirrored[-3:]}"
        mirrored.append(capture.recv_multipart())

    message = next(frames for frames in mirrored if frames[0] == wire)
    assert len(message) == 2
    assert codec.decode_event(message[1]).source == "feed"


def test_stop_when_running_then_thread_ends_sockets_close_and_stop_is_idempotent(
    bus: Bus,
) -> None:
    proxy = BusProxy(bus.ctx, LOOPBACK, LOOPBACK, hwm=10)

    with proxy:
        assert proxy.running
        address = proxy.xsub_address
    proxy.stop()

    assert not proxy.running
    assert proxy.xsub_address == address
    assert "tcp://127.0.0.1:" in address


def test_start_when_already_started_then_runtime_error(bus: Bus) -> None:
    proxy = bus.proxy()

    with pytest.raises(RuntimeError, match="already started"):
        proxy.start()


@pytest.mark.parametrize("setting", ["bus.xsub", "bus.xpub", "bus.capture"])
def test_start_when_address_in_use_then_operational_error_names_endpoint_and_setting(
    bus: Bus, setting: str
) -> None:
    squatter = bus.socket(zmq.PUB)
    squatter.bind(LOOPBACK)
    taken = squatter.last_endpoint.decode()
    endpoints = {"bus.xsub": LOOPBACK, "bus.xpub": LOOPBACK, "bus.capture": LOOPBACK}
    endpoints[setting] = taken
    proxy = BusProxy(bus.ctx, *endpoints.values())

    with pytest.raises(OperationalError) as error:
        proxy.start()

    assert taken in str(error.value)
    assert f"`{setting}`" in str(error.value)
    assert "Address already in use" in str(error.value)
    assert not proxy.running  # and Bus.close() proves no socket was left open


def test_ipc_when_stopped_then_socket_files_removed(bus: Bus, short_dir: Path) -> None:
    xsub, xpub = short_dir / "xsub", short_dir / "xpub"
    proxy = BusProxy(bus.ctx, f"ipc://{xsub}", f"ipc://{xpub}")

    with proxy:
        assert xsub.exists() and xpub.exists()
        pub = _publisher(bus, proxy, "feed")
        sub = _subscriber(bus, proxy.xpub_address, ["sys"])
        wait_for_subscription(pub, sub)
        pub.close()
        sub.close()

    assert not xsub.exists() and not xpub.exists()


def test_ipc_when_another_proxy_listens_then_operational_error(bus: Bus, short_dir: Path) -> None:
    endpoint = f"ipc://{short_dir / 'xsub'}"
    first = bus.track(BusProxy(bus.ctx, endpoint, LOOPBACK).start(), lambda: first.stop())

    with pytest.raises(OperationalError, match=r"`bus\.xsub`.*another process"):
        BusProxy(bus.ctx, endpoint, LOOPBACK).start()
    assert first.running


def test_ipc_when_stale_socket_file_then_proxy_takes_it_over(bus: Bus, short_dir: Path) -> None:
    path = short_dir / "xsub"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))  # closed without unlink: what a crashed process leaves

    proxy = bus.track(BusProxy(bus.ctx, f"ipc://{path}", LOOPBACK).start(), lambda: proxy.stop())

    assert proxy.running

"""Publisher and Subscriber over real ZeroMQ sockets (loopback tcp, inproc, a subprocess)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio
from conftest_bus import LOOPBACK, Bus, child_pids, heartbeat, raw_frames, recv_quiet, recv_until
from loguru import logger

from engine.bus import codec, topics
from engine.bus.events import Event, Heartbeat, Probe
from engine.bus.publisher import Publisher
from engine.bus.subscriber import AsyncSubscriber, Gap, Subscriber, wait_for_subscription
from engine.errors import TransientError

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HB = topics.heartbeat("test")


@pytest.fixture
def bus() -> Iterator[Bus]:
    with Bus() as bus:
        yield bus


def _pair(bus: Bus, prefixes: list[str], **sub_kw: Any) -> tuple[Publisher, Subscriber]:
    """A publisher and a subscriber through a fresh proxy, subscription confirmed."""
    proxy = bus.proxy()
    pub = bus.track(Publisher(bus.ctx, proxy.xsub_address, "pub", hwm=10_000, stats=bus.stats))
    sub = bus.track(
        Subscriber(bus.ctx, proxy.xpub_address, prefixes, hwm=10_000, stats=bus.stats, **sub_kw)
    )
    wait_for_subscription(pub, sub)
    return pub, sub


def _raw_pair(bus: Bus, **sub_kw: Any) -> tuple[zmq.Socket[bytes], Subscriber]:
    """A raw PUB (frames chosen by the test) and a subscriber to everything."""
    pub = bus.socket(zmq.PUB)
    pub.bind(LOOPBACK)
    sub = bus.track(
        Subscriber(bus.ctx, pub.last_endpoint.decode(), hwm=1000, stats=bus.stats, **sub_kw)
    )

    def send_probe(topic: str, probe: Probe) -> None:
        pub.send_multipart(raw_frames(topic, probe))

    wait_for_subscription(send_probe, sub)
    return pub, sub


def _stamped(seq: int, session: str = "s1", source: str = "raw") -> Heartbeat:
    return heartbeat(seq, source=source, seq=seq, event_id=f"{source}:{session}:{seq}")


def _count(bus: Bus, name: str, **labels: str) -> float:
    key = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return bus.stats.snapshot().get(f"{name}{{{key}}}" if key else name, 0.0)


def test_subscribe_when_topic_only_shares_a_string_prefix_then_not_delivered(bus: Bus) -> None:
    pub, sub = _pair(bus, ["md.bar.AA"])

    for topic in ["md.bar.AAPL.1m", "md.bar.AA", "md.bar.AAX", "md.bar.AA.1m", "sys.heartbeat.x"]:
        pub.publish(topic, heartbeat())
    got = recv_until(sub, lambda got: len(got) == 2)

    assert [topic for topic, _ in got] == ["md.bar.AA", "md.bar.AA.1m"]
    assert recv_quiet(sub) == []


def test_publish_when_through_proxy_then_header_stamped_per_topic(bus: Bus) -> None:
    pub, sub = _pair(bus, ["md.bar"])

    sent = [
        pub.publish(topic, heartbeat(i)) for i, topic in enumerate(["md.bar.A", "md.bar.B"] * 3)
    ]
    kept = pub.publish("md.bar.A", heartbeat(9, ts_init=123))
    got = recv_until(sub, lambda got: len(got) == 7)

    assert [event for _, event in got] == [*sent, kept]
    assert [(t, e.seq) for t, e in got[:4]] == [
        ("md.bar.A", 1),
        ("md.bar.B", 1),
        ("md.bar.A", 2),
        ("md.bar.B", 2),
    ]
    assert all(e.source == "pub" and e.ts_init > 0 for _, e in got)
    assert len({e.event_id for _, e in got}) == 7
    assert all(e.event_id.startswith(f"pub:{pub.session}:") for _, e in got)
    assert kept.ts_init == 123
    assert _count(bus, "qsuite_bus_gaps_total", source="pub") == 0


def test_publish_when_topic_invalid_then_topic_error_before_sending(bus: Bus) -> None:
    pub = bus.track(Publisher(bus.ctx, "tcp://127.0.0.1:1", "pub", hwm=10, stats=bus.stats))

    with pytest.raises(topics.TopicError):
        pub.publish("nope.bar", heartbeat())
    assert _count(bus, "qsuite_bus_published_total", source="pub") == 0


CHILD = """
import select, sys, time, zmq
from engine.bus import topics
from engine.bus.events import Heartbeat, Probe
from engine.bus.publisher import Publisher

endpoint, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = zmq.Context()
pub = Publisher(ctx, endpoint, "child", hwm=n + 1000)
deadline = time.monotonic() + 30
while not select.select([sys.stdin], [], [], 0.01)[0] and time.monotonic() < deadline:
    pub.publish(topics.probe(token), Probe(token=token, ts_event=time.time_ns()))
sys.stdin.readline()
for i in range(n):
    event = Heartbeat(ts_event=i, process="child", pid=0, version="t", started_at=0)
    pub.publish(topics.heartbeat("child"), event)
pub.close(linger_ms=10_000)
ctx.term()
"""


@pytest.mark.timeout(60)
def test_publisher_in_another_process_then_all_events_arrive_in_order(bus: Bus) -> None:
    n, probe, beats = 5000, topics.probe("crossproc"), topics.heartbeat("child")
    proxy, children_before = bus.proxy(), child_pids()
    sub = bus.track(
        Subscriber(bus.ctx, proxy.xpub_address, [beats, probe], hwm=n * 2, stats=bus.stats)
    )
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, proxy.xsub_address, "crossproc", str(n)],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": path},
        cwd=ROOT,
    )
    try:  # the child sends probes until it reads "go": then our subscription is live
        recv_until(sub, lambda got: bool(got) and got[-1][0] == probe, 20)
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        child.stdin.flush()
        got = recv_until(sub, lambda got: bool(got) and got[-1][1].seq == n and got[-1][0] == beats)
        _, stderr = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5)

    assert child.returncode == 0, stderr.decode()
    assert child_pids() == children_before
    events = [e for t, e in got if t == beats]
    assert [e.seq for e in events] == list(range(1, n + 1))
    assert [e.ts_event for e in events] == list(range(n))
    assert all(e.source == "child" for e in events)
    assert bus.stats.total("qsuite_bus_gaps_total") == 0


def test_seq_when_skipped_then_gap_reported_with_expected_and_got(bus: Bus) -> None:
    gaps: list[Gap] = []
    pub, sub = _raw_pair(bus, on_gap=gaps.append)

    for seq in [1, 2, 3, 6, 7, 10]:
        pub.send_multipart(raw_frames(HB, _stamped(seq)))
    got = recv_until(sub, lambda got: len(got) == 6)

    assert [e.seq for _, e in got] == [1, 2, 3, 6, 7, 10]
    assert gaps == [Gap("raw", HB, 4, 6), Gap("raw", HB, 8, 10)]
    assert [g.missed for g in gaps] == [2, 2]
    assert _count(bus, "qsuite_bus_gaps_total", source="raw") == 2
    assert _count(bus, "qsuite_bus_missed_total", source="raw") == 4


def test_seq_when_publisher_restarts_or_repeats_then_restart_not_gap_and_duplicate_dropped(
    bus: Bus,
) -> None:
    gaps: list[Gap] = []
    pub, sub = _raw_pair(bus, on_gap=gaps.append)
    stream = [
        _stamped(1),
        _stamped(2),
        _stamped(3),
        _stamped(1, session="s2"),
        _stamped(2, session="s2"),  # restart: seq back to 1
        _stamped(2, session="s2"),  # duplicate: dropped
        _stamped(5, session="s3"),  # restart seen late: new session, not a gap
        _stamped(6, session="s3"),
        heartbeat(99),  # not stamped (seq 0): passes unchecked
    ]

    for event in stream:
        pub.send_multipart(raw_frames(HB, event))
    got = recv_until(sub, lambda got: len(got) == 8)

    assert [(e.event_id, e.seq) for _, e in got][3:] == [
        ("raw:s2:1", 1),
        ("raw:s2:2", 2),
        ("raw:s3:5", 5),
        ("raw:s3:6", 6),
        ("", 0),
    ]
    assert gaps == []
    assert _count(bus, "qsuite_bus_restarts_total", source="raw") == 2
    assert _count(bus, "qsuite_bus_duplicates_total", source="raw") == 1


def test_on_gap_when_it_raises_then_counted_and_subscriber_keeps_working(bus: Bus) -> None:
    def on_gap(gap: Gap) -> None:
        raise RuntimeError("boom")

    pub, sub = _raw_pair(bus, on_gap=on_gap)

    for seq in [1, 3, 4]:
        pub.send_multipart(raw_frames(HB, _stamped(seq)))
    got = recv_until(sub, lambda got: len(got) == 3)

    assert [e.seq for _, e in got] == [1, 3, 4]
    assert _count(bus, "qsuite_bus_gap_handler_errors_total", source="raw") == 1


MALFORMED = {
    "frames": [[b"sys.heartbeat.test."], [b"sys.heartbeat.test.", b"x", b"y"]],
    "topic": [[b"sys.heartbeat.test", b"x"], [b"sys.\xff\xfe.", b"x"]],
    "payload": [[b"sys.heartbeat.test.", b"\xc1garbage"], [b"sys.heartbeat.test.", b""]],
    "unknown_tag": [[b"sys.heartbeat.test.", codec.encode({"type": "Nope.v1", "ts_event": 1})]],
    "invalid": [[b"sys.heartbeat.test.", codec.encode({"type": "Heartbeat.v1", "ts_event": 1})]],
}


@pytest.mark.parametrize("reason", sorted(MALFORMED))
def test_recv_when_malformed_then_counted_dropped_and_next_event_delivered(
    bus: Bus, reason: str
) -> None:
    pub, sub = _raw_pair(bus)

    for frames in MALFORMED[reason]:
        pub.send_multipart(frames)
    pub.send_multipart(raw_frames(HB, _stamped(1)))
    got = recv_until(sub, lambda got: len(got) == 1)

    assert got[0][1] == _stamped(1)
    assert _count(bus, "qsuite_bus_malformed_total", reason=reason) == len(MALFORMED[reason])
    assert bus.stats.total("qsuite_bus_malformed_total") == len(MALFORMED[reason])


def test_malformed_when_many_then_every_one_counted_but_logged_once(bus: Bus) -> None:
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING", format="{message}")
    try:
        pub, sub = _raw_pair(bus)
        for _ in range(50):
            pub.send_multipart([b"sys.heartbeat.test.", b"\xc1"])
        pub.send_multipart(raw_frames(HB, _stamped(1)))
        recv_until(sub, lambda got: len(got) == 1)
    finally:
        logger.remove(sink)

    assert _count(bus, "qsuite_bus_malformed_total", reason="payload") == 50
    assert len([w for w in warnings if "Cannot decode bus message (payload)" in w]) == 1


def test_publish_when_pipe_full_then_drops_counted_and_seen_as_gaps(bus: Bus) -> None:
    # inproc has no kernel buffers, so the pipe is exactly SNDHWM + RCVHWM deep.
    pub = bus.track(Publisher(bus.ctx, "inproc://hwm", "pub", hwm=10, stats=bus.stats, bind=True))
    sub = bus.track(Subscriber(bus.ctx, "inproc://hwm", [HB], hwm=10, stats=bus.stats))
    wait_for_subscription(pub, sub)
    recv_quiet(sub, 50)
    attempts, sent_before = 1000, _count(bus, "qsuite_bus_published_total", source="pub")

    for i in range(attempts):
        pub.publish(HB, heartbeat(i))
    dropped = _count(bus, "qsuite_bus_dropped_total", source="pub")
    sent = _count(bus, "qsuite_bus_published_total", source="pub") - sent_before
    received = recv_quiet(sub, 100)
    last = pub.publish(HB, heartbeat(attempts))
    received += recv_until(sub, lambda got: len(got) == 1)

    assert dropped > 0 and sent + dropped == attempts
    assert len(received) == sent + 1 and received[-1][1] == last
    assert _count(bus, "qsuite_bus_missed_total", source="pub") == dropped


def test_proxy_when_subscriber_slow_then_losses_seen_as_gaps(bus: Bus) -> None:
    proxy = bus.proxy(hwm=10)
    pub = bus.track(Publisher(bus.ctx, proxy.xsub_address, "pub", hwm=100_000, stats=bus.stats))
    sub = bus.track(Subscriber(bus.ctx, proxy.xpub_address, [HB], hwm=10, stats=bus.stats))
    wait_for_subscription(pub, sub)
    big = "x" * 2000  # 20 MB in all: more than loopback TCP buffers hold

    for i in range(10_000):
        pub.publish(HB, heartbeat(i, detail=big))
    received = recv_quiet(sub, 300)
    while not any(e.detail == "last" for _, e in received):  # the bus is idle now
        pub.publish(HB, heartbeat(0, detail="last"))
        received += recv_quiet(sub, 50)
    last_seq = max(e.seq for _, e in received)

    missed = _count(bus, "qsuite_bus_missed_total", source="pub")
    assert missed > 0
    assert len(received) + missed == last_seq


def test_unsubscribe_when_at_runtime_then_stream_stops_and_resumes_without_gap(bus: Bus) -> None:
    pub, sub = _pair(bus, ["md.bar"])
    pub.publish("md.bar.A", heartbeat(1))
    recv_until(sub, lambda got: len(got) == 1)

    sub.unsubscribe("md.bar")
    sub.subscribe("md.quote")
    wait_for_subscription(pub, sub)
    pub.publish("md.bar.A", heartbeat(2))
    pub.publish("md.quote.A", heartbeat(3))
    assert [t for t, _ in recv_until(sub, lambda got: len(got) == 1)] == ["md.quote.A"]

    sub.subscribe("md.bar")
    wait_for_subscription(pub, sub)
    pub.publish("md.bar.A", heartbeat(4))
    assert [e.seq for _, e in recv_until(sub, lambda got: len(got) == 1)] == [3]
    assert bus.stats.total("qsuite_bus_gaps_total") == 0


def test_handle_ready_when_poller_loop_then_drains_up_to_max(bus: Bus) -> None:
    pub, sub = _pair(bus, [HB])
    handled: list[tuple[str, Event]] = []
    poller = zmq.Poller()
    poller.register(sub.socket, zmq.POLLIN)

    for i in range(25):
        pub.publish(HB, heartbeat(i))
    while len(handled) < 25:
        assert dict(poller.poll(5000)), "no events within 5 s"
        assert sub.handle_ready(lambda t, e: handled.append((t, e)), max_messages=10) <= 10

    assert [e.ts_event for _, e in handled] == list(range(25))
    assert sub.poll_batch(lambda t, e: handled.append((t, e)), timeout_ms=50) == 0


def test_recv_when_nothing_arrives_then_none_after_timeout(bus: Bus) -> None:
    sub = bus.track(Subscriber(bus.ctx, LOOPBACK, hwm=10, stats=bus.stats, bind=True))

    assert sub.recv(timeout_ms=0) is None
    assert sub.recv(timeout_ms=50) is None


def test_wait_for_subscription_when_no_proxy_then_transient_error(bus: Bus) -> None:
    sub = bus.track(Subscriber(bus.ctx, LOOPBACK, hwm=10, stats=bus.stats, bind=True))
    pub = bus.track(Publisher(bus.ctx, "tcp://127.0.0.1:1", "pub", hwm=10, stats=bus.stats))

    with pytest.raises(TransientError, match="Cannot confirm a bus subscription"):
        wait_for_subscription(pub, sub, timeout_s=0.2)


async def test_async_subscriber_when_events_published_then_received_in_order(bus: Bus) -> None:
    proxy = bus.proxy()
    actx = zmq.asyncio.Context(bus.ctx)  # a shadow: terminating bus.ctx covers its sockets
    pub = bus.track(Publisher(bus.ctx, proxy.xsub_address, "pub", hwm=1000, stats=bus.stats))
    sub = bus.track(
        AsyncSubscriber(actx, proxy.xpub_address, [HB, topics.PROBES], hwm=1000, stats=bus.stats)
    )

    async def first_probe() -> None:
        while True:
            pub.publish(topics.probe("async"), Probe(token="async", ts_event=0))
            if await sub.recv(timeout_ms=20) is not None:
                return

    try:
        await asyncio.wait_for(first_probe(), timeout=5)
        sub.unsubscribe(topics.PROBES)
        while await sub.recv(timeout_ms=50) is not None:
            pass
        sent = [pub.publish(HB, heartbeat(i)) for i in range(20)]
        got = [await sub.recv(timeout_ms=2000) for _ in sent]
        quiet = await sub.recv(timeout_ms=30)
    finally:
        sub.close()  # inside the event loop that watches the socket

    assert [m[1] if m else None for m in got] == sent
    assert quiet is None

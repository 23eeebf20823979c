"""Bus throughput: raw pyzmq + msgspec against QSuite's Publisher -> BusProxy -> Subscriber.

Both modes run the same arrangement, on loopback TCP:

    publisher subprocess  ->  proxy thread (this process)  ->  subscriber (main thread)

- raw:    a PUB socket sends ``[topic, msgspec-encoded event]`` (two ``send`` calls);
          ``zmq.proxy(XSUB, XPUB)``; a SUB socket does ``recv_multipart`` and decodes
          with a msgspec decoder of the event union.
- qsuite: :class:`Publisher` (header stamping, NODROP drop accounting) ->
          :class:`BusProxy` -> :class:`Subscriber` (decoding, gap/duplicate checks).

The publisher gets the same pre-built Heartbeat events in both modes, and starts only
after its probes reach the subscriber (no slow-joiner loss). Every high-water mark is
above the event count, so nothing should be lost; any loss is reported. The rate is
events received divided by the time from "go" to the last event received.

    python scripts/bench_bus.py --events 200000 [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import msgspec  # noqa: E402
import zmq  # noqa: E402
from loguru import logger  # noqa: E402

from engine.bus import topics  # noqa: E402
from engine.bus.events import AnyEvent, Heartbeat, Probe  # noqa: E402
from engine.bus.proxy import BusProxy  # noqa: E402
from engine.bus.publisher import Publisher  # noqa: E402
from engine.bus.subscriber import Subscriber  # noqa: E402
from engine.stats import StatsRegistry  # noqa: E402

TOPIC = topics.heartbeat("bench")
PROBE = topics.probe("bench")
LOOPBACK = "tcp://127.0.0.1:*"
MODES = ("raw", "qsuite")
ARRANGEMENT = "publisher subprocess -> proxy thread -> subscriber main thread, tcp loopback"


def build_events(n: int) -> list[Heartbeat]:
    counters = {"messages_in": 1234.0, "messages_out": 987.0, "gaps": 0.0, "errors": 1.0}
    return [
        Heartbeat(
            ts_event=1_700_000_000_000_000_000 + i,
            process="feed",
            pid=4242,
            version="0.1.0",
            started_at=1_700_000_000_000_000_000,
            counters=counters,
        )
        for i in range(n)
    ]


# --- the publisher subprocess ---------------------------------------------------------


def _go_said() -> bool:
    return bool(select.select([sys.stdin], [], [], 0.01)[0])


def run_publisher(mode: str, endpoint: str, n: int, hwm: int) -> None:
    events = build_events(n)
    ctx: zmq.Context[Any] = zmq.Context()
    stats = StatsRegistry()
    deadline = time.monotonic() + 60
    if mode == "raw":
        sock = ctx.socket(zmq.PUB)
        sock.sndhwm = hwm
        sock.connect(endpoint)
        encode, wire = msgspec.msgpack.Encoder().encode, topics.to_wire(TOPIC)
        probe = [topics.to_wire(PROBE), encode(Probe(token="bench", ts_event=0))]
        while not _go_said() and time.monotonic() < deadline:
            sock.send_multipart(probe)
        sys.stdin.readline()
        start = time.perf_counter()
        for event in events:  # two sends: the fastest raw idiom (send_multipart loops)
            sock.send(wire, zmq.SNDMORE)
            sock.send(encode(event))
        elapsed = time.perf_counter() - start
        sock.close(linger=30_000)
    else:
        pub = Publisher(ctx, endpoint, "bench", hwm=hwm, stats=stats)
        while not _go_said() and time.monotonic() < deadline:
            pub.publish(PROBE, Probe(token="bench", ts_event=0))
        sys.stdin.readline()
        start = time.perf_counter()
        for event in events:
            pub.publish(TOPIC, event)
        elapsed = time.perf_counter() - start
        pub.close(linger_ms=30_000)
    ctx.term()
    dropped = stats.total("qsuite_bus_dropped_total")
    print(json.dumps({"publish_s": elapsed, "dropped": dropped}), flush=True)


# --- the measuring side ----------------------------------------------------------------


def _spawn(mode: str, endpoint: str, n: int, hwm: int) -> subprocess.Popen[bytes]:
    args = ["--publisher", mode, "--endpoint", endpoint, "--events", str(n), "--hwm", str(hwm)]
    return subprocess.Popen(
        [sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )


def _start_raw_proxy(ctx: zmq.Context[Any], hwm: int) -> tuple[str, str]:
    """``zmq.proxy`` in a daemon thread; it ends when ``ctx`` is terminated."""
    xsub, xpub = ctx.socket(zmq.XSUB), ctx.socket(zmq.XPUB)
    for sock in (xsub, xpub):
        sock.sndhwm = sock.rcvhwm = hwm
        sock.bind(LOOPBACK)

    def run() -> None:
        try:
            zmq.proxy(xsub, xpub)
        except zmq.ContextTerminated:
            pass
        finally:
            xsub.close(linger=0)
            xpub.close(linger=0)

    addresses = xsub.last_endpoint.decode(), xpub.last_endpoint.decode()
    threading.Thread(target=run, name="raw-proxy", daemon=True).start()
    return addresses


def _receive_raw(
    sock: zmq.Socket[bytes], n: int, child: subprocess.Popen[bytes]
) -> tuple[int, float]:
    decode, wire = msgspec.msgpack.Decoder(AnyEvent).decode, topics.to_wire(TOPIC)
    sock.rcvtimeo = 5000
    while sock.recv_multipart()[0] != topics.to_wire(PROBE):
        pass  # the probe proves our subscription reached the publisher
    _say_go(child)
    start, count = time.perf_counter(), 0
    try:
        while count < n:
            frames = sock.recv_multipart()
            if frames[0] == wire:
                decode(frames[1])
                count += 1
    except zmq.Again:
        pass  # stalled for 5 s: report what arrived
    return count, time.perf_counter() - start


def _receive_qsuite(sub: Subscriber, n: int, child: subprocess.Popen[bytes]) -> tuple[int, float]:
    while (message := sub.recv(timeout_ms=5000)) is not None and message[0] != PROBE:
        pass
    _say_go(child)
    start, count = time.perf_counter(), 0
    while count < n and (message := sub.recv(timeout_ms=5000)) is not None:
        if message[0] == TOPIC:
            count += 1
    return count, time.perf_counter() - start


def _say_go(child: subprocess.Popen[bytes]) -> None:
    assert child.stdin is not None
    child.stdin.write(b"go\n")
    child.stdin.flush()


def run_once(mode: str, n: int, hwm: int, timeout_s: float) -> dict[str, Any]:
    ctx: zmq.Context[Any] = zmq.Context()
    stats = StatsRegistry()
    child: subprocess.Popen[bytes] | None = None
    try:
        if mode == "raw":
            xsub, xpub = _start_raw_proxy(ctx, hwm)
            sock = ctx.socket(zmq.SUB)
            sock.rcvhwm = hwm
            for prefix in (TOPIC, PROBE):
                sock.subscribe(topics.subscription(prefix))
            sock.connect(xpub)
            child = _spawn(mode, xsub, n, hwm)
            try:
                count, seconds = _receive_raw(sock, n, child)
            finally:
                sock.close(linger=0)
        else:
            proxy = BusProxy(ctx, LOOPBACK, LOOPBACK, hwm=hwm).start()
            sub = Subscriber(ctx, proxy.xpub_address, [TOPIC, PROBE], hwm=hwm, stats=stats)
            try:
                child = _spawn(mode, proxy.xsub_address, n, hwm)
                count, seconds = _receive_qsuite(sub, n, child)
            finally:
                sub.close()
                proxy.stop()
        out, _ = child.communicate(timeout=timeout_s)
        publisher = json.loads(out.decode().strip().splitlines()[-1])
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait(5)
        ctx.term()  # ends the raw proxy thread (ETERM) once every other socket is closed
    return {
        "mode": mode,
        "received": count,
        "lost": n - count,
        "seconds": seconds,
        "events_per_s": count / seconds if seconds else 0.0,
        "publisher_events_per_s": n / publisher["publish_s"],
        "publisher_dropped": publisher["dropped"],
        "gaps": stats.total("qsuite_bus_gaps_total"),
    }


def _print_table(
    result: dict[str, Any], runs: list[dict[str, Any]], median: dict[str, float], ratio: float
) -> None:
    print(
        f"{result['events']} Heartbeat events per run, {result['repeat']} run(s) per mode; "
        f"{result['arrangement']}; {result['cpus']} CPU(s)"
    )
    header = ("mode", "received", "lost", "seconds", "events/s", "publisher ev/s")
    print("{:8} {:>9} {:>6} {:>8} {:>10} {:>15}".format(*header))
    for run in runs:
        print(
            f"{run['mode']:8} {run['received']:>9} {run['lost']:>6} {run['seconds']:>8.3f} "
            f"{run['events_per_s']:>10,.0f} {run['publisher_events_per_s']:>15,.0f}"
        )
    print(
        f"median events/s: raw {median['raw']:,.0f}, qsuite {median['qsuite']:,.0f}; "
        f"ratio qsuite/raw {ratio:.2f} (target >= 0.5)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode (median reported)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per run")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--publisher", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--hwm", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logger.disable("engine")  # keep the table clean
    if args.publisher:
        run_publisher(args.publisher, args.endpoint, args.events, args.hwm)
        return 0
    hwm = args.events + 10_000
    runs = [
        run_once(mode, args.events, hwm, args.timeout) for _ in range(args.repeat) for mode in MODES
    ]
    median = {
        mode: statistics.median(run["events_per_s"] for run in runs if run["mode"] == mode)
        for mode in MODES
    }
    ratio = median["qsuite"] / median["raw"] if median["raw"] else 0.0
    result = {
        "events": args.events,
        "repeat": args.repeat,
        "arrangement": ARRANGEMENT,
        "cpus": os.cpu_count(),
        "raw_events_per_s": median["raw"],
        "qsuite_events_per_s": median["qsuite"],
        "ratio": ratio,
        "runs": runs,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_table(result, runs, median, ratio)
    return 1 if any(run["lost"] for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())

"""Round-trip latency of the control plane against raw pyzmq REQ/REP.

Arrangement (the same for every side): each server runs in its own child process (this
script with ``--serve``), bound to a random loopback TCP port; the clients run in this
process and send one request at a time, each round trip timed with ``perf_counter_ns``.

``raw``     a REQ socket sends a tiny msgspec-encoded struct; a REP socket in a blocking
            ``recv`` loop decodes it and answers with another tiny struct, which the
            client decodes.
``router``  the floor of any Python ROUTER server: REQ → a ROUTER loop that reads the
            envelope frames and sends back a pre-encoded ``Reply`` (no decoding, no
            journal). Shown to split the overhead into framing and QSuite's own work.
``qsuite``  ``ControlClient.request(Ping())`` (a fresh ``command_id`` each time) against
            ``ControlServer.serve`` with an in-memory journal and a Ping → Pong handler.

``--interleave request`` (default) alternates sides request by request, so the changing
load of a shared machine hits every side alike and every server wakes from idle, as a
control server does; ``--interleave block`` runs blocks of 1,000 requests per side
(warm, back-to-back servers). Targets: qsuite p50 ≤ 1.5 x raw p50, p99 ≤ 2 x raw p99.

    .venv/bin/python scripts/bench_control.py [-n 20000] [--interleave block] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import zmq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a plain script from anywhere

from engine.bus.codec import encode  # noqa: E402
from engine.bus.commands import Ping, Pong, Reply  # noqa: E402
from engine.bus.control import ControlClient, ControlServer  # noqa: E402
from engine.bus.journal import CommandJournal  # noqa: E402
from engine.errors import EngineUnreachable  # noqa: E402

SIDES = ("raw", "router", "qsuite")
TARGET_P50, TARGET_P99 = 1.5, 2.0
BLOCK = 1000
TIMEOUT_MS = 5000


class Echo(msgspec.Struct, frozen=True):
    seq: int
    body: str = "ping"


_decode_echo = msgspec.msgpack.Decoder(Echo).decode
PONG = Pong(process="bench", pid=os.getpid(), version="bench", uptime_s=0.0)


# --- servers (child processes) -------------------------------------------------------


def serve(kind: str) -> None:
    ctx: zmq.Context[Any] = zmq.Context()
    if kind == "qsuite":
        server = ControlServer(
            ctx, "tcp://127.0.0.1:*", "bench", journal=CommandJournal(None), max_message_bytes=65536
        )
        server.register(Ping, lambda _command: PONG)
        print(f"READY {server.endpoint}", flush=True)
        server.serve(threading.Event())
        return
    sock = ctx.socket(zmq.REP if kind == "raw" else zmq.ROUTER)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    print(f"READY tcp://127.0.0.1:{port}", flush=True)
    if kind == "raw":
        while True:
            request = _decode_echo(sock.recv())
            sock.send(encode(Echo(seq=request.seq, body="pong")))
    fixed = encode(Reply(command_id="", ok=True, process="bench", result=PONG))
    while True:
        frames = sock.recv_multipart()
        sock.send(frames[0], zmq.SNDMORE)
        sock.send(b"", zmq.SNDMORE)
        sock.send(fixed)


def start(kind: str) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline().decode() if ready else ""
    if not line.startswith("READY "):
        stop(proc)
        raise RuntimeError(f"the {kind} server did not start")
    return proc, line.split()[1]


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    if proc.stdout is not None:
        proc.stdout.close()


# --- clients -------------------------------------------------------------------------


def req_socket(ctx: zmq.Context[Any], endpoint: str) -> zmq.Socket[bytes]:
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
    sock.setsockopt(zmq.SNDTIMEO, TIMEOUT_MS)
    sock.connect(endpoint)
    return sock


def raw_round_trip(sock: zmq.Socket[bytes]) -> Callable[[], None]:
    def one() -> None:
        sock.send(encode(Echo(seq=1)))
        _decode_echo(sock.recv())

    return one


def router_round_trip(sock: zmq.Socket[bytes]) -> Callable[[], None]:
    payload = encode(Ping(command_id="floor"))

    def one() -> None:
        sock.send(payload)
        sock.recv()

    return one


def qsuite_round_trip(client: ControlClient) -> Callable[[], None]:
    def one() -> None:
        if not client.request(Ping()).ok:
            raise RuntimeError("the qsuite server refused a Ping")

    return one


def percentile(sorted_ns: list[int], q: float) -> float:
    index = min(len(sorted_ns) - 1, max(0, math.ceil(q * len(sorted_ns)) - 1))
    return sorted_ns[index] / 1000  # µs


def summary(samples: list[int]) -> dict[str, float]:
    data = sorted(samples)
    return {
        "n": len(data),
        "p50_us": percentile(data, 0.50),
        "p99_us": percentile(data, 0.99),
        "mean_us": sum(data) / len(data) / 1000,
    }


def measure(trips: dict[str, Callable[[], None]], count: int, block: int, max_s: float) -> Any:
    samples: dict[str, list[int]] = {name: [] for name in trips}
    clock = time.perf_counter_ns
    deadline = time.monotonic() + max_s
    done = 0
    while done < count and time.monotonic() < deadline:
        for _ in range(max(1, BLOCK // block)):  # check the deadline every ~BLOCK requests
            n = min(block, count - done)
            for name, one in trips.items():
                out = samples[name]
                for _ in range(n):
                    started = clock()
                    one()
                    out.append(clock() - started)
            done += n
            if done >= count:
                break
    return samples


def bench(count: int, warmup: int, interleave: str, max_seconds: float) -> dict[str, Any]:
    ctx: zmq.Context[Any] = zmq.Context()
    procs: list[subprocess.Popen[bytes]] = []
    socks: list[zmq.Socket[bytes]] = []
    client: ControlClient | None = None
    try:
        endpoints = {}
        for kind in SIDES:
            proc, endpoints[kind] = start(kind)
            procs.append(proc)
        socks = [req_socket(ctx, endpoints["raw"]), req_socket(ctx, endpoints["router"])]
        client = ControlClient(endpoints["qsuite"], timeout_ms=TIMEOUT_MS, retries=1, ctx=ctx)
        trips = {
            "raw": raw_round_trip(socks[0]),
            "router": router_round_trip(socks[1]),
            "qsuite": qsuite_round_trip(client),
        }
        measure(trips, warmup, BLOCK, max_seconds)
        samples = measure(trips, count, 1 if interleave == "request" else BLOCK, max_seconds)
    finally:
        for sock in socks:
            sock.close(linger=0)
        if client is not None:
            client.close()
        for proc in procs:
            stop(proc)
        ctx.term()
    figures = {name: summary(samples[name]) for name in SIDES}
    p50_ratio = figures["qsuite"]["p50_us"] / figures["raw"]["p50_us"]
    p99_ratio = figures["qsuite"]["p99_us"] / figures["raw"]["p99_us"]
    return {
        "arrangement": "servers in child processes, clients in this one, tcp loopback",
        "interleave": interleave,
        "requests": len(samples["raw"]),
        **figures,
        "ratio_p50": p50_ratio,
        "ratio_p99": p99_ratio,
        "targets": {"ratio_p50": TARGET_P50, "ratio_p99": TARGET_P99},
        "targets_met": p50_ratio <= TARGET_P50 and p99_ratio <= TARGET_P99,
    }


def report(result: dict[str, Any]) -> str:
    lines = [
        f"{result['requests']} round trips per side, interleaved by {result['interleave']}; "
        f"{result['arrangement']}",
        f"{'':8}{'p50 µs':>10}{'p99 µs':>10}{'mean µs':>10}",
    ]
    for name in SIDES:
        s = result[name]
        lines.append(f"{name:8}{s['p50_us']:>10.1f}{s['p99_us']:>10.1f}{s['mean_us']:>10.1f}")
    lines.append(
        f"qsuite/raw: p50 {result['ratio_p50']:.2f}x (target ≤ {TARGET_P50}x), "
        f"p99 {result['ratio_p99']:.2f}x (target ≤ {TARGET_P99}x): "
        f"{'met' if result['targets_met'] else 'MISSED'}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Control-plane round-trip benchmark.")
    parser.add_argument("-n", "--requests", type=int, default=20_000, help="round trips per side")
    parser.add_argument("--warmup", type=int, default=1_000, help="untimed round trips first")
    parser.add_argument("--interleave", choices=("request", "block"), default="request")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="stop measuring after")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--serve", choices=SIDES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    try:
        result = bench(args.requests, args.warmup, args.interleave, args.max_seconds)
    except (EngineUnreachable, zmq.Again) as exc:
        print(f"Cannot benchmark: a server stopped answering ({exc})", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Venue round trip over ZeroMQ: an order in, its first execution report out.

Arrangement: the real venue process (``qsuite engine venue``, SQLite in a temp dir, ipc
endpoints, no feed: the book holds only the bench's own orders) and, as the baseline,
a minimal Python ROUTER in a child process that decodes each ``NewOrder`` and answers
with a pre-built ``SessionReport(OrderAccepted)`` — the floor of any Python gateway on
this protocol. One DEALER client per side sends one order at a time and times it with
``perf_counter_ns``; the sides alternate order by order so machine noise hits both.

The venue's own work per order: decode and validate, match in the book, store the
reports in one transaction (write-ahead: SQLite commit), send the report to the
session, publish on the bus. Orders alternate ``rest`` (a limit far from the market:
report = OrderAccepted) and ``cross`` (a pair that trades: OrderAccepted first, the fill
right after it).

    .venv/bin/python scripts/bench_venue.py [-n 2000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import zmq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_control import stop, summary  # noqa: E402

from engine.bus.events import OrderAccepted  # noqa: E402
from engine.venue.protocol import (  # noqa: E402
    ENCODER,
    REPORT_DECODER,
    REQUEST_DECODER,
    LoggedOn,
    Logon,
    NewOrder,
    SessionReport,
)

TIMEOUT_MS = 10_000


def serve_floor() -> None:
    ctx: zmq.Context[Any] = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    print(f"READY tcp://127.0.0.1:{port}", flush=True)
    seq = 0
    while True:
        peer, frame = sock.recv_multipart()
        request = REQUEST_DECODER.decode(frame)
        seq += 1
        body: Any = LoggedOn(session="bench", venue="FLOOR")
        if isinstance(request, NewOrder):
            body = OrderAccepted(
                ts_event=0,
                venue="FLOOR",
                account=request.account,
                client_order_id=request.client_order_id,
                venue_order_id="v",
                symbol=request.symbol,
                side=request.side,
                order_type=request.order_type,
                tif=request.tif,
                qty=request.qty,
                price=request.price,
            )
        report = SessionReport(session="bench", venue_epoch="floor", seq=seq, body=body)
        sock.send_multipart([peer, ENCODER.encode(report)])


def start_venue(tmp: Path) -> subprocess.Popen[bytes]:
    config = tmp / "bench.toml"
    config.write_text(
        f'[app]\ndata_dir = "{tmp}"\n'
        f'[bus]\nxsub = "ipc://{tmp}/xsub"\nxpub = "ipc://{tmp}/xpub"\n'
        f'[venue]\norder_entry = "ipc://{tmp}/orders"\n'
        f'[processes.venue]\ncontrol = "ipc://{tmp}/venue"\nmetrics_port = 0\n'
        '[metrics]\nenabled = false\n[log]\nlevel = "WARNING"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("QSUITE")}
    return subprocess.Popen(
        [sys.executable, "-m", "app", "--config", str(config), "engine", "venue"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


class Side:
    def __init__(self, ctx: zmq.Context[Any], endpoint: str) -> None:
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.rcvtimeo = TIMEOUT_MS
        self.sock.connect(endpoint)
        self.n = 0

    def logon(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.sock.send(ENCODER.encode(Logon(session="bench")))
            if self.sock.poll(500) and isinstance(
                REPORT_DECODER.decode(self.sock.recv()).body, LoggedOn
            ):
                return
        raise RuntimeError("no logon answer")

    def order(self, side: str, price: str) -> int:
        """Send one order; ns until its first report arrives (later ones are drained)."""
        self.n += 1
        request = NewOrder(
            account="bench",
            client_order_id=f"b{self.n}",
            symbol="BENCH",
            side=side,  # type: ignore[arg-type]
            qty=Decimal(1),
            price=Decimal(price),
        )
        started = time.perf_counter_ns()
        self.sock.send(ENCODER.encode(request))
        self.sock.recv()
        elapsed = time.perf_counter_ns() - started
        while self.sock.poll(0):
            self.sock.recv()
        return elapsed


def bench(count: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="qsb", dir="/tmp"))
    ctx: zmq.Context[Any] = zmq.Context()
    floor_proc, floor_endpoint = _start_floor()
    venue = start_venue(tmp)
    try:
        sides = {"floor": Side(ctx, floor_endpoint), "venue": Side(ctx, f"ipc://{tmp}/orders")}
        for side in sides.values():
            side.logon()
        samples: dict[str, dict[str, list[int]]] = {
            name: {"rest": [], "cross": []} for name in sides
        }
        for i in range(count):
            for name, side in sides.items():
                samples[name]["rest"].append(side.order("buy", "10.00"))  # far below
                side.order("sell", "50.00")  # rests above: the next buy takes it
                samples[name]["cross"].append(side.order("buy", "50.00"))
            if i == 0:
                for per in samples.values():
                    per["rest"].clear()
                    per["cross"].clear()
        out: dict[str, Any] = {
            name: {kind: summary(v) for kind, v in per.items()} for name, per in samples.items()
        }
        for kind in ("rest", "cross"):
            out[f"{kind}_p50_ratio"] = out["venue"][kind]["p50_us"] / out["floor"][kind]["p50_us"]
            out[f"{kind}_p99_ratio"] = out["venue"][kind]["p99_us"] / out["floor"][kind]["p99_us"]
        return out
    finally:
        for side in locals().get("sides", {}).values():
            side.sock.close(linger=0)
        stop(floor_proc)
        venue.terminate()
        try:
            venue.wait(10)
        except subprocess.TimeoutExpired:
            venue.kill()
            venue.wait(5)
        ctx.term()
        shutil.rmtree(tmp, ignore_errors=True)


def _start_floor() -> tuple[subprocess.Popen[bytes], str]:
    import select

    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-floor"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline().decode() if ready else ""
    if not line.startswith("READY "):
        stop(proc)
        raise RuntimeError("the floor server did not start")
    return proc, line.split()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="rounds (each: rest, rest, cross)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve-floor", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_floor:
        serve_floor()
        return
    result = bench(args.n)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for kind in ("rest", "cross"):
        v, f = result["venue"][kind], result["floor"][kind]
        print(
            f"{kind:5}  venue p50 {v['p50_us']:8.1f} us  p99 {v['p99_us']:8.1f} us | "
            f"floor p50 {f['p50_us']:6.1f} us  p99 {f['p99_us']:7.1f} us | "
            f"ratio p50 {result[kind + '_p50_ratio']:.1f}x  p99 {result[kind + '_p99_ratio']:.1f}x"
        )


if __name__ == "__main__":
    main()

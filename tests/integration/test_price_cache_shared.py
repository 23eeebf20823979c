"""The price cache shared by real processes: a writer process stores quotes and exits,
this process reads them; two writer processes racing never make the cache go back."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from engine.stats import StatsRegistry
from feeds.cache import PriceCache

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

NS = 1_000_000_000
T0 = 1_700_000_000 * NS
SYMBOLS = ["AAPL", "MSFT", "VOD.L", "SHOP.TO"]

# A writer process: waits for "go" on stdin, then puts quotes of SYMBOLS with the given
# timestamps (argv: directory, mode, seed, t0, symbols, then ts offsets from t0), one
# transaction each, the symbols in a random order.
WRITER = """
import random, sys
from pathlib import Path
from feeds.cache import PriceCache
from feeds.schema import Quote

directory, mode, seed, t0, symbols, *offsets = sys.argv[1:]
symbols = symbols.split(",")
rng = random.Random(int(seed))
cache = PriceCache(Path(directory), size_limit=None)
print("ready", flush=True)
sys.stdin.readline()
for offset in offsets:
    for symbol in rng.sample(symbols, len(symbols)):
        ts = int(t0) + int(offset)
        price = 100.0 + int(offset) / 100
        cache.put_quote(
            Quote(symbol=symbol, ts=ts, bid=price - 0.01, ask=price + 0.01, last=price,
                  origin="yahoo"),
            mode=mode,
        )
cache.close()
print("done", flush=True)
"""


@contextmanager
def writer(
    directory: Path, mode: str, seed: int, offsets: list[int]
) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(directory), mode, str(seed), str(T0), ",".join(SYMBOLS)]
        + [str(offset) for offset in offsets],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def go(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


def finish(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "done"
    assert proc.wait(timeout=20) == 0


def test_cache_when_writer_process_exited_then_reader_sees_its_quotes(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    # the reader opens first, as the console does before the feed starts
    with PriceCache(directory, size_limit=None, stats=StatsRegistry()) as reader:
        assert reader.snapshot() == {}
        with writer(directory, "live", 1, [1, 2, 3]) as proc:
            go(proc)
            finish(proc)

        snapshot = reader.snapshot()
        now = time.time_ns()

    assert set(snapshot) == set(SYMBOLS)
    for symbol, entry in snapshot.items():
        assert entry.quote.symbol == symbol and entry.quote.ts == T0 + 3
        assert entry.mode == "live"
        assert 0 <= entry.age_s(now) < 30


def test_cache_when_opened_after_writer_exited_then_data_is_there(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    with writer(directory, "simulated", 2, [5]) as proc:
        go(proc)
        finish(proc)

    with PriceCache(directory, size_limit=None, stats=StatsRegistry()) as reader:
        quotes = reader.quotes(SYMBOLS)
        entry = reader.quote_entry("AAPL")

    assert {q.ts for q in quotes.values()} == {T0 + 5}
    assert entry is not None and entry.mode == "simulated"


def test_cache_when_two_writers_race_then_never_regresses(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    n = 150
    # one writer goes forward in time, the other backwards over the same range: without
    # the compare-and-set the backward one would keep dragging the cache into the past
    forward = list(range(0, 2 * n, 2))
    backward = list(range(2 * n - 1, 0, -2))
    seen: dict[str, int] = {}
    regressions: list[str] = []
    with (
        PriceCache(directory, size_limit=None, stats=StatsRegistry()) as reader,
        writer(directory, "live", 3, forward) as first,
        writer(directory, "cached", 4, backward) as second,
    ):
        go(first)
        go(second)
        while first.poll() is None or second.poll() is None:
            for symbol, entry in reader.snapshot().items():
                if entry.quote.ts < seen.get(symbol, 0):
                    regressions.append(f"{symbol}: {entry.quote.ts} after {seen[symbol]}")
                seen[symbol] = entry.quote.ts
        assert first.returncode == 0 and second.returncode == 0
        final = reader.snapshot()

    assert regressions == []
    assert {symbol: entry.quote.ts for symbol, entry in final.items()} == dict.fromkeys(
        SYMBOLS, T0 + 2 * n - 1
    )
    assert {entry.mode for entry in final.values()} == {"cached"}

"""Gaps found in ingested bars, queued for repair by a backfill (shared by processes).

A gap is ``(symbol, interval, start, end)``: the first missing bar time and the time of
the next bar present (UTC ns). The queue is a diskcache ``Index`` in the data dir, so
the feed and the CLI add to it and the scheduler's repair job takes from it; the same
gap found twice is queued once. A gap the source cannot fill (a holiday, a halt) comes
back empty from the repair and is not queued again until it is detected again.
"""

from __future__ import annotations

from pathlib import Path

import diskcache
import msgspec


class Gap(msgspec.Struct, frozen=True):
    symbol: str
    interval: str
    start: int
    end: int
    missing: int


class GapQueue:
    def __init__(self, directory: Path) -> None:
        self._index = diskcache.Index(str(directory))

    def put(self, symbol: str, interval: str, start: int, end: int, missing: int) -> bool:
        """Queue a gap; returns False when it is already queued."""
        key = f"{symbol}|{interval}|{start}"
        value = msgspec.msgpack.encode(Gap(symbol, interval, start, end, missing))
        with self._index.transact():
            if key in self._index:
                return False
            self._index[key] = value
        return True

    def take(self, limit: int) -> list[Gap]:
        """Remove and return up to ``limit`` gaps, oldest queued first."""
        taken: list[Gap] = []
        decode = msgspec.msgpack.Decoder(Gap).decode
        while len(taken) < limit:
            try:
                _key, value = self._index.popitem(last=False)
            except KeyError:
                break
            taken.append(decode(value))
        return taken

    def peek(self) -> list[Gap]:
        decode = msgspec.msgpack.Decoder(Gap).decode
        return [decode(v) for v in self._index.values()]

    def __len__(self) -> int:
        return len(self._index)

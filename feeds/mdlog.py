"""The append-only market-data log: every bar and quote as an event, replayable.

Market data is event-sourced: the bar store is a projection of this log, and
:func:`rebuild_bars` recomputes it from the log.

Writers and files
-----------------
Each writing process (the feed, the scheduler, a CLI backfill) owns a
:class:`MarketDataLog` that writes only its own segment files::

    <directory>/<writer>-<YYYYMMDD>-<token>-<part>.mdlog

``<YYYYMMDD>`` is the UTC date the segment was started, ``<token>`` 12 random hex
digits per log instance (a *session*) and ``<part>`` a 6-digit counter within the
session. Files are created exclusively (``O_EXCL``), so two writers never share a file.
A new part starts when a segment would grow beyond ``segment_bytes`` (a single batch is
never split, so a segment exceeds it by at most one batch) and when the UTC date
changes.

Framing
-------
A segment starts with the 8-byte magic ``b"QSMDLOG\\x01"``; then records::

    length  uint32 big-endian   bytes of the payload (1 … MAX_RECORD)
    crc     uint32 big-endian   zlib.crc32 of the payload
    payload                     engine.bus.codec.encode(event): the bus's bytes

Append the event :meth:`engine.bus.publisher.Publisher.publish` returned, so the log
holds exactly what the bus carried. An event that was never published (``ts_init`` 0,
e.g. a CLI backfill) is stamped here: ``ts_init`` from the log's clock, and an empty
``event_id``/``source`` become ``<writer>:<token>:<n>``/``<writer>``.

Durability
----------
Each batch (:meth:`MarketDataLog.append_many`, or one :meth:`~MarketDataLog.append`) is
one ``write(2)`` to an unbuffered file, so after a *process* crash every appended batch
is in the OS and readable. ``fsync`` runs when a batch finds the last one older than
``fsync_interval_s`` (0: after every batch), when a segment is finished, and on
:meth:`~MarketDataLog.close`; a *machine* crash may lose up to that interval. A crash in
the middle of a write leaves a torn last record; readers detect it by its length or CRC.

Reading
-------
:func:`read_all` yields the events of every segment in one deterministic order: each
session's records in append order (its parts in sequence), and the sessions merged by
``(ts_init, event_id)`` of their next record (ties by writer and token). Why this order
reproduces the store: the store keeps, for each ``(symbol, interval, ts)``, the last
write. A writer appends an event and writes its bar in the same order as it appends, so
within a session append order *is* write order; between writers, ``ts_init`` is when
the event was stamped, moments before it was written, so the merge puts a later
correction from another process after the bar it corrects. (Two processes writing
different values of the same bar within their clocks' skew of each other remain
ambiguous; QSuite's writers do not do that.)

Records that cannot be read are counted in
``qsuite_mdlog_corrupt_records_total{reason}`` and skipped, never raised: ``torn`` (a
last record cut short, or a zero-filled tail), ``checksum`` (bad length or CRC; reading
resumes at the next valid record), ``decode`` (an intact frame that is not a known
event, e.g. from a newer release) and ``header`` (not a log segment). A segment still
being written may show a ``torn`` tail to a concurrent reader.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import re
import secrets
import struct
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, NamedTuple

import msgspec
from loguru import logger
from sqlalchemy import Connection, Engine

from engine.bus import codec
from engine.bus.events import BarClosed, Event, QuoteUpdated, TradeReported
from engine.clock import Clock, LiveClock
from engine.persistence.bars import upsert_bars
from engine.stats import STATS, StatsRegistry

MAGIC: Final = b"QSMDLOG\x01"
MAX_RECORD: Final = 1 << 20
"""Largest payload a record may have, in bytes; longer lengths mean corruption."""
SUFFIX: Final = ".mdlog"
DEFAULT_SEGMENT_BYTES: Final = 64 * 1024 * 1024
DEFAULT_FSYNC_INTERVAL_S: Final = 1.0
REBUILD_BATCH: Final = 50_000

MarketDataEvent = BarClosed | QuoteUpdated | TradeReported
_MD_TYPES: Final = frozenset((BarClosed, QuoteUpdated, TradeReported))
_replace = msgspec.structs.replace
_HEADER: Final = struct.Struct(">II")
_DAY_NS: Final = 86_400 * 1_000_000_000
_WRITER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_SEGMENT = re.compile(
    r"(?P<writer>[A-Za-z0-9_][A-Za-z0-9_.-]*)-(?P<date>\d{8})-"
    r"(?P<token>[0-9a-f]{12})-(?P<part>\d{6})\.mdlog"
)


class Segment(NamedTuple):
    """A segment file and what its name says."""

    path: Path
    writer: str
    date: str
    token: str
    part: int


@dataclass(slots=True)
class ReadCounts:
    """What a read found; pass one to :func:`read_all` to get the figures of that read."""

    segments: int = 0
    records: int = 0
    torn: int = 0
    checksum: int = 0
    decode: int = 0
    header: int = 0

    @property
    def corrupt(self) -> int:
        return self.torn + self.checksum + self.decode + self.header


class MarketDataLog:
    """The writing side of the log for one process; thread-safe.

    :param directory: the log directory, shared by every writer (created if missing).
    :param writer: this writer's name (``feed``, ``scheduler``, ``backfill`` …): letters,
        digits, ``_``, ``.`` and ``-``.
    :param segment_bytes: size after which a new segment starts.
    :param fsync_interval_s: most seconds between fsyncs (0: fsync every batch).
    :param clock: injected time (segment dates, stamping, fsync interval).
    :param stats: the registry of this process's metrics.
    """

    def __init__(
        self,
        directory: Path,
        writer: str,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        fsync_interval_s: float = DEFAULT_FSYNC_INTERVAL_S,
        clock: Clock | None = None,
        stats: StatsRegistry = STATS,
    ) -> None:
        if not _WRITER.fullmatch(writer):
            raise ValueError(f"writer {writer!r}: use letters, digits, '_', '.' and '-'")
        if segment_bytes <= len(MAGIC):
            raise ValueError("segment_bytes is too small")
        if fsync_interval_s < 0:
            raise ValueError("fsync_interval_s must not be negative")
        self.directory = Path(directory)
        self.writer = writer
        self.token = secrets.token_hex(6)
        self.segment_bytes = segment_bytes
        self.fsync_interval_s = fsync_interval_s
        self._clock: Clock = clock if clock is not None else LiveClock()
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._size = 0
        self._part = 0
        self._day_ends_ns = 0
        self._count = 0
        self._last_sync = self._clock.monotonic()
        self._closed = False
        self._appended = stats.counter(
            "qsuite_mdlog_appended_total", "Events appended to the market-data log", writer=writer
        )
        self._segments = stats.counter(
            "qsuite_mdlog_segments_total", "Market-data log segments started", writer=writer
        )
        self.directory.mkdir(parents=True, exist_ok=True)

    @property
    def path(self) -> Path | None:
        """The segment being written (``None`` before the first append)."""
        return self._path

    def append(self, event: MarketDataEvent) -> None:
        """Append one event as a batch of one."""
        self.append_many((event,))

    def append_many(self, events: Iterable[MarketDataEvent]) -> int:
        """Append ``events`` as one batch (one write); returns how many."""
        now_ns = self._clock.time_ns()
        frames: list[bytes] = []
        with self._lock:
            if self._closed:
                raise RuntimeError(f"market-data log {self.writer} is closed")
            prefix = f"{self.writer}:{self.token}:"
            encode, pack, crc32, append = codec.encode, _HEADER.pack, zlib.crc32, frames.append
            for event in events:
                if type(event) not in _MD_TYPES:
                    raise TypeError(f"not a market-data event: {type(event).__name__}")
                if not event.ts_init or not event.event_id:
                    self._count += 1
                    event = _replace(
                        event,
                        ts_init=event.ts_init or now_ns,
                        event_id=event.event_id or f"{prefix}{self._count}",
                        source=event.source or self.writer,
                    )
                payload = encode(event)
                append(pack(len(payload), crc32(payload)))
                append(payload)
            if not frames:
                return 0
            self._write(b"".join(frames), now_ns)
        self._appended.inc(len(frames) // 2)
        return len(frames) // 2

    def sync(self) -> None:
        """fsync the current segment now."""
        with self._lock:
            if self._file is not None:
                os.fsync(self._file.fileno())
                self._last_sync = self._clock.monotonic()

    def close(self) -> None:
        """fsync and close the current segment. Idempotent."""
        with self._lock:
            self._finish_segment()
            self._closed = True

    def __enter__(self) -> MarketDataLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write(self, data: bytes, now_ns: int) -> None:
        if (
            self._file is None
            or now_ns >= self._day_ends_ns
            or (self._size > len(MAGIC) and self._size + len(data) > self.segment_bytes)
        ):
            self._start_segment(now_ns)
        assert self._file is not None
        view = memoryview(data)
        try:
            while view:
                written = self._file.write(view)
                view = view[written or 0 :]
        except OSError:
            # e.g. disk full: whatever part of the batch reached the file stays its torn
            # tail; the next batch starts a new segment
            self._abandon_segment()
            raise
        self._size += len(data)
        now = self._clock.monotonic()
        if now - self._last_sync >= self.fsync_interval_s:
            os.fsync(self._file.fileno())
            self._last_sync = now

    def _start_segment(self, now_ns: int) -> None:
        self._finish_segment()
        day = datetime.fromtimestamp(now_ns // 1_000_000_000, UTC).date()
        self._day_ends_ns = (now_ns // _DAY_NS + 1) * _DAY_NS  # Unix days are 86,400 s
        self._part += 1
        name = f"{self.writer}-{day:%Y%m%d}-{self.token}-{self._part:06d}{SUFFIX}"
        path = self.directory / name
        file = open(path, "xb", buffering=0)  # noqa: SIM115  (kept open across calls)
        file.write(MAGIC)
        os.fsync(file.fileno())
        _fsync_directory(self.directory)
        self._file, self._path, self._size = file, path, len(MAGIC)
        self._last_sync = self._clock.monotonic()
        self._segments.inc()

    def _finish_segment(self) -> None:
        if self._file is None:
            return
        try:
            os.fsync(self._file.fileno())
        finally:
            self._file.close()
            self._file = None

    def _abandon_segment(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- reading ---------------------------------------------------------------------------


def segments(directory: Path) -> list[Segment]:
    """The segment files in ``directory``, by writer, session and part; other files are
    ignored."""
    found: list[Segment] = []
    for path in Path(directory).glob(f"*{SUFFIX}"):
        match = _SEGMENT.fullmatch(path.name)
        if match is None:
            logger.bind(component="mdlog").warning("Ignoring a foreign file {}", path)
            continue
        writer, date, token, part = match.group("writer", "date", "token", "part")
        found.append(Segment(path, writer, date, token, int(part)))
    return sorted(found, key=lambda s: (s.writer, s.token, s.part))


def read_segment(
    path: Path, *, counts: ReadCounts | None = None, stats: StatsRegistry = STATS
) -> Iterator[Event]:
    """The events of one segment file in append order; bad records are counted and
    skipped (see the module docstring)."""
    counts = counts if counts is not None else ReadCounts()
    counter = _Corruption(path, counts, stats)
    data = Path(path).read_bytes()
    counts.segments += 1
    if not data.startswith(MAGIC):
        if data and not MAGIC.startswith(data):
            counter.add("header", 0)
        elif data:
            counter.add("torn", 0)
        return
    pos, end = len(MAGIC), len(data)
    decode = codec.decode_event
    unpack = _HEADER.unpack_from
    while pos < end:
        if end - pos >= _HEADER.size:
            length, crc = unpack(data, pos)
            stop = pos + _HEADER.size + length
            if 0 < length <= MAX_RECORD and stop <= end:
                payload = data[pos + _HEADER.size : stop]
                if zlib.crc32(payload) == crc:
                    try:
                        event = decode(payload)
                    except codec.DecodeError:
                        counter.add("decode", pos)
                    else:
                        counts.records += 1
                        yield event
                    pos = stop
                    continue
        # A bad frame: the next valid record (if any) tells a corrupt one from a torn tail.
        resume = _next_valid_record(data, pos + 1)
        if resume is None:
            counter.add("torn", pos)
            return
        counter.add("checksum", pos)
        pos = resume


def read_all(
    directory: Path, *, counts: ReadCounts | None = None, stats: StatsRegistry = STATS
) -> Iterator[Event]:
    """Every event of every segment in ``directory``, in the order described in the
    module docstring (deterministic for the same files)."""
    counts = counts if counts is not None else ReadCounts()
    sessions: dict[tuple[str, str], list[Path]] = {}
    for segment in segments(directory):
        sessions.setdefault((segment.writer, segment.token), []).append(segment.path)
    streams = [
        itertools.chain.from_iterable(
            read_segment(path, counts=counts, stats=stats) for path in paths
        )
        for _, paths in sorted(sessions.items())
    ]
    # heapq.merge only compares the heads of the streams, so each session keeps its
    # append order even where its ts_init went backwards; equal keys keep stream order.
    return heapq.merge(*streams, key=_order)


def _order(event: Event) -> tuple[int, str]:
    return (event.ts_init, event.event_id)


def bar_row(event: BarClosed) -> tuple[Any, ...]:
    """The bar-store row of ``event`` (:data:`engine.persistence.bars.BAR_COLUMNS`):
    ``source`` is the event's ``origin`` and ``flags`` its ``flags``, as written."""
    return (
        event.symbol,
        event.interval,
        event.ts,
        event.open,
        event.high,
        event.low,
        event.close,
        event.volume,
        event.origin,
        event.flags,
    )


def rebuild_bars(
    directory: Path,
    target: Engine | Connection,
    *,
    batch_size: int = REBUILD_BATCH,
    counts: ReadCounts | None = None,
    stats: StatsRegistry = STATS,
) -> int:
    """Replay every :class:`BarClosed` of the log into the bar store through
    :func:`~engine.persistence.bars.upsert_bars`, in :func:`read_all` order and in
    batches of ``batch_size`` (each its own transaction when ``target`` is an engine).

    Idempotent: replaying again writes nothing. On an empty bars table the result equals
    the store the log was written alongside. Returns the bars inserted or changed.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    written = 0
    batch: list[tuple[Any, ...]] = []
    for event in read_all(directory, counts=counts, stats=stats):
        if type(event) is BarClosed:
            batch.append(bar_row(event))
            if len(batch) >= batch_size:
                written += upsert_bars(target, batch)
                batch = []
    if batch:
        written += upsert_bars(target, batch)
    return written


class _Corruption:
    def __init__(self, path: Path, counts: ReadCounts, stats: StatsRegistry) -> None:
        self.path, self.counts, self.stats = path, counts, stats

    def add(self, reason: str, offset: int) -> None:
        setattr(self.counts, reason, getattr(self.counts, reason) + 1)
        self.stats.counter(
            "qsuite_mdlog_corrupt_records_total",
            "Market-data log records skipped because they could not be read",
            reason=reason,
        ).inc()
        logger.bind(component="mdlog").warning(
            "Cannot read a market-data log record ({}) in {} at byte {}; skipped",
            reason,
            self.path,
            offset,
        )


def _next_valid_record(data: bytes, start: int) -> int | None:
    """Offset of the first intact frame (sane length, matching CRC) at or after ``start``."""
    end = len(data)
    unpack = _HEADER.unpack_from
    for pos in range(start, end - _HEADER.size):
        length, crc = unpack(data, pos)
        stop = pos + _HEADER.size + length
        if (
            0 < length <= MAX_RECORD
            and stop <= end
            and zlib.crc32(data[pos + _HEADER.size : stop]) == crc
        ):
            return pos
    return None


__all__ = [
    "DEFAULT_FSYNC_INTERVAL_S",
    "DEFAULT_SEGMENT_BYTES",
    "MAGIC",
    "MAX_RECORD",
    "MarketDataEvent",
    "MarketDataLog",
    "ReadCounts",
    "Segment",
    "bar_row",
    "read_all",
    "read_segment",
    "rebuild_bars",
    "segments",
]

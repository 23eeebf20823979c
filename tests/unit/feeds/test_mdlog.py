"""The market-data log: framing, stamping, rotation, fsync policy, corruption handling
and the merge order of several writers."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import Any

import msgspec
import pytest

from engine.bus import codec
from engine.bus.events import BarClosed, Heartbeat, QuoteUpdated
from engine.clock import FakeClock
from engine.stats import StatsRegistry
from feeds import mdlog
from feeds.mdlog import (
    MAGIC,
    MarketDataLog,
    ReadCounts,
    bar_row,
    read_all,
    read_segment,
    rebuild_bars,
    segments,
)

NS = 1_000_000_000
T0 = 1_700_000_000 * NS  # 2023-11-14 22:13:20 UTC


def bar(i: int, close: float = 100.0, **header: Any) -> BarClosed:
    return BarClosed(
        ts_event=T0 + (i + 1) * 60 * NS,
        symbol="AAPL",
        interval="1m",
        ts=T0 + i * 60 * NS,
        open=close,
        high=close + 1,
        low=close - 1,
        close=close,
        volume=1000.0 + i,
        origin="yahoo",
        **header,
    )


def quote(i: int) -> QuoteUpdated:
    return QuoteUpdated(
        ts_event=T0 + i,
        symbol="MSFT",
        bid=1.0,
        ask=1.1,
        bid_size=1.0,
        ask_size=2.0,
        last=1.05,
        origin="yahoo",
    )


def open_log(
    tmp_path: Path, clock: FakeClock, writer: str = "feed", **options: Any
) -> MarketDataLog:
    return MarketDataLog(tmp_path / "md", writer, clock=clock, stats=StatsRegistry(), **options)


def only_segment(tmp_path: Path) -> Path:
    [segment] = segments(tmp_path / "md")
    return segment.path


def read(directory: Path, stats: StatsRegistry | None = None) -> tuple[list[Any], ReadCounts]:
    counts = ReadCounts()
    events = list(read_all(directory, counts=counts, stats=stats or StatsRegistry()))
    return events, counts


# -- writing ---------------------------------------------------------------------------


def test_append_when_events_published_then_stored_bytes_are_the_bus_bytes(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    published = [bar(0, event_id="feed:ab:1", source="feed", seq=1, ts_init=T0 + 5)]
    with open_log(tmp_path, clock) as log:
        log.append(published[0])

    data = only_segment(tmp_path).read_bytes()
    payload = codec.encode(published[0])

    assert data == MAGIC + struct.pack(">II", len(payload), zlib.crc32(payload)) + payload


def test_append_when_events_not_stamped_then_log_stamps_them(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    with open_log(tmp_path, clock) as log:
        log.append_many([bar(0), quote(1)])
        clock.advance(1)
        log.append(bar(1))

    events, counts = read(tmp_path / "md")

    assert counts.records == 3 and counts.corrupt == 0
    assert [e.ts_init for e in events] == [T0, T0, T0 + NS]
    assert [e.event_id for e in events] == [f"feed:{log.token}:{n}" for n in (1, 2, 3)]
    assert {e.source for e in events} == {"feed"}
    assert events[1] == msgspec.structs.replace(
        quote(1), ts_init=T0, event_id=f"feed:{log.token}:2", source="feed"
    )


def test_segment_name_when_written_then_writer_utc_date_session_part(tmp_path: Path) -> None:
    with open_log(tmp_path, FakeClock(T0), writer="cli-backfill") as log:
        log.append(bar(0))
        path = log.path

    assert path is not None
    assert path.name == f"cli-backfill-20231114-{log.token}-000001.mdlog"
    [segment] = segments(tmp_path / "md")
    assert (segment.writer, segment.date, segment.part) == ("cli-backfill", "20231114", 1)


@pytest.mark.parametrize("writer", ["", "a/b", "-x", "feed x"])
def test_log_when_writer_name_bad_then_value_error(tmp_path: Path, writer: str) -> None:
    with pytest.raises(ValueError, match="writer"):
        open_log(tmp_path, FakeClock(), writer=writer)


def test_append_when_not_market_data_then_type_error(tmp_path: Path) -> None:
    beat = Heartbeat(ts_event=0, process="feed", pid=1, version="1", started_at=0)
    with open_log(tmp_path, FakeClock()) as log, pytest.raises(TypeError):
        log.append(beat)  # type: ignore[arg-type]


def test_append_when_closed_then_runtime_error(tmp_path: Path) -> None:
    log = open_log(tmp_path, FakeClock())
    log.close()
    log.close()

    with pytest.raises(RuntimeError, match="closed"):
        log.append(bar(0))


def test_append_many_when_empty_then_no_segment(tmp_path: Path) -> None:
    with open_log(tmp_path, FakeClock()) as log:
        assert log.append_many([]) == 0

    assert segments(tmp_path / "md") == []


def test_two_logs_of_one_writer_then_separate_files(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    with open_log(tmp_path, clock) as first, open_log(tmp_path, clock) as second:
        first.append(bar(0))
        second.append(bar(1))

    assert len({s.path for s in segments(tmp_path / "md")}) == 2


def test_rotation_when_segment_full_then_new_part_and_order_kept(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    with open_log(tmp_path, clock, segment_bytes=600) as log:
        for i in range(20):
            log.append(bar(i, ts_init=T0 + i))

    parts = segments(tmp_path / "md")
    events, counts = read(tmp_path / "md")

    assert len(parts) > 3
    assert [s.part for s in parts] == list(range(1, len(parts) + 1))
    assert all(s.path.stat().st_size <= 600 for s in parts)
    assert [e.ts for e in events] == [bar(i).ts for i in range(20)]
    assert counts.segments == len(parts)


def test_rotation_when_utc_date_changes_then_new_segment_dated_that_day(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    with open_log(tmp_path, clock) as log:
        log.append(bar(0))
        clock.advance(2 * 3600)  # past midnight UTC
        log.append(bar(1))

    assert [(s.date, s.part) for s in segments(tmp_path / "md")] == [
        ("20231114", 1),
        ("20231115", 2),
    ]


def test_fsync_policy_when_batches_within_interval_then_fsync_once_per_interval_and_on_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock(T0)
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(mdlog.os, "fsync", counting_fsync)
    log = open_log(tmp_path, clock, fsync_interval_s=1.0)
    log.append(bar(0))
    after_open = len(synced)  # the new segment and its directory

    log.append(bar(1))
    clock.advance(0.5)
    log.append(bar(2))
    assert len(synced) == after_open
    clock.advance(0.5)
    log.append(bar(3))
    assert len(synced) == after_open + 1
    log.close()

    assert len(synced) == after_open + 2


def test_fsync_policy_when_interval_zero_then_every_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    monkeypatch.setattr(mdlog.os, "fsync", synced.append)
    with open_log(tmp_path, FakeClock(T0), fsync_interval_s=0) as log:
        log.append(bar(0))
        before = len(synced)
        log.append(bar(1))
        log.append(bar(2))

        assert len(synced) == before + 2


class FlakyFile:
    """A segment file whose writes can be made to fail half-way (disk full)."""

    def __init__(self, real: Any) -> None:
        self.real, self.fail = real, False

    def write(self, data: Any) -> int:
        if self.fail:
            self.real.write(bytes(data[:5]))
            raise OSError(28, "No space left on device")
        return int(self.real.write(data))

    def fileno(self) -> int:
        return int(self.real.fileno())

    def close(self) -> None:
        self.real.close()


def test_append_when_write_fails_then_raises_and_next_batch_starts_a_new_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files: list[FlakyFile] = []

    def flaky_open(*args: Any, **kwargs: Any) -> FlakyFile:
        files.append(FlakyFile(open(*args, **kwargs)))  # noqa: SIM115
        return files[-1]

    monkeypatch.setattr(mdlog, "open", flaky_open, raising=False)
    with open_log(tmp_path, FakeClock(T0)) as log:
        log.append(bar(0, ts_init=T0 + 1))
        files[-1].fail = True
        with pytest.raises(OSError, match="No space"):
            log.append(bar(1, ts_init=T0 + 2))
        log.append(bar(2, ts_init=T0 + 3))

    events, counts = read(tmp_path / "md")

    assert [s.part for s in segments(tmp_path / "md")] == [1, 2]
    assert [e.ts for e in events] == [bar(0).ts, bar(2).ts]
    assert counts.torn == 1


# -- reading and corruption --------------------------------------------------------------


def write_bars(tmp_path: Path, n: int) -> Path:
    with open_log(tmp_path, FakeClock(T0)) as log:
        for i in range(n):
            log.append(bar(i, ts_init=T0 + i))
    return only_segment(tmp_path)


def record_offsets(path: Path) -> list[int]:
    data, pos, offsets = path.read_bytes(), len(MAGIC), []
    while pos < len(data):
        offsets.append(pos)
        pos += 8 + struct.unpack_from(">I", data, pos)[0]
    return offsets


def test_read_when_last_record_torn_then_earlier_read_and_torn_counted(tmp_path: Path) -> None:
    path = write_bars(tmp_path, 5)
    size = path.stat().st_size
    os.truncate(path, size - 7)
    stats = StatsRegistry()

    events, counts = read(tmp_path / "md", stats)

    assert [e.ts for e in events] == [bar(i).ts for i in range(4)]
    assert (counts.torn, counts.checksum) == (1, 0)
    assert stats.snapshot()["qsuite_mdlog_corrupt_records_total{reason=torn}"] == 1


def test_read_when_only_header_of_last_record_written_then_torn(tmp_path: Path) -> None:
    path = write_bars(tmp_path, 3)
    os.truncate(path, record_offsets(path)[-1] + 3)

    events, counts = read(tmp_path / "md")

    assert len(events) == 2 and counts.torn == 1


def test_read_when_zero_filled_tail_then_torn_once(tmp_path: Path) -> None:
    path = write_bars(tmp_path, 3)
    with path.open("ab") as file:
        file.write(b"\0" * 4096)

    events, counts = read(tmp_path / "md")

    assert len(events) == 3 and counts.torn == 1 and counts.corrupt == 1


def test_read_when_payload_byte_flipped_then_that_record_skipped(tmp_path: Path) -> None:
    path = write_bars(tmp_path, 5)
    data = bytearray(path.read_bytes())
    data[record_offsets(path)[2] + 20] ^= 0xFF
    path.write_bytes(bytes(data))

    events, counts = read(tmp_path / "md")

    assert [e.ts for e in events] == [bar(i).ts for i in (0, 1, 3, 4)]
    assert counts.checksum == 1 and counts.torn == 0


def test_read_when_length_corrupted_then_resumes_at_next_record(tmp_path: Path) -> None:
    path = write_bars(tmp_path, 5)
    data = bytearray(path.read_bytes())
    struct.pack_into(">I", data, record_offsets(path)[1], 0xFFFF)
    path.write_bytes(bytes(data))

    events, counts = read(tmp_path / "md")

    assert [e.ts for e in events] == [bar(i).ts for i in (0, 2, 3, 4)]
    assert counts.checksum == 1


def test_read_when_frame_intact_but_not_an_event_then_decode_counted(tmp_path: Path) -> None:
    path = write_bars(tmp_path, 2)
    junk = msgspec.msgpack.encode({"type": "BarClosed.v9", "x": 1})
    with path.open("ab") as file:
        file.write(struct.pack(">II", len(junk), zlib.crc32(junk)) + junk)

    events, counts = read(tmp_path / "md")

    assert len(events) == 2 and counts.decode == 1


def test_read_when_file_not_a_segment_then_header_counted(tmp_path: Path) -> None:
    directory = tmp_path / "md"
    directory.mkdir()
    (directory / "feed-20231114-0123456789ab-000001.mdlog").write_bytes(b"not a log at all")
    (directory / "notes.mdlog").write_bytes(b"ignored: not a segment name")
    (directory / "feed-20231114-0123456789ab-000002.mdlog").write_bytes(b"")

    events, counts = read(directory)

    assert events == [] and counts.header == 1 and counts.corrupt == 1


def test_read_segment_when_directly_then_append_order(tmp_path: Path) -> None:
    path = write_bars(tmp_path, 3)

    events: list[Any] = list(read_segment(path, stats=StatsRegistry()))

    assert [e.ts for e in events] == [bar(i).ts for i in range(3)]


def test_read_all_when_two_writers_then_merged_by_ts_init(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    with open_log(tmp_path, clock, "feed") as feed, open_log(tmp_path, clock, "backfill") as bf:
        feed.append(bar(0, ts_init=T0 + 1))
        bf.append(bar(1, ts_init=T0 + 2))
        feed.append(bar(2, ts_init=T0 + 3))
        bf.append(bar(3, ts_init=T0 + 4))

    events, _ = read(tmp_path / "md")

    assert [e.ts_init for e in events] == [T0 + 1, T0 + 2, T0 + 3, T0 + 4]


def test_read_all_when_a_writers_clock_stepped_back_then_its_append_order_kept(
    tmp_path: Path,
) -> None:
    clock = FakeClock(T0)
    with open_log(tmp_path, clock, "feed") as feed, open_log(tmp_path, clock, "sched") as sched:
        feed.append_many([bar(0, ts_init=T0 + 10), bar(1, ts_init=T0 + 5)])
        sched.append(bar(2, ts_init=T0 + 7))

    first, _ = read(tmp_path / "md")
    second, _ = read(tmp_path / "md")

    feed_order = [e.ts for e in first if e.event_id.startswith("feed")]
    assert feed_order == [bar(0).ts, bar(1).ts]
    assert first == second, "the same files always read in the same order"


# -- rebuild ---------------------------------------------------------------------------


def test_bar_row_then_store_columns_in_order() -> None:
    event = bar(0, close=10.0)

    assert bar_row(msgspec.structs.replace(event, flags=3)) == (
        "AAPL",
        "1m",
        event.ts,
        10.0,
        11.0,
        9.0,
        10.0,
        1000.0,
        "yahoo",
        3,
    )


def test_rebuild_bars_when_log_has_bars_and_quotes_then_bars_upserted_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[list[tuple[Any, ...]]] = []

    def fake_upsert(target: object, rows: list[tuple[Any, ...]]) -> int:
        batches.append(list(rows))
        return len(rows)

    monkeypatch.setattr(mdlog, "upsert_bars", fake_upsert)
    with open_log(tmp_path, FakeClock(T0)) as log:
        log.append_many([bar(0), quote(0), bar(1), bar(2), bar(0, close=50.0)])

    written = rebuild_bars(tmp_path / "md", object(), batch_size=3, stats=StatsRegistry())  # type: ignore[arg-type]

    assert written == 4
    assert [len(b) for b in batches] == [3, 1]
    assert [row[6] for b in batches for row in b] == [100.0, 100.0, 100.0, 50.0]


def test_rebuild_bars_when_batch_size_bad_then_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        rebuild_bars(tmp_path, object(), batch_size=0)  # type: ignore[arg-type]

"""The idempotency journal: memory LRU, durable store, expiry."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.bus.journal import DIGEST_SIZE, CommandJournal, JournalEntry

D1 = b"1" * DIGEST_SIZE
D2 = b"2" * DIGEST_SIZE


def test_get_when_unknown_id_then_none() -> None:
    with CommandJournal(None) as journal:
        assert journal.get("c1", durable=False) is None
        assert journal.get("c1", durable=True) is None


def test_put_then_get_returns_digest_and_reply() -> None:
    with CommandJournal(None) as journal:
        journal.put("c1", D1, b"reply-1", durable=False)

        assert journal.get("c1", durable=False) == JournalEntry(D1, b"reply-1")
        assert journal.get("c1", durable=True) == JournalEntry(D1, b"reply-1")


def test_memory_when_full_then_evicts_least_recently_used() -> None:
    with CommandJournal(None, memory_size=2) as journal:
        journal.put("a", D1, b"A", durable=False)
        journal.put("b", D1, b"B", durable=False)
        journal.get("a", durable=False)  # "b" is now the least recently used
        journal.put("c", D1, b"C", durable=False)

        assert len(journal) == 2
        assert journal.get("b", durable=False) is None
        assert journal.get("a", durable=False) is not None
        assert journal.get("c", durable=False) is not None


def test_durable_entry_when_reopened_then_still_there(tmp_path: Path) -> None:
    with CommandJournal(tmp_path / "journal") as journal:
        journal.put("mut", D1, b"applied", durable=True)
        journal.put("ro", D2, b"pong", durable=False)

    with CommandJournal(tmp_path / "journal") as reopened:
        assert reopened.durable
        assert reopened.get("mut", durable=True) == JournalEntry(D1, b"applied")
        assert reopened.get("ro", durable=True) is None  # memory-only entries die with it


def test_durable_entry_when_evicted_from_memory_then_read_back_from_disk(tmp_path: Path) -> None:
    with CommandJournal(tmp_path / "journal", memory_size=1) as journal:
        journal.put("mut", D1, b"applied", durable=True)
        journal.put("other", D2, b"pong", durable=False)  # pushes "mut" out of memory

        assert journal.get("mut", durable=False) is None  # memory only: a miss
        assert journal.get("mut", durable=True) == JournalEntry(D1, b"applied")
        assert journal.get("mut", durable=False) == JournalEntry(D1, b"applied")  # cached again


def test_without_path_durable_puts_live_in_memory() -> None:
    with CommandJournal(None) as journal:
        journal.put("mut", D1, b"applied", durable=True)

        assert not journal.durable
        assert journal.get("mut", durable=True) == JournalEntry(D1, b"applied")
        assert journal.expire() == 0


def test_expire_when_ttl_passed_then_durable_entries_dropped(tmp_path: Path) -> None:
    with CommandJournal(tmp_path / "journal", ttl_s=60) as journal:
        journal.put("mut", D1, b"applied", durable=True)

        assert journal.expire(now=time.time() + 30) == 0
        assert journal.expire(now=time.time() + 61) == 1

    with CommandJournal(tmp_path / "journal", ttl_s=60) as reopened:
        assert reopened.get("mut", durable=True) is None


def test_put_when_digest_has_wrong_size_then_value_error() -> None:
    with CommandJournal(None) as journal, pytest.raises(ValueError, match="digest"):
        journal.put("c1", b"short", b"reply", durable=False)


@pytest.mark.parametrize(("memory_size", "ttl_s"), [(0, 10.0), (10, 0.0)])
def test_constructor_when_bad_bounds_then_value_error(memory_size: int, ttl_s: float) -> None:
    with pytest.raises(ValueError):
        CommandJournal(None, memory_size=memory_size, ttl_s=ttl_s)

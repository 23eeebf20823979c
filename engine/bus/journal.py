"""The idempotency journal of a control server: ``command_id`` → the first reply.

A control client retries a command with the *same* ``command_id`` when a reply is late
(see :mod:`engine.bus.pirate`), so a server must answer a repeated id with the reply it
gave the first time instead of acting again. Each entry holds the encoded ``Reply``
bytes and a digest of the command that produced it, so a reused id carrying a different
command can be told apart from a retry.

Two stores:

- **durable** (``diskcache`` in ``path``, entries expire after ``ttl_s``): replies of
  state-changing commands, so a retry that arrives after the serving process restarted
  still gets the first answer. SQLite runs with ``synchronous=FULL`` here because a
  journaled reply must outlive a crash as surely as the action it records; these writes
  are rare (operator actions), so the fsync is affordable.
- **memory** (bounded LRU, ``memory_size`` entries, no expiry beyond eviction): every
  journaled reply, durable ones included, so the hot path of read-only commands never
  touches the disk and a reused id is caught whatever command first used it.

With ``path=None`` the durable store is absent and everything lives in memory (tests,
throw-away processes). One journal directory belongs to one process.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

import diskcache

DIGEST_SIZE = 16
"""Bytes of the command digest stored in front of each reply."""

_FULL_SYNC = 2  # SQLite PRAGMA synchronous=FULL


class JournalEntry(NamedTuple):
    """A journaled reply: the digest of the command that produced it and its bytes."""

    digest: bytes
    reply: bytes


class CommandJournal:
    """Remembers the first reply to each ``command_id``.

    :param path: directory of the durable store; ``None`` keeps everything in memory.
    :param memory_size: entries kept in the in-memory LRU.
    :param ttl_s: how long durable entries are kept, in seconds.
    """

    def __init__(
        self, path: Path | None, *, memory_size: int = 10_000, ttl_s: float = 7 * 86400
    ) -> None:
        if memory_size < 1:
            raise ValueError("memory_size must be at least 1")
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self.path = path
        self.memory_size = memory_size
        self.ttl_s = ttl_s
        # digest + reply as one bytes object: bytes are not tracked by the cyclic GC, so
        # a full LRU adds nothing to collection pauses
        self._memory: OrderedDict[str, bytes] = OrderedDict()
        self._disk: diskcache.Cache | None = None
        if path is not None:
            self._disk = diskcache.Cache(str(path), sqlite_synchronous=_FULL_SYNC)

    @property
    def durable(self) -> bool:
        """Whether entries put with ``durable=True`` survive a restart."""
        return self._disk is not None

    def get(self, command_id: str, *, durable: bool) -> JournalEntry | None:
        """The entry of ``command_id``; ``durable`` also looks in the durable store."""
        raw = self._memory.get(command_id)
        if raw is not None:
            self._memory.move_to_end(command_id)
        elif durable and self._disk is not None:
            stored = self._disk.get(command_id)
            if not isinstance(stored, bytes) or len(stored) < DIGEST_SIZE:
                return None
            self._remember(command_id, raw := stored)
        else:
            return None
        return JournalEntry(raw[:DIGEST_SIZE], raw[DIGEST_SIZE:])

    def put(self, command_id: str, digest: bytes, reply: bytes, *, durable: bool) -> None:
        """Journal ``reply``; ``durable`` writes it through to the durable store."""
        if len(digest) != DIGEST_SIZE:
            raise ValueError(f"digest must be {DIGEST_SIZE} bytes, got {len(digest)}")
        raw = digest + reply
        if durable and self._disk is not None:
            self._disk.set(command_id, raw, expire=self.ttl_s)
        self._remember(command_id, raw)

    def expire(self, now: float | None = None) -> int:
        """Drop durable entries older than ``ttl_s`` (as of ``now``, epoch seconds).

        Expired entries are never returned anyway; this reclaims their space and is
        meant for a periodic maintenance job. Returns how many were dropped.
        """
        if self._disk is None:
            return 0
        return int(self._disk.expire(now=now))

    def __len__(self) -> int:
        """Entries in memory (the durable store is not counted)."""
        return len(self._memory)

    def close(self) -> None:
        if self._disk is not None:
            self._disk.close()
            self._disk = None
        self._memory.clear()

    def __enter__(self) -> CommandJournal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _remember(self, command_id: str, raw: bytes) -> None:
        memory = self._memory
        memory[command_id] = raw
        memory.move_to_end(command_id)
        if len(memory) > self.memory_size:
            memory.popitem(last=False)

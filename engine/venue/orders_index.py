"""Where a book finds its orders again, and how long it keeps the done ones.

:class:`OrderIndex` maps every order of a book by the number ``n`` in its
``venue_order_id`` (``<prefix><n>``; restored orders of another shape by their id) and
by account and client_order_id (every id it has had), and hands out the numbers and
venue_order_ids: up to a thousand at a time into :attr:`OrderIndex.vids`, an iterator
of ``(n, venue_order_id)`` the hot path draws from — ``next(index.vids)``, and
:meth:`OrderIndex.roll` when it runs out. Int keys matter: consecutive numbers land in
consecutive slots of the dict, where random string hashes would miss the CPU caches on
every insert and delete of a large book.

Memory: the ``keep_done`` most recent orders stay addressable; older done orders are
forgotten in batches by :meth:`OrderIndex.sweep` (their lookups return None) but their
client_order_ids stay taken — mapped to None — so a duplicate is still refused. Resting
orders are never forgotten. ``keep_done=None`` keeps everything. A sweep is due every
``batch`` new orders; the blocks of ids end there, so the hot path needs no check.
``numbered`` keeps the orders in the order they were indexed, oldest first, and a sweep
looks at the ``batch`` oldest + the still-resting old orders, not at everything.

The book's hot paths fill ``numbered`` and ``by_account`` themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from operator import length_hint

from engine.errors import ConfigError
from engine.venue.ids import IdSequence
from engine.venue.levels import BookOrder


class OrderIndex:
    """Every order of one book by venue_order_id and by account and client_order_id.
    Raises ``ConfigError`` for a negative ``keep_done``."""

    __slots__ = (
        "_batch",
        "_block",
        "_block_end",
        "_lingering",
        "by_account",
        "foreign",
        "ids",
        "keep_done",
        "numbered",
        "vids",
    )

    def __init__(self, ids: IdSequence, keep_done: int | None) -> None:
        if keep_done is not None and keep_done < 0:
            raise ConfigError("venue.keep_done", f"must be 0 or more, got {keep_done}")
        self.ids = ids
        self.numbered: dict[int, BookOrder] = {}
        """Orders by the ``n`` of their venue_order_id, oldest first."""
        self.foreign: dict[str, BookOrder] = {}
        """Restored orders whose venue_order_id is not ``<prefix><n>`` as this book
        writes it (or whose ``n`` was taken), by venue_order_id."""
        self.by_account: dict[str, dict[str, BookOrder | None]] = {}
        """account → client_order_id → order (None once forgotten: the id stays taken)."""
        self.keep_done = keep_done
        self._batch = max(1024, (keep_done or 0) // 8)
        self._lingering = 0  # resting orders among the old ones at the last sweep
        self._block: Iterator[str] = iter(())
        self.vids: Iterator[tuple[int, str]] = iter(())
        """The next numbers and venue_order_ids (of this block)."""
        self._block_end = ids.next  # the n after the last one of ``vids``

    @property
    def next_number(self) -> int:
        """The ``n`` of the next venue_order_id."""
        return self._block_end - length_hint(self._block)

    def take(self) -> tuple[int, str]:
        """The next number and venue_order_id."""
        try:
            return next(self.vids)
        except StopIteration:
            return self.roll()

    def roll(self) -> tuple[int, str]:
        """The next number and venue_order_id once ``vids`` has run out: refills it up
        to the end of their thousand or the next sweep, whichever comes first, after a
        sweep when one is due."""
        room = 1000
        if self.keep_done is not None:
            room = self.keep_done + self._batch - (len(self.numbered) - self._lingering)
            if room <= 0:
                self.sweep()
                room = self.keep_done + self._batch - (len(self.numbered) - self._lingering)
        start = self._block_end
        block = self.ids.block(start, room)
        self._block_end = start + len(block)
        self._block = iter(block)
        self.vids = zip(range(start, self._block_end), self._block, strict=True)
        return next(self.vids)

    def find(self, account: str, client_order_id: str, venue_order_id: str) -> BookOrder | None:
        """An order of ``account`` by ``venue_order_id`` when given, else by any
        client_order_id it has had."""
        if venue_order_id:
            found = self.by_vid(venue_order_id)
            return found if found is not None and found.account == account else None
        ids = self.by_account.get(account)
        return None if ids is None else ids.get(client_order_id)

    def by_vid(self, venue_order_id: str) -> BookOrder | None:
        n = self.ids.number(venue_order_id)
        if n is not None:
            found = self.numbered.get(n)
            if found is not None and found.venue_order_id == venue_order_id:
                return found
        return self.foreign.get(venue_order_id)

    def taken(self, account: str, client_order_id: str) -> bool:
        ids = self.by_account.get(account)
        return ids is not None and client_order_id in ids

    def add_restored(self, order: BookOrder) -> None:
        """Index a resting order put back by a restore; moves the counter past its
        number, so new orders never take its venue_order_id."""
        self.by_account.setdefault(order.account, {})[order.client_order_id] = order
        vid = order.venue_order_id
        n = self.ids.number(vid)
        if n is None or n in self.numbered:
            self.foreign[vid] = order
            return
        self.numbered[n] = order
        if n >= self.next_number:
            self._block, self.vids = iter(()), iter(())
            self._block_end = n + 1

    def alias(self, order: BookOrder, client_order_id: str) -> None:
        """``client_order_id`` becomes the id of ``order`` (a replace); the old one still
        finds it."""
        old = order.client_order_id
        self.by_account[order.account][client_order_id] = order
        order.client_order_id = client_order_id
        if order.aliases is None:
            order.aliases = [old]
        else:
            order.aliases.append(old)

    def sweep(self) -> None:
        """Forget the done orders older than the ``keep_done`` newest: their lookups
        return None from now on, their client_order_ids stay taken (mapped to None)."""
        assert self.keep_done is not None
        numbered, by_account = self.numbered, self.by_account
        lingering = 0
        old = max(0, len(numbered) - self.keep_done)
        for n in list(islice(numbered, old)):  # ints: no tuples for the GC to count
            order = numbered[n]
            if order.leaves:
                lingering += 1
                continue
            del numbered[n]
            ids = by_account[order.account]
            ids[order.client_order_id] = None
            if order.aliases:
                for alias in order.aliases:
                    ids[alias] = None
        self._lingering = lingering

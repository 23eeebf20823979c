"""The ids a book hands out: ``<prefix><n>`` strings for a rising counter ``n``.

Formatting an int costs more than the rest of a resting order's bookkeeping, so
:class:`IdSequence` builds an id from a cached head (``<prefix><n // 1000>``) and a
table of 3-digit tails — one index and one concatenation. Two ways to use it:

- a block at a time (:meth:`IdSequence.block`) for a caller that draws ids from an
  iterator and keeps its own count (the venue_order_ids of
  :class:`~engine.venue.orders_index.OrderIndex`);
- one at a time with the counter ``next`` (the trade ids of the match loop, which
  inlines it and formats only when it emits reports)::

      try:
          text = seq.head + seq.tails[n - seq.base]
      except IndexError:  # the first id of the next thousand
          text = seq.roll(n)
"""

from __future__ import annotations

_TAILS_SHORT = tuple(str(i) for i in range(1000))
"""The tails of the first thousand (no leading zeros: ``O7``, not ``O007``)."""
_TAILS = tuple(f"{i:03d}" for i in range(1000))


class IdSequence:
    """``prefix + str(n)`` for ``n`` = ``first``, ``first + 1``, …; ``next`` is the next
    ``n`` of a caller that takes them one at a time (it advances it itself)."""

    __slots__ = ("base", "head", "next", "prefix", "tails")

    def __init__(self, prefix: str, first: int) -> None:
        self.prefix = prefix
        self.next = first
        self.head = prefix
        self.base = 0
        self.tails: tuple[str, ...] = ()
        self.roll(first)

    def roll(self, n: int) -> str:
        """Point ``head``/``base``/``tails`` at the thousand of ``n``; returns its id."""
        if n < 0:  # no table for these: every id takes this (slow, correct) path
            self.head, self.base, self.tails = self.prefix, n + 1, ()
            return f"{self.prefix}{n}"
        thousands = n // 1000
        self.base = thousands * 1000
        self.head = f"{self.prefix}{thousands}" if thousands else self.prefix
        self.tails = _TAILS if thousands else _TAILS_SHORT
        return self.head + self.tails[n - self.base]

    def block(self, n: int, limit: int) -> list[str]:
        """The ids from ``n`` on, up to ``limit`` (at least one) and at most to the end of
        the thousand of ``n`` (``next`` stays as it is)."""
        if n < 0:
            return [f"{self.prefix}{n}"]
        thousands, first = divmod(n, 1000)
        head = f"{self.prefix}{thousands}" if thousands else self.prefix
        tails = _TAILS if thousands else _TAILS_SHORT
        return [head + tail for tail in tails[first : first + max(1, limit)]]

    def number(self, text: str) -> int | None:
        """``n`` of ``<prefix><n>`` written as this sequence writes it; None for another
        shape (``<prefix>01``, a foreign prefix …)."""
        prefix = self.prefix
        digits = text[len(prefix) :]
        if (
            text.startswith(prefix)
            and digits.isascii()
            and digits.isdigit()
            and (digits == "0" or digits[0] != "0")
        ):
            return int(digits)
        return None

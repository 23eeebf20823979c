"""A parent order the algorithm engine works, in memory (see :mod:`engine.algos.engine`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.algos.base import Algorithm, Child
from engine.algos.store import Parent

ZERO = Decimal(0)


@dataclass(slots=True)
class Live:
    """A parent order the engine works (pending, running or paused)."""

    row: Parent
    algo: Algorithm[Any]
    working: dict[str, Child] = field(default_factory=dict)
    slices: int = 0
    last_child_ns: int = 0
    filled: Decimal = ZERO
    notional: Decimal = ZERO
    volume_base: Decimal = ZERO
    """The symbol's volume counter minus what the parent had seen at (re)start."""
    notional_base: Decimal = ZERO
    wake_ns: int | None = None
    cancelling: set[str] = field(default_factory=set)
    """Working children whose cancel was sent (not sent again)."""
    last_fill_ns: int = 0
    behind_since: int | None = None
    alerted: set[str] = field(default_factory=set)

    @property
    def algo_id(self) -> str:
        return self.row.algo_id

    @property
    def working_qty(self) -> Decimal:
        return sum((c.leaves for c in self.working.values()), ZERO)

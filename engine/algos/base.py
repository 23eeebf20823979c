"""The execution-algorithm interface (version :data:`INTERFACE_VERSION`).

An algorithm works one parent order (buy or sell ``qty`` of ``symbol`` for ``account``)
by deciding, whenever something happens, which child orders should be working. It is a
plugin registered by ``kind`` (:mod:`engine.algos.registry`) with a frozen, validated
parameter struct (:class:`AlgoParams`).

Contract for algorithm authors (built-ins and plugins alike):

- :meth:`Algorithm.decide` is a **pure function** of the parent (:class:`ParentSpec`,
  fixed), its parameters, the market (:class:`Market`) and the parent's progress
  (:class:`Progress`) — everything the engine persists or can rebuild. It keeps no
  state of its own between calls: after a crash the engine rebuilds the same inputs
  from the database and the algorithm carries on where it was. Randomness comes from
  :meth:`Algorithm.rng` (seeded by the parent and the slice number: the same after a
  restart).
- It answers with a :class:`Decision`: child orders to place (:class:`Place`), working
  children to cancel (:class:`Cancel`), when to be asked again (``wake_in_s``) and
  whether the parent is done (``done``: a reason; the engine cancels what still works
  and completes the parent).
- The engine, not the algorithm, guarantees the hard rules: a child never takes the
  parent beyond its quantity (filled + working + new ≤ qty: the quantity is cut, and
  rounded down to the lot), a limit price is never crossed (buy: price ≤ limit), and
  every child passes the pre-trade risk gate. Prices are rounded to the tick away from
  the market (buy down, sell up).
- ``decide`` must be fast (it runs on the execution loop for every market event of its
  symbol) and must not block. An exception fails the parent with the exception as the
  reason (its working children are cancelled); the process and the other parents go
  on.
- :meth:`Algorithm.prepare` runs once at the start and may fill parameters from stored
  history (VWAP's volume profile); its result is persisted, so a restart decides on the
  same inputs.
- :meth:`Algorithm.expected` is the quantity the schedule expects filled by ``now`` (for
  progress and behind-schedule alerts); None for opportunistic algorithms.

Parameters: ``params_type`` is a frozen :class:`AlgoParams` struct with documented
fields; :meth:`AlgoParams.check` refuses contradictions with :class:`AlgoParamsError`
naming the field. Durations are seconds; times UTC ns; prices and quantities ``Decimal``.

Interface versions: 1 — this module.
"""

from __future__ import annotations

import random
import zlib
from abc import ABC, abstractmethod
from decimal import Decimal
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

import msgspec

from engine.bus.events import Side, TimeInForce
from engine.errors import QSuiteError

#: The version of this interface; bumped when a change breaks existing algorithms.
INTERFACE_VERSION = 1
NS = 1_000_000_000
ZERO = Decimal(0)

Why = Literal["start", "timer", "market", "fill", "child_done", "modify", "resume"]
"""What made the engine ask."""


class AlgoParamsError(QSuiteError, ValueError):
    """Invalid or contradictory algorithm parameters; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class AlgoParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every algorithm's parameters."""

    limit_price: Decimal | None = None
    """Worst price a child may have (buy: at most, sell: at least); None: no limit."""

    def check(self, parent: ParentSpec) -> None:
        """Raise :class:`AlgoParamsError` for a value that makes no sense for ``parent``
        (override and call ``super().check(parent)``)."""
        if self.limit_price is not None and not (
            self.limit_price.is_finite() and self.limit_price > 0
        ):
            raise AlgoParamsError(
                "limit_price", f"must be a positive price, not {self.limit_price}"
            )


class ParentSpec(msgspec.Struct, frozen=True, kw_only=True):
    """The parent order, as started (a modify changes ``qty``)."""

    algo_id: str
    account: str
    symbol: str
    side: Side
    qty: Decimal
    """Total quantity to trade."""
    start_ns: int
    """When it started running (UTC ns)."""


class Market(msgspec.Struct, frozen=True, kw_only=True):
    """What the algorithm sees of its symbol's market at ``now_ns``."""

    now_ns: int
    bid: Decimal | None = None
    """Best bid of the venue's book (None: no bid)."""
    ask: Decimal | None = None
    bid_size: Decimal = ZERO
    ask_size: Decimal = ZERO
    last: Decimal | None = None
    """Price of the last trade on the venue."""
    tick: Decimal = Decimal("0.01")
    lot: Decimal = Decimal(1)
    volume: Decimal = ZERO
    """Quantity traded on the venue since the parent started (its own fills included)."""
    halted: bool = False


class Child(msgspec.Struct, frozen=True, kw_only=True):
    """A working child order."""

    client_order_id: str
    qty: Decimal
    price: Decimal | None
    leaves: Decimal
    """Still working."""
    sent_ns: int


class Progress(msgspec.Struct, frozen=True, kw_only=True):
    """Where the parent stands."""

    filled: Decimal = ZERO
    avg_price: Decimal | None = None
    working: tuple[Child, ...] = ()
    """Children still working at the venue (or on their way)."""
    slices: int = 0
    """Children sent so far (the next one's slice number)."""
    last_child_ns: int = 0
    """When the last child was sent (0: none yet)."""

    @property
    def working_qty(self) -> Decimal:
        return sum((c.leaves for c in self.working), ZERO)


class Place(msgspec.Struct, frozen=True, kw_only=True):
    """Send a child order: ``price`` None is a market order (the engine makes it a limit
    at ``limit_price`` when the parent has one)."""

    qty: Decimal
    price: Decimal | None = None
    tif: TimeInForce = "day"


class Cancel(msgspec.Struct, frozen=True, kw_only=True):
    client_order_id: str


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    actions: tuple[Place | Cancel, ...] = ()
    wake_in_s: float | None = None
    """Ask again after this many seconds (None: only on the next event)."""
    done: str = ""
    """Non-empty: the parent is complete, for this reason (e.g. ``end_time``)."""


class History(Protocol):
    """Stored market history an algorithm may use when it starts (:meth:`Algorithm.prepare`)."""

    def intraday_volumes(self, symbol: str, *, days: int, now_ns: int) -> list[tuple[int, Decimal]]:
        """``(bar start UTC ns, volume)`` of the stored intraday bars (finest interval
        available, 1m to 1h) of the ``days`` days before ``now_ns``, oldest first."""
        ...


P = TypeVar("P", bound=AlgoParams)


class Algorithm(ABC, Generic[P]):
    """Base of every execution algorithm (see the module docstring)."""

    INTERFACE_VERSION: ClassVar[int] = INTERFACE_VERSION
    kind: ClassVar[str]
    """Registry name, e.g. ``twap``."""
    version: ClassVar[int] = 1
    params_type: ClassVar[type[AlgoParams]] = AlgoParams
    description: ClassVar[str] = ""
    prepared: ClassVar[tuple[str, ...]] = ()
    """Parameters :meth:`prepare` fills (VWAP's ``profile``): a modification of other
    parameters clears them and the engine prepares them again."""

    def __init__(self, parent: ParentSpec, params: P) -> None:
        self.parent = parent
        self.params = params

    @classmethod
    def parse(cls, parent: ParentSpec, raw: dict[str, Any]) -> P:
        """Validated parameters from JSON-able ``raw`` (strings or numbers for
        decimals); raises :class:`AlgoParamsError`."""
        try:
            params = msgspec.convert(raw, cls.params_type, strict=False)
        except msgspec.ValidationError as exc:
            field = str(exc).rsplit("$.", 1)[-1].rstrip("`") if "$." in str(exc) else "params"
            raise AlgoParamsError(field, str(exc)) from None
        params.check(parent)
        return params  # type: ignore[return-value]

    @classmethod
    def prepare(cls, parent: ParentSpec, params: P, history: History) -> P:
        """Called once when the parent starts (never again after a restart): returns the
        parameters to run with, e.g. with a volume profile computed from ``history``
        (they are persisted with the parent). Default: ``params`` unchanged."""
        return params

    @abstractmethod
    def decide(self, market: Market, progress: Progress, why: Why) -> Decision:
        """What should happen now (see the module docstring)."""

    def expected(self, now_ns: int) -> Decimal | None:
        """The quantity the schedule expects filled by ``now_ns``; None: no schedule."""
        return None

    def end_ns(self) -> int | None:
        """When the parent ends at the latest (None: when filled or cancelled)."""
        return None

    def rng(self, slice_index: int) -> random.Random:
        """A random generator for slice ``slice_index`` (the same after a restart)."""
        seed = zlib.crc32(f"{self.parent.algo_id}:{slice_index}".encode())
        return random.Random(seed)

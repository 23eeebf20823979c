"""Simulated-venue commands, served by the ``venue`` process."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, ClassVar

import msgspec

from engine.bus.commands.base import Command, Result, Role
from engine.bus.commands.market import Symbol
from engine.bus.events import BookLevel

Depth = Annotated[int, msgspec.Meta(ge=1, le=100)]


class BookSnapshot(Result, frozen=True, kw_only=True, tag="BookSnapshot.v1"):
    """One book's depth for a late joiner: apply ``BookUpdated`` deltas with a higher
    ``book_seq`` on top of it."""

    symbol: str
    book_seq: int
    bids: list[BookLevel]
    """Best first."""
    asks: list[BookLevel]
    halted: bool
    tick_size: Decimal
    lot_size: Decimal


class BookSummary(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    best_bid: Decimal | None
    best_ask: Decimal | None
    open_orders: int
    halted: bool
    tick_size: Decimal
    lot_size: Decimal


class VenueStatus(Result, frozen=True, kw_only=True, tag="VenueStatus.v1"):
    venue: str
    epoch: str
    """Random per venue run."""
    scenario: str
    sessions: list[str]
    books: list[BookSummary]


class HaltSet(Result, frozen=True, kw_only=True, tag="HaltSet.v1"):
    symbols: list[str]
    """The books that changed state."""
    halted: bool
    cancelled: int
    """Client orders cancelled by the halt (``cancel_open``)."""


class InstrumentSet(Result, frozen=True, kw_only=True, tag="InstrumentSet.v1"):
    symbol: str
    tick_size: Decimal
    lot_size: Decimal
    base_liquidity: float
    volatility: float
    applied: str
    """``now``, or why part of it waits (e.g. for resting client orders to go)."""


class GetBook(Command, frozen=True, kw_only=True, tag="GetBook.v1"):
    """The depth of one book (its snapshot for a late joiner)."""

    symbol: Symbol
    depth: Depth = 10

    target: ClassVar[str] = "venue"


class GetVenueStatus(Command, frozen=True, kw_only=True, tag="GetVenueStatus.v1"):
    """Books, sessions and the scenario of the simulated venue."""

    target: ClassVar[str] = "venue"


class SetHalt(Command, frozen=True, kw_only=True, tag="SetHalt.v1"):
    """Halt trading (new orders and replaces rejected with ``halted``; cancels still
    work) or resume it, for one symbol or (``symbol=""``) every book."""

    symbol: str = ""
    halted: bool
    reason: str = ""
    cancel_open: bool = False
    """Also cancel every resting order (reason ``halted``)."""

    target: ClassVar[str] = "venue"
    mutating: ClassVar[bool] = True
    min_role: ClassVar[Role] = "operator"


class SetInstrument(Command, frozen=True, kw_only=True, tag="SetInstrument.v1"):
    """Change how the venue trades a symbol (stored in ``simulated_instruments``); fields
    left out keep their value. A new tick or lot size applies at once when no client
    order rests on the symbol, and is refused otherwise."""

    symbol: Symbol
    tick_size: Decimal | None = None
    lot_size: Decimal | None = None
    base_liquidity: Annotated[float, msgspec.Meta(gt=0)] | None = None
    """Quantity per price level of the market makers (calm market)."""
    volatility: Annotated[float, msgspec.Meta(gt=0)] | None = None

    target: ClassVar[str] = "venue"
    mutating: ClassVar[bool] = True
    min_role: ClassVar[Role] = "operator"


RESULTS = (BookSnapshot, VenueStatus, HaltSet, InstrumentSet)
COMMANDS = (GetBook, GetVenueStatus, SetHalt, SetInstrument)

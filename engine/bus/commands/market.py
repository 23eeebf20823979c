"""Market-data commands: the feed's read side (queries) and its controls.

Queries are served by the ``feed`` process from its read model (the database and the
price cache), never from a source, so they do not wait on Yahoo or on ingestion.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import msgspec

from engine.bus.commands.base import Command, Result, Role
from engine.bus.events import BreakerState, FeedMode, Origin

Scenario = Literal[
    "calm", "volatile", "trending_up", "trending_down", "flash_crash", "illiquid", "gap_open"
]
Symbol = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9.\-=^_]+$")]
Limit = Annotated[int, msgspec.Meta(ge=1, le=100_000)]


# --- results -------------------------------------------------------------------------


class BarSeries(Result, frozen=True, kw_only=True, tag="BarSeries.v1"):
    """Bars of one symbol and interval, column-wise, oldest first."""

    symbol: str
    interval: str
    ts: list[int]
    open: list[float]
    high: list[float]
    low: list[float]
    close: list[float]
    volume: list[float]
    flags: list[int]
    source: list[str]


class Quote(msgspec.Struct, frozen=True, kw_only=True):
    """Latest top of book and last trade of one symbol, normalized."""

    symbol: str
    ts: int
    """When the source says the quote was valid, UTC ns."""
    bid: float
    ask: float
    bid_size: float = 0.0
    ask_size: float = 0.0
    last: float
    volume: float = 0.0
    origin: Origin
    simulated: bool = False


class Fundamentals(msgspec.Struct, frozen=True, kw_only=True):
    """Instrument-master facts of one symbol as of ``as_of`` (UTC ns); None = unknown."""

    symbol: str
    as_of: int
    name: str | None = None
    exchange: str | None = None
    currency: str | None = None
    sector: str | None = None
    industry: str | None = None
    market_cap: float | None = None
    pe_ratio: float | None = None
    eps: float | None = None
    dividend_yield: float | None = None
    beta: float | None = None
    week52_high: float | None = None
    week52_low: float | None = None


class QuoteRow(Quote, frozen=True, kw_only=True):
    """A cached quote as the read side serves it."""

    mode: FeedMode
    """What the feed was serving when this quote was cached."""
    age_s: float
    """Seconds since the quote was written to the price cache."""


class QuoteSnapshot(Result, frozen=True, kw_only=True, tag="QuoteSnapshot.v1"):
    quotes: list[QuoteRow]
    missing: list[str] = []
    """Requested symbols the cache has no quote for."""


class FundamentalsResult(Result, frozen=True, kw_only=True, tag="FundamentalsResult.v1"):
    fundamentals: Fundamentals


class InstrumentRow(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    name: str | None
    exchange: str | None
    sector: str | None
    industry: str | None
    currency: str | None
    active: bool


class InstrumentList(Result, frozen=True, kw_only=True, tag="InstrumentList.v1"):
    instruments: list[InstrumentRow]


class IngestionRow(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    job: str
    source: str
    symbols: list[str]
    interval: str | None
    rows: int
    status: str
    started_at: str
    """ISO 8601, UTC."""
    duration_s: float | None
    error: str | None


class IngestionLog(Result, frozen=True, kw_only=True, tag="IngestionLog.v1"):
    runs: list[IngestionRow]


class FeedStatus(Result, frozen=True, kw_only=True, tag="FeedStatus.v1"):
    mode: FeedMode
    breaker: BreakerState
    reason: str
    watchlist: list[str]
    interval: str
    scenario: Scenario
    last_live_at: int | None
    """When the source last answered, UTC ns (None: never since start)."""


class ScenarioSet(Result, frozen=True, kw_only=True, tag="ScenarioSet.v1"):
    previous: Scenario
    current: Scenario
    applied_at: int


# --- commands ------------------------------------------------------------------------


class GetBars(Command, frozen=True, kw_only=True, tag="GetBars.v1"):
    """Stored bars of a symbol: ``[start, end)`` in UTC ns, at most ``limit``; with
    ``newest`` the latest ``limit`` bars of the range (still oldest first)."""

    symbol: Symbol
    interval: str = "1d"
    start: int | None = None
    end: int | None = None
    limit: Limit = 500
    newest: bool = True

    target: ClassVar[str] = "feed"


class GetQuotes(Command, frozen=True, kw_only=True, tag="GetQuotes.v1"):
    """Latest quotes from the price cache (all cached symbols when ``symbols`` is empty)."""

    symbols: list[Symbol] = []

    target: ClassVar[str] = "feed"


class GetFundamentals(Command, frozen=True, kw_only=True, tag="GetFundamentals.v1"):
    """The latest stored fundamentals of a symbol."""

    symbol: Symbol

    target: ClassVar[str] = "feed"


class ListInstruments(Command, frozen=True, kw_only=True, tag="ListInstruments.v1"):
    """Instruments of the master, filtered by exchange code, sector or industry."""

    exchange: str | None = None
    sector: str | None = None
    industry: str | None = None
    limit: Limit = 1000

    target: ClassVar[str] = "feed"


class GetIngestionLog(Command, frozen=True, kw_only=True, tag="GetIngestionLog.v1"):
    """The latest ingestion runs, newest first, optionally of one job."""

    job: str | None = None
    limit: Limit = 50

    target: ClassVar[str] = "feed"


class GetFeedStatus(Command, frozen=True, kw_only=True, tag="GetFeedStatus.v1"):
    """Mode (live / delayed / cached / simulated), breaker state and why."""

    target: ClassVar[str] = "feed"


class SetScenario(Command, frozen=True, kw_only=True, tag="SetScenario.v1"):
    """Switch the synthetic market's scenario (the venue follows it)."""

    scenario: Scenario

    target: ClassVar[str] = "feed"
    mutating: ClassVar[bool] = True
    min_role: ClassVar[Role] = "operator"


RESULTS = (
    BarSeries,
    QuoteSnapshot,
    FundamentalsResult,
    InstrumentList,
    IngestionLog,
    FeedStatus,
    ScenarioSet,
)
COMMANDS = (
    GetBars,
    GetQuotes,
    GetFundamentals,
    ListInstruments,
    GetIngestionLog,
    GetFeedStatus,
    SetScenario,
)

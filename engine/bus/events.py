"""The event catalog: every pub/sub event of QSuite, defined once.

Wire format (see also docs/wire.md)
-----------------------------------
A bus message is two ZeroMQ frames::

    [ topic + b"." ,  msgpack(event) ]

``topic`` is built by :mod:`engine.bus.topics`. The payload is a msgpack map encoded by
msgspec from one of the frozen structs below; its ``"type"`` key is the versioned tag
(``"Heartbeat.v1"``) that selects the struct on decode. Every event starts with the
common header:

``event_id``  str   unique id, ``<source>:<session>:<n>``: ``session`` is random per
                    publisher instance, ``n`` counts all its events (every topic)
``source``    str   the publishing process (``feed``, ``execution`` …)
``seq``       int   per publisher *and topic*, 1, 2, 3 … (a subscriber always gets whole
                    topics, so it can detect gaps whatever prefix it subscribed to); it
                    restarts at 1 when the publisher restarts (a new ``session``)
``ts_event``  int   when the fact happened, UTC nanoseconds
``ts_init``   int   when the event object was published, UTC nanoseconds

Versioning: adding an optional field keeps the tag; renaming, removing or retyping a
field makes a new struct ``<Name>V2`` with tag ``<Name>.v2``; consumers read both for
one release. Unknown tags are counted and dropped by subscribers, never raised.
Events are past-tense facts.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, Union

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Common header of every event. Publishers stamp ``source``, ``seq``, ``event_id``
    and ``ts_init``; producers set ``ts_event`` and the body."""

    event_id: str = ""
    source: str = ""
    seq: int = 0
    ts_event: int
    ts_init: int = 0


ProcessStatusName = Literal["up", "degraded"]


class Heartbeat(Event, frozen=True, kw_only=True, tag="Heartbeat.v1"):
    """A process is alive. Published on ``sys.heartbeat.<process>`` every interval."""

    process: str
    pid: int
    version: str
    started_at: int
    """When the process started, UTC ns."""
    status: ProcessStatusName = "up"
    detail: str = ""
    """Why the process is degraded, in words for the operator."""
    counters: dict[str, float] = {}
    """A few live counters (messages in/out, drops, gaps, errors) for the health panel."""


ProcessTransition = Literal["starting", "exited", "restarting", "stopped"]


class ProcessStateChanged(Event, frozen=True, kw_only=True, tag="ProcessStateChanged.v1"):
    """The supervisor started, lost, restarted or stopped a process (``sys.process.<name>``)."""

    process: str
    state: ProcessTransition
    pid: int = 0
    exit_code: int | None = None
    restarts: int = 0
    reason: str = ""


class LogLevelChanged(Event, frozen=True, kw_only=True, tag="LogLevelChanged.v1"):
    """A process changed its log level on an operator's command (``sys.loglevel.<name>``)."""

    process: str
    previous: str
    current: str
    command_id: str


class Probe(Event, frozen=True, kw_only=True, tag="Probe.v1"):
    """A publisher checks that its messages reach a subscriber (``sys.probe.<token>``).

    Sent by :func:`engine.bus.subscriber.wait_for_subscription` until the subscriber sees one;
    consumers of ``sys`` may see a few and should ignore them."""

    token: str


# --- market data (md.*) ----------------------------------------------------------------

Origin = Literal["yahoo", "replay", "synthetic"]
"""Where market data came from (the header's ``source`` is the publishing process)."""


class BarClosed(Event, frozen=True, kw_only=True, tag="BarClosed.v1"):
    """A bar closed (``md.bar.<symbol>.<interval>``); ``ts`` is the bar's open time (UTC ns)
    and ``ts_event`` when it closed. Prices and volume are float64 after normalization."""

    symbol: str
    interval: str
    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    origin: Origin
    simulated: bool = False
    """True when the synthetic market made this bar (never a real observation)."""
    flags: int = 0
    """Bits of :class:`engine.persistence.models.BarFlag` (adjusted, gap-filled …)."""


class QuoteUpdated(Event, frozen=True, kw_only=True, tag="QuoteUpdated.v1"):
    """Best bid/ask and last trade of a symbol changed (``md.quote.<symbol>``)."""

    symbol: str
    bid: float
    ask: float
    bid_size: float
    ask_size: float
    last: float
    volume: float = 0.0
    """Volume traded so far in the session (0 when the source does not say)."""
    origin: Origin
    simulated: bool = False


class TradeReported(Event, frozen=True, kw_only=True, tag="TradeReported.v1"):
    """A market trade printed on the (real or synthetic) tape (``md.trade.<symbol>``);
    the simulated venue's liquidity and volume models follow these."""

    symbol: str
    price: float
    size: float
    aggressor: Literal["buy", "sell", "unknown"] = "unknown"
    origin: Origin
    simulated: bool = False


FeedMode = Literal["live", "delayed", "cached", "simulated"]
BreakerState = Literal["closed", "open", "half_open"]


class FeedStateChanged(Event, frozen=True, kw_only=True, tag="FeedStateChanged.v1"):
    """A market-data source changed mode, breaker state or scenario (``md.feed.<feed>``);
    also re-announced every 10 s for late joiners."""

    feed: str
    """The data source (``yahoo`` …); the header's ``source`` is the publishing process."""
    mode: FeedMode
    breaker: BreakerState
    reason: str = ""
    """Why, in words for the operator (e.g. "Yahoo unreachable: timeout; serving simulated")."""
    scenario: str = ""
    """The synthetic market's scenario (``calm``, ``flash_crash`` …); the simulated venue
    follows it."""


class BackfillCompleted(Event, frozen=True, kw_only=True, tag="BackfillCompleted.v1"):
    """A backfill of one symbol and interval finished (``md.backfill.<symbol>``); the
    analysis process re-evaluates that symbol when it sees this."""

    symbol: str
    interval: str
    start: int
    end: int
    rows: int
    """Bars inserted or changed (0 when the store already had them all)."""
    origin: Origin
    run_id: int
    """The ingestion-log row of the run."""


class GapDetected(Event, frozen=True, kw_only=True, tag="GapDetected.v1"):
    """Bars are missing between ``start`` and ``end`` (``md.gap.<symbol>``); queued for repair."""

    symbol: str
    interval: str
    start: int
    end: int
    missing: int


# --- technical analysis (ind.*, sig.*) ---------------------------------------------------


class IndicatorUpdated(Event, frozen=True, kw_only=True, tag="IndicatorUpdated.v1"):
    """New values of one indicator instance for a bar
    (``ind.<indicator>.<symbol>.<interval>``); NaN while the indicator warms up."""

    symbol: str
    interval: str
    ts: int
    """Open time of the bar the values belong to (UTC ns)."""
    indicator: str
    """The instance key, e.g. ``rsi_14`` or ``macd_12_26_9``."""
    values: dict[str, float]
    """Output name → value (TA-Lib's names; ``value`` for a single output), e.g.
    ``{"macd": …, "macdsignal": …, "macdhist": …}``."""
    forming: bool = False
    """True for a preview on a bar that has not closed (nothing was committed)."""


class SignalRaised(Event, frozen=True, kw_only=True, tag="SignalRaised.v1"):
    """A signal rule fired on a closed bar (``sig.<rule>.<symbol>``); at most one per
    rule, kind and bar, also across replays and restarts."""

    symbol: str
    interval: str
    ts: int
    """Open time of the bar that made the rule fire (UTC ns)."""
    rule: str
    """``rsi_cross``, ``macd_cross``, ``macd_divergence``, ``bollinger_breakout``,
    ``ma_cross``, or a plugin's name."""
    kind: str
    """What happened, e.g. ``oversold_entry``, ``bullish_cross``, ``golden_cross``."""
    indicator: str
    strength: float
    """0 … 1: how strong the move was, by the rule's documented measure."""
    details: dict[str, float | str] = {}
    simulated: bool = False
    """True when the bar that raised it came from the synthetic market."""


# --- alerts (alert.*) --------------------------------------------------------------------

AlertSeverity = Literal["info", "warning", "critical"]


class AlertRaised(Event, frozen=True, kw_only=True, tag="AlertRaised.v1"):
    """Something an operator should see now (``alert.<severity>``): a disabled plugin
    or rule, a risk breach, a stalled algorithm. Stored in ``alerts`` by its consumer."""

    severity: AlertSeverity
    kind: str
    """Reason code, ``<area>.<what>``, e.g. ``analysis.indicator_disabled``."""
    message: str
    """What happened and what to do, for an operator."""
    symbol: str = ""
    account: str = ""
    algo_id: str = ""
    details: dict[str, str] = {}


# --- orders and the venue (exec.*, venue.*) ----------------------------------------------
#
# The venue's execution reports (OrderAccepted … OrderReplaced) travel twice with the same
# schema: point to point to the order's session on the order-entry channel
# (engine/venue/protocol.py), and on the bus for everyone else. Prices and quantities
# are exact decimals (msgpack strings on the wire).

Side = Literal["buy", "sell"]
OrderType = Literal["limit", "market"]
TimeInForce = Literal["day", "gtc", "ioc", "fok"]
Liquidity = Literal["maker", "taker"]
RequestKind = Literal["new", "cancel", "replace"]


class OrderAccepted(Event, frozen=True, kw_only=True, tag="OrderAccepted.v1"):
    """The venue took a new order (``venue.order.<account>``); fills may follow at once."""

    venue: str
    account: str
    client_order_id: str
    venue_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    tif: TimeInForce
    qty: Decimal
    price: Decimal | None = None
    """Limit price; None for a market order."""


class OrderRejected(Event, frozen=True, kw_only=True, tag="OrderRejected.v1"):
    """The venue (or the risk gate) refused a request; nothing changed
    (``venue.order.<account>``)."""

    venue: str
    account: str
    client_order_id: str
    """The id of the refused request (for a cancel or replace: that request's id)."""
    symbol: str
    request: RequestKind = "new"
    orig_client_order_id: str = ""
    """For a cancel or replace: the order it was aimed at."""
    reason: str
    """Reason code an operator can read, e.g. ``price_off_tick``, ``unknown_order``,
    ``duplicate_client_order_id``, ``halted``."""
    message: str = ""


class OrderFilled(Event, frozen=True, kw_only=True, tag="OrderFilled.v1"):
    """(Part of) an order traded (``venue.order.<account>``)."""

    venue: str
    account: str
    client_order_id: str
    venue_order_id: str
    symbol: str
    side: Side
    exec_id: str
    """Unique per venue: a fill is applied once, whatever replays it."""
    trade_id: str
    """The print this fill belongs to (both sides of a trade share it)."""
    qty: Decimal
    price: Decimal
    liquidity: Liquidity
    leaves_qty: Decimal
    """Still working after this fill (0 when the order is done)."""
    cum_qty: Decimal


class OrderCancelled(Event, frozen=True, kw_only=True, tag="OrderCancelled.v1"):
    """An order left the book without trading its rest (``venue.order.<account>``)."""

    venue: str
    account: str
    client_order_id: str
    venue_order_id: str
    symbol: str
    cancelled_qty: Decimal
    cum_qty: Decimal
    reason: str
    """``requested``, ``ioc_remainder``, ``fok_unfilled``, ``self_match``,
    ``no_liquidity``, ``halted``, ``expired``."""
    cancel_client_order_id: str = ""
    """The id of the cancel request, when one asked for it."""


class OrderReplaced(Event, frozen=True, kw_only=True, tag="OrderReplaced.v1"):
    """An order's quantity or price changed (``venue.order.<account>``)."""

    venue: str
    account: str
    client_order_id: str
    """The replace request's id: the order's id from now on."""
    orig_client_order_id: str
    venue_order_id: str
    symbol: str
    qty: Decimal
    price: Decimal | None
    leaves_qty: Decimal
    priority_kept: bool
    """True when only the quantity went down (time priority kept)."""


class TradePrinted(Event, frozen=True, kw_only=True, tag="TradePrinted.v1"):
    """A trade on the simulated venue (``venue.trade.<symbol>``)."""

    venue: str
    symbol: str
    trade_id: str
    price: Decimal
    qty: Decimal
    aggressor: Side


BookLevel = tuple[Decimal, Decimal]
"""``(price, quantity)``; quantity 0 in a delta means the level is gone."""


class BookUpdated(Event, frozen=True, kw_only=True, tag="BookUpdated.v1"):
    """Aggregated depth (L2) of one book (``venue.book.<symbol>``): a snapshot (every
    level) or the levels that changed since the previous update of this book."""

    venue: str
    symbol: str
    book_seq: int
    """Per book, +1 per update; a consumer that sees a jump asks for a snapshot."""
    snapshot: bool
    bids: list[BookLevel] = []
    asks: list[BookLevel] = []


class PositionChanged(Event, frozen=True, kw_only=True, tag="PositionChanged.v1"):
    """An account's position in a symbol after a fill (``exec.position.<account>``)."""

    account: str
    symbol: str
    qty: Decimal
    """Net quantity, negative when short."""
    avg_price: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    mark_price: Decimal | None = None
    exec_id: str = ""
    """The fill that moved it."""


# --- risk (risk.*) -------------------------------------------------------------------------

RiskState = Literal["ACTIVE", "REDUCING", "HALTED"]
RiskScope = Literal["global", "account", "algo", "symbol"]


class OrderDenied(Event, frozen=True, kw_only=True, tag="OrderDenied.v1"):
    """The pre-trade risk gate refused an order; it never reached the venue
    (``risk.denied.<account>``). Reason codes: :class:`engine.risk.decision.Reason`."""

    account: str
    symbol: str
    client_order_id: str
    side: Side
    qty: Decimal
    price: Decimal | None = None
    """Limit price; None for a market order."""
    reason: str
    """Reason code, e.g. ``order_notional``, ``price_collar``, ``halted``, ``wash_trade``."""
    limit: str = ""
    """The limit that was hit: a risk-profile field (``max_order_notional``), a compliance
    rule's name or a state (``kill_switch``)."""
    limit_value: Decimal | None = None
    """Its configured value (None when it has none)."""
    observed: Decimal | None = None
    """The value the order would have made of it."""
    algo_id: str = ""
    message: str = ""


class RiskStateChanged(Event, frozen=True, kw_only=True, tag="RiskStateChanged.v1"):
    """Trading state of a scope changed (``risk.state``): the kill switch (``global``,
    ``account``, ``algo``, ``symbol``), an account's daily loss, a runaway algorithm."""

    scope: RiskScope
    key: str = ""
    """The account, algo id or symbol ("" for ``global``)."""
    state: RiskState
    reason: str
    """``kill_switch``, ``resumed``, ``daily_loss``, ``runaway``, ``day_start``."""
    actor: str = ""
    """Who: a username, ``automation:<client>``, or ``risk`` for the gate itself."""
    message: str = ""
    """The operator's reason or what the gate saw, in words."""


# --- execution algorithms (exec.algo.*, exec.trigger.*) -----------------------------------

AlgoState = Literal["pending", "running", "paused", "completed", "cancelled", "failed"]


class AlgoStateChanged(Event, frozen=True, kw_only=True, tag="AlgoStateChanged.v1"):
    """A parent order changed state (``exec.algo.<algo_id>``): pending → running ⇄
    paused → completed | cancelled | failed."""

    algo_id: str
    algo_type: str
    account: str
    symbol: str
    side: Side
    state: AlgoState
    reason: str = ""
    """Why (``filled``, ``end_time``, ``risk: halted …``, the operator's reason …)."""
    actor: str = ""
    """Who: a username, ``automation``, ``strategy:<name>`` or ``engine``."""


class AlgoProgress(Event, frozen=True, kw_only=True, tag="AlgoProgress.v1"):
    """How a parent order is doing (``exec.algo.<algo_id>``), after fills and every
    ``algos.progress_interval_s`` while it runs."""

    algo_id: str
    algo_type: str
    symbol: str
    side: Side
    state: AlgoState
    qty: Decimal
    filled: Decimal
    remaining: Decimal
    working: Decimal
    """Quantity of its working children."""
    avg_price: Decimal | None = None
    expected: Decimal | None = None
    """What its schedule expects filled by now (None: no time schedule)."""
    schedule_deviation: float | None = None
    """(filled - expected) / qty: negative is behind schedule."""
    market_volume: Decimal = Decimal(0)
    """Traded on the venue since it started (its own fills included)."""
    participation: float | None = None
    """filled / market_volume."""
    arrival_price: Decimal | None = None
    shortfall_bps: float | None = None
    """Implementation shortfall vs the arrival price (positive: cost)."""
    children: int = 0


class AlgorithmTriggered(Event, frozen=True, kw_only=True, tag="AlgorithmTriggered.v1"):
    """A custom strategy started an algorithm on a signal (``exec.trigger.<strategy>``)."""

    strategy: str
    signal_rule: str
    symbol: str
    algo_id: str
    algo_type: str
    signal_event_id: str = ""


#: Every event type, in one place; the decoder accepts exactly these.
EVENT_TYPES: tuple[type[Event], ...] = (
    Heartbeat,
    ProcessStateChanged,
    LogLevelChanged,
    Probe,
    BarClosed,
    QuoteUpdated,
    TradeReported,
    FeedStateChanged,
    BackfillCompleted,
    GapDetected,
    IndicatorUpdated,
    SignalRaised,
    AlertRaised,
    OrderAccepted,
    OrderRejected,
    OrderFilled,
    OrderCancelled,
    OrderReplaced,
    TradePrinted,
    BookUpdated,
    PositionChanged,
    OrderDenied,
    RiskStateChanged,
    AlgoStateChanged,
    AlgoProgress,
    AlgorithmTriggered,
)

AnyEvent = Union[EVENT_TYPES]  # type: ignore[valid-type]  # noqa: UP007

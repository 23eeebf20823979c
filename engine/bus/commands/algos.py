"""Execution-algorithm commands, served by the ``execution`` process.

A parent order (``StartAlgo``) is worked by an algorithm (``twap``, ``vwap``,
``iceberg``, ``sniper``, ``pov`` or a plugin) through child orders that pass the same
risk gate as manual orders. Parameters travel as a JSON object (see ``ListAlgoKinds``
for each kind's schema). Every mutating command is idempotent by ``command_id``.
Custom strategies start an algorithm by themselves when a signal fires.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, ClassVar

import msgspec

from engine.bus.commands.base import Command, Result, Role
from engine.bus.events import AlgoState, Side

Count = Annotated[int, msgspec.Meta(ge=1, le=10_000)]
Json = Annotated[str, msgspec.Meta(max_length=65_536)]
Reason = Annotated[str, msgspec.Meta(max_length=500)]
Name = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


# --- results -----------------------------------------------------------------------------


class AlgoView(Result, frozen=True, kw_only=True, tag="AlgoView.v1"):
    """A parent order and where it stands."""

    algo_id: str
    algo_type: str
    account: str
    symbol: str
    side: Side
    qty: Decimal
    state: AlgoState
    reason: str = ""
    params: str
    """Its parameters as JSON (as validated and prepared, with modifications)."""
    filled: Decimal
    avg_price: Decimal | None = None
    working: Decimal
    children: int
    expected: Decimal | None = None
    """What its schedule expects filled by now (None: no time schedule)."""
    ts_created: int
    ts_started: int | None = None
    ts_finished: int | None = None
    strategy: str = ""
    """The custom strategy that started it ("" for the operator)."""


class ChildRow(msgspec.Struct, frozen=True, kw_only=True):
    client_order_id: str
    slice_index: int
    qty: Decimal
    price: Decimal | None
    status: str
    """The child order's status in the order ledger."""
    filled_qty: Decimal
    avg_price: Decimal | None
    ts_created: int


class AlgoDetail(Result, frozen=True, kw_only=True, tag="AlgoDetail.v1"):
    algo: AlgoView
    children: list[ChildRow]
    """Oldest first."""


class AlgoList(Result, frozen=True, kw_only=True, tag="AlgoList.v1"):
    algos: list[AlgoView]
    """Newest first."""


class AlgoTca(Result, frozen=True, kw_only=True, tag="AlgoTca.v1"):
    """Transaction cost analysis of one parent (live while it runs, final after)."""

    algo_id: str
    final: bool
    """True once the parent ended (completed, cancelled or failed)."""
    side: Side
    qty: Decimal
    filled: Decimal
    fill_rate: float
    """filled / qty."""
    avg_price: Decimal | None
    arrival_price: Decimal | None
    """Mid of the venue's book when it started."""
    shortfall_bps: float | None
    """Implementation shortfall vs arrival, bps of arrival (positive: cost)."""
    interval_vwap: Decimal | None
    """VWAP of the venue's trades while it ran."""
    slippage_vs_vwap_bps: float | None
    """(avg - interval VWAP) / interval VWAP in bps, signed so positive is a cost."""
    market_volume: Decimal
    participation: float | None
    """filled / market volume while it ran."""
    duration_s: float
    children: int


class AlgoKind(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    version: int
    description: str
    params_schema: str
    """JSON schema of its parameters."""


class AlgoKinds(Result, frozen=True, kw_only=True, tag="AlgoKinds.v1"):
    kinds: list[AlgoKind]


# --- commands ----------------------------------------------------------------------------


class StartAlgo(Command, frozen=True, kw_only=True, tag="StartAlgo.v1"):
    """Start working a parent order; it is checked by the risk gate first (its parent
    limits), then runs (or waits as ``pending`` until ``start_at_ns``)."""

    algo_type: str
    account: str
    symbol: str
    side: Side
    qty: Decimal
    params: Json = "{}"
    start_at_ns: int | None = None
    """Start later (UTC ns); None: now."""

    target: ClassVar[str] = "execution"
    mutating: ClassVar[bool] = True
    min_role: ClassVar[Role] = "operator"


class PauseAlgo(Command, frozen=True, kw_only=True, tag="PauseAlgo.v1"):
    """Stop sending children and cancel the working ones until resumed."""

    algo_id: str
    reason: Reason = ""

    target: ClassVar[str] = "execution"
    mutating: ClassVar[bool] = True
    min_role: ClassVar[Role] = "operator"


class ResumeAlgo(Command, frozen=True, kw_only=True, tag="ResumeAlgo.v1"):
    algo_id: str

    target: ClassVar[str] = "execution"
    mutating: ClassVar[bool] = True
    min_role: ClassVar[Role] = "operator"


class ModifyAlgo(Command, frozen=True, kw_only=True, tag="ModifyAlgo.v1"):
    """Change a live parent: its quantity, and parameters by name (limit price, end
    time, rate …); validated as a whole; working children are replaced."""

    algo_id: str
    qty: Decimal | None = None
    params: Json = "{}"
    """Parameters to change, as a JSON object (``null`` clears an optional one)."""

    target: ClassVar[str] = "execution"
    mutating: ClassVar[bool] = True
    min_role: ClassVar[Role] = "operator"


class CancelAlgo(Command, frozen=True, kw_only=True, tag="CancelAlgo.v1"):
    """Stop the parent for good: its working children are cancelled."""

    algo_id: str
    reason: Reason = ""

    target: ClassVar[str] = "execution"
    mutating: ClassVar[bool] = True
    min_role: ClassVar[Role] = "operator"


class ListAlgos(Command, frozen=True, kw_only=True, tag="ListAlgos.v1"):
    state: AlgoState | None = None
    active_only: bool = False
    """Only pending, running and paused ones."""
    limit: Count = 50

    target: ClassVar[str] = "execution"


class ShowAlgo(Command, frozen=True, kw_only=True, tag="ShowAlgo.v1"):
    algo_id: str

    target: ClassVar[str] = "execution"


class GetAlgoTca(Command, frozen=True, kw_only=True, tag="GetAlgoTca.v1"):
    algo_id: str

    target: ClassVar[str] = "execution"


class ListAlgoKinds(Command, frozen=True, kw_only=True, tag="ListAlgoKinds.v1"):
    target: ClassVar[str] = "execution"


# --- custom strategies ---------------------------------------------------------------------


class StrategyView(Result, frozen=True, kw_only=True, tag="StrategyView.v1"):
    """A custom strategy: when ``signal_rule`` fires (on ``symbol``, or any symbol) and
    ``condition`` holds, start ``algo_type`` with ``algo_params`` for ``qty``."""

    name: str
    signal_rule: str
    symbol: str | None
    condition: str
    """JSON object: ``kind`` (the signal's kind), ``min_strength``, and an indicator
    test ``{"indicator": "rsi_14", "below": 30}`` / ``"above"`` (see the docs)."""
    algo_type: str
    algo_params: str
    account: str
    side: Side
    qty: Decimal
    cooldown_s: int
    max_triggers_per_day: int
    enabled: bool
    triggers_today: int = 0
    last_triggered_ns: int | None = None


class StrategyList(Result, frozen=True, kw_only=True, tag="StrategyList.v1"):
    strategies: list[StrategyView]


class SetStrategy(Command, frozen=True, kw_only=True, tag="SetStrategy.v1"):
    """Create or replace a custom strategy (by name); validated (the algorithm and its
    parameters too), stored and audited."""

    name: Name
    signal_rule: str
    symbol: str | None = None
    """None: every symbol the rule fires on."""
    condition: Json = "{}"
    algo_type: str
    algo_params: Json = "{}"
    account: str
    side: Side
    qty: Decimal
    cooldown_s: Annotated[int, msgspec.Meta(ge=0, le=86_400 * 7)] = 0
    max_triggers_per_day: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1
    enabled: bool = True

    target: ClassVar[str] = "execution"
    mutating: ClassVar[bool] = True
    min_role: ClassVar[Role] = "operator"


class EnableStrategy(Command, frozen=True, kw_only=True, tag="EnableStrategy.v1"):
    name: str
    enabled: bool

    target: ClassVar[str] = "execution"
    mutating: ClassVar[bool] = True
    min_role: ClassVar[Role] = "operator"


class DeleteStrategy(Command, frozen=True, kw_only=True, tag="DeleteStrategy.v1"):
    name: str

    target: ClassVar[str] = "execution"
    mutating: ClassVar[bool] = True
    min_role: ClassVar[Role] = "operator"


class ListStrategies(Command, frozen=True, kw_only=True, tag="ListStrategies.v1"):
    target: ClassVar[str] = "execution"


RESULTS = (AlgoView, AlgoDetail, AlgoList, AlgoTca, AlgoKinds, StrategyView, StrategyList)
COMMANDS = (
    StartAlgo,
    PauseAlgo,
    ResumeAlgo,
    ModifyAlgo,
    CancelAlgo,
    ListAlgos,
    ShowAlgo,
    GetAlgoTca,
    ListAlgoKinds,
    SetStrategy,
    EnableStrategy,
    DeleteStrategy,
    ListStrategies,
)

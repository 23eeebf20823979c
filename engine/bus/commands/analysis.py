"""Technical-analysis commands, served by the ``analysis`` process."""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec

from engine.bus.commands.base import Command, Result, Role
from engine.bus.commands.market import Symbol

Count = Annotated[int, msgspec.Meta(ge=1, le=10_000)]


class IndicatorSeries(msgspec.Struct, frozen=True, kw_only=True):
    """One indicator instance over the latest bars, column-wise, oldest first."""

    indicator: str
    ts: list[int]
    values: dict[str, list[float]]
    """Output name → values aligned with ``ts`` (NaN during warm-up)."""


class IndicatorSnapshot(Result, frozen=True, kw_only=True, tag="IndicatorSnapshot.v1"):
    """The latest values of every indicator of a symbol and interval, for a late joiner:
    apply ``IndicatorUpdated`` events with a bar time after ``as_of`` on top of it."""

    symbol: str
    interval: str
    as_of: int | None
    """Open time of the newest bar included (None: no bar yet)."""
    series: list[IndicatorSeries]


class SignalRow(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    interval: str
    ts: int
    rule: str
    kind: str
    indicator: str
    strength: float
    details: dict[str, float | str] = {}
    simulated: bool = False
    """Raised on bars of the synthetic market."""


class SignalList(Result, frozen=True, kw_only=True, tag="SignalList.v1"):
    signals: list[SignalRow]
    """Newest first."""


class ParamInfo(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    type: str
    default: float | int | str | bool | None
    description: str = ""


class CatalogEntry(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    description: str
    params: list[ParamInfo]
    outputs: list[str] = []
    """Indicators: output names. Rules: the kinds of signal they raise."""
    source: str = "builtin"
    """``builtin`` or the plugin module that registered it."""


class AnalysisCatalog(Result, frozen=True, kw_only=True, tag="AnalysisCatalog.v1"):
    indicators: list[CatalogEntry]
    rules: list[CatalogEntry]
    disabled: dict[str, str] = {}
    """Instance or rule key → why it is disabled (a plugin failed, an operator …)."""


class RuleToggled(Result, frozen=True, kw_only=True, tag="RuleToggled.v1"):
    symbol: str
    rule: str
    enabled: bool


class GetIndicators(Command, frozen=True, kw_only=True, tag="GetIndicators.v1"):
    """Latest indicator values of a symbol (snapshot for a late joiner)."""

    symbol: Symbol
    interval: str = "1m"
    last: Count = 50

    target: ClassVar[str] = "analysis"


class GetSignals(Command, frozen=True, kw_only=True, tag="GetSignals.v1"):
    """Stored signals, newest first; all symbols when ``symbol`` is None."""

    symbol: Symbol | None = None
    interval: str | None = None
    since: int | None = None
    limit: Count = 100

    target: ClassVar[str] = "analysis"


class ListAnalysis(Command, frozen=True, kw_only=True, tag="ListAnalysis.v1"):
    """Available indicators and signal rules with their parameters."""

    target: ClassVar[str] = "analysis"


class SetRuleEnabled(Command, frozen=True, kw_only=True, tag="SetRuleEnabled.v1"):
    """Enable or disable a signal rule for one symbol."""

    symbol: Symbol
    rule: str
    enabled: bool

    target: ClassVar[str] = "analysis"
    mutating: ClassVar[bool] = True
    min_role: ClassVar[Role] = "operator"


RESULTS = (IndicatorSnapshot, SignalList, AnalysisCatalog, RuleToggled)
COMMANDS = (GetIndicators, GetSignals, ListAnalysis, SetRuleEnabled)

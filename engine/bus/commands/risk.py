"""Risk commands (kill switch, status, alerts, profiles), served by the ``execution``
process, where the pre-trade gate runs (:mod:`engine.risk`).

Kill switch: ``HaltTrading`` on ``global``, ``account``, ``symbol`` or ``algo`` cancels
the scope's working orders at once and denies its risk-increasing orders until
``ResumeTrading`` — which needs the admin role and a reason, and is audited.
``GetRiskStatus`` is the operator's snapshot (``qsuite ctl risk status``): trading states,
P&L, usage of every limit, halts, open alerts.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, ClassVar

import msgspec

from engine.bus.commands.base import Command, Result, Role
from engine.bus.events import AlertSeverity, RiskScope, RiskState

Count = Annotated[int, msgspec.Meta(ge=1, le=10_000)]
Reason = Annotated[str, msgspec.Meta(max_length=500)]


# --- status ------------------------------------------------------------------------------


class LimitUsage(msgspec.Struct, frozen=True, kw_only=True):
    """How much of one limit is used now (per-symbol and per-algorithm limits: the
    most used symbol or algorithm, named in ``key``)."""

    limit: str
    limit_value: Decimal
    observed: Decimal
    usage: float
    """observed / limit_value (1.0 = at the limit)."""
    key: str = ""


class AlertView(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    severity: AlertSeverity
    message: str
    count: int
    first_ns: int
    last_ns: int
    symbol: str = ""
    algo_id: str = ""


class HaltView(msgspec.Struct, frozen=True, kw_only=True):
    scope: RiskScope
    key: str
    actor: str
    reason: str
    since_ns: int


class AccountStatus(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    state: RiskState
    """HALTED when the account (or everything) is halted or its daily loss halted it."""
    state_reason: str
    """``kill_switch``, ``daily_loss`` or ""."""
    profile_version: int
    """0: no profile (every order denied)."""
    day_pnl: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    gross_notional: Decimal
    working_orders: int
    limits: list[LimitUsage]
    alerts: list[AlertView]


class RuleView(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    kind: str
    version: int
    enabled: bool


class RiskStatus(Result, frozen=True, kw_only=True, tag="RiskStatus.v1"):
    """The gate's snapshot: states, usage of every limit, open alerts, halts."""

    ts: int
    halts: list[HaltView]
    """Kill-switch halts in force."""
    disabled_algos: list[HaltView]
    """Algorithms disabled by the runaway check (until a human resumes them)."""
    accounts: list[AccountStatus]
    rules: list[RuleView]
    counters: dict[str, int]
    """``checks``, ``allowed``, ``denied``, ``denied.<reason>``, ``compliance_errors``,
    ``bad_updates``."""
    unacknowledged: int = 0
    """Stored alerts nobody acknowledged yet (``qsuite ctl risk alerts``)."""


# --- kill switch -------------------------------------------------------------------------


class RiskHaltSet(Result, frozen=True, kw_only=True, tag="RiskHaltSet.v1"):
    scope: RiskScope
    key: str
    state: RiskState
    changed: bool
    """False when the scope already was in that state."""
    cancels: list[str]
    """Client order ids of the working orders whose cancel was sent."""
    message: str


class HaltTrading(Command, frozen=True, kw_only=True, tag="HaltTrading.v1"):
    """Kill switch: cancel the scope's working orders and deny its risk-increasing
    orders (cancels and risk-reducing orders still pass) until resumed."""

    scope: RiskScope = "global"
    key: str = ""
    """The account, symbol or algorithm id ("" for ``global``)."""
    reason: Reason

    target: ClassVar[str] = "execution"
    mutating: ClassVar[bool] = True
    min_role: ClassVar[Role] = "operator"


class ResumeTrading(Command, frozen=True, kw_only=True, tag="ResumeTrading.v1"):
    """Lift a halt (for an algorithm also a runaway disable, for an account also its
    daily-loss state). Needs the admin role and a reason; audited."""

    scope: RiskScope = "global"
    key: str = ""
    reason: Reason

    target: ClassVar[str] = "execution"
    mutating: ClassVar[bool] = True
    min_role: ClassVar[Role] = "admin"


class GetRiskStatus(Command, frozen=True, kw_only=True, tag="GetRiskStatus.v1"):
    account: str | None = None
    """Only this account (None: all)."""

    target: ClassVar[str] = "execution"


# --- alerts ------------------------------------------------------------------------------


class AlertRow(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    severity: AlertSeverity
    kind: str
    message: str
    account: str = ""
    symbol: str = ""
    algo_id: str = ""
    details: dict[str, str] = {}
    ts: int
    """When it was raised, UTC ns."""
    acknowledged_by: str = ""
    acknowledged_ts: int | None = None
    """When it was acknowledged, UTC ns (None: open)."""


class AlertList(Result, frozen=True, kw_only=True, tag="AlertList.v1"):
    alerts: list[AlertRow]
    """Newest first."""


class AlertAcknowledged(Result, frozen=True, kw_only=True, tag="AlertAcknowledged.v1"):
    alert: AlertRow
    already: bool
    """It was acknowledged before (by ``alert.acknowledged_by``)."""


class ListAlerts(Command, frozen=True, kw_only=True, tag="ListAlerts.v1"):
    open_only: bool = True
    """Only the unacknowledged ones."""
    account: str | None = None
    limit: Count = 100

    target: ClassVar[str] = "execution"


class AcknowledgeAlert(Command, frozen=True, kw_only=True, tag="AcknowledgeAlert.v1"):
    """Mark a stored alert as seen (who and when are kept)."""

    alert_id: Annotated[int, msgspec.Meta(ge=1)]

    target: ClassVar[str] = "execution"
    mutating: ClassVar[bool] = True
    min_role: ClassVar[Role] = "operator"


# --- profiles ----------------------------------------------------------------------------


class RiskProfileView(Result, frozen=True, kw_only=True, tag="RiskProfileView.v1"):
    account: str
    version: int
    """0: the account has no profile (its orders are denied)."""
    limits: dict[str, str | int | float | None]
    """Every field of :class:`engine.risk.profile.RiskProfile` (None: no limit)."""


class GetRiskProfile(Command, frozen=True, kw_only=True, tag="GetRiskProfile.v1"):
    account: str

    target: ClassVar[str] = "execution"


class SetRiskProfile(Command, frozen=True, kw_only=True, tag="SetRiskProfile.v1"):
    """Change limits of an account's profile (a new profile starts from QSuite's
    defaults). Validated as a whole, versioned and audited; the gate uses it at once."""

    account: str
    changes: dict[str, str | None]
    """Field → new value as text (``None`` / ``"none"``: no limit)."""
    expected_version: int | None = None
    """Refuse the edit unless the stored profile is at this version."""

    target: ClassVar[str] = "execution"
    mutating: ClassVar[bool] = True
    min_role: ClassVar[Role] = "admin"


# --- compliance rules --------------------------------------------------------------------


class RuleRow(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    kind: str
    version: int
    enabled: bool
    params: str
    """The rule's parameters as JSON."""


class RuleKind(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    stage: str
    """``pre`` (before the price checks) or ``post`` (after the exposure checks)."""
    reason: str
    """The reason code of its denials."""
    description: str
    params_schema: str
    """JSON schema of its parameters."""


class ComplianceRules(Result, frozen=True, kw_only=True, tag="ComplianceRules.v1"):
    rules: list[RuleRow]
    """Configured rules in check order (enabled or not)."""
    kinds: list[RuleKind]
    """Every rule kind this QSuite knows (built-ins and registered plugins)."""


class ListComplianceRules(Command, frozen=True, kw_only=True, tag="ListComplianceRules.v1"):
    target: ClassVar[str] = "execution"


class SetComplianceRule(Command, frozen=True, kw_only=True, tag="SetComplianceRule.v1"):
    """Add or change a compliance rule (by name); validated, stored and audited; the gate
    uses it at once."""

    name: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    kind: str
    params: str = "{}"
    """Its parameters as a JSON object (see ``ListComplianceRules`` for each schema)."""
    enabled: bool = True

    target: ClassVar[str] = "execution"
    mutating: ClassVar[bool] = True
    min_role: ClassVar[Role] = "admin"


class EnableComplianceRule(Command, frozen=True, kw_only=True, tag="EnableComplianceRule.v1"):
    name: str
    enabled: bool

    target: ClassVar[str] = "execution"
    mutating: ClassVar[bool] = True
    min_role: ClassVar[Role] = "admin"


RESULTS = (
    RiskStatus,
    RiskHaltSet,
    AlertList,
    AlertAcknowledged,
    RiskProfileView,
    ComplianceRules,
)
COMMANDS = (
    HaltTrading,
    ResumeTrading,
    GetRiskStatus,
    ListAlerts,
    AcknowledgeAlert,
    GetRiskProfile,
    SetRiskProfile,
    ListComplianceRules,
    SetComplianceRule,
    EnableComplianceRule,
)

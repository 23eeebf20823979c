"""Every QSuite table, on one :class:`Base` (``Base.metadata`` is what Alembic migrates)."""

from engine.persistence.models.algos import (
    ALGO_STATES,
    INTENT_STATES,
    AlgoExecution,
    AlgoOrder,
    CustomStrategy,
)
from engine.persistence.models.analysis import IndicatorValue, Signal
from engine.persistence.models.analytics import PerformanceSnapshot
from engine.persistence.models.base import NAMING_CONVENTION, Base, UtcDateTime
from engine.persistence.models.market import (
    INGESTION_STATUSES,
    Bar,
    BarFlag,
    Exchange,
    Fundamental,
    Industry,
    IngestionRun,
    Instrument,
    SimulatedInstrument,
)
from engine.persistence.models.risk import (
    ALERT_SEVERITIES,
    COMPLIANCE_KINDS,
    Alert,
    ComplianceRule,
    RiskProfile,
)
from engine.persistence.models.system import AUDIT_RESULTS, ROLES, AuditEntry, User
from engine.persistence.models.trading import (
    LIQUIDITY,
    ORDER_TYPES,
    SIDES,
    TIMES_IN_FORCE,
    Fill,
    Order,
    Position,
)
from engine.persistence.models.venue import (
    VENUE_ORDER_STATUSES,
    VenueClientId,
    VenueExecution,
    VenueOrder,
)

__all__ = [
    "ALERT_SEVERITIES",
    "ALGO_STATES",
    "AUDIT_RESULTS",
    "COMPLIANCE_KINDS",
    "INGESTION_STATUSES",
    "INTENT_STATES",
    "LIQUIDITY",
    "NAMING_CONVENTION",
    "ORDER_TYPES",
    "ROLES",
    "SIDES",
    "TIMES_IN_FORCE",
    "VENUE_ORDER_STATUSES",
    "Alert",
    "AlgoExecution",
    "AlgoOrder",
    "AuditEntry",
    "Bar",
    "BarFlag",
    "Base",
    "ComplianceRule",
    "CustomStrategy",
    "Exchange",
    "Fill",
    "Fundamental",
    "IndicatorValue",
    "Industry",
    "IngestionRun",
    "Instrument",
    "Order",
    "PerformanceSnapshot",
    "Position",
    "RiskProfile",
    "Signal",
    "SimulatedInstrument",
    "User",
    "UtcDateTime",
    "VenueClientId",
    "VenueExecution",
    "VenueOrder",
]

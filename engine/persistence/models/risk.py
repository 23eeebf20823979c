"""Risk and compliance: risk profiles, compliance rules and alerts."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from engine.persistence.models.base import (
    Account,
    Actor,
    Base,
    BigPK,
    IntPK,
    Name,
    Symbol,
    one_of,
    utcnow,
)

#: The built-in compliance rule kinds. Not a constraint: ``compliance_rules.kind`` also
#: holds plugin kinds, and the compliance registry (``engine.risk.registry``) decides
#: which kinds are valid.
COMPLIANCE_KINDS = ("restricted_list", "wash_trade", "short_sale", "trading_window")
#: Characters a stored rule kind may use (the registry is stricter: ``[a-z][a-z0-9_]*``).
KIND_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789_.-"
ALERT_SEVERITIES = ("info", "warning", "critical")


class RiskProfile(Base):
    """Pre-trade limits of one account. ``None`` means "no limit" for that check.

    ``version`` counts edits (and is the optimistic lock), so every decision can cite
    the profile version it was checked against.
    """

    __tablename__ = "risk_profiles"

    id: Mapped[IntPK]
    account: Mapped[Account] = mapped_column(unique=True)
    max_order_qty: Mapped[Decimal | None]
    max_order_notional: Mapped[Decimal | None]
    max_position_qty: Mapped[Decimal | None]
    """Largest absolute net position per symbol."""
    max_position_notional: Mapped[Decimal | None]
    daily_loss_limit: Mapped[Decimal | None]
    """Positive amount; trading halts for the account when the day's P&L falls below its
    negative."""
    max_participation: Mapped[float | None]
    """Largest share of market volume an algorithm may take (0.1 is 10 %)."""
    price_collar_pct: Mapped[float | None]
    """Fat-finger check: largest distance of a limit price from the reference price, in %."""
    max_orders_per_s: Mapped[float | None]
    """Order-rate throttle."""
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Limits of custom checks, keyed by check name."""
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[Actor] = mapped_column(default="", server_default="")

    __mapper_args__ = {"version_id_col": version}


class ComplianceRule(Base):
    """A compliance rule, e.g. ``restricted_list`` with ``{"symbols": ["XYZ"]}``.

    ``kind`` is any registered rule kind, built-in or plugin; the CHECK only keeps out
    what no registry accepts (empty, longer than 64, other characters), portably:
    trimming every allowed character from both ends must leave nothing (``trim(x, y)``
    means the same on SQLite and PostgreSQL).
    """

    __tablename__ = "compliance_rules"
    __table_args__ = (
        CheckConstraint(
            f"length(kind) BETWEEN 1 AND 64 AND trim(kind, '{KIND_CHARACTERS}') = ''",
            name="kind",
        ),
    )

    id: Mapped[IntPK]
    name: Mapped[Name] = mapped_column(unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Alert(Base):
    """Something an operator should see: a risk breach, a rejected order, a failure."""

    __tablename__ = "alerts"
    __table_args__ = (one_of("severity", ALERT_SEVERITIES),)

    id: Mapped[BigPK]
    severity: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(64))
    """Reason code, e.g. ``risk.max_order_notional`` or ``feed.yahoo_down``."""
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None]
    """The alert's ``details`` (string values); NULL when it had none, and on alerts
    stored before migration 0004 (whose details were appended to ``message``)."""
    account: Mapped[Account | None]
    symbol: Mapped[Symbol | None]
    algo_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    acknowledged_by: Mapped[Actor | None]
    acknowledged_at: Mapped[datetime | None]

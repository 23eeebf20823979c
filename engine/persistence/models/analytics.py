"""Analytics: snapshots of the live account's performance, taken on a schedule.

One writer: the scheduler process's ``analytics_snapshot`` job
(:mod:`engine.analytics.snapshots`). Money is ``Decimal`` (``Numeric(28, 10)``), times
UTC ns from the scheduler's clock.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import CheckConstraint, Index
from sqlalchemy.orm import Mapped

from engine.persistence.models.base import Account, Base, BigPK, Nanos


class PerformanceSnapshot(Base):
    """An account's P&L and exposure at one moment, valued at the marks of the moment.

    ``total_pnl`` is ``realized_pnl + unrealized_pnl`` since the account's first fill;
    positions without a mark add nothing to unrealized P&L or exposure and are counted
    in ``marks_missing``. One row per ``(account, ts)``: a snapshot is written once.
    """

    __tablename__ = "performance_snapshots"
    __table_args__ = (
        Index(None, "account", "ts", unique=True),
        CheckConstraint("positions >= 0", name="positions_not_negative"),
        CheckConstraint("fills >= 0", name="fills_not_negative"),
        CheckConstraint(
            "marks_missing >= 0 AND marks_missing <= positions", name="marks_missing_in_range"
        ),
        CheckConstraint("gross_exposure >= 0", name="gross_exposure_not_negative"),
    )

    id: Mapped[BigPK]
    ts: Mapped[Nanos]
    """When it was taken, UTC ns."""
    account: Mapped[Account]
    realized_pnl: Mapped[Decimal]
    """Realized since inception, net of fees (the sum over the account's positions)."""
    unrealized_pnl: Mapped[Decimal]
    """Of the open positions at the marks (0 for a position without a mark)."""
    total_pnl: Mapped[Decimal]
    """``realized_pnl + unrealized_pnl``."""
    gross_exposure: Mapped[Decimal]
    """``Σ |qty| * mark`` over the open positions with a mark."""
    net_exposure: Mapped[Decimal]
    """``Σ qty * mark`` over the open positions with a mark (negative: net short)."""
    positions: Mapped[int]
    """Open (non-flat) positions."""
    fills: Mapped[int]
    """Fills of the account so far."""
    marks_missing: Mapped[int]
    """Open positions that had no mark."""

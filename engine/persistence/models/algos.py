"""Execution algorithms: parent orders, their child executions and custom strategies.

The algorithm saga persists an intent row (:class:`AlgoExecution`) with a deterministic
``client_order_id`` *before* it sends a child order, so a restarted engine knows what it
already sent and never sends it twice.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.persistence.models.base import (
    Account,
    Base,
    BigPK,
    CommandId,
    IntPK,
    Name,
    Nanos,
    Symbol,
    one_of,
    utcnow,
)
from engine.persistence.models.trading import SIDES

ALGO_STATES = ("pending", "running", "paused", "completed", "cancelled", "failed")
INTENT_STATES = ("intended", "sent", "acked", "filled", "cancelled", "rejected", "failed")


class AlgoOrder(Base):
    """A parent order worked by an execution algorithm.

    ``version`` is the optimistic lock: an update that lost a race raises
    ``sqlalchemy.orm.exc.StaleDataError`` instead of overwriting newer state.
    """

    __tablename__ = "algo_orders"
    __table_args__ = (
        one_of("side", SIDES),
        one_of("state", ALGO_STATES),
        CheckConstraint("qty > 0", name="qty_positive"),
        CheckConstraint("filled_qty >= 0", name="filled_qty_not_negative"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """The algo id used in topics (``exec.algo.<id>``) and commands."""
    command_id: Mapped[CommandId | None] = mapped_column(unique=True)
    """The ``StartAlgo`` command that created it; a retried command finds this row."""
    algo_type: Mapped[str] = mapped_column(String(32))
    """Registry name: ``twap``, ``vwap``, ``iceberg``, ``sniper``, ``pov`` …"""
    account: Mapped[Account]
    symbol: Mapped[Symbol] = mapped_column(index=True)
    side: Mapped[str] = mapped_column(String(4))
    qty: Mapped[Decimal]
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(
        String(16), default="pending", server_default="pending", index=True
    )
    reason: Mapped[str | None] = mapped_column(String(256))
    """Why it is paused, cancelled or failed."""
    filled_qty: Mapped[Decimal] = mapped_column(default=Decimal(0), server_default="0")
    avg_price: Mapped[Decimal | None]
    arrival_price: Mapped[Decimal | None]
    """Mid of the venue's book when it started running (TCA's benchmark)."""
    progress: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """What the engine keeps across restarts besides the children: market volume and
    notional seen while it ran (``market_volume``, ``market_notional``), as strings."""
    strategy_id: Mapped[int | None] = mapped_column(
        ForeignKey("custom_strategies.id", ondelete="SET NULL")
    )
    """The custom strategy that triggered it, if any."""
    ts_created: Mapped[Nanos]
    ts_started: Mapped[Nanos | None]
    ts_finished: Mapped[Nanos | None]
    ts_updated: Mapped[Nanos]
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    executions: Mapped[list[AlgoExecution]] = relationship(
        back_populates="algo", order_by="(AlgoExecution.slice_index, AlgoExecution.attempt)"
    )

    __mapper_args__ = {"version_id_col": version}


class AlgoExecution(Base):
    """One child order of an algorithm: the intent, then what became of it."""

    __tablename__ = "algo_executions"
    __table_args__ = (
        one_of("intent_state", INTENT_STATES),
        UniqueConstraint("algo_id", "slice_index", "attempt"),
        CheckConstraint("qty > 0", name="qty_positive"),
    )

    id: Mapped[BigPK]
    algo_id: Mapped[str] = mapped_column(ForeignKey("algo_orders.id", ondelete="CASCADE"))
    slice_index: Mapped[int]
    attempt: Mapped[int] = mapped_column(default=0, server_default="0")
    client_order_id: Mapped[str] = mapped_column(String(64), unique=True)
    """``<algo_id>-<slice_index>-<attempt>``: deterministic, so resends deduplicate."""
    intent_state: Mapped[str] = mapped_column(
        String(16), default="intended", server_default="intended"
    )
    qty: Mapped[Decimal]
    price: Mapped[Decimal | None]
    ts_created: Mapped[Nanos]
    ts_updated: Mapped[Nanos]

    algo: Mapped[AlgoOrder] = relationship(back_populates="executions")


class CustomStrategy(Base):
    """An operator rule: when ``signal_rule`` fires (and ``condition`` holds), start an
    ``algo_type`` algorithm with ``algo_params``."""

    __tablename__ = "custom_strategies"
    __table_args__ = (
        CheckConstraint("cooldown_s >= 0", name="cooldown_not_negative"),
        CheckConstraint("max_triggers_per_day > 0", name="max_triggers_positive"),
    )

    id: Mapped[IntPK]
    name: Mapped[Name] = mapped_column(unique=True)
    signal_rule: Mapped[Name]
    symbol: Mapped[Symbol | None]
    """``None`` applies the strategy to every symbol the signal fires for."""
    condition: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Extra predicate on the signal, e.g. ``{"kind": "oversold", "min_strength": 0.5}``."""
    algo_type: Mapped[str] = mapped_column(String(32))
    algo_params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    account: Mapped[Account | None]
    """The account the started algorithm trades for."""
    side: Mapped[str | None] = mapped_column(String(4))
    qty: Mapped[Decimal | None]
    """The parent quantity of each start."""
    last_triggered_ns: Mapped[Nanos | None]
    trigger_day: Mapped[int] = mapped_column(default=0, server_default="0")
    """UTC day number (days since 1970) that ``triggers_today`` counts."""
    triggers_today: Mapped[int] = mapped_column(default=0, server_default="0")
    enabled: Mapped[bool] = mapped_column(default=True, server_default=true())
    cooldown_s: Mapped[int] = mapped_column(default=0, server_default="0")
    max_triggers_per_day: Mapped[int] = mapped_column(default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

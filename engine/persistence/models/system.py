"""Console users and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, false
from sqlalchemy.orm import Mapped, mapped_column

from engine.persistence.models.base import (
    Actor,
    Base,
    BigPK,
    CommandId,
    IntPK,
    Name,
    one_of,
    utcnow,
)

ROLES = ("viewer", "operator", "admin")
AUDIT_RESULTS = ("ok", "denied", "error")


class User(Base):
    """A console user. ``password_hash`` is a self-describing hash string (e.g. scrypt
    with its parameters); the plain password is never stored."""

    __tablename__ = "users"
    __table_args__ = (one_of("role", ROLES),)

    id: Mapped[IntPK]
    username: Mapped[Name] = mapped_column(unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(8))
    disabled: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]


class AuditEntry(Base):
    """One operator or automation action and its outcome (append-only)."""

    __tablename__ = "audit_log"
    __table_args__ = (one_of("result", AUDIT_RESULTS),)

    id: Mapped[BigPK]
    ts: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[Actor] = mapped_column(index=True)
    """Username, or ``automation:<client>`` for the control plane."""
    action: Mapped[Name]
    """Command or UI action, e.g. ``StartAlgo``, ``login``."""
    target: Mapped[str | None] = mapped_column(String(128))
    """What it acted on, e.g. an algo id or a symbol."""
    command_id: Mapped[CommandId | None]
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[str] = mapped_column(String(8))
    detail: Mapped[str | None] = mapped_column(String(512))
    """Why it was denied or failed."""

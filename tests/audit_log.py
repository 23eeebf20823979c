"""The ``audit_log`` table as tests read it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from engine.persistence.models.system import AuditEntry

AuditRow = tuple[str, str, str | None, str, str | None]
"""(actor, action, target, result, detail)."""


def audit_rows(engine: Engine) -> list[AuditRow]:
    """Every entry, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                AuditEntry.actor,
                AuditEntry.action,
                AuditEntry.target,
                AuditEntry.result,
                AuditEntry.detail,
            ).order_by(AuditEntry.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def audit_payloads(engine: Engine) -> list[dict[str, Any]]:
    """The payload of every entry, oldest first."""
    with engine.connect() as conn:
        return list(conn.scalars(select(AuditEntry.payload).order_by(AuditEntry.id)))

"""The ingestion log: one row per run of an ingestion job (backfill, poll, repair …).

A run is opened before any work (status ``running``) and closed with its outcome, so a
run killed half-way stays visible as ``running`` with its start time: the operator sees
it never finished.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine, Table, select, update
from sqlalchemy.orm import Session

from engine.persistence.models import IngestionRun

Status = str  # one of INGESTION_STATUSES
_TABLE: Table = IngestionRun.__table__  # type: ignore[assignment]


def start_run(
    engine: Engine, job: str, source: str, symbols: Sequence[str], interval: str | None
) -> int:
    """Open a run; returns its id."""
    with engine.begin() as conn:
        result = conn.execute(
            _TABLE.insert().returning(_TABLE.c.id),
            {
                "job": job,
                "source": source,
                "symbols": list(symbols),
                "interval": interval,
                "status": "running",
                "rows": 0,
                "started_at": datetime.now(UTC),
            },
        )
        return int(result.scalar_one())


def finish_run(
    engine: Engine, run_id: int, *, status: Status, rows: int, error: str | None = None
) -> None:
    """Close a run with its outcome (``ok``, ``partial``, ``failed`` or ``skipped``)."""
    table = _TABLE
    with engine.begin() as conn:
        started = conn.execute(select(table.c.started_at).where(table.c.id == run_id)).scalar_one()
        now = datetime.now(UTC)
        if started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        conn.execute(
            update(table)
            .where(table.c.id == run_id)
            .values(
                status=status,
                rows=rows,
                error=(error[:2000] if error else None),
                finished_at=now,
                duration_s=(now - started).total_seconds(),
            )
        )


def recent_runs(engine: Engine, job: str | None = None, limit: int = 50) -> list[IngestionRun]:
    """The latest runs, newest first (detached objects, safe to read after return)."""
    query = select(IngestionRun).order_by(IngestionRun.id.desc()).limit(limit)
    if job:
        query = query.where(IngestionRun.job == job)
    with Session(engine, expire_on_commit=False) as session:
        return list(session.scalars(query))

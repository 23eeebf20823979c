"""Snapshots of the live account's performance (P&L, exposure, positions, fills), taken
on a schedule by the scheduler process; one row per account and time.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy of the model's types (a migration never imports the models).
MONEY = sa.Numeric(precision=28, scale=10)
BIGINT_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "performance_snapshots",
        sa.Column("id", BIGINT_KEY, nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("realized_pnl", MONEY, nullable=False),
        sa.Column("unrealized_pnl", MONEY, nullable=False),
        sa.Column("total_pnl", MONEY, nullable=False),
        sa.Column("gross_exposure", MONEY, nullable=False),
        sa.Column("net_exposure", MONEY, nullable=False),
        sa.Column("positions", sa.Integer(), nullable=False),
        sa.Column("fills", sa.Integer(), nullable=False),
        sa.Column("marks_missing", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "positions >= 0", name=op.f("ck_performance_snapshots_positions_not_negative")
        ),
        sa.CheckConstraint("fills >= 0", name=op.f("ck_performance_snapshots_fills_not_negative")),
        sa.CheckConstraint(
            "marks_missing >= 0 AND marks_missing <= positions",
            name=op.f("ck_performance_snapshots_marks_missing_in_range"),
        ),
        sa.CheckConstraint(
            "gross_exposure >= 0",
            name=op.f("ck_performance_snapshots_gross_exposure_not_negative"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_performance_snapshots")),
    )
    with op.batch_alter_table("performance_snapshots") as batch:
        batch.create_index(
            batch.f("ix_performance_snapshots_account_ts"), ["account", "ts"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("performance_snapshots") as batch:
        batch.drop_index(batch.f("ix_performance_snapshots_account_ts"))
    op.drop_table("performance_snapshots")

"""Fills carry the realized P&L they booked (the risk gate's daily loss after a restart).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 07:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fills") as batch:
        batch.add_column(
            sa.Column(
                "realized_pnl", sa.Numeric(28, 10), nullable=False, server_default=sa.text("0")
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("fills") as batch:
        batch.drop_column("realized_pnl")

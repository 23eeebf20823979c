"""Parent orders keep their arrival price and market progress; custom strategies name
the account, side and quantity they start and count their triggers.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("algo_orders") as batch:
        batch.add_column(sa.Column("arrival_price", sa.Numeric(28, 10), nullable=True))
        batch.add_column(
            sa.Column("progress", JSON_DOCUMENT, nullable=False, server_default=sa.text("'{}'"))
        )
    with op.batch_alter_table("custom_strategies") as batch:
        batch.add_column(sa.Column("account", sa.String(32), nullable=True))
        batch.add_column(sa.Column("side", sa.String(4), nullable=True))
        batch.add_column(sa.Column("qty", sa.Numeric(28, 10), nullable=True))
        batch.add_column(sa.Column("last_triggered_ns", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("trigger_day", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("triggers_today", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("custom_strategies") as batch:
        for column in (
            "triggers_today",
            "trigger_day",
            "last_triggered_ns",
            "qty",
            "side",
            "account",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("algo_orders") as batch:
        batch.drop_column("progress")
        batch.drop_column("arrival_price")

"""The simulated venue's own records (client orders, every client order id, executions);
orders remember the id they had before a replace; positions keep their exact cost basis.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 04:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("orig_client_order_id", sa.String(length=64), nullable=True))
        batch.create_index(batch.f("ix_orders_orig_client_order_id"), ["orig_client_order_id"])
        batch.create_index(batch.f("ix_orders_venue_order_id"), ["venue_order_id"])
    with op.batch_alter_table("positions") as batch:
        batch.add_column(
            sa.Column(
                "cost_basis", sa.Numeric(precision=28, scale=10), server_default="0", nullable=False
            )
        )
    op.create_table(
        "venue_client_ids",
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("venue_order_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("account", "client_order_id", name=op.f("pk_venue_client_ids")),
    )
    with op.batch_alter_table("venue_client_ids", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_venue_client_ids_venue_order_id"), ["venue_order_id"], unique=False
        )

    op.create_table(
        "venue_executions",
        sa.Column("exec_id", sa.String(length=64), nullable=False),
        sa.Column("venue_order_id", sa.String(length=64), nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("trade_id", sa.String(length=64), nullable=False),
        sa.Column("qty", sa.Numeric(precision=28, scale=10), nullable=False),
        sa.Column("price", sa.Numeric(precision=28, scale=10), nullable=False),
        sa.Column("liquidity", sa.String(length=5), nullable=False),
        sa.Column("leaves_qty", sa.Numeric(precision=28, scale=10), nullable=False),
        sa.Column("cum_qty", sa.Numeric(precision=28, scale=10), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "liquidity IN ('maker', 'taker')", name=op.f("ck_venue_executions_liquidity")
        ),
        sa.CheckConstraint("side IN ('buy', 'sell')", name=op.f("ck_venue_executions_side")),
        sa.PrimaryKeyConstraint("exec_id", name=op.f("pk_venue_executions")),
    )
    with op.batch_alter_table("venue_executions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_venue_executions_venue_order_id"), ["venue_order_id"], unique=False
        )

    op.create_table(
        "venue_orders",
        sa.Column("venue_order_id", sa.String(length=64), nullable=False),
        sa.Column("session", sa.String(length=64), nullable=False),
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("order_type", sa.String(length=8), nullable=False),
        sa.Column("tif", sa.String(length=4), nullable=False),
        sa.Column("qty", sa.Numeric(precision=28, scale=10), nullable=False),
        sa.Column("price", sa.Numeric(precision=28, scale=10), nullable=True),
        sa.Column("cum_qty", sa.Numeric(precision=28, scale=10), nullable=False),
        sa.Column("leaves_qty", sa.Numeric(precision=28, scale=10), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("priority", sa.BigInteger(), nullable=False),
        sa.Column("ts_created", sa.BigInteger(), nullable=False),
        sa.Column("ts_updated", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "order_type IN ('market', 'limit')", name=op.f("ck_venue_orders_order_type")
        ),
        sa.CheckConstraint("side IN ('buy', 'sell')", name=op.f("ck_venue_orders_side")),
        sa.CheckConstraint(
            "status IN ('accepted', 'partially_filled', 'filled', 'cancelled')",
            name=op.f("ck_venue_orders_status"),
        ),
        sa.CheckConstraint("tif IN ('day', 'gtc', 'ioc', 'fok')", name=op.f("ck_venue_orders_tif")),
        sa.PrimaryKeyConstraint("venue_order_id", name=op.f("pk_venue_orders")),
    )
    with op.batch_alter_table("venue_orders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_venue_orders_status_symbol"), ["status", "symbol"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("positions") as batch:
        batch.drop_column("cost_basis")
    with op.batch_alter_table("orders") as batch:
        batch.drop_index(batch.f("ix_orders_venue_order_id"))
        batch.drop_index(batch.f("ix_orders_orig_client_order_id"))
        batch.drop_column("orig_client_order_id")
    with op.batch_alter_table("venue_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_venue_orders_status_symbol"))

    op.drop_table("venue_orders")
    with op.batch_alter_table("venue_executions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_venue_executions_venue_order_id"))

    op.drop_table("venue_executions")
    with op.batch_alter_table("venue_client_ids", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_venue_client_ids_venue_order_id"))

    op.drop_table("venue_client_ids")

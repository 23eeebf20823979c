"""Compliance rules of any registered kind (``trading_window``, plugins): the kind CHECK
keeps only what no registry accepts out; alerts keep their details as JSON.

Downgrading refuses while rules of kinds 0003 cannot hold are stored (delete them
first) and appends each alert's details to its message, as QSuite did before.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 06:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the model's types and CHECKs (a migration never imports the models).
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
KIND_CHECK = (
    "length(kind) BETWEEN 1 AND 64 AND trim(kind, 'abcdefghijklmnopqrstuvwxyz0123456789_.-') = ''"
)
OLD_KINDS = ("restricted_list", "wash_trade", "short_sale")
OLD_KIND_CHECK = "kind IN ('restricted_list', 'wash_trade', 'short_sale')"


def upgrade() -> None:
    with op.batch_alter_table("compliance_rules") as batch:
        batch.drop_constraint(op.f("ck_compliance_rules_kind"), type_="check")
        batch.alter_column(
            "kind",
            existing_type=sa.String(length=32),
            type_=sa.String(length=64),
            existing_nullable=False,
        )
        batch.create_check_constraint(op.f("ck_compliance_rules_kind"), KIND_CHECK)
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("details", JSON_DOCUMENT, nullable=True))


def downgrade() -> None:
    if not op.get_context().as_sql:  # rendering SQL offline: there are no rows to read
        _check_rules_storable(op.get_bind())
        _details_into_messages(op.get_bind())
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("details")
    with op.batch_alter_table("compliance_rules") as batch:
        batch.drop_constraint(op.f("ck_compliance_rules_kind"), type_="check")
        batch.alter_column(
            "kind",
            existing_type=sa.String(length=64),
            type_=sa.String(length=32),
            existing_nullable=False,
        )
        batch.create_check_constraint(op.f("ck_compliance_rules_kind"), OLD_KIND_CHECK)


def _check_rules_storable(conn: sa.Connection) -> None:
    rules = sa.table("compliance_rules", sa.column("name"), sa.column("kind"))
    unstorable = conn.execute(
        sa.select(rules.c.name, rules.c.kind).where(rules.c.kind.not_in(OLD_KINDS))
    ).all()
    if unstorable:
        listed = ", ".join(f"{name} ({kind})" for name, kind in unstorable)
        raise RuntimeError(
            f"Cannot downgrade below 0004: compliance rules {listed} have kinds revision "
            f"0003 cannot store (only {', '.join(OLD_KINDS)}); delete them first"
        )


def _details_into_messages(conn: sa.Connection) -> None:
    """Append each alert's details to its message, the way 0003's QSuite stored them."""
    alerts = sa.table(
        "alerts", sa.column("id"), sa.column("message"), sa.column("details", JSON_DOCUMENT)
    )
    rows = conn.execute(
        sa.select(alerts.c.id, alerts.c.message, alerts.c.details).where(
            alerts.c.details.is_not(None)
        )
    ).all()
    for alert_id, message, details in rows:
        if details:
            pairs = ", ".join(f"{k}={v}" for k, v in sorted(details.items()))
            conn.execute(
                sa.update(alerts)
                .where(alerts.c.id == alert_id)
                .values(message=f"{message} [{pairs}]")
            )

"""Initial schema: every table of QSuite.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 00:35:18
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the model column types (a migration never imports the models).
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGINT_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", BIGINT_KEY, nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("account", sa.String(length=32), nullable=True),
        sa.Column("symbol", sa.String(length=32), nullable=True),
        sa.Column("algo_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "severity IN ('info', 'warning', 'critical')", name=op.f("ck_alerts_severity")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index(op.f("ix_alerts_created_at"), "alerts", ["created_at"])
    op.create_table(
        "audit_log",
        sa.Column("id", BIGINT_KEY, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=True),
        sa.Column("command_id", sa.String(length=64), nullable=True),
        sa.Column("payload", JSON_DOCUMENT, nullable=False),
        sa.Column("result", sa.String(length=8), nullable=False),
        sa.Column("detail", sa.String(length=512), nullable=True),
        sa.CheckConstraint("result IN ('ok', 'denied', 'error')", name=op.f("ck_audit_log_result")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_actor"), "audit_log", ["actor"])
    op.create_index(op.f("ix_audit_log_ts"), "audit_log", ["ts"])
    op.create_table(
        "bars",
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("interval", sa.String(length=8), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("open", sa.Double(), nullable=False),
        sa.Column("high", sa.Double(), nullable=False),
        sa.Column("low", sa.Double(), nullable=False),
        sa.Column("close", sa.Double(), nullable=False),
        sa.Column("volume", sa.Double(), nullable=False),
        sa.Column("source", sa.String(length=16), server_default="", nullable=False),
        sa.Column("flags", sa.SmallInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("symbol", "interval", "ts", name=op.f("pk_bars")),
    )
    op.create_table(
        "compliance_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("params", JSON_DOCUMENT, nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('restricted_list', 'wash_trade', 'short_sale')",
            name=op.f("ck_compliance_rules_kind"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compliance_rules")),
        sa.UniqueConstraint("name", name=op.f("uq_compliance_rules_name")),
    )
    op.create_table(
        "custom_strategies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("signal_rule", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=True),
        sa.Column("condition", JSON_DOCUMENT, nullable=False),
        sa.Column("algo_type", sa.String(length=32), nullable=False),
        sa.Column("algo_params", JSON_DOCUMENT, nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("cooldown_s", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_triggers_per_day", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "cooldown_s >= 0", name=op.f("ck_custom_strategies_cooldown_not_negative")
        ),
        sa.CheckConstraint(
            "max_triggers_per_day > 0", name=op.f("ck_custom_strategies_max_triggers_positive")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_strategies")),
        sa.UniqueConstraint("name", name=op.f("uq_custom_strategies_name")),
    )
    op.create_table(
        "exchanges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("yfinance_suffix", sa.String(length=8), server_default="", nullable=False),
        sa.Column("country", sa.String(length=64), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchanges")),
        sa.UniqueConstraint("code", name=op.f("uq_exchanges_code")),
    )
    op.create_table(
        "indicator_values",
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("interval", sa.String(length=8), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("indicator", sa.String(length=64), nullable=False),
        sa.Column("params_key", sa.String(length=128), nullable=False),
        sa.Column("output", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint(
            "symbol",
            "interval",
            "ts",
            "indicator",
            "params_key",
            "output",
            name=op.f("pk_indicator_values"),
        ),
    )
    op.create_table(
        "industries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sector", sa.String(length=64), nullable=False),
        sa.Column("industry", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_industries")),
        sa.UniqueConstraint("sector", "industry", name=op.f("uq_industries_sector_industry")),
    )
    op.create_table(
        "ingestion_log",
        sa.Column("id", BIGINT_KEY, nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("symbols", JSON_DOCUMENT, nullable=False),
        sa.Column("interval", sa.String(length=8), nullable=True),
        sa.Column("rows", sa.Integer(), server_default="0", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="running", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_s", sa.Double(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'ok', 'partial', 'failed', 'skipped')",
            name=op.f("ck_ingestion_log_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingestion_log")),
    )
    op.create_index(op.f("ix_ingestion_log_job_started_at"), "ingestion_log", ["job", "started_at"])
    op.create_table(
        "positions",
        sa.Column("id", BIGINT_KEY, nullable=False),
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("qty", sa.Numeric(precision=28, scale=10), server_default="0", nullable=False),
        sa.Column(
            "avg_price", sa.Numeric(precision=28, scale=10), server_default="0", nullable=False
        ),
        sa.Column(
            "realized_pnl", sa.Numeric(precision=28, scale=10), server_default="0", nullable=False
        ),
        sa.Column("ts_updated", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_positions")),
        sa.UniqueConstraint("account", "symbol", name=op.f("uq_positions_account_symbol")),
    )
    op.create_table(
        "risk_profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("max_order_qty", sa.Numeric(precision=28, scale=10), nullable=True),
        sa.Column("max_order_notional", sa.Numeric(precision=28, scale=10), nullable=True),
        sa.Column("max_position_qty", sa.Numeric(precision=28, scale=10), nullable=True),
        sa.Column("max_position_notional", sa.Numeric(precision=28, scale=10), nullable=True),
        sa.Column("daily_loss_limit", sa.Numeric(precision=28, scale=10), nullable=True),
        sa.Column("max_participation", sa.Double(), nullable=True),
        sa.Column("price_collar_pct", sa.Double(), nullable=True),
        sa.Column("max_orders_per_s", sa.Double(), nullable=True),
        sa.Column("extra", JSON_DOCUMENT, nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=64), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_profiles")),
        sa.UniqueConstraint("account", name=op.f("uq_risk_profiles_account")),
    )
    op.create_table(
        "signals",
        sa.Column("id", BIGINT_KEY, nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("interval", sa.String(length=8), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("indicator", sa.String(length=64), nullable=False),
        sa.Column("strength", sa.Double(), nullable=False),
        sa.Column("details", JSON_DOCUMENT, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signals")),
        sa.UniqueConstraint(
            "symbol",
            "interval",
            "ts",
            "rule",
            "kind",
            name=op.f("uq_signals_symbol_interval_ts_rule_kind"),
        ),
    )
    op.create_index(op.f("ix_signals_ts"), "signals", ["ts"])
    op.create_table(
        "simulated_instruments",
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("tick_size", sa.Numeric(precision=28, scale=10), nullable=False),
        sa.Column("lot_size", sa.Numeric(precision=28, scale=10), nullable=False),
        sa.Column("base_liquidity", sa.Double(), nullable=False),
        sa.Column("volatility", sa.Double(), nullable=False),
        sa.Column("reference_price", sa.Numeric(precision=28, scale=10), nullable=True),
        sa.CheckConstraint("lot_size > 0", name=op.f("ck_simulated_instruments_lot_size_positive")),
        sa.CheckConstraint(
            "tick_size > 0", name=op.f("ck_simulated_instruments_tick_size_positive")
        ),
        sa.PrimaryKeyConstraint("symbol", name=op.f("pk_simulated_instruments")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('viewer', 'operator', 'admin')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "algo_orders",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("command_id", sa.String(length=64), nullable=True),
        sa.Column("algo_type", sa.String(length=32), nullable=False),
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("qty", sa.Numeric(precision=28, scale=10), nullable=False),
        sa.Column("params", JSON_DOCUMENT, nullable=False),
        sa.Column("state", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("reason", sa.String(length=256), nullable=True),
        sa.Column(
            "filled_qty", sa.Numeric(precision=28, scale=10), server_default="0", nullable=False
        ),
        sa.Column("avg_price", sa.Numeric(precision=28, scale=10), nullable=True),
        sa.Column("strategy_id", sa.Integer(), nullable=True),
        sa.Column("ts_created", sa.BigInteger(), nullable=False),
        sa.Column("ts_started", sa.BigInteger(), nullable=True),
        sa.Column("ts_finished", sa.BigInteger(), nullable=True),
        sa.Column("ts_updated", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.CheckConstraint("side IN ('buy', 'sell')", name=op.f("ck_algo_orders_side")),
        sa.CheckConstraint(
            "state IN ('pending', 'running', 'paused', 'completed', 'cancelled', 'failed')",
            name=op.f("ck_algo_orders_state"),
        ),
        sa.CheckConstraint("filled_qty >= 0", name=op.f("ck_algo_orders_filled_qty_not_negative")),
        sa.CheckConstraint("qty > 0", name=op.f("ck_algo_orders_qty_positive")),
        sa.ForeignKeyConstraint(
            ["strategy_id"],
            ["custom_strategies.id"],
            name=op.f("fk_algo_orders_strategy_id_custom_strategies"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_algo_orders")),
        sa.UniqueConstraint("command_id", name=op.f("uq_algo_orders_command_id")),
    )
    op.create_index(op.f("ix_algo_orders_state"), "algo_orders", ["state"])
    op.create_index(op.f("ix_algo_orders_symbol"), "algo_orders", ["symbol"])
    op.create_table(
        "instruments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("yahoo_symbol", sa.String(length=32), nullable=True),
        sa.Column("name", sa.String(length=256), server_default="", nullable=False),
        sa.Column("exchange_id", sa.Integer(), nullable=True),
        sa.Column("industry_id", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["exchange_id"], ["exchanges.id"], name=op.f("fk_instruments_exchange_id_exchanges")
        ),
        sa.ForeignKeyConstraint(
            ["industry_id"],
            ["industries.id"],
            name=op.f("fk_instruments_industry_id_industries"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instruments")),
        sa.UniqueConstraint("symbol", name=op.f("uq_instruments_symbol")),
        sa.UniqueConstraint("yahoo_symbol", name=op.f("uq_instruments_yahoo_symbol")),
    )
    op.create_index(op.f("ix_instruments_exchange_id"), "instruments", ["exchange_id"])
    op.create_index(op.f("ix_instruments_industry_id"), "instruments", ["industry_id"])
    op.create_table(
        "algo_executions",
        sa.Column("id", BIGINT_KEY, nullable=False),
        sa.Column("algo_id", sa.String(length=64), nullable=False),
        sa.Column("slice_index", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), server_default="0", nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("intent_state", sa.String(length=16), server_default="intended", nullable=False),
        sa.Column("qty", sa.Numeric(precision=28, scale=10), nullable=False),
        sa.Column("price", sa.Numeric(precision=28, scale=10), nullable=True),
        sa.Column("ts_created", sa.BigInteger(), nullable=False),
        sa.Column("ts_updated", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "intent_state IN "
            "('intended', 'sent', 'acked', 'filled', 'cancelled', 'rejected', 'failed')",
            name=op.f("ck_algo_executions_intent_state"),
        ),
        sa.CheckConstraint("qty > 0", name=op.f("ck_algo_executions_qty_positive")),
        sa.ForeignKeyConstraint(
            ["algo_id"],
            ["algo_orders.id"],
            name=op.f("fk_algo_executions_algo_id_algo_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_algo_executions")),
        sa.UniqueConstraint(
            "algo_id",
            "slice_index",
            "attempt",
            name=op.f("uq_algo_executions_algo_id_slice_index_attempt"),
        ),
        sa.UniqueConstraint("client_order_id", name=op.f("uq_algo_executions_client_order_id")),
    )
    op.create_table(
        "fundamentals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instrument_id", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("market_cap", sa.Double(), nullable=True),
        sa.Column("pe_ratio", sa.Double(), nullable=True),
        sa.Column("eps", sa.Double(), nullable=True),
        sa.Column("dividend_yield", sa.Double(), nullable=True),
        sa.Column("beta", sa.Double(), nullable=True),
        sa.Column("week52_high", sa.Double(), nullable=True),
        sa.Column("week52_low", sa.Double(), nullable=True),
        sa.Column("sector", sa.String(length=64), nullable=True),
        sa.Column("industry", sa.String(length=128), nullable=True),
        sa.Column("source", sa.String(length=16), server_default="", nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["instrument_id"],
            ["instruments.id"],
            name=op.f("fk_fundamentals_instrument_id_instruments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fundamentals")),
        sa.UniqueConstraint(
            "instrument_id", "as_of", name=op.f("uq_fundamentals_instrument_id_as_of")
        ),
    )
    op.create_table(
        "orders",
        sa.Column("id", BIGINT_KEY, nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("venue_order_id", sa.String(length=64), nullable=True),
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("order_type", sa.String(length=8), nullable=False),
        sa.Column("tif", sa.String(length=4), nullable=False),
        sa.Column("qty", sa.Numeric(precision=28, scale=10), nullable=False),
        sa.Column("price", sa.Numeric(precision=28, scale=10), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column(
            "filled_qty", sa.Numeric(precision=28, scale=10), server_default="0", nullable=False
        ),
        sa.Column("avg_price", sa.Numeric(precision=28, scale=10), nullable=True),
        sa.Column("algo_id", sa.String(length=64), nullable=True),
        sa.Column("reject_reason", sa.String(length=256), nullable=True),
        sa.Column("ts_created", sa.BigInteger(), nullable=False),
        sa.Column("ts_updated", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("order_type IN ('market', 'limit')", name=op.f("ck_orders_order_type")),
        sa.CheckConstraint("side IN ('buy', 'sell')", name=op.f("ck_orders_side")),
        sa.CheckConstraint("tif IN ('day', 'gtc', 'ioc', 'fok')", name=op.f("ck_orders_tif")),
        sa.CheckConstraint("filled_qty >= 0", name=op.f("ck_orders_filled_qty_not_negative")),
        sa.CheckConstraint("qty > 0", name=op.f("ck_orders_qty_positive")),
        sa.ForeignKeyConstraint(
            ["algo_id"], ["algo_orders.id"], name=op.f("fk_orders_algo_id_algo_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("client_order_id", name=op.f("uq_orders_client_order_id")),
    )
    op.create_index(op.f("ix_orders_account_symbol"), "orders", ["account", "symbol"])
    op.create_index(op.f("ix_orders_algo_id"), "orders", ["algo_id"])
    op.create_index(op.f("ix_orders_status"), "orders", ["status"])
    op.create_table(
        "fills",
        sa.Column("id", BIGINT_KEY, nullable=False),
        sa.Column("fill_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", BIGINT_KEY, nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("venue_exec_id", sa.String(length=64), nullable=False),
        sa.Column("qty", sa.Numeric(precision=28, scale=10), nullable=False),
        sa.Column("price", sa.Numeric(precision=28, scale=10), nullable=False),
        sa.Column("fee", sa.Numeric(precision=28, scale=10), server_default="0", nullable=False),
        sa.Column("liquidity", sa.String(length=5), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("liquidity IN ('maker', 'taker')", name=op.f("ck_fills_liquidity")),
        sa.CheckConstraint("qty > 0", name=op.f("ck_fills_qty_positive")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_fills_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fills")),
        sa.UniqueConstraint("fill_id", name=op.f("uq_fills_fill_id")),
        sa.UniqueConstraint("venue_exec_id", name=op.f("uq_fills_venue_exec_id")),
    )
    op.create_index(op.f("ix_fills_client_order_id"), "fills", ["client_order_id"])
    op.create_index(op.f("ix_fills_order_id"), "fills", ["order_id"])


def downgrade() -> None:
    op.drop_table("fills")
    op.drop_table("orders")
    op.drop_table("fundamentals")
    op.drop_table("algo_executions")
    op.drop_table("instruments")
    op.drop_table("algo_orders")
    op.drop_table("users")
    op.drop_table("simulated_instruments")
    op.drop_table("signals")
    op.drop_table("risk_profiles")
    op.drop_table("positions")
    op.drop_table("ingestion_log")
    op.drop_table("industries")
    op.drop_table("indicator_values")
    op.drop_table("exchanges")
    op.drop_table("custom_strategies")
    op.drop_table("compliance_rules")
    op.drop_table("bars")
    op.drop_table("audit_log")
    op.drop_table("alerts")

"""Invariants of the table definitions (no database needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import BigInteger, Column, Double, Numeric, Table
from sqlalchemy.dialects import postgresql, sqlite

from engine.persistence.models import Base, UtcDateTime

TABLES: dict[str, Table] = dict(Base.metadata.tables)
LEDGER_TABLES = ("orders", "fills", "positions", "algo_orders", "algo_executions")
POSTGRES_MAX_IDENTIFIER = 63


def columns(*, tables: tuple[str, ...] | None = None) -> list[Column]:
    return [c for name, t in TABLES.items() if tables is None or name in tables for c in t.columns]


def test_metadata_when_loaded_then_covers_the_whole_domain() -> None:
    assert set(TABLES) == {
        "exchanges", "industries", "instruments", "bars", "fundamentals", "indicator_values",
        "signals", "ingestion_log", "orders", "fills", "positions", "algo_orders",
        "algo_executions", "custom_strategies", "simulated_instruments", "risk_profiles",
        "compliance_rules", "alerts", "users", "audit_log", "venue_orders", "venue_client_ids",
        "venue_executions", "performance_snapshots",
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(TABLES))
def test_table_when_defined_then_every_constraint_and_index_has_a_short_conventional_name(
    name: str,
) -> None:
    table = TABLES[name]
    named = [*table.constraints, *table.indexes]
    assert table.primary_key.columns, f"{name} has no primary key"
    for item in named:
        item_name = str(item.name)
        assert item_name.split("_", 1)[0] in {"pk", "uq", "ck", "fk", "ix"}, item_name
        assert name in item_name, item_name
        assert len(item_name) <= POSTGRES_MAX_IDENTIFIER, item_name


def test_bars_when_defined_then_key_is_symbol_interval_ts() -> None:
    assert [c.name for c in TABLES["bars"].primary_key.columns] == ["symbol", "interval", "ts"]


LEDGER_AMOUNTS = [
    c for c in columns(tables=LEDGER_TABLES) if c.name.endswith(("qty", "price", "fee", "pnl"))
]


@pytest.mark.parametrize("column", LEDGER_AMOUNTS, ids=str)
def test_ledger_column_when_quantity_or_money_then_exact_decimal(column: Column) -> None:
    assert isinstance(column.type, Numeric) and not isinstance(column.type, Double)
    assert (column.type.precision, column.type.scale, column.type.asdecimal) == (28, 10, True)


@pytest.mark.parametrize(
    "column", [c for c in columns() if c.name == "ts" or c.name.startswith("ts_")], ids=str
)
def test_market_time_column_when_named_ts_then_integer_nanoseconds(column: Column) -> None:
    if column.table.name == "audit_log":  # human-facing: when an operator acted
        assert isinstance(column.type, UtcDateTime)
    else:
        assert isinstance(column.type, BigInteger)


@pytest.mark.parametrize("column", [c for c in columns() if c.name.endswith("_at")], ids=str)
def test_human_time_column_when_named_at_then_aware_utc(column: Column) -> None:
    assert isinstance(column.type, UtcDateTime)


def test_bar_prices_when_defined_then_float64() -> None:
    for name in ("open", "high", "low", "close", "volume"):
        assert isinstance(TABLES["bars"].c[name].type, Double)


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "pg"])
def test_utc_datetime_when_aware_value_bound_then_stored_as_utc(dialect: object) -> None:
    paris = datetime(2024, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))

    stored = UtcDateTime().process_bind_param(paris, dialect)  # type: ignore[arg-type]

    assert stored is not None
    assert stored.replace(tzinfo=UTC) == paris
    assert stored.tzinfo is (None if dialect.name == "sqlite" else UTC)  # type: ignore[attr-defined]


def test_utc_datetime_when_naive_value_bound_then_refused() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        UtcDateTime().process_bind_param(datetime(2024, 6, 1), sqlite.dialect())


def test_utc_datetime_when_read_then_aware_utc() -> None:
    naive = datetime(2024, 6, 1, 12, 0)
    east = datetime(2024, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))

    assert UtcDateTime().process_result_value(naive, sqlite.dialect()) == naive.replace(tzinfo=UTC)
    read = UtcDateTime().process_result_value(east, postgresql.dialect())
    assert read is not None and read.tzinfo is UTC and read == east

"""The declarative base, the constraint naming convention and the shared column types.

Conventions every model follows:

- Market-time columns (bar, signal, order and fill times) are UTC nanoseconds in a
  ``BigInteger`` named ``ts`` or ``ts_<what>``, the same integers the events carry.
- Human-facing times (logins, alerts, audit, ingestion runs) are timezone-aware UTC
  ``datetime`` objects (:class:`UtcDateTime`); naive datetimes are refused.
- Quantities, prices and money that reach a ledger are ``Decimal`` in
  ``Numeric(28, 10)``. PostgreSQL keeps them exact; SQLite (the embedded default)
  stores them as 64-bit floats, i.e. about 15 significant digits.
- Prices of market data and indicator values are ``float`` in a 64-bit ``Double``.
- JSON documents are ``JSON`` (``JSONB`` on PostgreSQL); assign a new object to change
  one, in-place mutation is not tracked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Double,
    Integer,
    MetaData,
    Numeric,
    String,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, mapped_column

#: Deterministic constraint names, so migrations name what they create and later
#: migrations can drop or alter it by name on every backend.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC ``datetime`` on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no zone, so the value is stored as UTC
    and the zone is put back on read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: QSuite stores timezone-aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    """A CHECK that ``column`` holds one of ``values``, named ``ck_<table>_<column>``."""
    allowed = ", ".join("'" + value.replace("'", "''") + "'" for value in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=column)


def utcnow() -> datetime:
    """Default of human-facing ``created_at`` columns."""
    return datetime.now(UTC)


#: JSON documents; JSONB on PostgreSQL (indexable, compact), JSON text elsewhere.
JSONDocument = JSON().with_variant(JSONB(), "postgresql")

#: 64-bit auto-increment keys; SQLite only auto-increments an ``INTEGER PRIMARY KEY``.
BigIntegerKey = BigInteger().with_variant(Integer(), "sqlite")

# Column shapes shared by several tables.
IntPK = Annotated[int, mapped_column(Integer, primary_key=True)]
BigPK = Annotated[int, mapped_column(BigIntegerKey, primary_key=True)]
Nanos = Annotated[int, mapped_column(BigInteger)]
Symbol = Annotated[str, mapped_column(String(32))]
Account = Annotated[str, mapped_column(String(32))]
Interval = Annotated[str, mapped_column(String(8))]
Name = Annotated[str, mapped_column(String(64))]
Actor = Annotated[str, mapped_column(String(64))]
CommandId = Annotated[str, mapped_column(String(64))]


class Base(DeclarativeBase):
    """Base of every QSuite table; ``Base.metadata`` is what Alembic migrates."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UtcDateTime(),
        Decimal: Numeric(28, 10),
        float: Double(),
        dict[str, Any]: JSONDocument,
        list[str]: JSONDocument,
    }

"""Alembic environment of QSuite, driven from :mod:`app.database` (there is no .ini).

Online: migrates the connection passed in ``config.attributes["connection"]`` (any URL,
any schema the connection's search path selects), or else opens the database of the
current settings. Offline (``sql=True``): renders SQL for the ``sqlalchemy.url`` option.
SQLite runs in batch mode, so ALTERs become table copies.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from sqlalchemy import JSON, DefaultClause
from sqlalchemy.sql.elements import False_, True_

from app.database import make_engine
from app.settings import load_settings
from engine.persistence.models import Base, UtcDateTime

config = context.config
target_metadata = Base.metadata


def render_item(kind: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Render model-only types as plain SQLAlchemy types, so migrations do not import
    the models (a migration must keep working when the models move on), and boolean
    server defaults portably."""
    if kind == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    is_default = kind == "server_default" and isinstance(obj, DefaultClause)
    if is_default and isinstance(obj.arg, True_ | False_):  # not "1"/"0": PostgreSQL refuses
        return "sa.true()" if isinstance(obj.arg, True_) else "sa.false()"
    if kind == "type" and isinstance(obj, JSON):  # every JSON column is a JSONDocument
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return 'sa.JSON().with_variant(postgresql.JSONB(), "postgresql")'
    return False


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        render_item=render_item,
        **kwargs,
    )


def run_offline() -> None:
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        engine = make_engine(load_settings())
        try:
            with engine.begin() as connection:
                _configure(connection=connection)
                context.run_migrations()
        finally:
            engine.dispose()
        return
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()

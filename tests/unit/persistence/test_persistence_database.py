"""app.database: engines, SQLite behaviour, the Alembic configuration (SQLite files only)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect, text

from app.database import (
    MIGRATIONS_DIR,
    alembic_config,
    current_revision,
    database_url,
    head_revision,
    make_engine,
    masked,
    open_database,
    session_factory,
)
from app.settings import load_settings
from engine.errors import OperationalError
from engine.persistence.models import Base


def settings_in(data_dir: Path, **database: object):  # type: ignore[no-untyped-def]
    return load_settings(
        environ={}, overrides={"app": {"data_dir": str(data_dir)}, "database": database}
    )


def test_migrations_when_packaged_then_script_template_and_revisions_present() -> None:
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert alembic_config().get_main_option("script_location") == str(MIGRATIONS_DIR)
    revisions = sorted(p.name for p in (MIGRATIONS_DIR / "versions").glob("0*.py"))
    assert revisions[:4] == [
        "0001_initial.py",
        "0002_signal_simulated.py",
        "0003_venue.py",
        "0004_risk_store.py",
    ]
    # later revisions may follow; each file is numbered after its revision id
    assert [name[:4] for name in revisions] == [f"{n:04d}" for n in range(1, len(revisions) + 1)]
    assert head_revision() == revisions[-1][:4]


def test_migrations_when_rendered_offline_for_postgresql_then_create_every_table() -> None:
    config = alembic_config()
    config.output_buffer = io.StringIO()
    config.set_main_option("sqlalchemy.url", "postgresql+psycopg://u@db.invalid/q")

    command.upgrade(config, "head", sql=True)

    sql = config.output_buffer.getvalue()
    assert sql.count("CREATE TABLE") == len(Base.metadata.tables) + 1  # + alembic_version
    assert "JSONB" in sql and "BOOLEAN DEFAULT true" in sql


def test_database_url_when_plain_postgresql_then_psycopg3_driver() -> None:
    assert database_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert database_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert database_url(settings_in(Path("/x"))).render_as_string() == "sqlite:////x/qsuite.db"


def test_masked_when_url_has_password_then_hidden() -> None:
    assert masked("postgresql+psycopg://ops:hunter2@db:5432/q") == (
        "postgresql+psycopg://ops:***@db:5432/q"
    )


def test_make_engine_when_postgresql_then_lazy_with_connect_timeout() -> None:
    engine = make_engine("postgresql://u@127.0.0.1:1/db")  # never connects

    assert engine.dialect.driver == "psycopg"
    engine.dispose()


def test_open_database_when_sqlite_dir_missing_then_created_and_migrated(tmp_path: Path) -> None:
    settings = settings_in(tmp_path / "nested" / "var", url="", auto_migrate=True)

    engine = open_database(settings)
    try:
        assert (tmp_path / "nested" / "var" / "qsuite.db").is_file()
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            pragmas = [
                conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            ]
        assert pragmas == ["wal", 1, 5000]
    finally:
        engine.dispose()


def test_open_database_when_auto_migrate_off_then_leaves_schema_alone(tmp_path: Path) -> None:
    engine = open_database(settings_in(tmp_path, url="", auto_migrate=False))
    try:
        assert current_revision(engine) is None
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_open_database_when_sqlite_path_unusable_then_operational_error(tmp_path: Path) -> None:
    (tmp_path / "qsuite.db").mkdir()  # a directory where the database file should be

    with pytest.raises(OperationalError, match=r"`database\.url`"):
        open_database(settings_in(tmp_path, url="", auto_migrate=True))


def test_sqlite_transaction_when_rolled_back_then_ddl_rolled_back_too(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'tx.db'}")
    try:
        with engine.connect() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.rollback()
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_session_factory_when_immediate_then_write_lock_taken_at_begin(tmp_path: Path) -> None:
    engine = open_database(settings_in(tmp_path, url="", auto_migrate=True))
    try:
        with session_factory(engine, immediate=True)() as session:
            session.execute(text("SELECT 1"))  # only reads, yet holds the write lock
            with engine.connect() as other:
                other.exec_driver_sql("PRAGMA busy_timeout=0")
                with pytest.raises(sa_exc.OperationalError, match="locked"):
                    other.execute(text("CREATE TABLE scratch (x INTEGER)"))
                other.rollback()
                other.exec_driver_sql("PRAGMA busy_timeout=5000")
        assert "scratch" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()

"""The database of a QSuite process: engine, sessions and Alembic migrations.

One call opens it the way every process should::

    engine = open_database(settings)      # connect, check, migrate if auto_migrate
    Session = session_factory(engine)

SQLite (the embedded default, ``database.url = ""``) runs in WAL mode with foreign keys
on and a busy timeout; SQLAlchemy, not the ``sqlite3`` module, emits ``BEGIN``, so
transactions (and DDL, and savepoints) behave as on PostgreSQL. One SQLite difference
remains: a transaction that has read, and then writes after another connection
committed, fails at once with ``database is locked`` (its snapshot is stale) rather than
overwriting; keep transactions short, or use ``session_factory(engine, immediate=True)``
for read-modify-write work.

Migrations live in ``app/migrations`` and are configured here, without an ``.ini``.
To write a new one, generate it against a database at the current head and review it::

    from alembic import command
    from app.database import alembic_config, make_engine
    with make_engine("sqlite:///var/qsuite.db").begin() as conn:
        command.revision(alembic_config(conn), "add things", autogenerate=True)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from app.settings import Settings
from engine.errors import OperationalError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 5_000
PG_CONNECT_TIMEOUT_S = 10

#: Execution option naming the SQLite BEGIN mode ("IMMEDIATE" takes the write lock at once).
SQLITE_BEGIN_OPTION = "qsuite_sqlite_begin"

Target = Engine | Connection | Settings | str | URL


def database_url(target: Settings | str | URL) -> URL:
    """The SQLAlchemy URL of ``target``; ``postgresql://`` means psycopg 3."""
    url = make_url(target.database_url if isinstance(target, Settings) else target)
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def masked(url: str | URL) -> str:
    """``url`` with its password replaced by ``***``, for logs and messages."""
    return make_url(url).render_as_string(hide_password=True)


def make_engine(target: Settings | str | URL, **engine_kwargs: Any) -> Engine:
    """An engine for the ``database.url`` setting (or a URL); connects lazily.

    SQLite: creates the database directory. ``engine_kwargs`` go to ``create_engine``
    (``connect_args`` are merged with the defaults).
    """
    url = database_url(target)
    connect_args: dict[str, Any] = dict(engine_kwargs.pop("connect_args", {}))
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args=connect_args, **engine_kwargs)
        _configure_sqlite(engine)
        return engine
    if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
        connect_args.setdefault("connect_timeout", PG_CONNECT_TIMEOUT_S)
    engine_kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, connect_args=connect_args, **engine_kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN (below)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints in WAL mode
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get("isolation_level") != "AUTOCOMMIT":
            conn.exec_driver_sql(f"BEGIN {options.get(SQLITE_BEGIN_OPTION, '')}".rstrip())


def writer(engine: Engine) -> Engine:
    """``engine`` for read-modify-write transactions: on SQLite each transaction takes the
    write lock at ``BEGIN`` (``IMMEDIATE``), so it waits for another writer (up to the
    busy timeout) instead of failing with "database is locked" at its first write. The
    same engine on PostgreSQL."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
    return engine


def session_factory(engine: Engine, *, immediate: bool = False) -> sessionmaker[Session]:
    """ORM sessions on ``engine``; objects stay readable after commit.

    ``immediate``: on SQLite, each transaction takes the write lock at ``BEGIN``. Use it
    for read-modify-write sessions that may race another writer: they then wait for it
    (up to the busy timeout) instead of failing at their first write. No effect on
    PostgreSQL.
    """
    return sessionmaker(writer(engine) if immediate else engine, expire_on_commit=False)


@contextmanager
def operational(url: str | URL) -> Iterator[None]:
    """Turn a failure to reach the database into an :class:`OperationalError` for the
    operator, naming the ``database.url`` setting (password masked)."""
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        password = make_url(url).password
        if password:
            reason = reason.replace(str(password), "***")
        raise OperationalError(
            f"Cannot open the database {masked(url)}: {reason}. Check the `database.url` "
            "setting (env QSUITE__DATABASE__URL): is the server running and reachable, "
            "do the credentials match, and is the SQLite directory writable?"
        ) from exc


def check_connection(engine: Engine) -> None:
    """Connect once; raises :class:`OperationalError` when the database is unreachable."""
    with operational(engine.url), engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")


def alembic_config(connection: Connection | None = None) -> Config:
    """The Alembic configuration of QSuite (no ``.ini`` file); ``env.py`` migrates
    ``connection`` when given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration revision in ``app/migrations``."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"{MIGRATIONS_DIR} has no revisions")
    return head


def current_revision(target: Target) -> str | None:
    """The revision the database is at; ``None`` for an empty database."""
    with _connection(target, begin=False) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(target: Target, revision: str = "head") -> str | None:
    """Apply migrations up to ``revision``; returns the revision the database is then at.

    Idempotent (a database at the revision is left alone) and safe when several
    processes start at once: the migration runs under a lock (PostgreSQL advisory lock
    per schema; SQLite ``BEGIN IMMEDIATE``) in one transaction.
    """
    with _connection(target, begin=True) as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "SELECT pg_advisory_xact_lock(hashtext('qsuite.migrate.' || current_schema()))"
            )
        command.upgrade(alembic_config(conn), revision)
        return MigrationContext.configure(conn).get_current_revision()


def downgrade(target: Target, revision: str) -> str | None:
    """Revert migrations down to ``revision`` (``"base"`` drops every table)."""
    with _connection(target, begin=True) as conn:
        command.downgrade(alembic_config(conn), revision)
        return MigrationContext.configure(conn).get_current_revision()


def open_database(settings: Settings, **engine_kwargs: Any) -> Engine:
    """The engine of this process: checked, and migrated if ``database.auto_migrate``."""
    engine = make_engine(settings, **engine_kwargs)
    try:
        check_connection(engine)
        if settings.database.auto_migrate:
            upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


@contextmanager
def _connection(target: Target, *, begin: bool) -> Iterator[Connection]:
    """A connection to ``target``: the caller's as is, or a new one (in a transaction
    committed on exit when ``begin``); unreachable databases raise OperationalError."""
    if isinstance(target, Connection):
        yield target
        return
    engine = target if isinstance(target, Engine) else make_engine(target)
    try:
        with operational(engine.url):
            conn = engine.connect()
        with conn:
            if begin:
                if conn.dialect.name == "sqlite":
                    conn = conn.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
                with conn.begin():
                    yield conn
            else:
                yield conn
    finally:
        if engine is not target:
            engine.dispose()

"""Database fixtures of the storage tests (imported explicitly, not a conftest).

``db`` is an *empty* database, once per backend:

- ``sqlite``: a file in ``tmp_path``.
- ``postgresql``: a fresh schema with a random name on the server of
  ``QSUITE_TEST_PG_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``),
  selected through the connection's ``search_path`` and dropped afterwards, so parallel
  runs never collide. An unreachable server skips these tests with the reason, except
  when ``CI`` is set and ``QSUITE_TEST_PG_URL`` is given: then they fail.

Every engine is checked for leaked connections and disposed, whatever the test did.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy import exc as sa_exc

from app.database import make_engine, masked, upgrade

PG_URL_ENV = "QSUITE_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@functools.cache
def _unreachable_reason(url: str) -> str | None:
    engine = make_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except sa_exc.DBAPIError as exc:
        return str(exc.orig).strip().splitlines()[0]
    finally:
        engine.dispose()
    return None


def postgres_url() -> str:
    """The test server's URL; skips (or, on CI with an explicit URL, fails) when down."""
    given = os.environ.get(PG_URL_ENV, "")
    url = given or DEFAULT_PG_URL
    reason = _unreachable_reason(url)
    if reason is not None:
        message = f"PostgreSQL at {masked(url)} is unreachable ({reason}); set {PG_URL_ENV}"
        if given and os.environ.get("CI"):
            pytest.fail(f"{message} (CI with {PG_URL_ENV} set: PostgreSQL tests must run)")
        pytest.skip(message)
    return url


@contextmanager
def _disposed(engine: Engine) -> Iterator[Engine]:
    try:
        yield engine
        assert engine.pool.checkedout() == 0, "a test leaked a database connection"  # type: ignore[attr-defined]
    finally:
        engine.dispose()


@contextmanager
def postgres_schema(url: str) -> Iterator[Engine]:
    """An engine whose connections live in a new, empty schema; the schema is dropped."""
    schema = f"qsuite_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        try:
            engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
            with _disposed(engine):
                yield engine
        finally:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    finally:
        admin.dispose()


@contextmanager
def sqlite_file(path: Path) -> Iterator[Engine]:
    """An engine on a new SQLite file (its directory is created)."""
    with _disposed(make_engine(f"sqlite:///{path}")) as engine:
        yield engine


@contextmanager
def empty_database(backend: str, tmp_path: Path) -> Iterator[Engine]:
    if backend == "sqlite":
        with sqlite_file(tmp_path / "db" / "qsuite.db") as engine:
            yield engine
    else:
        with postgres_schema(postgres_url()) as engine:
            yield engine


@pytest.fixture(name="db", params=BACKENDS)
def db_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database (no tables) on each backend."""
    with empty_database(request.param, tmp_path) as engine:
        yield engine


@pytest.fixture(name="migrated")
def migrated_fixture(db: Engine) -> Engine:
    """``db`` migrated to head."""
    upgrade(db)
    return db

"""Console users on an SQLite file: the store's rules, argon2 hashes, the audit helper and
``qsuite users``."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher, extract_parameters
from audit_log import audit_rows
from sqlalchemy import Engine, select

from app import cli
from app.database import make_engine, upgrade
from app.settings import load_settings
from app.users import (
    DuplicateUser,
    InvalidUserInput,
    SessionUser,
    UnknownUser,
    UserStore,
    audit,
)
from engine.persistence.models.system import User

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
"""Cheap parameters: the tests check behaviour, not the cost."""


@pytest.fixture(name="engine")
def engine_fixture(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'users.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> UserStore:
    return UserStore(engine, FAST)


def stored_hash(engine: Engine, name: str) -> str:
    with engine.connect() as conn:
        return str(conn.scalar(select(User.password_hash).where(User.username == name)))


def test_add_when_valid_then_listed_and_password_verifies(store: UserStore, engine: Engine) -> None:
    store.add("olga", "operator", "correct horse")
    store.add("admin", "admin", "battery staple")

    assert [(u.name, u.role, u.disabled, u.last_login_at) for u in store.list()] == [
        ("admin", "admin", False, None),
        ("olga", "operator", False, None),
    ]
    assert stored_hash(engine, "olga").startswith("$argon2id$")  # never the password
    assert store.verify("olga", "correct horse") == SessionUser("olga", "operator")
    assert store.verify(" Olga ", "correct horse") == SessionUser("olga", "operator")
    (olga,) = [u for u in store.list() if u.name == "olga"]
    assert olga.last_login_at is not None and olga.last_login_at.tzinfo is not None
    assert store.count() == 2


def test_add_when_name_taken_then_duplicate_and_first_user_kept(store: UserStore) -> None:
    store.add("olga", "operator", "correct horse")

    with pytest.raises(DuplicateUser, match="User 'olga' exists already"):
        store.add("olga", "admin", "another password")

    assert [(u.name, u.role) for u in store.list()] == [("olga", "operator")]


@pytest.mark.parametrize(
    ("name", "role", "password", "problem"),
    [
        ("olga", "operator", "short", "Password too short: use at least 8 characters"),
        ("olga", "operator", "x" * 1025, "Password too long"),
        ("olga", "operator", "OLGA", "Password too short"),
        ("olgaolga", "operator", "olgaolga", "Password must not be the user name"),
        ("Olga", "operator", "correct horse", "Invalid user name 'Olga'"),
        ("9lives", "operator", "correct horse", "Invalid user name"),
        ("a b", "operator", "correct horse", "Invalid user name"),
        ("x" * 33, "operator", "correct horse", "Invalid user name"),
        ("olga", "root", "correct horse", "Invalid role 'root': one of viewer, operator, admin"),
    ],
)
def test_add_when_input_bad_then_refused_in_words_and_nothing_stored(
    store: UserStore, name: str, role: str, password: str, problem: str
) -> None:
    with pytest.raises(InvalidUserInput, match=problem.replace("(", r"\(")):
        store.add(name, role, password)
    assert store.list() == []


def test_verify_when_password_wrong_or_user_unknown_then_none(store: UserStore) -> None:
    store.add("olga", "operator", "correct horse")

    assert store.verify("olga", "correct horsE") is None
    assert store.verify("olga", "") is None
    assert store.verify("nobody", "correct horse") is None
    assert store.authenticate("olga", "nope nope") == "wrong password"
    assert store.authenticate("nobody", "nope nope") == "unknown user"
    (olga,) = store.list()
    assert olga.last_login_at is None  # failures are not logins


def test_verify_when_user_disabled_then_none_until_enabled(store: UserStore) -> None:
    store.add("vic", "viewer", "correct horse")

    assert store.disable("vic").disabled is True
    assert store.verify("vic", "correct horse") is None
    assert store.authenticate("vic", "correct horse") == "user disabled"

    store.enable("vic")
    assert store.verify("vic", "correct horse") == SessionUser("vic", "viewer")


def test_set_password_when_changed_then_only_the_new_one_verifies(store: UserStore) -> None:
    store.add("olga", "operator", "correct horse")

    store.set_password("olga", "new password 2")

    assert store.verify("olga", "correct horse") is None
    assert store.verify("olga", "new password 2") == SessionUser("olga", "operator")
    with pytest.raises(InvalidUserInput, match="too short"):
        store.set_password("olga", "short")
    with pytest.raises(UnknownUser, match="No user 'nobody'"):
        store.set_password("nobody", "long enough")
    with pytest.raises(UnknownUser):
        store.disable("nobody")


def test_verify_when_hash_parameters_outdated_then_rehashed_with_current_ones(
    engine: Engine,
) -> None:
    UserStore(engine, FAST).add("olga", "operator", "correct horse")
    old = stored_hash(engine, "olga")
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)

    assert UserStore(engine, stronger).verify("olga", "correct horse") is not None

    new = stored_hash(engine, "olga")
    assert new != old
    assert (extract_parameters(new).time_cost, extract_parameters(new).memory_cost) == (2, 16)
    assert not stronger.check_needs_rehash(new)
    assert UserStore(engine, stronger).verify("olga", "correct horse") is not None
    assert stored_hash(engine, "olga") == new  # current parameters: left alone


def test_audit_when_written_then_row_has_who_what_result_and_why(engine: Engine) -> None:
    audit(engine, "olga", "SubmitOrder.v1", "AAA", "denied", "this needs the operator role")

    assert audit_rows(engine) == [
        ("olga", "SubmitOrder.v1", "AAA", "denied", "this needs the operator role")
    ]


# --- qsuite users -----------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in [k for k in os.environ if k.startswith("QSUITE__")]:
        monkeypatch.delenv(key)
    path = tmp_path / "qsuite.toml"
    path.write_text(f'[app]\ndata_dir = "{tmp_path / "data"}"\n')
    return path


def qsuite(
    config: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *args: str,
    stdin: str = "",
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = cli.main(["--config", str(config), "--actor", "ops", "users", *args])
    out, err = capsys.readouterr()
    return code, out, err


def cli_engine(config: Path) -> Engine:
    return make_engine(load_settings(config, environ={}).database_url)


def test_cli_users_when_added_from_stdin_then_listed_and_audited(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = qsuite(
        config, monkeypatch, capsys, "add", "admin", "--role", "admin", "--password-stdin",
        stdin="first admin pw\n",
    )  # fmt: skip
    assert (code, out, err) == (0, "added admin (admin)\n", "")

    code, out, _ = qsuite(config, monkeypatch, capsys, "list", "--json")
    assert code == 0
    (row,) = json.loads(out)
    assert (row["name"], row["role"], row["disabled"], row["last_login_at"]) == (
        "admin",
        "admin",
        False,
        None,
    )
    code, out, _ = qsuite(config, monkeypatch, capsys, "list")
    assert code == 0 and "admin" in out and "enabled" in out and "never" in out

    engine = cli_engine(config)  # the CLI migrated the new database itself
    try:
        assert UserStore(engine).verify("admin", "first admin pw") == SessionUser("admin", "admin")
        assert audit_rows(engine) == [
            ("cli:ops", "users.add", "admin", "ok", "added admin (admin)")
        ]
    finally:
        engine.dispose()


def test_cli_users_when_input_bad_then_exit_2_with_the_reason(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    add = ("add", "olga", "--role", "operator", "--password-stdin")
    assert qsuite(config, monkeypatch, capsys, *add, stdin="correct horse\n")[0] == 0

    code, out, err = qsuite(config, monkeypatch, capsys, *add, stdin="correct horse\n")
    assert (code, out) == (2, "") and "User 'olga' exists already" in err

    code, _, err = qsuite(
        config, monkeypatch, capsys, "add", "vic", "--role", "viewer", "--password-stdin",
        stdin="short\n",
    )  # fmt: skip
    assert code == 2 and "Password too short: use at least 8 characters" in err

    code, _, err = qsuite(config, monkeypatch, capsys, "add", "Bad Name", "--role", "viewer")
    assert code == 2 and "Invalid user name 'Bad Name'" in err  # before asking a password

    code, _, err = qsuite(config, monkeypatch, capsys, "disable", "nobody")
    assert code == 2 and "No user 'nobody'" in err

    with pytest.raises(SystemExit) as exc:  # argparse: a role that does not exist
        qsuite(config, monkeypatch, capsys, "add", "vic", "--role", "root")
    assert exc.value.code == 2

    engine = cli_engine(config)
    try:
        results = [(action, target, result) for _, action, target, result, _ in audit_rows(engine)]
        assert results == [
            ("users.add", "olga", "ok"),
            ("users.add", "olga", "denied"),
            ("users.add", "vic", "denied"),
            ("users.disable", "nobody", "denied"),
        ]
    finally:
        engine.dispose()


def test_cli_users_when_passwd_disable_enable_then_logins_follow(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    qsuite(config, monkeypatch, capsys, "add", "vic", "--role", "viewer", "--password-stdin",
           stdin="first password\n")  # fmt: skip
    prompts = iter(["second password", "second password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(prompts))

    assert qsuite(config, monkeypatch, capsys, "passwd", "vic")[:2] == (
        0,
        "password of vic changed\n",
    )
    assert qsuite(config, monkeypatch, capsys, "disable", "vic")[:2] == (0, "vic disabled\n")
    engine = cli_engine(config)
    try:
        store = UserStore(engine)
        assert store.verify("vic", "second password") is None
        assert qsuite(config, monkeypatch, capsys, "enable", "vic")[:2] == (0, "vic enabled\n")
        assert store.verify("vic", "first password") is None
        assert store.verify("vic", "second password") == SessionUser("vic", "viewer")
    finally:
        engine.dispose()


def test_cli_users_when_typed_passwords_differ_then_exit_2_and_nothing_stored(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = iter(["one password", "another one"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(prompts))

    code, _, err = qsuite(config, monkeypatch, capsys, "add", "olga", "--role", "operator")

    assert code == 2 and "the two passwords differ" in err
    assert qsuite(config, monkeypatch, capsys, "list", "--json")[1] == "[]\n"

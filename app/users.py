"""Console users on the ``users`` table, and the audit helper the console and the CLI
share.

Passwords are hashed with argon2id (``argon2-cffi``'s :class:`~argon2.PasswordHasher`,
its recommended parameters); the hash string carries its own parameters, so when the
library's defaults change a user's hash is upgraded at their next successful login.
The plain password is never stored or logged.

Rules (checked by :class:`UserStore`, refused with a :class:`UserError` whose message
says what to change):

- names: 1-32 characters, lower-case letters, digits, ``_ . -``, starting with a letter;
  at login the name typed is trimmed and lower-cased;
- passwords: at least :data:`MIN_PASSWORD_LEN` characters, at most
  :data:`MAX_PASSWORD_LEN`, not the user name;
- roles: ``viewer`` (look), ``operator`` (also trade and control algorithms), ``admin``
  (also settings, restarts and users).

A disabled user cannot log in; their row stays for the audit trail (users are never
deleted).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from app.database import session_factory, writer
from engine.bus.commands.base import ROLE_RANK, Role
from engine.errors import QSuiteError
from engine.persistence.models.base import utcnow
from engine.persistence.models.system import ROLES, User
from engine.risk.store import audit as _append_audit

MIN_PASSWORD_LEN = 8
MAX_PASSWORD_LEN = 1024
"""Longer inputs are refused rather than hashed (no multi-megabyte "passwords")."""
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_.-]{0,31}")


@dataclass(frozen=True, slots=True)
class SessionUser:
    """Who acts in a console session, and with which role."""

    name: str
    role: Role

    def may(self, role: Role) -> bool:
        """Whether this user acts with at least ``role``."""
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A user as ``qsuite users list`` shows it (never the hash)."""

    name: str
    role: Role
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "disabled": self.disabled,
            "created_at": self.created_at.isoformat(),
            "last_login_at": None if self.last_login_at is None else self.last_login_at.isoformat(),
        }


class UserError(QSuiteError):
    """A user command that cannot be done as asked; the message says why, for the
    operator."""


class InvalidUserInput(UserError):
    """A bad name, role or password."""


class DuplicateUser(UserError):
    """The name is taken."""


class UnknownUser(UserError):
    """No user has that name."""


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidUserInput(
            f"Invalid user name {name!r}: use 1-32 lower-case letters, digits, '_', '.' "
            "or '-', starting with a letter"
        )
    return name


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise InvalidUserInput(f"Invalid role {role!r}: one of {', '.join(ROLES)}")
    return cast(Role, role)


def check_password(name: str, password: str) -> str:
    if len(password) < MIN_PASSWORD_LEN:
        raise InvalidUserInput(f"Password too short: use at least {MIN_PASSWORD_LEN} characters")
    if len(password) > MAX_PASSWORD_LEN:
        raise InvalidUserInput(f"Password too long: at most {MAX_PASSWORD_LEN} characters")
    if password.strip().lower() == name.lower():
        raise InvalidUserInput("Password must not be the user name")
    return password


class UserStore:
    """The ``users`` table. ``hasher`` defaults to argon2-cffi's recommended parameters
    (tests pass a cheaper one)."""

    def __init__(self, engine: Engine, hasher: PasswordHasher | None = None) -> None:
        self.engine = engine
        self.hasher = hasher or PasswordHasher()
        self._sessions = session_factory(engine, immediate=True)
        self._dummy_hash: str | None = None

    def add(self, name: str, role: str, password: str) -> UserInfo:
        """Create a user; refuses a taken name, a bad name or role and a weak password."""
        name, checked_role = check_name(name), check_role(role)
        password_hash = self.hasher.hash(check_password(name, password))
        with self._sessions() as session:
            if session.scalar(select(User.id).where(User.username == name)) is not None:
                raise DuplicateUser(f"User {name!r} exists already (qsuite users list)")
            user = User(username=name, password_hash=password_hash, role=checked_role)
            session.add(user)
            try:
                session.commit()
            except IntegrityError as exc:  # created by someone else meanwhile
                raise DuplicateUser(f"User {name!r} exists already") from exc
            return _info(user)

    def list(self) -> list[UserInfo]:
        with self._sessions() as session:
            return [_info(u) for u in session.scalars(select(User).order_by(User.username))]

    def count(self) -> int:
        """How many users exist (enabled or not); 0 means the first admin is still to be
        created."""
        with self._sessions() as session:
            return int(session.scalar(select(func.count()).select_from(User)) or 0)

    def set_password(self, name: str, password: str) -> None:
        password_hash = self.hasher.hash(check_password(name, password))
        with self._sessions() as session:
            self._get(session, name).password_hash = password_hash
            session.commit()

    def set_disabled(self, name: str, disabled: bool) -> UserInfo:
        with self._sessions() as session:
            user = self._get(session, name)
            user.disabled = disabled
            session.commit()
            return _info(user)

    def disable(self, name: str) -> UserInfo:
        return self.set_disabled(name, True)

    def enable(self, name: str) -> UserInfo:
        return self.set_disabled(name, False)

    def verify(self, name: str, password: str) -> SessionUser | None:
        """The user if ``password`` is theirs and they are enabled, else None."""
        checked = self.authenticate(name, password)
        return checked if isinstance(checked, SessionUser) else None

    def authenticate(self, name: str, password: str) -> SessionUser | str:
        """The user if ``password`` is theirs and they are enabled, else why not (for the
        audit log only: callers tell the person at the keyboard the same for every reason,
        and every refusal takes about as long, so nobody learns which users exist). A
        success records ``last_login_at`` and upgrades a hash whose parameters are no
        longer argon2-cffi's current ones."""
        name = name.strip().lower()
        with self._sessions() as session:
            user = session.scalar(select(User).where(User.username == name))
            if user is None or len(password) > MAX_PASSWORD_LEN:
                self._waste_time(password[:MAX_PASSWORD_LEN])
                return "unknown user" if user is None else "password too long"
            try:
                self.hasher.verify(user.password_hash, password)
            except (VerificationError, InvalidHashError):
                return "wrong password"
            if user.disabled:
                return "user disabled"
            if self.hasher.check_needs_rehash(user.password_hash):
                user.password_hash = self.hasher.hash(password)
            user.last_login_at = utcnow()
            session.commit()
            return SessionUser(user.username, check_role(user.role))

    def find(self, name: str) -> UserInfo | None:
        """The user named ``name`` as stored now, or None."""
        with self._sessions() as session:
            user = session.scalar(select(User).where(User.username == name))
            return None if user is None else _info(user)

    def _get(self, session: Any, name: str) -> User:
        user = session.scalar(select(User).where(User.username == name))
        if user is None:
            raise UnknownUser(f"No user {name!r} (qsuite users list)")
        return cast(User, user)

    def _waste_time(self, password: str) -> None:
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash("not a password of anyone")
        with contextlib.suppress(VerificationError):
            self.hasher.verify(self._dummy_hash, password)


def _info(user: User) -> UserInfo:
    return UserInfo(
        name=user.username,
        role=check_role(user.role),
        disabled=user.disabled,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )


def audit(
    engine: Engine,
    actor: str,
    action: str,
    target: str | None,
    result: str,
    detail: str | None = None,
    *,
    command_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    """Append one ``audit_log`` entry in its own transaction: who (``actor``), what
    (``action``, ``target``), ``ok``/``denied``/``error`` and why (``detail``); the time is
    now. Uses :func:`engine.risk.store.audit`, the one writer of audit rows."""
    with writer(engine).begin() as conn:
        _append_audit(conn, actor, action, target, command_id, payload or {}, result, detail)

"""Who is using this browser tab: the logged-in console user and their role.

Pages call :func:`current_user` to show what the user may do and :func:`require` in every
handler that acts — enforcement is server-side, in the handler, not by hiding buttons —
and send commands on the user's behalf (``Bridge.act``), so the control plane checks
the role again. Users live in the database (see :mod:`app.users`).

Sessions
    :func:`login` checks the password in a worker thread (argon2 is slow on purpose)
    and keeps ``{"name", "role", "expires"}`` in ``app.storage.user["session"]``: NiceGUI
    keeps that on the server, the browser holds only a cookie signed with
    ``ui.storage_secret``. A session ends ``ui.session_timeout_min`` minutes after the
    user's last page or action (:func:`confirm` renews it), at :func:`logout`, or once
    the user is disabled (the database is asked again at most every ``RECHECK_S``
    seconds). An ended session is the same as none.
Audit
    Logins (ok or denied), logouts, every action sent on a user's behalf
    (:func:`audit_action`, from ``Bridge.act``) and what the console does itself, such
    as a backtest (:func:`audit`), are appended to ``audit_log``.
Database
    The console process opens the database from its settings once, on first use
    (:class:`Accounts`, installed by :func:`configure` at start-up).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec
from loguru import logger
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from app.login_guard import LockedOut, LoginGuard
from app.settings import Settings
from app.users import SessionUser, UserStore
from app.users import audit as write_audit
from engine.bus.commands.base import ROLE_RANK, Command, Role
from engine.errors import OperationalError

__all__ = [
    "Accounts",
    "Forbidden",
    "LockedOut",
    "SessionUser",
    "accounts",
    "audit",
    "audit_action",
    "command_target",
    "configure",
    "confirm",
    "current_user",
    "login",
    "logout",
    "require",
    "session_expired",
]

DEFAULT_TIMEOUT_MIN = 480
DEFAULT_MAX_FAILURES = 5
DEFAULT_LOCKOUT_S = 30.0
RECHECK_S = 10.0
"""How stale the console's knowledge of a user's account (enabled, role) may get."""
TARGET_FIELDS = ("algo_id", "client_order_id", "alert_id", "process", "job", "symbol", "account")
"""The first of these a command (or its result) has names what an action acted on."""

clock: Callable[[], float] = time.time
"""Wall-clock seconds (replaced by tests)."""


class Forbidden(Exception):
    """The user's role does not allow the action (the message says what it needs)."""


class Accounts:
    """The console's users and audit log. The database is opened from ``settings`` on
    first use, once (``engine`` instead: use that one, for tests)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        engine: Engine | None = None,
        store: UserStore | None = None,
        timeout_min: int | None = None,
        guard: LoginGuard | None = None,
    ) -> None:
        if settings is None and engine is None and store is None:
            raise ValueError("Accounts needs settings, an engine or a store")
        self._settings = settings
        self._engine = store.engine if store is not None else engine
        self._owns_engine = False
        self._store = store
        minutes = timeout_min or (settings.ui.session_timeout_min if settings else 0)
        self.timeout_s = 60.0 * (minutes or DEFAULT_TIMEOUT_MIN)
        if guard is None:
            ui = settings.ui if settings is not None else None
            guard = LoginGuard(
                ui.login_max_failures if ui else DEFAULT_MAX_FAILURES,
                ui.login_lockout_s if ui else DEFAULT_LOCKOUT_S,
            )
        self.guard = guard
        self._lock = threading.Lock()
        self._known: dict[str, tuple[float, SessionUser | None]] = {}

    @property
    def store(self) -> UserStore:
        with self._lock:
            if self._store is None:
                if self._engine is None:
                    from app.database import open_database

                    assert self._settings is not None
                    self._engine = open_database(self._settings)
                    self._owns_engine = True
                self._store = UserStore(self._engine)
            return self._store

    def audit(
        self,
        actor: str,
        action: str,
        target: str | None,
        result: str,
        detail: str | None,
        payload: dict[str, Any] | None = None,
    ) -> None:
        write_audit(self.store.engine, actor, action, target, result, detail, payload=payload)

    def known(self, name: str) -> tuple[bool, SessionUser | None]:
        """(whether the last look-up of ``name`` is younger than ``RECHECK_S``, what it
        said: the user, or None for unknown or disabled)."""
        at, user = self._known.get(name, (0.0, None))
        return time.monotonic() - at < RECHECK_S, user

    def look_up(self, name: str) -> SessionUser | None:
        """``name`` as the database has them now (None: unknown or disabled)."""
        info = self.store.find(name)
        user = None if info is None or info.disabled else SessionUser(info.name, info.role)
        self._known[name] = (time.monotonic(), user)
        return user

    def remember(self, user: SessionUser) -> None:
        """``user`` has just logged in: no need to ask the database again for a while."""
        self._known[user.name] = (time.monotonic(), user)

    def close(self) -> None:
        if self._owns_engine and self._engine is not None:
            self._engine.dispose()


_accounts: Accounts | None = None


def configure(accounts: Accounts | None) -> None:
    """Install the console's :class:`Accounts` (None: none, as in page tests)."""
    global _accounts
    _accounts = accounts


def accounts() -> Accounts:
    if _accounts is None:
        raise OperationalError(
            "The console has no user database (session.configure was not called)"
        )
    return _accounts


def _storage() -> Any:
    from nicegui import app

    return app.storage.user


def current_user() -> SessionUser | None:
    """The user of the current browser tab, or None when nobody is logged in (or their
    session has expired, or they were disabled)."""
    storage = _storage()
    data = storage.get("session")
    if not isinstance(data, dict):
        return None
    name, role, expires = data.get("name"), data.get("role"), data.get("expires")
    if not isinstance(name, str) or role not in ROLE_RANK:
        return None
    if not isinstance(expires, int | float) or expires <= clock():
        storage.pop("session", None)
        storage["session_expired"] = True
        return None
    if _accounts is not None:
        fresh, known = _accounts.known(name)
        if fresh and known is None:  # disabled (or removed) since the login
            storage.pop("session", None)
            return None
        if fresh and known is not None:
            return known  # the role as the database has it now
    return SessionUser(name, role)


def require(role: Role) -> SessionUser:
    """The current user if their role is at least ``role``; raises :class:`Forbidden`."""
    user = current_user()
    if user is None:
        raise Forbidden("log in first")
    if not user.may(role):
        raise Forbidden(f"this needs the {role} role; you are {user.name} ({user.role})")
    return user


async def confirm() -> SessionUser | None:
    """The current user after asking the database again (when the last answer is older
    than ``RECHECK_S``), with their session renewed; None when there is none."""
    user = current_user()
    if user is None:
        return None
    storage = _storage()
    if _accounts is not None and not _accounts.known(user.name)[0]:
        try:
            now = await asyncio.to_thread(_accounts.look_up, user.name)
        except (OperationalError, SQLAlchemyError) as exc:  # keep the session; ask next time
            logger.warning("Cannot check the account of {}: {}", user.name, exc)
            now = user
        if now is None:  # disabled (or removed) since the login
            logger.info("Session of {} ended: the user is disabled", user.name)
            storage.pop("session", None)
            return None
        user = now
    session = storage.get("session")
    if isinstance(session, dict) and session.get("name") == user.name:
        storage["session"] = {
            "name": user.name,
            "role": user.role,
            "expires": clock() + (_accounts.timeout_s if _accounts else DEFAULT_TIMEOUT_MIN * 60.0),
        }
    return user


async def login(name: str, password: str) -> SessionUser | None:
    """Log this browser in as ``name``: the user, or None for a wrong name or password or
    a disabled user (the same answer for each). Audited either way. Raises
    :class:`LockedOut` while the name is locked out after too many failures (see
    :mod:`app.login_guard`; the password is not checked then) and
    :class:`OperationalError` when the database cannot be reached."""
    store = accounts()
    actor = name.strip().lower()[:64] or "?"
    try:
        store.guard.check(name)
    except LockedOut as exc:
        await audit(actor, "login", None, "denied", "locked out")
        logger.warning("Login as {} refused: locked out for {:.0f} s", actor, exc.retry_after_s)
        raise
    try:
        checked = await asyncio.to_thread(lambda: store.store.authenticate(name, password))
    except SQLAlchemyError as exc:
        raise OperationalError(f"the user database failed: {str(exc).splitlines()[0]}") from exc
    if not isinstance(checked, SessionUser):
        locked = store.guard.failed(name)
        await audit(actor, "login", None, "denied", checked)
        logger.info("Cannot log in {}: {}", actor, checked)
        if locked:
            logger.warning("{} locked out for {:.0f} s after failed logins", actor, locked)
        return None
    store.guard.succeeded(name)
    store.remember(checked)
    storage = _storage()
    storage.pop("session_expired", None)
    storage["session"] = {
        "name": checked.name,
        "role": checked.role,
        "expires": clock() + store.timeout_s,
    }
    await audit(checked.name, "login", None, "ok", f"role {checked.role}")
    logger.info("{} logged in ({})", checked.name, checked.role)
    return checked


async def logout() -> None:
    """End this browser's session (audited when there was one)."""
    user = current_user()
    _storage().pop("session", None)
    if user is not None:
        await audit(user.name, "logout", None, "ok", None)


def session_expired() -> bool:
    """Whether this browser's last session ended by timeout (asked once: it forgets)."""
    return bool(_storage().pop("session_expired", False))


async def audit_action(
    actor: str, command: Command, result: object, outcome: str, detail: str | None
) -> None:
    """One ``audit_log`` entry for ``command`` sent on ``actor``'s behalf: its type tag,
    what it acted on, ``outcome`` (ok/denied/error) and ``detail``. A failure to write is
    logged, never raised (the action has happened or been refused already)."""
    tag = type(command).__struct_config__.tag
    payload = msgspec.to_builtins(command)
    for key in ("actor", "role", "type"):
        payload.pop(key, None)
    await audit(actor, str(tag), command_target(command, result), outcome, detail, payload)


def command_target(command: Command, result: object = None) -> str | None:
    """What ``command`` acts on (an algo, an order, a symbol …), from its fields or, when
    the command leaves it to the engine (a new order's id), from the result."""
    for field in TARGET_FIELDS:
        for source in (command, result):
            value = getattr(source, field, None)
            if value not in (None, ""):
                return str(value)
    scope, key = getattr(command, "scope", None), getattr(command, "key", None)
    if isinstance(scope, str):  # HaltTrading / ResumeTrading
        return f"{scope}:{key}" if key else scope
    return None


async def audit(
    actor: str,
    action: str,
    target: str | None,
    outcome: str,
    detail: str | None,
    payload: dict[str, Any] | None = None,
) -> None:
    """One ``audit_log`` entry written off the event loop; a failure to write is logged,
    never raised (nothing is written in page tests without a database)."""
    if _accounts is None:
        return  # page tests without a database
    try:
        await asyncio.to_thread(_accounts.audit, actor, action, target, outcome, detail, payload)
    except Exception as exc:
        logger.error("Cannot write the audit entry {} {} by {}: {}", action, outcome, actor, exc)

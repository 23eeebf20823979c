"""``/login`` and ``/logout``: the console's only pages open without a session.

The login form sends the browser back to the page it asked for (``?next=``, a path on
this console only). With no users in the database yet it says how to create the first
admin; the name and password are checked server-side (:func:`ui.session.login`) and a
refusal says the same for every reason, so the form does not reveal which users exist.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from fastapi.responses import RedirectResponse
from loguru import logger
from nicegui import ui
from sqlalchemy.exc import SQLAlchemyError

from engine.errors import OperationalError
from ui import session

FIRST_ADMIN = "qsuite users add admin --role admin"
REFUSED = "Wrong user name or password, or the user is disabled."


def url(next_path: str) -> str:
    """The login page, coming back to ``next_path`` after logging in."""
    return "/login" if safe_next(next_path) == "/" else f"/login?next={quote(next_path)}"


def safe_next(next_path: str | None) -> str:
    """``next_path`` when it is a page of this console, else ``/`` (no open redirect to
    another site, no loop back to the login)."""
    if (
        not next_path
        or not next_path.startswith("/")
        or next_path.startswith(("//", "/\\"))
        or next_path.split("?")[0] in ("/login", "/logout")
    ):
        return "/"
    return next_path


def register() -> None:
    """Add ``/login`` and ``/logout`` to the app (unguarded)."""

    @ui.page("/login", title="QSuite · log in")
    async def login_page(next: str = "/") -> RedirectResponse | None:
        target = safe_next(next)
        if await session.confirm() is not None:
            return RedirectResponse(target)
        await build(target)
        return None

    @ui.page("/logout")
    async def logout_page() -> RedirectResponse:
        await session.logout()
        return RedirectResponse("/login")


async def _users_exist() -> bool | str:
    """Whether any user exists, or why that cannot be told."""
    try:
        return await asyncio.to_thread(lambda: session.accounts().store.count() > 0)
    except (OperationalError, SQLAlchemyError) as exc:
        logger.error("Cannot count the console users: {}", exc)
        return str(exc).splitlines()[0]


async def build(target: str) -> None:
    """The login form; after a successful login the browser goes to ``target``."""
    exist = await _users_exist()
    expired = session.session_expired()
    with ui.card().classes("absolute-center w-96 gap-2").props('data-testid="login"'):
        ui.label("QSuite console").classes("text-h6")
        if isinstance(exist, str):
            ui.label(f"Cannot reach the user database: {exist}").classes("text-negative").props(
                'data-testid="login-problem"'
            ).mark("login-problem")
        elif not exist:
            with ui.column().classes("gap-1").props('data-testid="first-admin"') as first:
                first.mark("first-admin")
                ui.label(
                    "No console users yet. On the machine running QSuite, create the first "
                    "admin (it asks for the password twice):"
                )
                ui.code(FIRST_ADMIN, language="bash").classes("w-full")
                ui.label(
                    "then log in here as admin. Add the others the same way, each with a "
                    "role: viewer, operator or admin."
                )
        if expired:
            ui.label("Your session expired; log in again.").classes("text-warning").props(
                'data-testid="login-expired"'
            ).mark("login-expired")
        name = ui.input("User name").props(
            'autofocus data-testid="login-name" autocomplete=username'
        )
        name.classes("w-full").mark("login-name")
        password = ui.input("Password", password=True, password_toggle_button=True)
        password.props('data-testid="login-password" autocomplete=current-password')
        password.classes("w-full").mark("login-password")
        message = ui.label("").classes("text-caption text-negative")
        message.props('data-testid="login-message"').mark("login-message")

        async def submit() -> None:
            if not (name.value or "").strip() or not password.value:
                message.set_text("Enter your user name and password.")
                return
            button.disable()
            try:
                user = await session.login(name.value, password.value)
            except session.LockedOut as exc:
                password.set_value("")
                message.set_text(f"{exc}.")
                return
            except OperationalError as exc:
                logger.error("Cannot log in: {}", exc)
                message.set_text(f"Cannot log in now: {exc}")
                return
            finally:
                button.enable()
            if user is None:
                password.set_value("")
                message.set_text(REFUSED)
                return
            ui.navigate.to(target)

        name.on("keydown.enter", submit)
        password.on("keydown.enter", submit)
        button = ui.button("Log in", on_click=submit).props('data-testid="login-submit"')
        button.classes("w-full").mark("login-submit")

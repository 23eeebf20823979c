"""Base classes of control-plane commands and results (see :mod:`engine.bus.commands`)."""

from __future__ import annotations

from typing import ClassVar, Literal

import msgspec

Role = Literal["viewer", "operator", "admin"]
ROLE_RANK: dict[str, int] = {"viewer": 0, "operator": 1, "admin": 2}


class Command(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Common fields of every command."""

    command_id: str = ""
    actor: str = ""
    """Who asked (user name or ``automation``); audited by the serving process."""
    role: Role = "viewer"
    """The role the caller acts with; checked against the command's ``min_role``.
    Defaults to the least privilege: a command that wants more must say so."""

    target: ClassVar[str] = "any"
    mutating: ClassVar[bool] = False
    min_role: ClassVar[Role] = "viewer"


class Result(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of typed command results."""

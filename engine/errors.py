"""The few exception classes of QSuite, one meaning each.

- ``TransientError``: the operation may succeed if retried (with backoff).
- ``OperationalError``: stop what you are doing and tell the operator.
- ``ConfigError``: refuse to start; the message names the setting.
- ``CommandError``: a control command was refused; carries a stable ``code``.
- ``EngineUnreachable``: the control client gave up on an engine process.

Rejections of trading intent (orders, algorithms) are *events* with a reason
code, never exceptions; these classes are for process and boundary failures.
"""

from __future__ import annotations


class QSuiteError(Exception):
    """Base class of every QSuite error."""


class TransientError(QSuiteError):
    """A temporary failure: retrying later (with backoff) may succeed."""


class OperationalError(QSuiteError):
    """A failure an operator must act on; the component stops what it was doing."""


class ConfigError(QSuiteError):
    """A bad or missing setting. ``key`` is the dotted setting name."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"Invalid setting `{key}`: {message}")


class ErrorCode:
    """Stable codes of control-plane errors (part of the wire contract)."""

    BAD_REQUEST = "bad_request"  # frame could not be decoded as a command
    UNKNOWN_COMMAND = "unknown_command"  # valid frame, no handler in this process
    INVALID = "invalid"  # command decoded but its fields are not acceptable
    FORBIDDEN = "forbidden"  # caller's role does not allow the command
    NOT_FOUND = "not_found"  # the command names something that does not exist
    CONFLICT = "conflict"  # illegal in the current state
    INTERNAL = "internal"  # the handler failed; nothing was changed
    UNAVAILABLE = "unavailable"  # the process cannot serve this now (e.g. shutting down)
    DENIED = "denied"  # the pre-trade risk gate refused the order (reason in the message)


class CommandError(QSuiteError):
    """A control command was refused. ``code`` is one of :class:`ErrorCode`."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class EngineUnreachable(TransientError):
    """The control client got no answer from an engine process."""

    def __init__(self, endpoint: str, attempts: int, timeout_ms: int) -> None:
        self.endpoint = endpoint
        super().__init__(
            f"Engine unreachable at {endpoint}: no reply after {attempts} attempt(s) of "
            f"{timeout_ms} ms. Is `qsuite run` (or that process) running, and does the "
            f"endpoint match the settings?"
        )

"""Logging: structured JSON lines per process to its own file, readable lines on stderr.

Every record carries bound context (``process``, and where known ``component``,
``symbol``, ``algo_id``, ``command_id``). Use ``logger.bind(component=...)`` in services.
"""

from __future__ import annotations

import sys
from pathlib import Path

from loguru import logger

_STDERR_FORMAT = (
    "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{extra[process]}</cyan> | {message}"
)
_state: dict[str, object] = {"level": "INFO", "process": "", "log_dir": None, "handlers": []}


def configure_logging(process: str, level: str, log_dir: Path | None) -> None:
    """Install this process's sinks; safe to call again (replaces them)."""
    logger.remove()
    logger.configure(extra={"process": process})
    handlers = [logger.add(sys.stderr, level=level, format=_STDERR_FORMAT, backtrace=False)]
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logger.add(
                log_dir / f"{process}.jsonl",
                level=level,
                serialize=True,
                rotation="50 MB",
                retention=5,
                backtrace=False,
            )
        )
    _state.update(level=level, process=process, log_dir=log_dir, handlers=handlers)


def current_level() -> str:
    return str(_state["level"])


def set_level(level: str) -> str:
    """Change the level of every sink at runtime; returns the previous level."""
    previous = current_level()
    log_dir = _state["log_dir"]
    configure_logging(str(_state["process"]), level, log_dir if isinstance(log_dir, Path) else None)
    return previous


def quiet_logging() -> None:
    """For CLI commands that print their own output: only errors reach stderr."""
    logger.remove()
    logger.add(sys.stderr, level="ERROR", format="{level}: {message}")

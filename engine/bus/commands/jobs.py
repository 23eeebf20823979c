"""Background-sync commands, served by the ``scheduler`` process (APScheduler jobs)."""

from __future__ import annotations

from typing import ClassVar, Literal

import msgspec

from engine.bus.commands.base import Command, Result, Role
from engine.bus.commands.market import Symbol
from engine.bus.events import Origin


class JobInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    trigger: str
    """Human-readable schedule, e.g. ``interval[0:01:00]`` or ``cron[hour='6']``."""
    next_run: int | None
    """UTC ns; None when paused."""
    last_run: int | None
    last_status: Literal["ok", "partial", "failed", "skipped", "running", "never"]
    last_error: str | None = None


class JobList(Result, frozen=True, kw_only=True, tag="JobList.v1"):
    jobs: list[JobInfo]


class JobStarted(Result, frozen=True, kw_only=True, tag="JobStarted.v1"):
    job: str
    run_at: int
    """When the run was scheduled (now), UTC ns; its outcome lands in the ingestion log."""


class ListJobs(Command, frozen=True, kw_only=True, tag="ListJobs.v1"):
    """Every background job with its schedule, last run and next run."""

    target: ClassVar[str] = "scheduler"


class RunJob(Command, frozen=True, kw_only=True, tag="RunJob.v1"):
    """Run a job now (it still never runs twice at once)."""

    job: str

    target: ClassVar[str] = "scheduler"
    mutating: ClassVar[bool] = True
    min_role: ClassVar[Role] = "operator"


class RequestBackfill(Command, frozen=True, kw_only=True, tag="RequestBackfill.v1"):
    """Backfill symbols over ``[start, end)`` (UTC ns; ``end`` None = now) in the background."""

    symbols: list[Symbol]
    interval: str = "1d"
    start: int
    end: int | None = None
    source: Origin = "yahoo"

    target: ClassVar[str] = "scheduler"
    mutating: ClassVar[bool] = True
    min_role: ClassVar[Role] = "operator"


RESULTS = (JobList, JobStarted)
COMMANDS = (ListJobs, RunJob, RequestBackfill)

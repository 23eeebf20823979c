"""The scheduler process: APScheduler (3.x) runs the background-sync jobs.

Jobs (times UTC; a thread pool of :data:`POOL_THREADS`; every job coalesced, never two
runs of one job at once, a run more than ``sync.misfire_grace_s`` late is skipped):

``backfill``      cron, daily at ``sync.daily_backfill_at`` (and right after start when
                  ``sync.backfill_on_start``): the watchlist over the last
                  ``sync.backfill_days`` days of ``sync.backfill_interval`` bars.
``fundamentals``  cron, daily at ``sync.fundamentals_at``: the instrument master.
``gap_repair``    every ``sync.gap_repair_every_s``: gaps the ingest path queued.
``analytics_snapshot``  every ``sync.snapshot_every_s`` (0: not scheduled): each
                  account's P&L and exposure at the price cache's marks
                  (:mod:`engine.sync.performance`), stored for ``GetPerformance``.
``backfill-request-<command_id>``  one-off runs asked for with ``RequestBackfill``
                  (the id comes from the command, so a retried command queues one run).

The job functions live in :mod:`engine.sync.jobs`; each writes its ingestion-log rows.
Data comes from the configured source; with ``feed.source = "synthetic"`` from the
synthetic market (bars flagged simulated by the ingest path). A source that is down
makes a run fail fast (logged ``failed`` with the reason, shown in health); the next
run tries again. No fallback to simulated data here: the store keeps real history.

The chain: a backfill announces each symbol it stored with ``BackfillCompleted`` on
``md.backfill.<symbol>`` (``engine.bus.topics.backfill``). That event *is* the hand-off
to the analysis process, which re-evaluates the symbol's indicators and signals when it
sees it; the scheduler knows nothing about its consumers. Jobs run in APScheduler
threads, so they publish through ``ctx.call_soon_threadsafe`` (sockets belong to the loop).

Bookkeeping for ``ListJobs`` and health: the job wrapper marks a run ``running`` in the
job's thread and records its outcome when it returns (so a fast run can never be left
looking "running"); the APScheduler listener records what the wrapper never sees — a
missed run (``skipped``) and a run refused because one is still going.

Control: ``ListJobs`` → ``JobList``; ``RunJob`` → ``JobStarted`` (``not_found`` for an
unknown job, ``conflict`` when it is running); ``RequestBackfill`` → ``JobStarted``
(``invalid`` for a bad interval, range or source); ``GetPerformance`` →
``AccountPerformance`` from the stored snapshots (``invalid`` for a capital the account's
losses exceed).

Metrics: ``qsuite_sync_job_runs_total{job,status}``, ``qsuite_sync_rows_total{job}``,
``qsuite_sync_job_skipped_total{job,reason}`` (``missed``, ``running``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from loguru import logger

from app.settings import FeedSettings, SyncSettings
from engine.analytics.snapshots import account_report
from engine.bus.commands.analytics import AccountPerformance, GetPerformance
from engine.bus.commands.jobs import (
    JobInfo,
    JobList,
    JobStarted,
    ListJobs,
    RequestBackfill,
    RunJob,
)
from engine.bus.events import Event
from engine.clock import Clock
from engine.errors import CommandError, ErrorCode
from engine.intervals import INTERVAL_SECONDS
from engine.service import HealthStatus, ServiceContext
from engine.sync import jobs
from engine.sync.jobs import STOPPING, JobOutcome
from engine.sync.performance import cache_marks, snapshot_performance
from feeds.ingest import Ingestor
from feeds.source import MarketSource

JobStatus = Literal["ok", "partial", "failed", "skipped", "running", "never"]

#: The scheduled jobs, in the order ``ListJobs`` shows them.
JOB_NAMES: dict[str, str] = {
    "backfill": "Backfill the watchlist",
    "fundamentals": "Refresh fundamentals",
    "gap_repair": "Repair gaps in stored bars",
    "analytics_snapshot": "Snapshot account performance",
}
REQUEST_PREFIX = "backfill-request-"
#: Ingestion-log job name (and metrics label) of operator-requested backfills.
REQUEST_JOB = "backfill_request"
POOL_THREADS = 2
#: How long ``stop`` waits for running jobs (they stop between symbols).
STOP_TIMEOUT_S = 5.0
#: Finished one-off requests ``ListJobs`` still shows; request ids remembered.
KEEP_FINISHED_REQUESTS = 20
KEEP_REQUEST_IDS = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(slots=True)
class _Record:
    id: str
    name: str
    trigger: str
    running_since: int | None = None
    last_run: int | None = None
    last_status: JobStatus = "never"
    last_error: str | None = None


class SchedulerService:
    """Hosts the background-sync jobs of the ``scheduler`` process (module docstring)."""

    def __init__(
        self,
        sync: SyncSettings,
        feed: FeedSettings,
        *,
        ingestor: Ingestor,
        source: MarketSource,
        fallback_source: MarketSource | None,
        clock: Clock,
    ) -> None:
        self.sync = sync
        self.feed = feed
        self.ingestor = ingestor
        self.clock = clock
        #: Where the jobs fetch from: the configured source, or the synthetic market when
        #: it is the configured source.
        self.source: MarketSource = source
        if feed.source == "synthetic" and fallback_source is not None:
            self.source = fallback_source
        #: What ``RequestBackfill.source`` may name.
        self.sources: dict[str, MarketSource] = {
            s.name: s for s in (source, fallback_source) if s is not None
        }
        self._ctx: ServiceContext | None = None
        self._scheduler: Any = None
        self._records: dict[str, _Record] = {}
        self._requests: OrderedDict[str, JobStarted] = OrderedDict()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._cancel = threading.Event()
        self._log = logger.bind(component="scheduler")

    # --- Service -----------------------------------------------------------------------
    def start(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        ctx.register_command(ListJobs, self._list_jobs)
        ctx.register_command(RunJob, self._run_job)
        ctx.register_command(RequestBackfill, self._request_backfill)
        ctx.register_command(GetPerformance, self._get_performance)
        scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(POOL_THREADS)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": max(1, round(self.sync.misfire_grace_s)),
            },
        )
        scheduler.add_listener(
            self._on_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_ERROR
        )
        on_start = {"next_run_time": datetime.now(UTC)} if self.sync.backfill_on_start else {}
        self._add(
            scheduler, "backfill", self._backfill, _daily(self.sync.daily_backfill_at), on_start
        )
        self._add(scheduler, "fundamentals", self._fundamentals, _daily(self.sync.fundamentals_at))
        every = IntervalTrigger(seconds=self.sync.gap_repair_every_s, timezone=UTC)
        self._add(scheduler, "gap_repair", self._repair_gaps, every)
        if self.sync.snapshot_every_s > 0:
            every = IntervalTrigger(seconds=self.sync.snapshot_every_s, timezone=UTC)
            self._add(scheduler, "analytics_snapshot", self._snapshot, every)
        scheduler.start()
        self._scheduler = scheduler
        self._log.info(
            "Scheduler started: {} from {}{}",
            ", ".join(f"{job.id} {job.trigger}" for job in scheduler.get_jobs()),
            self.source.name,
            "; backfill now" if self.sync.backfill_on_start else "",
        )

    def health(self) -> tuple[HealthStatus, str]:
        with self._lock:
            failed = [
                f"{r.id} failed {_hhmm(r.last_run)}: {r.last_error or 'no reason given'}"
                for r in self._records.values()
                if r.id in JOB_NAMES and r.last_status == "failed"
            ]
        return ("degraded", "; ".join(failed)) if failed else ("up", "")

    def stop(self) -> None:
        """Stop scheduling, let running jobs stop between symbols (at most
        :data:`STOP_TIMEOUT_S`), then release the ingest pipeline."""
        self._cancel.set()
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)  # queued runs then see the cancel and skip
        deadline = time.monotonic() + STOP_TIMEOUT_S
        with self._idle:
            while busy := [r.id for r in self._records.values() if r.running_since is not None]:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._idle.wait(left)
        if busy:
            self._log.warning(
                "Cannot stop cleanly: job(s) {} still running after {}s; their "
                "ingestion-log rows stay 'running'",
                ", ".join(busy),
                STOP_TIMEOUT_S,
            )
            return  # they still use the pipeline; the process exit releases it
        self.ingestor.log.close()
        if self.ingestor.cache is not None:
            self.ingestor.cache.close()
        self.ingestor.engine.dispose()

    # --- the jobs ----------------------------------------------------------------------
    def _backfill(self) -> JobOutcome:
        return jobs.backfill_watchlist(
            self.ingestor,
            self.source,
            self.feed.watchlist,
            self.sync.backfill_interval,
            self.sync.backfill_days,
            clock=self.clock,
            publish=self._publish,
            cancel=self._cancel,
        )

    def _fundamentals(self) -> JobOutcome:
        return jobs.refresh_fundamentals(
            self.ingestor.engine, self.source, self.feed.watchlist, cancel=self._cancel
        )

    def _repair_gaps(self) -> JobOutcome:
        if self.ingestor.gaps is None:
            return JobOutcome("skipped", error="the ingest pipeline has no gap queue")
        return jobs.repair_gaps(
            self.ingestor,
            self.source,
            self.ingestor.gaps,
            publish=self._publish,
            cancel=self._cancel,
        )

    def _snapshot(self) -> JobOutcome:
        marks = cache_marks(self.ingestor.cache)
        return snapshot_performance(self.ingestor.engine, marks, clock=self.clock)

    def _publish(self, topic: str, event: Event) -> None:
        ctx = self._ctx
        if ctx is not None:  # job threads hand events to the loop, which owns the socket
            ctx.call_soon_threadsafe(lambda: ctx.publish(topic, event))

    def _add(
        self,
        scheduler: Any,
        job_id: str,
        work: Callable[[], JobOutcome],
        trigger: Any,
        options: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        with self._lock:
            self._records[job_id] = _Record(job_id, name or JOB_NAMES[job_id], str(trigger))
        scheduler.add_job(
            self._execute,
            trigger,
            args=(job_id, work),
            id=job_id,
            name=name or JOB_NAMES[job_id],
            **(options or {}),
        )

    def _execute(self, job_id: str, work: Callable[[], JobOutcome]) -> JobOutcome:
        """Run one job in an APScheduler thread: bookkeeping, outcome, never raises."""
        if self._cancel.is_set():
            return JobOutcome("skipped", error=STOPPING)
        log = self._log.bind(job=job_id)
        started, t0 = self.clock.time_ns(), time.monotonic()
        with self._lock:
            record = self._records[job_id]
            record.running_since = started
        try:
            outcome = work()
        except Exception as exc:
            log.opt(exception=exc).error("Cannot run job {}: {}", job_id, exc)
            outcome = JobOutcome("failed", error=f"{type(exc).__name__}: {exc}")
        label = REQUEST_JOB if job_id.startswith(REQUEST_PREFIX) else job_id
        with self._idle:
            record.running_since = None
            record.last_run, record.last_status = started, outcome.status
            record.last_error = outcome.error
            self._forget_old_requests()
            self._idle.notify_all()
            self._counter(
                "qsuite_sync_job_runs_total", "Job runs", job=label, status=outcome.status
            ).inc()
            self._counter("qsuite_sync_rows_total", "Rows written by jobs", job=label).inc(
                outcome.rows
            )
        report = log.warning if outcome.status == "failed" else log.info
        report(
            "Job {} {} in {:.1f}s: {} rows{}",
            job_id,
            outcome.status,
            time.monotonic() - t0,
            outcome.rows,
            f" ({outcome.error})" if outcome.error else "",
        )
        return outcome

    def _on_event(self, event: Any) -> None:
        """APScheduler listener (its threads): what the job wrapper never sees."""
        job_id: str = event.job_id
        label = REQUEST_JOB if job_id.startswith(REQUEST_PREFIX) else job_id
        if event.code == EVENT_JOB_MAX_INSTANCES:
            with self._lock:
                self._counter(
                    "qsuite_sync_job_skipped_total",
                    "Job runs not started",
                    job=label,
                    reason="running",
                ).inc()
            self._log.bind(job=job_id).warning("Cannot start job {}: it is still running", job_id)
            return
        if event.code == EVENT_JOB_MISSED:
            when: datetime = event.scheduled_run_time
            status: JobStatus = "skipped"
            error = (
                f"missed its {when:%H:%M} UTC run (more than {self.sync.misfire_grace_s:g}s late)"
            )
        else:  # EVENT_JOB_ERROR: _execute catches everything; a safety net
            when, status = event.scheduled_run_time, "failed"
            error = f"{type(event.exception).__name__}: {event.exception}"
        with self._lock:
            record = self._records.get(job_id)
            if record is not None:
                record.running_since = None
                record.last_run = _ns(when)
                record.last_status, record.last_error = status, error
            if status == "skipped":
                self._counter(
                    "qsuite_sync_job_skipped_total",
                    "Job runs not started",
                    job=label,
                    reason="missed",
                ).inc()
        self._log.bind(job=job_id).warning("Cannot run job {}: {}", job_id, error)

    # --- commands ----------------------------------------------------------------------
    def _list_jobs(self, _cmd: ListJobs) -> JobList:
        scheduled = {job.id: job for job in self._scheduler.get_jobs()} if self._scheduler else {}
        with self._lock:
            records = list(self._records.values())
            infos = []
            for r in records:
                job = scheduled.get(r.id)
                next_run = getattr(job, "next_run_time", None)
                infos.append(
                    JobInfo(
                        id=r.id,
                        name=r.name,
                        trigger=str(job.trigger) if job is not None else r.trigger,
                        next_run=_ns(next_run) if next_run is not None else None,
                        last_run=r.running_since or r.last_run,
                        last_status="running" if r.running_since is not None else r.last_status,
                        last_error=None if r.running_since is not None else r.last_error,
                    )
                )
        return JobList(jobs=infos)

    def _run_job(self, cmd: RunJob) -> JobStarted:
        scheduler = self._running_scheduler()
        with self._lock:
            record = self._records.get(cmd.job)
            running_since = record.running_since if record is not None else None
        if running_since is not None:
            raise CommandError(
                ErrorCode.CONFLICT,
                f"job {cmd.job} is already running (since {_hhmm(running_since, seconds=True)} "
                f"UTC); a job never runs twice at once",
            )
        try:
            scheduler.modify_job(cmd.job, next_run_time=datetime.now(UTC))
        except JobLookupError:
            ids = ", ".join(self._runnable(scheduler))
            raise CommandError(ErrorCode.NOT_FOUND, f"no job {cmd.job!r}; jobs: {ids}") from None
        self._log.bind(job=cmd.job, command_id=cmd.command_id).info(
            "Job {} run now by {}", cmd.job, cmd.actor or "unknown"
        )
        return JobStarted(job=cmd.job, run_at=self.clock.time_ns())

    def _request_backfill(self, cmd: RequestBackfill) -> JobStarted:
        job_id = f"{REQUEST_PREFIX}{cmd.command_id}"
        with self._lock:
            known = self._requests.get(job_id)
        if known is not None:  # a retried command: the run is already queued (or done)
            return known
        scheduler = self._running_scheduler()
        source = self._validate(cmd)
        now = self.clock.time_ns()
        end = cmd.end if cmd.end is not None else now
        symbols = list(dict.fromkeys(cmd.symbols))
        work = partial(
            jobs.backfill,
            self.ingestor,
            source,
            symbols,
            cmd.interval,
            cmd.start,
            end,
            job=REQUEST_JOB,
            publish=self._publish,
            cancel=self._cancel,
        )
        shown = ", ".join(symbols[:3]) + (f" +{len(symbols) - 3}" if len(symbols) > 3 else "")
        name = f"Backfill {shown} {cmd.interval} from {source.name} (by {cmd.actor or 'unknown'})"
        trigger = DateTrigger(run_date=datetime.now(UTC), timezone=UTC)
        # a request runs however late it starts behind other jobs: no misfire limit
        self._add(scheduler, job_id, work, trigger, {"misfire_grace_time": None}, name=name)
        reply = JobStarted(job=job_id, run_at=now)
        with self._lock:
            self._requests[job_id] = reply
            while len(self._requests) > KEEP_REQUEST_IDS:
                self._requests.popitem(last=False)
        self._log.bind(job=job_id, command_id=cmd.command_id).info("Queued: {}", name)
        return reply

    def _get_performance(self, cmd: GetPerformance) -> AccountPerformance:
        if not cmd.capital.is_finite() or cmd.capital <= 0:
            raise CommandError(ErrorCode.INVALID, f"capital must be positive, not {cmd.capital}")
        try:
            return account_report(self.ingestor.engine, cmd)
        except ValueError as exc:  # the losses exceed the capital
            raise CommandError(
                ErrorCode.INVALID,
                f"Cannot compute the performance of {cmd.account}: {exc}; give a larger capital",
            ) from None

    def _validate(self, cmd: RequestBackfill) -> MarketSource:
        if cmd.interval not in INTERVAL_SECONDS:
            known = ", ".join(INTERVAL_SECONDS)
            raise CommandError(
                ErrorCode.INVALID, f"unknown interval {cmd.interval!r}; use one of {known}"
            )
        if not cmd.symbols:
            raise CommandError(ErrorCode.INVALID, "no symbols to backfill")
        end = cmd.end if cmd.end is not None else self.clock.time_ns()
        if cmd.start < 0 or cmd.start >= end:
            raise CommandError(
                ErrorCode.INVALID,
                f"the range [{cmd.start}, {end}) is empty: start must be before end (UTC ns)",
            )
        source = self.sources.get(cmd.source)
        if source is None:
            raise CommandError(
                ErrorCode.INVALID,
                f"source {cmd.source!r} is not available in the scheduler; "
                f"it has: {', '.join(sorted(self.sources))}",
            )
        return source

    # --- internals ---------------------------------------------------------------------
    def _running_scheduler(self) -> Any:
        if self._scheduler is None or self._cancel.is_set():
            raise CommandError(ErrorCode.UNAVAILABLE, "the scheduler is not running")
        return self._scheduler

    def _runnable(self, scheduler: Any) -> list[str]:
        scheduled = {job.id for job in scheduler.get_jobs()}
        with self._lock:
            return [job_id for job_id in self._records if job_id in scheduled]

    def _forget_old_requests(self) -> None:
        """Keep the newest finished one-off requests (called with the lock held)."""
        finished = [
            r.id
            for r in self._records.values()
            if r.id.startswith(REQUEST_PREFIX) and r.running_since is None and r.last_run
        ]
        for job_id in finished[:-KEEP_FINISHED_REQUESTS]:
            del self._records[job_id]

    def _counter(self, name: str, help: str, **labels: str) -> Any:
        assert self._ctx is not None
        return self._ctx.stats.counter(name, help, **labels)


def _daily(at: str) -> CronTrigger:
    hour, minute = (int(part) for part in at.split(":"))
    return CronTrigger(hour=hour, minute=minute, timezone=UTC)


def _ns(when: datetime) -> int:
    return (when - _EPOCH) // _MICROSECOND * 1000


def _hhmm(ns: int | None, *, seconds: bool = False) -> str:
    if ns is None:
        return "never"
    when = datetime.fromtimestamp(ns / 1e9, UTC)
    return when.strftime("%H:%M:%S" if seconds else "%H:%M")

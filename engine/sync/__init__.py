"""Background sync: the scheduler process's APScheduler jobs.

:mod:`engine.sync.jobs` holds the jobs as plain functions (backfill, fundamentals
refresh, gap repair), :mod:`engine.sync.service` the :class:`SchedulerService` that
schedules them and serves ``ListJobs``, ``RunJob`` and ``RequestBackfill``.

Chained work crosses processes as events, not calls: a finished backfill of a symbol
publishes ``BackfillCompleted`` on ``md.backfill.<symbol>``, and that event is the
hand-off to the analysis process's re-evaluation of the symbol.
"""

from engine.sync.service import SchedulerService

__all__ = ["SchedulerService"]

"""The report schedule: APScheduler 3.x, its jobs stored in the ledger's own database.

One job per report kind, with a fixed id, so every service instance sharing the database sees
the same three jobs. Jobs coalesce (a run missed several times runs once) and have no misfire
limit, so a period close missed while the service was down is made up when it starts. The
job's scheduled time, not the time it finally runs, says which period closed. Whether a report
is sent is decided by the database (`reports.deliver`), so two instances that both run a job
still send each report once.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from apscheduler.events import EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.executors.base import BaseExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger

from ledger.calendar import quarter_of
from ledger.db import make_engine
from ledger.rulebook import Calendar
from reports.model import REPORT_KINDS, ReportKind

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
JOB_IDS: dict[ReportKind, str] = {kind: f"mailroom-report-{kind}" for kind in REPORT_KINDS}


@dataclass(frozen=True)
class Schedule:
    """Which reports go out automatically, and when: a day of the month after each close."""

    kinds: tuple[ReportKind, ...] = REPORT_KINDS
    day: int = 1
    hour: int = 8
    minute: int = 0


def close_months(kind: ReportKind, calendar: Calendar) -> str:
    """The months in which a period of this kind has just closed, as a cron field."""
    if kind == "monthly":
        return "*"
    if kind == "annual":
        return str(calendar.year_start_month)
    starts = {
        (calendar.year_start_month - 1 + k * calendar.months_per_quarter) % 12 + 1
        for k in range(12 // calendar.months_per_quarter)
    }
    return ",".join(str(m) for m in sorted(starts))


def trigger_for(
    kind: ReportKind, schedule: Schedule, calendar: Calendar, zone: tzinfo
) -> CronTrigger:
    return CronTrigger(
        month=close_months(kind, calendar),
        day=schedule.day,
        hour=schedule.hour,
        minute=schedule.minute,
        timezone=zone,
    )


def closed_period(kind: ReportKind, fire_time: datetime, zone: tzinfo, calendar: Calendar) -> str:
    """The period that closed before a scheduled run: the one ending before its month began."""
    local = fire_time.astimezone(zone)
    last = datetime(local.year, local.month, 1, tzinfo=zone) - timedelta(microseconds=1)
    if kind == "monthly":
        return f"{last.year}-{last.month:02d}"
    quarter = quarter_of(last, zone, calendar)
    return quarter.label if kind == "quarterly" else str(quarter.year)


def period_closed(kind: str) -> str:
    """The callable stored with every report job (APScheduler needs an importable one).

    The service's `ReportExecutor` runs the report itself, with the service's ledger: the
    stored job only names the kind.
    """
    return kind


class ReportExecutor(BaseExecutor):  # type: ignore[misc]
    """Runs a due report job as `run(kind, scheduled_time)` on one worker thread."""

    def __init__(self, run: Callable[[ReportKind, datetime], None]) -> None:
        super().__init__()
        self._run = run
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="reports")

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        scheduled = run_times[-1]
        kind = job.args[0]

        def done(future: concurrent.futures.Future[None]) -> None:
            exc = future.exception()
            if exc is not None:
                self._run_job_error(job.id, exc, exc.__traceback__)
                return
            event = JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, job._jobstore_alias, scheduled)
            self._run_job_success(job.id, [event])

        self._pool.submit(self._run, kind, scheduled).add_done_callback(done)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait)


def _on_clock(func: Callable[..., Any], clock: Clock) -> types.FunctionType:
    """`func` (an APScheduler method) with `datetime.now` answered by `clock`.

    APScheduler 3 reads the wall clock with `datetime.now` inside `_process_jobs` and has no
    hook for another clock; this gives the tests (and a demo) a clock that starts elsewhere.
    """

    class ClockedDatetime(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
            return clock().astimezone(tz)

    namespace = dict(func.__globals__)
    namespace["datetime"] = ClockedDatetime
    return types.FunctionType(
        func.__code__, namespace, func.__name__, func.__defaults__, func.__closure__
    )


def offset_clock(start: datetime) -> Clock:
    """A clock that reads `start` now and runs at the normal rate from there."""
    if start.tzinfo is None:
        raise ValueError("the clock's start needs a time zone")
    origin = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - origin)


class ReportScheduler:
    """The scheduled reports of one service instance; `run(kind, period)` sends a report."""

    def __init__(
        self,
        database_url: str,
        run: Callable[[ReportKind, str], object],
        schedule: Schedule,
        calendar: Calendar,
        zone: tzinfo,
        clock: Clock | None = None,
        retry_delays: tuple[float, ...] = (60.0, 300.0, 900.0),
    ) -> None:
        self._url = database_url
        # A run that fails (the database away, say) is tried again after these many seconds:
        # the stored job has already moved on to the next period.
        self.retry_delays = retry_delays
        self._stopping = threading.Event()
        self._run = run
        self.schedule = schedule
        self.calendar = calendar
        self.zone = zone
        self.clock: Clock = clock or (lambda: datetime.now(zone))
        self._scheduler: BackgroundScheduler | None = None

    def _fire(self, kind: ReportKind, scheduled: datetime) -> None:
        period = closed_period(kind, scheduled, self.zone, self.calendar)
        log.info("%s report for %s (scheduled %s)", kind, period, scheduled.isoformat())
        for delay in (*self.retry_delays, None):
            try:
                self._run(kind, period)
                return
            except Exception:
                if delay is None:
                    log.exception("%s report for %s failed; giving up", kind, period)
                    raise
                log.exception("%s report for %s failed; again in %s s", kind, period, delay)
            if self._stopping.wait(delay):
                log.warning("%s report for %s not sent: stopping", kind, period)
                return

    def start(self) -> None:
        self._stopping.clear()
        scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=make_engine(self._url))},
            executors={"default": ReportExecutor(self._fire)},
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
            timezone=self.zone,
        )
        # Always on `self.clock` (the wall clock unless one was injected): one code path.
        clocked = _on_clock(BaseScheduler._process_jobs, self.clock)
        scheduler._process_jobs = types.MethodType(clocked, scheduler)
        # Start paused: the stored jobs are checked against the config before any of them runs,
        # and a job that is already stored keeps its next run time (that is the catch-up).
        scheduler.start(paused=True)
        self._scheduler = scheduler
        self._ensure_jobs()
        scheduler.resume()

    def _ensure_jobs(self) -> None:
        assert self._scheduler is not None
        now = self.clock()
        for kind in REPORT_KINDS:
            job_id = JOB_IDS[kind]
            stored = self._scheduler.get_job(job_id)
            if kind not in self.schedule.kinds:
                if stored is not None:
                    self._scheduler.remove_job(job_id)
                continue
            trigger = trigger_for(kind, self.schedule, self.calendar, self.zone)
            if stored is not None and repr(stored.trigger) == repr(trigger):
                log.info("%s reports: next run %s", kind, stored.next_run_time)
                continue
            job = self._scheduler.add_job(
                period_closed,
                trigger,
                args=[kind],
                id=job_id,
                name=f"{kind} report",
                replace_existing=True,
                next_run_time=trigger.get_next_fire_time(None, now),
            )
            log.info("%s reports scheduled: next run %s", kind, job.next_run_time)

    def next_runs(self) -> dict[str, datetime | None]:
        assert self._scheduler is not None
        return {job.id: job.next_run_time for job in self._scheduler.get_jobs()}

    def shutdown(self) -> None:
        self._stopping.set()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None

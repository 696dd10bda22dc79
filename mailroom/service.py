"""`mailroom serve`: SMTP listener, filing process (with the IMAP pollers), outbound sender,
report scheduler.

The spool is drained by a child process (`ingest.filer`), so filing never holds up the
listener's `250`; the IMAP pollers run in that child too, so every message reaches filing
through the same door. The rest runs in this process. A child that holds one message far past
the time budget is killed and started again, and the message gets a strike (two: set aside).

SIGTERM (or SIGINT): the listener stops accepting connections and new transactions; a session
in the middle of one finishes it (within `GRACE_SECONDS`) and hears its answer; the filing
process (its pollers with it) and the sender finish the message in hand; then the process
exits. Whatever was answered `250` is in the spool and is processed at the next start, and an
IMAP message is moved only after its commit, so SIGKILL at any moment loses nothing either.

On SQLite one `serve` runs per database (a lock file beside it says so); on PostgreSQL several
may share one database.

SIGUSR1 writes the stack of every thread to the log (standard error) and changes nothing else:
the way to see what a `serve` that does not stop is waiting for.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import resource
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from ingest.budget import kill_after as filer_kill_after
from ingest.health import DatabaseHealth
from ingest.notices import ReminderCheck
from ingest.smtp import IntakeHandler, smtp_factory, tls_context
from ingest.worker import MAX_STRIKES
from ledger.db import DatabaseLost, sqlite_path
from mailroom.app import App, no_database, settle_heap
from mailroom.errors import UserError
from mailroom.filer import filer_for
from mailroom.reporting import start_report_scheduler, warning_check
from mailroom.stacks import write_stacks_on_sigusr1

if TYPE_CHECKING:
    from reports.schedule import ReportScheduler

log = logging.getLogger("mailroom.serve")

POLL_SECONDS = 1.0  # the worker and the sender look for work at least this often
GRACE_SECONDS = 30.0  # how long shutdown waits for an SMTP transaction in progress
HEALTH_TTL = 1.0  # how long a verdict on the database is trusted before asking again
REMINDER_CHECK_SECONDS = 60.0  # how often the outbound worker looks for due 约稿 reminders
WARNING_CHECK_SECONDS = 5.0  # … and for a passed early-warning point (a clock read, no query)
FILER_RESTART_SECONDS = 5.0  # pause before a filing process that died is started again


async def _loop_worker(
    name: str,
    work: Callable[[], object],
    wake: asyncio.Event,
    stop: asyncio.Event,
    executor: ThreadPoolExecutor,
) -> None:
    loop = asyncio.get_running_loop()
    lost_told = False
    while not stop.is_set():
        try:
            await loop.run_in_executor(executor, work)
        except DatabaseLost as exc:
            if not lost_told:  # it stays lost until a restart: said once, not every second
                log.error("%s stopped: %s", name, exc)
                lost_told = True
        except Exception:
            log.exception("%s failed; retrying", name)
        wake.clear()
        stop_wait = asyncio.ensure_future(stop.wait())
        wake_wait = asyncio.ensure_future(wake.wait())
        await asyncio.wait(
            {stop_wait, wake_wait}, timeout=POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED
        )
        for fut in (stop_wait, wake_wait):
            fut.cancel()


@contextmanager
def sole_instance(database_url: str) -> Iterator[None]:
    """SQLite: refuse a second `serve` on the same database file (PostgreSQL: no limit)."""
    path = sqlite_path(database_url)
    if path is None:
        yield
        return
    if not path.exists():
        raise no_database(path)
    lock_path = path.with_name(path.name + ".serve-lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"another `mailroom serve` runs on {path}: SQLite allows one instance "
                "(use PostgreSQL for several)"
            ) from None
        yield
    finally:
        os.close(fd)


FD_RESERVE = 64  # descriptors kept for the spool, the database, the filer's pipes and logs


def session_cap(configured: int) -> int:
    """`[smtp] max_sessions`, within what the process may open: the soft limit on open files is
    raised to the hard one, and the cap kept below it, so that a connection flood meets a
    `421` rather than exhausting the descriptors the listener needs to accept at all."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    if soft == resource.RLIM_INFINITY or configured + FD_RESERVE <= soft:
        return configured
    allowed = max(1, soft - FD_RESERVE)
    log.warning(
        "[smtp] max_sessions = %d, but this process may open only %d files: at most %d "
        "sessions are taken",
        configured,
        soft,
        allowed,
    )
    return allowed


class OnceAMinute:
    """The event loop's exception handler: each distinct message is logged at most once a
    minute, with how often it came meanwhile (an accept that fails for want of descriptors
    would otherwise write a traceback per attempt)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, every: float = 60.0) -> None:
        self.loop = loop
        self.every = every
        self.last: dict[str, float] = {}
        self.repeats: Counter[str] = Counter()

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        key = str(context.get("message", "")) + type(context.get("exception")).__name__
        now = time.monotonic()
        if key in self.last and now - self.last[key] < self.every:
            self.repeats[key] += 1
            return
        repeated = self.repeats.pop(key, 0)
        if repeated:
            context = {**context, "message": f"{context.get('message')} ({repeated} more since)"}
        self.last[key] = now
        loop.default_exception_handler(context)


class WebConsole:
    """The web console (`mailroom.console`): uvicorn on a thread of its own."""

    name = "web console"

    def __init__(self, shared: Shared, filing: FilingProcess | None) -> None:
        from mailroom.console import WebServer

        def filer_alive() -> bool | None:
            if filing is None:
                return None
            proc = filing.filer.process
            return proc is not None and proc.poll() is None

        self.server = WebServer(shared.app, filer_alive)

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.server.start)

    async def stop(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.server.stop)


class Service(Protocol):
    """One part of `serve`: started in order, stopped in the reverse order."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Shared:
    """What the services of one `serve` share: the loop, the stop signal, the database's
    health, and the event that wakes the outbound sender."""

    app: App
    loop: asyncio.AbstractEventLoop
    stop: asyncio.Event
    stopping: threading.Event  # the same signal, for the worker threads
    delivered: asyncio.Event
    health: DatabaseHealth

    def wake_sender(self) -> None:
        self.loop.call_soon_threadsafe(self.delivered.set)


class OutboundSender:
    """Sends the outbox (and the due 约稿 reminders) whenever woken, at least every second."""

    name = "outbound sender"

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="outbound")
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        app, cfg = self.shared.app, self.shared.app.config
        reminders = ReminderCheck(
            app.ledger,
            app.solicit_mailer,
            timedelta(hours=cfg.solicit.remind_before_hours),
            REMINDER_CHECK_SECONDS,
            rulebook=app.rulebook,
        )

        warnings = warning_check(app, WARNING_CHECK_SECONDS) if cfg.reports.warnings else None

        def outbound() -> None:
            reminders()
            if warnings is not None:
                warnings()
            app.deliver(should_stop=self.shared.stopping.is_set)

        shared = self.shared
        self.task = asyncio.create_task(
            _loop_worker("outbound", outbound, shared.delivered, shared.stop, self.pool)
        )

    async def stop(self) -> None:
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)
        self.pool.shutdown(wait=True)


class FilingProcess:
    """The child that files the spool and polls IMAP (`ingest.filer`), watched: started again
    when it dies, killed when it holds one message far past the budget (a strike for it)."""

    name = "filing process"

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        cfg = shared.app.config
        self.filer = filer_for(cfg)
        # A message held far past its budget is stuck in C code (the budget cannot interrupt
        # that): the process is stopped, and the message gets a strike.
        self.kill_after = filer_kill_after(cfg.intake.time_budget_seconds)
        self.in_hand: dict[str, float] = {}  # the spool id the child holds, since when
        self.killed = False  # by us, on a message held too long: not "unexpectedly"

    def wake(self) -> None:
        self.filer.wake()

    async def start(self) -> None:
        self._start_child()
        self._watch()

    def _start_child(self) -> None:
        if self.shared.stop.is_set():
            return
        self.filer.start()
        assert self.filer.report_fd is not None
        self.shared.loop.add_reader(self.filer.report_fd, self._heard)
        log.info("filing process %s started", self.filer.pid)

    def _strike(self, spool_id: str, why: str) -> None:
        count = self.shared.app.spool.strike(spool_id)
        log.error(
            "the filing process %s spool message %s (strike %d; at %d it is set aside unread)",
            why,
            spool_id,
            count,
            MAX_STRIKES,
        )

    def _heard(self) -> None:
        said, closed = self.filer.messages()
        for what, detail in said:
            if what == "begin":
                self.in_hand = {detail: self.shared.loop.time()}
            elif what == "end":
                self.in_hand.pop(detail, None)
            elif what == "filed":
                self.shared.delivered.set()
            elif what == "down":
                self.shared.health.mark_down(detail)
        if not closed:
            return
        assert self.filer.report_fd is not None
        self.shared.loop.remove_reader(self.filer.report_fd)
        code = self.filer.reap()
        for spool_id in self.in_hand:
            self._strike(spool_id, f"died (exit code {code}) while filing")
        self.in_hand = {}
        if self.shared.stop.is_set():
            return
        how = "was stopped" if self.killed else f"ended unexpectedly (exit code {code})"
        self.killed = False
        log.error(
            "the filing process %s; starting it again in %g s (the spool keeps every message "
            "meanwhile)",
            how,
            FILER_RESTART_SECONDS,
        )
        self.shared.loop.call_later(FILER_RESTART_SECONDS, self._start_child)

    def _watch(self) -> None:
        if self.shared.stop.is_set():
            return
        now = self.shared.loop.time()
        for spool_id, since in list(self.in_hand.items()):
            if now - since > self.kill_after:
                self.in_hand = {}  # the strike is counted here, not again when the pipe closes
                self._strike(spool_id, f"was stopped after {now - since:.0f} s on")
                self.killed = True
                self.filer.kill()
        self.shared.loop.call_later(1.0, self._watch)

    async def stop(self) -> None:
        if self.filer.report_fd is not None:
            self.shared.loop.remove_reader(self.filer.report_fd)
        await self.shared.loop.run_in_executor(None, self.filer.stop, GRACE_SECONDS)


class SmtpListener:
    """The SMTP listener: `250` once a message is in the spool."""

    name = "SMTP listener"

    def __init__(self, shared: Shared, on_spooled: Callable[[], None]) -> None:
        self.shared = shared
        cfg = shared.app.config
        self.tls = None
        if cfg.smtp.tls_cert and cfg.smtp.tls_key:
            self.tls = tls_context(cfg.smtp.tls_cert, cfg.smtp.tls_key)
        self.handler = IntakeHandler(
            cfg.mailboxes,
            shared.app.spool,
            shared.health,
            on_spooled=on_spooled,
            max_sessions=session_cap(cfg.smtp.max_sessions),
            max_per_client=cfg.smtp.max_sessions_per_client,
        )
        self.server: asyncio.Server | None = None
        self.where = f"{cfg.smtp.listen_host}:{cfg.smtp.listen_port}"

    async def start(self) -> None:
        cfg = self.shared.app.config
        self.server = await self.shared.loop.create_server(
            smtp_factory(self.handler, cfg.smtp.max_message_bytes, cfg.smtp.hostname, self.tls),
            host=cfg.smtp.listen_host,
            port=cfg.smtp.listen_port,
        )
        log.info(
            "listening for SMTP on %s%s; replies go to %s",
            self.where,
            " (STARTTLS offered)" if self.tls else "",
            cfg.outbound.relay_host or str(cfg.outbound.maildir),
        )

    async def stop(self) -> None:
        if self.server is None:
            return
        self.server.close()
        await self.handler.close_sessions(GRACE_SECONDS)
        await self.server.wait_closed()


class Reports:
    """The report scheduler (APScheduler), its jobs in the ledger's database."""

    name = "report scheduler"

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.scheduler: ReportScheduler | None = None

    async def start(self) -> None:
        self.scheduler = start_report_scheduler(self.shared.app, self.shared.wake_sender)

    async def stop(self) -> None:
        if self.scheduler is not None:
            await self.shared.loop.run_in_executor(None, self.scheduler.shutdown)


async def run(app: App, *, process: bool = True) -> None:
    """Start the services in order, wait for SIGTERM (or SIGINT), stop them in reverse: the
    report scheduler first, then the listener (its sessions finish their message), the filing
    process (it finishes the message in hand), the sender last."""
    app.spool.ensure()
    cleared = app.spool.clear_unfinished()
    if cleared:
        log.info("removed %d half-written spool files of a process that died", cleared)
    try:
        app.spool.prepare_journal()
    except OSError as exc:  # the listener answers 451 while the spool cannot store
        log.error("cannot begin a spool journal segment: %s", exc)
    loop = asyncio.get_running_loop()
    shared = Shared(
        app=app,
        loop=loop,
        stop=asyncio.Event(),
        stopping=threading.Event(),
        delivered=asyncio.Event(),
        health=DatabaseHealth(app.ledger, ttl=HEALTH_TTL),
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, shared.stop.set)
    loop.set_exception_handler(OnceAMinute(loop))

    services: list[Service] = []
    if process:
        filing = FilingProcess(shared)
        services += [OutboundSender(shared), filing]
        listener = SmtpListener(shared, on_spooled=filing.wake)
    else:
        listener = SmtpListener(shared, on_spooled=lambda: None)
    services.append(listener)
    if process:
        services.append(Reports(shared))
    if app.config.web.enabled:
        services.append(WebConsole(shared, filing if process else None))
    started: list[Service] = []
    try:
        for service in services:
            await service.start()
            started.append(service)
        print(f"mailroom: listening on {listener.where}", flush=True)
        await shared.stop.wait()
        log.info("stopping: no new connections; finishing the message in hand")
    finally:
        shared.stop.set()
        shared.stopping.set()
        for service in reversed(started):
            await service.stop()
            log.info("stopping: %s stopped", service.name)
    print("mailroom: stopped", flush=True)


def serve(app: App, *, process: bool = True) -> None:
    # aiosmtpd says five lines per connection at INFO: a flood would be millions of lines.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    with sole_instance(app.config.database.url):
        write_stacks_on_sigusr1()
        settle_heap()
        asyncio.run(run(app, process=process))

"""`mailroom serve`: SMTP listener, filing process, IMAP pollers, outbound sender, report scheduler.

The spool is drained by a child process (`mailroom.filer`), so filing never holds up the
listener's `250`; the rest runs in this process. A child that holds one message far past the
time budget is killed and started again, and the message gets a strike (two: set aside).

SIGTERM (or SIGINT): the listener stops accepting connections and new transactions; a session
in the middle of one finishes it (within `GRACE_SECONDS`) and hears its answer; the filing
process, the pollers and the sender finish the message in hand; then the process exits. Whatever was
answered `250` is in the spool and is processed at the next start, and an IMAP message is moved
only after its commit, so SIGKILL at any moment loses nothing either.

On SQLite one `serve` runs per database (a lock file beside it says so); on PostgreSQL several
may share one database.

SIGUSR1 writes the stack of every thread to the log (standard error) and changes nothing else:
the way to see what a `serve` that does not stop is waiting for.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
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
from datetime import timedelta
from typing import Any

from ingest.budget import kill_after as filer_kill_after
from ingest.health import DatabaseHealth
from ingest.imap import ImapPoller, lease_for
from ingest.notices import ReminderCheck
from ingest.smtp import IntakeHandler, smtp_factory, tls_context
from ingest.worker import MAX_STRIKES
from ledger.db import DatabaseLost, sqlite_path
from mailroom.app import App, no_database
from mailroom.errors import UserError
from mailroom.filer import Filer
from mailroom.reporting import start_report_scheduler

log = logging.getLogger("mailroom.serve")

POLL_SECONDS = 1.0  # the worker and the sender look for work at least this often
GRACE_SECONDS = 30.0  # how long shutdown waits for an SMTP transaction in progress
HEALTH_TTL = 1.0  # how long a verdict on the database is trusted before asking again
REMINDER_CHECK_SECONDS = 60.0  # how often the outbound worker looks for due 约稿 reminders
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


async def run(app: App, *, process: bool = True) -> None:
    cfg = app.config
    app.spool.ensure()
    cleared = app.spool.clear_unfinished()
    if cleared:
        log.info("removed %d half-written spool files of a process that died", cleared)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    stopping = threading.Event()  # the same signal, for the worker threads
    delivered = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    tls = None
    if cfg.smtp.tls_cert and cfg.smtp.tls_key:
        tls = tls_context(cfg.smtp.tls_cert, cfg.smtp.tls_key)
    health = DatabaseHealth(app.ledger, ttl=HEALTH_TTL)
    filer = Filer(cfg) if process else None
    handler = IntakeHandler(
        cfg.mailboxes,
        app.spool,
        health,
        on_spooled=filer.wake if filer else lambda: None,
        max_sessions=session_cap(cfg.smtp.max_sessions),
        max_per_client=cfg.smtp.max_sessions_per_client,
    )
    loop.set_exception_handler(OnceAMinute(loop))
    server = await loop.create_server(
        smtp_factory(handler, cfg.smtp.max_message_bytes, cfg.smtp.hostname, tls),
        host=cfg.smtp.listen_host,
        port=cfg.smtp.listen_port,
    )
    where = f"{cfg.smtp.listen_host}:{cfg.smtp.listen_port}"
    outgoing = cfg.outbound.relay_host or str(cfg.outbound.maildir)
    log.info(
        "listening for SMTP on %s%s; replies go to %s",
        where,
        " (STARTTLS offered)" if tls else "",
        outgoing,
    )

    def wake_sender() -> None:
        loop.call_soon_threadsafe(delivered.set)

    pollers = [
        ImapPoller(
            imap,
            app.pipeline,
            lease_for(app.ledger.engine, imap),
            cfg.smtp.max_message_bytes,
            on_filed=wake_sender,
        )
        for imap in (cfg.imap if process else ())
    ]
    threads = [
        threading.Thread(
            target=poller.run, args=(stopping,), name=f"imap-{poller.config.name}", daemon=True
        )
        for poller in pollers
    ]

    def start_filer() -> None:
        assert filer is not None
        if stop.is_set():
            return
        filer.start()
        assert filer.report_fd is not None
        loop.add_reader(filer.report_fd, heard_from_filer)
        log.info("filing process %s started", filer.pid)

    # A message the filing process holds far past its budget is stuck in C code (the budget
    # cannot interrupt that): the process is stopped, and the message gets a strike.
    kill_after = filer_kill_after(cfg.intake.time_budget_seconds)
    in_hand: dict[str, float] = {}  # the spool id the filing process holds, since when
    killed: list[str] = []  # the spool id it was killed on, until it is started again

    def strike(spool_id: str, why: str) -> None:
        count = app.spool.strike(spool_id)
        log.error(
            "the filing process %s spool message %s (strike %d; at %d it is set aside unread)",
            why,
            spool_id,
            count,
            MAX_STRIKES,
        )

    def heard_from_filer() -> None:
        assert filer is not None
        said, closed = filer.messages()
        for what, detail in said:
            if what == "begin":
                in_hand.clear()
                in_hand[detail] = loop.time()
            elif what == "end":
                in_hand.pop(detail, None)
            elif what == "filed":
                delivered.set()
            elif what == "down":
                health.mark_down(detail)
        if closed:
            assert filer.report_fd is not None
            loop.remove_reader(filer.report_fd)
            code = filer.reap()
            for spool_id in list(in_hand):
                strike(spool_id, f"died (exit code {code}) while filing")
            in_hand.clear()
            if not stop.is_set():
                how = "was stopped" if killed else f"ended unexpectedly (exit code {code})"
                killed.clear()
                log.error(
                    "the filing process %s; starting it again in %g s (the spool keeps every "
                    "message meanwhile)",
                    how,
                    FILER_RESTART_SECONDS,
                )
                loop.call_later(FILER_RESTART_SECONDS, start_filer)

    def watch_filer() -> None:
        if filer is None or stop.is_set():
            return
        now = loop.time()
        for spool_id, since in list(in_hand.items()):
            if now - since > kill_after:
                in_hand.clear()  # the strike is counted here, not again when the pipe closes
                strike(spool_id, f"was stopped after {now - since:.0f} s on")
                killed.append(spool_id)
                filer.kill()
        loop.call_later(1.0, watch_filer)

    print(f"mailroom: listening on {where}", flush=True)
    tasks = []
    with ThreadPoolExecutor(1, thread_name_prefix="outbound") as outbound_pool:
        if process:
            start_filer()
            watch_filer()
            reminders = ReminderCheck(
                app.ledger,
                app.solicit_mailer,
                timedelta(hours=cfg.solicit.remind_before_hours),
                REMINDER_CHECK_SECONDS,
            )

            def outbound() -> None:
                reminders()
                app.deliver(should_stop=stopping.is_set)

            tasks.append(
                asyncio.create_task(
                    _loop_worker("outbound", outbound, delivered, stop, outbound_pool)
                )
            )
            for thread in threads:
                thread.start()
            for poller in pollers:
                log.info("polling %s", poller.where)
            reports = start_report_scheduler(app, wake_sender)
        await stop.wait()
        log.info("stopping: no new connections; finishing the message in hand")
        stopping.set()
        if process:
            await loop.run_in_executor(None, reports.shutdown)
            log.info("stopping: report scheduler stopped")
        server.close()
        await handler.close_sessions(GRACE_SECONDS)
        await server.wait_closed()
        log.info("stopping: SMTP sessions closed")
        if filer is not None:
            if filer.report_fd is not None:
                loop.remove_reader(filer.report_fd)
            await loop.run_in_executor(None, filer.stop, GRACE_SECONDS)
            log.info("stopping: filing process stopped")
        await asyncio.gather(*tasks, return_exceptions=True)
        log.info("stopping: outbound sender stopped")
        for thread in threads:
            await loop.run_in_executor(None, thread.join, GRACE_SECONDS)
    print("mailroom: stopped", flush=True)


def serve(app: App, *, process: bool = True) -> None:
    # aiosmtpd says five lines per connection at INFO: a flood would be millions of lines.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    with sole_instance(app.config.database.url):
        if hasattr(signal, "SIGUSR1"):
            faulthandler.register(signal.SIGUSR1, all_threads=True)
        asyncio.run(run(app, process=process))

"""`mailroom serve`: SMTP listener, spool worker, outbound sender, report scheduler in one process.

SIGTERM (or SIGINT) stops accepting connections, lets the current message finish, and exits;
whatever was answered `250` is in the spool and is processed at the next start.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor

from ingest.notices import ReminderCheck
from ingest.smtp import IntakeHandler, smtp_factory
from ingest.worker import drain
from mailroom.app import App
from mailroom.reporting import start_report_scheduler

log = logging.getLogger("mailroom.serve")

POLL_SECONDS = 1.0
REMINDER_CHECK_SECONDS = 60.0  # how often the outbound worker looks for due 约稿 reminders


async def _loop_worker(
    name: str,
    work: object,
    wake: asyncio.Event,
    stop: asyncio.Event,
    executor: ThreadPoolExecutor,
) -> None:
    loop = asyncio.get_running_loop()
    assert callable(work)
    while not stop.is_set():
        try:
            await loop.run_in_executor(executor, work)
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


async def run(app: App, *, process: bool = True) -> None:
    cfg = app.config
    app.spool.ensure()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    spooled = asyncio.Event()
    delivered = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    handler = IntakeHandler(cfg.mailboxes, app.spool, on_spooled=spooled.set)
    server = await loop.create_server(
        smtp_factory(handler, cfg.smtp.max_message_bytes, cfg.smtp.hostname),
        host=cfg.smtp.listen_host,
        port=cfg.smtp.listen_port,
    )
    where = f"{cfg.smtp.listen_host}:{cfg.smtp.listen_port}"
    outgoing = cfg.outbound.relay_host or str(cfg.outbound.maildir)
    log.info("listening for SMTP on %s; replies go to %s", where, outgoing)
    print(f"mailroom: listening on {where}", flush=True)

    tasks = []
    with (
        ThreadPoolExecutor(1, thread_name_prefix="pipeline") as pipeline_pool,
        ThreadPoolExecutor(1, thread_name_prefix="outbound") as outbound_pool,
    ):
        if process:

            def work() -> None:
                if drain(app.spool, app.pipeline):
                    loop.call_soon_threadsafe(delivered.set)

            tasks.append(
                asyncio.create_task(_loop_worker("pipeline", work, spooled, stop, pipeline_pool))
            )
            reminders = ReminderCheck(app.ledger, cfg, REMINDER_CHECK_SECONDS)

            def outbound() -> None:
                reminders()
                app.deliver()

            tasks.append(
                asyncio.create_task(
                    _loop_worker("outbound", outbound, delivered, stop, outbound_pool)
                )
            )
            reports = start_report_scheduler(app, lambda: loop.call_soon_threadsafe(delivered.set))
        await stop.wait()
        if process:
            await loop.run_in_executor(None, reports.shutdown)
        log.info("stopping: no new connections; finishing the current message")
        server.close()
        await server.wait_closed()
        await asyncio.gather(*tasks, return_exceptions=True)
    print("mailroom: stopped", flush=True)


def serve(app: App, *, process: bool = True) -> None:
    asyncio.run(run(app, process=process))

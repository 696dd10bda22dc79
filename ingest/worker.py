"""The spool worker: drains spooled messages through the pipeline, oldest first."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from datetime import datetime

from ingest.health import database_unavailable
from ingest.pipeline import Arrival, Pipeline
from ingest.spool import Spool, SpoolError

log = logging.getLogger(__name__)


def _never() -> bool:
    return False


def drain(
    spool: Spool,
    pipeline: Pipeline,
    limit: int | None = None,
    should_stop: Callable[[], bool] = _never,
    on_database_error: Callable[[Exception], None] = lambda exc: None,
) -> int:
    """Process pending spool files; returns how many were done.

    A database outage stops the drain (the files stay and are retried). A message the
    database refuses to store is recorded `quarantined` with its raw bytes, so one bad message
    never blocks those behind it; a broken spool file is set aside in `bad/` for a person.
    `should_stop` is asked between messages (SIGTERM finishes the current one only).
    """
    done = 0
    for spool_id in spool.pending():
        if (limit is not None and done >= limit) or should_stop():
            break
        try:
            envelope, raw = spool.read(spool_id)
        except FileNotFoundError:
            continue  # another worker took it
        except SpoolError as exc:
            log.error("%s; moved to %s", exc, spool.bad)
            spool.set_aside(spool_id)
            continue
        arrival = Arrival(
            mailbox=envelope.mailbox,
            channel=envelope.channel,
            received_at=datetime.fromisoformat(envelope.received_at),
            mail_from=envelope.mail_from,
            rcpt=envelope.rcpt,
            spool_id=spool_id,
        )
        try:
            outcome = pipeline.process(raw, arrival)
        except Exception as exc:
            if database_unavailable(exc):
                log.warning("database unavailable, %s stays spooled: %s", spool_id, exc)
                on_database_error(exc)
                break
            log.exception("%s could not be stored as judged; quarantining it", spool_id)
            try:
                outcome = pipeline.quarantine(
                    raw, arrival, "processing_error", traceback.format_exc()
                )
            except Exception as again:
                # Not even the raw bytes could be stored: the database is the problem.
                log.warning("cannot record %s, it stays spooled: %s", spool_id, again)
                on_database_error(again)
                break
        spool.remove(spool_id)
        done += 1
        log.info("%s → %s %s", spool_id, outcome.state, outcome.tracking_no or "")
    return done

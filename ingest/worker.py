"""The spool worker: drains spooled messages through the pipeline, oldest first."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.exc import OperationalError

from ingest.pipeline import Arrival, Pipeline
from ingest.spool import Spool, SpoolError

log = logging.getLogger(__name__)


def drain(spool: Spool, pipeline: Pipeline, limit: int | None = None) -> int:
    """Process pending spool files; returns how many were done.

    A database outage stops the drain (the files stay and are retried); a broken spool file
    is set aside in `bad/` for a person, never dropped.
    """
    done = 0
    for spool_id in spool.pending():
        if limit is not None and done >= limit:
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
        except OperationalError as exc:
            log.warning("database unavailable, %s stays spooled: %s", spool_id, exc)
            break
        spool.remove(spool_id)
        done += 1
        log.info("%s → %s %s", spool_id, outcome.state, outcome.tracking_no or "")
    return done

"""The one way into filing, whichever way a message came: the SMTP listener's spool (drained
by the filing process), an IMAP folder (polled inside the filing process) or a file
(`mailroom ingest`).

`take()` judges and files the message (`Pipeline.process`, idempotent on its origin). When
the judgement cannot be stored for the message's sake (the database refuses the row), the
message is kept `quarantined` with its raw bytes and the traceback, so one bad message never
blocks those behind it. When the database itself is away, that propagates: the caller keeps
the message (in the spool, in the IMAP folder) and tries again later.
"""

from __future__ import annotations

import logging
import traceback

from sqlalchemy.exc import IntegrityError

from ingest.health import database_unavailable
from ingest.pipeline import Arrival, Outcome, Pipeline

log = logging.getLogger(__name__)


def take(pipeline: Pipeline, raw: bytes, arrival: Arrival) -> Outcome | None:
    """File one message; its outcome, or None when another instance took this very arrival
    a moment ago (it is filed once, by that instance)."""
    try:
        return pipeline.process(raw, arrival)
    except Exception as exc:
        if database_unavailable(exc):
            raise
        if isinstance(exc, IntegrityError) and pipeline.recorded(arrival):
            log.warning("%s was taken by another instance", arrival.origin)
            return None
        log.exception("%s could not be stored as judged; quarantining it", arrival.origin)
        return pipeline.quarantine(raw, arrival, "processing_error", traceback.format_exc())

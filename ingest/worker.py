"""The spool worker: drains spooled messages through the pipeline, oldest first."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from ingest.door import take
from ingest.pipeline import Arrival, Outcome, Pipeline
from ingest.spool import Spool, SpoolError

log = logging.getLogger(__name__)


# A message that stopped the filing process this many times (it was killed while the message
# was in hand, or died) is set aside unread: quarantined, too_slow.
MAX_STRIKES = 2
_unremovable: set[str] = set()  # said once each, not at every drain


def _never() -> bool:
    return False


def _nothing(_spool_id: str) -> None:
    pass


def drain(
    spool: Spool,
    pipeline: Pipeline,
    limit: int | None = None,
    should_stop: Callable[[], bool] = _never,
    on_database_error: Callable[[Exception], None] = lambda exc: None,
    on_begin: Callable[[str], None] = _nothing,
    on_end: Callable[[str], None] = _nothing,
) -> int:
    """Process pending spool files; returns how many were done.

    A database outage stops the drain (the files stay and are retried). A message the
    database refuses to store is recorded `quarantined` with its raw bytes, so one bad message
    never blocks those behind it; a broken spool file is set aside in `bad/` for a person.
    `should_stop` is asked between messages (SIGTERM finishes the current one only).
    `on_begin` and `on_end` frame each message, so that whoever watches the filing process
    knows which message it holds; one that stopped it `MAX_STRIKES` times is set aside unread.
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
        strikes = spool.strikes_of(spool_id)
        on_begin(spool_id)
        outcome: Outcome | None
        try:
            if strikes >= MAX_STRIKES:
                log.error("%s stopped the filing process %d times; set aside", spool_id, strikes)
                outcome = pipeline.quarantine(
                    raw, arrival, "too_slow", f"it stopped the filing process {strikes} times"
                )
            else:
                outcome = take(pipeline, raw, arrival)
        except Exception as exc:
            # The database is away, or refuses even the raw bytes: the message stays spooled.
            log.warning("database unavailable, %s stays spooled: %s", spool_id, exc)
            on_end(spool_id)
            on_database_error(exc)
            break
        on_end(spool_id)
        try:
            spool.remove(spool_id)
        except OSError as exc:
            # Filed (or judged) and committed; a later drain finds it done and tries again.
            if spool_id not in _unremovable:
                log.error("%s is filed but cannot be removed from the spool: %s", spool_id, exc)
                _unremovable.add(spool_id)
            continue
        done += 1
        if outcome is not None:
            log.info("%s → %s %s", spool_id, outcome.state, outcome.tracking_no or "")
    return done

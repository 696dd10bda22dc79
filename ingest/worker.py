"""The spool worker: drains spooled messages through the pipeline, oldest first."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime

from ingest.door import take_batch
from ingest.pipeline import Arrival, Outcome, Pipeline
from ingest.spool import Spool, SpoolError

log = logging.getLogger(__name__)


# Group commit: a batch ends at this many messages, this many bytes of them, or once this
# much time has passed since it began (the receipts of its first messages wait that long).
BATCH_ITEMS = 50
BATCH_BYTES = 8 * 1024 * 1024
BATCH_SECONDS = 0.5

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

    Messages are filed in batches (`ingest.door.take_batch`: one transaction for up to
    `BATCH_ITEMS` messages, `BATCH_BYTES` of them, or what `BATCH_SECONDS` allow), and each
    spool file is removed only once its batch is committed: a crash in the middle of a batch
    leaves every message of it spooled, and each is filed once at the next start.
    A database outage stops the drain (the files stay and are retried). A message the
    database refuses to store is recorded `quarantined` with its raw bytes, so one bad message
    never blocks those behind it; a broken spool file is set aside in `bad/` for a person.
    `should_stop` is asked between messages (SIGTERM finishes the batch in hand only).
    `on_begin` and `on_end` frame each message, so that whoever watches the filing process
    knows which message it holds; one that stopped it `MAX_STRIKES` times is set aside unread.
    """
    queue = spool.pending()
    position = 0
    done = 0

    def wanted() -> bool:
        return position < len(queue) and not should_stop() and (limit is None or done < limit)

    def batch() -> Iterator[tuple[bytes, Arrival]]:
        """The next messages of the queue, read one at a time, as many as one batch takes."""
        nonlocal position
        started = time.monotonic()
        count = size = 0
        while wanted() and count < BATCH_ITEMS and size < BATCH_BYTES:
            if count and time.monotonic() - started >= BATCH_SECONDS:
                return
            if limit is not None and done + count >= limit:
                return
            spool_id = queue[position]
            if spool.strikes_of(spool_id) >= MAX_STRIKES:
                return  # set aside alone, outside any batch
            position += 1
            found = _read(spool, spool_id)
            if found is None:
                continue
            count += 1
            size += len(found[0])
            yield found

    def begin(arrival: Arrival) -> None:
        on_begin(arrival.spool_id or "")

    def end(arrival: Arrival) -> None:
        on_end(arrival.spool_id or "")

    while wanted():
        spool_id = queue[position]
        try:
            if spool.strikes_of(spool_id) >= MAX_STRIKES:
                position += 1
                outcomes = _set_aside(spool, pipeline, spool_id, begin, end)
            else:
                outcomes = take_batch(pipeline, batch(), begin, end)
        except Exception as exc:
            # The database is away, or refuses even the raw bytes: the messages stay spooled.
            log.warning("database unavailable, the spool is kept: %s", exc)
            on_database_error(exc)
            break
        for arrival, outcome in outcomes:
            filed_id = arrival.spool_id or ""
            if _remove(spool, filed_id):
                done += 1
                if outcome is not None:
                    log.info("%s → %s %s", filed_id, outcome.state, outcome.tracking_no or "")
    return done


def _read(spool: Spool, spool_id: str) -> tuple[bytes, Arrival] | None:
    """A spool file's message and how it arrived; None when it is gone or broken (set aside
    in `bad/` for a person)."""
    try:
        envelope, raw = spool.read(spool_id)
    except FileNotFoundError:
        return None  # another worker took it
    except SpoolError as exc:
        log.error("%s; moved to %s", exc, spool.bad)
        spool.set_aside(spool_id)
        return None
    arrival = Arrival(
        mailbox=envelope.mailbox,
        channel=envelope.channel,
        received_at=datetime.fromisoformat(envelope.received_at),
        mail_from=envelope.mail_from,
        rcpt=envelope.rcpt,
        spool_id=spool_id,
    )
    return raw, arrival


def _set_aside(
    spool: Spool,
    pipeline: Pipeline,
    spool_id: str,
    begin: Callable[[Arrival], None],
    end: Callable[[Arrival], None],
) -> list[tuple[Arrival, Outcome | None]]:
    """A message that stopped the filing process `MAX_STRIKES` times: quarantined unread."""
    found = _read(spool, spool_id)
    if found is None:
        return []
    raw, arrival = found
    strikes = spool.strikes_of(spool_id)
    log.error("%s stopped the filing process %d times; set aside", spool_id, strikes)
    begin(arrival)
    try:
        outcome = pipeline.quarantine(
            raw, arrival, "too_slow", f"it stopped the filing process {strikes} times"
        )
    finally:
        end(arrival)
    return [(arrival, outcome)]


def _remove(spool: Spool, spool_id: str) -> bool:
    """Remove a committed message's spool file; False when it cannot be (said once)."""
    try:
        spool.remove(spool_id)
    except OSError as exc:
        # Filed (or judged) and committed; a later drain finds it done and tries again.
        if spool_id not in _unremovable:
            log.error("%s is filed but cannot be removed from the spool: %s", spool_id, exc)
            _unremovable.add(spool_id)
        return False
    return True
